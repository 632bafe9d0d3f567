"""Host checks run against ANY server converged by onebox:

    pytest tests/host --hosts=ssh://root@203.0.113.7 --onebox-group=prod

--onebox-group names the group_data/<group>.py whose settings the server was
converged with (default: $ONEBOX_GROUP or "local"); --onebox-dir the deploy directory that
holds it (default: $ONEBOX_DIR or the current directory), e.g. one made by `onebox init`. A node of a cluster inventory
(docs/cluster.md) also takes --onebox-swarm-role: a worker is checked for the host roles,
Docker and its swarm membership only, since it runs nothing else.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from onebox.inventory import settings_for_group
from onebox.settings import Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--onebox-group", default=os.environ.get("ONEBOX_GROUP", "local"),
                     help="group_data group the server was converged with")
    parser.addoption("--onebox-dir", default=os.environ.get("ONEBOX_DIR"),
                     help="the deploy directory holding group_data/ and secrets/ (default: the current directory)")
    parser.addoption("--onebox-swarm-role", choices=("none", "manager", "worker"), default="none",
                     help="the server's swarm_role in a cluster inventory (none: a single server)")


WORKER_MODULES = ("test_base.py", "test_docker.py", "test_swarm.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--onebox-swarm-role") == "worker":
        items[:] = [item for item in items if item.path.name in WORKER_MODULES]


@pytest.fixture(scope="session")
def swarm_role(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--onebox-swarm-role")


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> Settings:
    """The server's settings (on a server of several apps: those of its first app)."""
    group = request.config.getoption("--onebox-group")
    return settings_for_group(group, directory=request.config.getoption("--onebox-dir"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A check that takes `app` runs once per app of the server (named in the test id).
    if "app" in metafunc.fixturenames:
        apps = settings_for_group(metafunc.config.getoption("--onebox-group"),
                                  directory=metafunc.config.getoption("--onebox-dir")).app_list
        metafunc.parametrize("app", [app.app_name for app in apps], indirect=True, scope="module")


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """One app's settings."""
    return next(app for app in settings.app_list if app.app_name == request.param)


@pytest.fixture(scope="module")
def address(host) -> str:  # noqa: ANN001 - testinfra's host fixture
    """The server's address as this machine reaches it (for outside checks).

    `ssh -G` resolves an ssh_config alias (such as the local target's) to its HostName.
    """
    name = host.backend.get_hostname()
    config = getattr(host.backend, "ssh_config", None)
    command = ["ssh", "-G", *(["-F", config] if config else []), name]
    resolved = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return next(line.split()[1] for line in resolved.splitlines() if line.startswith("hostname "))
