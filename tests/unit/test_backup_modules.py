"""The pure pieces of onebox-backup (onebox/server/backup/): configuration checks, labels,
retention, choosing a backup, manifests, and the argv it hands docker and restic."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from contract_shapes import BACKUP_JSON_0_3_0

from onebox import contract
from onebox.server import basics
from onebox.server.backup import cli
from onebox.server.backup import restore as restore_module
from onebox.server.backup.config import BackupError, Config
from onebox.server.backup.docker import run_exec
from onebox.server.backup.postgres import psql_argv, quote_ident
from onebox.server.backup.restic import Restic
from onebox.server.backup.restore import choose, download
from onebox.server.backup.sets import BackupSet, check_label, keep_policy, sha256


def config_file(tmp_path: Path, **values: object) -> Path:
    """backup.json as onebox 0.3.0 wrote it, with `values` changed."""
    path = tmp_path / "backup.json"
    path.write_text(json.dumps({**json.loads(BACKUP_JSON_0_3_0), **values}))
    return path


def test_a_backup_error_is_a_onebox_error_that_exits_1() -> None:
    assert issubclass(BackupError, basics.OneboxError)
    assert BackupError("x").exit_code == basics.EXIT_FAILED == 1


def test_the_config_is_the_contract_s_and_names_its_file(tmp_path: Path) -> None:
    config = Config.read(str(config_file(tmp_path, app_name="shop")))
    assert config.app_name == "shop" and config.path == str(tmp_path / "backup.json")
    assert config.state_dir == contract.BACKUP_STATE_DIR and config.state_path == Path(contract.BACKUP_STATE_DIR)
    assert config.release_tool == contract.RELEASE_COMMAND and config.keep_last == 3
    assert config.restic_cache_dir == contract.BackupConfig.restic_cache_dir  # the server's own: the contract's default
    assert cli.parser().parse_args(["status"]).config is None
    assert cli.config_path(None) == contract.BACKUP_CONFIG  # no apps registry here: a single-app server


@pytest.mark.parametrize(("content", "message"), [
    (None, "no configuration at"),
    ("{not json", "backup.json is not JSON"),
    ('{"app_name": "shop", "keep_hourly": 3}', "backup.json: unknown key(s) keep_hourly"),
    ('{"keep_last": 3}', "backup.json.app_name: missing"),
    ('[1, 2]', "is not a JSON object"),
])
def test_a_bad_configuration_is_refused_with_the_reason(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "backup.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BackupError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config.read(str(path))


def test_secrets_are_read_verbatim_and_refused_when_others_can_read_them(tmp_path: Path) -> None:
    secrets = tmp_path / "backup.env"
    secrets.write_text("# comment\nRESTIC_PASSWORD=a=b c\n\nAWS_ACCESS_KEY_ID = key\n")
    secrets.chmod(0o600)
    config = Config.read(str(config_file(tmp_path, app_name="shop", secrets_file=str(secrets))))
    assert config.secrets() == {"RESTIC_PASSWORD": "a=b c", "AWS_ACCESS_KEY_ID": " key"}
    secrets.chmod(0o640)
    with pytest.raises(BackupError, match="readable by others than root"):
        config.secrets()


def test_restic_sees_only_its_own_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTIC_PASSWORD_FILE", "/elsewhere")
    secrets = tmp_path / "backup.env"
    secrets.write_text("RESTIC_PASSWORD=pw\nOTHER=x\n")
    secrets.chmod(0o600)
    config = Config.read(str(config_file(tmp_path, app_name="shop", secrets_file=str(secrets), restic_repository="s3:h/b",
                                         restic_cache_dir=str(tmp_path / "cache"))))
    env = Restic(config).env
    assert env["RESTIC_PASSWORD"] == "pw" and env["RESTIC_REPOSITORY"] == "s3:h/b"
    assert "OTHER" not in env and "RESTIC_PASSWORD_FILE" not in env
    with pytest.raises(BackupError, match="no off-site repository"):
        Restic(Config.read(str(config_file(tmp_path, app_name="shop"))))


class Repository:
    """A restic repository shared by several servers: `restic snapshots/backup/forget` as restic
    filters them (`--tag a,b`: both tags; --host: that host)."""

    def __init__(self) -> None:
        self.snapshots: list[dict] = []
        self.calls: list[list[str]] = []

    def add(self, host: str, *tags: str, time: str) -> None:
        number = len(self.snapshots) + 1
        self.snapshots.append({"id": f"{number:08x}" * 8, "short_id": f"{number:08x}", "hostname": host,
                               "tags": list(tags), "time": time})

    def __call__(self, *args: str, what: str | None = None) -> str:
        self.calls.append(list(args))
        if args[0] == "snapshots":
            host = args[args.index("--host") + 1] if "--host" in args else None
            wanted = args[args.index("--tag") + 1].split(",")
            return json.dumps([dict(s) for s in self.snapshots
                               if host in (None, s["hostname"]) and all(tag in s["tags"] for tag in wanted)])
        return ""


def offsite_config(tmp_path: Path, server: str, app: str = "shop", repository: str = "sftp:backup@host:/srv/restic") -> Config:
    secrets = tmp_path / "backup.env"
    secrets.write_text("RESTIC_PASSWORD=pw\n")
    secrets.chmod(0o600)
    return Config.read(str(config_file(tmp_path, app_name=app, server_name=server, secrets_file=str(secrets),
                                       restic_repository=repository, backup_dir=str(tmp_path / "b"),
                                       restic_cache_dir=str(tmp_path / "cache"))))


def test_offsite_snapshots_retention_and_uploads_are_this_servers_and_this_apps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Staging and production sharing a repository (one group file, one app name) each keep their
    own history: the snapshots are the server's (--host), tagged with the app."""
    repository = Repository()
    monkeypatch.setattr(Restic, "__call__", lambda restic, *args, what=None: repository(*args))
    repository.add("production", "onebox", "app=shop", "set=20261101T031500Z-scheduled", time="2026-11-01T03:15:00Z")
    repository.add("staging", "onebox", "app=shop", "set=20261102T031500Z-scheduled", time="2026-11-02T03:15:00Z")
    repository.add("production", "onebox", "app=blog", "set=20261103T031500Z-scheduled", time="2026-11-03T03:15:00Z")
    restic = Restic(offsite_config(tmp_path, "production"))
    assert [s["onebox_name"] for s in restic.snapshots()] == ["20261101T031500Z-scheduled"]
    restic.forget()
    forget = repository.calls[-1]
    assert forget[forget.index("--host") + 1] == "production" and forget[forget.index("--tag") + 1] == "onebox,app=shop"
    backup = tmp_path / "20261104T031500Z-scheduled"
    backup.mkdir()
    (backup / "manifest.json").write_text(json.dumps({"files": {}, "created": "2026-11-04T03:15:00+00:00"}))
    restic.upload(BackupSet(backup))
    upload = repository.calls[-1]
    assert upload[upload.index("--host") + 1] == "production"
    assert {"onebox", "app=shop", "set=20261104T031500Z-scheduled"} <= {upload[i + 1] for i, arg in enumerate(upload)
                                                                        if arg == "--tag"}


def test_an_offsite_restore_takes_this_servers_newest_says_which_and_falls_back_to_older_snapshots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    repository = Repository()
    monkeypatch.setattr(Restic, "__call__", lambda restic, *args, what=None: repository(*args))
    monkeypatch.setattr(Restic, "download", lambda restic, snapshot, into: snapshot)
    # Uploaded by onebox 0.1 (restic host = the app's name), then by two servers of this onebox.
    repository.add("shop", "onebox", "set=20261030T031500Z-scheduled", time="2026-10-30T03:15:00Z")
    repository.add("production", "onebox", "app=shop", "set=20261101T031500Z-scheduled", time="2026-11-01T03:15:00Z")
    repository.add("staging", "onebox", "app=shop", "set=20261102T031500Z-scheduled", time="2026-11-02T03:15:00Z")
    chosen, scratch = download(offsite_config(tmp_path, "production"), None)
    assert chosen["onebox_name"] == "20261101T031500Z-scheduled"  # not staging's, newer
    out = capsys.readouterr().out
    assert "off-site snapshot 00000002: 20261101T031500Z-scheduled, host production, taken 2026-11-01T03:15:00Z" in out
    # A server with none of its own (upgraded from onebox 0.1): the older scheme's, said so.
    chosen, scratch = download(offsite_config(tmp_path, "other"), None)
    assert chosen["onebox_name"] == "20261030T031500Z-scheduled"
    assert "uploaded by onebox 0.1" in capsys.readouterr().out
    chosen, scratch = download(offsite_config(tmp_path, "other"), "20261030T031500Z-scheduled")
    assert chosen["short_id"] == "00000001"
    with pytest.raises(BackupError, match="no backup to restore .* none of server other, app blog\\)$"):
        download(offsite_config(tmp_path, "other", app="blog"), None)
    # A server rebuilt under a new inventory name (a new IP) is told whose backups it could take over.
    repository.add("10.0.0.5", "onebox", "app=cart", "set=20261103T031500Z-scheduled", time="2026-11-03T03:15:00Z")
    with pytest.raises(BackupError, match="none of server 10.0.0.9, app cart.*from server.s. 10.0.0.5: if this server "
                                          "replaces 10.0.0.5, set backup_server_name=10.0.0.5"):
        download(offsite_config(tmp_path, "10.0.0.9", app="cart"), None)


@pytest.mark.parametrize("label", ["release-42", "pre-restore", "a.b_c", "x" * 80])
def test_good_labels_pass(label: str) -> None:
    assert check_label(label) == label


@pytest.mark.parametrize("label", ["", "-x", ".x", "a b", "a/b", "ü", "x" * 81, "$(id)"])
def test_bad_labels_are_refused(label: str) -> None:
    with pytest.raises(BackupError, match="bad label"):
        check_label(label)


def test_keep_policy_keeps_the_newest_and_one_per_day_and_week() -> None:
    base = dt.datetime(2026, 11, 23, 3, 15, tzinfo=dt.UTC).astimezone()
    times = [base - dt.timedelta(hours=6 * i) for i in range(60)]  # four a day for 15 days
    keep = keep_policy(times, keep_last=2, keep_daily=3, keep_weekly=0)
    assert {0, 1} <= keep
    days = sorted({times[i].date() for i in keep}, reverse=True)
    assert len(days) == 3 and days[0] == base.date()
    assert keep_policy(times, 0, 0, 0) == set()
    assert keep_policy([], 3, 7, 4) == set()
    assert len(keep_policy(times, 100, 0, 0)) == len(times)


def test_choose_takes_the_latest_that_is_not_a_safety_dump() -> None:
    names = ["20261101T000000Z-scheduled", "20261102T000000Z-release-1", "20261103T000000Z-pre-restore"]
    assert choose(names, None, str) == names[1]
    assert choose(names, names[2], str) == names[2]
    with pytest.raises(BackupError, match="no backup named"):
        choose(names, "nope", str)
    with pytest.raises(BackupError, match="no backup to restore"):
        choose(names[2:], None, str)


def test_a_backup_set_verifies_its_files(tmp_path: Path) -> None:
    (tmp_path / "postgres.dump").write_bytes(b"PGDMP data")
    files = {"postgres.dump": {"size": 10, "sha256": sha256(tmp_path / "postgres.dump")}}
    (tmp_path / "manifest.json").write_text(json.dumps({"label": "x", "created": "2026-11-01T00:00:00+00:00",
                                                        "files": files}))
    backup = BackupSet(tmp_path)
    backup.verify()
    assert backup.size == 10 and backup.label == "x"
    (tmp_path / "postgres.dump").write_bytes(b"PGDMP dat4")
    with pytest.raises(BackupError, match="does not match its checksum"):
        backup.verify()
    (tmp_path / "postgres.dump").unlink()
    with pytest.raises(BackupError, match="incomplete"):
        backup.verify()
    with pytest.raises(BackupError, match="no readable manifest.json"):
        BackupSet(tmp_path / "missing")


def test_docker_argv(tmp_path: Path) -> None:
    config = Config.read(str(config_file(tmp_path, app_name="shop", postgres_user="app")))
    assert psql_argv(config, "c1", "db", "SELECT 1", "SELECT 2")[-8:] == [
        "-U", "app", "-d", "db", "-c", "SELECT 1", "-c", "SELECT 2"]
    assert quote_ident('a"b') == '"a""b"'


def test_main_refuses_a_user_other_than_root(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    monkeypatch.setattr(basics, "_prefix", basics._prefix)  # main sets onebox-backup's; put it back after
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(cli.os, "umask", lambda mask: 0)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)
    assert cli.main(["--config", str(tmp_path / "none.json"), "status"]) == 1
    assert capsys.readouterr().err.strip() == ("onebox-backup: status failed: "
                                               "run as root (the backups and their secrets are root only)")


def flaky_exec(tmp_path: Path, failures: int, message: str = "OCI runtime exec failed: exec failed: "
               "unable to start container process: read init-p: connection reset by peer") -> list[str]:
    """A command that fails as runc does when it cannot start an exec'd process, `failures` times."""
    count = tmp_path / "count"
    count.write_text("0")
    script = (f'n=$(cat {count}); echo $((n+1)) > {count}; '
              f'if [ "$n" -lt {failures} ]; then echo "{message}" >&2; exit 126; fi; echo PONG')
    return ["sh", "-c", script]


def test_an_exec_runc_did_not_start_is_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("onebox.server.backup.docker.time.sleep", lambda _: None)
    assert run_exec(flaky_exec(tmp_path, failures=2), what="redis-cli ping").stdout.strip() == "PONG"
    assert (tmp_path / "count").read_text().strip() == "3"


def test_an_exec_that_keeps_failing_or_failed_for_its_own_reasons_is_not_run_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("onebox.server.backup.docker.time.sleep", lambda _: None)
    with pytest.raises(basics.OneboxError, match=r"redis-cli ping failed \(exit 126\): OCI runtime"):
        run_exec(flaky_exec(tmp_path, failures=5), what="redis-cli ping")
    assert (tmp_path / "count").read_text().strip() == "3"
    with pytest.raises(basics.OneboxError, match=r"redis-cli ping failed \(exit 126\): permission denied"):
        run_exec(flaky_exec(tmp_path, failures=5, message="permission denied"), what="redis-cli ping")
    assert (tmp_path / "count").read_text().strip() == "1"


@pytest.mark.parametrize("failing", ["stop-app", "restore_postgres"])
def test_a_failed_restore_starts_the_app_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    """Whatever fails once the app is being stopped (its stop halfway, a service's restore), the
    app is started again on its data, and the restore fails with the reason."""
    backups = tmp_path / "backups"
    backup = backups / "20261101T000000Z-scheduled"
    backup.mkdir(parents=True)
    (backup / "postgres.dump").write_bytes(b"PGDMP data")
    files = {"postgres.dump": {"size": 10, "sha256": sha256(backup / "postgres.dump")}}
    (backup / "manifest.json").write_text(json.dumps({"label": "scheduled", "created": "2026-11-01T00:00:00+00:00",
                                                      "files": files}))
    calls = tmp_path / "calls"
    tool = tmp_path / "onebox-release"  # stands in for the release tool: records its calls
    tool.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" != {failing} ]\n')
    tool.chmod(0o755)
    config = Config.read(str(config_file(tmp_path, app_name="shop", backup_dir=str(backups), release_tool=str(tool))))
    monkeypatch.setattr(restore_module, "require_container", lambda config, service: f"{service}-1")

    def restore_postgres(config: Config, pg: str, dump: Path) -> None:
        if failing == "restore_postgres":
            raise BackupError("pg_restore failed (exit 1)")

    monkeypatch.setattr(restore_module, "restore_postgres", restore_postgres)
    with pytest.raises(basics.OneboxError, match="stop-app failed" if failing == "stop-app" else "pg_restore failed"):
        restore_module.restore(config, "local", None, safety_dump=False)
    # The app started again, the failed restore marked on the graphs first.
    assert calls.read_text().splitlines() == [
        "stop-app", "record-event restore --note 20261101T000000Z-scheduled (failed)", "start-app"]


@pytest.mark.parametrize(("repository", "initialised"), [
    ("s3:http://127.0.0.1:40343/bucket", True),  # a port reading "403": still a repository to initialise
    ("s3:http://127.0.0.1:9000/bucket", True),
])
def test_a_repository_not_yet_initialised_is_initialised_whatever_its_url_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repository: str, initialised: bool) -> None:
    calls: list[str] = []

    def restic(self: Restic, *args: str, what: str | None = None) -> str:
        calls.append(args[0])
        if args[0] == "cat":
            raise basics.OneboxError("opening the off-site repository failed (exit 1): Fatal: unable to open config "
                                     "file: Stat: The specified key does not exist. | Is there a repository at the "
                                     f"following location? | {repository}")
        return ""

    monkeypatch.setattr(Restic, "__call__", restic)
    monkeypatch.setattr(Restic, "reachable", lambda self: None)
    config = offsite_config(tmp_path, "production", repository=repository)
    Restic(config).ensure_repository()
    assert calls == ["cat", "init"]


def test_a_forbidden_repository_is_unreachable_and_its_url_is_not_echoed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = offsite_config(tmp_path, "production")

    def restic(self: Restic, *args: str, what: str | None = None) -> str:
        raise basics.OneboxError(f"opening the off-site repository failed (exit 1): Fatal: 403 Forbidden | "
                                 f"Is there a repository at the following location? | {config.restic_repository}")

    monkeypatch.setattr(Restic, "__call__", restic)
    monkeypatch.setattr(Restic, "reachable", lambda self: None)
    with pytest.raises(BackupError, match="unreachable") as raised:
        Restic(config).ensure_repository()
    assert config.restic_repository not in str(raised.value)
