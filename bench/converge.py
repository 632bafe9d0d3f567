"""Benchmark: fresh target to converged, then a no-op re-run (with the app role).

    .venv/bin/python bench/converge.py

Prints seconds and changed-operation counts, plus the API image size and the time
from a code-only change to the new version healthy. Uses its own target (index 3).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onebox.local.deploy import run_deploy  # noqa: E402
from onebox.local.stack import bring_up  # noqa: E402
from onebox.local.target import Target, down  # noqa: E402

TARGET = Target(index=3)


def main() -> None:
    bring_up(TARGET, fresh=True)
    first = run_deploy(TARGET.index)
    if first.returncode:
        sys.exit(first.output[-3000:])
    noop = run_deploy(TARGET.index)
    with tempfile.TemporaryDirectory() as tmp:
        changed_app = Path(tmp) / "app"
        shutil.copytree("examples/app", changed_app, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        (changed_app / "app" / "version.py").write_text('VERSION = "bench"\n')
        code_change = run_deploy(TARGET.index, {"ONEBOX_APP_SOURCE_DIR": str(changed_app)})
    size = TARGET.ssh("docker image inspect -f '{{.Size}}' $(docker inspect -f '{{.Image}}' onebox-api-1)").stdout.strip()
    print(f"fresh target to converged:        {first.seconds:6.1f} s  ({first.changed} changed operations)")
    print(f"no-op re-run:                     {noop.seconds:6.1f} s  ({noop.changed} changed operations, goal 0 in < 10 s)")
    print(f"code-only change to new API healthy: {code_change.seconds:6.1f} s  ({code_change.changed} changed)")
    print(f"API image size:                   {int(size or 0) / 1e6:6.1f} MB")
    down(TARGET)


if __name__ == "__main__":
    main()
