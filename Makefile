# Comptoir — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app web.wsgi
STAMP := $(VENV)/.installed
CATALOGS := $(wildcard web/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)
APT_UPDATED := /tmp/.comptoir-apt-updated

.PHONY: run aws-local test bench modules drills mutation install lint format translations system-deps test-sqlite test-postgres package clean

# bin/comptoir-run migrates, seeds the demo on first run (printing the logins), then runs
# gunicorn and the queue worker as two processes and stops both on Ctrl+C.
run: install  ## Serve the app (gunicorn) and its worker at http://127.0.0.1:5000 (SQLite, demo data on first run)
	$(PY) bin/comptoir-run --demo --bind 127.0.0.1:5000

# bin/aws-local: moto server on loopback with the CloudFormation stack, the app under gunicorn in
# AWS mode (SQS, S3) and a driver invoking the Lambda handlers as AWS does; --demo walks
# webhook → SQS → intake → desk → shipment → push → document on S3, step by step.
aws-local: install  ## The AWS flow on one machine against moto: http://127.0.0.1:5001 (ARGS=--demo)
	$(PY) bin/aws-local --bind 127.0.0.1:5001 $(ARGS)

test: install system-deps lint  ## Lint, then the whole suite on SQLite and on a throwaway PostgreSQL
	tests/tools/run-suite.sh

# Every script in bench/ (bench/run_all.py): quick sizes in under 5 minutes; BENCH_FULL=1 for the
# sizes the targets are stated for (docs/PERFORMANCE.md holds the latest table).
bench: install system-deps  ## Run every benchmark, each against its baseline and targets (BENCH_FULL=1: full sizes)
	$(PY) bench/run_all.py

# The shop modules' installable zips in dist/ (bin/build-modules): comptoir-prestashop-<version>.zip
# for PrestaShop's back office, comptoir-magento-<version>.zip for app/code or composer.
modules:  ## Build the PrestaShop and Magento modules' zips into dist/
	$(PYTHON) bin/build-modules

# The reliability drills at the sizes of issue 13 (make test runs them reduced).
drills: install system-deps  ## Fault drills at full size, on SQLite and a throwaway PostgreSQL
	DRILLS_FULL=1 tests/tools/run-suite.sh both tests/reliability $(ARGS)

# Mutation testing of web/services and web/connectors with the tests that cover them (slow:
# not part of make test); the score per module goes to docs/MUTATION.md.
mutation: install  ## Mutation testing (mutmut) of services and connectors, scores in docs/MUTATION.md
	$(PY) bin/mutation $(ARGS)

install: $(STAMP) $(COMPILED)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

web/translations/%/LC_MESSAGES/messages.mo: web/translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

translations: $(STAMP)  ## Re-extract UI strings and update every catalog
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ -o web/translations/messages.pot \
		--no-location --sort-output --project comptoir .
	$(VENV)/bin/pybabel update -i web/translations/messages.pot -d web/translations \
		--no-fuzzy-matching --ignore-obsolete

# Debian packages the tests need: Chromium for the browser tests, PostgreSQL for the second run,
# Pango for WeasyPrint (the PDF documents), wkhtmltopdf for the second PDF engine's tests, PHP and
# PHPUnit for the shop modules' own suites (modules/*/phpunit.xml).
system-deps:
	@need=""; \
	command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || need="$$need chromium"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need="$$need postgresql"; \
	ldconfig -p | grep -q libpangoft2-1.0.so.0 || need="$$need libpango-1.0-0 libpangoft2-1.0-0"; \
	command -v wkhtmltopdf >/dev/null || need="$$need wkhtmltopdf"; \
	command -v phpunit >/dev/null || need="$$need php-cli php-curl php-xml php-mbstring phpunit"; \
	if [ -n "$$need" ]; then \
		echo "installing Debian packages:$$need"; \
		[ -f $(APT_UPDATED) ] || { apt-get update -qq && touch $(APT_UPDATED); }; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need fonts-dejavu-core >/dev/null; \
	fi

lint: install
	$(VENV)/bin/ruff check web sync_lambdas tests bench bin/comptoir-run bin/aws-local bin/mutation bin/build-modules
	$(VENV)/bin/ruff format --check web sync_lambdas tests bench bin/comptoir-run bin/aws-local bin/mutation bin/build-modules
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix web sync_lambdas tests bench bin/comptoir-run bin/aws-local bin/mutation bin/build-modules
	$(VENV)/bin/ruff format web sync_lambdas tests bench bin/comptoir-run bin/aws-local bin/mutation bin/build-modules

test-sqlite: install
	$(PY) -m pytest $(ARGS)

test-postgres: install system-deps
	tests/tools/run-suite.sh postgresql $(ARGS)

# Each Zappa stage's Lambda zip in build/package/, checked against Lambda's limits and imported
# from the unpacked zip (infra/package.py, infra/README.md). Minutes, network: not in `make test`.
package:  ## Build the Lambda zips (Zappa) and fail above 50 MiB zipped / 250 MiB unzipped
	$(PYTHON) infra/package.py $(STAGES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
