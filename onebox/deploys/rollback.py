"""Roll back: `onebox rollback inventories/prod.py [RELEASE_ID]`, or with pyinfra itself:

    pyinfra inventories/prod.py deploys/rollback.py                                           # the previous release
    pyinfra inventories/prod.py deploys/rollback.py --data onebox_rollback_to=20261202-081500-3fa2c1

Switches to the previous release (or the one named by the pyinfra data `onebox_rollback_to`)
through the same health-gated switch a release takes: no build, no pull. Database migrations
are NOT reversed: releases must stay compatible with the schema (expand, then contract).
List the releases with `onebox releases inventories/prod.py`.
"""

import sys

from pyinfra import host

from onebox.deploys.tools import install_server_tools
from onebox.inventory import use_private_upload_dir
from onebox.operator_args import Refused, chosen_app, rollback_target
from onebox.rollout import rollback

# Refuse before any operation is planned: nothing on the server changes.
settings = host.data.onebox_settings
try:
    TO = rollback_target(host.data)
    APP = chosen_app(settings, host.data)  # --data onebox_app=NAME on a server of several apps
except Refused as refused:
    sys.exit(str(refused))

use_private_upload_dir(host, settings)
# The server's tools of this onebox (a server may still have an older one).
install_server_tools(settings)  # type: ignore[call-arg]  # pyinfra types @deploy functions as taking only its own arguments

rollback(name=f"Switch app {APP.app_name} back to the previous release (migrations are not reversed).",
         app_dir=APP.app_dir, to=TO)
