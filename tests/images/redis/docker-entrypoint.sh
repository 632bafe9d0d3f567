#!/bin/sh
# TEST-ONLY entrypoint of the onebox-test/redis:8 stand-in, after the official
# redis image's entrypoint.
set -eu

# Like the official image: `docker run IMAGE --appendonly yes` or `IMAGE x.conf`
# runs redis-server with those arguments.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    # A fresh named volume is owned by root: hand it to redis, then drop root.
    find . \! -user redis -exec chown redis:redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
    # The official image compiles protected mode off; Debian's build keeps it on
    # and would refuse connections from other containers. Appended last so it wins
    # over a config file, unless the caller chose a value themselves.
    case " $* " in
        *' --protected-mode '*) ;;
        *) set -- "$@" --protected-mode no ;;
    esac
    # Same as the official image: data files readable by redis only.
    if [ "$(umask)" = '0022' ]; then
        umask 0077
    fi
fi

exec "$@"
