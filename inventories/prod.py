"""Example production inventory: one fresh Debian 13 / Ubuntu 24.04 VPS.

    ONEBOX_HOST=203.0.113.7 pyinfra inventories/prod.py deploys/site.py

Settings come from group_data/all.py and group_data/prod.py; secrets from the
environment (ONEBOX_<NAME>) or secrets/prod.env (git-ignored). They are validated
here, before pyinfra connects.
"""

import os

from onebox.inventory import settings_for_group

_settings = settings_for_group("prod")

prod = [
    (os.environ.get("ONEBOX_HOST", "203.0.113.7"), {
        "onebox_group": "prod",
        # The first run connects as the provider's root (key login); once deploy_user
        # exists you may connect as it instead and set sshd_permit_root_login = "no".
        "ssh_user": os.environ.get("ONEBOX_SSH_USER", "root"),
        "ssh_port": _settings.sshd_port,
        "ssh_strict_host_key_checking": "accept-new",
        "_sudo": os.environ.get("ONEBOX_SSH_USER", "root") != "root",
    }),
]
