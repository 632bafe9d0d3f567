"""The swarm role: a server of a cluster inventory takes its place in one Docker Swarm
(docs/cluster.md). A server without `swarm_role` is a single server: nothing here runs.

pyinfra runs each operation on every host before the next operation starts, so the order
of this file is the order across the cluster: the manager initialises the swarm, then the
workers join, then the manager labels every node and drains the ones the inventory dropped.
Whether each step is needed is read from facts, so a converged cluster changes nothing.
"""

from __future__ import annotations

import json
import shlex
import time

from pyinfra import host, inventory
from pyinfra.api import QuoteString, StringCommand, deploy
from pyinfra.operations import python, server

from onebox.cluster import NODE_LABEL, Node, firewall, manager, node_address, nodes_of
from onebox.facts import SwarmNodes, SwarmState
from onebox.settings import Settings

DRAIN_TIMEOUT = 300  # seconds a dropped node's tasks may take to move elsewhere


def cluster_nodes() -> list[Node]:
    return nodes_of([(other.name, other.data.dict()) for other in inventory])


def swarm_firewall() -> dict | None:
    """The swarm ports this host opens, and to whom (None: not a swarm node)."""
    return firewall(host.name, cluster_nodes())


def wanted_labels(node: Node) -> dict[str, str]:
    """The node's labels: its inventory name (NODE_LABEL), then the host data `swarm_labels`
    (for placement constraints such as node.labels.zone == a)."""
    extra = inventory.get_host(node.name).data.get("swarm_labels") or {}
    return {NODE_LABEL: node.name, **{str(key): str(value) for key, value in extra.items()}}


@deploy("Join the swarm")
def configure_swarm(s: Settings) -> None:
    role = host.data.get("swarm_role")
    if not role:
        return
    nodes = cluster_nodes()
    me = next(node for node in nodes if node.name == host.name)
    active = (host.get_fact(SwarmState) or {}).get("LocalNodeState") == "active"
    if role == "manager" and not active:
        server.shell(name="Initialise the swarm on the manager.", commands=[shlex.join([
            "docker", "swarm", "init", "--advertise-addr", me.address, "--listen-addr", f"{me.address}:2377"])])
    if role == "worker" and not active:
        python.call(name="Join the swarm as a worker (its token read from the manager, never printed).",
                    function=join_worker, me=me, lead=manager(nodes))
    if role == "manager":
        label_and_prune(nodes)


def join_worker(me: Node, lead: Node) -> None:
    """At execute time, after the manager's init: its worker token goes on stdin to this node's
    Engine API, so it appears in no command line, no process list and no pyinfra output."""
    leader = inventory.get_host(lead.name)
    if not leader.connected:
        raise RuntimeError(f"the manager {lead.name} is not in this run (--limit?): a worker joins through it")
    ok, output = leader.run_shell_command(StringCommand("docker", "swarm", "join-token", "-q", "worker"),
                                          _sudo=bool(leader.data.get("_sudo")))
    if not ok:
        raise RuntimeError(f"the manager {lead.name} gave no join token: {output.stderr[-300:]}")
    body = json.dumps({"ListenAddr": f"{me.address}:2377", "AdvertiseAddr": me.address,
                       "RemoteAddrs": [f"{lead.address}:2377"], "JoinToken": output.stdout.strip()})
    ok, output = host.run_shell_command(
        StringCommand("curl", "-sS", "--fail-with-body", "--unix-socket", "/var/run/docker.sock", "-H",
                      QuoteString("Content-Type: application/json"), "--data-binary", "@-", "http://localhost/swarm/join"),
        _stdin=body, _sudo=bool(host.data.get("_sudo")))
    if not ok:
        raise RuntimeError(f"{me.name} could not join the swarm at {lead.address}:2377: {output.output[-300:]}")


def label_and_prune(nodes: list[Node]) -> None:
    """On the manager: each inventory node labelled; a node onebox labelled that the inventory no
    longer lists is drained (its tasks move to the others), then removed from the swarm."""
    described = host.get_fact(SwarmNodes)
    labels = {node_address(d): d.get("Spec", {}).get("Labels") or {} for d in described}
    unlabelled = [node for node in nodes if any(labels.get(node.address, {}).get(k) != v
                                                for k, v in wanted_labels(node).items())]
    if unlabelled:
        python.call(name=f"Label the swarm nodes {', '.join(node.name for node in unlabelled)}.",
                    function=label_nodes, nodes=unlabelled)
    names = {node.name for node in nodes}
    for described_node in described:
        spec = described_node.get("Spec", {})
        name = (spec.get("Labels") or {}).get(NODE_LABEL)
        if name and name not in names and spec.get("Role") != "manager":  # never the manager itself
            python.call(name=f"Drain {name} (left the inventory), then remove it from the swarm.",
                        function=drain_and_remove, node_id=described_node["ID"], node_name=name)


def manager_run(*argv: str) -> str:
    ok, output = host.run_shell_command(StringCommand(*(QuoteString(arg) for arg in argv)),
                                        _sudo=bool(host.data.get("_sudo")))
    if not ok:
        raise RuntimeError(f"{' '.join(argv)}: {output.stderr[-300:]}")
    return output.stdout


def label_nodes(nodes: list[Node]) -> None:
    """At execute time, when the workers of this run have joined: found by address."""
    ids = manager_run("docker", "node", "ls", "-q").split()
    by_address = {node_address(d): d["ID"] for d in json.loads(manager_run("docker", "node", "inspect", *ids))}
    for node in nodes:
        if node.address not in by_address:
            raise RuntimeError(f"no swarm node has the address {node.address} of {node.name}: did it join?")
        adds = [arg for key, value in wanted_labels(node).items() for arg in ("--label-add", f"{key}={value}")]
        manager_run("docker", "node", "update", *adds, by_address[node.address])


def drain_and_remove(node_id: str, node_name: str) -> None:
    manager_run("docker", "node", "update", "--availability", "drain", node_id)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while manager_run("docker", "node", "ps", node_id, "-q", "--filter", "desired-state=running").strip():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{node_name} still runs tasks {DRAIN_TIMEOUT} s after the drain; it stays in the swarm")
        time.sleep(2)  # pyinfra_cli monkey-patches it for its greenlets
    # --force: the node itself is not in this run to `docker swarm leave` first (docs/cluster.md).
    manager_run("docker", "node", "rm", "--force", node_id)
