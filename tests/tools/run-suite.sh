#!/usr/bin/env bash
# Run the test suite on SQLite, then on a throwaway PostgreSQL on loopback.
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

if [ "$only" != "postgresql" ]; then
  echo "=== test suite on SQLite ==="
  env -u TEST_DATABASE_URL "$py" -m pytest -p no:cacheprovider "$@" || status=1
fi

if [ "$only" != "sqlite" ]; then
  # Pick a free loopback port so parallel runs and a developer's own server never clash.
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if url=$(tests/tools/postgres.sh start "$workdir/data" "$port"); then
    echo "=== test suite on PostgreSQL ($url) ==="
    TEST_DATABASE_URL="$url" "$py" -m pytest -p no:cacheprovider "$@" || status=1
  else
    echo "could not start PostgreSQL" >&2
    status=1
  fi
fi
exit $status
