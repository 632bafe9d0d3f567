"""Point-in-time recovery (backup_pitr_enabled): what the server runs for it.

PostgreSQL keeps running from postgres_image, with pgBackRest added by a Dockerfile built on the
server (postgres-pitr/Dockerfile in the app's directory): PostgreSQL's archive_command runs inside
its container, so pgBackRest has to be there. WAL goes to a repository on the server (repo1, the
volume pgbackrest-repo) and, when backup_restic_repository is an S3 bucket, to that bucket too
(repo2, encrypted with the restic password, under a path of its own beside restic's repository).
onebox-backup (onebox/server/backup/pitr.py) creates the stanza, takes the base backups and
restores to a time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from onebox.render import render, secret_env_lines
from onebox.settings import Settings

PGBACKREST_DIR = "postgres-pitr"  # in the app's directory: Dockerfile, pgbackrest.conf, s3-ca.pem (/etc/pgbackrest)
CA_FILE = "s3-ca.pem"  # in the app's directory: backup_s3_ca_bundle, for restic and pgBackRest
ENV_FILE = "secrets/pgbackrest.env"  # in the app's directory (root only): the S3 keys and the cipher passphrase
IMAGE_REPOSITORY = "onebox-local/postgres-pitr"  # built on the server, never pulled
S3_RE = re.compile(r"^s3:https://(?P<host>[A-Za-z0-9.-]+)(:(?P<port>[0-9]+))?/(?P<bucket>[A-Za-z0-9._-]+)"
                   r"(?P<path>/[A-Za-z0-9._/-]*)?\Z")


@dataclass(frozen=True)
class Offsite:
    """Where pgBackRest keeps its off-site copy: the restic repository's S3 bucket, beside restic's path."""
    host: str
    port: int | None
    bucket: str
    path: str


def offsite_of(repository: str | None) -> Offsite | None:
    """The S3 location of an `s3:https://HOST[:PORT]/BUCKET[/PATH]` repository; None for anything else
    (settings refuse backup_pitr_enabled with an off-site repository pgBackRest cannot reach)."""
    match = S3_RE.match(repository or "")
    if not match:
        return None
    prefix = (match["path"] or "").strip("/")
    # restic owns PATH (its config, data/, index/ ...): pgBackRest writes beside it, never inside.
    path = f"/{prefix}-pgbackrest" if prefix else "/pgbackrest"
    return Offsite(match["host"], int(match["port"]) if match["port"] else None, match["bucket"], path)


def dockerfile(s: Settings) -> str:
    return render("app/postgres-pitr.Dockerfile.j2", s=s)


def image(s: Settings) -> str:
    """The derived image's tag: changes with postgres_image (and with how onebox derives it)."""
    return f"{IMAGE_REPOSITORY}-{s.app_name}:{hashlib.sha256(dockerfile(s).encode()).hexdigest()[:12]}"


def ca_bundle(s: Settings) -> str | None:
    return Path(s.backup_s3_ca_bundle).read_text() if s.backup_s3_ca_bundle else None


def config(s: Settings, server_name: str) -> str:
    """pgbackrest.conf (no secrets: those are in ENV_FILE). `server_name`: the server's identity off-site."""
    offsite = offsite_of(s.backup_restic_repository)
    return render("app/pgbackrest.conf.j2", s=s, offsite=offsite, server_name=server_name,
                  ca_bundle=bool(ca_bundle(s)))


def env(s: Settings) -> str:
    """The secrets pgBackRest reads from its environment: the off-site copy's S3 keys and cipher
    passphrase (the restic password: one secret to keep away from the server, not two)."""
    if offsite_of(s.backup_restic_repository) is None:
        return ""
    return secret_env_lines({
        "PGBACKREST_REPO2_S3_KEY": s.backup_s3_access_key_id,
        "PGBACKREST_REPO2_S3_KEY_SECRET": s.backup_s3_secret_access_key,
        "PGBACKREST_REPO2_CIPHER_PASS": s.backup_restic_password,
    })


def fingerprint(s: Settings, server_name: str) -> str:
    """What pgBackRest's setup on the server was done for (onebox-backup writes it to pitr-ready):
    the converge runs the setup again when it differs (a new image or configuration, or a setup that failed)."""
    return hashlib.sha256((image(s) + "\0" + config(s, server_name)).encode()).hexdigest()[:16]


def enabled(s: Settings) -> bool:
    return bool(s.backup_pitr_enabled and s.backup_enabled and s.postgres_enabled)


def deps_compose(s: Settings) -> str:
    """The dependencies' compose file (templates/app/deps.compose.yaml.j2), with PostgreSQL's
    archiving when point-in-time recovery is on."""
    pitr = {"image": image(s), "dir": PGBACKREST_DIR, "env_file": ENV_FILE} if enabled(s) else None
    return render("app/deps.compose.yaml.j2", s=s, pitr=pitr)
