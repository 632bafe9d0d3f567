"""The `onebox` command line against the e2e target, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from testbed.deploy import ROOT


def onebox(deployed, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`onebox SUBCOMMAND inventories/local.py ARGS...`: the first argument is the subcommand
    ("backup now"), the inventory follows it; `env` adds settings (extra groups, overrides)."""
    command = [sys.executable, "-m", "onebox.cli", *args[0].split(), "inventories/local.py", *args[1:]]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "ONEBOX_TARGET_INDEX": str(deployed.target.index), **(env or {})})


def status_once_alerts_settle(deployed, timeout: float = 40, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`onebox status` once it exits 0, or its last answer after `timeout`. An alert about a cause
    just fixed stays firing until Prometheus next scrapes and evaluates: two intervals (5 s here)."""
    deadline = time.monotonic() + timeout
    while (status := onebox(deployed, "status", env=env)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(3)
    return status
