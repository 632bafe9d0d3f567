"""The edge from outside, on the converged local target: TLS from a real ACME server
(Pebble), redirects, headers, rate and connection limits, WebSockets, unknown hosts, spoofing."""

from __future__ import annotations

import json
import random
import shlex
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus

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


def limited_connections(deployed) -> int:
    """How many requests nginx has refused so far for holding too many (its error log)."""
    zone = f"{deployed.settings.files.nginx_prefix}_conn"
    out = deployed.ssh(f"grep -c 'limiting connections by zone \"{zone}\"' /var/log/nginx/error.log")
    return int(out.stdout.strip() or 0)


def test_idle_websockets_of_one_client_stop_at_its_limit(deployed, root_ca: Path) -> None:
    """Issue 29: idle WebSockets from one address are cut off at max_connections_per_client while
    another address is served, and the client gets its places back as it closes them."""
    s = deployed.settings
    refused_before = limited_connections(deployed)
    held = []
    try:
        while len(held) < s.max_connections_per_client:
            held.append(edge.websocket(deployed.ip, deployed.domain, "/ws/echo", root_ca))
            time.sleep(1.1 / s.rate_limit_rps)  # under the handshakes' rate limit: only the connection limit refuses
        with pytest.raises(InvalidStatus) as refused:
            edge.websocket(deployed.ip, deployed.domain, "/ws/echo", root_ca)
        assert refused.value.response.status_code == 429
        assert limited_connections(deployed) > refused_before  # the connection limit's 429, not the rate limit's
        # Another client meanwhile: the server itself, from its own address.
        other = deployed.ssh(f"curl -sk -o /dev/null -w '%{{http_code}}' --resolve {deployed.domain}:443:{deployed.ip} "
                             f"https://{deployed.domain}{s.app_health_path}")
        assert other.stdout == "200", other.stderr
    finally:
        for ws in held:
            ws.close()
    # nginx frees a place once the app has closed its side too; the app, closing 100 sockets at
    # once, may keep the next handshake waiting a while (a CI run saw one time out after 10 s).
    deadline = time.monotonic() + 60
    while True:
        try:
            assert edge.websocket_echo(deployed.ip, deployed.domain, "/ws/echo", "back", root_ca) == "back"
            break
        except (InvalidStatus, TimeoutError):
            assert time.monotonic() < deadline, "the client's places did not come back after it closed its WebSockets"
            time.sleep(0.5)


# Run on the target: WebSocket handshakes to nginx from given source addresses, held open.
# argv: domain, path, rate limit (r/s), server address, then source address:count pairs; prints
# the status of each handshake per source, in order.
HANDSHAKES = r"""
import json, socket, ssl, sys, time
domain, path, rps, server = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
held, statuses = [], {}
for pair in sys.argv[5:]:
    source, count = pair.rsplit(":", 1)
    for _ in range(int(count)):
        tls = context.wrap_socket(socket.create_connection((server, 443), timeout=10, source_address=(source, 0)),
                                  server_hostname=domain)
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            head += tls.recv(1024) or b"\r\n"
        statuses.setdefault(pair, []).append(int(head.split()[1]))
        held.append(tls)
        time.sleep(1.1 / rps)
print(json.dumps(statuses))
"""


def test_one_ipv6_64_shares_one_connection_limit(deployed) -> None:
    """Issue 29: the addresses of one IPv6 /64 share a client's limit; another /64 has its own.
    The target's loopback stands in for the internet: documentation addresses added to it."""
    if "::1" not in deployed.ssh("ip -6 addr show dev lo").stdout:
        pytest.skip("the target has no IPv6")
    s = deployed.settings
    server, first, second, elsewhere = "2001:db8:ff::1", "2001:db8:64::1", "2001:db8:64::2", "2001:db8:65::1"
    addresses = (server, first, second, elsewhere)
    added = deployed.ssh(" && ".join(f"ip -6 addr add {a}/128 dev lo nodad" for a in addresses))
    try:
        assert added.returncode == 0, added.stderr
        half = s.max_connections_per_client // 2
        pairs = [f"{first}:{half}", f"{second}:{s.max_connections_per_client - half + 1}", f"{elsewhere}:1"]
        run = deployed.ssh(f"python3 -c {shlex.quote(HANDSHAKES)} {deployed.domain} /ws/echo {s.rate_limit_rps} "
                           f"{server} {' '.join(pairs)}")
        assert run.returncode == 0, run.stderr
        statuses = json.loads(run.stdout)
        assert set(statuses[pairs[0]]) == {101}
        assert statuses[pairs[1]][:-1] == [101] * (s.max_connections_per_client - half)
        assert statuses[pairs[1]][-1] == 429  # the /64's limit is full, whichever of its addresses asks
        assert statuses[pairs[2]] == [101]
    finally:
        deployed.ssh("; ".join(f"ip -6 addr del {a}/128 dev lo" for a in addresses))


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
