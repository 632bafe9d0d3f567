"""Benchmark: requests per second through the manager's nginx+TLS with the API on 1, 2 and 3
swarm workers, the time of a code release on the cluster, and the latency before, during and
after a worker loses power (`docker kill` of its target: its address stops answering).

    .venv/bin/python bench/cluster.py [--path /health] [--connections 32] [--seconds 10]

Its own targets: the manager is target 3, the workers 4, 5 and 6 (fresh, taken down at the
end). The manager converges as the manager of one worker with the API
moved onto it (app_image_source "tarball"), then of two, then of three. wrk runs on the manager
against https://<domain><path>, so the figures include TLS and nginx's balancing.

Caveat printed with the figures: on one machine every target shares the same CPUs, so more API
nodes here add no CPU; the figures show what the fan-out costs, not what real servers gain.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy import HOSTS_MARK, wrk, wrk_arguments  # noqa: E402

from onebox.inventory import settings_for_group  # noqa: E402
from testbed.deploy import run_deploy  # noqa: E402
from testbed.stack import bring_up  # noqa: E402
from testbed.target import Target, down, up  # noqa: E402

MANAGER = Target(3)
WORKERS = [Target(4), Target(5), Target(6)]
CLUSTER = {"ONEBOX_EXTRA_GROUPS": "local_cluster", "ONEBOX_TEST_API_ON_WORKERS": "1"}


def converge(workers: list[Target], source: str) -> float:
    env = {**CLUSTER, "ONEBOX_APP_SOURCE_DIR": source,
           "ONEBOX_WORKER_INDEXES": ",".join(str(worker.index) for worker in workers)}
    result = run_deploy(MANAGER.index, env, inventory="inventories/local_cluster.py")
    if result.returncode != 0:
        sys.exit(f"onebox bench: the cluster converge with {len(workers)} worker(s) failed:\n{result.output[-3000:]}")
    return result.seconds


def app_version(directory: Path, version: str) -> str:
    """A copy of examples/app reporting `version`: a code release when it changes."""
    source = directory / f"app-{version}"
    shutil.copytree("examples/app", source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (source / "app" / "version.py").write_text(f'VERSION = "{version}"\n')
    return str(source)


def node_loss(worker: Target, url: str, connections: int) -> dict[str, dict[str, float]]:
    """wrk through nginx before a worker's loss, in the 15 s after it, 15 to 30 s after it, and once
    it is back (started again, its replica serving)."""
    phases = {"before the loss": wrk(url, connections, 10)}
    subprocess.run(["docker", "kill", worker.name], check=True, capture_output=True)  # power lost: no FIN, no RST
    phases["0-15 s after it"] = wrk(url, connections, 15)
    phases["15-30 s after it"] = wrk(url, connections, 15)
    subprocess.run(["docker", "start", worker.name], check=True, capture_output=True)
    deadline = time.monotonic() + 300
    while MANAGER.ssh("docker node ls --format '{{.Status}}'").stdout.split().count("Ready") < 1 + len(WORKERS):
        if time.monotonic() > deadline:
            sys.exit(f"onebox bench: {worker.name} did not rejoin the swarm within 300 s")
        time.sleep(2)
    time.sleep(20)  # its replica restarted and past nginx's cluster_fail_timeout
    phases["back in the swarm"] = wrk(url, connections, 10)
    return phases


def main() -> None:
    args = wrk_arguments(__doc__.splitlines()[0])
    os.environ["ONEBOX_TARGET_INDEX"] = str(MANAGER.index)  # proxy.wrk runs on target.current()
    domain = settings_for_group("local").domains[0]
    figures: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="onebox-bench-") as scratch:
        first = app_version(Path(scratch), "bench-1")
        bring_up(MANAGER, fresh=True)
        for worker in WORKERS:
            down(worker)
        try:
            up(WORKERS[0])
            converge(WORKERS[:1], first)  # a fresh manager and its first worker at once
            MANAGER.ssh("command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null")
            MANAGER.ssh(f"echo '127.0.0.1 {domain} {HOSTS_MARK}' >> /etc/hosts")
            for count in (1, 2, 3):
                if count > 1:
                    up(WORKERS[count - 1])
                    converge(WORKERS[:count], first)
                time.sleep(5)  # the new replica settled
                figures[count] = wrk(f"https://{domain}{args.path}", args.connections, args.seconds)
            release_seconds = converge(WORKERS, app_version(Path(scratch), "bench-2"))
            loss = node_loss(WORKERS[-1], f"https://{domain}{args.path}", args.connections)
        finally:
            for worker in WORKERS:
                down(worker)
            down(MANAGER)
    print(f"{args.path} through the manager's nginx+TLS, {args.connections} connections, {args.seconds}s, wrk on the manager")
    for count, result in figures.items():
        print(f"  API on {count} worker(s)  {result['rps']:8.0f} req/s  p50 {result['p50']:7.2f} ms  "
              f"p99 {result['p99']:7.2f} ms  non-2xx {result['errors']:.0f}")
    print(f"  a code release on 3 workers (build here, load onto 4 nodes, migrate, start, gate, switch): "
          f"{release_seconds:.0f} s for the whole converge")
    print(f"  a worker of 3 losing power ({WORKERS[-1].name} killed), same wrk:")
    for phase, result in loss.items():
        print(f"    {phase:18} {result['rps']:8.0f} req/s  p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  "
              f"max {result['max']:8.2f} ms  non-2xx {result['errors']:.0f}  socket errors {result['socket_errors']:.0f}")
    print("  caveat: the 4 targets share this machine's CPUs (2 cores), so more API nodes add no CPU here;"
          " on real servers each worker brings its own")


if __name__ == "__main__":
    main()
