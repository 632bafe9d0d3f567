"""Where a slot's API runs is chosen once per app (onebox/server/placement.py): in compose on
this server unless the app lists swarm nodes, and the compose placement never touches swarm."""

from __future__ import annotations

import dataclasses

import pytest
from fake_docker import FakeDocker, make_app
from test_settings import valid

from onebox import contract
from onebox.server import basics, engine, placement, slots, swarm
from onebox.settings import validate_settings

NODES = ["10.0.0.2", "10.0.0.3"]


@pytest.fixture
def fake(monkeypatch) -> FakeDocker:
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return FakeDocker()


def on_nodes(app, nodes: list[str]):  # noqa: ANN001, ANN201 - the app with its spec's swarm_nodes replaced
    spec = contract.Spec.from_json((app.dir / "spec.json").read_text())
    (app.dir / "spec.json").write_text(dataclasses.replace(spec, swarm_nodes=nodes).to_json())
    return type(app)(app.dir, nginx_dir=app.nginx_dir)


def no_swarm(monkeypatch) -> None:
    """Every function of swarm.py fails the test if called."""
    for name, value in list(vars(swarm).items()):
        if callable(value) and getattr(value, "__module__", None) == swarm.__name__:
            monkeypatch.setattr(swarm, name, lambda *args, _name=name, **kwargs: pytest.fail(f"swarm.{_name} called"))


def test_an_app_without_swarm_nodes_runs_its_api_in_compose_on_this_server(tmp_path, fake, monkeypatch) -> None:
    app = make_app(tmp_path, validate_settings(valid()), fake, monkeypatch)
    assert isinstance(placement.of(app), placement.OnThisServer)


def test_an_app_with_swarm_nodes_runs_its_api_as_swarm_services_on_the_workers(tmp_path, fake, monkeypatch) -> None:
    app = on_nodes(make_app(tmp_path, validate_settings(valid()), fake, monkeypatch), NODES)
    where = placement.of(app)
    assert isinstance(where, placement.OnWorkers)
    assert where.app is app and where.api_status_in_name()


def test_the_compose_placement_never_calls_swarm(tmp_path, fake, monkeypatch) -> None:
    app = make_app(tmp_path, validate_settings(valid()), fake, monkeypatch)
    no_swarm(monkeypatch)
    monkeypatch.setattr(swarm, "is_manager", lambda: False)  # a single server: asked only by stop and status
    engine.apply(app)  # start, health gate, deps, prune: all in compose
    state, record = app.live_record()
    assert state.slot is not None
    where = placement.of(app)
    where.ready()
    where.stop_api_outside_project(state.slot)
    where.attach_dependencies()
    where.prune()
    assert where.api_outside_project(state.slot) == [] and where.task_lines(state.slot) == []
    assert not where.api_status_in_name()
    assert [c.service for c in slots.containers(app, state.slot)] == ["api"]
    slots.stop(app, state.slot, record)


def test_a_slot_stopped_on_a_manager_removes_a_service_left_from_a_placement_on_the_workers(tmp_path, fake,
                                                                                           monkeypatch) -> None:
    app = make_app(tmp_path, validate_settings(valid()), fake, monkeypatch)
    stopped = []
    monkeypatch.setattr(swarm, "stop", lambda app, slot: stopped.append(slot))
    monkeypatch.setattr(swarm, "is_manager", lambda: False)
    slots.stop(app, "blue", None)
    assert stopped == []  # a single server: no service to look for
    monkeypatch.setattr(swarm, "is_manager", lambda: True)
    slots.stop(app, "blue", None)
    assert stopped == ["blue"]  # the app's spec no longer lists nodes, but a service may be left
    stopped.clear()
    monkeypatch.setattr(swarm, "is_manager", lambda: pytest.fail("asked although the app is on the workers"))
    slots.stop(on_nodes(app, NODES), "green", None)
    assert stopped == ["green"]


@pytest.mark.parametrize(("reasons", "calls", "started"), [
    (["runc create failed: unable to start container process: waiting for init preliminary setup"], 2, True),
    (["unable to start container process"] * 3, 3, False),  # three times: the reason, not a loop
    (["dependency failed to start: container onebox-green-api-1 is unhealthy"], 1, False),  # never again
])
def test_the_api_is_started_again_only_when_runc_did_not_start_it(
        tmp_path, fake, monkeypatch, reasons: list[str], calls: int, started: bool) -> None:
    app = make_app(tmp_path, validate_settings(valid()), fake, monkeypatch)
    attempts: list[tuple[str, ...]] = []

    def compose(app, record, slot, *args, check=True, capture=False, timeout=None):  # noqa: ANN001, ANN202
        attempts.append(args)
        failed = len(attempts) <= len(reasons)
        return basics.Result(["docker", "compose", *args], 1 if failed else 0, "",
                             f"Error response from daemon: {reasons[len(attempts) - 1]}" if failed else "")

    monkeypatch.setattr(placement.slot_project, "compose", compose)
    start = lambda: placement.OnThisServer(app).start_api(None, "green")  # noqa: E731
    if started:
        start()
    else:
        with pytest.raises(basics.OneboxError, match="docker compose up"):
            start()
    assert len(attempts) == calls
