#!/bin/sh
# managed by onebox: the entrypoint shim of an app container (app_secrets_in_env = True).
# Exports each compose secret (/run/secrets/<NAME>) as the variable <NAME>, then runs the
# image's own entrypoint and command. Values never appear in `docker inspect`.
newline='
'
for file in /run/secrets/*; do
    [ -f "$file" ] || continue
    name=${file##*/}
    case $name in *[!A-Za-z0-9_]* | [0-9]*) continue ;; esac
    # The whole file, not its first line: a PEM key or JSON credentials span lines. Read with the
    # shell's own `read` (the image may have no cat), lines joined back; only the file's final
    # newline is dropped. A last line without a newline ends the loop yet is in $line.
    value= separator= line=
    while IFS= read -r line; do
        value=$value$separator$line
        separator=$newline
    done < "$file"
    [ -z "$line" ] || value=$value$separator$line
    export "$name=$value"
done
exec "$@"
