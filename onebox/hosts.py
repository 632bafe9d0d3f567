"""What the deploys read about the host they converge and its place in the inventory: its
distribution, which services ran before this run, the cluster's nodes and this host's share of
the swarm's firewall, its name off-site. Shared by the roles (onebox/deploys/), so that no role imports another."""

from __future__ import annotations

from pyinfra import host, inventory
from pyinfra.facts.server import LinuxDistribution
from pyinfra.facts.systemd import SystemdStatus

from onebox.cluster import Node, firewall, nodes_of, worker_api_ports
from onebox.settings import Settings


def distro() -> tuple[str, str]:
    """(distribution id, version), e.g. ("debian", "13") or ("ubuntu", "24.04")."""
    meta = host.get_fact(LinuxDistribution)["release_meta"]
    return meta.get("ID", "unknown").lower(), meta.get("VERSION_ID", "")


def codename() -> str:
    return host.get_fact(LinuxDistribution)["release_meta"].get("VERSION_CODENAME", "")


def ran_before_this_run(service: str) -> bool:
    """Whether `service` was running when this run began (read while planning). Only such a service
    may be reloaded for new files: one this run starts reads them as it starts, and a reload right
    after that start can reach it before it handles the signal (fail2ban-client then finds no server
    and fails the run, seen on a fresh worker; a Go program's default for SIGHUP is to exit)."""
    unit = f"{service}.service"
    return bool(host.get_fact(SystemdStatus, services=unit).get(unit, False))


def cluster_nodes() -> list[Node]:
    """The swarm nodes the inventory names ([] for a single server)."""
    return nodes_of([(other.name, other.data.dict()) for other in inventory])


def swarm_firewall() -> dict | None:
    """The swarm ports this host opens, and to whom (None: not a swarm node)."""
    return firewall(host.name, cluster_nodes(), worker_api_ports(host.data.onebox_settings.app_list))


def server_name(s: Settings, inventory_name: str) -> str:
    """The server's identity off-site: backup_server_name, else the inventory's host name (which a
    rebuild of the server keeps, unlike its app name, shared by staging and production)."""
    return s.backup_server_name or inventory_name
