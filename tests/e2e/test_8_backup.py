"""Backups that restore, on the converged target: the timer's run with an off-site copy
(restic and pgBackRest to a real S3 API, moto over HTTPS with a private CA, on this machine),
point-in-time recovery between two writes (and a time before the window refused), the host check, a named release dump
restored through deploys/restore.py with the API answering only once the data is back,
a restore that runs to its end when `onebox restore` and its SSH session are killed, the
refusal without confirmation, a restore from off-site after the local copies and the data
are gone, and disaster recovery after a power loss: a fresh server converged from the same
settings, restored from the off-site repository alone, dumps first, then PostgreSQL's WAL to
the last archived segment."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from onebox.verify import edge
from onebox.verify.api import wait_ready
from testbed import pebble
from testbed.deploy import ROOT, run_deploy
from testbed.target import GATEWAY_IP, Target, down, oom_kills, up, wait_for_ssh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))

from stack import free_port, moto_https  # noqa: E402

SECRETS = {
    "ONEBOX_BACKUP_RESTIC_PASSWORD": "e2e-restic-password-0123456789",
    "ONEBOX_BACKUP_S3_ACCESS_KEY_ID": "e2e-key-id",
    "ONEBOX_BACKUP_S3_SECRET_ACCESS_KEY": "e2e-secret-access-key-0123456789",
}
SCRIPT = "/usr/local/sbin/onebox-backup"
ARTIFACTS = ROOT / ".onebox" / "artifacts"  # the recovery point the disaster test measured
BACKUP_CHECKS = "tests/host/test_backup.py"


@pytest.fixture(scope="module")
def offsite(deployed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real S3 API over HTTPS with a private CA (moto behind nginx) on the bridge gateway, where
    the target reaches this machine: pgBackRest 2.55 reaches S3 over HTTPS only. The target
    converged with an off-site repository there and point-in-time recovery on (WAL archived at
    least every 30 s). Converged back without either afterwards."""
    with moto_https(GATEWAY_IP, tmp_path_factory.mktemp("s3")) as (endpoint, ca):
        env = {"ONEBOX_BACKUP_RESTIC_REPOSITORY": f"s3:{endpoint}/onebox-e2e", "ONEBOX_BACKUP_S3_CA_BUNDLE": str(ca),
               "ONEBOX_BACKUP_PITR_ENABLED": "true", "ONEBOX_BACKUP_PITR_ARCHIVE_TIMEOUT": "30", **SECRETS}
        try:
            first = deployed.deploy(env)
            assert first.returncode == 0, first.output[-3000:]
            again = deployed.deploy(env)
            assert again.changed == 0, again.output[-3000:]
            for value in SECRETS.values():
                assert value not in first.output + again.output
            yield env
        finally:
            deployed.deploy()


# A run of its own: `systemctl start` of a oneshot already running (the timer's, at backup_on_calendar)
# only waits for that run, whose dump may predate the test's rows. Wait for it to end, then start one.
BACKUP_RUN = ("while [ \"$(systemctl show -p ActiveState --value onebox-backup.service)\" = activating ]; "
              "do sleep 1; done; systemctl start onebox-backup.service "
              "|| { journalctl -u onebox-backup --no-pager -n 40; exit 1; }")  # a failure says why


def ssh_ok(deployed, command: str) -> str:
    result = deployed.ssh(command)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def items_checksum(target: Target, settings) -> str:
    """Every row of the items table, every column, in order: one digest."""
    query = "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM items t"
    pg = "$(docker ps -q --filter label=com.docker.compose.service=postgres " \
         f"--filter label=com.docker.compose.project={settings.app_name})"
    result = target.ssh(f"docker exec -u postgres {pg} psql -U {settings.postgres_user} -d {settings.postgres_db} "
                        f"-Atc \"{query}\"")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def add_item(api: str, name: str) -> int:
    response = httpx.post(f"{api}/items", json={"name": name}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def restore_data(source: str, name: str | None = None, to: str | None = None) -> list[str]:
    """deploys/restore.py's pyinfra data (what `onebox restore INVENTORY --from SOURCE [--name NAME | --to TIME]
    --yes` passes)."""
    return ["--data", "onebox_restore_confirm=yes", "--data", f"onebox_restore_from={source}",
            *(["--data", f"onebox_restore_name={name}"] if name else []),
            *(["--data", f"onebox_restore_to={to}"] if to else [])]


def item_ids(target: Target, settings) -> set[int]:
    pg = "$(docker ps -q --filter label=com.docker.compose.service=postgres " \
         f"--filter label=com.docker.compose.project={settings.app_name})"
    result = target.ssh(f"docker exec -u postgres {pg} psql -U {settings.postgres_user} -d {settings.postgres_db} "
                        "-Atc 'SELECT id FROM items'")
    assert result.returncode == 0, result.stderr
    return {int(line) for line in result.stdout.split()}


def test_the_timer_run_backs_up_locally_and_off_site(deployed, offsite) -> None:
    ssh_ok(deployed, BACKUP_RUN)  # a oneshot: returns when the run ends
    journal = ssh_ok(deployed, "journalctl -u onebox-backup --no-pager -n 50")
    assert "uploaded" in journal and "run finished" in journal
    for value in SECRETS.values():
        assert value not in journal
    listing = ssh_ok(deployed, f"{SCRIPT} list")
    assert "-scheduled" in listing.split("off-site", 1)[1]
    mode = ssh_ok(deployed, f"stat -c '%a %U' {deployed.settings.backup_dir} /etc/onebox/backup.env").split("\n")
    assert mode[:2] == ["700 root", "600 root"]


def test_host_check_passes(deployed, offsite) -> None:
    result = deployed.host_checks(BACKUP_CHECKS)
    assert result.returncode == 0, result.stdout[-3000:]


def test_point_in_time_recovery_between_two_writes(deployed, offsite, api) -> None:
    """`onebox restore --to TIME`: the row written before TIME is back, the one after is gone; a time
    before the window is refused, with the window named, before anything stops."""
    listing = ssh_ok(deployed, f"{SCRIPT} list")
    start = re.search(r"^point-in-time \(local\): from (\S+) to now", listing, re.MULTILINE)
    assert start and "point-in-time (off-site): from " in listing, listing
    status = deployed.ssh("onebox-release status").stdout
    assert f"point in time  from {start[1]} to now" in status, status
    too_early = (dt.datetime.fromisoformat(start[1]) - dt.timedelta(minutes=10)).isoformat()
    before = deployed.container_ids()
    refused = deployed.deploy(offsite, deploy="deploys/restore.py", flags=restore_data("local", to=too_early))
    assert refused.returncode != 0
    assert f"outside the recovery window of this server's repository: from {start[1]} to now" in refused.output, \
        refused.output[-3000:]
    assert deployed.container_ids() == before  # nothing was stopped or replaced

    early = add_item(api, "before the target time")
    time.sleep(1.5)
    target = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep(2.5)
    late = add_item(api, "after the target time")
    restored = deployed.deploy(offsite, deploy="deploys/restore.py", flags=restore_data("local", to=target.isoformat()))
    assert restored.returncode == 0, restored.output[-3000:]
    wait_ready(api)
    assert httpx.get(f"{api}/items/{early}", timeout=10).json()["name"] == "before the target time"
    assert httpx.get(f"{api}/items/{late}", timeout=10).status_code == 404
    # Archiving goes on from the new timeline: the metrics say nothing fails, and a backup run passes.
    ssh_ok(deployed, BACKUP_RUN)
    textfile = "/var/lib/prometheus/node-exporter/onebox.prom"
    published = ("for i in $(seq 90); do grep -q '^onebox_pitr_archive_failing{app=\"onebox\"} 0' " + textfile +
                 " && grep -q '^onebox_pitr_last_archived_timestamp_seconds{app=\"onebox\"}' " + textfile +
                 " && exit 0; sleep 1; done; exit 1")
    assert deployed.ssh(published).returncode == 0, ssh_ok(deployed, f"grep pitr {textfile} || true")


def test_a_failing_backup_is_reported_by_the_unit_and_the_host_check(deployed, offsite) -> None:
    # Point-in-time recovery off meanwhile: its setup would fail the converge on the unreachable bucket.
    nowhere = {**offsite, "ONEBOX_BACKUP_RESTIC_REPOSITORY": f"s3:https://{GATEWAY_IP}:{free_port()}/nowhere",
               "ONEBOX_BACKUP_PITR_ENABLED": "false"}
    converged = deployed.deploy(nowhere)
    assert converged.returncode == 0, converged.output[-3000:]
    try:
        assert deployed.ssh(BACKUP_RUN).returncode != 0
        assert ssh_ok(deployed, "systemctl show onebox-backup.service -p Result --value").strip() == "exit-code"
        assert "unreachable" in ssh_ok(deployed, "journalctl -u onebox-backup --no-pager -n 20")
        check = deployed.host_checks(BACKUP_CHECKS)
        assert check.returncode != 0
        assert "failed" in check.stdout and "unreachable" in check.stdout, check.stdout[-3000:]
    finally:
        back = deployed.deploy(offsite)
        assert back.returncode == 0, back.output[-3000:]
    ssh_ok(deployed, BACKUP_RUN)
    assert deployed.host_checks(BACKUP_CHECKS).returncode == 0


def test_restore_refuses_without_confirmation(deployed, offsite) -> None:
    before = ssh_ok(deployed, f"ls {deployed.settings.backup_dir}")
    refused = deployed.deploy(offsite, deploy="deploys/restore.py", flags=["--data", "onebox_restore_from=local"])
    assert refused.returncode != 0
    assert "--data onebox_restore_confirm=yes" in refused.output
    assert ssh_ok(deployed, f"ls {deployed.settings.backup_dir}") == before


def test_a_release_dump_restores_through_the_deploy(deployed, offsite, api) -> None:
    kept = add_item(api, "before the release")
    label = f"release-e2e{int(time.time())}"
    ssh_ok(deployed, f"{SCRIPT} dump --label {label}")
    name = next(line.split()[0] for line in ssh_ok(deployed, f"{SCRIPT} list").splitlines() if label in line)
    lost = add_item(api, "after the release")

    result = deployed.deploy(offsite, deploy="deploys/restore.py", flags=restore_data("local", name))
    assert result.returncode == 0, result.output[-3000:]
    wait_ready(api)
    assert httpx.get(f"{api}/items/{kept}", timeout=10).json()["name"] == "before the release"
    assert httpx.get(f"{api}/items/{lost}", timeout=10).status_code == 404
    assert "-pre-restore" in ssh_ok(deployed, f"{SCRIPT} list")
    # Marked for the dashboard's graphs, under the live release, with the backup restored.
    live = deployed.live_release()
    assert re.search(rf"^\S+Z +restore +{live} +{re.escape(name)}$", ssh_ok(deployed, "onebox-release releases"),
                     re.MULTILINE)
    series = f'onebox_event_timestamp_seconds{{app="onebox",kind="restore",release="{live}"}}'
    published = ("for i in $(seq 60); do grep -qF " + shlex.quote(series) + " /var/lib/prometheus/node-exporter/onebox.prom "
                 "&& exit 0; sleep 1; done; exit 1")  # the next run of onebox-metrics.timer
    assert deployed.ssh(published).returncode == 0, series


def test_a_restore_runs_to_its_end_when_the_controller_and_its_ssh_session_are_killed(deployed, offsite, api) -> None:
    """`onebox restore` killed (its SSH session with it) once the server has started the restore:
    the restore, detached like a release, runs to its end, and the app serves the restored rows."""
    kept = add_item(api, "before the lost session")
    label = f"session-e2e{int(time.time())}"
    ssh_ok(deployed, f"{SCRIPT} dump --label {label}")
    name = next(line.split()[0] for line in ssh_ok(deployed, f"{SCRIPT} list").splitlines() if label in line)
    lost = add_item(api, "after the backup")
    log = f"{deployed.settings.app_dir}/release.log"

    env = {**os.environ, "ONEBOX_TARGET_INDEX": str(deployed.target.index), **offsite}
    controller = subprocess.Popen([sys.executable, "-m", "onebox.cli", "restore", "inventories/local.py", "--from", "local",
                                   "--name", name, "--yes"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180  # the deploy installs the tools first
        while deployed.ssh(f"grep -qF 'restoring backup {name}' {log}").returncode != 0:
            assert controller.poll() is None, f"onebox restore ended ({controller.returncode}) before the restore began"
            assert time.monotonic() < deadline, "the restore never began on the server"
            time.sleep(0.3)
        # The safety dump and the app's stop come next: seconds of work the kill lands in.
        assert controller.poll() is None, "the restore ended before the controller could be killed"
    finally:
        os.killpg(controller.pid, signal.SIGKILL)  # onebox, pyinfra and its SSH connection, at once
        controller.wait(timeout=30)

    deadline = time.monotonic() + 300
    # [_]: the pattern does not match the shell that runs pgrep.
    while deployed.ssh("pgrep -f 'onebox-release --app-dir .* [_]locked'").returncode == 0:
        assert time.monotonic() < deadline, "the detached restore did not end within 300 s"
        time.sleep(1)
    run_log = ssh_ok(deployed, f"cat {log}").split(f"restoring backup {name}", 1)[1]
    assert f"restored {name}" in run_log and "restore failed" not in run_log, run_log[-3000:]
    wait_ready(api)
    assert httpx.get(f"{api}/items/{kept}", timeout=10).json()["name"] == "before the lost session"
    assert httpx.get(f"{api}/items/{lost}", timeout=10).status_code == 404


def test_a_destroyed_database_volume_is_restored_from_the_last_backup(deployed, offsite, api, root_ca) -> None:
    """The restore drill: rows written through the API, a backup, the database volume gone,
    a converge (a new, empty PostgreSQL), the restore: the same rows, served through nginx."""
    ids = [add_item(api, f"drill {n}") for n in range(10)]
    ssh_ok(deployed, BACKUP_RUN)
    expected = items_checksum(deployed.target, deployed.settings)
    pg = deployed.container_ids()["postgres"]
    data = '{{range .Mounts}}{{if eq .Destination "/var/lib/postgresql/data"}}{{.Name}}{{end}}{{end}}'
    volume = ssh_ok(deployed, f"docker inspect -f '{data}' {pg}").strip()
    ssh_ok(deployed, f"docker rm -f {pg} && docker volume rm {volume}")

    healed = deployed.deploy(offsite)
    assert healed.returncode == 0, healed.output[-3000:]
    assert httpx.get(f"{api}/items/{ids[0]}", timeout=10).status_code != 200  # an empty database

    restored = deployed.deploy(offsite, deploy="deploys/restore.py", flags=restore_data("local"))
    assert restored.returncode == 0, restored.output[-3000:]
    assert items_checksum(deployed.target, deployed.settings) == expected
    with edge.https(deployed.ip, deployed.domain, root_ca) as client:
        assert edge.get(client, deployed.domain, f"/items/{ids[-1]}").json()["name"] == "drill 9"


def test_off_site_restore_after_losing_local_backups_and_data(deployed, offsite, api) -> None:
    kept = add_item(api, "kept off-site")
    ssh_ok(deployed, BACKUP_RUN)
    # The data and every local backup are gone.
    pg = "$(docker ps -q --filter label=com.docker.compose.service=postgres " \
         f"--filter label=com.docker.compose.project={deployed.settings.app_name})"
    ssh_ok(deployed, f"docker exec -u postgres {pg} psql -U {deployed.settings.postgres_user} "
                     f"-d {deployed.settings.postgres_db} -c 'DELETE FROM items'")
    ssh_ok(deployed, f"rm -rf {deployed.settings.backup_dir}/*")
    assert httpx.get(f"{api}/items/{kept}", timeout=10).status_code == 404

    result = deployed.deploy(offsite, deploy="deploys/restore.py", flags=restore_data("offsite"))
    assert result.returncode == 0, result.output[-3000:]
    wait_ready(api)
    assert httpx.get(f"{api}/items/{kept}", timeout=10).json()["name"] == "kept off-site"


class Writer(threading.Thread):
    """A row a second through nginx and TLS, each with the time its 201 came back."""

    def __init__(self, deployed, root_ca: Path) -> None:
        super().__init__(daemon=True)
        self.deployed, self.root_ca, self.acked, self.stop = deployed, root_ca, [], threading.Event()

    def run(self) -> None:
        with edge.https(self.deployed.ip, self.deployed.domain, self.root_ca) as client:
            count = 0
            while not self.stop.wait(1):
                count += 1
                try:
                    response = client.post("/items", json={"name": f"writer {count}"}, timeout=5,
                                           extensions={"sni_hostname": self.deployed.domain})
                except httpx.HTTPError:
                    continue
                if response.status_code == 201:
                    self.acked.append((time.time(), response.json()["id"]))


def power_on(deployed, root_ca: Path) -> None:
    """The lost target started again (its power back), serving: the next modules use it."""
    subprocess.run(["docker", "start", deployed.target.name], check=True, capture_output=True)
    wait_for_ssh(deployed.ip)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with edge.https(deployed.ip, deployed.domain, root_ca) as client:
                if edge.get(client, deployed.domain, "/ready").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError("the target did not serve /ready within 300 s of its power coming back")


def test_disaster_recovery_on_a_fresh_server(deployed, offsite, api, root_ca) -> None:
    """The server loses power (`docker kill` of the target) while a client writes a row a second.
    A fresh one with 1 GB of memory and no swap, converged from the same settings and secrets, the
    DNS names pointed at it: under its own name it finds no dumps of its own and is told whose to
    take over; under the lost server's name (backup_server_name) it restores the last dump, then
    PostgreSQL from the off-site WAL archive to its end: every row written up to 60 s before the
    power went, served through nginx and TLS. (The fresh server is converged while the writes go
    on, before the loss: its first converge takes nothing from the lost one, and the suite saves
    the 75 s of writing.)"""
    ids = [add_item(api, f"disaster {n}") for n in range(25)]
    ssh_ok(deployed, BACKUP_RUN)
    expected = items_checksum(deployed.target, deployed.settings)
    assert int(expected.split()[0]) >= len(ids)
    writer = Writer(deployed, root_ca)
    writer.start()
    writing_since = time.monotonic()

    # The replacement is the cheapest useful VPS: 1 GB of memory, no swap (issue 30's footprint).
    replacement = Target(index=2, memory="1g")
    down(replacement)
    up(replacement)
    pebble.point_names_at(deployed.settings.domains, replacement.ip)  # the writer uses the lost server's address
    try:
        converged = run_deploy(replacement.index, offsite)
        assert converged.returncode == 0, converged.output[-3000:]
        assert items_checksum(replacement, deployed.settings) == "0 " + hashlib.md5(b"").hexdigest()

        time.sleep(max(0.0, 75 - (time.monotonic() - writing_since)))  # rows acknowledged over 60 s before the loss
        killed_at = time.time()
        subprocess.run(["docker", "kill", deployed.target.name], check=True, capture_output=True)
        writer.stop.set()
        writer.join(timeout=10)
        must_survive = [row for at, row in writer.acked if at <= killed_at - 60]
        assert len(must_survive) >= 10, writer.acked

        # Its inventory name (a new IP) is not the lost server's: it finds none of its own
        # backups and is told whose to take over, and how.
        refused = run_deploy(replacement.index, offsite, deploy="deploys/restore.py", flags=restore_data("offsite"))
        assert refused.returncode != 0
        assert f"set backup_server_name={deployed.ip}" in refused.output, refused.output[-3000:]
        assert items_checksum(replacement, deployed.settings) == "0 " + hashlib.md5(b"").hexdigest()

        takes_over = {**offsite, "ONEBOX_BACKUP_SERVER_NAME": deployed.ip}
        restored = run_deploy(replacement.index, takes_over, deploy="deploys/restore.py", flags=restore_data("offsite"))
        assert restored.returncode == 0, restored.output[-3000:]
        assert items_checksum(replacement, deployed.settings) == expected

        # The lost server's name for its point-in-time copy too: converged, then to the archive's end.
        renamed = run_deploy(replacement.index, takes_over)
        assert renamed.returncode == 0, renamed.output[-3000:]
        latest = run_deploy(replacement.index, takes_over, deploy="deploys/restore.py",
                            flags=restore_data("offsite", to="latest"))
        assert latest.returncode == 0, latest.output[-3000:]
        present = item_ids(replacement, deployed.settings)
        assert set(ids) <= present
        missing = [row for row in must_survive if row not in present]
        assert not missing, f"rows acknowledged over 60 s before the power loss are missing: {missing}"
        newest = max((at for at, row in writer.acked if row in present), default=0.0)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "recovery-point.txt").write_text(
            f"power lost {killed_at - newest:.1f} s after the newest row the fresh server has "
            f"({len(writer.acked)} rows acknowledged, backup_pitr_archive_timeout 30)\n")
        with edge.https(replacement.ip, deployed.domain, root_ca) as client:
            assert edge.get(client, deployed.domain, f"/items/{ids[-1]}").json()["name"] == "disaster 24"
            assert edge.get(client, deployed.domain, f"/items/{must_survive[-1]}").status_code == 200
        for value in SECRETS.values():
            assert value not in converged.output + refused.output + restored.output + renamed.output + latest.output
        # Converged (monitoring on, the app built and released), restored twice, serving: nothing was
        # killed for memory on 1 GB.
        assert oom_kills(replacement) == 0
    finally:
        writer.stop.set()
        pebble.clear_names(deployed.settings.domains)
        down(replacement)
        power_on(deployed, root_ca)
