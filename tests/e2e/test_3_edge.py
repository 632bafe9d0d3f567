"""The edge from outside, on the converged local target: TLS from a real ACME server
(Pebble), redirects, headers, rate limits, WebSockets, unknown hosts, spoofing."""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

import httpx
import pytest

from onebox.verify import edge
from testbed.target import GATEWAY_IP


@pytest.fixture(scope="module")
def client(deployed, root_ca: Path):
    with edge.https(deployed.ip, deployed.domain, root_ca) as client:
        yield client


def test_plain_http_redirects_to_https(deployed) -> None:
    response = edge.http_get(deployed.ip, deployed.domain, "/items?page=2")
    assert response.status_code == 301
    assert response.headers["location"] == f"https://{deployed.domain}/items?page=2"


def test_certificate_is_pebbles_and_verifies(deployed, client: httpx.Client) -> None:
    assert edge.get(client, deployed.domain, "/health").status_code == 200  # verified against the root
    certificate = edge.served_certificate(deployed.ip, deployed.domain)
    assert "Pebble" in certificate.issuer.rfc4514_string()
    names = certificate.extensions.get_extension_for_oid(edge.x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert sorted(names.get_values_for_type(edge.x509.DNSName)) == sorted(deployed.settings.domains)


def test_tls_meets_mozilla_intermediate(deployed, root_ca: Path) -> None:
    result = edge.sslyze_intermediate(deployed.ip, deployed.domain, root_ca)
    assert result.returncode == 0, result.stdout[-2000:]


def test_security_headers(deployed, client: httpx.Client) -> None:
    headers = edge.get(client, deployed.domain, "/health").headers
    assert headers["strict-transport-security"].startswith(f"max-age={deployed.settings.hsts_max_age}")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "referrer-policy" in headers
    assert headers["server"] == "nginx"  # no version


def test_a_burst_gets_429_while_health_keeps_answering(deployed, root_ca: Path) -> None:
    s = deployed.settings
    statuses = edge.burst(deployed.ip, deployed.domain, "/items", 3 * (s.rate_limit_burst + s.rate_limit_rps), root_ca)
    assert 429 in statuses, statuses
    assert statuses[0] == 200
    health = edge.burst(deployed.ip, deployed.domain, s.app_health_path, 3 * s.rate_limit_burst, root_ca)
    assert set(health) == {200}
    time.sleep(s.rate_limit_burst / s.rate_limit_rps + 1)  # let the bucket refill for the tests after this one


def test_websocket_echo_through_nginx(deployed, root_ca: Path) -> None:
    assert edge.websocket_echo(deployed.ip, deployed.domain, "/ws/echo", "ping through nginx", root_ca) == \
        "ping through nginx"


def test_unknown_host_never_reaches_the_app(deployed) -> None:
    with pytest.raises(httpx.RemoteProtocolError):  # 444: nginx closes without a response
        edge.http_get(deployed.ip, "not-configured.example", "/health")
    assert edge.handshake_refused(deployed.ip, "not-configured.example")


def test_metrics_are_not_public(deployed, client: httpx.Client) -> None:
    assert edge.get(client, deployed.domain, "/metrics").status_code == 404


def test_a_client_cannot_spoof_its_address(deployed, client: httpx.Client) -> None:
    spoofed = f"203.0.113.{random.randint(2, 254)}"
    request_id = f"edge-spoof-{uuid.uuid4().hex}"
    headers = {"X-Forwarded-For": spoofed, "X-Request-ID": request_id}
    assert edge.get(client, deployed.domain, "/items", headers=headers).status_code == 200
    logs = deployed.ssh(f"docker logs --since 5m {deployed.container_ids()['api']} 2>&1")
    # compose may put terminal control codes before a line: the JSON starts at its first brace.
    entries = [json.loads(line[line.index("{"):]) for line in logs.stdout.splitlines() if request_id in line]
    assert entries, f"the API logged nothing for request {request_id}: {logs.stdout[-500:]}{logs.stderr[-500:]}"
    # This machine reaches the target from the bridge gateway: that is the real client.
    assert {entry.get("client") for entry in entries} == {GATEWAY_IP}, entries
    assert spoofed not in logs.stdout


def test_a_rerun_keeps_the_certificate(deployed) -> None:
    before = edge.served_certificate(deployed.ip, deployed.domain).serial_number
    deployed.deploy()
    assert edge.served_certificate(deployed.ip, deployed.domain).serial_number == before
