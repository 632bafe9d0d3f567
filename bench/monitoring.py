"""Benchmark: what monitoring costs on an idle server.

    .venv/bin/python bench/monitoring.py [SECONDS]

Converges its own target (index 5) with the default settings (monitoring on, a 30 s scrape),
lets it settle, then prints for Prometheus, Alertmanager, the node, blackbox, PostgreSQL, Redis
and nginx exporters and onebox's collector: memory (PSS, from /proc) and CPU (percent of one core over SECONDS,
default 120), and the size of Prometheus's samples on disk.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onebox.contract import EXPORTER_TARGETS_DIR as TARGETS  # noqa: E402
from testbed.deploy import run_deploy  # noqa: E402
from testbed.stack import bring_up  # noqa: E402
from testbed.target import Target, down  # noqa: E402

TARGET = Target(index=5)
PROCESSES = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager",
             "node exporter": "prometheus-node-exporter", "blackbox exporter": "prometheus-blackbox-exporter",
             "postgres exporter": "prometheus-postgres-exporter", "redis exporter": "prometheus-redis-exporter",
             "nginx exporter": "prometheus-nginx-exporter"}
SETTLE_SECONDS = 60
# Per process name: PSS in KiB, CPU ticks (utime + stime) so far.
SNAPSHOT = """for name in {names}; do
  pid=$(pgrep -xo "$name" || pgrep -o -f "/usr/bin/$name")
  pss=$(awk '/^Pss:/ {{print $2}}' /proc/$pid/smaps_rollup)
  ticks=$(awk '{{print $14 + $15}}' /proc/$pid/stat)
  echo "$name $pss $ticks"
done"""


def snapshot() -> dict[str, tuple[int, int]]:
    script = SNAPSHOT.format(names=" ".join(name[:15] for name in PROCESSES.values()))
    values = {}
    for line in TARGET.ssh(script).stdout.splitlines():
        name, pss, ticks = line.split()
        values[name] = (int(pss), int(ticks))
    return values


def collector_cpu_seconds() -> float:
    """CPU seconds (user + system) of one run of onebox's collector, as the timer runs it."""
    run = f"onebox-release metrics --textfile /tmp/bench.prom --targets {TARGETS} >/dev/null"
    out = TARGET.ssh("TIMEFORMAT='%U %S'; { time " + run + "; } 2>&1")
    user, system = out.stdout.split()[-2:]
    return float(user) + float(system)


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    bring_up(TARGET, fresh=True)
    try:
        result = run_deploy(TARGET.index, {"ONEBOX_MONITORING_SCRAPE_INTERVAL": "30"})
        if result.returncode:
            sys.exit(result.output[-3000:])
        time.sleep(SETTLE_SECONDS)
        hz = int(TARGET.ssh("getconf CLK_TCK").stdout.strip())
        before = snapshot()
        time.sleep(seconds)
        after, collector_run = snapshot(), collector_cpu_seconds()
        print(f"monitoring on the idle target, 30 s scrape, CPU over {seconds} s (percent of one core):")
        total_mib = 0.0
        for label, name in PROCESSES.items():
            pss, ticks = after[name[:15]]
            cpu = 100 * (ticks - before[name[:15]][1]) / hz / seconds
            total_mib += pss / 1024
            print(f"  {label:<18} {pss / 1024:6.1f} MiB  {cpu:5.2f} % CPU")
        print(f"  {'onebox collector':<18} {'-':>6}      {100 * collector_run / 30:5.2f} % CPU "
              f"({collector_run:.2f} s per run, one run per 30 s)")
        print(f"  total              {total_mib:6.1f} MiB")
        print(f"  samples on disk    {TARGET.ssh('du -sh /var/lib/prometheus/metrics2').stdout.split()[0]}")
    finally:
        down(TARGET)


if __name__ == "__main__":
    main()
