"""The host checks run only against a server (e2e and `onebox check`): a renamed import in one of
them would surface there, late, as a collection error on every server. Import each one here."""

import importlib.util
from pathlib import Path

import pytest

HOST_CHECKS = sorted((Path(__file__).resolve().parents[1] / "host").glob("*.py"))


def test_the_host_checks_are_found() -> None:
    assert {"conftest.py", "test_backup.py", "test_app.py"} <= {path.name for path in HOST_CHECKS}


@pytest.mark.parametrize("path", HOST_CHECKS, ids=lambda path: path.name)
def test_each_host_check_module_imports(path: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"host_checks_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
