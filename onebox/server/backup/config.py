"""The configuration (/etc/onebox/backup.json), its defaults, and the names backups use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from onebox import contract
from onebox.server.basics import OneboxError

CONFIG_ENV = "ONEBOX_BACKUP_CONFIG"
SAFETY_LABEL = "pre-restore"
SCHEDULED_LABEL = "scheduled"
RESTIC_TAG = "onebox"
NAME_TAG = "set="
APP_TAG = "app="  # off-site snapshots: restic host = the server's identity (server_name), tag app=<app_name>
PITR_READY = "pitr-ready"  # in state_dir: the pitr_fingerprint of the last setup that succeeded
MANIFEST = "manifest.json"
PG_FILE = "postgres.dump"
REDIS_FILE = "redis.rdb"
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "postgres_enabled": True,
    "redis_enabled": True,
    "postgres_user": "postgres",
    "postgres_db": "postgres",
    "backup_dir": "/var/backups/onebox",
    "state_dir": contract.BACKUP_STATE_DIR,
    "secrets_file": "/etc/onebox/backup.env",
    "keep_last": 3,
    "keep_daily": 7,
    "keep_weekly": 4,
    "restic_repository": None,
    "server_name": None,  # the server's identity off-site (backup_server_name, else the inventory host name)
    "s3_region": "us-east-1",
    "restic_cache_dir": "/var/cache/onebox-backup",
    "restic_check_interval_days": 7,
    "release_tool": contract.RELEASE_COMMAND,
    "app_dir": None,  # the app's directory, for the release tool (None: the server's only app)
    "start_timeout": 300,
    "lock_timeout": 3600,
    "s3_ca_file": None,  # backup_s3_ca_bundle on the server (restic's RESTIC_CACERT)
    # Point-in-time recovery (onebox/server/backup/pitr.py); absent from a 0.2 configuration: off.
    "pitr_enabled": False,
    "pitr_offsite": False,  # repo2: the off-site S3 bucket
    "pitr_full_every_days": 7,
    "pitr_fingerprint": None,  # written to pitr-ready by a setup that succeeded (the converge compares it)
    "project_dir": None,  # the app's directory (its deps.compose.yaml): the restore runs pgBackRest from it
}


class BackupError(OneboxError):
    """A failure with a message for the operator; the command exits 1 with it."""


class Config:
    def __init__(self, path: str) -> None:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise BackupError(f"no configuration at {path}: run the onebox deploy (deploys/backup.py) first") from None
        except (OSError, ValueError) as error:
            raise BackupError(f"cannot read the configuration {path}: {error}") from None
        if not isinstance(data, dict):
            raise BackupError(f"{path} is not a JSON object")
        unknown = set(data) - set(DEFAULTS) - {"app_name"}
        if unknown:
            raise BackupError(f"unknown key(s) in {path}: {', '.join(sorted(unknown))}")
        if not data.get("app_name"):
            raise BackupError(f"{path} lacks app_name")
        self.values = {**DEFAULTS, **data}
        self.path = path

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def backup_path(self) -> Path:
        return Path(self.backup_dir)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def secrets(self) -> dict[str, str]:
        """KEY=VALUE lines of the root-only secrets file (values taken verbatim)."""
        path = Path(self.secrets_file)
        if not path.exists():
            return {}
        if path.stat().st_mode & 0o077:
            raise BackupError(f"{path} is readable by others than root; `chmod 600 {path}` (and change the secrets)")
        values = {}
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value
        return values
