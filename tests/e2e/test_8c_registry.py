"""Deploy from CI through a real registry (Debian's docker-registry, TLS and htpasswd, on
this machine): examples/ci/deploy.sh builds, pushes and deploys by digest, as the CI
example runs it; a rollback returns to the digest's bytes after the tag moved; a wrong
registry password is refused before anything changes. Then CI without root:
examples/ci/deploy-restricted.sh deploys as onebox-ci, whose key runs only
`onebox-release ci-deploy` and whose sudo allows only that; the admin's next converge keeps
CI's digest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from test_4_rollout import app_copy

from onebox import ci
from testbed import registry
from testbed.deploy import ROOT, changed_operations

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


def ci_key(tmp_path: Path) -> tuple[Path, str]:
    """A fresh ed25519 key pair for CI: (the private key's path, the public key's line)."""
    key = tmp_path / "ci_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci@e2e", "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def ci_ssh_options(deployed) -> list[str]:
    """ssh options for onebox-ci: CI's key alone (no ssh_config, so root's key of ssh_config-N is never
    offered in its place), the target's known host keys."""
    return ["-F", "/dev/null", "-o", f"UserKnownHostsFile={deployed.target.known_hosts}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"]


def as_ci(deployed, key: Path, line: str, *command: str) -> subprocess.CompletedProcess:
    """`ssh -i key -o IdentitiesOnly=yes -l onebox-ci TARGET [command]` with `line` on stdin."""
    return subprocess.run(["ssh", *ci_ssh_options(deployed), "-i", str(key), "-o", "IdentitiesOnly=yes",
                           "-l", ci.CI_USER, deployed.ip, *command],
                          input=line, capture_output=True, text=True, check=False)


def push_tag(source: Path, password: str) -> None:
    """Build `source` and push it as IMAGE:main (what CI's tag names; nothing deployed)."""
    tag = f"{registry.ADDRESS}/{IMAGE}:main"
    subprocess.run(["docker", "login", registry.ADDRESS, "-u", registry.USERNAME, "--password-stdin"],
                   input=password, capture_output=True, text=True, check=True)
    subprocess.run(["docker", "build", "-q", "--build-arg", "PYTHON_IMAGE=onebox-test/python:3.13", "-t", tag,
                    str(source)], capture_output=True, text=True, check=True)
    subprocess.run(["docker", "push", "-q", tag], capture_output=True, text=True, check=True)


def restricted_deploy(deployed, key: Path, source: Path, password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REGISTRY": registry.ADDRESS, "IMAGE": IMAGE, "REGISTRY_USERNAME": registry.USERNAME,
           "ONEBOX_REGISTRY_PASSWORD": password, "HOST": deployed.ip, "CI_SSH_KEY": str(key),
           "APP": deployed.settings.app_name, "CONTEXT": str(source),
           "BUILD_ARGS": "PYTHON_IMAGE=onebox-test/python:3.13", "SSH_OPTIONS": " ".join(ci_ssh_options(deployed))}
    return subprocess.run(["examples/ci/deploy-restricted.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)


def test_ci_deploys_as_onebox_ci_without_root_and_the_admins_converge_keeps_its_digest(deployed, api, local_registry,
                                                                                       tmp_path) -> None:
    password = registry.password()
    key, public_key = ci_key(tmp_path)
    tag = f"{registry.ADDRESS}/{IMAGE}:main"
    push_tag(app_copy(tmp_path, "ci-4"), password)
    admin = {**registry_settings(tag, password), "ONEBOX_CI_SSH_KEYS": json.dumps([public_key])}
    first = deployed.deploy(admin)
    assert first.returncode == 0, first.output[-3000:]
    assert httpx.get(f"{api}/version").json()["version"] == "ci-4"

    # CI: build, push, and the digest on stdin of `ssh onebox-ci@target`.
    result = restricted_deploy(deployed, key, app_copy(tmp_path, "ci-5"), password)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digest = digest_of(result)
    assert httpx.get(f"{api}/version").json()["version"] == "ci-5"
    assert digest in deployed.ssh("onebox-release releases").stdout
    app_dir = deployed.settings.app_dir
    recorded = json.loads(deployed.ssh(f"cat {app_dir}/ci-image.json").stdout)
    assert recorded["ref"] == digest
    live, api_container = deployed.live_release(), deployed.container_ids()["api"]
    spec = deployed.ssh(f"sha256sum {app_dir}/spec.json").stdout

    # Any command asked for runs the forced one instead, which reads its line from stdin: no shell.
    shell = as_ci(deployed, key, "", "id")
    assert shell.returncode == 2, shell.stdout + shell.stderr
    assert "no input: expected one line 'APP_NAME REPOSITORY@sha256:<64 hex>'" in shell.stderr
    assert "uid=" not in shell.stdout + shell.stderr
    # Its sudo allows that one command with that one argument, nothing else.
    rules = deployed.ssh(f"sudo -l -U {ci.CI_USER}").stdout
    commands = [line.strip() for line in rules.split("may run the following commands", 1)[1].splitlines()[1:]
                if line.strip()]
    assert commands == ["(root) NOPASSWD: /usr/local/sbin/onebox-release ci-deploy"], rules

    # A digest of another repository, or the tag, is refused before anything changes.
    for line, reason in ((f"{registry.ADDRESS}/onebox/other@sha256:{'0' * 64}", "is of repository"),
                         (tag, "is not a digest")):
        refused = as_ci(deployed, key, f"{deployed.settings.app_name} {line}\n")
        assert refused.returncode == 2 and reason in refused.stderr, refused.stdout + refused.stderr
    assert deployed.live_release() == live and deployed.container_ids()["api"] == api_container
    assert deployed.ssh(f"sha256sum {app_dir}/spec.json").stdout == spec

    # The admin's next converge, app_image still the tag: nothing changes, CI's digest stays live.
    again = deployed.deploy(admin)
    assert again.returncode == 0 and again.changed == 0, changed_operations(again.output)
    assert deployed.live_release() == live and httpx.get(f"{api}/version").json()["version"] == "ci-5"

    # ci_ssh_keys emptied: the account, its keys and its sudo rule are gone; CI's release still runs.
    without = deployed.deploy(registry_settings(tag, password))
    assert without.returncode == 0, without.output[-3000:]
    assert deployed.ssh(f"id {ci.CI_USER}").returncode != 0
    assert deployed.ssh(f"test -e {ci.CI_SUDOERS} || test -e {ci.CI_HOME}").returncode != 0
    assert as_ci(deployed, key, f"{digest}\n").returncode == 255  # ssh's own failure: no login
    assert deployed.live_release() == live
