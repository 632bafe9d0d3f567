"""Deploy from CI through a real registry (Debian's docker-registry, TLS and htpasswd, on
this machine): examples/ci/deploy.sh builds, pushes and deploys by digest, as the CI
example runs it; a rollback returns to the digest's bytes after the tag moved; a wrong
registry password is refused before anything changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from test_4_rollout import app_copy

from testbed import registry
from testbed.deploy import ROOT

IMAGE = "onebox/ci-api"
ONEBOX = str(Path(sys.executable).with_name("onebox"))


@pytest.fixture(scope="module")
def local_registry(deployed):
    registry.up()
    registry.trust_on(deployed.ssh)
    yield registry
    registry.down()
    assert deployed.deploy().returncode == 0  # back to the group data's own image source for later modules


def ci_deploy(deployed, source: Path, password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REGISTRY": registry.ADDRESS, "IMAGE": IMAGE, "REGISTRY_USERNAME": registry.USERNAME,
           "ONEBOX_REGISTRY_PASSWORD": password, "INVENTORY": "inventories/local.py", "CONTEXT": str(source),
           "BUILD_ARGS": "PYTHON_IMAGE=onebox-test/python:3.13", "ONEBOX": ONEBOX,
           "ONEBOX_TARGET_INDEX": str(deployed.target.index)}
    return subprocess.run(["examples/ci/deploy.sh"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def digest_of(result: subprocess.CompletedProcess) -> str:
    return next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("deploying "))


def registry_settings(digest: str, password: str) -> dict[str, str]:
    return {"ONEBOX_APP_IMAGE_SOURCE": "registry", "ONEBOX_APP_IMAGE": digest, "ONEBOX_REGISTRY_SERVER": registry.ADDRESS,
            "ONEBOX_REGISTRY_USERNAME": registry.USERNAME, "ONEBOX_REGISTRY_PASSWORD": password}


def test_ci_pushes_and_deploys_by_digest_and_a_rollback_survives_a_moved_tag(deployed, api, local_registry,
                                                                              tmp_path) -> None:
    password = registry.password()
    first = ci_deploy(deployed, app_copy(tmp_path, "ci-1"), password)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    digest1 = digest_of(first)
    assert httpx.get(f"{api}/version").json()["version"] == "ci-1"
    assert digest1 in deployed.ssh("onebox-release releases").stdout  # the release names the digest
    assert password not in first.stdout + first.stderr
    api_container = deployed.container_ids()["api"]
    assert password not in deployed.ssh(f"docker inspect {api_container}").stdout
    assert deployed.ssh("stat -c %a /root/.docker/config.json").stdout.strip() == "600"

    # A wrong password: refused on the server before anything stops.
    live = deployed.live_release()
    wrong = deployed.deploy(registry_settings(digest1, "not-the-password-0123456789"))
    assert wrong.returncode != 0 and "docker login" in wrong.output, wrong.output[-3000:]
    assert "not-the-password-0123456789" not in wrong.output
    assert deployed.live_release() == live and deployed.container_ids()["api"] == api_container

    second = ci_deploy(deployed, app_copy(tmp_path, "ci-2"), password)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert httpx.get(f"{api}/version").json()["version"] == "ci-2"

    # The tag moves on to a third build that is never deployed; the rollback runs digest 1's bytes.
    moved = subprocess.run(["docker", "build", "-q", "--build-arg", "PYTHON_IMAGE=onebox-test/python:3.13", "-t",
                            f"{registry.ADDRESS}/{IMAGE}:main", str(app_copy(tmp_path, "ci-3"))],
                           capture_output=True, text=True, check=False)
    assert moved.returncode == 0, moved.stderr
    assert subprocess.run(["docker", "push", "-q", f"{registry.ADDRESS}/{IMAGE}:main"], capture_output=True,
                          check=False).returncode == 0
    rollback = subprocess.run([ONEBOX, "rollback", "inventories/local.py"], cwd=ROOT, capture_output=True, text=True,
                              check=False, env={**os.environ, "ONEBOX_TARGET_INDEX": str(deployed.target.index)})
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert httpx.get(f"{api}/version").json()["version"] == "ci-1"
    live_image = deployed.ssh(f"docker inspect -f '{{{{.Config.Image}}}}' {deployed.container_ids()['api']}").stdout
    assert live_image.strip() == digest1
