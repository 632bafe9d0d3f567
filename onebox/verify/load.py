"""Traffic through nginx+TLS while something changes on the server: keep-alive and fresh
connections, writes, one slow request. Counts every failure (5xx, 429, socket errors)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from onebox.verify.edge import tls_context


@dataclass
class LoadReport:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    # GETs retried once because the server closed an idle keep-alive connection as the request
    # left (RFC 9112 9.3.1: clients retry idempotent requests then; browsers do). Reported, not hidden.
    retried: list[str] = field(default_factory=list)
    slow_status: int | None = None
    latencies: list[float] = field(default_factory=list)


class Load:
    """`with Load(ip, domain, ca) as load: ...` then load.report."""

    def __init__(self, ip: str, domain: str, ca_file, health_path: str = "/health", slow_path: str | None = None,
                 write_path: str | None = None, timeout: float = 30) -> None:
        self.ip, self.domain, self.ca = ip, domain, tls_context(ca_file)
        self.timeout = timeout  # each request's; a longer one is a failure
        self.health_path, self.slow_path, self.write_path = health_path, slow_path, write_path
        self.report = LoadReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=f"https://{self.ip}", verify=self.ca, headers={"Host": self.domain},
                            timeout=self.timeout)

    def _record(self, what: str, call, idempotent: bool = False) -> httpx.Response | None:  # noqa: ANN001
        started = time.monotonic()
        try:
            try:
                response = call()
            except httpx.RemoteProtocolError as error:
                if not (idempotent and "without sending a response" in str(error)):
                    raise
                with self._lock:
                    self.report.retried.append(f"{what}: {error}")
                response = call()
        except httpx.HTTPError as error:
            with self._lock:
                self.report.requests += 1
                self.report.failures.append(f"{what}: {type(error).__name__}: {error}")
            return None
        with self._lock:
            self.report.requests += 1
            self.report.latencies.append(time.monotonic() - started)
            if response.status_code >= 400:
                self.report.failures.append(f"{what}: HTTP {response.status_code}")
        return response

    def _keepalive(self) -> None:
        with self._client() as client:
            while not self._stop.is_set():
                self._record("keep-alive GET", lambda: client.get(self.health_path, extensions={"sni_hostname": self.domain}),
                             idempotent=True)

    def _fresh(self) -> None:
        while not self._stop.is_set():
            with self._client() as client:
                self._record("new-connection GET", lambda c=client: c.get(
                    self.health_path, headers={"Connection": "close"}, extensions={"sni_hostname": self.domain}))

    def _writer(self) -> None:
        with self._client() as client:
            number = 0
            while not self._stop.is_set():
                number += 1
                # A new connection per write: a POST must never meet a keep-alive connection being closed.
                response = self._record("POST", lambda n=number: client.post(
                    str(self.write_path), json={"name": f"load-{n}"}, headers={"Connection": "close"},
                    extensions={"sni_hostname": self.domain}))
                if response is not None and response.status_code == 201:
                    with self._lock:
                        self.report.written.append(response.json()["id"])
                time.sleep(0.25)  # under the per-client rate limit

    def slow_request(self) -> None:
        with self._client() as client:
            response = self._record("slow GET", lambda: client.get(str(self.slow_path), extensions={"sni_hostname": self.domain}))
            self.report.slow_status = response.status_code if response is not None else None

    def __enter__(self) -> Load:
        workers = [self._keepalive, self._keepalive, self._fresh]
        if self.write_path:
            workers.append(self._writer)
        self._threads = [threading.Thread(target=work, daemon=True) for work in workers]
        for thread in self._threads:
            thread.start()
        time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 30)
