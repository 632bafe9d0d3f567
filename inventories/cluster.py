"""Example cluster inventory: one manager and its workers as one Docker Swarm (docs/cluster.md).

    ONEBOX_HOST=203.0.113.7 ONEBOX_WORKERS=203.0.113.8=10.0.0.8,203.0.113.9=10.0.0.9 \\
        pyinfra inventories/cluster.py deploys/site.py

ONEBOX_HOST is the manager, the server of inventories/prod.py: it keeps nginx, certbot,
PostgreSQL, Redis, backups and the apps. Each ONEBOX_WORKERS entry is `ssh-address` or
`ssh-address=private-address`, the address the nodes use between them (the provider's private
network: swarm's ports open to those addresses only). Give the manager's as ONEBOX_MANAGER_ADDRESS
when it has one. Settings come from group_data/all.py and group_data/prod.py, where
docker_live_restore must be False.
"""

import os

from onebox.cluster import check_topology, nodes_of
from onebox.inventory import settings_for_group

_user = os.environ.get("ONEBOX_SSH_USER", "root")
_key = os.environ.get("ONEBOX_SSH_KEY")
_settings = settings_for_group("prod", ssh_user=_user, ssh_key=_key)
_manager = os.environ.get("ONEBOX_HOST", "203.0.113.7")


def _host(address: str, role: str, private: str) -> tuple[str, dict]:
    return (address, {
        "onebox_group": "prod",
        "onebox_settings": _settings,
        "swarm_role": role,
        "swarm_address": private,
        "ssh_user": _user,
        **({"ssh_key": _key} if _key else {}),
        "ssh_port": int(os.environ.get("ONEBOX_SSH_CONNECT_PORT", _settings.sshd_port)),
        "ssh_strict_host_key_checking": "accept-new",
        "_sudo": _user != "root",
    })


_workers = [entry.partition("=") for entry in os.environ.get("ONEBOX_WORKERS", "").split(",") if entry]
prod = [
    _host(_manager, "manager", os.environ.get("ONEBOX_MANAGER_ADDRESS", _manager)),
    *(_host(address, "worker", private or address) for address, _, private in _workers),
]
check_topology(nodes_of(prod), _settings)  # before any connection
