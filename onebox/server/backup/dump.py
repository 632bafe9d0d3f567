"""Taking a backup: one directory in backup_dir that appears only when complete."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from typing import Any

from onebox.server.backup.config import MANIFEST, PG_FILE, REDIS_FILE, Config
from onebox.server.backup.docker import container, require_container, volume_exists
from onebox.server.backup.postgres import dump_postgres
from onebox.server.backup.redis import snapshot_redis
from onebox.server.backup.sets import BackupSet, check_label, sha256
from onebox.server.basics import log


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def running_services(config: Config) -> dict[str, str]:
    """The enabled services' running containers; a service with data but no running
    container fails (its data would be missing from the backup)."""
    found = {}
    for service, enabled in (("postgres", config.postgres_enabled), ("redis", config.redis_enabled)):
        if not enabled:
            continue
        container_id = container(config, service)
        if container_id is None:
            if volume_exists(f"{config.app_name}_{service}-data"):
                require_container(config, service)  # data but no running container: raises with the explanation
            log(f"no {service} data yet in project {config.app_name} (no container, no volume)")
        else:
            found[service] = container_id
    return found


def take_backup(config: Config, label: str) -> BackupSet | None:
    """One complete backup set in backup_dir, or None when there is nothing to back up yet."""
    check_label(label)
    found = running_services(config)
    pg, redis = found.get("postgres"), found.get("redis")
    if not pg and not redis:
        log("nothing to back up yet")
        return None
    root = config.backup_path
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    while True:  # names have a resolution of one second
        created = now_utc().replace(microsecond=0)
        name = f"{created.strftime('%Y%m%dT%H%M%SZ')}-{label}"
        final = root / name
        if not final.exists():
            break
        time.sleep(0.5)
    partial = root / f".partial-{name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    try:
        files: dict[str, dict[str, Any]] = {}
        started = time.monotonic()
        if pg:
            dump_postgres(config, pg, partial / PG_FILE)
            files[PG_FILE] = {}
        if redis:
            snapshot_redis(redis, partial / REDIS_FILE)
            files[REDIS_FILE] = {}
        for file_name in files:
            path = partial / file_name
            files[file_name] = {"size": path.stat().st_size, "sha256": sha256(path)}
        manifest = {
            "name": name, "label": label, "app_name": config.app_name, "created": created.isoformat(),
            "postgres_user": config.postgres_user, "postgres_db": config.postgres_db, "files": files,
            "seconds": round(time.monotonic() - started, 2),
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    backup = BackupSet(final)
    log(f"backup {name} written to {final} ({backup.size / 1e6:.1f} MB)")
    return backup
