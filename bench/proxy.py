"""What nginx + TLS costs: requests/s and latency of one API path through the proxy vs
straight to the API, both measured by wrk ON the target at the same concurrency.

    ONEBOX_TARGET_INDEX=2 .venv/bin/python bench/proxy.py [--path /health] [--connections 32] [--seconds 10]

Both runs share the machine, so the ratio isolates the proxy (goal: >= 0.7). The
proxied run resolves the domain to 127.0.0.1 through a temporary /etc/hosts line,
so wrk sends the right SNI and Host; the line is removed afterwards.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onebox.inventory import settings_for_group  # noqa: E402
from onebox.verify.wrk import command as wrk_command  # noqa: E402
from onebox.verify.wrk import summary as wrk_summary  # noqa: E402
from testbed import target  # noqa: E402

HOSTS_MARK = "# onebox-bench"


def ssh(command: str) -> str:
    t = target.current()
    result = t.ssh(command)
    if result.returncode != 0:
        sys.exit(f"onebox bench: `{command}` failed on {t.ip}: {result.stderr.strip()}")
    return result.stdout


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    return wrk_summary(ssh(wrk_command(url, connections, seconds)))


def wrk_arguments(description: str) -> argparse.Namespace:
    """--path, --connections and --seconds of a wrk run, parsed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--path", default="/health", help="an API path exempt from rate limiting")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    return parser.parse_args()


def main() -> None:
    args = wrk_arguments(__doc__.splitlines()[0])
    s = settings_for_group("local")
    domain = s.domains[0]
    ssh("command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null")
    slot = ssh(f"python3 -c \"import json; print(json.load(open('{s.app_dir}/state.json'))['slot'])\"").strip()
    port = s.slot_ports[0 if slot == "blue" else 1]  # the live release's slot
    direct = wrk(f"http://127.0.0.1:{port}{args.path}", args.connections, args.seconds)
    ssh(f"echo '127.0.0.1 {domain} {HOSTS_MARK}' >> /etc/hosts")
    try:
        proxied = wrk(f"https://{domain}{args.path}", args.connections, args.seconds)
    finally:
        ssh(f"sed -i '/{HOSTS_MARK}$/d' /etc/hosts")
    print(f"{args.path}, {args.connections} connections, {args.seconds}s each, wrk on the target")
    for label, figures in (("direct  127.0.0.1", direct), ("nginx+TLS", proxied)):
        print(f"  {label:18} {figures['rps']:9.0f} req/s  p50 {figures['p50']:7.2f} ms  p99 {figures['p99']:7.2f} ms"
              f"  non-2xx {figures['errors']:.0f}")
    ratio = proxied["rps"] / direct["rps"]
    print(f"  ratio {ratio:.2f} ({'meets' if ratio >= 0.7 else 'below'} the 0.7 goal)")


if __name__ == "__main__":
    main()
