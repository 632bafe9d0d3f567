"""Maintenance mode: `onebox maintenance on|off inventories/prod.py [--message TEXT]`, or with pyinfra itself:

    pyinfra inventories/prod.py deploys/maintenance.py --data onebox_maintenance=on \\
        --data 'onebox_maintenance_message=Back at 14:00 UTC'
    pyinfra inventories/prod.py deploys/maintenance.py --data onebox_maintenance=off

Runs `onebox-release maintenance on [--message TEXT]` (nginx answers 503 with the maintenance
page while it is on) or `onebox-release maintenance off` on the server. The message is one
line of at most 500 printable characters; anything else is refused before any operation.
"""

import sys

from pyinfra import host

from onebox.deploys.tools import install_server_tools
from onebox.inventory import use_private_upload_dir
from onebox.operator_args import Refused, chosen_app, maintenance_request
from onebox.rollout import maintenance

# Refuse before any operation is planned: nothing on the server changes.
settings = host.data.onebox_settings
try:
    ON, MESSAGE = maintenance_request(host.data)
    APP = chosen_app(settings, host.data)  # --data onebox_app=NAME on a server of several apps
except Refused as refused:
    sys.exit(str(refused))

use_private_upload_dir(host, settings)
# The server's tools of this onebox (a server may still have an older one).
install_server_tools(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments

maintenance(
    name=f"Turn maintenance mode of app {APP.app_name} on (nginx answers 503)." if ON
    else f"Turn maintenance mode of app {APP.app_name} off.",
    app_dir=APP.app_dir, on=ON, message=MESSAGE,
)
