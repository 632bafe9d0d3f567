"""Configuration, read only from environment variables."""

import os
from functools import cached_property
from urllib.parse import quote

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Just what Alembic needs, so migrations don't require the app's secrets."""

    # No env_file: the container's environment is the source of truth, then compose secrets
    # (/run/secrets/<NAME>, matched case-insensitively), which onebox mounts for every secret.
    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, secrets_dir="/run/secrets" if os.path.isdir("/run/secrets") else None
    )

    postgres_host: str = "postgres"
    postgres_port: int = 5432
    postgres_user: str
    postgres_password: SecretStr
    postgres_db: str

    @cached_property
    def database_url(self) -> str:
        # Quote every part: generated passwords often contain @ : / % #.
        user = quote(self.postgres_user, safe="")
        password = quote(self.postgres_password.get_secret_value(), safe="")
        host = self.postgres_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # bare IPv6 literal
        return (
            f"postgresql+asyncpg://{user}:{password}@{host}:{self.postgres_port}"
            f"/{quote(self.postgres_db, safe='')}"
        )


class Settings(DatabaseSettings):
    redis_url: str = "redis://redis:6379/0"
    app_secret_key: SecretStr = Field(min_length=1)
    log_level: str = "info"
    # Interactive docs (/docs, /redoc, /openapi.json) only when asked: production publishes no API map.
    api_docs: bool = False
