"""Purge an app taken off the server: `onebox purge INVENTORY --app NAME --yes`, or with pyinfra itself:

    pyinfra inventories/prod.py deploys/purge.py --data onebox_app=NAME --data onebox_purge_confirm=yes

Only an app named in apps_removed, which a deploy has already stopped, can be purged. Its
volumes (PostgreSQL, Redis), its directory (releases, secrets), its backups and its entry in
the server's apps registry are deleted for good. Off-site copies (restic) are not touched.
"""

import sys

from pyinfra import host

from onebox.deploys.tools import install_server_tools
from onebox.inventory import use_private_upload_dir
from onebox.operator_args import APP, PURGE_CONFIRM, Refused, checked_app_name, data_text
from onebox.rollout import purge

settings = host.data.onebox_settings
try:
    NAME = checked_app_name(data_text(host.data, APP))
    CONFIRM = data_text(host.data, PURGE_CONFIRM)
except Refused as refused:
    sys.exit(str(refused))
if not NAME or NAME not in settings.apps_removed:
    sys.exit(f"onebox: purge needs an app named in apps_removed (--data {APP}=NAME; apps_removed is "
             f"{settings.apps_removed!r}); nothing was changed")
if CONFIRM != "yes":
    sys.exit(f"onebox: a purge deletes app {NAME}'s data and backups for good; confirm with "
             f"--data {PURGE_CONFIRM}=yes (or `onebox purge INVENTORY --app {NAME} --yes`); nothing was changed")
use_private_upload_dir(host, settings)
install_server_tools(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments

purge(name=f"Delete app {NAME}'s volumes, directory and backups for good.", app_name=NAME)
