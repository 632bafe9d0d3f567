"""`onebox-release metrics`: onebox's facts in Prometheus's text format, for the node
exporter's textfile collector (deploys/monitoring.py runs it on a timer).

Per app: each declared container running (and not unhealthy) and its restart count, the
last successful backup, the last run's result, the off-site check, the last changes (releases,
rollbacks, restores, maintenance: onebox.server.events) the dashboard marks; for the server: pending
security updates and a pending reboot; on a swarm manager, each node ready or not. Written
atomically: a scrape never reads half a file.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from onebox import contract
from onebox.server import basics, docker, docker_state, events, exporters, reports, slots, swarm
from onebox.server.backup import config as backup
from onebox.server.backup import docker as backup_docker
from onebox.server.backup import pitr
from onebox.server.basics import OneboxError
from onebox.server.model import App, registered_apps

REBOOT_REQUIRED = Path("/run/reboot-required")
UPDATES_CACHE = Path(contract.STATE_ROOT) / "security-updates"  # apt's simulation costs a second: once in 10 minutes
UPDATES_CACHE_SECONDS = 600
HELP = {
    "onebox_container_up": "1 when the container runs and is not unhealthy",
    "onebox_container_restarts_total": "Docker's restart count of the container",
    "onebox_release_live_timestamp_seconds": "when the live release was made",
    "onebox_event_timestamp_seconds": "when a release, rollback, restore or maintenance on/off happened (the last ones)",
    "onebox_backup_last_success_timestamp_seconds": "when the last backup run succeeded",
    "onebox_backup_configured_timestamp_seconds": "when scheduled backups were set up",
    "onebox_backup_max_age_seconds": "backup_max_age_hours, in seconds",
    "onebox_backup_last_run_ok": "1 when the last backup run succeeded, 0 when it failed",
    "onebox_restic_check_ok": "0 when the last restic check of the off-site repository failed",
    "onebox_pitr_last_archived_timestamp_seconds": "when PostgreSQL last archived a WAL segment (point-in-time recovery)",
    "onebox_pitr_archive_lag_seconds": "how long the oldest write not yet archived has waited (0: all archived)",
    "onebox_pitr_archive_failing": "1 when PostgreSQL's last attempt to archive WAL failed",
    "onebox_security_updates_pending": "security updates apt would install",
    "onebox_reboot_required": "1 when an installed update needs a reboot",
    "onebox_swarm_node_up": "1 when the swarm node is ready, as its manager sees it",
    "onebox_metrics_timestamp_seconds": "when these metrics were written",
}


def sample(name: str, value: float, **labels: str) -> tuple[str, str]:
    rendered = ",".join(f'{key}="{escape(label)}"' for key, label in sorted(labels.items()))
    number = str(int(value)) if float(value).is_integer() else repr(float(value))  # a timestamp keeps its seconds
    return name, f"{name}{{{rendered}}} {number}" if labels else f"{name} {number}"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def app_samples(app: App) -> list[tuple[str, str]]:
    state = app.load_state()
    record = app.record(state.live)
    expected = set(app.spec.dependencies)
    running = docker_state.containers(app.name)
    if record and state.slot:
        expected |= app.slot_services(record)
        running += slots.containers(app, state.slot)
    found = {item.service: item for item in running}
    out = []
    for service in sorted(expected):
        item = found.get(service)
        out.append(sample("onebox_container_up", 1 if item and item.up else 0, app=app.name, service=service))
    restarts = restart_counts([found[s].id for s in expected if s in found and found[s].id])
    for service in sorted(expected):
        if service in found and found[service].id in restarts:
            out.append(sample("onebox_container_restarts_total", restarts[found[service].id], app=app.name,
                              service=service))
    if record:
        made = datetime.strptime(record.created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        out.append(sample("onebox_release_live_timestamp_seconds", int(made.timestamp()), app=app.name,
                          release=record.id))
    out += [sample(name, value, **labels) for name, value, labels in events.samples(app)]
    return out + backup_samples(app) + pitr_samples(app)


def restart_counts(ids: list[str]) -> dict[str, int]:
    """Container ID (as `docker ps` shortens it) -> Docker's RestartCount."""
    if not ids:
        return {}
    result = basics.run(docker.restart_counts(*ids), check=False)
    counts = {}
    for line in result.stdout.splitlines():
        full, count = line.split()
        short = next((i for i in ids if full.startswith(i)), None)
        if short:
            counts[short] = int(count)
    return counts


def backup_samples(app: App) -> list[tuple[str, str]]:
    if not app.spec.backup_before_release:  # backups off for this app
        return []
    out = [sample("onebox_backup_max_age_seconds", app.spec.backup_max_age_hours * 3600, app=app.name)]
    success, installed = Path(app.files.last_backup_success()), Path(app.files.backup_installed())
    if success.is_file():
        out.append(sample("onebox_backup_last_success_timestamp_seconds", int(success.read_text().strip()), app=app.name))
    if installed.is_file():
        out.append(sample("onebox_backup_configured_timestamp_seconds", int(installed.stat().st_mtime), app=app.name))
    last_run = basics.read_json(Path(app.files.last_backup_run()), None)
    if isinstance(last_run, dict):
        out.append(sample("onebox_backup_last_run_ok", 1 if last_run.get("result") == "ok" else 0, app=app.name,
                          unit=f"{app.files.backup_unit}.service"))
    out.append(sample("onebox_restic_check_ok", 0 if Path(app.files.restic_check_failed()).exists() else 1, app=app.name))
    return out


def pitr_samples(app: App) -> list[tuple[str, str]]:
    """The archive's state from pg_stat_archiver: what a disaster now would lose is the lag."""
    try:
        config = backup.Config.read(app.files.backup_config)
    except OneboxError:
        return []
    pg = backup_docker.container(config, "postgres") if config.pitr_enabled else None
    if pg is None:
        return []
    state = pitr.archiver(config, pg)
    last, out = state["last_archived"], []
    if last:
        out.append(sample("onebox_pitr_last_archived_timestamp_seconds", last, app=app.name))
    lag = int(pitr.archive_lag(state, time.time()))
    return out + [sample("onebox_pitr_archive_lag_seconds", lag, app=app.name),
                  sample("onebox_pitr_archive_failing", 1 if state["last_failed"] > last else 0, app=app.name)]


def security_updates(cache: Path = UPDATES_CACHE) -> int:
    try:
        if time.time() - cache.stat().st_mtime < UPDATES_CACHE_SECONDS:
            return int(cache.read_text().strip())
    except (OSError, ValueError):
        pass
    count = reports.security_updates()
    basics.write_atomic(cache, f"{count}\n", mode=0o644)
    return count


def server_samples() -> list[tuple[str, str]]:
    return [sample("onebox_security_updates_pending", security_updates()),
            sample("onebox_reboot_required", 1 if REBOOT_REQUIRED.exists() else 0),
            sample("onebox_metrics_timestamp_seconds", int(time.time()))]


def swarm_samples() -> list[tuple[str, str]]:
    """On a swarm manager, each node's state: what the alert saying a node is lost (and, resolved,
    that it is back) reads. Nothing elsewhere: a worker runs no collector, a single server no swarm."""
    if not swarm.is_manager():
        return []
    return [sample("onebox_swarm_node_up", 1 if node.ready else 0, node=node.name, role=node.role, address=node.address)
            for node in swarm.node_states()]


def text(samples: list[tuple[str, str]]) -> str:
    """Prometheus's text format: each metric's HELP and TYPE once, then its samples."""
    lines = []
    for name in dict.fromkeys(name for name, _ in samples):
        lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}"]
        lines += [line for other, line in samples if other == name]
    return "\n".join(lines) + "\n"


def live_apps(registry: str = contract.APPS_FILE) -> list[App]:
    """The apps the converge registered and did not retire, each loaded (one not deployed yet
    is left out, with a line on stderr, so it hides none of the others)."""
    apps = []
    for name, entry in registered_apps(registry).items():
        if entry.removed:
            continue
        try:
            apps.append(App(Path(entry.dir)))
        except OneboxError as error:
            basics.log(f"app {name}: {error}")
    return apps


def write(textfile: Path, targets_dir: Path | None = None, registry: str = contract.APPS_FILE) -> None:
    """The textfile; with `targets_dir`, the exporters' targets too (onebox.server.exporters)."""
    apps, samples = live_apps(registry), []
    for app in apps:
        try:
            samples += app_samples(app)
        except OneboxError as error:
            basics.log(f"app {app.name}: {error}")
    try:
        samples += swarm_samples()
    except (OneboxError, ValueError) as error:  # Docker not answering: the rest is still worth writing
        basics.log(f"swarm nodes: {error}")
    samples += server_samples()
    basics.write_atomic(textfile, text(samples), mode=0o644)
    if targets_dir:
        exporters.refresh(apps, targets_dir)
