#!/usr/bin/env bash
# Print a SQLAlchemy URL of a reachable PostgreSQL for the tests.
# Uses $SMARTCARE_TEST_PG_URL or the local server at 127.0.0.1:5432 when it answers; otherwise installs
# Debian's postgresql if needed, initdb's a throwaway cluster into a temporary folder, starts it on
# port 54329 and prints its URL. Progress goes to stderr; only the URL goes to stdout.
set -euo pipefail
PY=${PY:-.venv/bin/python}
probe() {
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, sqlalchemy as sa
e = sa.create_engine(sys.argv[1], connect_args={"connect_timeout": 3})
with e.connect() as c:
    c.execute(sa.text("select 1"))
PYEOF
}
candidates=("${SMARTCARE_TEST_PG_URL:-}" "postgresql+psycopg://postgres@127.0.0.1:5432/test" \
            "postgresql+psycopg://root@127.0.0.1:5432/test")
# SMARTCARE_TEST_PG_THROWAWAY=1 skips the probes (to exercise the throwaway path).
[ "${SMARTCARE_TEST_PG_THROWAWAY:-0}" = 1 ] && candidates=()
for url in "${candidates[@]}"; do
  [ -n "$url" ] && probe "$url" && { echo "$url"; exit 0; }
done
echo "no PostgreSQL reachable: starting a throwaway cluster" >&2
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DIR=$(mktemp -d /tmp/smartcare-pg.XXXXXX)
chown postgres "$DIR" 2>/dev/null || true
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$BIN/initdb" -D "$DIR/data" -A trust -U postgres >&2
as_pg "$BIN/pg_ctl" -D "$DIR/data" -o "-p 54329 -k $DIR -c listen_addresses=127.0.0.1" -l "$DIR/log" -w start >&2
as_pg "$BIN/createdb" -h 127.0.0.1 -p 54329 -U postgres test >&2
echo "postgresql+psycopg://postgres@127.0.0.1:54329/test"
