"""A cluster inventory's topology is checked before pyinfra connects; the firewall opens
swarm's ports to the other nodes only (onebox.cluster, the nftables template)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_settings import valid

from onebox.cluster import (
    NODE_LABEL,
    Node,
    SwarmNode,
    api_nodes,
    check_topology,
    firewall,
    node_address,
    nodes_of,
    plan,
    worker_api_ports,
)
from onebox.render import render
from onebox.settings import SettingsError, validate_settings
from tests.unit.conftest import ROOT

CLUSTER = [("10.0.0.1", {"swarm_role": "manager"}), ("w1", {"swarm_role": "worker", "swarm_address": "10.0.0.2"}),
           ("w2", {"swarm_role": "worker", "swarm_address": "10.0.0.3"})]


@pytest.fixture
def settings():
    return validate_settings(valid(docker_live_restore=False, app_image_source="tarball"))


def test_hosts_without_a_role_are_no_cluster_and_need_nothing(settings) -> None:
    assert nodes_of([("203.0.113.7", {"ssh_user": "root"})]) == []
    check_topology([], validate_settings(valid()))  # live-restore on is fine for a single server


def test_a_valid_cluster_passes_and_addresses_default_to_the_host_name(settings) -> None:
    nodes = nodes_of(CLUSTER)
    assert nodes[0] == Node("10.0.0.1", "manager", "10.0.0.1")
    check_topology(nodes, settings)


@pytest.mark.parametrize(("hosts", "named"), [
    ([("a", {"swarm_role": "worker", "swarm_address": "10.0.0.1"})], "0 swarm managers"),
    ([("10.0.0.1", {"swarm_role": "manager"}), ("10.0.0.2", {"swarm_role": "manager"})], "2 swarm managers"),
    ([("10.0.0.1", {"swarm_role": "boss"})], "swarm_role is 'boss'"),
    ([("vps1", {"swarm_role": "manager"})], "swarm_address 'vps1' is not an IP address"),
    ([("fd00::1", {"swarm_role": "manager"})], "swarm_address fd00::1 is IPv6"),
    ([("10.0.0.1", {"swarm_role": "manager"}), ("w", {"swarm_role": "worker", "swarm_address": "10.0.0.1"})],
     "share one swarm_address"),
])
def test_a_bad_topology_is_refused_naming_the_setting(settings, hosts, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        check_topology(nodes_of(hosts), settings)


def test_live_restore_is_refused_for_a_cluster_with_the_fix() -> None:
    with pytest.raises(SettingsError, match="docker_live_restore = False"):
        check_topology(nodes_of(CLUSTER), validate_settings(valid()))


def test_an_api_on_the_workers_built_on_the_manager_is_refused_with_the_fix() -> None:
    built_there = validate_settings(valid(docker_live_restore=False))  # app_image_source = "build"
    with pytest.raises(SettingsError, match="app_image_source = 'tarball'.*api_placement = 'manager'"):
        check_topology(nodes_of(CLUSTER), built_there)
    check_topology(nodes_of(CLUSTER[:1]), built_there)  # no workers: the API stays on the manager
    check_topology(nodes_of(CLUSTER), validate_settings(valid(docker_live_restore=False, api_placement="manager")))


def test_the_api_runs_on_the_workers_unless_placed_on_the_manager(settings) -> None:
    assert api_nodes(settings, nodes_of(CLUSTER)) == ["10.0.0.2", "10.0.0.3"]
    assert api_nodes(validate_settings(valid(api_placement="manager")), nodes_of(CLUSTER)) == []
    assert worker_api_ports([settings]) == list(settings.slot_ports)


def test_a_worker_lets_only_the_manager_reach_the_api_replicas(settings) -> None:
    worker = render("nftables/nftables.conf.j2", s=settings,
                    swarm=firewall("w1", nodes_of(CLUSTER), worker_api_ports([settings])))
    ports = ", ".join(str(port) for port in settings.slot_ports)
    assert (f"ct original proto-dst {{ {ports} }} ip saddr != 10.0.0.1 drop") in worker
    assert "chain forward" not in render("nftables/nftables.conf.j2", s=settings, swarm=firewall("w1", nodes_of(CLUSTER)))
    manager = render("nftables/nftables.conf.j2", s=settings,
                     swarm=firewall("10.0.0.1", nodes_of(CLUSTER), worker_api_ports([settings])))
    assert "chain forward" not in manager  # the manager publishes no API port
    nft = subprocess.run(["nft", "-c", "-f", "-"], input=worker, capture_output=True, text=True, check=False)
    if nft.returncode == 127 or "Operation not permitted" in nft.stderr:
        pytest.skip("nft cannot check rules here")
    assert nft.returncode == 0, nft.stderr


def test_the_firewall_opens_swarm_ports_to_the_peers_only(settings, tmp_path) -> None:
    nodes = nodes_of(CLUSTER)
    manager = render("nftables/nftables.conf.j2", s=settings, swarm=firewall("10.0.0.1", nodes))
    assert "ip saddr { 10.0.0.2, 10.0.0.3 } tcp dport { 2377, 7946 } accept" in manager
    assert "ip saddr { 10.0.0.2, 10.0.0.3 } udp dport { 7946, 4789 } accept" in manager
    assert "ip6 saddr" not in manager
    worker = render("nftables/nftables.conf.j2", s=settings, swarm=firewall("w1", nodes))
    assert "ip saddr { 10.0.0.1, 10.0.0.3 } tcp dport { 7946 } accept" in worker
    assert "10.0.0.2" not in worker  # not itself
    assert firewall("elsewhere", nodes) is None
    nft = subprocess.run(["nft", "-c", "-f", "-"], input=manager, capture_output=True, text=True, check=False)
    if nft.returncode == 127 or "Operation not permitted" in nft.stderr:
        pytest.skip("nft cannot check rules here")
    assert nft.returncode == 0, nft.stderr


def test_a_node_is_found_by_the_address_the_swarm_reports() -> None:
    assert node_address({"Status": {"Addr": "10.0.0.2"}}) == "10.0.0.2"
    assert node_address({"Status": {"Addr": "0.0.0.0"}, "ManagerStatus": {"Addr": "10.0.0.1:2377"}}) == "10.0.0.1"
    assert node_address({}) == ""
    assert node_address({"Status": {"Addr": "010.0.0.2"}}) == "010.0.0.2"  # not an IP: left for the checks


def labelled(name: str) -> dict[str, str]:
    return {NODE_LABEL: name}


def entry(node_id: str, address: str, name: str | None, state: str = "ready", role: str = "worker") -> SwarmNode:
    return SwarmNode(node_id, address, state, role, labelled(name) if name else {})


def test_a_converged_swarm_plans_nothing() -> None:
    nodes = nodes_of(CLUSTER)
    swarm = [entry("m", "10.0.0.1", "10.0.0.1", role="manager"), entry("a", "10.0.0.2", "w1"), entry("b", "10.0.0.3", "w2")]
    todo = plan(nodes, swarm, lambda node: labelled(node.name))
    assert (todo.label, todo.drain, todo.stale) == ([], [], [])


def test_new_nodes_are_labelled_and_a_dropped_one_drained_but_never_a_manager() -> None:
    nodes = nodes_of(CLUSTER[:2])  # w2 left the inventory
    swarm = [entry("m", "10.0.0.1", "old-manager-name", role="manager"), entry("b", "10.0.0.3", "w2"),
             entry("x", "10.0.0.9", None)]  # joined by hand: not onebox's to remove
    todo = plan(nodes, swarm, lambda node: labelled(node.name))
    assert [node.name for node in todo.label] == ["10.0.0.1", "w1"]  # the manager relabelled; w1 not joined yet
    assert [e.id for e in todo.drain] == ["b"] and todo.stale == []


def test_a_renamed_host_is_relabelled_not_drained() -> None:
    nodes = nodes_of([CLUSTER[0], ("worker-one", {"swarm_role": "worker", "swarm_address": "10.0.0.2"})])
    swarm = [entry("m", "10.0.0.1", "10.0.0.1", role="manager"), entry("a", "10.0.0.2", "w1")]
    todo = plan(nodes, swarm, lambda node: labelled(node.name))
    assert [node.name for node in todo.label] == ["worker-one"] and todo.drain == []


def test_a_machine_that_joined_again_counts_once_and_its_old_entry_goes() -> None:
    nodes = nodes_of(CLUSTER[:2])
    for swarm in ([entry("old", "10.0.0.2", "w1", state="down"), entry("new", "10.0.0.2", None)],
                  [entry("new", "10.0.0.2", None), entry("old", "10.0.0.2", "w1", state="down")]):
        todo = plan(nodes, [entry("m", "10.0.0.1", "10.0.0.1", role="manager"), *swarm],
                    lambda node: labelled(node.name))
        assert [node.name for node in todo.label] == ["w1"]  # the ready entry is the one labelled
        assert [e.id for e in todo.stale] == ["old"] and todo.drain == []


def test_a_replaced_machine_with_a_new_address_has_its_old_entry_drained() -> None:
    # w1 is a new machine at 10.0.0.9 now; its old one, still up at 10.0.0.2, keeps the label w1.
    nodes = nodes_of([CLUSTER[0], ("w1", {"swarm_role": "worker", "swarm_address": "10.0.0.9"})])
    old = entry("old", "10.0.0.2", "w1")
    todo = plan(nodes, [entry("m", "10.0.0.1", "10.0.0.1", role="manager"), old, entry("new", "10.0.0.9", "w1")],
                lambda node: labelled(node.name))
    assert todo.drain == [old] and todo.label == []
    # Before the new machine has joined, the name still stands for the old entry: nothing drained.
    todo = plan(nodes, [entry("m", "10.0.0.1", "10.0.0.1", role="manager"), old], lambda node: labelled(node.name))
    assert todo.drain == [] and [node.name for node in todo.label] == ["w1"]


@pytest.mark.parametrize(("workers", "manager_address", "refused"), [
    (None, None, "ONEBOX_WORKERS is not set"),  # an unset list would drain every worker
    ("203.0.113.8=10.0.0.8", None, "ONEBOX_MANAGER_ADDRESS is not set"),  # private workers, public manager
    ("none", None, None),
    ("203.0.113.8=10.0.0.8", "10.0.0.7", None),
])
def test_the_cluster_inventory_needs_its_workers_listed_and_one_network(
    workers: str | None, manager_address: str | None, refused: str | None, tmp_path, write_secrets
) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ONEBOX_")}
    env["ONEBOX_SECRETS_FILE"] = str(write_secrets(tmp_path / "empty.env"))  # never this checkout's real secrets
    env |= {"ONEBOX_HOST": "203.0.113.7", "ONEBOX_DOCKER_LIVE_RESTORE": "false", "ONEBOX_APP_IMAGE_SOURCE": "tarball"}
    env |= {name: value for name, value in (("ONEBOX_WORKERS", workers), ("ONEBOX_MANAGER_ADDRESS", manager_address))
            if value is not None}
    done = subprocess.run([sys.executable, "inventories/cluster.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if refused:
        assert done.returncode == 1 and refused in done.stderr, done.stderr
    else:
        assert done.returncode == 0, done.stderr
