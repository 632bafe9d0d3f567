"""Backups: a systemd timer runs /usr/local/sbin/onebox-backup (onebox/server/backup/),
which dumps PostgreSQL and Redis into a root-only directory, applies retention and, when
configured, keeps encrypted copies off-site with restic."""

from __future__ import annotations

import shlex
from io import StringIO
from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from onebox import contract, pitr, server_calls
from onebox.hosts import server_name
from onebox.operations import checked_file, install_packages, remove_unlisted, unlisted
from onebox.render import render, secret_env_lines
from onebox.settings import Settings

SCRIPT = contract.BACKUP_COMMAND  # installed by deploys/tools.py
SECRETS_DIR = contract.ETC_DIR  # each app's secrets file (contract.AppFiles.backup_secrets): backup.env, backup-<app>.env
RELEASE_TOOL = contract.RELEASE_COMMAND
UNIT_DIR = "/etc/systemd/system"


def installed_stamp(s: Settings) -> str:
    """Written once when backups are first configured: until the first run, the host check
    measures the backup's age from here."""
    return s.files.backup_installed()


def units(s: Settings) -> tuple[str, str]:
    """The app's backup timer and service."""
    return f"{s.files.backup_unit}.timer", f"{s.files.backup_unit}.service"


def backup_config(s: Settings, identity: str) -> contract.BackupConfig:
    """The app's backup configuration (contract.AppFiles.backup_config): everything the server
    script needs except secrets. `identity`: the server's name off-site (server_name())."""
    return contract.BackupConfig(
        enabled=s.backup_enabled,
        app_name=s.app_name,
        app_dir=s.app_dir if s.files.key else None,
        postgres_enabled=s.postgres_enabled,
        redis_enabled=s.redis_enabled,
        postgres_user=s.postgres_user,
        postgres_db=s.postgres_db,
        backup_dir=s.app_backup_dir,
        state_dir=s.files.backup_state_dir,
        secrets_file=s.files.backup_secrets,
        keep_last=s.backup_keep_last,
        keep_daily=s.backup_keep_daily,
        keep_weekly=s.backup_keep_weekly,
        restic_repository=s.backup_restic_repository,
        server_name=identity,
        s3_region=s.backup_s3_region,
        restic_check_interval_days=s.backup_restic_check_interval_days,
        release_tool=RELEASE_TOOL,
        start_timeout=s.app_health_timeout,
        s3_ca_file=f"{s.app_dir}/{pitr.CA_FILE}" if s.backup_s3_ca_bundle else None,
        pitr_enabled=pitr.enabled(s),
        pitr_offsite=pitr.enabled(s) and pitr.offsite_of(s.backup_restic_repository) is not None,
        pitr_full_every_days=s.backup_pitr_full_every_days,
        pitr_fingerprint=pitr.fingerprint(s, identity) if pitr.enabled(s) else None,
        project_dir=s.app_dir,
    )


def backup_secrets(s: Settings) -> str:
    """The app's secrets file (/etc/onebox/backup.env, or backup-<app>.env with several apps): the
    restic password and S3 keys of its off-site copies, as restic reads them from its environment."""
    if not (s.backup_enabled and s.backup_restic_repository):
        return ""
    return secret_env_lines({
        contract.RESTIC_PASSWORD: s.backup_restic_password,
        contract.S3_ACCESS_KEY_ID: s.backup_s3_access_key_id,
        contract.S3_SECRET_ACCESS_KEY: s.backup_s3_secret_access_key,
    })


def secrets_files(s: Settings) -> dict[str, str]:
    """Every app's secrets file and its content: each app its own, so that an app's off-site copies
    never depend on another app's settings."""
    return {app.files.backup_secrets: backup_secrets(app) for app in s.app_list}


def restore_refusal(confirm: str, source: str, name: str, offsite_configured: bool | None) -> str | None:
    """Why this restore must not run, or None. Checked before anything on the server changes.
    The arguments are deploys/restore.py's pyinfra data (onebox_restore_*), which `onebox restore` sets."""
    if confirm != "yes":
        return ("onebox: a restore REPLACES the server's PostgreSQL database and Redis data with a backup "
                "(a safety dump of the current data is taken first). Nothing was changed. To go ahead, run "
                "`onebox restore INVENTORY --from local|offsite [--name NAME] --yes`, or give deploys/restore.py "
                "the data --data onebox_restore_confirm=yes --data onebox_restore_from=local|offsite "
                "(optionally --data onebox_restore_name=<name from `onebox backup list`>).")
    if source not in contract.RESTORE_SOURCES:
        return (f"onebox: --from (onebox_restore_from) must be 'local' or 'offsite' (got {source!r}); "
                "nothing was changed.")
    if name:
        try:
            contract.check_backup_name(name)
        except ValueError as error:
            return f"onebox: --name (onebox_restore_name): {error}; nothing was changed."
    if source == "offsite" and offsite_configured is False:
        return ("onebox: --from offsite (onebox_restore_from=offsite) but backup_restic_repository is not set "
                "(with ONEBOX_BACKUP_RESTIC_PASSWORD); nothing was changed.")
    return None


@deploy("Configure backups")
def configure_backups(s: Settings) -> None:
    """The server's part once, then each app's: configuration, directories, timer."""
    if any(app.backup_enabled and app.backup_restic_repository for app in s.app_list):
        install_packages(name="Install restic from the distribution.", packages=["restic"])
    files.directory(name=f"Create {contract.ETC_DIR}.", path=contract.ETC_DIR, mode="755")
    files.directory(name=f"Create the backup directory {s.backup_dir} (root only).", path=s.backup_dir,
                    mode="700", user="root", group="root")
    secrets = secrets_files(s)
    for path, content in secrets.items():
        checked_file(name=f"Upload the off-site backup secrets {path} (root only).", dest=path, content=content,
                     mode="600")
    identity = server_name(s, host.name)
    for app in s.app_list:
        configure_app_backups(app, identity)
    # What no current app reads: a former single-app server's backup.env, a retired app's file.
    every_app = contract.AppFiles(contract.ANY_APP)
    remove_unlisted(SECRETS_DIR, PurePosixPath(every_app.backup_secrets).name, set(secrets), "the off-site backup secrets")
    kept = {f"{UNIT_DIR}/{unit}" for app in s.app_list if app.backup_enabled for unit in units(app)}
    for timer in (path for path in unlisted(UNIT_DIR, f"{every_app.backup_unit}.timer", kept)):
        server.shell(name=f"Stop and disable {timer} (no current app's).",
                     commands=[f"systemctl disable --now {shlex.quote(timer.rsplit('/', 1)[1])}"])
    removed = remove_unlisted(UNIT_DIR, f"{every_app.backup_unit}.*", kept, "the backup unit")
    systemd.daemon_reload(name="Reload systemd without the backup units of no current app.", _if=any_changed(*removed))


def configure_app_backups(s: Settings, identity: str) -> None:
    if s.app_backup_dir != s.backup_dir:
        files.directory(name=f"Create {s.app_backup_dir}, app {s.app_name}'s backups (root only).",
                        path=s.app_backup_dir, mode="700", user="root", group="root")
    files.directory(name=f"Create app {s.app_name}'s backup status directory (read by monitoring).",
                    path=s.files.backup_state_dir, mode="755", user="root", group="root")
    ca_bundle = pitr.ca_bundle(s)
    if ca_bundle:  # restic and pgBackRest trust it for the S3 server's certificate
        files.put(name=f"Upload the CA of app {s.app_name}'s S3 server (backup_s3_ca_bundle).",
                  src=StringIO(ca_bundle), dest=f"{s.app_dir}/{pitr.CA_FILE}", mode="644")
    else:
        files.file(name=f"No CA file for app {s.app_name}'s S3 server (backup_s3_ca_bundle unset).",
                   path=f"{s.app_dir}/{pitr.CA_FILE}", present=False)
    # The release tool runs `onebox-backup dump` before each release step: the configuration
    # exists even when backups are off (the dump then does nothing).
    config = s.files.backup_config
    checked_file(name=f"Write app {s.app_name}'s backup configuration (root only).", dest=config,
                 content=contract.backup_config_text(backup_config(s, identity)), mode="600",
                 check=server_calls.as_shell(server_calls.backup_config_check(config)))
    if s.backup_enabled:
        schedule_backups(s)
    else:
        unschedule_backups(s)


def schedule_backups(s: Settings) -> None:
    timer_name, service_name = units(s)
    files.file(name="Stamp when backups were first configured.", path=installed_stamp(s), present=True, touch=False,
               mode="644")
    service = files.put(name=f"Write {service_name}.", dest=f"{UNIT_DIR}/{service_name}", mode="644",
                        src=StringIO(render("systemd/onebox-backup.service.j2", s=s, script=SCRIPT)))
    timer = checked_file(name=f"Write {timer_name} (calendar checked by systemd-analyze).", dest=f"{UNIT_DIR}/{timer_name}",
                         content=render("systemd/onebox-backup.timer.j2", s=s),
                         check=f"systemd-analyze calendar {shlex.quote(s.backup_on_calendar)} >/dev/null")
    systemd.daemon_reload(name="Reload systemd for the backup units.", _if=any_changed(service, timer))
    systemd.service(name=f"Run {timer_name}.", service=timer_name, running=True, enabled=True)
    systemd.service(name=f"Restart {timer_name} for its new schedule.", service=timer_name, restarted=True,
                    _if=timer.did_change)


def unschedule_backups(s: Settings) -> None:
    """backup_enabled = False: no more scheduled runs (configure_backups removes the units);
    existing backups stay where they are."""
    files.file(name="Remove the stamp of scheduled backups.", path=installed_stamp(s), present=False)
