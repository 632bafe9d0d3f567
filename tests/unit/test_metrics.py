"""onebox's facts for Prometheus: what runs and what does not, backups, in a text format
promtool accepts."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from fake_docker import FakeDocker, make_app
from test_settings import valid

from onebox import contract
from onebox.server import engine, metrics
from onebox.settings import validate_settings


@pytest.fixture
def fake(monkeypatch) -> FakeDocker:
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    monkeypatch.setattr(metrics, "security_updates", lambda: 2)
    return FakeDocker()


def test_a_stopped_worker_is_down_and_the_text_passes_promtool(tmp_path, fake, monkeypatch) -> None:
    s = validate_settings(valid(app_processes={"worker": {"command": ["python", "-m", "worker"]}}, app_health_timeout=2))
    app = make_app(tmp_path, s, fake, monkeypatch)
    engine.apply(app)
    fake.projects["onebox-blue"]["worker"]["state"] = "exited"
    state_dir = tmp_path / "backup-state"
    monkeypatch.setattr(contract.AppFiles, "backup_state_dir", property(lambda self: str(state_dir)))
    state_dir.mkdir()
    (state_dir / "last-success").write_text("1700000123\n")
    (state_dir / "last-run.json").write_text('{"result": "failed", "error": "pg_dump failed"}')
    registry = tmp_path / "apps.json"
    registry.write_text(contract.apps_text({"onebox": contract.RegisteredApp(str(app.dir), None)}))
    textfile = tmp_path / "onebox.prom"
    metrics.write(textfile, registry=str(registry))
    text = textfile.read_text()
    assert 'onebox_container_up{app="onebox",service="api"} 1' in text
    assert 'onebox_container_up{app="onebox",service="worker"} 0' in text
    assert 'onebox_container_up{app="onebox",service="postgres"} 1' in text
    assert 'onebox_backup_last_success_timestamp_seconds{app="onebox"} 1700000123' in text
    assert 'onebox_backup_last_run_ok{app="onebox",unit="onebox-backup.service"} 0' in text
    assert "onebox_security_updates_pending 2" in text
    assert f'onebox_release_live_timestamp_seconds{{app="onebox",release="{app.load_state().live}"}}' in text
    if shutil.which("promtool"):
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
