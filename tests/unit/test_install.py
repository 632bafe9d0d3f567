"""The installed tool: what the wheel holds, what `onebox init` writes, which onebox may drive a server."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from onebox import __version__, cli, scaffold
from onebox.inventory import group_data
from onebox.kit import DEFAULTS, TEMPLATES, deploy_file
from onebox.settings import Settings, validate_settings
from onebox.versions import older_refusal
from tests.unit.conftest import ROOT
from tests.unit.test_settings import valid


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True)
    return zipfile.ZipFile(next(out.glob("onebox-*.whl")))


def test_the_wheel_holds_what_a_deploy_needs_and_no_test_bench(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    templates = {f"onebox/templates/{path.relative_to(TEMPLATES).as_posix()}" for path in TEMPLATES.rglob("*")
                 if path.is_file()}
    assert templates and templates <= names
    assert {"onebox/defaults.py", "onebox/server/with-secrets.sh", "onebox/deploys/site.py",
            "onebox/deploys/rollback.py"} <= names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"onebox", f"onebox-{__version__}.dist-info"}, tops  # no testbed/, deploys/, tests/
    assert not any("/local/" in name for name in names)


def test_the_product_imports_nothing_of_the_test_bench() -> None:
    for path in (ROOT / "onebox").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(m.split(".")[0] in ("testbed", "tests") for m in modules), path


def test_onebox_version_is_the_package_s(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"onebox {__version__}"


def test_init_writes_a_deploy_directory_whose_settings_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "app"
    (app / "deploy").mkdir(parents=True)
    (app / "Dockerfile").write_text("FROM scratch\n")
    assert cli.main(["init", str(app / "deploy")]) == 0
    written = {path.relative_to(app / "deploy").as_posix() for path in (app / "deploy").rglob("*") if path.is_file()}
    assert written == set(scaffold.files())
    assert (app / "deploy" / "secrets").stat().st_mode & 0o077 == 0
    monkeypatch.chdir(app / "deploy")  # app_source_dir ".." is relative to where pyinfra runs
    data = group_data("prod", app / "deploy")
    assert data["domains"] == ["api.example.com"] and data["hostname"] == "onebox"  # the user's, then the defaults
    Settings.model_validate(data)


def test_the_variables_the_scaffolded_inventory_reads_are_not_taken_for_settings(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    names = set(re.findall(r"ONEBOX_[A-Z_]+", scaffold.INVENTORY)) | {"ONEBOX_ALLOW_OLDER", "ONEBOX_DIR"}
    assert "ONEBOX_SSH_KNOWN_HOSTS" in names
    for name in names:
        monkeypatch.setenv(name, "x")
    validate_settings(valid())  # an unknown ONEBOX_* name would be refused as a misspelt setting


def test_init_refuses_to_overwrite_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "prod.py").write_text("domains = ['mine.example.com']\n")
    assert cli.main(["init", str(tmp_path)]) == cli.EXIT_USAGE
    assert "group_data/prod.py" in capsys.readouterr().err
    assert (tmp_path / "group_data" / "prod.py").read_text() == "domains = ['mine.example.com']\n"
    assert not (tmp_path / "inventories").exists()  # nothing written


def test_the_commented_settings_are_the_defaults_verbatim() -> None:
    shown = scaffold.commented_defaults()
    source = DEFAULTS.read_text()
    assignments = {node.targets[0].id: ast.get_source_segment(source, node) for node in ast.parse(source).body
                   if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    for name in scaffold.COMMON:
        commented = "\n".join(f"# {line}" for line in (assignments[name] or "").splitlines())
        assert f"\n{commented}\n" in shown, name


def test_this_repository_is_a_deploy_directory_as_init_writes_one() -> None:
    for relative, content in scaffold.files().items():
        if relative.startswith(("deploys/", "inventories/")):
            assert (ROOT / relative).read_text() == content, relative
    for name in scaffold.DEPLOY_FILES:
        assert deploy_file(name).is_file()


def test_a_user_group_data_all_py_layers_between_the_defaults_and_the_group(tmp_path: Path) -> None:
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "all.py").write_text('timezone = "Europe/Paris"\nhostname = "shared"\n')
    (tmp_path / "group_data" / "prod.py").write_text('hostname = "prod1"\n')
    data = group_data("prod", tmp_path)
    assert (data["timezone"], data["hostname"], data["sshd_port"]) == ("Europe/Paris", "prod1", 22)


@pytest.mark.parametrize(("on_server", "running", "allowed", "refused"), [
    (None, "0.2.0", False, False),  # a new server, or one 0.1.0 converged (it recorded nothing)
    ("0.2.0", "0.2.0", False, False),
    ("0.1.9", "0.2.0", False, False),  # an upgrade
    ("0.10.0", "0.9.0", False, True),  # compared as versions, not as text
    ("1.0.0rc1", "0.9.0", False, True),
    ("0.3.0", "0.2.0", True, False),  # ONEBOX_ALLOW_OLDER=1
    ("garbage", "0.2.0", False, True),
])
def test_an_older_onebox_refuses_a_server_a_newer_one_converged(on_server: str | None, running: str, allowed: bool,
                                                               refused: bool) -> None:
    message = older_refusal(on_server, running, allowed)
    assert (message is not None) == refused
    if message:
        assert on_server in message and running in message and "ONEBOX_ALLOW_OLDER=1" in message
        assert "nothing was changed" in message


def test_the_override_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert older_refusal("9.0.0", "0.2.0") is not None
    monkeypatch.setenv("ONEBOX_ALLOW_OLDER", "1")
    assert older_refusal("9.0.0", "0.2.0") is None
