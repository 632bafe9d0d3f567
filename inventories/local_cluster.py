"""Local targets as one Docker Swarm (docs/cluster.md): the manager is target
$ONEBOX_TARGET_INDEX (default 0, the demo's), the workers the targets in
$ONEBOX_WORKER_INDEXES (default "2,3"), each brought up with `make target`.

    ONEBOX_EXTRA_GROUPS=local_cluster pyinfra inventories/local_cluster.py deploys/site.py

The manager runs everything a single server runs; a worker only the host roles, Docker and
its place in the swarm. The targets share one Docker network, their private network here.
"""

import os

from onebox.cluster import check_topology, nodes_of
from onebox.inventory import settings_for_group
from testbed import target

_manager = target.current()
_workers = [target.Target(int(index)) for index in os.environ.get("ONEBOX_WORKER_INDEXES", "2,3").split(",") if index]
_settings = settings_for_group("local", ssh_key=str(target.SSH_KEY))


def _host(node: target.Target, role: str) -> tuple[str, dict]:
    return (node.ip, {
        "onebox_group": "local",
        "onebox_settings": _settings,
        "swarm_role": role,
        "swarm_address": node.ip,
        "ssh_user": "root",
        "ssh_port": _settings.sshd_port,
        "ssh_key": str(target.SSH_KEY),
        "ssh_known_hosts_file": str(node.known_hosts),
        "ssh_strict_host_key_checking": "accept-new",
    })


local_cluster = [_host(_manager, "manager"), *(_host(worker, "worker") for worker in _workers)]
check_topology(nodes_of(local_cluster), _settings)  # before any connection
