"""Several servers as one Docker Swarm (docs/cluster.md). The target of the other modules, a
server of one app by now, becomes the manager of two fresh workers, the documented step that
moves a server into a cluster; a worker stops and comes back (a probe service shows its tasks
move); a third joins by the inventory and one leaves it, drained first. Then the app's API
moves onto the workers under load, a version that never gets healthy is refused there, and a
worker stopped under load costs no request, and a rebooted manager comes back with its data.
Runs last: it leaves the target a swarm manager.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from test_4_rollout import app_copy
from test_6_releases import nginx_processes
from test_8d_monitoring import ARTIFACTS
from test_9z_apps import APP_DOMAIN, RELEASED

from onebox.cluster import NODE_LABEL
from onebox.deploys.monitoring import TEXTFILE
from onebox.verify import edge
from onebox.verify.load import Load
from testbed.deploy import changed_operations, run_deploy
from testbed.images import BASE_TAG
from testbed.target import Target, down, up, wait_for_ssh

# The settings the previous module left the server with, plus the cluster's (live-restore off).
CLUSTER = {**RELEASED, "ONEBOX_TEST_JOBS": "removed", "ONEBOX_EXTRA_GROUPS": "local_apps,local_cluster"}
# Targets no other module or benchmark uses (test_8 takes 2, the benchmarks 3 to 5).
SECOND, THIRD, FOURTH = Target(6), Target(7), Target(8)
PROBE = "onebox-probe"


def converge(deployed, workers: list[Target], flags: list[str] | None = None, env: dict[str, str] | None = None):
    env = {**CLUSTER, "ONEBOX_WORKER_INDEXES": ",".join(str(worker.index) for worker in workers), **(env or {})}
    return run_deploy(deployed.target.index, env, flags=flags, inventory="inventories/local_cluster.py")


def node_checks(target: Target, role: str) -> subprocess.Popen:
    """The host checks of one node, as an operator runs them; started, not waited for."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/host", *target.testinfra_args,
         "--onebox-group=local", f"--onebox-swarm-role={role}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **CLUSTER})


def nodes(deployed) -> dict[str, dict]:
    """onebox.host label -> `docker node inspect` of each node, read on the manager."""
    described = json.loads(deployed.ssh("docker node inspect $(docker node ls -q)").stdout)
    return {node["Spec"].get("Labels", {}).get(NODE_LABEL): node for node in described}


def probe_tasks(deployed) -> list[str]:
    """The onebox.host label of the node of each running task of the probe service."""
    ids = {node["ID"]: name for name, node in nodes(deployed).items()}
    listing = deployed.ssh(f"docker service ps {PROBE} -q --filter desired-state=running "
                           "| xargs -r docker inspect --format '{{.NodeID}} {{.Status.State}}'").stdout
    return sorted(ids.get(node_id, node_id) for node_id, state in (line.split() for line in listing.splitlines())
                  if state == "running")


def wait_for(what: str, check, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(2)


def load_probe_image(target: Target) -> None:
    """No registry here: the probe's image goes onto the worker as onebox's own images would."""
    subprocess.run(f"docker save {BASE_TAG} | ssh -F {target.ssh_config} {target.name} docker load -q",
                   shell=True, check=True, capture_output=True)


@pytest.fixture(scope="module")
def cluster(deployed):
    for worker in (SECOND, THIRD, FOURTH):
        down(worker)  # fresh servers, whatever an earlier run left
    for worker in (SECOND, THIRD):
        up(worker)
    first = converge(deployed, [SECOND, THIRD], flags=["-vvv"])  # every command and fact output shown
    assert first.returncode == 0, first.output[-4000:]
    second = converge(deployed, [SECOND, THIRD])
    yield first, second
    for worker in (SECOND, THIRD, FOURTH):
        down(worker)


def test_the_server_becomes_the_manager_of_fresh_workers_and_a_rerun_changes_nothing(deployed, cluster) -> None:
    first, second = cluster
    token = deployed.ssh("docker swarm join-token -q worker").stdout.strip()
    assert token.startswith("SWMTKN-") and token not in first.output  # never printed
    found = nodes(deployed)
    assert set(found) == {deployed.ip, SECOND.ip, THIRD.ip}
    assert found[deployed.ip]["Spec"]["Role"] == "manager" and found[SECOND.ip]["Spec"]["Role"] == "worker"
    assert second.returncode == 0 and second.changed == 0, changed_operations(second.output)


def test_the_single_server_inventory_is_refused_on_a_swarm_node_before_any_change(deployed, cluster) -> None:
    # It gives the manager no swarm_role: converged, its firewall would shut its workers out.
    single = deployed.deploy(CLUSTER)
    assert single.returncode != 0 and single.changed == 0, single.output[-3000:]
    assert "is a Docker Swarm node but this inventory gives it no swarm_role" in single.output
    assert "inventories/cluster.py" in single.output


def test_every_node_passes_its_host_checks(deployed, cluster) -> None:
    running = {target.name: node_checks(target, role)
               for target, role in ((deployed.target, "manager"), (SECOND, "worker"), (THIRD, "worker"))}
    for name, checks in running.items():
        output, _ = checks.communicate(timeout=600)
        assert checks.returncode == 0, f"{name}: {output[-4000:]}"


def test_the_app_still_serves_on_the_manager(deployed, cluster, root_ca) -> None:
    # live-restore went off: that dockerd restart restarted the app's containers, which came back.
    with edge.https(deployed.ip, APP_DOMAIN, root_ca) as client:
        response = edge.get(client, APP_DOMAIN, "/ready")
        assert response.status_code == 200, response.text


def test_a_stopped_worker_loses_its_tasks_to_the_other_and_rejoins_when_started(deployed, cluster) -> None:
    for worker in (SECOND, THIRD):
        load_probe_image(worker)
    created = deployed.ssh(f"docker service create --detach --quiet --name {PROBE} --replicas 2 --no-resolve-image "
                           f"--constraint node.role==worker --placement-pref spread=node.id {BASE_TAG} sleep infinity")
    assert created.returncode == 0, created.stderr
    wait_for("one probe task per worker", lambda: probe_tasks(deployed) == sorted([SECOND.ip, THIRD.ip]))
    subprocess.run(["docker", "stop", THIRD.name], check=True, capture_output=True)
    wait_for("the stopped worker's task moving", lambda: probe_tasks(deployed) == [SECOND.ip, SECOND.ip])
    assert nodes(deployed)[THIRD.ip]["Status"]["State"] == "down"
    subprocess.run(["docker", "start", THIRD.name], check=True, capture_output=True)
    wait_for("the worker rejoining", lambda: nodes(deployed)[THIRD.ip]["Status"]["State"] == "ready", timeout=180)


def test_a_worker_added_joins_and_one_taken_out_is_drained_first(deployed, cluster) -> None:
    up(FOURTH)
    added = converge(deployed, [SECOND, THIRD, FOURTH])
    assert added.returncode == 0, added.output[-4000:]
    assert nodes(deployed)[FOURTH.ip]["Status"]["State"] == "ready"
    load_probe_image(FOURTH)
    assert probe_tasks(deployed) == [SECOND.ip, SECOND.ip]  # the previous test left both on the second worker
    second_id = nodes(deployed)[SECOND.ip]["ID"]
    taken_out = converge(deployed, [THIRD, FOURTH])
    assert taken_out.returncode == 0, taken_out.output[-4000:]
    assert f"Drain {SECOND.ip} (left the inventory)" in taken_out.output
    assert SECOND.ip not in nodes(deployed)
    # Drained before it left: its tasks were shut down on it, not lost with it.
    task_format = "'{{.NodeID}} {{.Status.State}}'"
    history = deployed.ssh(f"docker service ps -q {PROBE} | xargs docker inspect --format {task_format}")
    states = {state for node_id, state in (line.split() for line in history.stdout.splitlines()) if node_id == second_id}
    assert states == {"shutdown"}, history.stdout
    # Drained before it left (the converge waited for its tasks to stop); they run elsewhere.
    wait_for("the drained worker's tasks running on the others",
             lambda: len(tasks := probe_tasks(deployed)) == 2 and SECOND.ip not in tasks, timeout=60)
    again = converge(deployed, [THIRD, FOURTH])
    assert again.returncode == 0 and again.changed == 0, changed_operations(again.output)


# --- the app's API on the workers (the cluster is now the manager, THIRD and FOURTH) -----------

def on_workers(source: str) -> dict[str, str]:
    return {"ONEBOX_TEST_API_ON_WORKERS": "1", "ONEBOX_APP_SOURCE_DIR": source}


def version(deployed, root_ca) -> str:
    with edge.https(deployed.ip, APP_DOMAIN, root_ca) as client:
        return edge.get(client, APP_DOMAIN, "/version").json()["version"]


def upstream_servers(deployed) -> list[str]:
    """host:port of each node nginx sends the app to (the one app whose upstream spans nodes)."""
    text = deployed.ssh("cat /etc/nginx/onebox-upstream*.conf").stdout
    return [line.split()[1] for line in text.splitlines() if line.startswith("server ") and "max_fails" in line]


def live_port(deployed) -> int:
    """The live slot's port on the workers: the kernel's map on the manager sends nginx's connections there."""
    rules = deployed.ssh(f"cat {deployed.settings.app_dir}/switch.nft").stdout
    return int(re.search(r"dnat to [0-9.]+:(\d+)$", rules, re.MULTILINE)[1])


def down_nodes(deployed) -> list[str]:
    """The nodes onebox-node-watch found down (their nginx connections go to the others)."""
    text = deployed.ssh(f"cat {deployed.settings.app_dir}/down-nodes.json 2>/dev/null || echo []").stdout
    return json.loads(text)


def replica_answers(deployed, worker: Target, port: int) -> bool:
    """The worker's replica, asked from the manager (the only host its firewall lets in)."""
    return deployed.ssh(f"curl -fsS -m 3 http://{worker.ip}:{port}/health").returncode == 0


@pytest.fixture(scope="module")
def swarm_source(tmp_path_factory) -> str:
    return str(app_copy(tmp_path_factory.mktemp("swarm"), "swarm-1"))


def test_the_api_moves_onto_the_workers_under_load_and_a_rerun_changes_nothing(
        deployed, cluster, root_ca, swarm_source) -> None:
    with Load(deployed.ip, APP_DOMAIN, root_ca, write_path="/items") as load:
        moved = converge(deployed, [THIRD, FOURTH], env=on_workers(swarm_source))
    assert moved.returncode == 0, moved.output[-4000:]
    assert load.report.failures == [], load.report.failures[:10]
    assert load.report.requests > 50
    assert version(deployed, root_ca) == "swarm-1"
    servers = upstream_servers(deployed)
    # nginx names each worker at the app's api_port, whatever the slot: the kernel's map picks it.
    assert sorted(servers) == sorted(f"{w.ip}:{deployed.settings.api_port}" for w in (THIRD, FOURTH)), servers
    port = live_port(deployed)
    assert deployed.ssh("systemctl is-active onebox-node-watch.service").stdout.strip() == "active"
    assert "api" not in deployed.container_ids()  # no API container left on the manager
    for worker in (THIRD, FOURTH):
        assert replica_answers(deployed, worker, port)
        with pytest.raises(httpx.TransportError):  # from anywhere else: dropped by the worker's forward rule
            httpx.get(f"http://{worker.ip}:{port}/health", timeout=3)
    status = deployed.ssh(f"/usr/local/sbin/onebox-release --app-dir {deployed.settings.app_dir} status").stdout
    assert status.count("replica ") == 2 and "2/2 nodes healthy" in status, status
    again = converge(deployed, [THIRD, FOURTH], env=on_workers(swarm_source))
    assert again.returncode == 0 and again.changed == 0, changed_operations(again.output)


def test_a_version_that_never_gets_healthy_on_the_workers_is_refused_and_the_old_keeps_serving(
        deployed, cluster, root_ca, tmp_path) -> None:
    live = deployed.live_release()
    crashing = str(app_copy(tmp_path, "swarm-crash", crashing=True))
    refused = converge(deployed, [THIRD, FOURTH], env=on_workers(crashing))
    assert refused.returncode != 0
    assert "did not become healthy" in refused.output and "on every swarm node" in refused.output, \
        refused.output[-3000:]
    assert deployed.live_release() == live
    assert version(deployed, root_ca) == "swarm-1"
    services = deployed.ssh("docker service ls --format '{{.Name}}'").stdout.split()
    assert len([name for name in services if name.endswith("_api")]) == 1, services  # the failed slot removed


def test_a_release_on_the_workers_reloads_nothing_and_a_client_that_never_retries_sees_no_error(
        deployed, cluster, root_ca, tmp_path) -> None:
    """Issue 33 on the cluster: the kernel's map on the manager switches every node's connections."""
    nginx = nginx_processes(deployed)
    before = live_port(deployed)
    with Load(deployed.ip, APP_DOMAIN, root_ca) as load:
        released = converge(deployed, [THIRD, FOURTH], env=on_workers(str(app_copy(tmp_path, "swarm-2"))))
    assert released.returncode == 0, released.output[-4000:]
    assert version(deployed, root_ca) == "swarm-2" and live_port(deployed) != before
    assert load.report.failures == [] and load.report.retried == [], (load.report.failures + load.report.retried)[:10]
    assert nginx_processes(deployed) == nginx, "nginx was reloaded by a release"


def node_up(deployed, name: str) -> str | None:
    """The manager's onebox_swarm_node_up of one node (what OneboxSwarmNodeDown reads), collected now."""
    deployed.ssh("systemctl start onebox-metrics.service")  # oneshot: returns once the textfile is written
    text = deployed.ssh(f"cat {TEXTFILE}").stdout
    return next((line.rsplit(" ", 1)[1] for line in text.splitlines()
                 if line.startswith("onebox_swarm_node_up{") and f'node="{name}"' in line), None)


def test_a_worker_that_loses_power_under_load_costs_no_request_and_its_replica_returns(
        deployed, cluster, root_ca, swarm_source) -> None:
    """`docker kill` of the worker's target: no clean shutdown, its address simply stops answering
    (issue 32). nginx gives up a connect to it within cluster_connect_timeout_ms and leaves it out."""
    port = live_port(deployed)
    assert "proxy_connect_timeout 250ms;" in deployed.ssh("cat /etc/nginx/sites-enabled/onebox*.conf").stdout
    assert node_up(deployed, FOURTH.ip) == "1"  # the inventory names the local targets by their address
    # A request already on the node when it dies waits for proxy_read_timeout (60 s), then nginx
    # retries the GET elsewhere: the client waits that long rather than count it failed.
    with Load(deployed.ip, APP_DOMAIN, root_ca, timeout=90) as load:
        time.sleep(3)
        subprocess.run(["docker", "kill", FOURTH.name], check=True, capture_output=True)
        time.sleep(20)
    assert load.report.failures == [], load.report.failures[:10]
    latencies = sorted(load.report.latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    slow = [latency for latency in latencies if latency > 1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "worker-loss-latency.txt").write_text(
        f"{len(latencies)} requests, p50 {latencies[len(latencies) // 2]:.4f} s, p99 {p99:.4f} s, "
        f"max {latencies[-1]:.3f} s, over 1 s: {len(slow)}\n")
    assert p99 <= 1, f"p99 {p99:.3f} s over the run"
    # Only requests in flight on the node as it died (one per client thread at most) took longer.
    assert len(slow) <= 3, slow
    # Once the watcher has found it down, nginx's connections to it go to the live worker: nothing waits.
    wait_for("the watcher finding the worker down", lambda: down_nodes(deployed) == [FOURTH.ip], timeout=30)
    with Load(deployed.ip, APP_DOMAIN, root_ca) as after:
        time.sleep(12)  # past cluster_fail_timeout: nginx tries the node again, and the map answers
    assert after.report.failures == [], after.report.failures[:10]
    assert max(after.report.latencies) < 1, sorted(after.report.latencies)[-5:]
    (ARTIFACTS / "worker-loss-latency.txt").open("a").write(
        f"after detection: {len(after.report.latencies)} requests, max {max(after.report.latencies):.3f} s\n")
    # The manager sees the node down: its metric goes to 0 and `onebox status` names it (exit 3).
    wait_for("the manager's metric of the stopped worker at 0", lambda: node_up(deployed, FOURTH.ip) == "0", timeout=90)
    status = deployed.ssh(f"/usr/local/sbin/onebox-release --app-dir {deployed.settings.app_dir} status")
    assert status.returncode == 3, status.stdout + status.stderr
    assert f"ATTENTION: swarm node {FOURTH.ip} (worker, {FOURTH.ip}) is " in status.stdout, status.stdout
    # Started again under load: back in nginx's rotation once it answers, no request failed.
    with Load(deployed.ip, APP_DOMAIN, root_ca) as rejoin:
        subprocess.run(["docker", "start", FOURTH.name], check=True, capture_output=True)
        wait_for("the worker's replica answering again", lambda: replica_answers(deployed, FOURTH, port), timeout=240)
        wait_for("the watcher sending the worker nginx's connections again", lambda: down_nodes(deployed) == [],
                 timeout=60)
        time.sleep(12)  # past cluster_fail_timeout (10 s): nginx sends it requests again
    assert rejoin.report.failures == [], rejoin.report.failures[:10]
    wait_for("the manager's metric of the worker back at 1", lambda: node_up(deployed, FOURTH.ip) == "1", timeout=60)
    status = deployed.ssh(f"/usr/local/sbin/onebox-release --app-dir {deployed.settings.app_dir} status").stdout
    assert f"ATTENTION: swarm node {FOURTH.ip}" not in status, status


def test_a_rebooted_manager_brings_the_cluster_back_with_its_data(deployed, cluster, root_ca) -> None:
    """The manager holds PostgreSQL, nginx and the swarm's control plane; the replicas on the
    workers reach the database again over the overlay once it is back."""
    with edge.https(deployed.ip, APP_DOMAIN, root_ca) as client:
        record = client.post("/items", json={"name": "before the manager's reboot"},
                             extensions={"sni_hostname": APP_DOMAIN}).json()
    subprocess.run(["docker", "restart", deployed.target.name], check=True, capture_output=True)
    wait_for_ssh(deployed.ip)

    def served() -> bool:
        try:
            with edge.https(deployed.ip, APP_DOMAIN, root_ca) as client:
                return edge.get(client, APP_DOMAIN, f"/items/{record['id']}").json().get("name") == \
                    "before the manager's reboot" and edge.get(client, APP_DOMAIN, "/ready").status_code == 200
        except (httpx.HTTPError, ValueError):
            return False

    wait_for("the row written before the reboot served by the workers' replicas", served, timeout=180)
    wait_for("every node ready again", lambda: deployed.ssh("docker node ls --format '{{.Status}}'").stdout.split()
             == ["Ready"] * 3, timeout=120)
