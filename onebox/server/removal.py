"""Taking an app off the server: `retire` when the settings name it in apps_removed (its
containers stop, its data stays), `purge` when the operator confirms the data goes too."""

from __future__ import annotations

import shutil
from pathlib import Path

from onebox import contract
from onebox.server import basics, deps, docker, port_map, slots
from onebox.server.basics import OneboxError, log
from onebox.server.model import App, registered_apps


def retire(app: App) -> None:
    """Every container of the app stops and goes, both slots and the dependencies. Volumes,
    secrets, releases and backups stay until a purge."""
    for slot in contract.SLOTS:
        slots.stop(app, slot, None)
    port_map.remove(app)
    basics.run(deps.compose_argv(app, "down"), capture=False, check=False, what="stopping the dependencies")
    log(f"app {app.name} is retired: no container runs; its data stays in its volumes and {app.dir}")


def purge(app: App, registry: str = contract.APPS_FILE) -> None:
    """Delete a retired app's data for good: volumes, network, directory, backups, its registry entry."""
    apps = registered_apps(registry)
    entry = apps.get(app.name)
    if entry is None or not entry.removed:
        raise basics.UsageError(f"app {app.name} is not taken off this server: name it in apps_removed and deploy "
                                "first (that stops it), then purge")
    inside = [name for name, other in apps.items() if name != app.name and Path(other.dir).is_relative_to(app.dir)]
    if inside:
        raise OneboxError(f"app {', '.join(inside)} lives inside {app.dir}: move it before purging {app.name}")
    retire(app)
    basics.run(deps.compose_argv(app, "down", "--volumes"), capture=False, check=False, what="removing the volumes")
    # `down --volumes` removes the volumes the current compose file names: the WAL archive's stays
    # when point-in-time recovery was turned off before the purge.
    basics.run(docker.volume_rm(contract.compose.volume(app.name, contract.compose.PITR_REPO_VOLUME)), check=False)
    basics.run(docker.network_rm(contract.compose.network(app.name)), check=False)
    for image in sorted({record.image for record in app.records()}):
        basics.run(docker.image_rm(image), check=False)
    if app.files.key is None:  # the one app of a former single-app server: its backups share the root
        doomed: list[str | None] = [str(app.dir)]
        log(f"its backups in {_backup_dir(app)} are left: other apps' backups live below that directory")
    else:
        doomed = [_backup_dir(app), app.files.backup_state_dir, app.files.maintenance_dir(), str(app.dir)]
    for path in doomed:
        if path and Path(path).exists():
            log(f"deleting {path}")
            shutil.rmtree(path)
    Path(app.files.backup_config).unlink(missing_ok=True)
    Path(app.files.backup_secrets).unlink(missing_ok=True)
    del apps[app.name]
    basics.write_atomic(Path(registry), contract.apps_text(apps), mode=0o644)
    log(f"app {app.name} is purged: its data and backups are gone")


def _backup_dir(app: App) -> str | None:
    """Where the app's backups are, as its backup.json says (read as onebox-backup reads it); None without one."""
    path = app.files.backup_config
    try:
        return contract.load_backup_config(Path(path).read_text(), path).backup_dir
    except FileNotFoundError:
        return None
    except (OSError, contract.ContractError) as error:
        raise OneboxError(f"cannot read {path} ({error}): its backups were left") from None
