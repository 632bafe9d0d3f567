"""Benchmark: fresh target to converged, then a no-op re-run (with the app role), then
a release under load.

    .venv/bin/python bench/converge.py

Prints seconds and changed-operation counts, the API image size, the time from a
code-only change to the new version live, and for a release under load through
nginx+TLS: failed requests (goal 0), the time from "new version healthy" to "old
version stopped", and p99 latency during the release vs steady state. Uses its own
target (index 3).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onebox.facts import AIDE_INIT_UNIT  # noqa: E402
from onebox.inventory import settings_for_group  # noqa: E402
from onebox.settings import Settings  # noqa: E402
from onebox.verify.load import Load  # noqa: E402
from testbed import pebble  # noqa: E402
from testbed.deploy import run_deploy  # noqa: E402
from testbed.stack import bring_up  # noqa: E402
from testbed.target import Target, down  # noqa: E402

TARGET = Target(index=3)


def main() -> None:
    bring_up(TARGET, fresh=True)
    first = run_deploy(TARGET.index)
    if first.returncode:
        sys.exit(first.output[-3000:])
    aide_wait = wait_for_the_aide_baseline()
    run_deploy(TARGET.index)  # records the facts the deploy asks for (onebox/fact_batch.py)
    noop = run_deploy(TARGET.index)
    traced = run_deploy(TARGET.index, flags=["--debug"])
    round_trips = traced.output.count("Getting fact:") + traced.output.count("onebox fact batch:")
    with tempfile.TemporaryDirectory() as tmp:
        code_change = run_deploy(TARGET.index, {"ONEBOX_APP_SOURCE_DIR": str(app_version(Path(tmp), "bench-1"))})
        under_load = release_under_load(settings_for_group("local"), app_version(Path(tmp), "bench-2"), Path(tmp))
    size = TARGET.ssh("docker image inspect -f '{{.Size}}' $(docker inspect -f '{{.Image}}' "
                      "$(docker ps -q --filter label=com.docker.compose.service=api))").stdout.strip()
    print(f"fresh target to converged:        {first.seconds:6.1f} s  ({first.changed} changed operations)")
    print(f"AIDE's first baseline (background, idle priority) ran {aide_wait:.0f} s more; measured after it")
    print(f"no-op re-run:                     {noop.seconds:6.1f} s  ({noop.changed} changed operations, goal 0 in < 5 s)")
    print(f"fact round trips of a no-op run:  {round_trips:6d}")
    print(f"code-only change to new API healthy: {code_change.seconds:6.1f} s  ({code_change.changed} changed)")
    print(f"API image size:                   {int(size or 0) / 1e6:6.1f} MB")
    print(under_load)
    down(TARGET)


def wait_for_the_aide_baseline(limit: float = 900) -> float:
    """A fresh server records its AIDE database in the background for a few minutes, on the
    same 2 cores as this machine: the figures below are for a server past that."""
    started = time.monotonic()
    while time.monotonic() - started < limit and TARGET.ssh(f"systemctl is-active -q {AIDE_INIT_UNIT}").returncode == 0:
        time.sleep(5)
    return time.monotonic() - started


def app_version(tmp: Path, version: str) -> Path:
    source = tmp / version
    shutil.copytree("examples/app", source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (source / "app" / "version.py").write_text(f'VERSION = "{version}"\n')
    return source


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[int(len(ordered) * 0.99)] * 1000 if ordered else float("nan")


def release_under_load(s: Settings, source: Path, tmp: Path) -> str:
    root = tmp / "pebble-root.pem"
    root.write_text(pebble.issuing_root_pem())
    with Load(TARGET.ip, s.domains[0], root, health_path=s.app_health_path) as steady:
        time.sleep(5)
    with Load(TARGET.ip, s.domains[0], root, health_path=s.app_health_path, write_path="/items") as load:
        result = run_deploy(TARGET.index, {"ONEBOX_APP_SOURCE_DIR": str(source)})
    log = TARGET.ssh(f"cat {s.app_dir}/release.log").stdout
    drained = re.findall(r"the previous version stopped ([0-9.]+) s after the new one was healthy", log)
    return "\n".join([
        f"release under load (exit {result.returncode}, {result.seconds:.1f} s):",
        f"  requests {load.report.requests}, failed {len(load.report.failures)} (goal 0) {load.report.failures[:3]}",
        f"  GETs retried once on a keep-alive connection the server closed: {len(load.report.retried)}",
        f"  failed for a client that never retries (wrk's kind): "
        f"{len(load.report.failures) + len(load.report.retried)} of {load.report.requests}",
        f"  new version healthy -> old version stopped: {drained[-1] if drained else '?'} s",
        f"  p99 latency: steady {p99(steady.report.latencies):.1f} ms, during the release {p99(load.report.latencies):.1f} ms",
    ])


if __name__ == "__main__":
    main()
