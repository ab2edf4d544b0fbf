#!/usr/bin/env bash
# Run the test suite on SQLite and on a throwaway PostgreSQL on loopback (both at once on two
# cores or more; TEST_SERIAL=1 for one after the other).
#   tests/tools/run-suite.sh                 both databases
#   tests/tools/run-suite.sh postgresql ARGS only PostgreSQL, extra pytest arguments
#   tests/tools/run-suite.sh both ARGS       both, extra pytest arguments
set -uo pipefail
cd "$(dirname "$0")/../.."

only=""
case "${1:-}" in
  sqlite|postgresql) only=$1; shift ;;
  both) shift ;;
esac
py=.venv/bin/python
status=0

workdir=$(mktemp -d /tmp/comptoir-pg.XXXXXX)
chmod 755 "$workdir"
cleanup() {
  tests/tools/postgres.sh stop "$workdir/data" || true
  rm -rf "$workdir" "$workdir.initdb.log" "$workdir/data.initdb.log"
}
trap cleanup EXIT

run_sqlite() { env -u TEST_DATABASE_URL "$py" -m pytest -p no:cacheprovider "$@"; }
run_postgresql() { TEST_DATABASE_URL="$url" "$py" -m pytest -p no:cacheprovider "$@"; }

url=""
if [ "$only" != "sqlite" ]; then
  # Pick a free loopback port so parallel runs and a developer's own server never clash.
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if ! url=$(tests/tools/postgres.sh start "$workdir/data" "$port"); then
    echo "could not start PostgreSQL" >&2
    url=""
    status=1
  fi
fi

# The whole suite (no arguments) with two cores or more: four pytest processes at once — on
# each database, the tests that drive a browser or start servers (browser, deploy, aws, and the
# end-to-end sync tests against the shop emulators) and the rest. Those spend much of their time waiting (pages, the network going idle, processes
# starting), so four processes fill two cores better than two; the split keeps the two
# halves about even. Each has its own temporary folder, and on PostgreSQL its own databases
# (the first half's names start from a second database, comptoir_servers). The rest on SQLite
# runs in the foreground; the others write logs, printed when all have ended, failing ones last.
if [ -z "$only" ] && [ -n "$url" ] && [ "$#" -eq 0 ] && [ "$(nproc)" -ge 2 ] && [ -z "${TEST_SERIAL:-}" ]; then
  servers=(tests/browser tests/deploy tests/aws tests/sync)
  ignore=("${servers[@]/#/--ignore=}")
  servers_url=$(tests/tools/postgres.sh createdb "$port" comptoir_servers) || { echo "could not create comptoir_servers" >&2; exit 1; }
  declare -A pids
  start() {  # name, database URL ("" for SQLite), pytest arguments...
    local name=$1 db=$2; shift 2
    if [ -n "$db" ]; then
      TEST_DATABASE_URL="$db" "$py" -m pytest -p no:cacheprovider --basetemp="$workdir/tmp-$name" "$@" >"$workdir/$name.log" 2>&1 &
    else
      env -u TEST_DATABASE_URL "$py" -m pytest -p no:cacheprovider --basetemp="$workdir/tmp-$name" "$@" >"$workdir/$name.log" 2>&1 &
    fi
    pids[$name]=$!
  }
  echo "=== test suite on SQLite and PostgreSQL ($url): four processes at once ==="
  start postgresql "$url" "${ignore[@]}"
  start servers-postgresql "$servers_url" "${servers[@]}"
  start servers-sqlite "" "${servers[@]}"
  echo "=== test suite on SQLite but ${servers[*]} (the others' logs follow) ==="
  env -u TEST_DATABASE_URL "$py" -m pytest -p no:cacheprovider --basetemp="$workdir/tmp-sqlite" "${ignore[@]}" || status=1
  failed=()
  for name in servers-sqlite postgresql servers-postgresql; do
    if wait "${pids[$name]}"; then
      echo "=== $name: passed ==="
      tail -n 3 "$workdir/$name.log"
    else
      failed+=("$name")
      status=1
    fi
  done
  for name in "${failed[@]}"; do
    echo "=== $name: FAILED ==="
    cat "$workdir/$name.log"
  done
  exit $status
fi

# Both databases at once when the machine has a core for each: the PostgreSQL run writes to a
# log, printed when it ends; TEST_SERIAL=1 runs them one after the other instead.
if [ -z "$only" ] && [ -n "$url" ] && [ "$(nproc)" -ge 2 ] && [ -z "${TEST_SERIAL:-}" ]; then
  pglog="$workdir/postgresql.log"
  echo "=== test suite on SQLite and, at the same time, on PostgreSQL ($url; log: $pglog) ==="
  run_postgresql "$@" >"$pglog" 2>&1 &
  pgpid=$!
  run_sqlite "$@" || status=1
  wait "$pgpid" || status=1
  echo "=== test suite on PostgreSQL ($url) ==="
  cat "$pglog"
  exit $status
fi

if [ "$only" != "postgresql" ]; then
  echo "=== test suite on SQLite ==="
  run_sqlite "$@" || status=1
fi
if [ -n "$url" ]; then
  echo "=== test suite on PostgreSQL ($url) ==="
  run_postgresql "$@" || status=1
fi
exit $status
