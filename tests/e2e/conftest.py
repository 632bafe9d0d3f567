"""One fresh local target serves the whole e2e session: bringing a server up costs
minutes, so the modules share it, in order (test_1_... to test_4_...).

The session: stand-in images and Pebble on this machine, a fresh target, the deploy
twice (the second must change nothing), then each module's checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from onebox.inventory import settings_for_group
from onebox.settings import Settings
from onebox.verify.api import api_tunnel, wait_ready
from testbed import pebble
from testbed.deploy import DeployResult, run_deploy
from testbed.stack import bring_up
from testbed.target import Target, down

TARGET = Target(index=1)  # never the demo's target 0


@dataclass
class Deployed:
    target: Target
    settings: Settings
    first: DeployResult
    second: DeployResult

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
        state = f"{self.settings.app_dir}/state.json"
        return self.ssh(f"python3 -c \"import json; print(json.load(open('{state}'))['live'])\"").stdout.strip()

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
def deployed() -> Deployed:
    bring_up(TARGET, fresh=True)
    settings = settings_for_group("local")
    first = run_deploy(TARGET.index)
    assert first.returncode == 0, first.output[-4000:]
    second = run_deploy(TARGET.index)
    yield Deployed(TARGET, settings, first, second)
    down(TARGET)


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
