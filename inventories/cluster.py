"""Example cluster inventory: one manager and its workers as one Docker Swarm (docs/cluster.md).

    ONEBOX_HOST=203.0.113.7 ONEBOX_MANAGER_ADDRESS=10.0.0.7 \\
    ONEBOX_WORKERS=203.0.113.8=10.0.0.8,203.0.113.9=10.0.0.9 \\
        pyinfra inventories/cluster.py deploys/site.py

ONEBOX_HOST is the manager, the server of inventories/prod.py: it keeps nginx, certbot,
PostgreSQL, Redis, backups and the apps. Each ONEBOX_WORKERS entry is `ssh-address` or
`ssh-address=private-address`, the address the nodes use between them (the provider's private
network: swarm's ports open to those addresses only); the manager's is ONEBOX_MANAGER_ADDRESS,
required when the workers have one. ONEBOX_WORKERS must be set: a node the inventory no longer
lists is drained and removed, so an unset variable would empty the swarm (`none`: no workers).
Settings come from group_data/all.py and group_data/prod.py, where docker_live_restore must be False.
"""

import os
import sys

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


_listed = os.environ.get("ONEBOX_WORKERS")
if _listed is None:
    sys.exit("ONEBOX_WORKERS is not set: list the workers (ssh-address[=private-address],...) or set it to `none`; "
             "a worker the inventory does not list is drained and removed from the swarm")
_workers = [entry.partition("=") for entry in _listed.split(",") if entry and _listed != "none"]
if any(private for _, _, private in _workers) and not os.environ.get("ONEBOX_MANAGER_ADDRESS"):
    sys.exit("ONEBOX_MANAGER_ADDRESS is not set but the workers have private addresses: give the manager's "
             "private address too (the nodes reach each other on one network)")
prod = [
    _host(_manager, "manager", os.environ.get("ONEBOX_MANAGER_ADDRESS", _manager)),
    *(_host(address, "worker", private or address) for address, _, private in _workers),
]
check_topology(nodes_of(prod), _settings)  # before any connection
