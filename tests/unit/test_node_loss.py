"""A dead swarm node costs little (issue 32): nginx gives a worker's API a connect timeout in
milliseconds and leaves a failed node out for cluster_fail_timeout; the manager exports each
node's state, alerts on a lost one and says when it returns, and `onebox status` shows it."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import test_nginx_templates
import yaml
from fake_docker import FakeDocker, make_app
from test_alert_rules import alert, series
from test_settings import valid

from onebox import contract
from onebox.cluster import Node
from onebox.nginx import Layout, nginx_files
from onebox.render import render
from onebox.rollout import release_spec
from onebox.server import basics, engine, metrics, reports, switch
from onebox.server.basics import Result
from onebox.settings import Settings, SettingsError, validate_settings

CLUSTER = [Node("manager", "manager", "10.0.0.1"), Node("w1", "worker", "10.0.0.2"), Node("w2", "worker", "10.0.0.3")]
WORKERS = ["10.0.0.2", "10.0.0.3"]


def settings(**overrides: object) -> Settings:
    return validate_settings(valid(app_image_source="registry", registry_server="ghcr.io", **overrides))


# --- the settings ---------------------------------------------------------------------------------

def test_the_defaults_fit_a_private_network() -> None:
    s = settings()
    assert (s.cluster_connect_timeout_ms, s.cluster_fail_timeout, s.proxy_connect_timeout) == (250, 10, 5)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"cluster_connect_timeout_ms": 5}, "cluster_connect_timeout_ms: Input should be greater than or equal to 10"),
    ({"cluster_connect_timeout_ms": 250000}, "cluster_connect_timeout_ms: Input should be less than or equal to 5000"),
    ({"cluster_fail_timeout": 0}, "cluster_fail_timeout: Input should be greater than or equal to 1"),
    ({"cluster_fail_timeout": 3600}, "cluster_fail_timeout: Input should be less than or equal to 300"),
    ({"apps": {"api": {"domains": ["api.example.com"], "cluster_connect_timeout_ms": 0}}},
     "apps.api.cluster_connect_timeout_ms: Input should be greater than or equal to 10"),
])
def test_out_of_range_timeouts_are_refused_naming_the_setting(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        settings(**overrides)
    assert expected in str(error.value)


# --- the upstream file (written on the server from the spec) ---------------------------------------

def test_the_upstream_leaves_a_failed_node_out_for_the_setting_s_seconds() -> None:
    text = contract.upstream_text("green", 18001, WORKERS, 7)
    assert [line for line in text.splitlines() if line.startswith("server ")] == [
        "server 10.0.0.2:18001 max_fails=1 fail_timeout=7s;", "server 10.0.0.3:18001 max_fails=1 fail_timeout=7s;"]
    assert contract.upstream_port(text) == 18001
    # One server: 127.0.0.1 as before (nginx ignores max_fails with a single server anyway).
    assert contract.upstream_text("green", 18001, [], 7).endswith("server 127.0.0.1:18001;\n")


def test_a_swarm_spec_carries_the_fail_timeout_and_a_single_server_s_reads_as_before() -> None:
    image = {"source": "registry", "ref": "x/y:1", "registry_server": "r", "registry_username": None}
    s = settings(cluster_fail_timeout=7)
    cluster = contract.Spec.from_json(release_spec(s, image, "x", swarm_nodes=WORKERS, proxy_ip="10.0.0.1").to_json())
    assert cluster.cluster_fail_timeout == 7 and cluster.swarm_nodes == WORKERS
    single = release_spec(s, image, "x").to_json()
    assert "cluster_fail_timeout" not in single and "swarm_nodes" not in single
    # A swarm spec written before the setting existed still loads, meaning the 5 s nginx was given then,
    # so the upstream file written then still matches it: nothing is re-pointed before the next converge.
    before = json.loads(release_spec(s, image, "x", swarm_nodes=WORKERS).to_json())
    del before["cluster_fail_timeout"]
    assert contract.Spec.from_json(json.dumps(before)).cluster_fail_timeout == 5
    assert contract.Spec.from_json(json.dumps(before)).version == contract.SPEC_VERSION


def test_onebox_release_writes_the_spec_s_fail_timeout_and_sees_a_changed_one(tmp_path, monkeypatch) -> None:
    made = make_app(tmp_path, validate_settings(valid()), FakeDocker(), monkeypatch)
    spec = contract.Spec.from_json((made.dir / "spec.json").read_text())
    (made.dir / "spec.json").write_text(dataclasses.replace(spec, swarm_nodes=WORKERS, cluster_fail_timeout=7).to_json())
    app = type(made)(made.dir, nginx_dir=made.nginx_dir)
    text = switch.upstream_text(app, "blue")
    assert text.count("max_fails=1 fail_timeout=7s;") == 2
    app.upstream.write_text(text.replace("fail_timeout=7s", "fail_timeout=5s"))
    assert not switch.points_at(app, "blue")  # the setting changed: the heal rewrites the file


# --- the site (rendered by the controller) --------------------------------------------------------

def site(s: Settings, nodes: list[Node] | None) -> str:
    return nginx_files(s, Layout(), (1, 26, 3), nodes)["/etc/nginx/sites-enabled/onebox.conf"]


def test_an_api_on_swarm_workers_gets_the_cluster_connect_timeout_in_milliseconds() -> None:
    config = site(settings(cluster_connect_timeout_ms=300), CLUSTER)
    # The public server and the local socket's (host checks, status) both reach the same nodes.
    assert config.count("proxy_connect_timeout 300ms;") == 2 and "proxy_connect_timeout 5s;" not in config


@pytest.mark.parametrize(("overrides", "nodes"), [
    ({}, None),  # a single server
    ({"api_placement": "manager"}, CLUSTER),  # the API stays on the manager, in compose
    ({}, CLUSTER[:1]),  # a cluster of the manager alone: no worker to run it
], ids=["single server", "placed on the manager", "no worker"])
def test_an_api_on_this_server_keeps_proxy_connect_timeout(overrides: dict, nodes: list[Node] | None) -> None:
    config = site(settings(proxy_connect_timeout=4, **overrides), nodes)
    assert config.count("proxy_connect_timeout 4s;") == 2 and "ms;" not in config


def test_nginx_accepts_the_cluster_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # nginx -t (and gixy) on the site of an API on the workers: `250ms` is nginx's own time syntax.
    monkeypatch.setattr(test_nginx_templates, "nginx_files", functools.partial(nginx_files, nodes=CLUSTER))
    test_nginx_templates.test_nginx_accepts_the_rendered_configuration(tmp_path, {})
    assert "proxy_connect_timeout 250ms;" in (tmp_path / "nginx" / "sites-enabled" / "onebox.conf").read_text()


# --- the manager's view of each node ---------------------------------------------------------------

def described(node_id: str, label: str | None, role: str, addr: str, state: str, hostname: str = "onebox") -> dict:
    """One entry of `docker node inspect`, as Docker 26 writes it (abridged)."""
    labels = {contract.SWARM_NODE_LABEL: label} if label else {}
    entry: dict = {"ID": node_id, "Description": {"Hostname": hostname},
                   "Spec": {"Role": role, "Availability": "active", "Labels": labels},
                   "Status": {"State": state, "Addr": addr}}
    if role == "manager":  # a manager's Status.Addr may read 0.0.0.0; ManagerStatus has it
        entry["Status"]["Addr"] = "0.0.0.0"
        entry["ManagerStatus"] = {"Leader": True, "Reachability": "reachable", "Addr": f"{addr}:2377"}
    return entry


# Every node's hostname is "onebox" (the setting's default, one for the group): the label names them.
NODES = [described("m1", "manager", "manager", "10.0.0.1", "ready"),
         described("n1", "w1", "worker", "10.0.0.2", "ready"),
         described("n2", "w2", "worker", "10.0.0.3", "down"),
         described("n0", "w1", "worker", "10.0.0.2", "down"),  # w1's old entry: it joined again
         described("n9", None, "worker", "10.0.0.9", "ready", hostname="by-hand")]  # joined outside onebox


def docker_answers(manager: bool, then=None):  # noqa: ANN001, ANN201 - a fake basics.run
    """`docker info` says whether this is a manager; the node commands answer NODES; the rest goes to `then`."""
    def run(argv, **kwargs):  # noqa: ANN001, ANN202
        if argv[:2] == ["docker", "info"]:
            return Result(argv, 0, "true\n" if manager else "false\n", "")
        if argv[:4] == ["docker", "node", "ls", "-q"]:
            return Result(argv, 0, "\n".join(node["ID"] for node in NODES) + "\n", "")
        if argv[:3] == ["docker", "node", "inspect"]:
            return Result(argv, 0, json.dumps([node for node in NODES if node["ID"] in argv[3:]]), "")
        return then(argv, **kwargs) if then else Result(argv, 1, "", "unexpected")
    return run


def test_the_manager_exports_each_node_up_or_down_by_its_inventory_name(monkeypatch) -> None:
    monkeypatch.setattr(basics, "run", docker_answers(manager=True))
    text = metrics.text(metrics.swarm_samples())
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        'onebox_swarm_node_up{address="10.0.0.9",node="by-hand",role="worker"} 1',
        'onebox_swarm_node_up{address="10.0.0.1",node="manager",role="manager"} 1',
        'onebox_swarm_node_up{address="10.0.0.2",node="w1",role="worker"} 1',  # the ready entry stands for both
        'onebox_swarm_node_up{address="10.0.0.3",node="w2",role="worker"} 0',
    ]
    if shutil.which("promtool"):  # no series twice: the textfile collector would refuse the whole file
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_server_that_manages_no_swarm_exports_no_node(monkeypatch) -> None:
    monkeypatch.setattr(basics, "run", docker_answers(manager=False))
    assert metrics.swarm_samples() == []


def test_status_on_the_manager_shows_each_node_and_a_down_one_needs_attention(tmp_path, monkeypatch, capsys) -> None:
    fake = FakeDocker()
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    app = make_app(tmp_path, validate_settings(valid(app_health_timeout=2)), fake, monkeypatch)
    engine.apply(app)
    monkeypatch.setattr(basics, "run", docker_answers(manager=True, then=fake))
    assert reports.status(app) == basics.EXIT_ATTENTION
    out = capsys.readouterr().out
    assert "swarm node     w1               worker   10.0.0.2         ready\n" in out
    assert "swarm node     w2               worker   10.0.0.3         down\n" in out
    assert "ATTENTION: swarm node w2 (worker, 10.0.0.3) is down\n" in out
    assert out.count("swarm node ") == 5  # four nodes, one attention line

    NODES[2]["Status"]["State"] = "ready"  # w2 is back
    try:
        reports.status(app)
    finally:
        NODES[2]["Status"]["State"] = "down"
    assert "ATTENTION: swarm node" not in capsys.readouterr().out

    (app.dir / "down-nodes.json").write_text('["10.0.0.3"]')  # onebox-node-watch's finding (issue 32)
    assert reports.status(app) == basics.EXIT_ATTENTION
    out = capsys.readouterr().out
    assert "node watch     10.0.0.3: its replica does not answer; nginx's connections to it go to the others" in out
    assert "ATTENTION: the replica on 10.0.0.3 does not answer (onebox-node-watch)" in out


# --- the alert ---------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (make setup)")
def test_a_node_down_alerts_after_alert_for_seconds_and_resolves_when_it_returns(tmp_path: Path) -> None:
    s = validate_settings(valid(alert_for_seconds=60))
    (tmp_path / "rules.yml").write_text(render("prometheus/onebox.rules.yml.j2", s=s))
    w2 = {"node": "w2", "role": "worker", "address": "10.0.0.3"}
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "30s", "tests": [{
        "interval": "30s",
        "input_series": [
            # w2 lost at 1m and ready again from 4m30s; w1 ready throughout.
            series("onebox_swarm_node_up", w2, "1 1 0 0 0 0 0 0 0 1 1 1 1"),
            series("onebox_swarm_node_up", {**w2, "node": "w1", "address": "10.0.0.2"}, "1+0x12"),
        ],
        "alert_rule_test": [
            alert("OneboxSwarmNodeDown", "1m30s", None),  # down, but not for alert_for_seconds yet
            alert("OneboxSwarmNodeDown", "2m30s", {**w2, "severity": "critical"}, "swarm node w2 (worker, 10.0.0.3) is down"),
            alert("OneboxSwarmNodeDown", "5m", None),  # resolved: Alertmanager sends "resolved" (send_resolved)
        ],
    }]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
