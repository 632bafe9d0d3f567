"""Point-in-time recovery: the settings that cannot work are refused before any host is touched,
the files the server runs it from (the derived image, pgbackrest.conf, its secrets, the compose
service), the restore's target time, and the server's window and archive arithmetic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from test_settings import valid

from onebox import contract, pitr
from onebox.operator_args import recovery_target_problem
from onebox.pyinfra_argv import restore_argv
from onebox.server.backup import pitr as server_pitr
from onebox.server.backup.config import BackupError
from onebox.settings import SettingsError, validate_settings

SECRETS = {"ONEBOX_BACKUP_RESTIC_PASSWORD": "a-restic-password-0123456789", "ONEBOX_BACKUP_S3_ACCESS_KEY_ID": "key-id",
           "ONEBOX_BACKUP_S3_SECRET_ACCESS_KEY": "secret-access-key-0123456789"}


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The off-site secrets, from the environment as a user supplies them (unused without a repository)."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def with_pitr(**overrides: object):
    return validate_settings(valid(backup_pitr_enabled=True, **overrides))


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"backup_restic_repository": "sftp:backup@host:/srv/onebox"}, "not an S3 bucket over HTTPS"),
    ({"backup_restic_repository": "s3:http://10.0.0.5:9000/onebox"}, "not an S3 bucket over HTTPS"),
    ({"backup_enabled": False}, "backup_pitr_enabled needs backup_enabled"),
    ({"backup_s3_ca_bundle": "/no/such/ca.pem"}, "backup_s3_ca_bundle"),
    ({"backup_pitr_archive_timeout": 300}, "backup_pitr_archive_timeout"),
])
def test_what_pgbackrest_cannot_do_is_refused_with_the_setting_named(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        with_pitr(**overrides)


def test_off_by_default_and_nothing_changes_for_postgres_then() -> None:
    s = validate_settings(valid())
    assert not pitr.enabled(s)
    service = yaml.safe_load(pitr.deps_compose(s))["services"]["postgres"]
    assert service["image"] == s.postgres_image and "build" not in service and "command" not in service


def test_the_postgres_service_archives_through_an_image_derived_from_postgres_image() -> None:
    s = with_pitr()
    compose = yaml.safe_load(pitr.deps_compose(s))
    service = compose["services"]["postgres"]
    assert service["image"] == pitr.image(s) and service["build"] == {"context": "./postgres-pitr"}
    assert f"archive_command=pgbackrest --stanza={s.app_name} archive-push %p" in service["command"]
    assert "archive_timeout=60" in service["command"]
    assert "pgbackrest-repo:/var/lib/pgbackrest" in service["volumes"] and "pgbackrest-repo" in compose["volumes"]
    assert service["env_file"] == ["./secrets/pgbackrest.env"]
    assert pitr.dockerfile(s).count(f"FROM {s.postgres_image}\n") == 1
    # Another postgres_image: another derived image (rebuilt, not reused).
    assert pitr.image(with_pitr(postgres_image="postgres:17.2")) != pitr.image(s)


def test_off_site_wal_goes_beside_restics_repository_under_this_servers_name(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = with_pitr(backup_restic_repository="s3:https://s3.example.com:8443/bucket/onebox/prod",
                  backup_s3_ca_bundle=str(ca))
    conf = pitr.config(s, "web-1")
    assert f"repo2-path=/onebox/prod-pgbackrest/web-1/{s.app_name}\n" in conf
    for line in ("repo2-type=s3", "repo2-s3-bucket=bucket", "repo2-s3-endpoint=s3.example.com", "repo2-storage-port=8443",
                 "repo2-cipher-type=aes-256-cbc", "repo2-storage-ca-file=/etc/pgbackrest/s3-ca.pem",
                 f"pg1-user={s.postgres_user}", "repo1-retention-full=2"):
        assert line + "\n" in conf
    for secret in SECRETS.values():
        assert secret not in conf
        assert secret in pitr.env(s)
    assert "./postgres-pitr:/etc/pgbackrest:ro" in pitr.deps_compose(s)
    # onebox-backup's restore and checks name the repositories by number: the off-site one is this file's repo2.
    assert [server_pitr.repo_of(source) for source in contract.RESTORE_SOURCES] == [1, 2]
    assert f"[{s.app_name}]\n" in conf  # the stanza onebox-backup names (--stanza=app_name)
    assert pitr.offsite_of("s3:https://host/bucket") == pitr.Offsite("host", None, "bucket", "/pgbackrest")


def test_without_an_off_site_repository_the_wal_stays_on_the_server() -> None:
    s = with_pitr()
    assert "repo2" not in pitr.config(s, "web-1")
    assert pitr.env(s) == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("latest", None),
    ("2026-12-06T13:30:00Z", dt.datetime(2026, 12, 6, 13, 30, tzinfo=dt.UTC)),
    ("2026-12-06T14:30:00+01:00", dt.datetime(2026, 12, 6, 13, 30, tzinfo=dt.UTC)),
])
def test_a_recovery_target_is_a_time_with_its_zone_or_latest(text: str, expected: dt.datetime | None) -> None:
    assert contract.recovery_target(text) == expected


@pytest.mark.parametrize(("name", "to", "expected"), [
    ("", "2026-12-06T13:30:00", "with its zone"),
    ("", "yesterday", "ISO 8601"),
    ("20261206T031500Z-scheduled", "latest", "one or the other"),
])
def test_a_bad_target_is_refused_before_anything_connects(name: str, to: str, expected: str) -> None:
    assert expected in (recovery_target_problem(name, to) or "")
    with pytest.raises(Exception, match=expected):
        restore_argv("inventories/prod.py", "local", name or None, True, None, to)


def test_the_restore_passes_the_target_to_the_server() -> None:
    argv = restore_argv("inventories/prod.py", "offsite", None, True, None, "latest")
    assert "onebox_restore_to=latest" in argv and "onebox_restore_from=offsite" in argv


def test_pgbackrest_reads_the_target_in_its_own_format() -> None:
    moment = dt.datetime(2026, 12, 6, 14, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert server_pitr.pg_time(moment) == "2026-12-06 13:30:05+00"


def test_the_end_of_an_archived_segment() -> None:
    size = 16 * 2**20
    assert server_pitr.archived_end("000000010000000000000003", size) == 4 * size
    assert server_pitr.archived_end("00000002000000010000000A", size) == 2**32 + 11 * size
    assert server_pitr.archived_end("00000002.history", size) == 0
    assert server_pitr.archived_end("", size) == 0


class FakeConfig:
    app_name, server_name, pitr_offsite = "shop", "web-1", True


def backup(stop: int, db: int = 1, kind: str = "full") -> dict:
    return {"type": kind, "timestamp": {"start": stop - 5, "stop": stop}, "database": {"id": db}, "error": False}


def test_the_window_starts_at_the_oldest_backup_of_the_current_database(monkeypatch: pytest.MonkeyPatch) -> None:
    stanza = {"db": [{"id": 1}, {"id": 2}], "backup": [backup(1000, db=1), backup(5000, db=2), backup(9000, db=2, kind="diff")]}
    monkeypatch.setattr(server_pitr, "info", lambda config, pg, repo: stanza)
    start = server_pitr.window_start(FakeConfig(), "pg", 1)  # type: ignore[arg-type]
    assert start == dt.datetime.fromtimestamp(5000, dt.UTC)  # the earlier database's backup is not in the window


def test_a_time_outside_the_window_is_refused_with_the_window_named(monkeypatch: pytest.MonkeyPatch) -> None:
    start = int(dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp())
    monkeypatch.setattr(server_pitr, "info", lambda config, pg, repo: {"db": [{"id": 1}], "backup": [backup(start)]})
    with pytest.raises(BackupError, match=r"outside the recovery window .* from 2026-12-01T00:00:00\+00:00 to now"):
        server_pitr.check_target(FakeConfig(), "pg", "local", dt.datetime(2026, 11, 30, tzinfo=dt.UTC))  # type: ignore[arg-type]
    with pytest.raises(BackupError, match="outside the recovery window"):
        server_pitr.check_target(FakeConfig(), "pg", "offsite",  # type: ignore[arg-type]
                                 dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    server_pitr.check_target(FakeConfig(), "pg", "local", dt.datetime(2026, 12, 2, tzinfo=dt.UTC))  # type: ignore[arg-type]
    server_pitr.check_target(FakeConfig(), "pg", "local", None)  # type: ignore[arg-type]  # latest
    monkeypatch.setattr(server_pitr, "info", lambda config, pg, repo: {})
    with pytest.raises(BackupError, match=r"no point-in-time base backup .*\(server web-1, app shop\)"):
        server_pitr.check_target(FakeConfig(), "pg", "offsite", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("running", "local", "offsite", "configured", "expected"), [
    (2, 1, 1, True, True),        # a dump restored into a new volume: both repositories hold the old database
    (2, 2, 1, True, False),       # a fresh server under a lost one's name: the off-site history is not buried
    (2, None, 1, True, False),    # the same, before anything local exists
    (1, 2, 1, True, True),        # after the disaster recovery: the local repository takes the restored database
    (2, 1, None, True, True),     # no off-site stanza yet
    (2, 1, None, False, True),    # no off-site repository
])
def test_the_off_site_history_of_another_database_is_never_upgraded_over(
        running: int, local: int | None, offsite: int | None, configured: bool, expected: bool) -> None:
    assert server_pitr.may_upgrade(running, local, offsite, configured) is expected


class SetupConfig(FakeConfig):
    pitr_fingerprint, state_path = "abc", Path("/nonexistent")


def test_a_stanza_of_another_database_is_upgraded_by_the_exit_code_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """pgBackRest says a mismatch by its exit code (28): its message may not reach our output."""
    from onebox.server.basics import Result
    ran: list[str] = []
    monkeypatch.setattr(server_pitr, "require_container", lambda config, service: "pg")
    monkeypatch.setattr(server_pitr, "Restic", lambda config: type("R", (), {"ensure_repository": lambda self: None})())
    monkeypatch.setattr(server_pitr, "run", lambda argv, check: ran.append(argv[-1]) or Result(argv, 28, "", ""))
    monkeypatch.setattr(server_pitr, "checked", lambda config, pg, *args: ran.append(args[-1]) or "")
    monkeypatch.setattr(server_pitr, "running_system_id", lambda config, pg: 2)
    stanzas = {1: {"db": [{"id": 1, "system-id": 1}], "backup": [backup(1000)]},
               2: {"db": [{"id": 1, "system-id": 1}], "backup": [backup(1000)]}}
    monkeypatch.setattr(server_pitr, "info", lambda config, pg, repo: stanzas[repo])
    monkeypatch.setattr(server_pitr, "write_atomic", lambda path, text, mode: ran.append(f"ready {text.strip()}"))
    server_pitr.setup(SetupConfig(), first_backup=False)  # type: ignore[arg-type]
    assert ran == ["stanza-create", "stanza-upgrade", "ready abc"]
    ran.clear()
    stanzas[1] = {"db": [{"id": 1, "system-id": 2}], "backup": []}  # a fresh server: the off-site history is not ours
    server_pitr.setup(SetupConfig(), first_backup=False)  # type: ignore[arg-type]
    assert ran == ["stanza-create"]


def test_a_point_in_time_restore_is_from_this_server_unless_told_otherwise() -> None:
    argv = restore_argv("inventories/prod.py", None, None, True, None, "2026-12-06T13:30:00Z")
    assert "onebox_restore_from=local" in argv and "onebox_restore_to=2026-12-06T13:30:00Z" in argv
    with pytest.raises(Exception, match="--from must be 'local' or 'offsite'"):
        restore_argv("inventories/prod.py", None, None, True)  # a dump: say which copy


def test_a_restored_cluster_takes_this_servers_passwords_never_in_clear() -> None:
    """A physical restore brings the old server's roles and passwords: the new server's are set again,
    as SCRAM verifiers, for the app's role and the monitoring role."""
    config = type("C", (), {"postgres_user": "app"})()
    sql = server_pitr.roles_sql(config, "app-secret-0123", "monitor-secret-0123")  # type: ignore[arg-type]
    assert "ALTER ROLE \"app\" PASSWORD 'SCRAM-SHA-256$" in sql
    assert "ALTER ROLE onebox_monitor WITH LOGIN" in sql and "GRANT pg_monitor TO onebox_monitor" in sql
    assert "app-secret-0123" not in sql and "monitor-secret-0123" not in sql
    assert "ALTER ROLE" not in server_pitr.roles_sql(config, None, None)  # type: ignore[arg-type]
