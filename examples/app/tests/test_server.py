"""The real thing: gunicorn + gunicorn.conf.py + UvicornWorker in subprocesses."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import APP_DIR, free_port, wait_for_port


class Gunicorn:
    def __init__(self, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            cwd=APP_DIR,
            env={**os.environ, "PORT": str(self.port), **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(self.log_path.read_text())

    def log_lines(self) -> list[dict]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def access_log_for(self, request_id: str) -> dict:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for entry in self.log_lines():
                if entry.get("request_id") == request_id and entry["msg"] == "request":
                    return entry
            time.sleep(0.05)
        raise AssertionError(f"no access log line for {request_id}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
        code = self.proc.wait(30)
        self._log.close()
        return code


@pytest.fixture(scope="module")
def server(app_env, tmp_path_factory) -> Iterator[Gunicorn]:
    """Two workers; only 127.0.0.1 may set proxy headers."""
    g = Gunicorn(
        tmp_path_factory.mktemp("gunicorn") / "a.log",
        WEB_CONCURRENCY="2",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    yield g
    assert g.stop() == 0, "graceful shutdown must exit 0"


@pytest.fixture(scope="module")
def other_server(app_env, tmp_path_factory) -> Iterator[Gunicorn]:
    """A second process group, trusting only a Docker-gateway-like proxy."""
    g = Gunicorn(
        tmp_path_factory.mktemp("gunicorn") / "b.log",
        WEB_CONCURRENCY="1",
        FORWARDED_ALLOW_IPS="172.30.0.1",
    )
    yield g
    assert g.stop() == 0


def get(url: str, source: str = "127.0.0.1", **kwargs) -> httpx.Response:
    # A fresh connection per request, so requests spread over the workers.
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport) as c:
        return c.get(url, **kwargs)


def test_logs_are_json_with_request_fields(server):
    rid = uuid.uuid4().hex
    r = get(f"{server.base}/version", headers={"X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid
    entry = server.access_log_for(rid)
    assert entry["method"] == "GET"
    assert entry["path"] == "/version"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["client"] == "127.0.0.1"
    # Every line gunicorn and the workers print is JSON (log_lines parses all).
    assert any(e["logger"] == "gunicorn.error" for e in server.log_lines())


def test_trusted_proxy_sets_client_address(server):
    rid = uuid.uuid4().hex
    headers = {
        "X-Request-ID": rid,
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
    }
    get(f"{server.base}/version", headers=headers)
    entry = server.access_log_for(rid)
    assert entry["client"] == "203.0.113.7"
    assert entry["scheme"] == "https"


def test_untrusted_peer_cannot_spoof_address(server):
    # 127.0.0.2 is a loopback address too, but not in FORWARDED_ALLOW_IPS.
    rid = uuid.uuid4().hex
    headers = {"X-Request-ID": rid, "X-Forwarded-For": "203.0.113.7"}
    get(f"{server.base}/version", source="127.0.0.2", headers=headers)
    entry = server.access_log_for(rid)
    assert entry["client"] == "127.0.0.2"
    assert entry["scheme"] == "http"


def test_forwarded_allow_ips_reaches_worker(other_server):
    # Only 172.30.0.1 is trusted here, so even localhost's header is ignored.
    rid = uuid.uuid4().hex
    headers = {"X-Request-ID": rid, "X-Forwarded-For": "203.0.113.7"}
    get(f"{other_server.base}/version", headers=headers)
    assert other_server.access_log_for(rid)["client"] == "127.0.0.1"


def test_metrics_aggregate_across_workers(server):
    n = 20
    for _ in range(n):
        assert get(f"{server.base}/items/999999999").status_code == 404
    text = get(f"{server.base}/metrics").text
    m = re.search(
        r'http_requests_total\{method="GET",route="/items/\{item_id\}",status="404"\} (\S+)',
        text,
    )
    assert m, text
    assert float(m.group(1)) == n


def test_hits_shared_across_workers(server):
    values = [httpx.post(f"{server.base}/hits").json()["hits"] for _ in range(6)]
    assert values == list(range(values[0], values[0] + 6))


def test_ws_echo(server):
    with connect(f"ws://127.0.0.1:{server.port}/ws/echo") as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"


def test_broadcast_reaches_clients_in_other_processes(server, other_server):
    urls = [
        f"ws://127.0.0.1:{server.port}/ws/broadcast",
        f"ws://127.0.0.1:{server.port}/ws/broadcast",
        f"ws://127.0.0.1:{other_server.port}/ws/broadcast",
    ]
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(url)) for url in urls]
        clients[2].send("hello from b")
        for ws in clients:
            assert ws.recv(timeout=5) == "hello from b"
        clients[0].send("hello from a")
        for ws in clients:
            assert ws.recv(timeout=5) == "hello from a"
