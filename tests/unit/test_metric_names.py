"""The metrics onebox's own code exports (onebox-release metrics and events, on the server) are
read by name in the alert rules, the console pages and `onebox dashboard`: each name read must
be one the server writes, so that renaming a metric on one side fails here, not in silence
(a rule on a missing series never fires)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "onebox"
READERS = ["templates/prometheus/onebox.rules.yml.j2", "templates/prometheus/consoles/onebox.html.j2",
           "consoles.py", "dashboard.py"]
# A metric, not a job prefix (onebox_app_<name>) or an HTML id: Prometheus's naming suffixes.
METRIC = re.compile(r"\bonebox_[a-z_]+_(?:seconds|total|ok|up|failing|required|pending)\b")


def written_by_the_server() -> set[str]:
    names = set()
    for path in (PACKAGE / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= set(METRIC.findall(node.value))
    return names


def test_every_metric_the_rules_consoles_and_dashboard_read_is_one_the_server_writes() -> None:
    written = written_by_the_server()
    assert len(written) >= 10  # the scan finds the server's names at all
    read = {name: reader for reader in READERS for name in METRIC.findall((PACKAGE / reader).read_text())}
    assert {name: reader for name, reader in read.items() if name not in written} == {}
    assert "onebox_backup_last_success_timestamp_seconds" in read  # the scan finds the readers' names at all
