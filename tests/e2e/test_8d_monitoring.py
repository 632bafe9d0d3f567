"""Someone is told when it breaks: on the e2e target, each breakage sends an alert to real
receivers on this machine (a webhook endpoint and an SMTP server) within a bounded time, and
a "resolved" after the fix. group_data/local.py runs monitoring on a short clock."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from operator_cli import onebox, status_once_alerts_settle
from receivers import Receivers
from test_8_backup import BACKUP_RUN as BACKUP_START  # waits for a timer run in progress first

from onebox.verify.api import api_tunnel
from testbed.deploy import ROOT, changed_operations

ARTIFACTS = ROOT / ".onebox" / "artifacts"  # the test run's artifacts: the dashboard's screenshots
PORTS = {9090: "prometheus", 9093: "alertmanager", 9100: "node exporter", 9115: "blackbox exporter",
         9187: "postgres exporter", 9121: "redis exporter", 9113: "nginx exporter", 9180: "nginx stub_status"}


@pytest.fixture(scope="module")
def got():
    with Receivers() as receivers:
        yield receivers


def query(deployed, expr: str) -> list[dict]:
    out = deployed.ssh(f"curl -s --get http://127.0.0.1:9090/api/v1/query --data-urlencode {shlex.quote('query=' + expr)}")
    return json.loads(out.stdout)["data"]["result"]


def wait_query(deployed, expr: str, timeout: float = 90) -> list[dict]:
    """A query's result once it has one (the first scrapes after a restart)."""
    deadline = time.monotonic() + timeout
    while not (result := query(deployed, expr)) and time.monotonic() < deadline:
        time.sleep(2)
    assert result, f"{expr}: no data within {timeout:.0f} s"
    return result


def as_monitor(deployed, sql: str) -> str:
    """psql's answer to `sql` as the monitoring role, over the network with its password (given on
    stdin: in no command line), as the exporter connects; 127.0.0.1 in the container is trusted."""
    script = ('read -r PGPASSWORD; export PGPASSWORD; '
              f'psql -h "$(hostname -i)" -U onebox_monitor -d app -X -c {shlex.quote(sql)} 2>&1')
    pg = live_container(deployed, "postgres")
    return deployed.ssh(f"docker exec -i {pg} sh -c {shlex.quote(script)} < /etc/onebox/postgres-monitor.password").stdout


def live_container(deployed, service: str) -> str:
    ids = deployed.ssh(f"docker ps -q --filter label=com.docker.compose.service={service}").stdout.split()
    assert len(ids) == 1, ids
    return ids[0]


def test_the_monitoring_stack_listens_on_loopback_only_and_scrapes_everything(deployed) -> None:
    listening = deployed.ssh("ss -ltnH").stdout.split("\n")
    for port, name in PORTS.items():
        bound = [line.split()[3] for line in listening if line.split() and line.split()[3].endswith(f":{port}")]
        assert bound == [f"127.0.0.1:{port}"], f"{name}: {bound}"
    live_slot = json.loads(deployed.ssh(f"cat {deployed.settings.app_dir}/state.json").stdout)["slot"]
    wanted = {(job, None) for job in ("prometheus", "alertmanager", "node", "nginx", "onebox_public_url_onebox")}
    wanted.add(("onebox_app_onebox", live_slot))  # the app's own metrics, from its live slot
    deadline = time.monotonic() + 60  # the first scrapes after a restart
    while True:
        targets = {(r["metric"]["job"], r["metric"].get("slot")): r["value"][1]
                   for r in query(deployed, 'up{instance=~"127.0.0.1:.*|https://.*"}')}
        if all(targets.get(key) == "1" for key in wanted) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {key: targets.get(key) for key in wanted} == dict.fromkeys(wanted, "1"), targets
    assert wait_query(deployed, "probe_success")[0]["value"][1] == "1"
    assert wait_query(deployed, 'onebox_container_up{service="api"}')[0]["value"][1] == "1"
    for metric in ("pg_up", "redis_up"):  # the app's own PostgreSQL and Redis, on its Docker network
        assert [r["value"][1] for r in wait_query(deployed, f'{metric}{{app="onebox"}}')] == ["1"], metric
    assert wait_query(deployed, 'pg_database_size_bytes{app="onebox",datname="app"}')  # the monitoring role reads stats
    # ... and nothing else: the app's tables are not its to read.
    assert "permission denied for table alembic_version" in as_monitor(deployed, "SELECT * FROM alembic_version")
    again = deployed.deploy()
    assert again.changed == 0, changed_operations(again.output)


def test_a_killed_api_alerts_by_webhook_and_mail_is_listed_by_status_then_resolves(deployed, got) -> None:
    api = live_container(deployed, "api")
    deployed.ssh(f"docker kill {api}")  # under restart: unless-stopped it stays down
    try:
        fired = got.wait_webhook("OneboxContainerDown", "firing", app="onebox", service="api")
        assert "api is not running" in fired["annotations"]["summary"]
        got.wait_webhook("OneboxPublicUrlDown", "firing", app="onebox")
        got.wait_mail("FIRING OneboxContainerDown")
        status = onebox(deployed, "status")
        assert status.returncode == 3, status.stdout + status.stderr
        assert "ATTENTION: alert OneboxContainerDown" in status.stdout
        assert "sent to webhook, e-mail" in status.stdout
        # A silenced alert pages nobody: status leaves it out too.
        am = "amtool --alertmanager.url=http://127.0.0.1:9093"
        silence = deployed.ssh(f"{am} silence add alertname=OneboxContainerDown -d 10m -c e2e -a e2e").stdout.strip()
        try:
            assert "alert OneboxContainerDown" not in onebox(deployed, "status").stdout
        finally:
            deployed.ssh(f"{am} silence expire {silence}")
    finally:
        deployed.ssh(f"docker start {api}")
    got.wait_webhook("OneboxContainerDown", "resolved", app="onebox", service="api")
    got.wait_mail("RESOLVED OneboxContainerDown")
    settled = status_once_alerts_settle(deployed)
    assert settled.returncode == 0, settled.stdout


def test_a_full_disk_alerts_then_resolves(deployed, got) -> None:
    mount = "/srv/onebox-e2e-disk"  # not under /mnt: Debian's node exporter leaves /mnt and /media out
    deployed.ssh(f"mkdir -p {mount} && mount -t tmpfs -o size=32m tmpfs {mount} && fallocate -l 31M {mount}/fill")
    try:
        fired = got.wait_webhook("OneboxDiskFull", "firing", mountpoint=mount)
        assert "% full" in fired["annotations"]["summary"]
    finally:
        deployed.ssh(f"rm -f {mount}/fill")
    got.wait_webhook("OneboxDiskFull", "resolved", mountpoint=mount)
    deployed.ssh(f"umount {mount}")


def test_a_burst_of_5xx_and_a_failed_backup_alert_then_resolve(deployed, got) -> None:
    postgres = live_container(deployed, "postgres")
    deployed.ssh(f"docker stop {postgres}")
    try:
        with api_tunnel(deployed.ssh_args) as api:
            statuses = set()
            for _ in range(60):  # over several scrapes: rate() sees no increase in a series' first sample
                statuses.add(httpx.get(f"{api}/ready", timeout=10).status_code)
                time.sleep(0.4)
        assert statuses == {503}, statuses  # readiness needs the database
        assert deployed.ssh(BACKUP_START).returncode != 0
        got.wait_webhook("OneboxHttp5xx", "firing", app="onebox")
        got.wait_webhook("OneboxBackupFailed", "firing", app="onebox")
    finally:
        deployed.ssh(f"docker start {postgres}")
    assert deployed.ssh(f"sleep 5; {BACKUP_START}").returncode == 0
    got.wait_webhook("OneboxBackupFailed", "resolved", app="onebox")
    got.wait_webhook("OneboxHttp5xx", "resolved", app="onebox")


def test_a_certificate_close_to_expiry_alerts_then_resolves(deployed, got) -> None:
    lowered = deployed.deploy({"ONEBOX_ALERT_CERTIFICATE_DAYS": "365"})  # Pebble's certificates last less
    assert lowered.returncode == 0, lowered.output[-3000:]
    assert changed_operations(lowered.output) == ["Monitor the server and its apps | Write the alert rules (checked by "
                                                  "promtool).", "Monitor the server and its apps | Reload prometheus "
                                                  "for its new configuration."]
    fired = got.wait_webhook("OneboxCertificateExpiring", "firing", app="onebox")
    assert "expires in" in fired["annotations"]["summary"]
    back = deployed.deploy()
    assert back.returncode == 0, back.output[-3000:]
    got.wait_webhook("OneboxCertificateExpiring", "resolved", app="onebox")


def test_monitoring_off_removes_what_it_installed_and_on_brings_it_back(deployed) -> None:
    off = deployed.deploy({"ONEBOX_MONITORING_ENABLED": "false"})
    assert off.returncode == 0, off.output[-3000:]
    assert deployed.ssh("dpkg -l prometheus prometheus-alertmanager 2>/dev/null | grep -c '^ii'").stdout.strip() in ("", "0")
    assert deployed.ssh("test -e /etc/prometheus || test -e /etc/systemd/system/onebox-metrics.timer").returncode != 0
    gone = ("/etc/onebox/postgres-monitor.password", "/etc/onebox/postgres-exporter.yml")
    assert deployed.ssh(" || ".join(f"test -e {path}" for path in gone)).returncode != 0
    assert deployed.ssh("ss -ltnH | grep -c ':9180 '").stdout.strip() == "0"  # nginx's stub_status
    assert "0 rows" in deployed.ssh(f"docker exec -u postgres {live_container(deployed, 'postgres')} psql -U app -d app -c "
                                    "\"SELECT FROM pg_roles WHERE rolname = 'onebox_monitor'\"").stdout
    assert "monitoring is off" in onebox(deployed, "status").stdout
    assert deployed.deploy({"ONEBOX_MONITORING_ENABLED": "false"}).changed == 0
    on = deployed.deploy()
    assert on.returncode == 0, on.output[-3000:]
    # Every exporter is scraped again (up == 1 for each job, within wait_query's time).
    for job in ("node", "alertmanager", "nginx", "postgres", "redis"):
        assert wait_query(deployed, f'up{{job="{job}"}} == 1'), job
    # A new password, and the role made again with it: the exporter reads PostgreSQL again.
    assert [r["value"][1] for r in wait_query(deployed, 'pg_up{app="onebox"} == 1')] == ["1"]


@contextlib.contextmanager
def dashboard(deployed) -> Iterator[dict[str, str]]:
    """`onebox dashboard` running, and the URLs it printed: "values", "server", "app NAME"."""
    process = subprocess.Popen([sys.executable, "-m", "onebox.cli", "dashboard", "inventories/local.py"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "ONEBOX_TARGET_INDEX": str(deployed.target.index)})
    try:
        assert process.stdout is not None
        urls = {"values": process.stdout.readline().split()[-1]}
        while (line := process.stdout.readline().strip()).startswith("graphs of "):
            what, url = line.removeprefix("graphs of ").split(": ")
            urls["server" if what == "the server" else what] = url
        yield urls
    finally:
        process.terminate()
        process.wait(timeout=30)


BROWSER = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def test_the_dashboard_renders_the_prepared_views_with_data_in_a_real_browser(deployed) -> None:
    with dashboard(deployed) as urls:
        url = urls["values"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/consoles/onebox.html"), url
        base = url.removesuffix("/consoles/onebox.html")
        assert urls["server"] == f"{base}/consoles/onebox-server.html?range=6h"
        deadline = time.monotonic() + 90  # data scraped (monitoring may just have been reinstalled)

        def with_data(page: str) -> bool:
            flat = page.replace("\n", "")
            return "<td>onebox</td><td>api</td>" in flat and "days left" in page and "no request data yet" not in page

        while not with_data(page := httpx.get(url, timeout=20).text):
            assert time.monotonic() < deadline, page[-3000:]
            time.sleep(3)
        for view in ("Requests per second, 5xx, latency", "Public URLs", "CPU, memory, disk", "Containers",
                     "PostgreSQL and Redis", "nginx", "Backups"):
            assert view in page, view
        assert "<td>onebox</td><td>api</td>" in page.replace("\n", "")  # the containers view has data
        assert "CPU busy" in page
        assert '<a href="onebox-app.html?app=onebox">app onebox</a>' in page  # and the graphs are linked
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot = ARTIFACTS / "dashboard.png"
        screenshot.unlink(missing_ok=True)
        shot = subprocess.run([*BROWSER, "--window-size=1280,1800", f"--screenshot={screenshot}", url],
                              capture_output=True, text=True, timeout=120)
        assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-2000:]


ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def changes_listed(deployed) -> dict[tuple[str, str], int]:
    """`onebox releases`' CHANGES: (kind, release) -> the newest time it lists, as a Unix time."""
    listed = onebox(deployed, "releases")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    found: dict[tuple[str, str], int] = {}
    for at, kind, release in re.findall(rf"({ISO}) +(release|rollback|restore|maintenance_on|maintenance_off) +(\S+)",
                                        listed.stdout):
        when = int(datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
        found.setdefault((kind, release), when)  # newest first
    return found


def browse(url: str, screenshot: Path) -> str:
    """The page's DOM once its scripts ran (the graphs' queries answered), and a screenshot of it."""
    screenshot.unlink(missing_ok=True)
    shot = subprocess.run([*BROWSER, "--window-size=1280,2600", "--virtual-time-budget=10000",
                           f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-2000:]
    dom = subprocess.run([*BROWSER, "--virtual-time-budget=10000", "--dump-dom", url], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def marks(dom: str) -> list[dict[str, str]]:
    """Each mark line the page drew on a graph, by its attributes."""
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', tag)) for tag in re.findall(r"<line [^>]*>", dom)
            if "onebox_mark" in tag]


def test_the_graphs_have_data_and_mark_a_release_and_a_maintenance_window_as_onebox_releases_lists_them(
        deployed) -> None:
    # A release (a setting of the app), a maintenance window, and a release back to the group data's settings.
    released = deployed.deploy({"ONEBOX_API_WORKERS": "3"})
    assert released.returncode == 0, released.output[-3000:]
    release = deployed.live_release()
    try:
        for mode in ("on", "off"):
            switched = onebox(deployed, f"maintenance {mode}")
            assert switched.returncode == 0, switched.stdout + switched.stderr
            time.sleep(2)  # the window has a width on the graph
    finally:
        back = deployed.deploy()
        assert back.returncode == 0, back.output[-3000:]
    current = deployed.live_release()
    assert current != release
    listed = changes_listed(deployed)
    wanted = {("release", release), ("maintenance_on", release), ("maintenance_off", release), ("release", current)}
    assert wanted <= set(listed), listed
    # The mark of a release is when nginx switched to it: after it was made (its id), within the deploy.
    made = int(datetime.strptime(release[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp())
    assert 0 <= listed[("release", release)] - made < 600
    # Prometheus has the same times (the node exporter's textfile, written by onebox-metrics.timer).
    for kind, id_ in wanted:
        series = f'onebox_event_timestamp_seconds{{app="onebox",kind="{kind}",release="{id_}"}}'
        assert [r["value"][1] for r in wait_query(deployed, series)] == [str(listed[(kind, id_)])], series
    with dashboard(deployed) as urls:
        app_url = urls["app onebox"].replace("range=6h", "range=1h")
        assert app_url.endswith("/consoles/onebox-app.html?app=onebox&range=1h"), urls
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        dom = browse(app_url, ARTIFACTS / "graphs-app.png")
        # Graphs with data points: Rickshaw's lines, each a path of many segments.
        lines = re.findall(r'<path class="path" d="M([^"]*)"', dom)
        assert len([d for d in lines if d.count("L") >= 5]) >= 3, dom[-3000:]  # Prometheus re-enabled minutes ago
        assert "Error loading data" not in dom
        for title in ("Requests per second", "5xx responses (share of all)", "Latency", "Container restarts",
                      "PostgreSQL connections", "PostgreSQL size", "Redis memory", "Backup age"):
            assert f"<h2>{title}" in dom, title
        drawn = marks(dom)
        for kind, id_ in wanted:  # on every graph with data, at the time `onebox releases` lists
            at = [mark["data-time"] for mark in drawn if (mark["data-kind"], mark["data-release"]) == (kind, id_)]
            assert at and set(at) == {str(listed[(kind, id_)])}, (kind, id_, drawn)
        assert 'class="onebox_window"' in dom  # the maintenance window, shaded
        when = datetime.fromtimestamp(listed[("release", release)], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert f"{when} release {release}</li>" in dom  # the page's list of changes says it in words too
        # An hour, as the app's: the target is younger than a day, and a day's step leaves too few points.
        server = browse(urls["server"].replace("range=6h", "range=1h"), ARTIFACTS / "graphs-server.png")
        assert len([d for d in re.findall(r'<path class="path" d="M([^"]*)"', server) if d.count("L") >= 5]) >= 3
        assert {mark["data-release"] for mark in marks(server) if mark["data-kind"] == "release"} >= {release, current}
