"""Settings of the tls role (deploys/tls.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from onebox.settings.types import EMAIL_RE


class TlsSettings(BaseModel):
    letsencrypt_email: str
    acme_server: Literal["letsencrypt", "letsencrypt-staging", "custom"]
    acme_directory_url: Annotated[str, Field(pattern=r"^https://[^\s]+$")] | None
    acme_ca_bundle: str | None

    @field_validator("letsencrypt_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an e-mail address; the ACME server sends expiry notices there")
        return value

    @model_validator(mode="after")
    def _acme_server_reachable(self) -> TlsSettings:
        if self.acme_server == "custom" and not self.acme_directory_url:
            raise ValueError("acme_server is 'custom' but acme_directory_url is empty; set the ACME directory URL")
        if self.acme_ca_bundle and not Path(self.acme_ca_bundle).is_file():
            raise ValueError(f"acme_ca_bundle {self.acme_ca_bundle!r} is not a file on this machine "
                             "(for the local target, `python -m testbed.pebble up TARGET_IP` creates it)")
        return self
