"""Settings of the backup role (deploys/backup.py): scheduled dumps, retention, off-site copies."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from onebox.settings.types import PositiveInt, directory_problem

# systemd OnCalendar expressions: plain characters only (checked on the server by `systemd-analyze calendar`).
CALENDAR_RE = re.compile(r"^[A-Za-z0-9*:.,/~ -]+\Z")
# Off-site repositories restic reaches without extra setup: S3-compatible, SFTP, REST server.
REPOSITORY_RE = re.compile(r"^(s3:https?://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._/-]+"
                           r"|sftp:[A-Za-z0-9._@-]+:[A-Za-z0-9._/~-]+"
                           r"|rest:https?://[A-Za-z0-9.:-]+(/[A-Za-z0-9._/-]*)?)\Z")


class BackupSettings(BaseModel):
    backup_enabled: bool
    backup_dir: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]+$")]
    backup_on_calendar: str
    backup_keep_last: Annotated[int, Field(ge=1, le=100)]
    backup_keep_daily: Annotated[int, Field(ge=0, le=366)]
    backup_keep_weekly: Annotated[int, Field(ge=0, le=260)]
    backup_max_age_hours: PositiveInt
    backup_restic_repository: str | None
    backup_s3_region: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    backup_restic_check_interval_days: PositiveInt
    # The server's identity off-site (restic's --host); None: the inventory's host name.
    backup_server_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")] | None = None
    # Point-in-time recovery with pgBackRest (onebox/pitr.py): WAL archived as it is written.
    backup_pitr_enabled: bool = False
    backup_pitr_full_every_days: Annotated[int, Field(ge=1, le=90)] = 7
    backup_pitr_keep_full: Annotated[int, Field(ge=1, le=52)] = 2
    backup_pitr_archive_timeout: Annotated[int, Field(ge=10, le=60)] = 60
    # A CA bundle on this machine that signs the S3 server's HTTPS certificate (a private S3 server).
    backup_s3_ca_bundle: str | None = None

    # --- secrets: environment or the git-ignored secrets file only (ONEBOX_BACKUP_...) ---
    backup_restic_password: SecretStr | None = None
    backup_s3_access_key_id: SecretStr | None = None
    backup_s3_secret_access_key: SecretStr | None = None

    @field_validator("backup_dir")
    @classmethod
    def _own_directory(cls, value: str) -> str:
        if value.rstrip("/").count("/") < 2 or ".." in value.split("/"):
            raise ValueError(f"{value!r} is not a directory of its own; use e.g. '/var/backups/onebox'")
        # Every converge re-owns it root:700: a system directory, or one holding the SSH keys, would lock
        # out its users (e.g. /etc/ssh, /var/lib).
        problem = directory_problem(value, "/var/backups/onebox")
        if problem:
            raise ValueError(problem)
        return str(PurePosixPath(value))

    @field_validator("backup_on_calendar")
    @classmethod
    def _calendar(cls, value: str) -> str:
        if not CALENDAR_RE.match(value):
            raise ValueError("not a systemd OnCalendar expression such as '*-*-* 03:15:00' or 'daily'")
        return value

    @field_validator("backup_restic_repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        scheme, _, rest = (value or "").partition(":")
        if scheme in ("rest", "s3") and "@" in rest.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError(f"the {scheme}: URL carries a user or password (USER:PASSWORD@HOST), which `onebox-backup "
                             "list` and errors would show; give it without them, e.g. 'rest:https://HOST/PATH', and "
                             "keep credentials in the secrets (environment or the secrets file): restic reads a REST "
                             "server's from RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD, which onebox does not pass "
                             "yet, so use a REST server without HTTP authentication (e.g. on a private network) or an "
                             "s3: repository with ONEBOX_BACKUP_S3_ACCESS_KEY_ID / ONEBOX_BACKUP_S3_SECRET_ACCESS_KEY")
        if value and not REPOSITORY_RE.match(value):
            raise ValueError("expected 's3:http(s)://HOST[:PORT]/BUCKET[/PATH]', 'sftp:USER@HOST:/PATH' "
                             "or 'rest:https://HOST/PATH'")
        return value or None

    @field_validator("backup_restic_password", "backup_s3_access_key_id", "backup_s3_secret_access_key")
    @classmethod
    def _one_line(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if any(char in value.get_secret_value() for char in "\r\n\x00"):
            raise ValueError("must be a single line")
        return value

    @model_validator(mode="after")
    def _pitr_reachable(self) -> BackupSettings:
        if self.backup_s3_ca_bundle and not Path(self.backup_s3_ca_bundle).is_file():
            raise ValueError(f"backup_s3_ca_bundle {self.backup_s3_ca_bundle!r} is not a file on this machine; give "
                             "the PEM file of the CA that signs the S3 server's certificate, or None")
        if not self.backup_pitr_enabled:
            return self
        if not self.backup_enabled:
            raise ValueError("backup_pitr_enabled needs backup_enabled = True (the backup timer takes pgBackRest's "
                             "base backups); turn both on, or backup_pitr_enabled off")
        repository = self.backup_restic_repository
        if repository and not repository.startswith("s3:https://"):
            raise ValueError(f"backup_pitr_enabled: the off-site repository {repository!r} is not an S3 bucket over "
                             "HTTPS, the only off-site store pgBackRest 2.55 reaches; use 's3:https://HOST/BUCKET' "
                             "(the WAL then goes there too, beside restic's copies), or turn backup_pitr_enabled off")
        return self

    @model_validator(mode="after")
    def _offsite_secrets(self) -> BackupSettings:
        repository = self.backup_restic_repository
        if not (self.backup_enabled and repository):
            return self
        if self.backup_restic_password is None:
            raise ValueError("backup_restic_repository is set but ONEBOX_BACKUP_RESTIC_PASSWORD is not: supply the "
                             "repository's encryption password (and keep a copy away from the server)")
        password = self.backup_restic_password.get_secret_value()
        if len(password) < 16:
            raise ValueError("ONEBOX_BACKUP_RESTIC_PASSWORD: use at least 16 random characters")
        if repository.startswith("s3:") and (self.backup_s3_access_key_id is None
                                             or self.backup_s3_secret_access_key is None):
            raise ValueError("backup_restic_repository is an S3 repository: supply ONEBOX_BACKUP_S3_ACCESS_KEY_ID "
                             "and ONEBOX_BACKUP_S3_SECRET_ACCESS_KEY")
        return self
