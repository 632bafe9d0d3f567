"""Benchmark: what an extra app costs on one server.

    .venv/bin/python bench/apps.py

Converges its own target (index 4) with one app (examples/app), then with two
(group_data/local_apps.py: examples/app and examples/jobs, each with its own PostgreSQL
and Redis), and prints the memory each container uses once idle (docker stats), per app
and in total, and the server's memory in use. A small VPS has 1-2 GB: the figures say
how many apps fit. Memory is each container's PSS (proportional set size), read in /proc.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.deploy import run_deploy  # noqa: E402
from testbed.stack import bring_up  # noqa: E402
from testbed.target import Target, down  # noqa: E402

TARGET = Target(index=4)
SETTLE_SECONDS = 20  # after a converge: workers started, caches warm, nothing in flight
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def mib(text: str) -> float:
    """docker stats' "12.5MiB" as MiB."""
    for unit, factor in sorted(UNITS.items(), key=lambda item: -len(item[0])):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor / UNITS["MiB"]
    raise ValueError(text)


# Each container's proportional set size (PSS: shared pages split between the processes sharing
# them, so PostgreSQL's shared buffers count once). docker stats cannot say: the target's engine
# has no memory controller of its own.
PSS = """for name in $(docker ps --format '{{.Names}}'); do
  kib=0
  for pid in $(docker top "$name" -eo pid | tail -n +2); do
    kib=$((kib + $(awk '/^Pss:/ {print $2}' /proc/$pid/smaps_rollup 2>/dev/null || echo 0)))
  done
  echo "$name $kib"
done"""


def container_memory() -> dict[str, dict[str, float]]:
    """app (compose project without its slot) -> service -> MiB in use (PSS)."""
    usage: dict[str, dict[str, float]] = defaultdict(dict)
    for line in TARGET.ssh(PSS).stdout.splitlines():
        name, kib = line.split()
        project, service = name.rsplit("-", 2)[0], name.rsplit("-", 2)[1]
        app = project.removesuffix("-blue").removesuffix("-green")
        usage[app][service] = int(kib) / 1024
    return usage


def server_memory() -> float:
    """MiB the whole target uses (dockerd, nginx, the apps): docker stats of it, on this machine."""
    used = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", TARGET.name],
                          capture_output=True, text=True, check=True).stdout.split("/")[0].strip()
    return mib(used)


def measure(label: str, env: dict[str, str] | None) -> dict[str, dict[str, float]]:
    result = run_deploy(TARGET.index, env)
    if result.returncode:
        sys.exit(result.output[-3000:])
    time.sleep(SETTLE_SECONDS)
    usage = container_memory()
    print(f"\n{label}: server memory in use {server_memory():.0f} MiB")
    for app, services in sorted(usage.items()):
        parts = ", ".join(f"{service} {used:.0f}" for service, used in sorted(services.items()))
        print(f"  app {app:<8} {sum(services.values()):6.0f} MiB  ({parts})")
    print(f"  all apps     {sum(sum(s.values()) for s in usage.values()):6.0f} MiB")
    return usage


def main() -> None:
    bring_up(TARGET, fresh=True)
    try:
        one = measure("one app (examples/app)", None)
        two = measure("two apps (examples/app + examples/jobs)", {"ONEBOX_EXTRA_GROUPS": "local_apps"})
        extra = sum(sum(s.values()) for s in two.values()) - sum(sum(s.values()) for s in one.values())
        print(f"\nthe second app costs {extra:.0f} MiB of container memory (its API, worker, PostgreSQL and Redis)")
    finally:
        down(TARGET)


if __name__ == "__main__":
    main()
