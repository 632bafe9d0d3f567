"""What the PostgreSQL and Redis exporters need, kept true by `onebox-release metrics --targets`.

One exporter of each kind (Debian's, on 127.0.0.1) serves every app in the multi-target way:
Prometheus asks it to probe an address. The addresses are the apps' containers on their own
Docker networks, which only the host reaches (nothing is published); a container's address
changes when it is recreated, so they are written to Prometheus's file discovery on every run.

PostgreSQL is probed as `onebox_monitor`, a role in each app's server with `pg_monitor` (the
statistics views) and no access to the app's tables. Its password is one per server, kept
root-only; the exporter's copy is readable by root and the prometheus group alone.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from onebox import contract
from onebox.contract import compose
from onebox.server import basics, docker, docker_state
from onebox.server.basics import OneboxError
from onebox.server.model import App

MONITOR_ROLE = "onebox_monitor"
PASSWORD_FILE = Path(contract.POSTGRES_MONITOR_PASSWORD)
ROLES_FILE = Path(contract.MONITOR_ROLES_FILE)
EXPORTER_SERVICE = "prometheus-postgres-exporter"
SCRAM_ITERATIONS = 4096  # PostgreSQL's own default
# As the postgres OS user over the container's local socket, as the image's own superuser.
PSQL = 'exec psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "${POSTGRES_DB:-$POSTGRES_USER}"'


def monitor_password(path: Path = PASSWORD_FILE) -> str:
    if not path.exists():
        basics.write_atomic(path, secrets.token_hex(32), mode=0o600)
    return path.read_text().strip()


def exporter_config(password: str) -> str:
    """The exporter's auth module (JSON is YAML): the role and its password, never in a URL. A
    server that does not answer in 5 s is reported down (pg_up 0), not a scrape timing out."""
    module = {"type": "userpass", "userpass": {"username": MONITOR_ROLE, "password": password},
              "options": {"sslmode": "disable", "connect_timeout": "5"}}
    return json.dumps({"auth_modules": {contract.EXPORTER_AUTH_MODULE: module}}, indent=2) + "\n"


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677): the role is given this,
    never the password, so no server log or statistics view can show it."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def role_sql(verifier: str) -> str:
    """Idempotent: the role made once, its password and its one grant set every time (psql reads
    it on stdin: nothing in a command line)."""
    return (f"SET lock_timeout = '5s';\n"
            f"SELECT 'CREATE ROLE {MONITOR_ROLE}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{MONITOR_ROLE}')\\gexec\n"
            f"ALTER ROLE {MONITOR_ROLE} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{verifier}';\n"
            f"GRANT pg_monitor TO {MONITOR_ROLE};\n")


def psql(container_id: str, sql: str) -> basics.Result:
    argv = docker.exec_in(container_id, "sh", "-c", PSQL, user="postgres", stdin=True)
    try:
        return basics.run(argv, stdin=sql, check=False, timeout=30)  # a hung server must not stop the timer
    except OneboxError as error:
        return basics.Result(argv, 124, "", str(error))


def ensure_role(app: App, container_id: str, password: str, made: dict[str, str]) -> None:
    """The role in this app's PostgreSQL, once per container and password (a new container may
    have new data; monitoring turned off and on has a new password)."""
    key = f"{container_id} {hashlib.sha256(password.encode()).hexdigest()[:16]}"
    if made.get(app.name) == key:
        return
    result = psql(container_id, role_sql(scram_verifier(password, secrets.token_bytes(16))))
    if result.ok:
        made[app.name] = key
    else:  # starting or broken: the next run tries again; the exporter reports it down meanwhile
        basics.log(f"app {app.name}: the monitoring role could not be made yet ({result.stderr.strip()[-200:]})")


def drop_roles(apps: list[App]) -> None:
    """Monitoring turned off: the role leaves every app's PostgreSQL that runs (`onebox-release
    unmonitor`); a stopped one keeps a role whose password is gone with PASSWORD_FILE."""
    for app in apps:
        if app.spec.postgres_enabled and (pg := running_dependencies(app).get("postgres")):
            result = psql(pg, f"SET lock_timeout = '5s';\nDROP ROLE IF EXISTS {MONITOR_ROLE};\n")
            if not result.ok:
                basics.log(f"app {app.name}: the monitoring role was not dropped ({result.stderr.strip()[-200:]})")


def address(container_id: str, network: str) -> str | None:
    found = basics.run(docker.container_networks(container_id), check=False)
    if not found.ok:
        return None
    return (json.loads(found.stdout or "{}").get(network) or {}).get("IPAddress") or None


def running_dependencies(app: App) -> dict[str, str]:
    """Service -> container ID of the app's dependencies that run (one `docker ps`)."""
    return {c.service: c.id for c in docker_state.containers(app.name) if c.state == "running"}


def write_if_changed(path: Path, content: str, mode: int = 0o644, group: str | None = None) -> bool:
    changed = not path.exists() or path.read_text() != content
    if changed:
        basics.write_atomic(path, content, mode=mode)
    if group:  # every run: an owner a crash left wrong is put right
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    return changed


def refresh(apps: list[App], targets_dir: Path) -> None:
    """Targets for Prometheus, the monitoring role in each PostgreSQL, the exporter's password."""
    password = monitor_password()
    if write_if_changed(Path(contract.POSTGRES_EXPORTER_CONFIG), exporter_config(password), mode=0o640,
                        group="prometheus"):
        basics.run(["systemctl", "try-restart", EXPORTER_SERVICE], check=False)  # it reads the file at start
    made = basics.read_json(ROLES_FILE, {})
    postgres, redis = [], []
    for app in apps:
        network, found = contract.compose.network(app.name), running_dependencies(app)
        if app.spec.postgres_enabled and (pg := found.get(compose.POSTGRES_SERVICE)):
            ensure_role(app, pg, password, made)
            if ip := address(pg, network):
                postgres.append({"targets": [f"postgresql://{ip}:5432/postgres"], "labels": {"app": app.name}})
        if app.spec.redis_enabled and (cache := found.get(compose.REDIS_SERVICE)) and (ip := address(cache, network)):
            redis.append({"targets": [f"redis://{ip}:6379"], "labels": {"app": app.name}})
    write_if_changed(ROLES_FILE, json.dumps(made, indent=2, sort_keys=True) + "\n", mode=0o600)
    for service, groups in ((compose.POSTGRES_SERVICE, postgres), (compose.REDIS_SERVICE, redis)):
        write_if_changed(Path(contract.exporter_targets(service, str(targets_dir))),
                         json.dumps(groups, indent=2, sort_keys=True) + "\n")
