"""An app's directory on the server (its settings' app_dir): the files the converge writes there
and the server programs read, and the supplied secrets' message (secrets/supplied.json). The
release records, state.json and the generated secrets are the server programs' own. Standard
library only (the server's zipapp carries it)."""

from __future__ import annotations

import dataclasses
import json

from onebox.contract.compose import POSTGRES_PASSWORD_FILE
from onebox.contract.documents import ContractError, json_object, load_checked, message_version
from onebox.contract.images import CI_IMAGE_FILE

UPLOAD_PREFIX, UPLOAD_SUFFIX = "src-", ".tar.gz"  # a build context, named by its content's hash
SPEC_NAME = "spec.json"


@dataclasses.dataclass(frozen=True)
class AppDir:
    """The paths in one app's directory."""

    root: str

    @property
    def spec(self) -> str:  # contract.Spec: what the server is asked to run
        return f"{self.root}/{SPEC_NAME}"

    @property
    def app_compose(self) -> str:  # the API's compose file; each release copies it
        return f"{self.root}/app.compose.yaml"

    @property
    def deps_compose(self) -> str:  # PostgreSQL and Redis, the project named after the app
        return f"{self.root}/deps.compose.yaml"

    @property
    def secrets(self) -> str:  # root only
        return f"{self.root}/secrets"

    @property
    def supplied_secrets(self) -> str:  # SuppliedSecrets, uploaded by the converge
        return f"{self.secrets}/supplied.json"

    @property
    def postgres_password(self) -> str:  # written by the server, mounted by deps.compose.yaml
        return f"{self.root}/{POSTGRES_PASSWORD_FILE}"

    @property
    def releases(self) -> str:  # root only: one directory per release, kept by the server
        return f"{self.root}/releases"

    @property
    def incoming(self) -> str:  # root only: the uploaded build context
        return f"{self.root}/incoming"

    @property
    def ci_image(self) -> str:  # CiImageRecord: what CI deployed last
        return f"{self.root}/{CI_IMAGE_FILE}"

    def upload(self, name: str) -> str:
        return f"{self.incoming}/{name}"

    @property
    def private_dirs(self) -> tuple[str, ...]:
        """The directories the converge creates root only."""
        return (self.secrets, self.releases, self.incoming)


def upload_name(content_hash: str) -> str:
    return f"{UPLOAD_PREFIX}{content_hash}{UPLOAD_SUFFIX}"


UPLOAD_GLOB = upload_name("*")


# --- secrets/supplied.json: the secrets the operator supplied (controller -> server) -----------

@dataclasses.dataclass(frozen=True)
class SuppliedSecrets:
    """What the settings supply; the server generates what is absent (None, or a name not in
    `secret`). Version 1 has no version key: the server tells a change of the secrets by a keyed
    digest of the file's bytes, so a key added to today's file would make a release on every server
    an upgrade converges. A later shape adds "version"; the reader refuses one it does not know."""

    postgres_password: str | None = None
    registry_password: str | None = None
    secret: dict[str, str] = dataclasses.field(default_factory=dict)


SUPPLIED_SECRETS_VERSION = 1


def supplied_secrets_text(supplied: SuppliedSecrets) -> str:
    """The converge's one writer (byte for byte what 0.5.x wrote)."""
    return json.dumps(dataclasses.asdict(supplied), sort_keys=True)


def parse_supplied_secrets(text: str, path: str) -> SuppliedSecrets:
    """The server's one reader; names the file (never a value) when it cannot read it."""
    data = json_object(text, path)
    message_version(data, SUPPLIED_SECRETS_VERSION, path, "onebox-release", "converge the server with this onebox")
    try:
        supplied: SuppliedSecrets = load_checked(SuppliedSecrets, data, path)
    except ContractError as error:  # its message ends with the value it met: a secret's, here
        raise ContractError(str(error).split(", got ")[0]) from None
    return supplied
