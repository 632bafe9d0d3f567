"""Restore the app's data from a backup, in one command:

    ONEBOX_RESTORE_CONFIRM=yes ONEBOX_RESTORE_FROM=local pyinfra inventories/prod.py deploys/restore.py

ONEBOX_RESTORE_FROM: local (the server's backup_dir) or offsite (the restic repository,
e.g. on a fresh server); ONEBOX_RESTORE_NAME: a backup's name from `onebox-backup list`
(default: the latest that is not a safety dump). On the server, `onebox-backup restore`
takes a safety dump of the current data, stops the API and workers, replaces the
PostgreSQL database and the Redis data, and starts the app again once the data is back.
"""

from __future__ import annotations

import os
import sys

from pyinfra import host
from pyinfra.operations import server

from deploys.backup import SCRIPT, configure_backups, restore_refusal
from onebox.inventory import use_private_upload_dir

CONFIRM = os.environ.get("ONEBOX_RESTORE_CONFIRM", "")
SOURCE = os.environ.get("ONEBOX_RESTORE_FROM", "")
NAME = os.environ.get("ONEBOX_RESTORE_NAME", "")


# Refuse before any operation is planned: nothing on the server changes.
_refused = restore_refusal(CONFIRM, SOURCE, NAME, None)
if _refused:
    sys.exit(_refused)

settings = host.data.onebox_settings
use_private_upload_dir(host, settings)
_refused = restore_refusal(CONFIRM, SOURCE, NAME, bool(settings.backup_restic_repository))
if _refused:
    sys.exit(_refused)

# The script and its configuration (a fresh server may have neither, or older ones).
configure_backups(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments
server.shell(
    name=f"Restore the data from the {SOURCE} backup {NAME or '(latest)'}: safety dump, app stopped, "
         "PostgreSQL and Redis replaced, app started.",
    # Under the deploy lock: a release never starts halfway through a restore, nor the reverse.
    commands=[f"/usr/local/sbin/onebox-release locked -- {SCRIPT} restore --from {SOURCE}" + (f" --name {NAME}" if NAME else "")],
)
