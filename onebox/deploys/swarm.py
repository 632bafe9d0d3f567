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

from pyinfra import host, inventory, logger
from pyinfra.api import QuoteString, StringCommand, deploy
from pyinfra.operations import python, server

from onebox.cluster import (
    NODE_LABEL,
    Node,
    SwarmNode,
    by_address,
    manager,
    plan,
)
from onebox.facts import SwarmNodes, SwarmState
from onebox.hosts import cluster_nodes
from onebox.server import docker
from onebox.settings import Settings
from onebox.shell import raw_shell

DRAIN_TIMEOUT = 300  # seconds a dropped node's tasks may take to move elsewhere


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
    state = swarm_state(host.name)
    if state not in ("active", "inactive"):  # pending, error, locked: joining again would fail
        # `leave --force` on the one manager would end the swarm for every worker: never advised there.
        otherwise = ("see `docker info` and dockerd's journal (a leave would end the swarm)" if role == "manager"
                     else "`docker swarm leave --force` on it")
        fix = f"`docker swarm unlock` if it is locked, otherwise {otherwise}"
        python.call(name="Refuse a node in an unfinished swarm state.", function=refuse,
                    message=f"{host.name}'s swarm state is {state!r}: run {fix}, then converge again")
        return
    if role == "manager" and state == "inactive":
        # Its stdout is the worker join command, token included: kept out of pyinfra's output.
        server.shell(name="Initialise the swarm on the manager.",
                     commands=[raw_shell(shlex.join(docker.swarm_init(me.address)) + " >/dev/null")])
    if role == "worker" and state == "inactive":
        python.call(name="Join the swarm as a worker (its token read from the manager, never printed).",
                    function=join_worker, me=me, lead=manager(nodes))
    if role == "manager":
        label_and_prune(nodes)


def check_swarm_membership() -> None:
    """Before any operation: a swarm node converged by an inventory that gives it no swarm_role
    (inventories/prod.py run on a cluster's manager) would lose swarm's firewall rules, and its
    workers with them."""
    if not host.data.get("swarm_role") and swarm_state(host.name) == "active":
        raise SystemExit(f"{host.name} is a Docker Swarm node but this inventory gives it no swarm_role: converge "
                         "it with inventories/cluster.py (docs/cluster.md), or run `docker swarm leave --force` on it "
                         "(a manager: after removing its workers) to make it a single server again")


def refuse(message: str) -> None:
    raise RuntimeError(message)


def join_worker(me: Node, lead: Node) -> None:
    """At execute time, after the manager's init: its worker token goes on stdin to this node's
    Engine API, so it appears in no command line, no process list and no pyinfra output."""
    leader = inventory.get_host(lead.name)
    if not leader.connected:
        raise RuntimeError(f"the manager {lead.name} is not in this run (--limit?): a worker joins through it")
    token = run_on(leader, *docker.join_token("worker")).strip()
    body = json.dumps({"ListenAddr": f"{me.address}:2377", "AdvertiseAddr": me.address,
                       "RemoteAddrs": [f"{lead.address}:2377"], "JoinToken": token})
    run_on(host, "curl", "-sS", "--fail-with-body", "--unix-socket", "/var/run/docker.sock", "-H",
           "Content-Type: application/json", "--data-binary", "@-", "http://localhost/swarm/join", stdin=body)


def label_and_prune(nodes: list[Node]) -> None:
    """On the manager: each inventory node labelled and the old, down entry of a machine that joined
    again removed, both read afresh once this run's workers have joined; a node onebox labelled
    that the inventory no longer lists drained (its tasks stop and start on the others), then removed."""
    swarm = swarm_nodes(host.get_fact(SwarmNodes))
    todo, present = plan(nodes, swarm, wanted_labels), by_address(swarm)
    joining = [node.name for node in nodes if node.role == "worker" and inventory.get_host(node.name).connected
               and swarm_state(node.name) == "inactive"]  # a host out of the run (--limit, unreachable) joins nothing
    # A worker neither in the swarm nor joining now (out of the run, or in another swarm) has nothing
    # to label: said here, not an operation that "changes" something on every run.
    absent = [node for node in todo.label if node.role == "worker" and node.address not in present
              and node.name not in joining]
    for node in absent:
        logger.warning(f"{node.name} is not in the swarm and does not join in this run: see its own output "
                       "(a node of another swarm needs `docker swarm leave --force` first)")
    label = [node for node in todo.label if node not in absent]
    if label or todo.stale or joining:
        python.call(name=f"Label the swarm nodes {', '.join(node.name for node in label) or ', '.join(joining)}.",
                    function=settle_nodes, nodes=nodes)
    for entry in todo.drain:
        python.call(name=f"Drain {entry.labels[NODE_LABEL]} (left the inventory), then remove it from the swarm.",
                    function=drain_and_remove, entry=entry)


def swarm_state(name: str) -> str:
    """A host's swarm state at the start of the run (no Docker yet: inactive)."""
    return (inventory.get_host(name).get_fact(SwarmState) or {}).get("LocalNodeState") or "inactive"


def swarm_nodes(described: list[dict]) -> list[SwarmNode]:
    return [SwarmNode.of(entry) for entry in described]


def run_on(target, *argv: str, stdin: str | None = None) -> str:  # noqa: ANN001 - pyinfra's Host
    """A command on `target` at execute time; its stdout, or an error naming it. Output is never
    printed (it may hold the join token); a failure quotes the command's first words and its output
    (Docker's error body, which curl --fail-with-body writes to stdout)."""
    ok, output = target.run_shell_command(StringCommand(*(QuoteString(arg) for arg in argv)), _stdin=stdin,
                                          _sudo=bool(target.data.get("_sudo")))
    if not ok:
        raise RuntimeError(f"{target.name}: {' '.join(argv[:4])}: {output.output[-300:]}")
    return output.stdout


def manager_run(*argv: str) -> str:
    return run_on(host, *argv)


def settle_nodes(nodes: list[Node]) -> None:
    """At execute time, when the workers of this run have joined: labels set and old entries removed
    (planned again from the swarm as it is now). A node that did not join (its own step failed,
    and says why) is left for the next run: the manager's other roles still run."""
    ids = manager_run(*docker.node_ids()).split()
    swarm = swarm_nodes(json.loads(manager_run(*docker.node_inspect(*ids))))
    todo, current = plan(nodes, swarm, wanted_labels), by_address(swarm)
    for node in todo.label:
        if node.address not in current:
            logger.warning(f"no swarm node has the address {node.address} of {node.name}: it did not join")
            continue
        manager_run(*docker.node_add_labels(current[node.address].id, wanted_labels(node)))
    for entry in todo.stale:
        manager_run(*docker.node_rm(entry.id))  # down: nothing to drain


# A task that still holds resources on its node (docker's task states).
LIVE_TASK_STATES = ("New", "Pending", "Assigned", "Accepted", "Preparing", "Ready", "Starting", "Running")


def drain_and_remove(entry: SwarmNode) -> None:
    """Drain: every task's desired state turns Shutdown at once, so wait for their current state to
    follow. A down node cannot stop anything (its tasks were rescheduled): removed at once."""
    name = entry.labels[NODE_LABEL]
    if entry.state != "down":
        manager_run(*docker.node_drain(entry.id))
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while any(line.split(" ", 1)[0] in LIVE_TASK_STATES
                  for line in manager_run(*docker.node_task_states(entry.id)).splitlines()):
            if time.monotonic() > deadline:  # the manager's other roles still run; the next run tries again
                logger.warning(f"{name} still runs tasks {DRAIN_TIMEOUT} s after the drain: it stays in the swarm, "
                               "drained (see `docker node ps`)")
                return
            time.sleep(2)  # pyinfra_cli monkey-patches it for its greenlets
    # --force: the node itself is not in this run to `docker swarm leave` first (docs/cluster.md).
    manager_run(*docker.node_rm(entry.id))
