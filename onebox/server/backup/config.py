"""The configuration (/etc/onebox/backup.json: contract.BackupConfig) and the names backups use."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from onebox import contract
from onebox.server.basics import OneboxError

CONFIG_ENV = "ONEBOX_BACKUP_CONFIG"
SAFETY_LABEL = "pre-restore"
SCHEDULED_LABEL = "scheduled"
RESTIC_TAG = "onebox"
NAME_TAG = "set="
APP_TAG = "app="  # off-site snapshots: restic host = the server's identity (server_name), tag app=<app_name>
LAST_CHECK = "last-check"  # in state_dir: when restic last checked the off-site repository
MANIFEST = "manifest.json"
PG_FILE = "postgres.dump"
REDIS_FILE = "redis.rdb"


class BackupError(OneboxError):
    """A failure with a message for the operator; the command exits 1 with it."""


@dataclasses.dataclass(frozen=True)
class Config(contract.BackupConfig):
    """The configuration as the contract loads it (every field checked, its defaults the
    contract's), and the file it came from (messages name it)."""

    path: str = contract.BACKUP_CONFIG

    @classmethod
    def read(cls, path: str) -> Config:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise BackupError(f"no configuration at {path}: run the onebox deploy (deploys/backup.py) first") from None
        except OSError as error:
            raise BackupError(f"cannot read the configuration {path}: {error}") from None
        try:
            loaded = contract.load_backup_config(text, path)
        except contract.ContractError as error:
            raise BackupError(str(error)) from None
        return cls(**{field.name: getattr(loaded, field.name) for field in dataclasses.fields(loaded)}, path=path)

    @property
    def backup_path(self) -> Path:
        return Path(self.backup_dir)

    @property
    def project_path(self) -> Path:
        """The app's directory; a file written before 0.3.0 names none (and has point-in-time recovery off)."""
        if self.project_dir is None:
            raise BackupError(f"{self.path} lacks project_dir: converge the server again (deploys/site.py)")
        return Path(self.project_dir)

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
        return contract.parse_secret_env(path.read_text())
