#!/usr/bin/env bash
# TEST-ONLY entrypoint of the onebox-test/postgres:17 stand-in: a small subset of
# the official postgres image's entrypoint, with the same environment contract.
set -Eeuo pipefail

# Like the official image: `docker run IMAGE -c foo=bar` runs `postgres -c foo=bar`.
if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
    # A fresh named volume is owned by root: hand it to postgres, then drop root.
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = 'postgres' ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    # Like the official image: POSTGRES_PASSWORD_FILE names a file (a compose secret).
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ -z "${POSTGRES_PASSWORD:-}" ]; then
        POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
    fi
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo >&2 'onebox-test/postgres: error: POSTGRES_PASSWORD is required to initialise' \
            "an empty database in $PGDATA (as with the official postgres image)"
        exit 1
    fi
    export POSTGRES_USER="${POSTGRES_USER:-postgres}"
    export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    echo "onebox-test/postgres: initialising $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"

    # Password through a file descriptor: never on a command line.
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"

    # Temporary server on the Unix socket only, so nobody connects before init ends.
    pg_ctl --silent --wait --options="-c listen_addresses=''" start
    psql=(psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --username "$POSTGRES_USER")
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        "${psql[@]}" --dbname postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                echo "running $f"
                # shellcheck source=/dev/null  # user-supplied init scripts
                . "$f"
                ;;
            *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *) ;;
        esac
    done
    pg_ctl --silent --wait -m fast stop
    echo 'onebox-test/postgres: init done'
fi

exec "$@"
