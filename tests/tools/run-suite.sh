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

# Both databases at once when the machine has a core for each (each pytest process is bound
# to one core): the PostgreSQL run writes to a log, printed when it ends; TEST_SERIAL=1 runs
# them one after the other instead.
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
