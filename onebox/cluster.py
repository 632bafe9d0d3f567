"""Several servers as one Docker Swarm: the topology an inventory declares, checked before
pyinfra connects (docs/cluster.md).

An inventory lists its servers with the host data `swarm_role` ("manager" or "worker") and
`swarm_address` (the address the nodes reach each other on: a private network when the
provider has one). A server without `swarm_role` is today's single server, untouched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from onebox.contract import SWARM_NODE_LABEL, node_address
from onebox.settings import Settings, SettingsError

ROLES = ("manager", "worker")
# Swarm's own ports (docs.docker.com, overlay network driver, "Requirements"): opened only to
# the other nodes' addresses, never wider (VXLAN on 4789 is unauthenticated).
MANAGER_TCP_PORTS = (2377,)  # the control plane: managers only
NODE_TCP_PORTS = (7946,)
NODE_UDP_PORTS = (7946, 4789)
NODE_LABEL = SWARM_NODE_LABEL  # names each node after its inventory host, to find one the inventory dropped


@dataclass(frozen=True)
class Node:
    name: str  # the inventory host name
    role: str
    address: str


def nodes_of(hosts: list[tuple[str, dict]]) -> list[Node]:
    """The swarm nodes of an inventory's (name, data) hosts; [] when none has `swarm_role`."""
    return [Node(name, data["swarm_role"], str(data.get("swarm_address", name)))
            for name, data in hosts if data.get("swarm_role")]


def check_topology(nodes: list[Node], settings: Settings) -> None:
    """One manager, known roles, distinct IP addresses, and settings swarm can run with."""
    if not nodes:
        return
    for node in nodes:
        if node.role not in ROLES:
            raise SettingsError(f"onebox: host {node.name}: swarm_role is {node.role!r}; use 'manager' or 'worker'")
        try:
            version = ipaddress.ip_address(node.address).version
        except ValueError:
            raise SettingsError(f"onebox: host {node.name}: swarm_address {node.address!r} is not an IP address; "
                                "give the address the other nodes reach it on") from None
        if version != 4:  # swarm's addr:port arguments would need brackets, untested here
            raise SettingsError(f"onebox: host {node.name}: swarm_address {node.address} is IPv6; onebox forms "
                                "swarms over IPv4 only: give the node's IPv4 (private) address")
    managers = [node.name for node in nodes if node.role == "manager"]
    if len(managers) != 1:
        raise SettingsError(f"onebox: the inventory has {len(managers)} swarm managers ({', '.join(managers) or 'none'});"
                            " give exactly one host swarm_role = 'manager'")
    addresses = [node.address for node in nodes]
    if len(set(addresses)) != len(addresses):
        raise SettingsError(f"onebox: two swarm nodes share one swarm_address ({addresses}); give each its own")
    if settings.docker_live_restore:
        raise SettingsError("onebox: docker_live_restore is True, which Docker refuses in swarm mode "
                            "(\"--live-restore daemon configuration is incompatible with swarm mode\"). "
                            "Set docker_live_restore = False for the cluster's group: a dockerd restart "
                            "then restarts that node's containers (docs/cluster.md)")
    if any(node.role == "worker" for node in nodes):
        for app in settings.app_list:
            if app.api_placement == "workers" and app.app_image_source == "build":
                raise SettingsError(
                    f"onebox: app {app.app_name}: api_placement is 'workers' but app_image_source is 'build', which "
                    "builds the image on the manager, where the workers cannot get it. Set app_image_source = "
                    "'tarball' (built on this machine, loaded onto every node) or 'registry', or api_placement = "
                    "'manager' to keep the API on the manager")


def api_nodes(app: Settings, nodes: list[Node]) -> list[str]:
    """The addresses of the nodes that run an app's API replicas: its workers, or none (the manager
    runs it in compose, as a single server does)."""
    if app.api_placement != "workers":
        return []
    return [node.address for node in nodes if node.role == "worker"]


def manager(nodes: list[Node]) -> Node:
    return next(node for node in nodes if node.role == "manager")


@dataclass(frozen=True)
class SwarmNode:
    """What onebox reads of one `docker node inspect` entry."""

    id: str
    address: str
    state: str  # "ready", "down", ...
    role: str
    labels: dict = field(default_factory=dict)

    @classmethod
    def of(cls, described: dict) -> SwarmNode:
        spec = described.get("Spec", {})
        return cls(described["ID"], node_address(described), described.get("Status", {}).get("State", ""),
                   spec.get("Role", ""), spec.get("Labels") or {})


def by_address(swarm: list[SwarmNode]) -> dict[str, SwarmNode]:
    """The node that stands for each address: a ready one over a down one (a machine re-imaged
    and joined again leaves its old entry down at the same address)."""
    return {node.address: node for node in sorted(swarm, key=lambda node: node.state == "ready")}


@dataclass
class Plan:
    label: list[Node]  # inventory nodes whose labels are missing or differ
    drain: list[SwarmNode]  # nodes onebox labelled that the inventory no longer has
    stale: list[SwarmNode]  # down entries of an address a ready node has now


def plan(nodes: list[Node], swarm: list[SwarmNode], wanted: Callable[[Node], dict[str, str]]) -> Plan:
    """What the manager changes, from the inventory and the swarm as it is. A node is found by its
    address, so renaming a host relabels its node rather than draining it; a manager is never
    drained or removed."""
    current, addresses = by_address(swarm), {node.address for node in nodes}
    listed = {node.name: node.address for node in nodes}
    label = [node for node in nodes if node.address not in current
             or any(current[node.address].labels.get(key) != value for key, value in wanted(node).items())]
    drain = [entry for entry in swarm if entry.role != "manager" and entry.address not in addresses
             and entry.labels.get(NODE_LABEL) and not still_listed(entry, listed, current)]
    stale = [entry for entry in swarm if entry.role != "manager" and entry.state != "ready"
             and entry.address in addresses and current[entry.address] is not entry and current[entry.address].state == "ready"]
    return Plan(label, drain, stale)


def still_listed(entry: SwarmNode, listed: dict[str, str], current: dict[str, SwarmNode]) -> bool:
    """Whether the inventory host an entry's label names is this entry. Its name alone keeps it (a
    node may report another address than the inventory gives), unless that host is in the swarm
    at its inventory address as another node: then this is a replaced machine's old entry."""
    address = listed.get(entry.labels[NODE_LABEL])
    return address is not None and (address not in current or current[address] is entry)


def peers(name: str, nodes: list[Node]) -> list[str]:
    """The addresses of every other node: the only sources the swarm ports accept."""
    return [node.address for node in nodes if node.name != name]


def firewall(name: str, nodes: list[Node], api_ports: list[int] | None = None) -> dict | None:
    """What the nftables template opens for swarm on host `name`: its ports, to its peers only;
    on a worker, the API replicas' host-mode ports (`api_ports`) to the manager only."""
    me = next((node for node in nodes if node.name == name), None)
    if me is None:
        return None
    tcp = (*MANAGER_TCP_PORTS, *NODE_TCP_PORTS) if me.role == "manager" else NODE_TCP_PORTS
    # IPv4 only: check_topology refuses IPv6 swarm addresses.
    rules = {"peers": peers(name, nodes), "tcp": list(tcp), "udp": list(NODE_UDP_PORTS)}
    if me.role == "worker" and api_ports:
        rules.update(api_ports=sorted(api_ports), manager=manager(nodes).address)
    return rules


def worker_api_ports(apps: list[Settings]) -> list[int]:
    """The slot ports the API replicas of these apps publish on each worker."""
    return [port for app in apps if app.api_placement == "workers" for port in app.slot_ports]
