"""The changes the dashboard's graphs mark (onebox/server/events.py): each release, rollback,
restore and maintenance on/off recorded once, with the time `onebox releases` prints, and
published in the textfile as onebox_event_timestamp_seconds, bounded and written atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from contract_shapes import BACKUP_JSON_0_3_0
from fake_docker import FakeDocker, make_app
from test_settings import valid

from onebox import contract
from onebox.server import cli, engine, events, metrics, reports
from onebox.server.backup.config import Config
from onebox.server.backup.restore import Writers
from onebox.server.model import App
from onebox.settings import validate_settings


@pytest.fixture
def fake(monkeypatch) -> FakeDocker:
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    monkeypatch.setattr(metrics, "security_updates", lambda: 0)
    return FakeDocker()


def deployed(tmp_path: Path, fake: FakeDocker, monkeypatch, tag: str = "v1") -> App:
    app = make_app(tmp_path, validate_settings(valid(app_health_timeout=2)), fake, monkeypatch, tag)
    engine.apply(app)
    return app


def kinds(app: App) -> list[tuple[str, str]]:
    """(kind, release) of each event, oldest first."""
    return [(event["kind"], event["release"]) for event in reversed(events.load(app))]


def textfile(app: App, tmp_path: Path) -> str:
    """onebox-release metrics as the timer runs it, into a node exporter's textfile directory."""
    registry = tmp_path / "apps.json"
    registry.write_text(contract.apps_text({app.name: contract.RegisteredApp(str(app.dir), None)}))
    directory = tmp_path / "node-exporter"
    metrics.write(directory / "onebox.prom", registry=str(registry))
    assert sorted(path.name for path in directory.iterdir()) == ["onebox.prom"]  # no partial file left beside it
    return (directory / "onebox.prom").read_text()


def test_releases_and_rollbacks_are_recorded_when_they_go_live_and_published(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    first = app.load_state().live
    engine.apply(app)  # nothing changed: a heal is no change to mark
    second_app = make_app(tmp_path, validate_settings(valid(app_health_timeout=2)), fake, monkeypatch, "v2")
    engine.apply(second_app)
    second = app.load_state().live
    engine.rollback(app, first)
    assert first and second and first != second
    assert kinds(app) == [("release", first), ("release", second), ("rollback", first)]
    text = textfile(app, tmp_path)
    latest = {(event["kind"], event["release"]): event["at"] for event in reversed(events.load(app))}
    for (kind, release), at in latest.items():
        assert f'onebox_event_timestamp_seconds{{app="onebox",kind="{kind}",release="{release}"}} {at}\n' in text
    assert "# TYPE onebox_event_timestamp_seconds gauge" in text
    if shutil.which("promtool"):
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_interrupted_switch_finished_by_the_next_run_is_marked_once(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live = app.load_state().live
    state = app.load_state()
    assert state.slot
    engine.finish_switch(app, app.record(live), state.slot)  # as recover() does for a switch that had gone live
    assert kinds(app) == [("release", live)]


def test_a_rollback_finished_by_recovery_is_still_a_rollback(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    first = app.load_state().live
    engine.apply(make_app(tmp_path, validate_settings(valid(app_health_timeout=2)), fake, monkeypatch, "v2"))
    # The rollback was killed once nginx pointed at the old release's slot: the next run finishes it.
    finish = engine.finish_switch

    def killed(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(engine, "finish_switch", finish)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "finish_switch", killed)
    with pytest.raises(KeyboardInterrupt):
        engine.rollback(app, first)
    transition = app.load_state().transition
    assert transition is not None and transition.kind == "rollback"
    engine.recover(app)
    assert kinds(app)[-1] == ("rollback", first) and app.load_state().live == first


def test_maintenance_on_and_off_are_marked_once_per_window(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live = app.load_state().live
    assert cli.maintenance(app, "on", "Back soon") == 0
    assert cli.maintenance(app, "on", "Back at 10:00") == 0  # a new message, the same window
    assert cli.maintenance(app, "off", None) == 0
    assert cli.maintenance(app, "off", None) == 0  # already off
    assert kinds(app)[1:] == [("maintenance_on", live), ("maintenance_off", live)]


def test_a_restore_is_marked_through_the_release_tool(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    # The release tool as the server has it: this checkout's onebox-release.
    tool = tmp_path / "onebox-release"
    tool.write_text(f"#!/bin/sh\nPYTHONPATH={Path(__file__).resolve().parents[2]} exec {sys.executable} "
                    "-m onebox.server release \"$@\"\n")
    tool.chmod(0o755)
    config_path = tmp_path / "backup.json"
    old = json.loads(BACKUP_JSON_0_3_0)
    config_path.write_text(json.dumps({**old, "app_name": "onebox", "app_dir": str(app.dir), "release_tool": str(tool)}))
    Writers(Config.read(str(config_path))).mark("20261205-020000-scheduled")
    event = events.load(app)[0]
    assert (event["kind"], event["release"], event["note"]) == ("restore", app.load_state().live,
                                                                "20261205-020000-scheduled")
    # Without the tool (a server of another kit) there is nothing to mark, and no failure.
    config_path.write_text(json.dumps({**old, "app_name": "onebox", "release_tool": str(tmp_path / "none")}))
    Writers(Config.read(str(config_path))).mark("x")


def test_the_newest_events_are_kept_and_published_once_per_kind_and_release(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live = app.load_state().live
    for at in range(1_800_000_000, 1_800_000_000 + events.EVENTS_KEPT + 10):
        events.record(app, "restore", f"20270115-0000{at % 100:02d}-abcdef", at=at)
    kept = events.load(app)
    assert len(kept) == events.EVENTS_KEPT and kept[0]["at"] == 1_800_000_000 + events.EVENTS_KEPT + 9
    assert oct(os.stat(app.dir / events.FILE).st_mode & 0o777) == "0o644"  # node exporter's user needs nothing of it
    assert not list(app.dir.glob(".events.json.partial"))
    # Two restores under one release: one series, the newest time (labels must not repeat in a textfile).
    events.record(app, "restore", live, at=1_900_000_000)
    events.record(app, "restore", live, at=1_900_000_100)
    series = [line for line in textfile(app, tmp_path).splitlines() if line.startswith("onebox_event_timestamp_seconds{")]
    assert len(series) == len({line.rsplit(" ", 1)[0] for line in series}) <= events.EVENTS_KEPT
    assert f'onebox_event_timestamp_seconds{{app="onebox",kind="restore",release="{live}"}} 1900000100' in series


def test_onebox_releases_lists_the_changes_with_the_times_the_graphs_mark(tmp_path, fake, monkeypatch, capsys) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live = app.load_state().live
    events.record(app, "maintenance_on", live, at=1_796_503_200)
    reports.releases(app)
    out = capsys.readouterr().out
    assert "CHANGES, as the dashboard marks them (newest first)" in out
    assert re.search(rf"^2026-12-05T20:40:00Z +maintenance_on +{live}$", out, re.MULTILINE), out
    release = events.load(app)[1]
    assert re.search(rf"^{events.iso(release['at'])} +release +{live}$", out, re.MULTILINE), out
    # The releases table above keeps its shape (e2e tests read it: a live mark, an id, a source).
    assert re.search(rf"^\* {live} ", out, re.MULTILINE)


def test_a_broken_or_foreign_events_file_is_no_event(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    (app.dir / events.FILE).write_text('{"not": "a list"}')
    assert events.load(app) == [] and events.samples(app) == []
    (app.dir / events.FILE).write_text('[{"kind": "deploy", "at": 1}, "x"]')
    assert events.load(app) == []
