"""Secrets on the server: supplied by the controller (streamed through sudo) or generated
here once, handed to containers as files, never printed and never in the spec."""

from __future__ import annotations

import hashlib
import secrets
import string
from pathlib import Path
from urllib.parse import quote

from onebox import contract
from onebox.server import basics
from onebox.server.model import App


def values(app: App) -> dict:
    """{'postgres_password': ..., 'secret': {NAME: ...}, 'registry_password': ...}; generates what is missing."""
    supplied = supplied_secrets(app)
    generated_path = app.secrets_dir / "generated.json"
    generated = basics.read_json(generated_path, {"secret": {}})
    changed = False
    if app.spec.postgres_enabled and not supplied.postgres_password and not generated.get("postgres_password"):
        generated["postgres_password"] = secrets.token_hex(32)
        changed = True
    for name in app.spec.release.secrets:
        if name not in supplied.secret and name not in generated["secret"]:
            generated["secret"][name] = secrets.token_hex(32)
            changed = True
    if changed:
        basics.write_json(generated_path, generated, mode=0o600)
    return {"postgres_password": supplied.postgres_password or generated.get("postgres_password", ""),
            "registry_password": supplied.registry_password,
            "secret": {**generated["secret"], **supplied.secret}}


def supplied_secrets(app: App) -> contract.SuppliedSecrets:
    """What the converge uploaded (none yet: nothing supplied)."""
    path = Path(app.layout.supplied_secrets)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return contract.SuppliedSecrets()
    try:
        return contract.parse_supplied_secrets(text, str(path))
    except contract.ContractError as error:
        raise basics.OneboxError(str(error)) from None


def keyed_digest(app: App, data: bytes, size: int = 16) -> str:
    """A digest keyed by this server's own key: it names a secret's content without revealing it."""
    key_path = app.secrets_dir / "fingerprint.key"
    if not key_path.exists():
        basics.write_atomic(key_path, secrets.token_bytes(32), mode=0o600)
    return hashlib.blake2b(data, key=key_path.read_bytes(), digest_size=size).hexdigest()


def fingerprint(app: App) -> str:
    """A keyed fingerprint of the supplied secrets, kept here: it never leaves the server."""
    supplied = Path(app.layout.supplied_secrets)
    return keyed_digest(app, supplied.read_bytes() if supplied.exists() else b"")


def placeholders(app: App, release_id: str) -> dict:
    return {**app.spec.release.placeholders, contract.RELEASE_PLACEHOLDER: release_id}


def render(templates: dict[str, str], known: dict) -> dict[str, str]:
    formatter = string.Formatter()
    return {name: formatter.vformat(template, (), known) for name, template in templates.items()}


def secret_placeholders(plain: dict, found: dict) -> dict:
    """What app_secret_env templates may use: the plain values, the secrets, and the
    PostgreSQL password percent-encoded for URLs ({postgres_password_url})."""
    password = found["postgres_password"]
    secret = {"postgres_password": password, "postgres_password_url": quote(password, safe=""), "secret": found["secret"]}
    assert set(secret) == set(contract.SECRET_PLACEHOLDERS)  # what the settings' check lets app_secret_env use
    return {**plain, **secret}


def write_release_secrets(app: App, release_dir: Path, release_id: str) -> None:
    """Each secret as a file in the release's root-only directory (0700): the containers get
    them as compose secrets (bind-mounted files), so `docker inspect` shows no value."""
    found = values(app)
    release = app.spec.release
    files = {name: value for name, value in found["secret"].items() if name in release.secrets}
    files.update(render(release.secret_env, secret_placeholders(placeholders(app, release_id), found)))
    directory = release_dir / contract.compose.RELEASE_SECRETS_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    for name, value in files.items():
        # Readable inside the container whatever its user; on the host the 0700 directory keeps others out.
        basics.write_atomic(directory / name, value, mode=0o444)


def write_postgres_secret(app: App) -> None:
    if not app.spec.postgres_enabled:
        return
    path = Path(app.layout.postgres_password)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    value = values(app)["postgres_password"]
    if not path.exists() or path.read_text() != value:
        basics.write_atomic(path, value, mode=0o444)
