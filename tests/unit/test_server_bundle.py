"""The server's tools ship as one zipapp that needs nothing but Python's standard library."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

from test_settings import valid

from onebox.rollout import release_spec
from onebox.server.basics import wait_until
from onebox.server.bundle import sources, write_zipapp, zipapp_bytes
from onebox.settings import validate_settings


def test_every_bundled_module_imports_only_the_standard_library_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "onebox"}
    for name, content in sources().items():
        tree = ast.parse(content)
        imported = {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        assert imported <= allowed, f"{name} imports {imported - allowed}"


def test_the_same_sources_make_the_same_bytes() -> None:
    """A converge uploads the tools only when their code changed."""
    assert zipapp_bytes() == zipapp_bytes()


def test_the_zipapp_runs_without_site_packages_and_dispatches_by_name(tmp_path: Path) -> None:
    app = write_zipapp(tmp_path / "onebox-server.pyz")
    isolated = [sys.executable, "-I", "-S", str(app)]
    release = subprocess.run([*isolated, "release", "--help"], capture_output=True, text=True, check=False)
    assert release.returncode == 0 and "maintenance" in release.stdout, release.stderr
    backup = subprocess.run([*isolated, "backup", "--help"], capture_output=True, text=True, check=False)
    assert backup.returncode == 0 and "restore" in backup.stdout, backup.stderr
    link = tmp_path / "onebox-release"
    link.symlink_to(app)
    by_name = subprocess.run([sys.executable, "-I", "-S", str(link), "releases", "--help"], capture_output=True,
                             text=True, check=False)
    assert by_name.returncode == 0, by_name.stderr
    unknown = subprocess.run([*isolated, "nonsense"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2


def test_a_spec_of_another_version_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text('{"version": 1, "app_name": "x"}')
    app = write_zipapp(tmp_path / "onebox-server.pyz")
    result = subprocess.run([sys.executable, "-I", "-S", str(app), "release", "--app-dir", str(tmp_path), "releases"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "spec.json has version 1, this onebox-release reads version 2" in result.stderr


def locked_run(tool: Path, app_dir: Path, *command: str, **popen: object) -> subprocess.Popen:
    """`onebox-release --app-dir DIR locked -- COMMAND...`, as deploys/restore.py runs it over SSH."""
    return subprocess.Popen([sys.executable, "-I", "-S", str(tool), "--app-dir", str(app_dir), "locked", "--", *command],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)  # type: ignore[call-overload]


def test_a_locked_command_runs_detached_under_the_deploy_lock_and_outlives_its_ssh_session(tmp_path: Path) -> None:
    """A restore (`locked`) runs like a release: its exit code and output reach the SSH session, a
    second run is refused while it holds the deploy lock, and a session that drops (SIGHUP to its
    process group, the pipe gone) does not stop it halfway, which would leave the app stopped."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    image = {"source": "build", "ref": "onebox/api:v1", "tarball": "src-1.tar.gz", "dockerfile": "Dockerfile",
             "target": None, "args": {}}
    spec = release_spec(validate_settings(valid(deploy_lock_timeout=0)), image, "app@v1")
    (app_dir / "spec.json").write_text(spec.to_json())
    tool = tmp_path / "onebox-release"  # the link the server has to the zipapp
    tool.symlink_to(write_zipapp(tmp_path / "onebox-server.pyz"))

    relayed = locked_run(tool, app_dir, "sh", "-c", "echo out; echo err >&2; echo lock held: $ONEBOX_DEPLOY_LOCK_HELD; exit 3")
    output, _ = relayed.communicate(timeout=60)
    assert relayed.returncode == 3 and output.splitlines() == ["out", "err", "lock held: 1"], output

    gate, done = tmp_path / "gate", tmp_path / "done"
    # At most 30 s, so that a failed test leaves no loop behind.
    script = f"echo started; i=0; while [ ! -e {gate} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; " \
             f"echo finished > {done}"
    session = locked_run(tool, app_dir, "sh", "-c", script, start_new_session=True)
    assert session.stdout is not None and session.stdout.readline() == "started\n"
    second = locked_run(tool, app_dir, "true")
    refused, _ = second.communicate(timeout=60)
    assert second.returncode == 1 and "holds the lock" in refused and "Run again when it has finished" in refused, refused

    os.killpg(session.pid, signal.SIGHUP)  # the SSH session drops: sshd hangs up its processes
    session.stdout.close()
    session.wait(timeout=10)
    gate.touch()
    assert wait_until(done.exists, 20, interval=0.05), "the detached command was stopped with its SSH session"
    assert done.read_text() == "finished\n"
    # It ends and lets go of the lock: the next run goes ahead.
    def next_run_goes_ahead() -> bool:
        run = locked_run(tool, app_dir, "true")
        run.communicate(timeout=60)
        return run.returncode == 0

    assert wait_until(next_run_goes_ahead, 20, interval=0.2)
