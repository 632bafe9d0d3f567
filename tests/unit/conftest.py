"""Unit tests see only the settings they pass: no ONEBOX_* variable of the shell leaks in."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_onebox_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ONEBOX_"):
            monkeypatch.delenv(name)
