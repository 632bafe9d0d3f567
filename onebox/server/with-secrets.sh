#!/bin/sh
# managed by onebox: the entrypoint shim of an app container (app_secrets_in_env = True).
# Exports each compose secret (/run/secrets/<NAME>) as the variable <NAME>, then runs the
# image's own entrypoint and command. Values never appear in `docker inspect`.
for file in /run/secrets/*; do
    [ -f "$file" ] || continue
    name=${file##*/}
    case $name in *[!A-Za-z0-9_]* | [0-9]*) continue ;; esac
    value=
    IFS= read -r value < "$file" || true
    export "$name=$value"
done
exec "$@"
