"""wrk, run on a target, and what its summary says: requests/s, latency, and every request a
client that never retries saw fail (socket errors and non-2xx answers)."""

from __future__ import annotations

import re

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def command(url: str, connections: int, seconds: int) -> str:
    threads = min(connections, 2)  # the targets have 2 cores; more threads only contend
    return f"wrk -t{threads} -c{connections} -d{seconds}s --latency {url}"


def summary(out: str) -> dict[str, float]:
    """Figures in milliseconds; errors: non-2xx/3xx answers; socket_errors: connect, read, write, timeout."""
    latency = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    slowest = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\s", out, re.M)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = re.search(r"^\s+(\d+) requests in", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (requests and rps):
        raise ValueError(f"not a wrk summary: {out[-500:]!r}")
    return {"requests": float(requests[1]), "rps": float(rps[1]),
            "p50": latency.get("50", float("nan")), "p99": latency.get("99", float("nan")),
            "max": float(slowest[1]) * UNITS[slowest[2]] if slowest else float("nan"),
            "errors": float(non2xx[1]) if non2xx else 0.0,
            "socket_errors": float(sum(int(n) for n in socket.groups())) if socket else 0.0}
