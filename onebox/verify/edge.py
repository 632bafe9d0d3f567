"""Live checks of the edge (nginx + TLS) from outside the server.

Every check connects to the server's IP while speaking to it by name (Host header
and TLS SNI), so no DNS is needed and the exact server under test is reached.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography import x509
from websockets.sync.client import connect


def tls_context(ca_file: str | Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def https(ip: str, domain: str, ca_file: str | Path) -> httpx.Client:
    """A client for https://IP that presents `domain` as Host and SNI; verifies against ca_file."""
    return httpx.Client(base_url=f"https://{ip}", verify=tls_context(ca_file), headers={"Host": domain},
                        timeout=10, follow_redirects=False)


def get(client: httpx.Client, domain: str, path: str, **kwargs) -> httpx.Response:
    # SNI and certificate name checks follow this extension, not the URL's IP.
    return client.get(path, extensions={"sni_hostname": domain}, **kwargs)


def http_get(ip: str, host: str, path: str = "/") -> httpx.Response:
    """Plain HTTP on port 80 without following redirects."""
    return httpx.get(f"http://{ip}{path}", headers={"Host": host}, timeout=10, follow_redirects=False)


def _inspect_only() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def served_certificate(ip: str, domain: str) -> x509.Certificate:
    """The leaf certificate the server presents for `domain` (not verified: inspect only)."""
    raw = socket.create_connection((ip, 443), timeout=10)
    with _inspect_only().wrap_socket(raw, server_hostname=domain) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der, f"{ip} presented no certificate for {domain}"
        return x509.load_der_x509_certificate(der)


def handshake_refused(ip: str, server_name: str) -> bool:
    """True when the server refuses TLS for a name it does not serve."""
    with socket.create_connection((ip, 443), timeout=10) as raw:
        try:
            _inspect_only().wrap_socket(raw, server_hostname=server_name).close()
            return False
        except (ssl.SSLError, ConnectionResetError):
            return True


def burst(ip: str, domain: str, path: str, count: int, ca_file: str | Path) -> list[int]:
    """Status codes of `count` back-to-back requests over one connection."""
    with https(ip, domain, ca_file) as client:
        return [get(client, domain, path).status_code for _ in range(count)]


def websocket_echo(ip: str, domain: str, path: str, message: str, ca_file: str | Path) -> str:
    """Send one text message through wss://domain/path at ip; return the first reply."""
    with websocket(ip, domain, path, ca_file) as ws:
        ws.send(message)
        reply = ws.recv(timeout=10)
    return reply if isinstance(reply, str) else reply.decode()


def websocket(ip: str, domain: str, path: str, ca_file: str | Path):  # noqa: ANN201 - a websockets connection
    """An open WebSocket through wss://domain/path at ip (close it, or use it as a context manager).

    Over TLS 1.2: websockets' threaded client reads and writes one SSL object from two threads,
    and under TLS 1.3 the session tickets nginx sends just after the handshake sometimes meet
    the client writing its request, which then never leaves the client (a packet capture: the
    handshake, nginx's two tickets, then nothing until nginx's client_header_timeout closed the
    connection 60 s later). Measured against the same target, 40 handshakes 0.11 s apart per
    round: with TLS 1.3, 8 stalled in the first 8 rounds (320); with TLS 1.2, which sends no
    message after its handshake, none in 10 rounds (400)."""
    context = tls_context(ca_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    sock = socket.create_connection((ip, 443), timeout=10)
    return connect(f"wss://{domain}{path}", sock=sock, ssl=context, server_hostname=domain,
                   open_timeout=10, close_timeout=5)


def tool(name: str) -> str:
    """A command from this virtualenv (sslyze, gixy), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def sslyze_intermediate(ip: str, domain: str, root_ca_file: str | Path) -> subprocess.CompletedProcess:
    """sslyze's Mozilla "intermediate" check; returncode 0 means compliant."""
    return subprocess.run([tool("sslyze"), "--mozilla_config=intermediate", f"--certinfo_ca_file={root_ca_file}",
                           f"{domain}:443{{{ip}}}"], capture_output=True, text=True, timeout=180)


def gixy_findings(nginx_dump: str) -> list[dict]:
    """gixy's findings on the output of `nginx -T`; [] when clean."""
    result = subprocess.run([tool("gixy"), "-f", "json", "-"], input=nginx_dump, capture_output=True, text=True)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"gixy failed: {result.stderr.strip()}")
    return json.loads(result.stdout)
