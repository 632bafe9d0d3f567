"""Roll back: `pyinfra inventories/prod.py deploys/rollback.py`.

Switches to the previous release (or ONEBOX_ROLLBACK_TO=<release id>) through the
same health-gated switch a release takes: no build, no pull. Database migrations are
NOT reversed: releases must stay compatible with the schema (expand, then contract).
List the releases with `pyinfra inventories/prod.py exec -- onebox-release releases`.
"""

import os

from pyinfra import host

from onebox.inventory import use_private_upload_dir
from onebox.rollout import rollback

settings = host.data.onebox_settings
use_private_upload_dir(host, settings)

rollback(name="Switch back to the previous release (migrations are not reversed).",
         app_dir=settings.app_dir, to=os.environ.get("ONEBOX_ROLLBACK_TO") or None)
