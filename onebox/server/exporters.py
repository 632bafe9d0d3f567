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

import grp
import json
import os
import secrets
from pathlib import Path

from onebox import contract
from onebox.server import basics, docker
from onebox.server.model import App

MONITOR_ROLE = "onebox_monitor"
PASSWORD_FILE = Path(contract.POSTGRES_MONITOR_PASSWORD)
ROLES_FILE = Path(contract.MONITOR_ROLES_FILE)
EXPORTER_SERVICE = "prometheus-postgres-exporter"


def monitor_password(path: Path = PASSWORD_FILE) -> str:
    if not path.exists():
        basics.write_atomic(path, secrets.token_hex(32), mode=0o600)
    return path.read_text().strip()


def exporter_config(password: str) -> str:
    """The exporter's auth module (JSON is YAML): the role and its password, never in a URL."""
    module = {"type": "userpass", "userpass": {"username": MONITOR_ROLE, "password": password},
              "options": {"sslmode": "disable"}}
    return json.dumps({"auth_modules": {"onebox": module}}, indent=2) + "\n"


def role_sql(password: str) -> str:
    """Idempotent: the role made once, its password and its one grant set every time. Read
    from stdin by psql, so the password is in no command line."""
    return (f"SELECT 'CREATE ROLE {MONITOR_ROLE}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{MONITOR_ROLE}')\\gexec\n"
            f"ALTER ROLE {MONITOR_ROLE} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}';\n"
            f"GRANT pg_monitor TO {MONITOR_ROLE};\n")


def ensure_role(app: App, container_id: str, password: str, made: dict[str, str]) -> None:
    """The role in this app's PostgreSQL, once per container (a new container may have new data)."""
    if made.get(app.name) == container_id:
        return
    # As the postgres OS user over the container's local socket, as the image's own superuser.
    psql = 'exec psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "${POSTGRES_DB:-$POSTGRES_USER}"'
    result = basics.run(["docker", "exec", "-i", "-u", "postgres", container_id, "sh", "-c", psql],
                        stdin=role_sql(password), check=False)
    if result.ok:
        made[app.name] = container_id
    else:  # starting or broken: the next run tries again; the exporter reports it down meanwhile
        basics.log(f"app {app.name}: the monitoring role could not be made yet ({result.stderr.strip()[-200:]})")


def address(container_id: str, network: str) -> str | None:
    found = basics.run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container_id], check=False)
    if not found.ok:
        return None
    return (json.loads(found.stdout or "{}").get(network) or {}).get("IPAddress") or None


def running(app: App, service: str) -> str | None:
    return next((c.id for c in docker.containers(app.name) if c.service == service and c.state == "running"), None)


def write_if_changed(path: Path, content: str, mode: int = 0o644, group: str | None = None) -> bool:
    if path.exists() and path.read_text() == content:
        return False
    basics.write_atomic(path, content, mode=mode)
    if group:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    return True


def refresh(apps: list[App], targets_dir: Path) -> None:
    """Targets for Prometheus, the monitoring role in each PostgreSQL, the exporter's password."""
    password = monitor_password()
    if write_if_changed(Path(contract.POSTGRES_EXPORTER_CONFIG), exporter_config(password), mode=0o640,
                        group="prometheus"):
        basics.run(["systemctl", "try-restart", EXPORTER_SERVICE], check=False)  # it reads the file at start
    made = basics.read_json(ROLES_FILE, {})
    postgres, redis = [], []
    for app in apps:
        network = f"{app.name}_default"
        if app.spec.postgres_enabled and (pg := running(app, "postgres")):
            ensure_role(app, pg, password, made)
            if ip := address(pg, network):
                postgres.append({"targets": [f"postgresql://{ip}:5432/postgres"], "labels": {"app": app.name}})
        if app.spec.redis_enabled and (cache := running(app, "redis")) and (ip := address(cache, network)):
            redis.append({"targets": [f"redis://{ip}:6379"], "labels": {"app": app.name}})
    basics.write_json(ROLES_FILE, made)
    for name, groups in (("postgres", postgres), ("redis", redis)):
        write_if_changed(targets_dir / f"{name}.json", json.dumps(groups, indent=2, sort_keys=True) + "\n")
