"""Real receivers for the alerts of the e2e target, on this machine: an HTTP endpoint that
takes Alertmanager's webhook JSON, and an SMTP server (aiosmtpd) that takes its e-mails.
group_data/local.py points the target's Alertmanager at both."""

from __future__ import annotations

import json
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from testbed.target import GATEWAY_IP

WEBHOOK_PORT, SMTP_PORT = 9877, 2525  # as group_data/local.py says


class Receivers:
    """`with Receivers() as got: got.wait_webhook("OneboxContainerDown", "firing", service="api")`."""

    def __init__(self) -> None:
        self.webhooks: list[dict] = []
        self.mails: list[str] = []  # subjects
        self._lock = threading.Lock()

    def __enter__(self) -> Receivers:
        received = self

        class Webhook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with received._lock:
                    received.webhooks.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Mailbox:
            async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's names
                with received._lock:
                    received.mails.append(message_from_bytes(envelope.content)["Subject"] or "")
                return "250 OK"

        self._http = ThreadingHTTPServer((GATEWAY_IP, WEBHOOK_PORT), Webhook)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._smtp = Controller(Mailbox(), hostname=GATEWAY_IP, port=SMTP_PORT)
        self._smtp.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._smtp.stop()

    def alerts(self, status: str) -> list[dict]:
        """Every alert of that status ("firing" or "resolved") the webhook received."""
        with self._lock:
            return [alert for message in self.webhooks for alert in message["alerts"] if alert["status"] == status]

    def wait_webhook(self, name: str, status: str, timeout: float = 150, **labels: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in self.alerts(status):
                if alert["labels"].get("alertname") == name and all(alert["labels"].get(k) == v for k, v in labels.items()):
                    return alert
            time.sleep(1)
        raise AssertionError(f"no {status} {name} {labels} within {timeout:.0f} s; got: "
                             f"{[(a['status'], a['labels']) for a in self.alerts('firing') + self.alerts('resolved')]}")

    def wait_mail(self, words: str, timeout: float = 60) -> str:
        """The subject of an e-mail containing every word of `words`, e.g. "FIRING OneboxDiskFull"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [subject for subject in self.mails if all(word in subject for word in words.split())]
            if found:
                return found[0]
            time.sleep(1)
        raise AssertionError(f"no e-mail with {words!r} within {timeout:.0f} s; got: {self.mails}")
