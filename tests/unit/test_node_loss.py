"""A dead swarm node costs little (issue 32): nginx gives a worker's API a connect timeout in
milliseconds and leaves a failed node out for cluster_fail_timeout."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pytest
import test_nginx_templates
from fake_docker import FakeDocker, make_app
from test_settings import valid

from onebox import contract
from onebox.cluster import Node
from onebox.nginx import Layout, nginx_files
from onebox.rollout import release_spec
from onebox.server import switch
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
