"""The off-site copy: a restic repository (S3, REST or SFTP), its secrets handed to
restic through its environment only."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from onebox import contract
from onebox.server.backup.config import APP_TAG, LAST_CHECK, MANIFEST, NAME_TAG, RESTIC_TAG, BackupError, Config
from onebox.server.backup.sets import BackupSet, local_sets
from onebox.server.basics import OneboxError, log, run, write_atomic

NOT_INITIALISED = ("does not exist", "Is there a repository", "no such file")
# Looked for in restic's error with the repository's URL taken out: its port may read "40343".
UNREACHABLE = ("dial tcp", "connection refused", "no such host", "timeout", "certificate", "403", "Forbidden")


class Restic:
    def __init__(self, config: Config) -> None:
        if not config.restic_repository:
            raise BackupError("no off-site repository is configured (backup_restic_repository)")
        self.repository: str = config.restic_repository
        secrets = config.secrets()
        if not secrets.get(contract.RESTIC_PASSWORD):
            raise BackupError(f"the restic password is missing from {config.secrets_file} "
                              "(supply ONEBOX_BACKUP_RESTIC_PASSWORD to the deploy)")
        cache = Path(config.restic_cache_dir)
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        # restic sees this environment alone: nothing of ours (another RESTIC_* or AWS_*) leaks in.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "RESTIC_REPOSITORY": config.restic_repository,
            "RESTIC_CACHE_DIR": str(cache),
            # A known region spares the bucket-location lookup, which restic 0.18 retries for
            # minutes when the bucket does not exist yet (before `restic init` creates it).
            "AWS_DEFAULT_REGION": str(config.s3_region),
            **{key: value for key, value in secrets.items() if key in contract.BACKUP_SECRET_NAMES},
        }
        if config.s3_ca_file:  # backup_s3_ca_bundle: a private S3 server's CA
            self.env["RESTIC_CACERT"] = config.s3_ca_file
        self.config = config

    def __call__(self, *args: str, what: str | None = None) -> str:
        return run(["restic", "--quiet", *args], env=self.env, inherit_env=False,
                   what=what or f"restic {args[0]}").stdout

    def reachable(self, pauses: tuple[float, ...] = (1, 3)) -> None:
        """Fail in seconds when an S3 or REST server does not answer at all: restic itself
        retries a refused connection for 15 minutes before it gives up."""
        repository = self.repository
        scheme, _, url = repository.partition(":")
        if scheme not in ("s3", "rest"):
            return  # sftp: the host may be an alias in root's ssh config
        parts = urlsplit(url)
        address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        for pause in (*pauses, None):
            try:
                socket.create_connection(address, timeout=10).close()
                return
            except OSError as error:
                if pause is None:
                    raise BackupError(f"the off-site repository {repository} is unreachable "
                                      f"({address[0]}:{address[1]}: {error.strerror or error})") from None
                time.sleep(pause)

    def ensure_repository(self) -> None:
        """Initialise the repository on first use (`init` refuses an existing one, never overwrites)."""
        self.reachable()
        try:
            self("cat", "config", what="opening the off-site repository")
        except OneboxError as error:
            reason = str(error).replace(self.repository, "<backup_restic_repository>")
            if not any(sign in reason for sign in NOT_INITIALISED):
                raise
            if any(sign in reason for sign in UNREACHABLE):
                raise BackupError(f"the off-site repository is unreachable: {reason}") from None
            log("initialising the off-site repository (restic init)")
            try:
                self("init", what="restic init")
            except OneboxError as init_error:
                raise BackupError(f"{reason}; and {init_error}".replace(
                    self.repository, "<backup_restic_repository>")) from None

    @property
    def host(self) -> str:
        """The server's identity, restic's --host of this server's snapshots: the same after a rebuild
        of the server (the inventory's host name), distinct for two servers sharing a repository."""
        if not self.config.server_name:
            raise BackupError(f"{self.config.path} lacks server_name: converge the server again (deploys/site.py)")
        return str(self.config.server_name)

    @property
    def app_tag(self) -> str:
        return APP_TAG + self.config.app_name

    def _listing(self, host: str, tags: str) -> list[dict[str, Any]]:
        listing = json.loads(self("snapshots", "--json", "--host", host, "--tag", tags) or "[]")
        for snapshot in listing:
            names = [tag[len(NAME_TAG):] for tag in snapshot.get("tags") or [] if tag.startswith(NAME_TAG)]
            snapshot["onebox_name"] = names[0] if names else None
        return sorted(listing, key=lambda s: s["time"])

    def snapshots(self) -> list[dict[str, Any]]:
        """This server's snapshots of this app, oldest first (`--tag a,b`: both tags)."""
        return self._listing(self.host, f"{RESTIC_TAG},{self.app_tag}")

    def servers_with_app(self) -> list[str]:
        """Every server (restic host) holding snapshots of this app, this one included: what a
        replacement server that lost its old name is told to take over (backup_server_name)."""
        listing = json.loads(self("snapshots", "--json", "--tag", f"{RESTIC_TAG},{self.app_tag}") or "[]")
        return sorted({str(s.get("hostname")) for s in listing if s.get("hostname")})

    def legacy_snapshots(self) -> list[dict[str, Any]]:
        """Snapshots uploaded by onebox 0.1, told apart by app name only (restic host =
        app_name, no app= tag): still listed and restorable, never pruned by this server."""
        return [s for s in self._listing(self.config.app_name, RESTIC_TAG)
                if not any(tag.startswith(APP_TAG) for tag in s.get("tags") or [])]

    def upload(self, backup: BackupSet) -> None:
        local_time = backup.created.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        self("backup", "--host", self.host, "--tag", RESTIC_TAG, "--tag", self.app_tag, "--tag", NAME_TAG + backup.name,
             "--time", local_time, str(backup.path), what=f"restic backup of {backup.name}")
        log(f"uploaded {backup.name} off-site")

    def forget(self) -> None:
        """Retention of this server's snapshots of this app only: another server sharing the repository
        (staging beside production), or another app, keeps its own."""
        c = self.config
        self("forget", "--host", self.host, "--tag", f"{RESTIC_TAG},{self.app_tag}", "--group-by", "host",
             "--keep-last", str(c.keep_last), "--keep-daily", str(c.keep_daily), "--keep-weekly", str(c.keep_weekly),
             "--prune", what="restic forget --prune")
        log("off-site retention applied (restic forget --prune)")

    def check(self) -> None:
        failed = self.config.state_path / contract.RESTIC_CHECK_FAILED  # read by monitoring (OneboxResticCheckFailed)
        try:
            self("check", what="restic check")
        except BackupError:
            write_atomic(failed, f"{int(time.time())}\n", 0o644)
            raise
        failed.unlink(missing_ok=True)
        write_atomic(self.config.state_path / LAST_CHECK, f"{int(time.time())}\n", 0o644)
        log("off-site repository checked (restic check)")

    def download(self, snapshot: dict[str, Any], into: Path) -> BackupSet:
        self("restore", snapshot["id"], "--target", str(into), what=f"restic restore of {snapshot['onebox_name']}")
        found = [path.parent for path in into.rglob(MANIFEST)]
        if len(found) != 1:
            raise BackupError(f"off-site snapshot {snapshot['short_id']} holds {len(found)} backups; expected one")
        return BackupSet(found[0])


def offsite_sync(config: Config) -> None:
    restic = Restic(config)
    restic.ensure_repository()
    present = {s["onebox_name"] for s in restic.snapshots()}
    for backup in local_sets(config):
        if backup.name not in present:
            restic.upload(backup)
    restic.forget()
    last_check = config.state_path / LAST_CHECK
    interval = float(config.restic_check_interval_days) * 86400
    checked = float(last_check.read_text().strip()) if last_check.is_file() else 0.0
    if time.time() - checked >= interval - 3600:  # an hour's slack: a daily timer drifts
        restic.check()
