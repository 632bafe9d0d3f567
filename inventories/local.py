"""The local VPS-like target (`make target`): a Debian 13 container on this machine.

Like inventories/prod.py, it connects as root by default; ONEBOX_SSH_USER=deploy
connects as the deploy user with sudo (the path the README recommends once it exists).
"""

import os

from onebox.inventory import settings_for_group
from testbed import target

_target = target.current()
_user = os.environ.get("ONEBOX_SSH_USER", "root")
_settings = settings_for_group("local", ssh_user=_user, ssh_key=str(target.SSH_KEY))

local = [
    (_target.ip, {
        "onebox_group": "local",
        "onebox_settings": _settings,
        "ssh_user": _user,
        "ssh_port": _settings.sshd_port,
        "ssh_key": str(target.SSH_KEY),
        "ssh_known_hosts_file": str(_target.known_hosts),
        "ssh_strict_host_key_checking": "accept-new",
        "_sudo": _user != "root",
    }),
]
