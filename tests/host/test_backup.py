"""Backups run on schedule and the last one succeeded recently (skipped when backup_enabled = False).

The monitoring check: it fails when the last successful backup is older than
backup_max_age_hours (before the first run: when backups were configured longer ago than
that) or when the last run failed, and says why.
"""

from __future__ import annotations

import json

import pytest

from deploys.backup import CONFIG, INSTALLED_STAMP, SCRIPT, SECRETS, STATE_DIR


@pytest.fixture(autouse=True)
def _backups_enabled(settings) -> None:
    if not settings.backup_enabled:
        pytest.skip("backups are disabled (backup_enabled = False)")


def _server_now(host) -> int:
    return int(host.check_output("date +%s"))


def test_the_backup_timer_is_scheduled(host) -> None:
    timer = host.service("onebox-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert host.check_output("systemctl show onebox-backup.timer -p NextElapseUSecRealtime --value"), \
        "the backup timer has no next run"


def test_backups_and_their_secrets_are_root_only(host, settings) -> None:
    directory = host.file(settings.backup_dir)
    assert directory.is_directory
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
    for path in (CONFIG, SECRETS):
        config = host.file(path)
        assert (config.user, config.group, config.mode) == ("root", "root", 0o600), path
    assert host.file(SCRIPT).mode == 0o755


def test_the_last_backup_run_did_not_fail(host) -> None:
    result = host.check_output("systemctl show onebox-backup.service -p Result --value")
    last_run = host.file(f"{STATE_DIR}/last-run.json")
    reason = json.loads(last_run.content_string).get("error") if last_run.exists else None
    assert result == "success", f"onebox-backup.service failed ({result}): {reason or 'journalctl -u onebox-backup'}"
    if last_run.exists:
        state = json.loads(last_run.content_string)
        assert state["result"] == "ok", f"the last backup run failed: {state.get('error')}"


def test_the_last_successful_backup_is_recent(host, settings) -> None:
    limit = settings.backup_max_age_hours * 3600
    stamp = host.file(f"{STATE_DIR}/last-success")
    if stamp.exists:
        age = _server_now(host) - int(stamp.content_string.strip())
        assert age <= limit, (f"the last successful backup is {age / 3600:.1f} h old "
                              f"(backup_max_age_hours = {settings.backup_max_age_hours})")
        return
    # No run yet: fine while the schedule is younger than the limit.
    installed = host.file(INSTALLED_STAMP)
    assert installed.exists, f"no backup has ever succeeded and {INSTALLED_STAMP} is missing: run the deploy"
    age = _server_now(host) - int(installed.mtime.timestamp())
    assert age <= limit, (f"no backup has succeeded since backups were configured {age / 3600:.1f} h ago; "
                          "see `journalctl -u onebox-backup`")
