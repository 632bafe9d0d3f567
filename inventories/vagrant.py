"""The Vagrant VM (see Vagrantfile): Debian 13 at 192.168.56.10, with local settings.

The VM needs only the local key, made once by:
`.venv/bin/python -c "from onebox.local.target import ensure_ssh_key; ensure_ssh_key()"`
then `vagrant up`, then `pyinfra inventories/vagrant.py deploys/site.py`.
"""

from onebox.inventory import settings_for_group
from onebox.local.target import SSH_KEY, STATE_DIR

_settings = settings_for_group("local")

local = [
    ("192.168.56.10", {
        "onebox_group": "local",
        "ssh_user": "root",
        "ssh_port": _settings.sshd_port,
        "ssh_key": str(SSH_KEY),
        "ssh_known_hosts_file": str(STATE_DIR / "known_hosts-vagrant"),
        "ssh_strict_host_key_checking": "accept-new",
    }),
]
