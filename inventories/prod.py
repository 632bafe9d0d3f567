"""Production inventory: one Debian 13 / Ubuntu 24.04 server.

    ONEBOX_HOST=203.0.113.7 pyinfra inventories/prod.py deploys/site.py     # or: onebox deploy inventories/prod.py

Settings come from onebox's defaults, then group_data/prod.py beside this directory; secrets
from the environment (ONEBOX_<NAME>) or secrets/prod.env (git-ignored, mode 600). They are
validated here, before pyinfra connects.
"""

import os
from pathlib import Path

from onebox.inventory import settings_for_group

# The first run connects as the provider's root (key login); once deploy_user exists
# you may connect as it instead (ONEBOX_SSH_USER=deploy) and set sshd_permit_root_login = "no".
_user = os.environ.get("ONEBOX_SSH_USER", "root")
_key = os.environ.get("ONEBOX_SSH_KEY")  # None: ssh-agent or ~/.ssh defaults
_known_hosts = os.environ.get("ONEBOX_SSH_KNOWN_HOSTS")  # None: ~/.ssh/known_hosts
_settings = settings_for_group("prod", ssh_user=_user, ssh_key=_key, directory=Path(__file__).resolve().parents[1])

prod = [
    (os.environ.get("ONEBOX_HOST", "203.0.113.7"), {
        "onebox_group": "prod",
        "onebox_settings": _settings,
        "ssh_user": _user,
        **({"ssh_key": _key} if _key else {}),
        **({"ssh_known_hosts_file": _known_hosts} if _known_hosts else {}),
        # Moving sshd to a new port: connect once more on the old one (ONEBOX_SSH_CONNECT_PORT).
        "ssh_port": int(os.environ.get("ONEBOX_SSH_CONNECT_PORT", _settings.sshd_port)),
        "ssh_strict_host_key_checking": "accept-new",
        "_sudo": _user != "root",
    }),
]
