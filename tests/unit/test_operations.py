"""onebox's operations, pyinfra style: feed facts in, assert the exact commands out.

The pyinfra `host` an operation reads is replaced by a recorder holding the facts;
the commands are the real ones the operation yields. Those commands then run for
real in a shell where that is safe (checked_file against a temp dir).
"""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.facts.files import File, Sha1File

import onebox.operations
import onebox.rollout
from onebox.facts import EnvFileKeys, FileText
from onebox.operations import checked_file, generated_secrets, install_checked_script
from onebox.rollout import MIGRATION_FAILED, compose_rollout, inputs_hash


class FakeHost:
    def __init__(self, facts: dict) -> None:
        self.facts = facts
        self.noops: list[str] = []

    def get_fact(self, fact, **kwargs):  # noqa: ANN001 - pyinfra's signature
        return self.facts.get(fact)

    def noop(self, reason: str) -> None:
        self.noops.append(reason)


def commands(operation, facts: dict, monkeypatch: pytest.MonkeyPatch, module, **kwargs) -> tuple[list, FakeHost]:
    fake = FakeHost(facts)
    monkeypatch.setattr(module, "host", fake)
    return list(operation._inner(**kwargs)), fake


def test_checked_file_is_a_noop_when_content_and_mode_match(monkeypatch) -> None:
    import hashlib
    facts = {File: {"mode": 644, "user": "root", "group": "root"}, Sha1File: hashlib.sha1(b"x\n").hexdigest()}
    out, fake = commands(checked_file, facts, monkeypatch, onebox.operations, dest="/etc/x", content="x\n", check="true")
    assert out == [] and fake.noops == ["/etc/x is up to date"]


def test_checked_file_stages_then_checks(monkeypatch) -> None:
    out, _ = commands(checked_file, {File: None}, monkeypatch, onebox.operations,
                      dest="/etc/ssh/sshd_config.d/00-onebox.conf", content="Port 22\n", check="sshd -t")
    staging, upload, script = out
    assert staging == "install -d -m 700 /var/lib/onebox/staging /var/lib/onebox/previous"
    assert isinstance(upload, FileUploadCommand)
    assert upload.dest == "/var/lib/onebox/staging/etc__ssh__sshd_config.d__00-onebox.conf"
    assert isinstance(upload.src, BytesIO) and upload.src.getvalue() == b"Port 22\n"
    assert "if ! (sshd -t) >&2; then" in script


def run_install(tmp_path: Path, check: str) -> subprocess.CompletedProcess:
    dest, staged, backup = tmp_path / "app.conf", tmp_path / "app.conf.new", tmp_path / "backup"
    staged.write_text("new\n")
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    script = install_checked_script(str(staged), str(dest), str(backup), check, "640", user, group)
    return subprocess.run(["sh", "-c", script.replace("/var/lib/onebox/previous", str(tmp_path))],
                          capture_output=True, text=True, check=False)


def test_a_rejected_file_is_rolled_back_and_reported(tmp_path) -> None:
    (tmp_path / "app.conf").write_text("old\n")
    result = run_install(tmp_path, f"grep -q old {tmp_path}/app.conf")
    assert result.returncode == 1
    assert f"rejected the new {tmp_path}/app.conf; the previous version was kept" in result.stderr
    assert (tmp_path / "app.conf").read_text() == "old\n"


def test_an_accepted_file_replaces_the_old_one(tmp_path) -> None:
    (tmp_path / "app.conf").write_text("old\n")
    result = run_install(tmp_path, f"grep -q new {tmp_path}/app.conf")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "app.conf").read_text() == "new\n"
    assert oct((tmp_path / "app.conf").stat().st_mode)[-3:] == "640"
    assert not (tmp_path / "backup").exists()


def test_generated_secrets_only_creates_the_missing_ones(monkeypatch) -> None:
    out, _ = commands(generated_secrets, {EnvFileKeys: ["POSTGRES_PASSWORD"]}, monkeypatch, onebox.operations,
                      path="/opt/onebox/generated.env", names=["POSTGRES_PASSWORD", "APP_SECRET_KEY"])
    assert len(out) == 1
    assert "APP_SECRET_KEY" in out[0] and "POSTGRES_PASSWORD" not in out[0]
    assert out[0].startswith("umask 077") and "/dev/urandom" in out[0]


def test_generated_secrets_never_regenerates(monkeypatch) -> None:
    out, fake = commands(generated_secrets, {EnvFileKeys: ["A", "B"]}, monkeypatch, onebox.operations,
                         path="/x.env", names=["A", "B"])
    assert out == [] and fake.noops


def test_rollout_runs_nothing_when_the_stamp_matches(monkeypatch) -> None:
    desired = inputs_hash("compose", "env")
    out, fake = commands(compose_rollout, {FileText: desired}, monkeypatch, onebox.rollout,
                         project_dir="/opt/onebox", desired=desired, image_step="docker compose build -q api")
    assert out == [] and fake.noops


def test_rollout_orders_dependencies_migration_then_api(monkeypatch) -> None:
    out, _ = commands(compose_rollout, {FileText: "old"}, monkeypatch, onebox.rollout,
                      project_dir="/opt/onebox", desired="new", image_step="docker compose build -q api")
    script = out[0].splitlines()
    steps = [next(i for i, line in enumerate(script) if line.strip().endswith(marker)) for marker in (
        "up -d --wait --wait-timeout 180 --remove-orphans postgres redis",
        "docker compose build -q api",
        "exit 1; }",
        "docker compose up -d --wait --wait-timeout 180 --remove-orphans >&2; then",
        "echo new > .deployed",
    )]
    assert steps == sorted(steps)
    assert MIGRATION_FAILED in out[0]


def test_inputs_hash_separates_parts() -> None:
    assert inputs_hash("ab", "c") != inputs_hash("a", "bc")


def test_registry_pull_logs_in_only_with_credentials(monkeypatch) -> None:
    from test_settings import valid

    import deploys.app
    from onebox.settings import validate_settings

    uploads = []
    monkeypatch.setattr(deploys.app, "checked_file", lambda **kwargs: uploads.append(kwargs))
    public = validate_settings(valid(app_image_source="registry", registry_server="ghcr.io"))
    assert deploys.app.registry_image_step(public) == "docker compose pull api"
    monkeypatch.setenv("ONEBOX_REGISTRY_PASSWORD", "r" * 20)
    private = validate_settings(valid(app_image_source="registry", registry_server="ghcr.io", registry_username="bot"))
    step = deploys.app.registry_image_step(private)
    assert step == ("docker login ghcr.io -u bot --password-stdin < /root/.onebox-registry-password >&2"
                    " && docker compose pull api")
    assert uploads[0]["dest"] == "/root/.onebox-registry-password" and uploads[0]["mode"] == "600"
    assert "r" * 20 not in step
