"""The release engine on the real target: a failed release never removes what the running
version uses (expand/contract of the dependencies), maintenance mode survives a converge,
and the operator's command line rolls back to a named release and restores a backup."""

from __future__ import annotations

import httpx
from operator_cli import onebox

from onebox.verify import edge
from onebox.verify.api import wait_ready

MINIMAL = {"ONEBOX_EXTRA_GROUPS": "local_minimal"}  # another app: no Redis


def last_release_log(deployed) -> str:
    """The lines of the last release in the (appended) release log."""
    log = deployed.ssh(f"cat {deployed.settings.app_dir}/release.log").stdout
    return log[log.rindex("new release "):]


def test_a_failed_release_without_redis_leaves_the_running_version_its_redis(deployed, api) -> None:
    live, redis = deployed.live_release(), deployed.container_ids()["redis"]
    failing = deployed.deploy({**MINIMAL, "ONEBOX_APP_RELEASE_COMMAND": '["false"]'})
    assert failing.returncode != 0 and "the release step failed" in failing.output, failing.output[-3000:]
    assert deployed.live_release() == live
    assert deployed.container_ids()["redis"] == redis  # not removed, not recreated
    ready = httpx.get(f"{api}/ready")
    assert ready.status_code == 200, ready.text  # the running version still has its Redis
    # The next converge that succeeds drops Redis, only once the new version is live.
    switched = deployed.deploy(MINIMAL)
    assert switched.returncode == 0, switched.output[-3000:]
    log = last_release_log(deployed)
    assert "redis" not in deployed.container_ids()
    assert log.index("switching nginx to it") < log.index("no longer uses redis")
    # Back to examples/app: Redis is added before its release, which then is ready.
    back = deployed.deploy()
    assert back.returncode == 0, back.output[-3000:]
    assert httpx.get(f"{api}/ready").status_code == 200


def test_maintenance_mode_answers_503_but_on_the_health_path_and_survives_a_converge(deployed, root_ca) -> None:
    with edge.https(deployed.ip, deployed.domain, root_ca) as client:
        def get(path: str) -> httpx.Response:
            return edge.get(client, deployed.domain, path)

        assert get("/version").status_code == 200
        on = onebox(deployed, "maintenance on", "--message", "Back at 10:00 UTC")
        assert on.returncode == 0, on.stdout + on.stderr
        page = get("/version")
        assert page.status_code == 503 and "Back at 10:00 UTC" in page.text
        assert page.headers["retry-after"].isdigit() and "strict-transport-security" in page.headers
        assert get(deployed.settings.app_health_path).status_code == 200
        assert deployed.ssh("docker ps --filter label=com.docker.compose.service=api -q").stdout.strip()  # app runs
        converge = deployed.deploy()
        assert converge.returncode == 0 and converge.changed == 0, converge.output[-3000:]
        assert get("/version").status_code == 503
        status = onebox(deployed, "status")
        assert "maintenance    ON" in status.stdout and status.returncode != 0
        off = onebox(deployed, "maintenance off")
        assert off.returncode == 0, off.stdout + off.stderr
        assert get("/version").status_code == 200
        assert "retry-after" not in get("/version").headers
        assert deployed.deploy().changed == 0


def test_rollback_to_a_named_release_through_the_command_line(deployed, api) -> None:
    live = deployed.live_release()
    releases = deployed.ssh("onebox-release releases").stdout
    # An earlier release of this same app (examples/app), not the live one.
    older = [line.split()[0] for line in releases.splitlines()[1:]
             if line[:2] == "  " and len(line.split()) > 3 and line.split()[2].startswith("app@")]
    assert older, releases
    target = older[0]
    refused = onebox(deployed, "rollback", "../../etc/passwd")
    assert refused.returncode == 2 and "not a release id" in refused.stdout + refused.stderr
    result = onebox(deployed, "rollback", target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert deployed.live_release() == target
    back = onebox(deployed, "rollback")  # no id: the previous release, the one live before
    assert back.returncode == 0, back.stdout + back.stderr
    assert deployed.live_release() == live


def test_a_backup_and_a_restore_through_the_command_line(deployed, api) -> None:
    kept = httpx.post(f"{api}/items", json={"name": "kept by the backup"}).json()["id"]
    assert onebox(deployed, "backup now").returncode == 0
    listing = onebox(deployed, "backup list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    name = next(word for line in listing.stdout.splitlines() for word in line.split() if word.endswith("-manual"))
    lost = httpx.post(f"{api}/items", json={"name": "after the backup"}).json()["id"]
    refused = onebox(deployed, "restore", "--from", "local", "--name", name)
    assert refused.returncode == 2 and "--yes" in refused.stdout + refused.stderr
    restored = onebox(deployed, "restore", "--from", "local", "--name", name, "--yes")
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
    wait_ready(api)
    assert httpx.get(f"{api}/items/{kept}").status_code == 200
    assert httpx.get(f"{api}/items/{lost}").status_code == 404
