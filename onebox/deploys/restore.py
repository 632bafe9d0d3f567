"""Restore the app's data from a backup, in one command:

    onebox restore inventories/prod.py --from local|offsite [--name NAME] --yes

or with pyinfra itself, the same arguments as pyinfra data:

    pyinfra inventories/prod.py deploys/restore.py --data onebox_restore_confirm=yes --data onebox_restore_from=local \\
        [--data onebox_restore_name=NAME | --data onebox_restore_to=TIME]

onebox_restore_from: local (the server's backup_dir) or offsite (the restic repository,
e.g. on a fresh server); onebox_restore_name: a backup's name from `onebox backup list`
(default: the latest that is not a safety dump); onebox_restore_to: point-in-time recovery
(backup_pitr_enabled) of PostgreSQL to an ISO 8601 time with its zone, or "latest" (the last
archived WAL), from pgBackRest's repository on the server (local) or off-site. On the server, `onebox-backup restore`
takes a safety dump of the current data, stops the API and workers, replaces the
PostgreSQL database and the Redis data, and starts the app again once the data is back (also
when the restore fails). It runs detached on the server, under the deploy lock, like a release:
a lost SSH session or a Ctrl-C does not stop it halfway.
"""

from __future__ import annotations

import sys

from pyinfra import host
from pyinfra.operations import server

from onebox import pitr, server_calls
from onebox.deploys.backup import configure_backups, restore_refusal
from onebox.deploys.tools import install_server_tools
from onebox.inventory import use_private_upload_dir
from onebox.operator_args import (
    RESTORE_CONFIRM,
    RESTORE_FROM,
    RESTORE_NAME,
    RESTORE_TO,
    Refused,
    chosen_app,
    data_text,
    recovery_target_problem,
)

# Refuse before any operation is planned: nothing on the server changes.
settings = host.data.onebox_settings
try:
    CONFIRM, SOURCE, NAME, TO = (data_text(host.data, key)
                                 for key in (RESTORE_CONFIRM, RESTORE_FROM, RESTORE_NAME, RESTORE_TO))
    APP = chosen_app(settings, host.data)  # --data onebox_app=NAME on a server of several apps
except Refused as refused:
    sys.exit(str(refused))

_refused = restore_refusal(CONFIRM, SOURCE, NAME, bool(APP.backup_restic_repository))
_problem = recovery_target_problem(NAME, TO)
if not _refused and _problem:
    _refused = f"onebox: {_problem}; nothing was changed."
if not _refused and TO and not pitr.enabled(APP):
    _refused = (f"onebox: --to (onebox_restore_to) is point-in-time recovery, which is off for app {APP.app_name}: set "
                "backup_pitr_enabled = True (it covers from then on), or restore a dump with --name; nothing was changed.")
if _refused:
    sys.exit(_refused)
use_private_upload_dir(host, settings)
# The server's tools of this onebox (a server may still have an older one).
install_server_tools(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments

# The script and its configuration (a fresh server may have neither, or older ones).
configure_backups(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments
server.shell(
    name=(f"Restore app {APP.app_name}'s PostgreSQL to {TO} ({SOURCE} point-in-time): safety dump, app stopped, "
          "PostgreSQL recovered, app started (Redis and other apps untouched)." if TO else
          f"Restore app {APP.app_name}'s data from the {SOURCE} backup {NAME or '(latest)'}: safety dump, app "
          "stopped, PostgreSQL and Redis replaced, app started (no other app is touched)."),
    # Under the app's deploy lock: a release never starts halfway through a restore, nor the reverse.
    # Detached on the server like a release (`locked` relays its log): a dropped connection or a Ctrl-C
    # here stops the relay only; the restore runs to its end and starts the app again.
    commands=[server_calls.as_shell(server_calls.restore(APP.app_dir, APP.files.backup_config, SOURCE, NAME or "",
                                                         TO or ""))],
)
