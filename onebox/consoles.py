"""The graphs of onebox's console pages (templates/prometheus/consoles/, `onebox dashboard`):
what each one asks Prometheus, from the series that exist (prometheus.yml.j2's jobs and labels,
onebox.server.metrics, the exporters). One page per app, one for the server.

An expression's `$w` is the rate window, chosen by the page for its range (a point per few
pixels, never under 4 scrapes); the app's name is written into its page's expressions here.
A graph's names may use [[ label ]] (PromConsole.Graph's syntax). `format` picks the axis's
number format in the page: count, percent, seconds, bytes, hours, days.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `onebox dashboard` reads the ranges without loading the settings' models
    from onebox.cluster import Node
    from onebox.settings import Settings

Graph = dict[str, Any]

# Filesystems that hold data, as onebox.rules.yml.j2's disk alert selects them (a unit test
# keeps the two the same).
FILESYSTEMS = ('fstype!~"overlay|squashfs|nsfs|ramfs|fuse.*",'
               'mountpoint!~"/(run|dev|sys|proc)(/.*)?|/etc/.+|/var/lib/docker/.+"')
RANGES = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "1w": 7 * 86400}
DEFAULT_RANGE = "6h"
EVENTS = "onebox_event_timestamp_seconds"


def graph(title: str, exprs: list[str], names: list[str], fmt: str = "count", note: str = "") -> Graph:
    assert len(exprs) == len(names), title
    return {"title": title, "exprs": exprs, "names": names, "format": fmt, "note": note}


def share_5xx(selector: str, by: str = "") -> str:
    """The 5xx share in percent; 0 (not no data) while there were requests and none was a 5xx."""
    grouping = f" by ({by})" if by else ""
    total = f"sum{grouping} (rate(http_requests_total{{{selector}}}[$w]))"
    errors = f'sum{grouping} (rate(http_requests_total{{{selector},status=~"5.."}}[$w]))'
    return f"100 * ({errors} or {total} * 0) / {total}"


def quantile(q: float, selector: str, by: str = "") -> str:
    return (f"histogram_quantile({q}, sum by ({by + ', ' if by else ''}le) "
            f"(rate(http_request_duration_seconds_bucket{{{selector}}}[$w])))")


def app_graphs(app: Settings, nodes: list[Node]) -> list[Graph]:
    """One app's page: its traffic (when it publishes metrics), per node when its API runs on
    swarm workers, then its containers, PostgreSQL, Redis and backups."""
    name = app.app_name
    selector, own = f'app="{name}"', f'job="onebox_app_{name}"'
    graphs = []
    if app.app_metrics_path:
        graphs += [
            graph("Requests per second", [f"sum(rate(http_requests_total{{{own}}}[$w]))"], ["requests/s"]),
            graph("5xx responses (share of all)", [share_5xx(own)], ["5xx"], "percent"),
            graph("Latency", [quantile(0.95, own), quantile(0.99, own)], ["p95", "p99"], "seconds"),
        ]
        if nodes:
            graphs += [
                graph("Requests per second, per node", [f"sum by (node) (rate(http_requests_total{{{own}}}[$w]))"],
                      ["[[ node ]]"]),
                graph("5xx responses (share of all), per node", [share_5xx(own, "node")], ["[[ node ]]"], "percent"),
                graph("p95 latency, per node", [quantile(0.95, own, "node")], ["[[ node ]]"], "seconds"),
            ]
    else:
        graphs.append(graph("Requests per second", [], [], note="this app publishes no metrics (app_metrics_path)"))
    graphs.append(graph("Container restarts (Docker's count: a new release's containers start at 0)",
                        [f"onebox_container_restarts_total{{{selector}}}"], ["[[ service ]]"]))
    if app.postgres_enabled:
        graphs += [graph("PostgreSQL connections", [f"sum(pg_stat_database_numbackends{{{selector}}})"], ["connections"]),
                   graph("PostgreSQL size", [f"sum(pg_database_size_bytes{{{selector}}})"], ["databases"], "bytes")]
    if app.redis_enabled:
        graphs.append(graph("Redis memory", [f"redis_memory_used_bytes{{{selector}}}"], ["used"], "bytes"))
    if app.backup_enabled:
        graphs.append(graph("Backup age", [f"(time() - onebox_backup_last_success_timestamp_seconds{{{selector}}}) / 3600",
                                           f"onebox_backup_max_age_seconds{{{selector}}} / 3600"],
                            ["since the last backup", "alert above (backup_max_age_hours)"], "hours"))
    return graphs


def server_graphs(s: Settings, clustered: bool) -> list[Graph]:
    """The server's page: the host, then every app side by side (per node in a cluster)."""
    apps = 'job=~"onebox_app_.*"'
    graphs = [
        graph("CPU", ['100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$w])))',
                      '100 * avg(rate(node_cpu_seconds_total{mode="iowait"}[$w]))'], ["busy", "waiting for I/O"],
              "percent"),
        graph("Memory", ["node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"],
              ["used", "total"], "bytes"),
        graph("Disk used", [f"100 * (1 - node_filesystem_avail_bytes{{{FILESYSTEMS}}} "
                            f"/ node_filesystem_size_bytes{{{FILESYSTEMS}}})"], ["[[ mountpoint ]]"], "percent"),
        # The free space over how fast it shrank in the last 6 hours; 365 when it does not shrink.
        graph("Days until the disk is full (at the last 6 hours' rate)",
              [f"clamp_max(node_filesystem_avail_bytes{{{FILESYSTEMS}}} / 86400 "
               f"/ clamp_min(-deriv(node_filesystem_avail_bytes{{{FILESYSTEMS}}}[6h]), 1e-9), 365)"],
              ["[[ mountpoint ]]"], "days", note="365: not filling up"),
        graph("Requests per second, per app", [f"sum by (app) (rate(http_requests_total{{{apps}}}[$w]))"],
              ["[[ app ]]"]),
        graph("5xx responses (share of all), per app", [share_5xx(apps, "app")], ["[[ app ]]"], "percent"),
        graph("p95 latency, per app", [quantile(0.95, apps, "app")], ["[[ app ]]"], "seconds"),
        graph("p99 latency, per app", [quantile(0.99, apps, "app")], ["[[ app ]]"], "seconds"),
    ]
    if clustered:
        per_node = f'sum by (node) (rate(http_requests_total{{{apps},node!=""}}[$w]))'
        graphs.append(graph("Requests per second, per node", [per_node], ["[[ node ]]"]))
    graphs += [
        graph("Container restarts (Docker's count: a new release's containers start at 0)",
              ["onebox_container_restarts_total"], ["[[ app ]] [[ service ]]"]),
        graph("nginx: requests per second (every site) and open connections",
              ["rate(nginx_http_requests_total[$w])", "nginx_connections_active"], ["requests/s", "connections"]),
    ]
    if any(app.postgres_enabled for app in s.app_list):
        graphs += [graph("PostgreSQL connections, per app", ["sum by (app) (pg_stat_database_numbackends)"], ["[[ app ]]"]),
                   graph("PostgreSQL size, per app", ["sum by (app) (pg_database_size_bytes)"], ["[[ app ]]"], "bytes")]
    if any(app.redis_enabled for app in s.app_list):
        graphs.append(graph("Redis memory, per app", ["redis_memory_used_bytes"], ["[[ app ]]"], "bytes"))
    if any(app.backup_enabled for app in s.app_list):
        graphs.append(graph("Backup age, per app", ["(time() - onebox_backup_last_success_timestamp_seconds) / 3600"],
                            ["[[ app ]]"], "hours"))
    return graphs


def page_config(s: Settings, app_nodes: dict[str, list[Node]]) -> dict[str, Any]:
    """What the pages' script reads: the graphs of the server and of each app, the ranges, and the
    scrape interval (the shortest rate window is 4 of them)."""
    return {
        "scrape_seconds": s.monitoring_scrape_interval, "ranges": RANGES, "default_range": DEFAULT_RANGE,
        "events": EVENTS,
        "server": server_graphs(s, any(app_nodes.values())),
        "apps": {app.app_name: {"graphs": app_graphs(app, app_nodes.get(app.app_name, [])),
                                "nodes": [node.name for node in app_nodes.get(app.app_name, [])]}
                 for app in s.app_list},
    }


def config_script(s: Settings, app_nodes: dict[str, list[Node]]) -> str:
    """page_config as a JavaScript value inside a <script> of a Go template: no `<` (no `</script>`)
    and no `{{` (a template action) comes out of it."""
    text = json.dumps(page_config(s, app_nodes)).replace("<", "\\u003c")  # the ranges in their order
    assert "{{" not in text, "a graph's expression would start a Go template action"
    return text
