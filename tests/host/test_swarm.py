"""A node of a cluster inventory (docs/cluster.md): in the swarm in its role, Docker in a mode
swarm runs with, and swarm's ports open to the other nodes only (skipped on a single server)."""

from __future__ import annotations

import json
import re

import pytest

from onebox.cluster import NODE_LABEL, node_address


@pytest.fixture(autouse=True)
def _swarm_node(swarm_role: str) -> None:
    if swarm_role == "none":
        pytest.skip("a single server (--onebox-swarm-role none)")


def swarm(host) -> dict:
    return json.loads(host.check_output("docker info --format '{{json .Swarm}}'"))


def test_the_node_is_in_the_swarm_in_its_role(host, swarm_role: str) -> None:
    info = swarm(host)
    assert info["LocalNodeState"] == "active", info
    assert info["ControlAvailable"] is (swarm_role == "manager")
    assert info["RemoteManagers"], "a node must know its manager"
    assert json.loads(host.check_output("docker info --format '{{json .LiveRestoreEnabled}}'")) is False


def test_the_manager_sees_every_onebox_node_ready_and_labelled(host, swarm_role: str) -> None:
    if swarm_role != "manager":
        pytest.skip("only a manager lists the nodes")
    nodes = json.loads(host.check_output("docker node inspect $(docker node ls -q)"))
    assert len(nodes) == swarm(host)["Nodes"]
    for node in nodes:
        assert NODE_LABEL in node["Spec"].get("Labels", {}), f"{node['ID']} was not joined by onebox"
        assert (node["Status"]["State"], node["Spec"]["Availability"]) == ("ready", "active"), node["Status"]


def test_swarm_ports_are_open_to_the_other_nodes_only(host, swarm_role: str) -> None:
    table = host.check_output("nft list table inet onebox")
    # nft prints a set of one element as the element: "tcp dport 7946".
    rules = re.findall(r"ip6? saddr (?:\{ )?([^}]+?)(?: \})? (tcp|udp) dport (?:\{ )?([0-9, ]+?)(?: \})? accept", table)
    opened = {(proto, int(port)) for _, proto, ports in rules for port in ports.split(",")}
    wanted = {("tcp", 7946), ("udp", 7946), ("udp", 4789)} | ({("tcp", 2377)} if swarm_role == "manager" else set())
    assert opened == wanted, table
    info = swarm(host)
    sources = {frozenset(address.strip() for address in peers.split(",")) for peers, _, _ in rules}
    assert len(sources) == 1, table  # every swarm port to the same peers
    (peers,) = sources
    if swarm_role == "manager":  # exactly the other nodes
        described = json.loads(host.check_output("docker node inspect $(docker node ls -q)"))
        others = {node_address(node) for node in described} - {info["NodeAddr"]}
        assert peers == others, (peers, others)
    else:  # the manager among them, not this node
        assert {manager["Addr"].rsplit(":", 1)[0] for manager in info["RemoteManagers"]} <= peers
        assert info["NodeAddr"] not in peers


def test_a_worker_s_containers_gain_no_privileges_and_the_api_has_no_capabilities(host, swarm_role: str) -> None:
    # `docker service create` has no flag for no-new-privileges: the worker's daemon sets it for all (issue 29).
    if swarm_role != "worker":
        pytest.skip("only the workers run the API's replicas")
    assert json.loads(host.file("/etc/docker/daemon.json").content_string)["no-new-privileges"] is True
    for container in host.check_output("docker ps -q --filter label=onebox.release").split():
        item = json.loads(host.check_output(f"docker inspect {container}"))[0]
        assert item["HostConfig"]["CapDrop"] == ["ALL"], container
        status = host.check_output(f"cat /proc/{item['State']['Pid']}/status")
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE), container
