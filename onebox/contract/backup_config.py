"""backup.json (contract.BACKUP_CONFIG, or an app's AppFiles.backup_config): what onebox-backup
needs of the settings, without a secret. The controller writes it (deploys/backup.py) with
backup_config_text; the server reads it (onebox/server/backup/config.py) with load_backup_config.
Standard library only (the server's zipapp carries it)."""

from __future__ import annotations

import dataclasses
import json

from onebox.contract.documents import ContractError, json_object, load_checked, message_version
from onebox.contract.layout import RESTIC_CACHE_DIR

# Raise it with every change of the shape below that an older server program cannot read; the
# server refuses other versions. A file without a version was written by onebox 0.3.0 or before:
# version 1 (an upgraded controller converges such a server, and the backup timer may run the new
# server program before that converge rewrites the file).
BACKUP_CONFIG_VERSION = 1

CONVERGE_HINT = "converge the server with this onebox: pyinfra INVENTORY deploys/site.py"


@dataclasses.dataclass(frozen=True)
class BackupConfig:
    """Every value comes from the settings (onebox/defaults.py holds their defaults): the fields
    without a default here are those every onebox since 0.2.0 wrote."""

    app_name: str
    enabled: bool
    app_dir: str | None  # the app's directory for the release tool (None: the server's only app)
    postgres_enabled: bool
    redis_enabled: bool
    postgres_user: str
    postgres_db: str
    backup_dir: str
    state_dir: str
    secrets_file: str
    keep_last: int
    keep_daily: int
    keep_weekly: int
    restic_repository: str | None
    server_name: str | None  # the server's identity off-site (backup_server_name, else the inventory host name)
    s3_region: str
    restic_check_interval_days: int
    release_tool: str
    start_timeout: int
    version: int = BACKUP_CONFIG_VERSION
    # Added by 0.3.0 (ADDED_BACKUP_FIELDS): their defaults say what a file written before meant.
    s3_ca_file: str | None = None  # backup_s3_ca_bundle on the server (restic's RESTIC_CACERT)
    pitr_enabled: bool = False  # point-in-time recovery (onebox/server/backup/pitr.py)
    pitr_offsite: bool = False  # repo2: the off-site S3 bucket
    pitr_full_every_days: int = 7  # read only with pitr_enabled, which a file without it never has
    pitr_fingerprint: str | None = None  # written to pitr-ready by a setup that succeeded (the converge compares it)
    project_dir: str | None = None  # the app's directory (its deps.compose.yaml): the restore runs pgBackRest from it
    # No setting for these: the controller writes the contract's values as they are, and a file of
    # 0.3.0, which has neither, reads the same.
    restic_cache_dir: str = RESTIC_CACHE_DIR
    lock_timeout: int = 3600


# Fields a file of version 1 may lack (written before they existed); the others are required.
ADDED_BACKUP_FIELDS = ("s3_ca_file", "pitr_enabled", "pitr_offsite", "pitr_full_every_days", "pitr_fingerprint",
                       "project_dir", "restic_cache_dir", "lock_timeout")


def backup_config_text(config: BackupConfig) -> str:
    """The controller's one writer of backup.json."""
    return json.dumps(dataclasses.asdict(config), indent=2) + "\n"


def load_backup_config(text: str, path: str) -> BackupConfig:
    """The server's one reader of backup.json (`path` names it in errors): every field checked."""
    data = json_object(text, path)
    # None: written by onebox 0.3.0 or before, which is version 1.
    version = message_version(data, BACKUP_CONFIG_VERSION, path, "onebox-backup", CONVERGE_HINT)
    config: BackupConfig = load_checked(BackupConfig, {**data, "version": version}, path)
    if not config.app_name:  # every name the backups use starts with it
        raise ContractError(f"{path}.app_name: empty")
    return config


# --- the app's backup secrets (AppFiles.backup_secrets, root only) ------------------------------
# The off-site copies' secrets as restic reads them from its environment: NAME=value lines, the
# value verbatim to the end of the line. The converge writes them with secret_env_text (pgBackRest's
# environment file too); onebox-backup reads them with parse_secret_env.

RESTIC_PASSWORD, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY = "RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
BACKUP_SECRET_NAMES = (RESTIC_PASSWORD, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)


def secret_env_text(values: dict[str, str | None]) -> str:
    """One NAME=value line per secret supplied (None left out)."""
    return "".join(f"{name}={value}\n" for name, value in values.items() if value is not None)


def parse_secret_env(text: str) -> dict[str, str]:
    """The NAME=value lines of secret_env_text (blank lines and # comments, an admin's, skipped)."""
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value
    return values
