"""One fresh local target serves the whole e2e session: bringing a server up costs
minutes, so the modules share it, in order (test_0_... to test_9zz_...).

The session: stand-in images and Pebble on this machine, a fresh target converged by the
version of onebox before this one (CHANGELOG.md names its commit), some rows written, then
an upgrade under load by this version installed from its wheel into a deploy directory made
by `onebox init`; then the repository's own converge, which must change nothing; then each
module's checks (test_0_upgrade.py reads what the upgrade did).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from upgrade import Installed, Previous, install_current, install_previous

from onebox.inventory import settings_for_group
from onebox.settings import Settings
from onebox.verify.api import api_tunnel, wait_ready
from onebox.verify.load import Load, LoadReport
from testbed import pebble
from testbed.deploy import DeployResult, run_deploy
from testbed.stack import bring_up
from testbed.target import Target, down

TARGET = Target(index=1)  # never the demo's target 0


# The previous version runs one API worker: the upgrade then has to make a release, the hardest case.
PREVIOUS_SETTINGS = {"ONEBOX_API_WORKERS": "1"}


@dataclass
class Upgrade:
    previous: Previous
    installed: Installed
    release_before: str  # the live release the previous version made
    rows_before: list[int]  # rows written through the API before the upgrade
    result: DeployResult  # the installed onebox's converge of the server the previous one made
    load: LoadReport  # what a client saw during it


@dataclass
class Deployed:
    target: Target
    settings: Settings
    first: DeployResult  # the previous version's first converge of the fresh target
    second: DeployResult  # the repository's converge after the upgrade: must change nothing
    upgrade: Upgrade

    @property
    def ip(self) -> str:
        return self.target.ip

    @property
    def domain(self) -> str:
        return self.settings.domains[0]

    @property
    def ssh_args(self) -> list[str]:
        return self.target.ssh_args

    def ssh(self, command: str) -> subprocess.CompletedProcess:
        return self.target.ssh(command)

    def container_ids(self) -> dict[str, str]:
        """compose service -> container ID (the dependencies and the live release): tells which a deploy replaced."""
        listing = self.ssh("docker ps --filter label=com.docker.compose.project --format "
                           "'{{.Label \"com.docker.compose.service\"}} {{.ID}}'")
        return dict(line.split() for line in listing.stdout.splitlines())

    def live_release(self) -> str:
        return live_release(self.target, self.settings)

    def host_checks(self, path: str = "tests/host", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """The testinfra host checks (or one module of them) against this target, as an operator runs them."""
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path,
             *self.target.testinfra_args, "--onebox-group=local"],
            capture_output=True, text=True, check=False, env={**os.environ, **(env or {})},
        )

    def deploy(self, env: dict[str, str] | None = None, deploy: str = "deploys/site.py",
               flags: list[str] | None = None, confirm: bool = False) -> DeployResult:
        return run_deploy(self.target.index, env, deploy, flags, confirm)


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    workdir = tmp_path_factory.mktemp("upgrade")
    # The virtualenvs are made while the target boots and while the earlier version converges it.
    with ThreadPoolExecutor(max_workers=1) as installer:
        previous_installed = installer.submit(install_previous, workdir)
        bring_up(TARGET, fresh=True)  # first: it makes the SSH key the group data reads
        settings = settings_for_group("local")
        previous = previous_installed.result()
        current_installed = installer.submit(install_current, workdir, TARGET)
        first = run_deploy(TARGET.index, PREVIOUS_SETTINGS, pyinfra=previous.pyinfra, cwd=previous.tree)
        installed = current_installed.result()
    assert first.returncode == 0, f"onebox {previous.version} failed to converge a fresh target:\n{first.output[-4000:]}"
    rows = write_rows(TARGET, 5)
    release_before = live_release(TARGET, settings)
    root = workdir / "pebble-root.pem"
    root.write_text(pebble.issuing_root_pem())
    with Load(TARGET.ip, settings.domains[0], root, write_path="/items") as load:
        upgraded = run_deploy(TARGET.index, installed.env, inventory="inventories/prod.py", pyinfra=installed.pyinfra,
                              cwd=installed.directory)
    assert upgraded.returncode == 0, f"the installed onebox failed to upgrade the server:\n{upgraded.output[-4000:]}"
    second = run_deploy(TARGET.index)
    upgrade = Upgrade(previous, installed, release_before, rows, upgraded, load.report)
    yield Deployed(TARGET, settings, first, second, upgrade)
    down(TARGET)


def write_rows(target: Target, count: int) -> list[int]:
    with api_tunnel(target.ssh_args) as base_url:
        wait_ready(base_url)
        return [httpx.post(f"{base_url}/items", json={"name": f"before-upgrade-{n}"}).json()["id"] for n in range(count)]


def live_release(target: Target, settings: Settings) -> str:
    state = f"{settings.app_dir}/state.json"
    return target.ssh(f"python3 -c \"import json; print(json.load(open('{state}'))['live'])\"").stdout.strip()


@pytest.fixture(scope="module")
def api(deployed):
    """The live release through nginx's local socket on the server (an SSH tunnel), whichever slot is live."""
    with api_tunnel(deployed.ssh_args) as base_url:
        wait_ready(base_url)
        yield base_url


@pytest.fixture(scope="module")
def root_ca(deployed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pebble's issuing root: what a browser's trust store would be for Let's Encrypt."""
    path = tmp_path_factory.mktemp("pebble") / "root.pem"
    path.write_text(pebble.issuing_root_pem())
    return path
