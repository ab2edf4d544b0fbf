"""Configuration: defaults, then the environment (DATABASE_URL, APP_*), then test overrides."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from web.private_files import private_folder, write_private

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"


def defaults(instance_path: Path) -> dict[str, Any]:
    """Settings that hold when nothing else is said."""
    return {
        "DATABASE_URL": f"sqlite:///{instance_path / 'comptoir.sqlite'}",
        "SECRET_KEY": None,
        "BASE_URL": "http://127.0.0.1:5000",
        "ENCRYPTION_KEY": None,
        "LANGUAGES": ("fr", "en"),
        "BABEL_DEFAULT_LOCALE": "fr",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Paris",
        # Proxies in front that append to X-Forwarded-For (1 behind Caddy or nginx); 0 when
        # clients connect directly, so that nobody can choose their own address.
        "PROXY_HOPS": 0,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "comptoir_session",
        # A login lasts a working day at most, and ends after an hour without a request
        # (web/views/sessions.py); background polls do not count as activity.
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "SESSION_IDLE_MINUTES": 60,
        "WTF_CSRF_TIME_LIMIT": None,
        "WORKER": "embedded",
        "WORKER_POLL_SECONDS": 1.0,
        # The worker process (`flask worker`) asks this often whether work is due.
        "WORKER_CHECK_SECONDS": 0.25,
        # How long an outbox message being sent stays claimed by its dispatcher: one killed
        # mid-delivery leaves it due again after this (web/services/outbox.py).
        "OUTBOX_LEASE_SECONDS": 120,
        # Connections each process keeps open: at least gunicorn's threads per worker.
        "DATABASE_POOL_SIZE": 5,
        "ORDERS_PER_PAGE": 25,
        # The project's README as merchants can read it (its module installation sections
        # are linked from the shop settings page); empty: named, not linked.
        "README_URL": "",
        # Shop URLs on loopback, private or reserved addresses, and plain http: refused unless
        # APP_ALLOW_PRIVATE_SHOP_URLS=1 (tests and local shop emulators only).
        "ALLOW_PRIVATE_SHOP_URLS": False,
        # No request body above this is read (the largest upload, a tracking CSV, is 2 MB;
        # webhooks and the API keep lower limits of their own).
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
        # Where work goes once its row commits: "local" (the worker beside the web server) or
        # "sqs" (AWS: Lambda consumers, see sync_lambdas/ and infra/).
        "QUEUE": "local",
        # Where issued documents' files live: "local" (instance/documents) or "s3".
        "STORAGE": "local",
        # moto server in tests and `make aws-local`; unset on AWS.
        "AWS_ENDPOINT_URL": "",
        "AWS_REGION": "eu-west-3",
        # Queues are named PREFIX-intake.fifo, PREFIX-push.fifo, PREFIX-jobs, PREFIX-render,
        # each with its dead-letter queue PREFIX-NAME-dlq (infra/cloudformation.json).
        "AWS_PREFIX": "comptoir",
        "S3_BUCKET": "comptoir-documents",
        # Issued documents are locked (S3 Object Lock, compliance mode) for this many years.
        "S3_RETENTION_YEARS": 10,
        # How long a presigned read of a document stays valid.
        "S3_URL_SECONDS": 300,
        # Bodies and headers of inbox deliveries applied or set aside longer ago than this are
        # emptied by the maintenance schedule (`flask sync maintenance`); their dedupe keys stay.
        "INBOX_RETENTION_DAYS": 90,
        # The embedded mode's worker writes a backup here once a day (`flask backup create`)
        # and keeps the BACKUP_KEEP newest archives; empty: no scheduled backup.
        "BACKUP_DIR": "",
        # "json": one JSON object per log line (gunicorn.conf.py and bin/comptoir-run set it);
        # "text": Python's plain lines, for `flask run` and the tests.
        "LOG_FORMAT": "text",
        # The bearer token Prometheus sends to /metrics; empty: /metrics does not exist (404).
        "METRICS_TOKEN": "",
        "BACKUP_KEEP": 7,
        # On AWS: the SSM Parameter Store path of the secrets (DATABASE_URL, APP_SECRET_KEY,
        # APP_ENCRYPTION_KEY, ...), read once at start-up over the environment (infra/README.md).
        "SSM_PATH": "",
    }


def _parse(value: str) -> Any:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    try:
        return int(value)
    except ValueError:
        return value


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read DATABASE_URL and every APP_* variable (APP_BASE_URL -> BASE_URL)."""
    settings: dict[str, Any] = {}
    if environ.get("DATABASE_URL"):
        settings["DATABASE_URL"] = environ["DATABASE_URL"]
    for name, value in environ.items():
        if name.startswith("APP_") and len(name) > 4:
            settings[name[4:]] = _parse(value)
    return settings


def from_parameter_store(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings stored under SSM_PATH in SSM Parameter Store, named as in the environment
    (/comptoir/production/DATABASE_URL, /comptoir/production/APP_SECRET_KEY, ...), decrypted.

    Secrets stay out of the Lambda configuration (and out of Zappa's settings): the functions'
    roles may read this path and nothing else (infra/cloudformation.json).
    """
    from web import aws

    path = "/" + str(config["SSM_PATH"]).strip("/")
    ssm = aws.client("ssm", aws.AwsSettings.from_config(config))
    values: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path=path, Recursive=False, WithDecryption=True
    ):
        for parameter in page["Parameters"]:
            values[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
    log.info("read %s setting(s) from SSM Parameter Store %s", len(values), path)
    return from_environment(values)


def _instance_secret(instance_path: Path, filename: str) -> str:
    path = instance_path / filename
    if not path.exists():
        private_folder(path.parent)
        write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def load(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    instance_path: Path = DEFAULT_INSTANCE_PATH,
) -> dict[str, Any]:
    """Merge the three layers and derive what follows from them."""
    config = defaults(instance_path)
    config.update(from_environment(os.environ if environ is None else environ))
    config.update(overrides or {})
    if config["SSM_PATH"]:
        config.update(from_parameter_store(config))
        config.update(overrides or {})
    if not config["SECRET_KEY"]:
        log.warning(
            "APP_SECRET_KEY is not set: using a generated development key from %s",
            instance_path,
        )
        config["SECRET_KEY"] = _instance_secret(instance_path, "dev-secret.key")
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")
    # The session cookie is Secure whenever the public URL is HTTPS (i.e. outside local dev).
    config.setdefault("SESSION_COOKIE_SECURE", config["BASE_URL"].startswith("https://"))
    config["REMEMBER_COOKIE_SECURE"] = config["SESSION_COOKIE_SECURE"]
    config["REMEMBER_COOKIE_HTTPONLY"] = True
    return config
