#!/bin/sh
# The release step: run once per new version, before it takes traffic
# (app_release_command = ["sh", "scripts/release.sh"]). A non-zero exit
# abandons the release and the old version keeps serving.
set -eu

if [ "${FAIL_RELEASE:-0}" = "1" ]; then
    echo "release: FAIL_RELEASE=1, failing on purpose; the running version stays" >&2
    exit 1
fi

# From the directory holding jobs/, wherever the script is called from.
cd "$(dirname "$0")/.."
exec python -m jobs.migrate
