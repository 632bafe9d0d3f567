"""What a release is made of: the build context as .dockerignore says, a spec without
secrets, the same inputs hash on both sides, readable logs."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from test_settings import valid

from onebox import contract, server_calls
from onebox.rollout import release_spec
from onebox.server import reports
from onebox.server.model import App
from onebox.settings import validate_settings
from onebox.source import source_tarball


def names(tarball: bytes) -> set[str]:
    import gzip

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tarball))) as tar:
        return set(tar.getnames())


def test_the_dockerignore_decides_what_is_uploaded(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text("")
    (tmp_path / ".env").write_text("SECRET=1\n")
    (tmp_path / ".dockerignore").write_text("tests/\n.env\n")
    assert names(source_tarball(tmp_path, "docker/Dockerfile")) == {"app.py", "docker/Dockerfile", ".dockerignore"}
    (tmp_path / ".dockerignore").unlink()  # without one: everything but caches (tests/ too, as docker would)
    assert {"tests/test_app.py", ".env"} <= names(source_tarball(tmp_path, "docker/Dockerfile"))


def test_the_tarball_is_reproducible_and_keeps_executables(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    script = tmp_path / "release.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    first = source_tarball(tmp_path)
    script.touch()
    assert source_tarball(tmp_path) == first
    import gzip

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first))) as tar:
        assert tar.getmember("release.sh").mode == 0o755


def test_the_spec_carries_no_secret(monkeypatch) -> None:
    monkeypatch.setenv("ONEBOX_POSTGRES_PASSWORD", "p" * 30)
    monkeypatch.setenv("ONEBOX_SECRET_APP_SECRET_KEY", "k" * 30)
    s = validate_settings(valid())
    spec = release_spec(s, {"source": "build", "ref": "onebox/api:abc"}, "app@abc")
    text = spec.to_json()
    assert "p" * 30 not in text and "k" * 30 not in text
    assert spec.release.secret_env == {"POSTGRES_PASSWORD": "{postgres_password}"}


def test_the_time_limits_reach_the_server_and_an_older_spec_reads_the_defaults() -> None:
    image = {"source": "build", "ref": "onebox/api:abc"}
    s = validate_settings(valid(build_timeout=60, pull_timeout=30, release_step_timeout=90))
    spec = contract.Spec.from_json(release_spec(s, image, "app@abc").to_json())
    assert (spec.build_timeout, spec.pull_timeout, spec.release_step_timeout) == (60, 30, 90)
    # At the defaults the new fields are left out: spec.json reads as an older onebox wrote it, and
    # a spec written before them (no such key) reads the same defaults.
    text = release_spec(validate_settings(valid()), image, "app@abc").to_json()
    assert not {"build_timeout", "pull_timeout", "release_step_timeout"} & set(json.loads(text))
    older = contract.Spec.from_json(text)
    assert (older.build_timeout, older.pull_timeout, older.release_step_timeout) == (1800, 600, 600)


def test_controller_and_server_hash_a_release_alike(tmp_path: Path) -> None:
    s = validate_settings(valid())
    spec = release_spec(s, {"source": "build", "ref": "onebox/api:abc"}, "app@abc")
    (tmp_path / "spec.json").write_text(spec.to_json())
    (tmp_path / "app.compose.yaml").write_text("services: {}\n")
    assert App(tmp_path).app_inputs == contract.inputs_hash(spec.release, b"services: {}\n")


def test_json_log_lines_are_made_readable() -> None:
    line = '\x1b[2K{"ts": "2026-11-23T08:05:03Z", "level": "info", "msg": "started", "release": "r1"}'
    assert reports.readable(line) == "2026-11-23T08:05:03Z INFO    started release=r1"
    assert reports.readable("plain text") == "plain text"


def test_log_lines_never_reach_the_terminal_with_a_control_character() -> None:
    # JSON escapes decode to ESC, BEL, CR, LF: a request path that clears the screen, writes the clipboard (OSC 52).
    line = ('{"ts": "t", "level": "info", "msg": "GET /\\u001b[2J\\u001b]52;c;cm0gLXJmIH4=\\u0007", '
            '"path\\u009b": "a\\rb\\nc\\td", "n": 1}')
    text = reports.readable(line)
    assert text == "t INFO    GET /\\x1b[2J\\x1b]52;c;cm0gLXJmIH4=\\x07 path\\x9b=a\\x0db\\x0ac\td n=1"
    assert reports.readable("not json \x1b]52;c;eA==\x07 \x9b2J") == "not json \\x1b]52;c;eA==\\x07 \\x9b2J"
    assert reports.readable('"a JSON string \\u001b[2J"') == '"a JSON string \\u001b[2J"'  # not decoded: harmless


def test_the_release_state_of_an_older_tool_reads_as_not_installed() -> None:
    from onebox.facts import ReleaseState

    fact = ReleaseState()
    assert fact.process(["onebox-release: the server's side...", "usage: ...", '{"installed": false}']) == \
        contract.NOT_INSTALLED
    assert fact.process(["garbage"]) == contract.NOT_INSTALLED
    assert fact.process(['{"installed": true, "live": null}']) == contract.StateReport(installed=True)
    assert "--app-dir '/opt/my app' state" in server_calls.as_shell(fact.command("/opt/my app"))
