"""onebox's operations, pyinfra style: feed facts in, assert the exact commands out.

The pyinfra `host` an operation reads is replaced by a recorder holding the facts;
the commands are the real ones the operation yields. Those commands then run for
real in a shell where that is safe (checked_file against a temp dir).
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.facts.files import File, Sha1File

import onebox.operations
import onebox.rollout
from onebox.contract import NOT_INSTALLED, LiveRelease, ReleaseTransition, StateReport
from onebox.facts import PrivateFileFingerprint, ReleaseState
from onebox.operations import checked_file, fingerprint, install_checked_script, private_file
from onebox.rollout import reasons_to_release, release


class FakeHost:
    name = "fake-host"
    current_op_global_arguments: dict = {}

    def get_temp_filename(self, key: str, temp_directory: str | None = None) -> str:
        return f"{temp_directory or '/tmp'}/pyinfra-{key.strip('/').replace('/', '_')}"

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
    assert str(staging) == "install -d -m 700 /var/lib/onebox/staging /var/lib/onebox/previous"
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


LIVE = LiveRelease(id="r1", inputs="abc", created="2026-12-06T06:36:32Z")
INTERRUPTED = ReleaseTransition(release="r2", slot="green", phase="switching", since="2026-12-06T06:40:00Z")


def test_release_runs_nothing_when_the_live_release_matches_and_runs(monkeypatch) -> None:
    state = StateReport(installed=True, live=LIVE, deps_inputs="d")
    out, fake = commands(release, {ReleaseState: state}, monkeypatch, onebox.rollout,
                         app_dir="/opt/onebox", desired_inputs="abc", desired_deps="d", changed_inputs={"source": False})
    assert out == [] and fake.noops == ["release r1 is live, running and healthy"]


@pytest.mark.parametrize(("state", "changed", "reason"), [
    (NOT_INSTALLED, {}, "nothing is live yet"),
    (StateReport(installed=True, live=dataclasses.replace(LIVE, inputs="old"), deps_inputs="d"), {},
     "the app's settings or image changed"),
    (StateReport(installed=True, live=LIVE, deps_inputs="d"), {"source": True}, "source changed"),
    (StateReport(installed=True, live=LIVE, deps_inputs="d", problems=["api is exited"]), {}, "api is exited"),
    (StateReport(installed=True, live=LIVE, deps_inputs="d", secrets_changed=True), {}, "secrets changed"),
    (StateReport(installed=True, live=LIVE, deps_inputs="old"), {}, "the dependencies' compose file changed"),
    (StateReport(installed=True, live=LIVE, deps_inputs="d", transition=INTERRUPTED), {}, "release r2 was interrupted"),
])
def test_release_says_why_it_runs(state: StateReport, changed: dict, reason: str) -> None:
    assert reason in reasons_to_release(state, "abc", "d", changed)


def test_release_runs_the_server_tool(monkeypatch) -> None:
    out, _ = commands(release, {ReleaseState: NOT_INSTALLED}, monkeypatch, onebox.rollout,
                      app_dir="/opt/my-app", desired_inputs="abc", desired_deps="d")
    assert [str(command) for command in out] == ["/usr/local/sbin/onebox-release --app-dir /opt/my-app apply"]


def test_private_file_streams_the_content_and_never_shows_it(monkeypatch) -> None:
    secret = "s3cr3t-value-of-some-length"
    out, _ = commands(private_file, {PrivateFileFingerprint: None}, monkeypatch, onebox.operations,
                      dest="/opt/onebox/secrets/supplied.json", content=secret)
    (command,) = out
    shown = str(command)
    assert secret not in shown and hashlib.sha256(secret.encode()).hexdigest() not in shown
    assert "umask 077" in shown and command.connector_arguments["_stdin"] == secret


def test_private_file_is_a_noop_when_the_salted_fingerprint_matches(monkeypatch) -> None:
    salt = "00" * 16
    stored = f"{salt}:{fingerprint('value-1234567890', salt)}"
    out, fake = commands(private_file, {PrivateFileFingerprint: stored}, monkeypatch, onebox.operations,
                         dest="/x", content="value-1234567890")
    assert out == [] and fake.noops
    out, _ = commands(private_file, {PrivateFileFingerprint: stored}, monkeypatch, onebox.operations,
                      dest="/x", content="another-value-123")
    assert len(out) == 1

def test_the_server_tool_renders_placeholders_and_secret_references() -> None:
    from onebox.server import secret_files as tool

    env = tool.render({"DATABASE_URL": "postgresql://{postgres_user}:{postgres_password}@{postgres_host}/{postgres_db}",
                           "KEY": "{secret[SECRET_KEY]}"},
                          {"postgres_user": "app", "postgres_password": "pw", "postgres_host": "postgres",
                           "postgres_db": "app", "secret": {"SECRET_KEY": "k"}})
    assert env == {"DATABASE_URL": "postgresql://app:pw@postgres/app", "KEY": "k"}


def test_a_password_url_placeholder_is_percent_encoded() -> None:
    from onebox.server import secret_files as tool

    values = tool.secret_placeholders({"postgres_user": "app"}, {"postgres_password": "p@ss:w/rd%", "secret": {}})
    env = tool.render({"URL": "postgresql://{postgres_user}:{postgres_password_url}@db/app",
                           "RAW": "{postgres_password}"}, values)
    assert env == {"URL": "postgresql://app:p%40ss%3Aw%2Frd%25@db/app", "RAW": "p@ss:w/rd%"}
