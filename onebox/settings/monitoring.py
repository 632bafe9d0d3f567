"""Settings of the monitoring role (deploys/monitoring.py): Prometheus, its exporters and
Alertmanager from the distribution, the alert thresholds and where alerts go."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from onebox.settings.types import EMAIL_RE, HostName, Port, PositiveInt

Duration = Annotated[str, Field(pattern=r"^[0-9]+[hdwy]$")]  # Prometheus retention, e.g. 15d
Bytes = Annotated[str, Field(pattern=r"^[0-9]+(MB|GB)$")]  # Prometheus retention size, e.g. 512MB
MemoryMax = Annotated[str, Field(pattern=r"^[0-9]+[KMG]$")]  # systemd MemoryMax=, e.g. 256M
WEBHOOK_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/%?=&-]*)?\Z")


class MonitoringSettings(BaseModel):
    monitoring_enabled: bool
    monitoring_scrape_interval: Annotated[int, Field(ge=5, le=300)]
    monitoring_retention: Duration
    monitoring_retention_size: Bytes
    monitoring_memory_max: MemoryMax
    monitoring_probe_verify_tls: bool
    alert_for_seconds: Annotated[int, Field(ge=0, le=3600)]
    alert_disk_used_percent: Annotated[int, Field(ge=50, le=99)]
    alert_memory_available_percent: Annotated[int, Field(ge=1, le=50)]
    alert_certificate_days: Annotated[int, Field(ge=1, le=365)]
    alert_rate_window_seconds: Annotated[int, Field(ge=15, le=3600)]
    alert_5xx_ratio: Annotated[float, Field(gt=0, le=1)]
    alert_latency_p95_seconds: Annotated[float, Field(gt=0)]
    alert_latency_p99_seconds: Annotated[float, Field(gt=0)]
    alert_restarts: PositiveInt
    alert_group_wait_seconds: Annotated[int, Field(ge=1, le=3600)]
    alert_group_interval_seconds: Annotated[int, Field(ge=1, le=86400)]
    alert_repeat_interval_hours: Annotated[int, Field(ge=1, le=720)]
    alert_email_to: list[str]
    alert_email_from: str | None
    alert_smtp_host: HostName | None
    alert_smtp_port: Port
    alert_smtp_username: Annotated[str, Field(pattern=r"^[A-Za-z0-9._@+-]+$")] | None
    alert_smtp_require_tls: bool

    # --- secret: environment or the git-ignored secrets file only (ONEBOX_ALERT_SMTP_PASSWORD) ---
    alert_smtp_password: SecretStr | None = None
    # A secret too, best supplied as ONEBOX_ALERT_WEBHOOK_URL (Slack's and Discord's URLs carry a token), yet
    # accepted in group data (an ntfy topic need not be secret): never printed, in an error or anywhere else.
    alert_webhook_url: SecretStr | None

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not WEBHOOK_RE.match(value.get_secret_value()):
            raise ValueError("expected an http(s) URL such as 'https://ntfy.sh/my-topic' (no spaces or quotes)")
        return value

    @field_validator("alert_email_to", "alert_email_from")
    @classmethod
    def _addresses(cls, value: list[str] | str | None) -> list[str] | str | None:
        for address in [value] if isinstance(value, str) else value or []:
            if not EMAIL_RE.match(address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _email_needs_a_server(self) -> MonitoringSettings:
        if self.alert_email_to and not (self.alert_smtp_host and self.alert_email_from):
            raise ValueError("alert_email_to is set but alert_smtp_host or alert_email_from is empty; set both "
                             "(e.g. 'smtp.example.com' and 'onebox@example.com') or clear alert_email_to")
        if self.alert_latency_p99_seconds < self.alert_latency_p95_seconds:
            raise ValueError("alert_latency_p99_seconds is below alert_latency_p95_seconds; the p99 threshold "
                             "is the higher one")
        return self

    @property
    def alert_routes(self) -> list[str]:
        """Where alerts go, as `onebox status` names them."""
        return [*(["webhook"] if self.alert_webhook_url else []), *(["e-mail"] if self.alert_email_to else [])]
