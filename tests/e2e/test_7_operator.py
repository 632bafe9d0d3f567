"""The operator's day: status, logs, one-off commands, --dry --diff that says why, and
interrupted deploys that leave the server on one version."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest
from operator_cli import onebox, status_once_alerts_settle
from test_4_rollout import app_copy

from testbed.deploy import PYINFRA, ROOT


def test_status_names_the_live_release_and_a_stopped_service(deployed) -> None:
    healthy = onebox(deployed, "status")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert deployed.live_release() in healthy.stdout
    assert "certificate" in healthy.stdout and "security updates pending" in healthy.stdout
    deployed.ssh(f"docker kill {deployed.container_ids()['api']}")
    broken = onebox(deployed, "status")
    assert broken.returncode != 0
    assert "ATTENTION: api is exited" in broken.stdout
    assert deployed.deploy().returncode == 0
    settled = status_once_alerts_settle(deployed)
    assert settled.returncode == 0, settled.stdout


def test_logs_show_a_request_made_through_nginx(deployed, api) -> None:
    marker = f"operator-{time.time_ns()}"
    assert httpx.get(f"{api}/version", headers={"X-Request-ID": marker}).status_code == 200
    logs = onebox(deployed, "logs", "-n", "200")
    assert logs.returncode == 0 and marker in logs.stdout
    line = next(line for line in logs.stdout.splitlines() if marker in line)
    assert not line.split("] ", 1)[-1].lstrip().startswith("{")  # rendered for people
    raw = onebox(deployed, "logs", "-n", "200", "--raw")
    assert any(marker in line and '"request_id"' in line for line in raw.stdout.splitlines())


def test_a_one_off_command_runs_in_the_live_image(deployed) -> None:
    result = onebox(deployed, "run", "--", "alembic", "current")
    assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout


def test_dry_diff_names_the_changed_input_and_changes_nothing(deployed, tmp_path) -> None:
    # Without -y, as a user runs it: pyinfra detects changes (with -y it would skip detection).
    live = deployed.live_release()
    code = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "dry-1"))}, flags=["--dry", "--diff"], confirm=True)
    assert code.returncode == 0, code.output[-3000:]
    assert "release because" in code.output and "source changed" in code.output
    setting = deployed.deploy({"ONEBOX_API_WORKERS": "5"}, flags=["--dry", "--diff"], confirm=True)
    assert setting.returncode == 0, setting.output[-3000:]
    assert '"api_workers": "5"' in setting.output  # the spec's diff
    assert deployed.live_release() == live
    assert deployed.deploy().changed == 0


def interrupt_mid_release(deployed, tmp_path, sig: int, version: str) -> int:
    env = {**os.environ, "ONEBOX_TARGET_INDEX": str(deployed.target.index),
           "ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, version))}
    run = subprocess.Popen([PYINFRA, "-y", "inventories/local.py", "deploys/site.py"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until the server has made this run's release (not an earlier run's)
        if f"(app-{version}@" in deployed.ssh(f"cat {deployed.settings.app_dir}/release.log").stdout:
            break
        time.sleep(0.3)
    else:
        run.kill()
        pytest.fail(f"the release of {version} never started: {run.communicate()[0][-3000:]}")
    run.send_signal(sig)
    run.communicate(timeout=60)
    # The server finishes (or undoes) the release on its own.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and deployed.ssh("pgrep -f 'onebox-release --app-dir .* _apply'").returncode == 0:
        time.sleep(1)
    return run.returncode


def test_an_interrupted_deploy_leaves_one_version_serving(deployed, api, tmp_path) -> None:
    for sig, version in ((signal.SIGINT, "int-1"), (signal.SIGKILL, "kill-1")):
        before = httpx.get(f"{api}/version").json()["version"]
        code = interrupt_mid_release(deployed, tmp_path, sig, version)
        if sig == signal.SIGINT:
            # Interrupted, and it says so: 130, or killed by SIGINT (which a shell reports as 130),
            # never pyinfra's own "Exiting upon user request!" exit 0.
            assert code in (130, -signal.SIGINT), code
        assert httpx.get(f"{api}/version").json()["version"] in (before, version)
        assert "transition" not in deployed.ssh(f"cat {deployed.settings.app_dir}/state.json").stdout.replace(
            '"transition": null', "")
        env = {"ONEBOX_APP_SOURCE_DIR": str(tmp_path / f"app-{version}")}
        assert deployed.deploy(env).returncode == 0
        assert deployed.deploy(env).changed == 0
    assert deployed.deploy().returncode == 0  # the group data's own app again
