"""A real ACME server on this machine for the local target: Debian's Pebble.

    python -m testbed.pebble up TARGET_IP|down

pebble-challtestsrv answers every DNS name with the target's address, so Pebble
validates HTTP-01 challenges against the target's real nginx and certbot.
Facts behind the flags: shared/TARGET.md. No systemd here: both run detached with
pid files and logs under .onebox/pebble/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import httpx

from testbed.target import GATEWAY_IP, ROOT

STATE_DIR = ROOT / ".onebox" / "pebble"
LISTENER_CA = STATE_DIR / "listener.pem"  # self-signed: the acme_ca_bundle to trust
LISTENER_KEY = STATE_DIR / "listener-key.pem"
CONFIG = STATE_DIR / "pebble.json"
TARGET_FILE = STATE_DIR / "target-ip"
DIRECTORY_URL = f"https://{GATEWAY_IP}:14000/dir"
ROOTS_URL = "https://127.0.0.1:15000/roots/0"
MANAGEMENT_URL = "http://127.0.0.1:8055"  # pebble-challtestsrv's: DNS answers
# Mozilla's lifespan rule wants < 366 days; Pebble's default is 5 years.
VALIDITY_SECONDS = 7776000


def _trust_listener() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(LISTENER_CA))


def issuing_root_pem() -> str:
    """Pebble's current issuing root (a new one at every Pebble start)."""
    return httpx.get(ROOTS_URL, verify=_trust_listener(), timeout=5).raise_for_status().text


def _pid(name: str) -> int | None:
    try:
        pid = int((STATE_DIR / f"{name}.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _ensure_installed() -> None:
    if shutil.which("pebble") and shutil.which("pebble-challtestsrv"):
        return
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "pebble"], check=True, env=env)


def _ensure_listener_cert() -> None:
    if LISTENER_CA.is_file() and LISTENER_KEY.is_file():
        return
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "3650", "-subj", "/CN=onebox local Pebble listener",
         "-addext", f"subjectAltName=IP:{GATEWAY_IP},IP:127.0.0.1,DNS:localhost",
         "-keyout", str(LISTENER_KEY), "-out", str(LISTENER_CA)],
        check=True, capture_output=True,
    )


def _write_config() -> None:
    CONFIG.write_text(json.dumps({"pebble": {
        "listenAddress": "0.0.0.0:14000", "managementListenAddress": ":15000",
        "certificate": str(LISTENER_CA), "privateKey": str(LISTENER_KEY),
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
        "externalAccountBindingRequired": False, "certificateValidityPeriod": VALIDITY_SECONDS,
    }}, indent=2))


def _spawn(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    with open(STATE_DIR / f"{name}.log", "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, **(env or {})})
    (STATE_DIR / f"{name}.pid").write_text(str(process.pid))


def _wait_for_directory(timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    local_url = DIRECTORY_URL.replace(GATEWAY_IP, "127.0.0.1")
    while time.monotonic() < deadline:
        try:
            httpx.get(local_url, verify=_trust_listener(), timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    sys.exit(f"onebox: Pebble did not answer at {DIRECTORY_URL}; see {STATE_DIR}/pebble.log")


def _refuse_busy_ports() -> None:
    """Pebble's ports are the machine's: a Pebble started from another checkout holds them."""
    for port in (14000, 15000, 8053, 8055):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                sys.exit(f"onebox: port {port} is taken (a Pebble from another checkout?); "
                         f"stop it there with `python -m testbed.pebble down`, or `pkill -f pebble`")


def ensure_running(target_ip: str) -> None:
    """Run Pebble with DNS pointing every name at target_ip (restarted for another target)."""
    running = _pid("pebble") and _pid("challtestsrv")
    if running and TARGET_FILE.is_file() and TARGET_FILE.read_text() == target_ip:
        return
    stop()
    _refuse_busy_ports()
    _ensure_installed()
    _ensure_listener_cert()
    _write_config()
    _spawn("challtestsrv", ["pebble-challtestsrv", "-defaultIPv4", target_ip, "-defaultIPv6", "",
                            "-dns01", "127.0.0.1:8053", "-http01", "", "-https01", "", "-tlsalpn01", "",
                            "-management", MANAGEMENT_URL.removeprefix("http://")])
    _spawn("pebble", ["pebble", "-config", str(CONFIG), "-dnsserver", "127.0.0.1:8053"],
           env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
    _wait_for_directory()
    TARGET_FILE.write_text(target_ip)


def point_names_at(names: list[str], ip: str) -> None:
    """Answer these names with another address (what a DNS change does when a server is
    replaced), leaving the default answer, and Pebble's CA, as they are."""
    for name in names:
        httpx.post(f"{MANAGEMENT_URL}/add-a", json={"host": name, "addresses": [ip]}, timeout=5).raise_for_status()


def clear_names(names: list[str]) -> None:
    for name in names:
        httpx.post(f"{MANAGEMENT_URL}/clear-a", json={"host": name}, timeout=5).raise_for_status()


def stop() -> None:
    for name in ("pebble", "challtestsrv"):
        pid = _pid(name)
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if _pid(name) is None:
                    break
                time.sleep(0.1)
        (STATE_DIR / f"{name}.pid").unlink(missing_ok=True)
    TARGET_FILE.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["up"] and len(argv) == 2:
        ensure_running(argv[1])
        print(f"Pebble up at {DIRECTORY_URL} for {argv[1]}; trust {LISTENER_CA}")
    elif argv == ["down"]:
        stop()
        print("Pebble stopped")
    else:
        sys.exit("usage: python -m testbed.pebble up TARGET_IP|down")


if __name__ == "__main__":
    main(sys.argv[1:])
