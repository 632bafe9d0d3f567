"""A backup now: `onebox backup now inventories/prod.py`, or `pyinfra inventories/prod.py deploys/backup_now.py`.

Runs `onebox-backup dump --label manual` on the server under the deploy lock (never halfway
through a release or a restore), detached like a release. The backup is kept like any other
(retention applies at the timer's next run) and, with an off-site repository, uploaded by that
run. List the backups with `onebox backup list inventories/prod.py`.
"""

import sys

from pyinfra import host
from pyinfra.operations import server

from onebox import server_calls
from onebox.deploys.tools import install_server_tools
from onebox.inventory import use_private_upload_dir
from onebox.operator_args import Refused, chosen_app

LABEL = "manual"

settings = host.data.onebox_settings
try:
    APP = chosen_app(settings, host.data)  # --data onebox_app=NAME on a server of several apps
except Refused as refused:
    sys.exit(str(refused))
if not APP.backup_enabled:  # the dump would do nothing
    sys.exit("onebox: backup_enabled is False in the settings, so no backup is taken; nothing was changed.")
use_private_upload_dir(host, settings)
# The server's tools of this onebox (a server may still have an older one).
install_server_tools(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments

server.shell(
    name=f"Back up app {APP.app_name}'s PostgreSQL and Redis now (label {LABEL}), under its deploy lock.",
    commands=[server_calls.as_shell(server_calls.backup_now(APP.app_dir, APP.files.backup_config, LABEL))],
)
