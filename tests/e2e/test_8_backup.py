"""Backups that restore, on the converged target: the timer's run with an off-site copy
(restic to a real S3 API, moto, on this machine), the host check, a named release dump
restored through deploys/restore.py with the API answering only once the data is back,
a restore that runs to its end when `onebox restore` and its SSH session are killed, the
refusal without confirmation, a restore from off-site after the local copies and the data
are gone, and disaster recovery: a fresh server converged from the same settings,
restored from the off-site repository alone."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from onebox.verify import edge
from onebox.verify.api import wait_ready
from testbed import pebble
from testbed.deploy import ROOT, run_deploy
from testbed.target import GATEWAY_IP, Target, down, up

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))

from stack import free_port  # noqa: E402

SECRETS = {
    "ONEBOX_BACKUP_RESTIC_PASSWORD": "e2e-restic-password-0123456789",
    "ONEBOX_BACKUP_S3_ACCESS_KEY_ID": "e2e-key-id",
    "ONEBOX_BACKUP_S3_SECRET_ACCESS_KEY": "e2e-secret-access-key-0123456789",
}
SCRIPT = "/usr/local/sbin/onebox-backup"
BACKUP_CHECKS = "tests/host/test_backup.py"


@pytest.fixture(scope="module")
def offsite(deployed) -> Iterator[dict[str, str]]:
    """moto on the bridge gateway (where the target reaches this machine); the target
    converged with an off-site repository there. Converged back without it afterwards."""
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(binary), "-H", GATEWAY_IP, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        env = {"ONEBOX_BACKUP_RESTIC_REPOSITORY": f"s3:http://{GATEWAY_IP}:{port}/onebox-e2e", **SECRETS}
        first = deployed.deploy(env)
        assert first.returncode == 0, first.output[-3000:]
        again = deployed.deploy(env)
        assert again.changed == 0, again.output[-3000:]
        for value in SECRETS.values():
            assert value not in first.output + again.output
        yield env
    finally:
        deployed.deploy()
        proc.terminate()
        proc.wait(timeout=10)


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


def restore_data(source: str, name: str | None = None) -> list[str]:
    """deploys/restore.py's pyinfra data (what `onebox restore INVENTORY --from SOURCE [--name NAME] --yes` passes)."""
    return ["--data", "onebox_restore_confirm=yes", "--data", f"onebox_restore_from={source}",
            *(["--data", f"onebox_restore_name={name}"] if name else [])]


def test_the_timer_run_backs_up_locally_and_off_site(deployed, offsite) -> None:
    ssh_ok(deployed, "systemctl start onebox-backup.service")  # a oneshot: returns when the run ends
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


def test_a_failing_backup_is_reported_by_the_unit_and_the_host_check(deployed, offsite) -> None:
    nowhere = {**offsite, "ONEBOX_BACKUP_RESTIC_REPOSITORY": f"s3:http://{GATEWAY_IP}:{free_port()}/nowhere"}
    converged = deployed.deploy(nowhere)
    assert converged.returncode == 0, converged.output[-3000:]
    try:
        assert deployed.ssh("systemctl start onebox-backup.service").returncode != 0
        assert ssh_ok(deployed, "systemctl show onebox-backup.service -p Result --value").strip() == "exit-code"
        assert "unreachable" in ssh_ok(deployed, "journalctl -u onebox-backup --no-pager -n 20")
        check = deployed.host_checks(BACKUP_CHECKS)
        assert check.returncode != 0
        assert "failed" in check.stdout and "unreachable" in check.stdout, check.stdout[-3000:]
    finally:
        back = deployed.deploy(offsite)
        assert back.returncode == 0, back.output[-3000:]
    ssh_ok(deployed, "systemctl start onebox-backup.service")
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
    ssh_ok(deployed, "systemctl start onebox-backup.service")
    expected = items_checksum(deployed.target, deployed.settings)
    pg = deployed.container_ids()["postgres"]
    volume = ssh_ok(deployed, f"docker inspect -f '{{{{range .Mounts}}}}{{{{.Name}}}}{{{{end}}}}' {pg}").strip()
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
    ssh_ok(deployed, "systemctl start onebox-backup.service")
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


def test_disaster_recovery_on_a_fresh_server(deployed, offsite, api, root_ca) -> None:
    """The server is lost. A fresh one, converged from the same settings and secrets, the
    DNS names pointed at it, restored from the off-site repository: the same rows, served
    through nginx and TLS."""
    ids = [add_item(api, f"disaster {n}") for n in range(25)]
    ssh_ok(deployed, "systemctl start onebox-backup.service")
    expected = items_checksum(deployed.target, deployed.settings)
    assert int(expected.split()[0]) >= len(ids)

    replacement = Target(index=2)
    down(replacement)
    up(replacement)
    pebble.point_names_at(deployed.settings.domains, replacement.ip)
    try:
        converged = run_deploy(replacement.index, offsite)
        assert converged.returncode == 0, converged.output[-3000:]
        assert items_checksum(replacement, deployed.settings) == "0 " + hashlib.md5(b"").hexdigest()

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
        with edge.https(replacement.ip, deployed.domain, root_ca) as client:
            assert edge.get(client, deployed.domain, f"/items/{ids[-1]}").json()["name"] == "disaster 24"
        for value in SECRETS.values():
            assert value not in converged.output + refused.output + restored.output
    finally:
        pebble.clear_names(deployed.settings.domains)
        down(replacement)
