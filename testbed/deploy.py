"""Run `pyinfra inventories/local.py deploys/site.py` against a local target and read
its results: the e2e tests and the benchmarks use the same command a user types."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
GRAND_TOTAL = re.compile(r"Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)")


@dataclass
class DeployResult:
    returncode: int
    output: str
    seconds: float
    operations: int
    changed: int
    errors: int


def _count(field: str) -> int:
    return 0 if field == "-" else int(field)


def run_deploy(target_index: int, env: dict[str, str] | None = None, deploy: str = "deploys/site.py",
               flags: list[str] | None = None, confirm: bool = False,
               inventory: str = "inventories/local.py", pyinfra: str = PYINFRA, cwd: Path = ROOT) -> DeployResult:
    """`confirm`: run without -y and press enter at pyinfra's prompt, as a user would (changes are detected first).
    `inventory`: inventories/local_cluster.py makes target `target_index` a swarm manager.
    `pyinfra` and `cwd`: another onebox's (an installed one, run from its deploy directory; an earlier version)."""
    full_env = {**os.environ, "ONEBOX_TARGET_INDEX": str(target_index), **(env or {})}
    started = time.monotonic()
    proc = subprocess.run(
        [pyinfra, *([] if confirm else ["-y"]), *(flags or []), inventory, deploy],
        cwd=cwd, env=full_env, capture_output=True, text=True, check=False, input="\n" if confirm else None,
    )
    seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    totals = GRAND_TOTAL.search(output)
    operations, changed, errors = (
        (int(totals[1]), _count(totals[2]), _count(totals[3])) if totals else (0, 0, 0)
    )
    return DeployResult(proc.returncode, output, seconds, operations, changed, errors)


def changed_operations(output: str) -> list[str]:
    """Names of the operations that changed something, from pyinfra's results table."""
    names = []
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 5 and cells[0] not in ("Operation", "Grand total") and cells[2] != "-":
            names.append(cells[0])
    return names
