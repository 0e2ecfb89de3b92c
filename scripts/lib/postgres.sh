# A throwaway PostgreSQL server for tests and benchmarks. Source this file,
# then:
#
#   pg_start            # installs Debian's postgresql if missing, runs
#                       # initdb + pg_ctl as the postgres user (they refuse
#                       # root), socket in a new temporary directory, a free
#                       # port on 127.0.0.1; exports PG_URL, PGHOST, PGPORT,
#                       # PGUSER, PG_DIR
#   trap pg_stop EXIT   # stops the server and removes its directory
#
# The database `apikeys` exists and PG_URL points at it, as user postgres
# with trust authentication on loopback and the socket (test use only).

pg_bin_dir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] && { printf '%s\n' "$dir"; return 0; }
    done
    return 1
}

pg_install() {
    pg_bin_dir >/dev/null && return 0
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

pg_free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

pg_start() {
    pg_install
    local bin
    bin=$(pg_bin_dir)
    PG_DIR=$(mktemp -d /tmp/apikeys-pg.XXXXXX)
    chown postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    PGPORT=$(pg_free_port)
    runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PG_DIR -c fsync=on -c max_connections=200" start >/dev/null \
        || { cat "$PG_DIR/server.log" >&2; return 1; }
    PGHOST=127.0.0.1
    PGUSER=postgres
    export PG_DIR PGHOST PGPORT PGUSER
    psql -q -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -c 'CREATE DATABASE apikeys' >/dev/null
    PG_URL="postgres://postgres@127.0.0.1:$PGPORT/apikeys"
    export PG_URL
}

pg_stop() {
    [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
    local bin
    bin=$(pg_bin_dir)
    runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=
}
