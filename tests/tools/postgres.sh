#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL on loopback for the test suite.
#   tests/tools/postgres.sh start DIR PORT   -> prints the SQLAlchemy URL
#   tests/tools/postgres.sh createdb PORT NAME  -> another database on that server, its URL
#   tests/tools/postgres.sh stop DIR
# PostgreSQL refuses to run as root, so the cluster belongs to the postgres user.
set -euo pipefail

action=${1:?start|stop}
dir=${2:?data directory or port}
port=${3:-55432}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/pg_ctl" ] || { echo "PostgreSQL server binaries not found" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 >"$dir.initdb.log" 2>&1 \
        || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-h 127.0.0.1 -p $port -k $dir -F -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname='comptoir_test'" | grep -q 1 \
      || as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres comptoir_test
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/comptoir_test"
    ;;
  createdb)
    port=${2:?port}
    name=${3:?database name}
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$name"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/$name"
    ;;
  stop)
    if [ -f "$dir/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$dir" -m immediate stop >/dev/null || true
    fi
    ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
