"""A real container registry on this machine for the e2e suite: Debian's docker-registry
(the CNCF distribution) with TLS and htpasswd authentication, on the target network's
gateway, so only this machine and its targets reach it.

    python -m testbed.registry up|down

The CA that signed its certificate is made here; Docker on this machine and on a target
trusts it through /etc/docker/certs.d/<host:port>/ca.crt (as you would for a private CA).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from testbed.target import GATEWAY_IP, ROOT

STATE_DIR = ROOT / ".onebox" / "registry"
PORT = 5000
ADDRESS = f"{GATEWAY_IP}:{PORT}"
USERNAME = "ci"
CA = STATE_DIR / "ca.pem"
PASSWORD_FILE = STATE_DIR / "password"  # a test credential, generated per machine, never in git
CERTS_D = Path("/etc/docker/certs.d") / ADDRESS


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(list(argv), input=stdin, text=True, check=True, capture_output=True)


def _certificates() -> None:
    if (STATE_DIR / "cert.pem").exists():
        return
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
         "30", "-subj", "/CN=onebox test registry CA", "-keyout", str(STATE_DIR / "ca-key.pem"), "-out", str(CA))
    _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
         f"/CN={GATEWAY_IP}", "-keyout", str(STATE_DIR / "key.pem"), "-out", str(STATE_DIR / "cert.csr"))
    (STATE_DIR / "san.ext").write_text(f"subjectAltName=IP:{GATEWAY_IP}\n")
    _run("openssl", "x509", "-req", "-in", str(STATE_DIR / "cert.csr"), "-CA", str(CA), "-CAkey",
         str(STATE_DIR / "ca-key.pem"), "-CAcreateserial", "-days", "30", "-extfile", str(STATE_DIR / "san.ext"),
         "-out", str(STATE_DIR / "cert.pem"))


def password() -> str:
    if not PASSWORD_FILE.exists():
        PASSWORD_FILE.write_text(secrets.token_hex(16))
        PASSWORD_FILE.chmod(0o600)
    return PASSWORD_FILE.read_text().strip()


def _config() -> Path:
    _run("htpasswd", "-Bbc", str(STATE_DIR / "htpasswd"), USERNAME, password())
    config = STATE_DIR / "config.yml"
    config.write_text(f"""version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {STATE_DIR / "data"}}}
  delete: {{enabled: true}}
http:
  addr: {ADDRESS}
  tls: {{certificate: {STATE_DIR / "cert.pem"}, key: {STATE_DIR / "key.pem"}}}
auth:
  htpasswd: {{realm: onebox, path: {STATE_DIR / "htpasswd"}}}
""")
    return config


def _pid() -> int | None:
    try:
        pid = int((STATE_DIR / "registry.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def up() -> None:
    """Start it (once) and make this machine's Docker trust it."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    _certificates()
    config = _config()
    CERTS_D.mkdir(parents=True, exist_ok=True)
    (CERTS_D / "ca.crt").write_text(CA.read_text())
    if _pid() is None:
        log = (STATE_DIR / "registry.log").open("a")
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log,
                                start_new_session=True)
        (STATE_DIR / "registry.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"https://{ADDRESS}/v2/", verify=str(CA), timeout=2).status_code == 401:
                return  # up, and asking for credentials
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"docker-registry did not answer on {ADDRESS}: see {STATE_DIR / 'registry.log'}")


def down() -> None:
    pid = _pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
    (CERTS_D / "ca.crt").unlink(missing_ok=True)


def trust_on(target_ssh) -> None:  # noqa: ANN001 - Target.ssh
    """The target's Docker trusts the registry's CA (no daemon restart needed)."""
    result = target_ssh(f"install -d /etc/docker/certs.d/{ADDRESS} && cat > /etc/docker/certs.d/{ADDRESS}/ca.crt "
                        f"<<'EOF'\n{CA.read_text()}EOF")
    if result.returncode != 0:
        raise RuntimeError(f"could not install the registry CA on the target: {result.stderr}")


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1]]()
