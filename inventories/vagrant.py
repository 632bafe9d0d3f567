"""The Vagrant VM (see Vagrantfile): Debian 13 at 192.168.56.10 (group_data/vagrant.py).

The VM needs only the local key, made once by:
`.venv/bin/python -c "from testbed.target import ensure_ssh_key; ensure_ssh_key()"`
then `vagrant up`, then `pyinfra inventories/vagrant.py deploys/site.py`.
"""

from onebox.inventory import settings_for_group
from testbed.target import SSH_KEY, STATE_DIR

_settings = settings_for_group("vagrant", ssh_user="root", ssh_key=str(SSH_KEY))

vagrant = [
    ("192.168.56.10", {
        "onebox_group": "vagrant",
        "onebox_settings": _settings,
        "ssh_user": "root",
        "ssh_port": _settings.sshd_port,
        "ssh_key": str(SSH_KEY),
        "ssh_known_hosts_file": str(STATE_DIR / "known_hosts-vagrant"),
        "ssh_strict_host_key_checking": "accept-new",
    }),
]
