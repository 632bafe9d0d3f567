"""Benchmark: what the platform costs in memory on an idle server, by component.

    .venv/bin/python bench/footprint.py [--memory 1g|none] [--keep] [--again]

Converges its own target (index 5) with the default settings (the example app, monitoring on),
lets it settle, then prints the PSS (proportional set size, from /proc/PID/smaps_rollup) of every
process on the target grouped by component: the platform (everything outside the app's
containers: Docker, monitoring, nginx, the base system) and the app's containers, with totals.
PSS shares each shared page among the processes that map it, so the rows add up to the whole.
The rest of a row beside its anonymous part is program files the kernel may drop under memory
pressure and read again: a daemon restarted a minute ago shows more of it than one the kernel has
already trimmed, so two runs differ by tens of MiB there.
`--memory` sets the target's limit (1 GB without swap unless told, like a small VPS); `--keep` leaves the target up afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.deploy import run_deploy  # noqa: E402
from testbed.stack import bring_up  # noqa: E402
from testbed.target import Target, down, oom_kills  # noqa: E402

SETTLE_SECONDS = 90
PLATFORM_GOAL_MIB = 350
# One line per process: PID, parent PID, PSS and its anonymous part in KiB, name (kernel threads
# have no PSS and are left out).
SNAPSHOT = r"""for d in /proc/[0-9]*; do
  pss=$(awk '/^Pss:/ {p=$2} /^Pss_Anon:/ {a=$2} END {if (p != "") print p, a}' $d/smaps_rollup 2>/dev/null)
  [ -n "$pss" ] || continue
  printf '%s %s %s %s\n' "${d#/proc/}" "$(awk '{print $4}' $d/stat)" "$pss" "$(tr ' ' _ < $d/comm)"
done"""
SHIM = "containerd-shim"  # a container's processes descend from its shim (cgroup paths differ by version)
# Process names (/proc/PID/comm, at most 15 characters) grouped into the components the README names.
COMPONENTS = {
    "dockerd": "Docker: dockerd", "docker-proxy": "Docker: dockerd",
    "containerd": "Docker: containerd", "containerd-shim": "Docker: containerd shims",
    "prometheus": "Prometheus", "prometheus-aler": "Alertmanager",
    "prometheus-node": "exporters", "prometheus-blac": "exporters", "prometheus-post": "exporters",
    "prometheus-redi": "exporters", "prometheus-ngin": "exporters",
    "nginx": "nginx", "unattended-upgr": "unattended-upgrades", "fail2ban-server": "fail2ban",
    "systemd-journal": "journald", "sshd": "sshd", "sshd-session": "sshd",
    "chronyd": "time sync", "systemd-timesyn": "time sync",
}


def component(name: str) -> str:
    return COMPONENTS.get(name, "base system (systemd, dbus, cron, ...)")


Usage = tuple[int, int]  # KiB: PSS, and its anonymous part (what the kernel cannot drop and read again)


def snapshot(target: Target) -> tuple[dict[str, Usage], dict[str, Usage]]:
    """PSS per platform component and per app container process name."""
    processes = {}
    for line in target.ssh(SNAPSHOT).stdout.splitlines():
        pid, ppid, pss, anon, name = line.split(" ", 4)
        processes[pid] = (ppid, (int(pss), int(anon)), name)

    def in_container(pid: str) -> bool:
        parent = processes.get(pid, ("0",))[0]
        while parent in processes:
            if processes[parent][2].startswith(SHIM):
                return True
            parent = processes[parent][0]
        return False

    platform: dict[str, Usage] = defaultdict(lambda: (0, 0))
    app: dict[str, Usage] = defaultdict(lambda: (0, 0))
    for pid, (_, (pss, anon), name) in processes.items():
        rows, key = (app, name) if in_container(pid) else (platform, component(name))
        rows[key] = (rows[key][0] + pss, rows[key][1] + anon)
    return platform, app


def print_table(title: str, rows: dict[str, Usage]) -> float:
    """Prints the rows, returns the PSS total in MiB."""
    total, total_anon = (sum(row[i] for row in rows.values()) / 1024 for i in (0, 1))
    print(f"{title}{'PSS':>{54 - len(title)}}  of it anonymous")
    for name, (pss, anon) in sorted(rows.items(), key=lambda row: -row[1][0]):
        print(f"  {name:<40} {pss / 1024:7.1f} MiB  {anon / 1024:7.1f} MiB")
    print(f"  {'total':<40} {total:7.1f} MiB  {total_anon:7.1f} MiB")
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", help="the target's memory limit (default 1g, like a small VPS; none: no limit)")
    parser.add_argument("--keep", action="store_true", help="leave the target up")
    parser.add_argument("--again", action="store_true",
                        help="converge the target a --keep run left with this onebox, then measure (before/after)")
    args = parser.parse_args()
    if args.memory:
        os.environ["ONEBOX_TARGET_MEMORY"] = args.memory  # what Target reads, as the demo and the tests do
    target = Target(index=5)
    bring_up(target, fresh=not args.again)
    try:
        result = run_deploy(target.index)
        if result.returncode:
            sys.exit(result.output[-3000:])
        time.sleep(SETTLE_SECONDS)
        platform, app = snapshot(target)
        limit = f", target limited to {target.memory}" if target.memory else ", no memory limit"
        print(f"memory (PSS) on the idle target, one app, monitoring on{limit}:")
        platform_total = print_table("platform (everything but the app's containers):", platform)
        app_total = print_table("the app's containers, by process:", app)
        print(f"in all {platform_total + app_total:.1f} MiB; platform goal at most {PLATFORM_GOAL_MIB} MiB: "
              f"{'met' if platform_total <= PLATFORM_GOAL_MIB else 'NOT met'}")
        print(f"processes killed by the OOM killer on the target: {oom_kills(target)}")
    finally:
        if not args.keep:
            down(target)


if __name__ == "__main__":
    main()
