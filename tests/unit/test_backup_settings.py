"""Backup settings, the files the backup role writes, and the restore's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onebox.contract import backup_config_text
from onebox.deploys.backup import backup_config, backup_secrets, restore_refusal, secrets_files
from onebox.hosts import server_name
from onebox.inventory import group_data
from onebox.render import render
from onebox.settings import Settings, SettingsError, validate_settings

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDwF/CGfO1iK1iGe/PyFpjWy8+QxR3af2u5cGnj69JZD me@laptop"
PASSWORD = "a-long-restic-password-kept-offline"
S3_SECRET = "s3-secret-access-key-0123456789"


def settings(**overrides: object) -> Settings:
    data = group_data("no-such-group")
    data.update(deploy_ssh_keys=[KEY], domains=["api.example.com"], letsencrypt_email="ops@example.com")
    data.update(overrides)
    return validate_settings(data)


def offsite(monkeypatch: pytest.MonkeyPatch, repository: str = "s3:https://s3.example.com/backups") -> Settings:
    monkeypatch.setenv("ONEBOX_BACKUP_RESTIC_PASSWORD", PASSWORD)
    monkeypatch.setenv("ONEBOX_BACKUP_S3_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("ONEBOX_BACKUP_S3_SECRET_ACCESS_KEY", S3_SECRET)
    return settings(backup_restic_repository=repository)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"backup_dir": "/"}, "backup_dir: String should match pattern"),
        ({"backup_dir": "/var"}, "is not a directory of its own"),
        ({"backup_on_calendar": "daily; rm -rf /"}, "not a systemd OnCalendar expression"),
        ({"backup_keep_last": 0}, "backup_keep_last: Input should be greater than or equal to 1"),
        ({"backup_restic_repository": "ftp://backup.example.com/x"}, "backup_restic_repository: expected 's3:"),
        ({"backup_restic_repository": "s3:https://s3.example.com/b"}, "ONEBOX_BACKUP_RESTIC_PASSWORD is not"),
    ],
)
def test_bad_backup_settings_are_named(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError, match="invalid settings") as error:
        settings(**overrides)
    assert expected in str(error.value)


def test_s3_repository_needs_keys_and_a_long_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_BACKUP_RESTIC_PASSWORD", PASSWORD)
    with pytest.raises(SettingsError, match="ONEBOX_BACKUP_S3_ACCESS_KEY_ID"):
        settings(backup_restic_repository="s3:https://s3.example.com/backups")
    monkeypatch.setenv("ONEBOX_BACKUP_RESTIC_PASSWORD", "short")
    with pytest.raises(SettingsError, match="at least 16") as error:
        settings(backup_restic_repository="sftp:backup@host.example.com:/srv/restic")
    assert "short" not in str(error.value)


def test_backup_secrets_in_group_data_are_refused() -> None:
    with pytest.raises(SettingsError, match="backup_restic_password found in group data"):
        settings(backup_restic_password=PASSWORD)


def test_the_server_config_holds_no_secret_and_the_secrets_file_holds_them(monkeypatch: pytest.MonkeyPatch) -> None:
    s = offsite(monkeypatch)
    config = backup_config_text(backup_config(s, "prod"))
    assert PASSWORD not in config and S3_SECRET not in config
    assert json.loads(config)["restic_repository"] == "s3:https://s3.example.com/backups"
    assert backup_secrets(s) == (f"RESTIC_PASSWORD={PASSWORD}\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\n"
                                 f"AWS_SECRET_ACCESS_KEY={S3_SECRET}\n")
    assert PASSWORD not in repr(s)
    assert backup_secrets(settings()) == ""


def test_each_app_has_its_own_secrets_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several apps, an app with off-site copies gets its secrets even when the first app
    has none: one secrets file per app, named in that app's configuration."""
    monkeypatch.setenv("ONEBOX_BACKUP_RESTIC_PASSWORD", PASSWORD)
    first = settings(apps={"api": {}, "jobs": {
        "domains": ["jobs.example.com"], "api_port": 8010, "docker_network_subnet": "172.30.1.0/24",
        "backup_restic_repository": "sftp:backup@host.example.com:/srv/restic"}})
    api, jobs = first.app_list
    files = {backup_config(app, "prod").secrets_file: backup_secrets(app) for app in first.app_list}
    assert files == {"/etc/onebox/backup-api.env": "", "/etc/onebox/backup-jobs.env": f"RESTIC_PASSWORD={PASSWORD}\n"}
    assert secrets_files(first) == files
    # A single-app server keeps the file it always had.
    assert backup_config(settings(), "prod").secrets_file == "/etc/onebox/backup.env"


def test_the_server_is_known_off_site_by_its_inventory_name_or_backup_server_name() -> None:
    """Not by the app's name, which staging and production share."""
    assert server_name(settings(), "prod.example.com") == "prod.example.com"
    assert server_name(settings(backup_server_name="shop-production"), "203.0.113.5") == "shop-production"
    assert backup_config(settings(), server_name(settings(), "prod.example.com")).server_name == \
        "prod.example.com"
    with pytest.raises(SettingsError, match="backup_server_name: String should match pattern"):
        settings(backup_server_name="two words")
    with pytest.raises(SettingsError, match="apps.jobs.backup_server_name: not a setting an app can have"):
        settings(apps={"api": {}, "jobs": {"backup_server_name": "x"}})


def test_the_server_script_accepts_the_config_the_role_writes(tmp_path: Path) -> None:
    """Every key the role writes is one the script knows (it refuses unknown keys)."""
    from onebox.server.backup.config import Config

    path = tmp_path / "backup.json"
    path.write_text(backup_config_text(backup_config(settings(), "prod")))
    config = Config.read(str(path))
    assert config.backup_dir == "/var/backups/onebox" and config.keep_daily == 7


def test_the_timer_runs_the_script_on_the_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(backup_on_calendar="Mon..Fri *-*-* 02:30:00")
    timer = render("systemd/onebox-backup.timer.j2", s=s)
    assert "OnCalendar=Mon..Fri *-*-* 02:30:00" in timer and "Persistent=true" in timer
    service = render("systemd/onebox-backup.service.j2", s=s, script="/usr/local/sbin/onebox-backup")
    assert "Type=oneshot" in service and "ExecStart=/usr/local/sbin/onebox-backup --config /etc/onebox/backup.json run" in service


@pytest.mark.parametrize(
    ("confirm", "source", "name", "offsite_configured", "expected"),
    [
        ("", "local", "", True, "Nothing was changed. To go ahead, run `onebox restore INVENTORY --from local|offsite "
                                "[--name NAME] --yes`"),
        ("YES please", "local", "", True, "--data onebox_restore_confirm=yes --data onebox_restore_from=local|offsite"),
        ("yes", "", "", True, "--from (onebox_restore_from) must be 'local' or 'offsite'"),
        ("yes", "local", "../etc", True, "--name (onebox_restore_name): '../etc' is not a backup name"),
        ("yes", "local", "x; rm -rf /", True, "is not a backup name"),
        ("yes", "offsite", "", False, "backup_restic_repository is not set"),
        ("yes", "offsite", "20261123T031500Z-scheduled", True, None),
        ("yes", "local", "", None, None),
    ],
)
def test_restore_refuses_without_confirmation(confirm, source, name, offsite_configured, expected) -> None:
    message = restore_refusal(confirm, source, name, offsite_configured)
    if expected is None:
        assert message is None
    else:
        assert expected in message

