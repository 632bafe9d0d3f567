"""Releases under load through nginx+TLS: a code change, a setting change, a rollback and
a failed release drop no request, not even for a client that never retries (wrk at
saturation during the code change and the rollback), and reload nothing (issue 33); a
killed service is healed by the next converge; two converges at once do not fight."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from test_4_rollout import app_copy
from websockets.exceptions import ConnectionClosed

from onebox.verify import edge, wrk
from onebox.verify.api import wait_ready
from onebox.verify.load import Load
from testbed.deploy import run_deploy


def nginx_processes(deployed) -> list[str]:
    """nginx's master and workers: the same PIDs after a release means nginx was not reloaded."""
    return sorted(deployed.ssh("pgrep -x nginx").stdout.split())


HOSTS_MARK = "# onebox-e2e-wrk"


def wrk_during(deployed, action) -> tuple[dict[str, float], object]:
    """wrk on the target through nginx+TLS (8 keep-alive connections, no retries) for as long as
    `action` runs; its summary and what action returned."""
    assert deployed.ssh("command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk"
                        " >/dev/null").returncode == 0
    deployed.ssh(f"grep -q '{HOSTS_MARK}' /etc/hosts || echo '127.0.0.1 {deployed.domain} {HOSTS_MARK}' >> /etc/hosts")
    run = wrk.command(f"https://{deployed.domain}{deployed.settings.app_health_path}", 8, 900)
    try:
        assert deployed.ssh(f"setsid nohup {run} > /tmp/wrk.out 2>&1 < /dev/null &").returncode == 0
        time.sleep(3)
        returned = action()
        time.sleep(3)
        deployed.ssh("pkill -INT -x wrk")  # wrk prints its summary when interrupted
        for _ in range(30):
            out = deployed.ssh("cat /tmp/wrk.out").stdout
            if "Requests/sec" in out:
                return wrk.summary(out), returned
            time.sleep(1)
        raise AssertionError(f"wrk printed no summary: {out[-1000:]}")
    finally:
        deployed.ssh(f"pkill -x wrk; sed -i '/{HOSTS_MARK}$/d' /etc/hosts")


def deploy_under_load(deployed, root_ca, env=None, deploy="deploys/site.py", expect_ok=True, flags=None,
                      saturate=False):
    """The deploy while clients write and read through nginx+TLS and a slow request is in flight;
    `saturate`: wrk on the target too, 8 keep-alive connections that never retry (issue 33)."""
    before = nginx_processes(deployed)
    with Load(deployed.ip, deployed.domain, root_ca, slow_path="/slow/6", write_path="/items") as load:
        slow = threading.Thread(target=load.slow_request)
        slow.start()
        run = lambda: deployed.deploy(env, deploy=deploy, flags=flags)  # noqa: E731
        figures, result = wrk_during(deployed, run) if saturate else (None, run())
        slow.join()
    assert (result.returncode == 0) == expect_ok, result.output[-3000:]
    report = load.report
    print(f"{report.requests} requests, {len(report.failures)} failed, {len(report.retried)} GETs retried on a closed"
          f" keep-alive connection, {len(report.written)} rows written")
    assert report.failures == [], report.failures[:10]
    # Not even a client that never retries saw an error: the switch closed no connection (issue 33).
    assert report.retried == [], report.retried[:10]
    assert nginx_processes(deployed) == before, "nginx was reloaded (or restarted) by a release"
    assert report.slow_status == 200
    assert report.requests > 50
    if figures is not None:
        print(f"wrk at saturation: {figures}")
        assert figures["requests"] > 1000, figures
        assert (figures["socket_errors"], figures["errors"]) == (0, 0), figures
        log = deployed.ssh(f"cat {deployed.settings.app_dir}/release.log").stdout
        assert "drained in" in log.rsplit("is healthy in slot", 1)[-1], log[-2000:]
    return result, report


def all_rows_there(api, ids) -> None:
    for row_id in ids:
        assert httpx.get(f"{api}/items/{row_id}").status_code == 200, row_id


def version(api) -> str:
    return httpx.get(f"{api}/version").json()["version"]


RELEASES: dict[str, str] = {}


def test_a_code_change_drops_no_request(deployed, root_ca, api, tmp_path) -> None:
    before = deployed.live_release()
    RELEASES["before"] = before
    _, report = deploy_under_load(deployed, root_ca, {"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "zd-1"))},
                                  saturate=True)
    assert deployed.live_release() != before
    RELEASES["zd-1"] = deployed.live_release()
    assert version(api) == "zd-1"
    all_rows_there(api, report.written)


def test_a_setting_change_drops_no_request(deployed, root_ca, api, tmp_path) -> None:
    source = str(app_copy(tmp_path, "zd-1"))
    _, report = deploy_under_load(deployed, root_ca, {"ONEBOX_APP_SOURCE_DIR": source, "ONEBOX_API_WORKERS": "3"})
    RELEASES["zd-1-w3"] = deployed.live_release()
    assert "WEB_CONCURRENCY=3" in deployed.ssh("docker inspect -f '{{.Config.Env}}' " + deployed.container_ids()["api"]).stdout
    all_rows_there(api, report.written)


def test_a_failed_release_drops_no_request_and_never_serves(deployed, root_ca, api, tmp_path) -> None:
    live = deployed.live_release()
    result, _ = deploy_under_load(deployed, root_ca, {"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "zd-bad", crashing=True))},
                                  expect_ok=False)
    assert "did not become healthy" in result.output and "never received traffic" in result.output
    assert deployed.live_release() == live
    assert version(api) == "zd-1"


def test_rollback_goes_to_the_previous_release_without_building(deployed, root_ca, api) -> None:
    images_before = deployed.ssh("docker images -q | sort").stdout
    result, _ = deploy_under_load(deployed, root_ca, deploy="deploys/rollback.py", saturate=True)
    assert "migrations are NOT reversed" in result.output
    # The previous release: the same code before the setting change (2 workers again).
    assert deployed.live_release() == RELEASES["zd-1"]
    assert "WEB_CONCURRENCY=2" in deployed.ssh("docker inspect -f '{{.Config.Env}}' " + deployed.container_ids()["api"]).stdout
    assert deployed.ssh("docker images -q | sort").stdout == images_before  # nothing built, nothing pulled


def test_rollback_to_a_named_release_returns_its_code(deployed, root_ca, api) -> None:
    deploy_under_load(deployed, root_ca, deploy="deploys/rollback.py",
                      flags=["--data", f"onebox_rollback_to={RELEASES['before']}"])
    assert deployed.live_release() == RELEASES["before"]
    assert version(api) != "zd-1"
    releases = deployed.ssh("onebox-release releases").stdout
    assert f"* {RELEASES['before']}" in releases


def test_rolling_forward_again_works_and_old_releases_are_pruned(deployed, api, tmp_path) -> None:
    result = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "zd-2")), "ONEBOX_RELEASES_KEPT": "2"})
    assert result.returncode == 0, result.output[-3000:]
    assert version(api) == "zd-2"
    kept = deployed.ssh(f"ls {deployed.settings.app_dir}/releases").stdout.split()
    # The newest two, and the release a rollback now goes back to: the one rolled back to
    # before this deploy, older than both (issue 28, defect 3).
    assert len(kept) == 3, kept
    assert {deployed.live_release(), RELEASES["before"], RELEASES["zd-1-w3"]} == set(kept), kept
    tags = deployed.ssh(f"docker images --format '{{{{.Tag}}}}' {deployed.settings.app_image}").stdout.split()
    assert len(tags) <= 3, tags


@pytest.mark.parametrize("service", ["api", "redis", "postgres"])
def test_a_killed_service_is_restored_by_the_next_converge(deployed, api, service) -> None:
    back = deployed.deploy()  # group data's own app again
    assert back.returncode == 0, back.output[-3000:]
    assert deployed.ssh(f"docker kill {deployed.container_ids()[service]}").returncode == 0
    assert deployed.host_checks("tests/host/test_app.py").returncode != 0
    healed = deployed.deploy()
    assert healed.returncode == 0, healed.output[-3000:]
    assert healed.changed >= 1 and f"{service} is exited" in healed.output
    assert deployed.host_checks("tests/host/test_app.py").returncode == 0
    wait_ready(api)
    assert deployed.deploy().changed == 0


def test_what_docker_leaves_killed_runs_again_at_the_next_boot(deployed, api) -> None:
    # The boot unit as systemd runs it at boot (a reboot of the target costs a minute more).
    ids = deployed.container_ids()
    assert deployed.ssh(f"docker kill {ids['api']} {ids['redis']}").returncode == 0
    booted = deployed.ssh("systemctl start onebox-boot.service && journalctl -u onebox-boot.service -n 20 --no-pager")
    assert booted.returncode == 0, booted.stdout + booted.stderr
    assert deployed.host_checks("tests/host/test_app.py").returncode == 0
    wait_ready(api)
    assert deployed.deploy().changed == 0  # nothing left for a converge to fix


def test_two_converges_at_once_do_not_fight(deployed, api, tmp_path) -> None:
    env = {"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "zd-lock"))}
    results = []
    runs = [threading.Thread(target=lambda: results.append(run_deploy(deployed.target.index, env))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert [r.returncode for r in results] == [0, 0], [r.output[-2000:] for r in results]
    assert version(api) == "zd-lock"
    assert deployed.deploy().returncode == 0


def test_websocket_clients_of_the_old_version_get_a_close_frame(deployed, root_ca, api, tmp_path) -> None:
    with edge.websocket(deployed.ip, deployed.domain, "/ws/echo", root_ca) as ws:
        ws.send("before the release")
        assert ws.recv(timeout=10) == "before the release"
        result = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "zd-ws"))})
        assert result.returncode == 0, result.output[-3000:]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=60)
    # A close frame from the draining server, 1001 "going away" (examples/app/app/going_away.py), not a reset.
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    assert version(api) == "zd-ws"
    assert edge.websocket_echo(deployed.ip, deployed.domain, "/ws/echo", "after", root_ca) == "after"
