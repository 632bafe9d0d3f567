"""onebox-release boot (onebox-boot.service): after a reboot, what Docker's restart policies
left stopped runs again, each app on its own, against the fake Docker of the engine tests."""

from __future__ import annotations

import contextlib

import pytest
from fake_docker import FakeDocker
from test_engine import BLUE, deployed

from onebox.render import render
from onebox.server import boot, cli, placement
from onebox.server.basics import EXIT_FAILED, EXIT_OK, OneboxError


@pytest.fixture
def fake(monkeypatch) -> FakeDocker:
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return FakeDocker()


def no_lock(app):  # noqa: ANN001, ANN201 - the deploy lock is the CLI's; not under test here
    return contextlib.nullcontext()


def test_a_killed_dependency_and_api_run_again_after_a_boot(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    fake.projects[app.name]["redis"]["state"] = "exited"  # `docker kill`: unless-stopped leaves it so
    fake.projects[BLUE]["api"]["state"] = "exited"
    assert boot.heal_every_app([app.dir], no_lock) == EXIT_OK
    assert fake.services(app.name)["redis"] == "running"
    assert fake.services(BLUE)["api"] == "running"


def test_an_app_that_fails_to_come_back_does_not_keep_the_others_down(tmp_path, monkeypatch) -> None:
    healed = []

    def heal(app) -> None:  # noqa: ANN001
        if app.dir.name == "broken":
            raise OneboxError("its image is gone")
        healed.append(app.dir.name)

    monkeypatch.setattr(boot, "heal_app", heal)
    monkeypatch.setattr(boot, "App", lambda directory: type("A", (), {"dir": directory})())
    dirs = []
    for name in ("broken", "shop", "never-deployed"):
        (tmp_path / name).mkdir()
        if name != "never-deployed":
            (tmp_path / name / "spec.json").write_text("{}")
        dirs.append(tmp_path / name)
    assert boot.heal_every_app(dirs, no_lock) == EXIT_FAILED
    assert healed == ["shop"]


def test_on_a_cluster_it_waits_for_the_swarm_and_fails_naming_it(tmp_path, fake, monkeypatch) -> None:
    app = deployed(tmp_path, fake, monkeypatch)
    monkeypatch.setattr(placement, "of", placement.OnWorkers)
    monkeypatch.setattr(placement, "swarm_active", lambda: False)
    monkeypatch.setattr(placement, "SWARM_WAIT", 0)
    fake.calls.clear()
    with pytest.raises(OneboxError, match="swarm did not become active"):
        boot.heal_app(app)
    assert not fake.commands("up")  # nothing started on a half-up node


def test_boot_is_a_command_and_its_unit_starts_at_boot_after_docker() -> None:
    assert cli.parser().parse_args(["boot"]).command == "boot"
    unit = render("systemd/onebox-boot.service.j2", command="/usr/local/sbin/onebox-release")
    assert "ExecStart=/usr/local/sbin/onebox-release boot" in unit
    assert "After=docker.service" in unit and "WantedBy=multi-user.target" in unit and "Type=oneshot" in unit

