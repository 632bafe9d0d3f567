"""The host checks run only against a server (e2e and `onebox check`): a renamed import in one of
them would surface there, late, as a collection error on every server. Collect them here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_host_check_module_imports_and_is_collected() -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/host"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-2000:]
    modules = {line.split("::")[0] for line in collected.stdout.splitlines() if "::" in line}
    assert modules == {str(p.relative_to(ROOT)) for p in (ROOT / "tests/host").glob("test_*.py")}
