"""The release engine's phases against a fake Docker that records argv: a release, a failed
one, expand/contract of the dependencies, rollback, heal, prune, maintenance, and an
interruption in each phase followed by recovery."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fake_docker import REAL_RUN, Crash, FakeDocker, make_app
from test_settings import valid

from onebox import contract
from onebox.server import basics, cli, engine, reports, switch
from onebox.server.basics import OneboxError
from onebox.server.model import App
from onebox.settings import validate_settings

BLUE, GREEN = "onebox-blue", "onebox-green"


@pytest.fixture
def fake(monkeypatch) -> FakeDocker:
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # the waits poll a fake that answers at once
    return FakeDocker()


WORKER = {"worker": {"command": ["python", "-m", "worker"]}}


def settings(**overrides):
    """The default settings with one worker process, and a short health wait (the fake never sleeps long)."""
    return validate_settings(valid(**{"app_processes": WORKER, "app_health_timeout": 2, **overrides}))


def deployed(tmp_path: Path, fake: FakeDocker, monkeypatch, tag: str = "v1", **overrides) -> App:
    """An app with `tag` live, as after a converge."""
    app = make_app(tmp_path, settings(**overrides), fake, monkeypatch, tag)
    engine.apply(app)
    return app


def upstream_slot(app: App) -> str:
    return "blue" if switch.live_port(app) == app.port("blue") else "green"


def test_a_first_release_runs_the_phases_in_order(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    state = app.load_state()
    assert state.live and state.slot == "blue" and state.transition is None
    verbs = [" ".join(a[:2] if a[:2] != ["docker", "compose"] else [a[2], a[3], a[-1]]) for a in fake.calls
             if a[:2] == ["docker", "build"] or "run" in a or a[-1] == "api"]
    assert verbs[0] == "docker build"  # the image before anything of the release runs
    assert fake.commands("-p", BLUE, "run", "--rm", "--no-deps", "-T", "api")  # the release step, in the new slot
    assert fake.services(BLUE) == {"api": "running", "worker": "running"}
    assert fake.services("onebox") == {"postgres": "running", "redis": "running"}
    assert upstream_slot(app) == "blue"
    assert reports.state_report(app).problems == []


def test_a_second_release_switches_slots_and_stops_the_old_one(tmp_path, fake, monkeypatch) -> None:
    first = deployed(tmp_path, fake, monkeypatch).load_state().live
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v2")
    fake.calls.clear()
    engine.apply(app)
    state = app.load_state()
    assert state.slot == "green" and state.previous == first and upstream_slot(app) == "green"
    assert fake.services(BLUE) == {} and fake.services(GREEN) == {"api": "running", "worker": "running"}
    assert fake.nft["onebox_switch"].count("dnat to 127.0.0.1:") == 1 and f"127.0.0.1:{app.port('green')}\n" in \
        fake.nft["onebox_switch"]
    # The kernel's map switched, nginx was not reloaded, its file names the stable address.
    assert not fake.commands("systemctl", "reload", "nginx")
    assert app.upstream.read_text() == contract.switched_upstream_text(app.port("blue"))
    switch_at = fake.calls.index(["nft", "-f", str(app.dir / "switch.nft")])
    old_down = fake.calls.index(next(a for a in fake.commands("-p", BLUE, "down") if fake.calls.index(a) > switch_at))
    assert switch_at < old_down  # the old slot stops only after the switch (its drain: test_port_map.py)


def test_nothing_to_do_is_a_heal_that_changes_nothing(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    ids = fake.ids(BLUE)
    fake.calls.clear()
    engine.apply(app)
    assert fake.ids(BLUE) == ids and not fake.commands("build") and not fake.commands("reload")


def test_heal_starts_what_stopped_and_points_nginx_back(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    fake.projects[BLUE]["worker"]["state"] = "exited"
    app.upstream.write_text(contract.upstream_text("green", app.port("green")))
    assert set(engine.heal(app)) == {f"started worker of {app.load_state().live}", "pointed nginx at slot blue"}
    assert fake.services(BLUE)["worker"] == "running" and upstream_slot(app) == "blue"


def test_a_failed_release_step_leaves_the_running_version_and_its_redis(tmp_path, fake, monkeypatch) -> None:
    """The reported bug: the new settings drop Redis and the release step fails; the old
    version must keep its Redis until a release without it is live."""
    app = deployed(tmp_path, fake, monkeypatch)
    live, redis_id = app.load_state().live, fake.ids("onebox")["redis"]
    without_redis = settings(redis_enabled=False, app_env={"APP_ENV": "production"})
    app = make_app(tmp_path, without_redis, fake, monkeypatch, "v2")
    fake.fail = lambda argv: "run" in argv and "--rm" in argv  # the migration fails
    with pytest.raises(OneboxError, match="the release step failed"):
        engine.apply(app)
    assert app.load_state().live == live and upstream_slot(app) == "blue"
    assert fake.ids("onebox")["redis"] == redis_id  # untouched
    assert not any("--remove-orphans" in a for a in fake.commands("-p", "onebox", "up")[-1:])
    assert fake.services(GREEN) == {}
    assert sorted(p.name for p in app.releases_dir.iterdir()) == [live]  # the failed one is not kept
    fake.fail = lambda argv: False
    fake.calls.clear()
    engine.apply(app)  # the next converge that succeeds removes Redis, after the switch
    assert "redis" not in fake.services("onebox")
    switch_at = fake.calls.index(["nft", "-f", str(app.dir / "switch.nft")])
    contract_at = fake.calls.index(next(a for a in fake.commands("-p", "onebox", "up") if "--remove-orphans" in a))
    assert switch_at < contract_at


def test_an_unhealthy_new_version_never_gets_traffic(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live = app.load_state().live
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v2")
    fake.unhealthy.add(GREEN)
    with pytest.raises(OneboxError, match="did not become healthy"):
        engine.apply(app)
    assert app.load_state().live == live and upstream_slot(app) == "blue" and fake.services(GREEN) == {}
    assert fake.services(BLUE)["api"] == "running"


def test_a_postgres_major_upgrade_is_refused_before_anything_changes(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    data = tmp_path / "pgdata"
    data.mkdir()
    (data / "PG_VERSION").write_text("16\n")
    fake.volumes["onebox_postgres-data"] = str(data)
    fake.images.add("postgres:17")
    app = make_app(tmp_path, settings(postgres_image="postgres:17"), fake, monkeypatch, "v2")
    fake.calls.clear()
    with pytest.raises(OneboxError, match="PostgreSQL 17, but the database's data was made by PostgreSQL 16") as error:
        engine.apply(app)
    assert "pg_upgrade" in str(error.value) and "dump and restore" in str(error.value)
    assert not fake.commands("up") and not fake.commands("build")


def test_rollback_returns_to_a_named_release_without_building(tmp_path, fake, monkeypatch) -> None:
    first = deployed(tmp_path, fake, monkeypatch).load_state().live
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v2")
    engine.apply(app)
    fake.calls.clear()
    engine.rollback(app, first)
    state = app.load_state()
    assert state.live == first and upstream_slot(app) == state.slot
    assert not fake.commands("build") and not fake.commands("run", "--rm")  # no release step either
    with pytest.raises(ValueError, match="is not a release id"):
        engine.rollback(app, "../../etc")
    with pytest.raises(OneboxError, match="is not kept on this server"):
        engine.rollback(app, "20000101-000000-abcdef")


def test_prune_keeps_releases_kept_the_live_one_and_their_images(tmp_path, fake, monkeypatch) -> None:
    for tag in ("v1", "v2", "v3", "v4"):
        app = make_app(tmp_path, settings(releases_kept=2), fake, monkeypatch, tag)
        monkeypatch.setattr(engine, "datetime", _Clock(tag))
        engine.apply(app)
    kept = sorted(p.name for p in app.releases_dir.iterdir())
    assert len(kept) == 2 and app.load_state().live in kept
    assert fake.images == {"onebox/api:v3", "onebox/api:v4"}


def test_prune_keeps_the_release_a_rollback_goes_back_to_and_its_image(tmp_path, fake, monkeypatch) -> None:
    def deploy(tag: str) -> App:
        app = make_app(tmp_path, settings(releases_kept=2), fake, monkeypatch, tag)
        monkeypatch.setattr(engine, "datetime", _Clock(tag))
        engine.apply(app)
        return app

    deploy("v1")
    app = deploy("v2")
    engine.rollback(app, None)  # back to v1, older than v2
    v1 = app.load_state().live
    app = deploy("v3")  # v1 is now the previous release: what `onebox rollback` goes back to
    state = app.load_state()
    assert state.previous == v1
    assert (app.releases_dir / v1).is_dir(), "the rollback target was pruned"
    assert "onebox/api:v1" in fake.images, "the rollback target's image was pruned"
    assert sorted(p.name for p in app.releases_dir.iterdir())[0] == v1  # the newest two, and v1
    engine.rollback(app, None)
    assert app.load_state().live == v1


def test_prune_leaves_the_images_of_another_app_with_the_same_image_repository(tmp_path, fake, monkeypatch) -> None:
    """Two apps of one server building into one app_image repository (the README's two-app example):
    one app's prune never removes what the other keeps (its rollback image) or names (the image it builds)."""
    other = make_app(tmp_path / "other", settings(app_name="jobs"), fake, monkeypatch, "jobs-v1")
    monkeypatch.setattr(engine, "datetime", _Clock("v0"))
    engine.apply(other)
    fake.images.add("onebox/api:jobs-v2")  # the image the other app's next release is building
    spec = json.loads((other.dir / "spec.json").read_text())
    spec["release"]["image"]["ref"] = "onebox/api:jobs-v2"
    (other.dir / "spec.json").write_text(json.dumps(spec))
    registry = tmp_path / "apps.json"
    registry.write_text(contract.apps_text({"onebox": contract.RegisteredApp(str(tmp_path / "app"), "onebox"),
                                            "jobs": contract.RegisteredApp(str(other.dir), "jobs")}))
    monkeypatch.setattr(contract, "APPS_FILE", str(registry))
    for tag in ("v1", "v2", "v3"):
        app = make_app(tmp_path, settings(releases_kept=2), fake, monkeypatch, tag)
        monkeypatch.setattr(engine, "datetime", _Clock(tag))
        engine.apply(app)
    assert fake.images == {"onebox/api:v2", "onebox/api:v3", "onebox/api:jobs-v1", "onebox/api:jobs-v2"}


class _Clock:
    """datetime for new_release: one release a minute, so ids differ and sort in order."""

    def __init__(self, tag: str) -> None:
        from datetime import UTC, datetime

        self.moment = datetime(2026, 12, 2, 8, int(tag[1:]), tzinfo=UTC)

    def now(self, tz=None):  # noqa: ANN001
        return self.moment


PHASES = {
    "the release step": lambda argv: "run" in argv and "--rm" in argv,
    "starting the new slot": lambda argv: "-p" in argv and GREEN in argv and "up" in argv,
    "the switch": lambda argv: argv[:2] == ["nft", "-f"],
    "draining the old slot": lambda argv: "-p" in argv and BLUE in argv and "down" in argv,
    "starting the processes": lambda argv: GREEN in argv and "worker" in argv and "up" in argv,
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_an_interruption_in_each_phase_is_finished_or_undone_by_the_next_run(tmp_path, fake, monkeypatch, phase) -> None:
    first = deployed(tmp_path, fake, monkeypatch).load_state().live
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v2")
    fake.crash = PHASES[phase]
    with pytest.raises(Crash):
        engine.apply(app)
    crashed_at = len(fake.calls)
    fake.crash = lambda argv: False
    engine.apply(app)  # the next converge
    state = app.load_state()
    assert state.transition is None and state.live is not None
    assert upstream_slot(app) == state.slot  # one version serves, and nginx points at it
    live_project, idle_project = app.project(state.slot), app.project("green" if state.slot == "blue" else "blue")
    assert fake.services(live_project) == {"api": "running", "worker": "running"}
    assert fake.services(idle_project) == {}
    if phase in ("the release step", "starting the new slot"):
        assert state.live != first  # undone, then released again by the same run
    if phase == "the switch":  # the map's file was written, the kernel never told: it is now
        assert ["nft", "-f", str(app.dir / "switch.nft")] in fake.calls[crashed_at:]
        assert state.live != first


def test_maintenance_mode_is_a_flag_and_a_page(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    switch.maintenance_on(app.maintenance_dir, "Back at <b>10:00</b>")
    page = (app.maintenance_dir / contract.MAINTENANCE_PAGE).read_text()
    assert "Back at &lt;b&gt;10:00&lt;/b&gt;" in page  # escaped: the message is text, not markup
    assert switch.maintenance_since(app.maintenance_dir)
    fake.calls.clear()
    engine.apply(app)  # a converge leaves it on
    assert (app.maintenance_dir / contract.MAINTENANCE_FLAG).exists() and not fake.commands("reload")
    switch.maintenance_off(app.maintenance_dir)
    assert switch.maintenance_since(app.maintenance_dir) is None


def test_commands_that_need_a_live_release_say_so(tmp_path, fake, monkeypatch) -> None:
    app = make_app(tmp_path, settings(), fake, monkeypatch)
    with pytest.raises(OneboxError, match="no release is live on this server yet"):
        reports.logs(app, False, 10, False, "api")
    with pytest.raises(OneboxError, match="no release is live"):
        reports.run_in_app(app, ["true"])


def test_logs_and_status_print_no_control_character_of_the_app(tmp_path, fake, monkeypatch, capsys) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    hostile = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x9b1;1H\rdone"  # clipboard, clear, C1 CSI, carriage return
    lines = [json.dumps({"level": "info", "msg": hostile}) + "\n", hostile + "\n"]

    class Logs:
        def __init__(self, argv, **kwargs) -> None:  # noqa: ANN001 - subprocess.Popen's
            self.stdout = iter(lines)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(reports.subprocess, "Popen", Logs)
    reports.logs(app, False, 10, False, "api")
    reports.logs(app, False, 10, True, "api")
    state = app.load_state()
    state.last_deploy = {"command": "apply", "at": "now", "ok": False, "message": f"migration said {hostile}"}
    app.save_state(state)
    reports.status(app)
    out = capsys.readouterr().out
    assert not any(0x00 <= ord(c) < 0x20 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in out)
    assert "INFO    \\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\x9b1;1H\\x0ddone\n" in out  # the JSON field, decoded
    assert "migration said \\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\x9b1;1H\\x0ddone\n" in out  # status
    assert out.count("\\x1b]52;c;cm0gLXJmIH4=\\x07\\x9b1;1H\\x0ddone\n") == 2  # the plain line, readable and raw


def test_a_registry_release_runs_the_digest_so_a_rollback_survives_a_moved_tag(tmp_path, fake, monkeypatch) -> None:
    s = settings(app_image_source="registry", app_image="registry.example.com/team/api:main",
                 registry_server="registry.example.com")
    image = {"source": "registry", "ref": s.app_image, "registry_server": s.registry_server, "registry_username": None}

    def registry_app() -> App:
        app = make_app(tmp_path, s, fake, monkeypatch)
        spec = json.loads((app.dir / "spec.json").read_text())
        spec["release"]["image"] = {**spec["release"]["image"], **image, "tarball": None, "dockerfile": None}
        (app.dir / "spec.json").write_text(json.dumps(spec))
        return App(app.dir, nginx_dir=app.nginx_dir, maintenance_dir=str(app.maintenance_dir))

    fake.registry["registry.example.com/team/api:main"] = "sha256:aaa"
    app = registry_app()
    engine.apply(app)
    first = app.record(app.load_state().live)
    assert first is not None and first.image == "registry.example.com/team/api@sha256:aaa"
    fake.registry["registry.example.com/team/api:main"] = "sha256:bbb"  # the tag moves; a secret changes
    (app.secrets_dir / "supplied.json").write_text('{"secret": {"X": "y"}}')
    engine.apply(app)
    second = app.record(app.load_state().live)
    assert second is not None and second.image.endswith("@sha256:bbb")
    engine.rollback(app, first.id)
    assert fake.commands("-p", app.project(app.load_state().slot), "up")[-1]  # started again
    assert app.record(app.load_state().live).image.endswith("@sha256:aaa")  # the digest, not the moved tag
    assert "registry.example.com/team/api@sha256:aaa" in fake.images  # pruning kept it


def from_registry(app: App, ref: str) -> App:
    """The app with its spec's image pulled from a registry (ref) instead of built."""
    spec = json.loads((app.dir / "spec.json").read_text())
    spec["release"]["image"] = {"source": "registry", "ref": ref,
                                "registry_server": "registry.example.com", "registry_username": None}
    (app.dir / "spec.json").write_text(json.dumps(spec))
    return App(app.dir, nginx_dir=app.nginx_dir, maintenance_dir=str(app.maintenance_dir))


def test_a_missing_tag_fails_before_anything_stops(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live, ids = app.load_state().live, fake.ids(BLUE)
    app = from_registry(app, "registry.example.com/team/api:gone")
    with pytest.raises(OneboxError, match="docker pull registry.example.com/team/api:gone failed"):
        engine.apply(app)
    assert app.load_state().live == live and fake.ids(BLUE) == ids


def test_a_first_release_interrupted_while_starting_is_undone_though_nginx_names_its_slot(tmp_path, fake,
                                                                                          monkeypatch) -> None:
    """The initial upstream already names blue, where the first release starts: that is no switch."""
    app = make_app(tmp_path, settings(), fake, monkeypatch)
    fake.crash = PHASES["the release step"]
    with pytest.raises(Crash):
        engine.apply(app)
    fake.crash = lambda argv: False
    fake.calls.clear()
    engine.recover(app)
    state = app.load_state()
    assert state.live is None and state.transition is None and fake.services(BLUE) == {}
    assert not list(app.releases_dir.iterdir())  # it never served


def test_a_failed_switch_leaves_the_live_version_and_its_map(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live = app.load_state().live
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v2")
    fake.fail = lambda argv: argv[:2] == ["nft", "-f"] and f"127.0.0.1:{app.port('green')}" in Path(argv[2]).read_text()
    with pytest.raises(OneboxError, match="the switch to slot green failed"):
        engine.apply(app)
    state = app.load_state()
    assert state.live == live and state.transition is None and upstream_slot(app) == "blue"
    assert f"dnat to 127.0.0.1:{app.port('blue')}" in fake.nft["onebox_switch"]
    assert fake.services(GREEN) == {} and fake.services(BLUE)["api"] == "running"


def test_a_fresh_servers_first_release_reloads_nothing(tmp_path, fake, monkeypatch) -> None:
    """The proxy role wrote the stable address from the start: the first switch only maps the kernel."""
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v1")
    fake.calls.clear()
    engine.apply(app)
    assert app.load_state().live is not None and upstream_slot(app) == "blue"
    assert app.upstream.read_text() == contract.switched_upstream_text(app.port("blue"))
    assert not fake.commands("systemctl", "reload", "nginx")


def test_a_server_switched_by_its_upstream_file_converts_to_the_map_with_one_reload(tmp_path, fake, monkeypatch) -> None:
    """A server an earlier onebox converged: nginx's file names the live slot. The next switch maps
    the kernel first, then points nginx at the stable address (one reload); later ones reload nothing."""
    app = deployed(tmp_path, fake, monkeypatch)
    app.upstream.write_text(contract.upstream_text("blue", app.port("blue")))
    (app.dir / "switch.nft").unlink()
    fake.nft.clear()
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v2")
    fake.calls.clear()
    engine.apply(app)
    mapped_at = fake.calls.index(["nft", "-f", str(app.dir / "switch.nft")])
    assert mapped_at < fake.calls.index(["systemctl", "reload", "nginx"])
    assert app.upstream.read_text() == contract.switched_upstream_text(app.port("blue")) and upstream_slot(app) == "green"
    fake.calls.clear()
    engine.apply(make_app(tmp_path, settings(), fake, monkeypatch, "v3"))
    assert upstream_slot(app) == "blue" and not fake.commands("systemctl", "reload", "nginx")


def test_processes_that_fail_after_the_switch_leave_the_new_release_live_and_kept(tmp_path, fake, monkeypatch) -> None:
    deployed(tmp_path, fake, monkeypatch)
    app = make_app(tmp_path, settings(), fake, monkeypatch, "v2")
    monkeypatch.setattr(fake, "_compose", _worker_exits(fake._compose))
    with pytest.raises(OneboxError, match="worker did not stay up"):
        engine.apply(app)
    state = app.load_state()
    assert state.slot == "green" and (app.releases_dir / str(state.live) / "release.json").exists()


def _worker_exits(compose):  # noqa: ANN001, ANN202 - wraps FakeDocker._compose
    def wrapped(argv, env):  # noqa: ANN001, ANN202
        result = compose(argv, env)
        project = argv[argv.index("-p") + 1]
        if project == GREEN and "worker" in fake_services(compose, project):
            compose.__self__.projects[project]["worker"]["state"] = "exited"
        return result
    return wrapped


def fake_services(compose, project: str) -> dict:  # noqa: ANN001
    return compose.__self__.projects.get(project, {})


def test_image_names_as_docker_reports_them(fake, monkeypatch) -> None:
    from onebox.server import basics, deps

    monkeypatch.setattr(basics, "run", fake)  # no image is on this fake server: the tag decides

    assert contract.image_repository("registry:5000/team/api:main") == "registry:5000/team/api"
    assert contract.image_repository("registry:5000/team/api@sha256:abc") == "registry:5000/team/api"
    assert contract.hub_name("docker.io/library/redis") == contract.hub_name("redis") == "redis"
    assert deps.postgres_major_of_image("postgres:17@sha256:9abc") == "17"
    assert deps.postgres_major_of_image("postgres@sha256:8b3f") is None
    assert deps.postgres_major_of_image("registry:5000/pg:16.4") == "16"


def compose_env_file(text: str) -> dict[str, str]:
    """compose-go's dotenv parser (dotenv/parser.go, extractVarValue) for this file's lines: an unquoted
    value loses a ` #` comment and has `$` interpolated; a single-quoted one is taken as it is, a
    backslash escaping only the quote."""
    env = {}
    for line in text.splitlines():
        name, value = line.split("=", 1)
        if not value.startswith("'"):
            env[name] = value.split(" #", 1)[0].rstrip().replace("$", "<interpolated>")
            continue
        chars, escape = [], False
        for char in value[1:]:
            if char != "'":
                if not escape and char == "\\":
                    escape = True
                    continue
                chars += ["\\", char] if escape else [char]
                escape = False
                continue
            if escape:
                chars.append(char)
                escape = False
                continue
            break
        else:
            raise ValueError(f"unterminated quoted value: {line}")
        env[name] = "".join(chars)
    return env


def test_app_env_values_reach_compose_as_they_are(tmp_path, fake, monkeypatch) -> None:
    value = 'p$ss #not a comment "q" \\b ${HOME} {domain}'
    app = deployed(tmp_path, fake, monkeypatch, app_env={"APP_ENV": "production", "X": value.replace("{", "{{")
                                                         .replace("}", "}}").replace("{{domain}}", "{domain}")})
    release = app.record(app.load_state().live)
    env = compose_env_file((app.releases_dir / release.id / "app.env").read_text())
    assert env["X"] == value.replace("{domain}", app.spec.release.placeholders["domain"])
    assert env["APP_ENV"] == "production"


# --- time limits under the deploy lock (issue 29, finding 7): a real `sleep` stands in for the hung step ---

def test_a_command_past_its_timeout_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(basics.CommandTimeout, match="sleep did not finish within 1 s"):
        REAL_RUN(["sleep", "60"], timeout=1, what="sleep")
    assert time.monotonic() - started < 10


def test_a_hung_release_step_is_killed_its_container_removed_and_the_lock_released(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live = app.load_state().live
    app = make_app(tmp_path, settings(release_step_timeout=1), fake, monkeypatch, "v2")
    fake.hang = lambda argv: "run" in argv and "--rm" in argv
    with pytest.raises(OneboxError) as raised:
        cli.deploy_command(app, "apply", lambda: engine.apply(app))
    message = str(raised.value)
    assert "the release step (alembic upgrade head) did not finish within 1 s (release_step_timeout)" in message
    assert "raise release_step_timeout (group data, or ONEBOX_RELEASE_STEP_TIMEOUT)" in message
    step = fake.commands("run", "--rm")[-1]
    name = step[step.index("--name") + 1]
    assert name.startswith(f"{GREEN}-release-")
    assert fake.calls.index(["docker", "rm", "--force", name]) > fake.calls.index(step)  # not left running
    state = app.load_state()
    assert state.live == live and state.transition is None and upstream_slot(app) == "blue"
    assert fake.services(GREEN) == {} and fake.services(BLUE)["api"] == "running"
    assert state.last_deploy["ok"] is False and "release_step_timeout" in state.last_deploy["message"]
    with basics.file_lock(app.dir / ".lock", timeout=0):  # the next deploy, rollback or restore gets it at once
        pass


def test_a_hung_image_build_is_stopped_naming_build_timeout(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    live, ids = app.load_state().live, fake.ids(BLUE)
    app = make_app(tmp_path, settings(build_timeout=1), fake, monkeypatch, "v2")
    fake.hang = lambda argv: argv[:2] == ["docker", "build"]
    with pytest.raises(OneboxError, match=r"the image build did not finish within 1 s \(build_timeout\)"):
        engine.apply(app)
    assert app.load_state().live == live and fake.ids(BLUE) == ids


def test_a_hung_pull_is_stopped_naming_pull_timeout(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch, pull_timeout=1)
    live, ids = app.load_state().live, fake.ids(BLUE)
    app = from_registry(app, "registry.example.com/team/api:v2")
    fake.hang = lambda argv: argv[:2] == ["docker", "pull"]
    with pytest.raises(OneboxError, match=r"docker pull registry.example.com/team/api:v2 did not finish within 1 s "
                                          r"\(pull_timeout\)"):
        engine.apply(app)
    assert app.load_state().live == live and fake.ids(BLUE) == ids
