"""Backups run on schedule and the last one succeeded recently (skipped when backup_enabled = False).

The monitoring check: it fails when the last successful backup is older than
backup_max_age_hours (before the first run: when backups were configured longer ago than
that) or when the last run failed, and says why.
"""

from __future__ import annotations

import json

import pytest

from onebox.deploys.backup import SCRIPT, installed_stamp, units


@pytest.fixture(autouse=True)
def _backups_enabled(app) -> None:
    if not app.backup_enabled:
        pytest.skip(f"backups of app {app.app_name} are disabled (backup_enabled = False)")


def _server_now(host) -> int:
    return int(host.check_output("date +%s"))


def test_the_backup_timer_is_scheduled(host, app) -> None:
    timer_name, _ = units(app)
    timer = host.service(timer_name)
    assert timer.is_enabled
    assert timer.is_running
    assert host.check_output(f"systemctl show {timer_name} -p NextElapseUSecRealtime --value"), \
        f"{timer_name} has no next run"


def test_backups_and_their_secrets_are_root_only(host, app) -> None:
    for path in {app.backup_dir, app.app_backup_dir}:
        directory = host.file(path)
        assert directory.is_directory
        assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
    for path in (app.files.backup_config, app.files.backup_secrets):
        config = host.file(path)
        assert (config.user, config.group, config.mode) == ("root", "root", 0o600), path
    assert host.file(SCRIPT).mode == 0o755


def test_the_last_backup_run_did_not_fail(host, app) -> None:
    _, service = units(app)
    result = host.check_output(f"systemctl show {service} -p Result --value")
    last_run = host.file(f"{app.files.backup_state_dir}/last-run.json")
    reason = json.loads(last_run.content_string).get("error") if last_run.exists else None
    assert result == "success", f"{service} failed ({result}): {reason or f'journalctl -u {service}'}"
    if last_run.exists:
        state = json.loads(last_run.content_string)
        assert state["result"] == "ok", f"the last backup run failed: {state.get('error')}"


def test_the_last_successful_backup_is_recent(host, app) -> None:
    limit = app.backup_max_age_hours * 3600
    stamp = host.file(app.files.last_backup_success())
    if stamp.exists:
        age = _server_now(host) - int(stamp.content_string.strip())
        assert age <= limit, (f"the last successful backup is {age / 3600:.1f} h old "
                              f"(backup_max_age_hours = {app.backup_max_age_hours})")
        return
    # No run yet: fine while the schedule is younger than the limit.
    installed = host.file(installed_stamp(app))
    assert installed.exists, f"no backup has ever succeeded and {installed.path} is missing: run the deploy"
    age = _server_now(host) - int(installed.mtime.timestamp())
    assert age <= limit, (f"no backup has succeeded since backups were configured {age / 3600:.1f} h ago; "
                          f"see `journalctl -u {units(app)[1]}`")
