"""onebox's graph pages (onebox/consoles.py, templates/prometheus/consoles/graphs.html.j2) for one
app, several apps and a cluster: each graph asks for the series the server has, with the app's
labels; promtool parses every expression; Prometheus itself expands the pages."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_apps_settings import two_apps
from test_settings import valid

from onebox.cluster import Node
from onebox.consoles import FILESYSTEMS, RANGES, config_script
from onebox.deploys.monitoring import GRAPH_PAGES, app_nodes
from onebox.render import render
from onebox.settings import Settings, validate_settings

CLUSTER = [Node("manager", "manager", "10.0.0.1"), Node("w1", "worker", "10.0.0.2"), Node("w2", "worker", "10.0.0.3")]


def pages(s: Settings, nodes: list[Node] | None = None) -> dict[str, str]:
    """The files monitoring.py writes to /etc/prometheus/consoles/, by name."""
    config = config_script(s, app_nodes(s, nodes or []))
    out = {Path(dest).name: render("prometheus/consoles/graphs.html.j2", s=s, page=page, config=config)
           for page, dest in GRAPH_PAGES.items()}
    out["onebox.html"] = render("prometheus/consoles/onebox.html.j2", s=s)
    return out


def config_of(page: str) -> dict[str, Any]:
    match = re.search(r"^var onebox = \{page: \"(server|app)\", config: (.*)\};$", page, re.MULTILINE)
    assert match, page[:500]
    return json.loads(match[2])


def exprs(graphs: list[dict]) -> list[str]:
    return [expr for graph in graphs for expr in graph["exprs"]]


def titles(graphs: list[dict]) -> list[str]:
    return [graph["title"] for graph in graphs]


def test_one_app_has_its_traffic_containers_data_and_backups_with_its_labels() -> None:
    rendered = pages(validate_settings(valid()))
    config = config_of(rendered["onebox-app.html"])
    assert config_of(rendered["onebox-server.html"]) == config  # one script, two pages
    assert list(config["apps"]) == ["onebox"] and config["apps"]["onebox"]["nodes"] == []
    graphs = config["apps"]["onebox"]["graphs"]
    assert titles(graphs) == ["Requests per second", "5xx responses (share of all)", "Latency",
                              "Container restarts (Docker's count: a new release's containers start at 0)",
                              "PostgreSQL connections", "PostgreSQL size", "Redis memory", "Backup age"]
    own = 'job="onebox_app_onebox"'
    assert exprs(graphs)[:4] == [
        f"sum(rate(http_requests_total{{{own}}}[$w]))",
        f'100 * (sum (rate(http_requests_total{{{own},status=~"5.."}}[$w])) or sum (rate(http_requests_total{{{own}}}[$w])) '
        f"* 0) / sum (rate(http_requests_total{{{own}}}[$w]))",
        f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{own}}}[$w])))",
        f"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{own}}}[$w])))"]
    assert all('app="onebox"' in expr for expr in exprs(graphs)[4:])
    assert graphs[2]["names"] == ["p95", "p99"] and graphs[2]["format"] == "seconds"
    assert config["ranges"] == RANGES and list(config["ranges"]) == ["1h", "6h", "1d", "1w"]  # in the links' order
    assert config["events"] == "onebox_event_timestamp_seconds"
    server = config["server"]
    assert "Days until the disk is full (at the last 6 hours' rate)" in titles(server)
    assert not [title for title in titles(server) if "per node" in title]  # one server: no node label


def test_the_graph_pages_leave_prometheus_only_the_asset_paths_to_expand() -> None:
    """The script and its graphs are plain text to Go's template: only the assets' prefix is an action."""
    for name, page in pages(validate_settings(two_apps())).items():
        assert page.startswith("{{/* managed by onebox"), name
        if name != "onebox.html":
            assert re.findall(r"\{\{.*?\}\}", page.split("\n", 1)[1]) == ["{{ pathPrefix }}"] * 6, name


def test_an_app_without_metrics_postgres_redis_or_backups_has_no_graph_of_them() -> None:
    s = validate_settings(valid(app_metrics_path=None, postgres_enabled=False, redis_enabled=False,
                                backup_enabled=False, app_env={"PORT": "{app_port}"}, app_secret_env={}))
    graphs = config_of(pages(s)["onebox-app.html"])["apps"]["onebox"]["graphs"]
    assert [(graph["title"], graph["exprs"], graph["note"]) for graph in graphs] == [
        ("Requests per second", [], "this app publishes no metrics (app_metrics_path)"),
        ("Container restarts (Docker's count: a new release's containers start at 0)",
         ['onebox_container_restarts_total{app="onebox"}'], "")]
    server = titles(config_of(pages(s)["onebox-server.html"])["server"])
    assert not [title for title in server if "PostgreSQL" in title or "Redis" in title or "Backup" in title]


def test_several_apps_each_have_a_page_with_their_own_labels_and_the_server_compares_them() -> None:
    rendered = pages(validate_settings(two_apps()))
    config = config_of(rendered["onebox-app.html"])
    assert list(config["apps"]) == ["api", "jobs"]
    for name, other in (("api", "jobs"), ("jobs", "api")):
        app_exprs = exprs(config["apps"][name]["graphs"])
        assert app_exprs and all(f'job="onebox_app_{name}"' in e or f'app="{name}"' in e for e in app_exprs)
        assert not [e for e in app_exprs if other in e]
    server = {graph["title"]: graph for graph in config["server"]}
    assert server["Requests per second, per app"]["exprs"] == [
        'sum by (app) (rate(http_requests_total{job=~"onebox_app_.*"}[$w]))']
    assert server["Requests per second, per app"]["names"] == ["[[ app ]]"]
    assert server["p95 latency, per app"]["exprs"] == [
        'histogram_quantile(0.95, sum by (app, le) (rate(http_request_duration_seconds_bucket{job=~"onebox_app_.*"}[$w])))']
    # The current values page links each app's graphs, and the server's.
    assert '<a href="onebox-app.html?app=api">app api</a>, <a href="onebox-app.html?app=jobs">app jobs</a>' in \
        rendered["onebox.html"]
    assert '<a href="onebox-server.html">the server</a>' in rendered["onebox.html"]


def test_on_a_cluster_an_app_on_the_workers_is_scraped_and_graphed_per_node(tmp_path: Path) -> None:
    s = validate_settings(two_apps(api_placement="manager", app_image_source="tarball"))
    nodes = app_nodes(s, CLUSTER)
    assert {app: [node.name for node in on] for app, on in nodes.items()} == {"api": ["w1", "w2"], "jobs": []}
    config = config_of(pages(s, CLUSTER)["onebox-app.html"])
    assert config["apps"]["api"]["nodes"] == ["w1", "w2"] and config["apps"]["jobs"]["nodes"] == []
    api = {graph["title"]: graph for graph in config["apps"]["api"]["graphs"]}
    assert api["Requests per second, per node"] == {
        "title": "Requests per second, per node", "format": "count", "note": "", "names": ["[[ node ]]"],
        "exprs": ['sum by (node) (rate(http_requests_total{job="onebox_app_api"}[$w]))']}
    assert api["p95 latency, per node"]["exprs"] == [
        'histogram_quantile(0.95, sum by (node, le) (rate(http_request_duration_seconds_bucket{job="onebox_app_api"}[$w])))']
    assert not [title for title in titles(config["apps"]["jobs"]["graphs"]) if "per node" in title]
    assert "Requests per second, per node" in titles(config["server"])
    # Prometheus scrapes each worker's replica of each slot, labelled with the node's inventory name.
    scrape = yaml.safe_load(render("prometheus/prometheus.yml.j2", s=s, rules="/etc/prometheus/onebox.rules.yml",
                                   app_nodes=nodes, targets_dir=str(tmp_path)))
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    ports = s.app_list[0].slot_ports
    assert jobs["onebox_app_api"]["static_configs"] == [
        {"targets": [f"10.0.0.2:{ports[0]}"], "labels": {"app": "api", "slot": "blue", "node": "w1"}},
        {"targets": [f"10.0.0.2:{ports[1]}"], "labels": {"app": "api", "slot": "green", "node": "w1"}},
        {"targets": [f"10.0.0.3:{ports[0]}"], "labels": {"app": "api", "slot": "blue", "node": "w2"}},
        {"targets": [f"10.0.0.3:{ports[1]}"], "labels": {"app": "api", "slot": "green", "node": "w2"}}]
    jobs_ports = s.app_list[1].slot_ports
    assert jobs["onebox_app_jobs"]["static_configs"][0] == {"targets": [f"127.0.0.1:{jobs_ports[0]}"],
                                                            "labels": {"app": "jobs", "slot": "blue"}}


def test_the_disk_graphs_select_the_filesystems_the_disk_alert_does() -> None:
    rules = render("prometheus/onebox.rules.yml.j2", s=validate_settings(valid()))
    assert f"node_filesystem_avail_bytes{{{FILESYSTEMS}}}" in rules


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (make setup)")
def test_promtool_parses_every_expression(tmp_path: Path) -> None:
    s = validate_settings(two_apps(api_placement="manager", app_image_source="tarball"))
    config = config_of(pages(s, CLUSTER)["onebox-app.html"])
    every = exprs(config["server"]) + [e for app in config["apps"].values() for e in exprs(app["graphs"])]
    every.append(config["events"] + '{app="api"}')
    rules = {"groups": [{"name": "consoles", "rules": [{"record": f"onebox:console_{i}", "expr": e.replace("$w", "120s")}
                                                       for i, e in enumerate(every)]}]}
    path = tmp_path / "consoles.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed (make setup)")
def test_prometheus_expands_each_page(tmp_path: Path) -> None:
    """html/template is strict where jinja is not (a stray action, a script it cannot lex): the pages
    as the distribution's Prometheus serves them, without data."""
    consoles, libraries = tmp_path / "consoles", tmp_path / "console_libraries"
    consoles.mkdir()
    libraries.mkdir()
    for name, text in pages(validate_settings(two_apps())).items():
        (consoles / name).write_text(text)
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 30s}\n")
    port = free_port()
    server = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                               f"--web.console.templates={consoles}", f"--web.console.libraries={libraries}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(f"{base}/-/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "prometheus did not start"
            time.sleep(0.2)
        for path in ("/consoles/onebox-server.html?range=1w", "/consoles/onebox-app.html?app=jobs&range=1h",
                     "/consoles/onebox.html"):
            status, text = get(base + path)
            assert status == 200, (path, text[:2000])
            assert "{{" not in text and "managed by onebox" not in text, path
        status, text = get(base + "/consoles/onebox-app.html?app=jobs")
        assert '<script src="/classic/static/js/prom_console.js"></script>' in text
        assert config_of(text)["apps"]["jobs"]["graphs"][0]["title"] == "Requests per second"
    finally:
        server.terminate()
        server.wait(timeout=30)
