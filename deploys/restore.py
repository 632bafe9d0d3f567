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
import re
import sys

from pyinfra import host
from pyinfra.operations import server

from deploys.backup import SCRIPT, configure_backups

CONFIRM = os.environ.get("ONEBOX_RESTORE_CONFIRM", "")
SOURCE = os.environ.get("ONEBOX_RESTORE_FROM", "")
NAME = os.environ.get("ONEBOX_RESTORE_NAME", "")


def refusal(confirm: str, source: str, name: str, offsite_configured: bool | None) -> str | None:
    """Why this restore must not run, or None. Checked before anything on the server changes."""
    if confirm != "yes":
        return ("onebox: a restore REPLACES the server's PostgreSQL database and Redis data with a backup "
                "(a safety dump of the current data is taken first). Nothing was changed. To go ahead, set "
                "ONEBOX_RESTORE_CONFIRM=yes and ONEBOX_RESTORE_FROM=local|offsite "
                "(optionally ONEBOX_RESTORE_NAME=<name from `onebox-backup list`>).")
    if source not in ("local", "offsite"):
        return (f"onebox: ONEBOX_RESTORE_FROM must be 'local' or 'offsite' (got {source!r}); "
                "nothing was changed.")
    if name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}", name):
        return f"onebox: ONEBOX_RESTORE_NAME {name!r} is not a backup name; nothing was changed."
    if source == "offsite" and offsite_configured is False:
        return ("onebox: ONEBOX_RESTORE_FROM=offsite but backup_restic_repository is not set "
                "(with ONEBOX_BACKUP_RESTIC_PASSWORD); nothing was changed.")
    return None


# Refuse before any operation is planned: nothing on the server changes.
_refused = refusal(CONFIRM, SOURCE, NAME, None)
if _refused:
    sys.exit(_refused)

settings = host.data.onebox_settings
_refused = refusal(CONFIRM, SOURCE, NAME, bool(settings.backup_restic_repository))
if _refused:
    sys.exit(_refused)

# The script and its configuration (a fresh server may have neither, or older ones).
configure_backups(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments
server.shell(
    name=f"Restore the data from the {SOURCE} backup {NAME or '(latest)'}: safety dump, app stopped, "
         "PostgreSQL and Redis replaced, app started.",
    commands=[f"{SCRIPT} restore --from {SOURCE}" + (f" --name {NAME}" if NAME else "")],
)
