"""The server's side of several apps: each app's own upstream and maintenance flag, the apps
registry that names an app, and taking an app off (retire, purge) without touching another."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from contract_shapes import BACKUP_JSON_0_3_0
from fake_docker import FakeDocker, make_app
from test_apps_settings import two_apps
from test_settings import valid

from onebox import contract
from onebox.server import engine, removal, slot_project, slots, switch
from onebox.server.basics import OneboxError, UsageError
from onebox.server.model import app_dirs_from_server
from onebox.settings import validate_settings


@pytest.fixture
def fake(monkeypatch) -> FakeDocker:
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return FakeDocker()


def jobs_settings():
    return validate_settings(two_apps(app_health_timeout=2)).app_list[1]


def test_a_keyed_app_switches_its_own_upstream_and_has_its_own_maintenance_flag(tmp_path, fake, monkeypatch) -> None:
    app = make_app(tmp_path, jobs_settings(), fake, monkeypatch)
    engine.apply(app)
    assert app.upstream == tmp_path / "nginx" / "onebox-upstream-jobs.conf"
    assert app.upstream.read_text().endswith("server 127.100.0.1:8010;\n")  # its own stable address: api_port
    assert "dnat to 127.0.0.1:8010" in fake.nft["onebox_jobs_switch"]  # its own table, to its blue slot
    assert not (tmp_path / "nginx" / "onebox-upstream.conf").exists()
    assert fake.services("jobs-blue")["api"] == "running" and fake.services("jobs") == {"postgres": "running",
                                                                                        "redis": "running"}
    switch.maintenance_on(app.maintenance_dir, None)
    assert (tmp_path / "maintenance" / "jobs" / contract.MAINTENANCE_FLAG).exists()


def registry(tmp_path: Path, **apps: contract.RegisteredApp) -> str:
    path = tmp_path / "apps.json"
    path.write_text(contract.apps_text(apps))
    return str(path)


def test_the_registry_names_an_app_or_the_only_one(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("ONEBOX_APP_DIR", raising=False)
    one = registry(tmp_path, onebox=contract.RegisteredApp("/opt/onebox", None),
                   old=contract.RegisteredApp("/opt/onebox-old", "old", removed=True))
    assert app_dirs_from_server(None, None, registry=one) == [Path("/opt/onebox")]  # a removed app is not "the only"
    assert app_dirs_from_server(None, "old", registry=one) == [Path("/opt/onebox-old")]
    two = registry(tmp_path, api=contract.RegisteredApp("/opt/onebox-api", "api"),
                   jobs=contract.RegisteredApp("/opt/onebox-jobs", "jobs"))
    with pytest.raises(UsageError, match=r"several apps \(api, jobs\): name one with --app NAME"):
        app_dirs_from_server(None, None, registry=two)
    assert app_dirs_from_server(None, None, every=True, registry=two) == [Path("/opt/onebox-api"), Path("/opt/onebox-jobs")]
    with pytest.raises(UsageError, match="no app 'web' on this server"):
        app_dirs_from_server(None, "web", registry=two)
    assert app_dirs_from_server("/srv/x", "api", registry=two) == [Path("/srv/x")]


def test_purge_refuses_an_app_not_taken_off_first(tmp_path, fake, monkeypatch) -> None:
    app = make_app(tmp_path, jobs_settings(), fake, monkeypatch)
    path = registry(tmp_path, jobs=contract.RegisteredApp(str(app.dir), "jobs"))
    with pytest.raises(UsageError, match="name it in apps_removed and deploy first"):
        removal.purge(app, registry=path)
    assert app.dir.exists() and not fake.commands("--volumes")


def test_retire_stops_the_app_and_keeps_its_data_purge_deletes_it(tmp_path, fake, monkeypatch) -> None:
    app = make_app(tmp_path, jobs_settings(), fake, monkeypatch)
    engine.apply(app)
    removal.retire(app)
    assert fake.services("jobs-blue") == {} and fake.services("jobs") == {}
    assert not fake.commands("--volumes") and app.dir.exists()
    path = registry(tmp_path, jobs=contract.RegisteredApp(str(app.dir), "jobs", removed=True),
                    onebox=contract.RegisteredApp("/opt/onebox", "onebox"))
    removal.purge(app, registry=path)
    assert fake.commands("-p", "jobs", "down", "--volumes")
    assert ["docker", "volume", "rm", "jobs_pgbackrest-repo"] in fake.calls  # kept by compose with PITR off
    assert not app.dir.exists()
    assert list(json.loads(Path(path).read_text())) == ["onebox"]


def test_the_app_started_again_after_a_restore_has_its_workers_without_waiting_on_them(tmp_path, fake,
                                                                                      monkeypatch) -> None:
    s = validate_settings(valid(app_processes={"worker": {"command": ["python", "-m", "worker"]}}, app_health_timeout=2))
    app = make_app(tmp_path, s, fake, monkeypatch)
    engine.apply(app)
    state, record = app.live_record()
    slot_project.compose(app, record, "blue", "stop")
    assert fake.services("onebox-blue") == {"api": "exited", "worker": "exited"}
    fake.calls.clear()
    slots.start_again(app, record, "blue")
    assert fake.services("onebox-blue") == {"api": "running", "worker": "running"}
    # A worker has no health check: `compose up --wait` of it would fail (the e2e restore of examples/jobs did).
    assert not [argv for argv in fake.calls if "--wait" in argv]


def test_purge_finds_the_backups_where_backup_json_says_as_onebox_backup_reads_it(tmp_path) -> None:
    path = tmp_path / "backup.json"
    app = SimpleNamespace(files=SimpleNamespace(backup_config=str(path)))
    assert removal._backup_dir(app) is None  # type: ignore[arg-type]  # no backups configured
    path.write_text(BACKUP_JSON_0_3_0)
    assert removal._backup_dir(app) == "/var/backups/onebox"  # type: ignore[arg-type]
    path.write_text('{"backup_dir": "/srv/b"}')
    with pytest.raises(OneboxError, match=r"backup.json \(.*app_name: missing\): its backups were left"):
        removal._backup_dir(app)  # type: ignore[arg-type]
