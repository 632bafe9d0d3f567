"""The server's tools ship as one zipapp that needs nothing but Python's standard library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from onebox.server.bundle import sources, write_zipapp, zipapp_bytes


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
