"""Unit tests see only the settings they pass: no ONEBOX_* variable of the shell leaks in."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_onebox_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ONEBOX_"):
            monkeypatch.delenv(name)
    # Relative settings (app_source_dir) resolve against the checkout, as for pyinfra run from it.
    monkeypatch.chdir(ROOT)


@pytest.fixture
def write_secrets() -> Callable[..., Path]:
    """Write a secrets file (dotenv lines) with the given mode; onebox wants 0600."""

    def write(path: Path, *lines: str, mode: int = 0o600) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines))
        path.chmod(mode)
        return path

    return write
