"""Someone is told when it breaks: on the e2e target, each breakage sends an alert to real
receivers on this machine (a webhook endpoint and an SMTP server) within a bounded time, and
a "resolved" after the fix. group_data/local.py runs monitoring on a short clock."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import httpx
import pytest
from operator_cli import onebox, status_once_alerts_settle
from receivers import Receivers

from onebox.verify.api import api_tunnel
from testbed.deploy import ROOT, changed_operations

ARTIFACTS = ROOT / ".onebox" / "artifacts"  # the test run's artifacts: the dashboard's screenshot
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
        assert deployed.ssh("systemctl start onebox-backup.service").returncode != 0
        got.wait_webhook("OneboxHttp5xx", "firing", app="onebox")
        got.wait_webhook("OneboxBackupFailed", "firing", app="onebox")
    finally:
        deployed.ssh(f"docker start {postgres}")
    assert deployed.ssh("sleep 5; systemctl start onebox-backup.service").returncode == 0
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


def test_the_dashboard_renders_the_prepared_views_with_data_in_a_real_browser(deployed) -> None:
    dashboard = subprocess.Popen([sys.executable, "-m", "onebox.cli", "dashboard", "inventories/local.py"], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "ONEBOX_TARGET_INDEX": str(deployed.target.index)})
    try:
        assert dashboard.stdout is not None
        url = dashboard.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/consoles/onebox.html"), url
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
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot = ARTIFACTS / "dashboard.png"
        screenshot.unlink(missing_ok=True)
        browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1800"]
        shot = subprocess.run([*browser, f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=120)
        assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-2000:]
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
