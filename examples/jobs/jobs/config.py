"""Configuration, read only from the environment.

Each of DATABASE_URL, SECRET_KEY and REDIS_URL may instead be a file named by
<NAME>_FILE (Docker secrets: /run/secrets/<NAME>); the plain variable wins.
Read once at startup, so a missing setting stops the process at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The Redis list the API pushes jobs onto (LPUSH) and the worker takes them from (BRPOP).
QUEUE = "jobs:queue"


class ConfigError(RuntimeError):
    """A required setting is missing or unreadable."""


def read_setting(name: str) -> str:
    """$NAME, else the contents of the file $NAME_FILE names (its final newline dropped)."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if not path:
        raise ConfigError(f"{name} is not set (neither {name} nor {name}_FILE)")
    try:
        value = Path(path).read_text().rstrip("\r\n")
    except OSError as error:
        raise ConfigError(f"{name}_FILE={path}: cannot read it ({error.strerror})") from None
    if not value:
        raise ConfigError(f"{name}_FILE={path} is empty")
    return value


def libpq_url(url: str) -> str:
    """A PostgreSQL URL as libpq takes it: SQLAlchemy's `postgresql+psycopg://` form is accepted too."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        return f"{scheme.split('+', 1)[0]}://{rest}"
    raise ConfigError("DATABASE_URL must start with postgresql:// (or postgresql+psycopg://)")


def database_url() -> str:
    """DATABASE_URL (or DATABASE_URL_FILE), ready for psycopg."""
    return libpq_url(read_setting("DATABASE_URL"))


def release() -> str | None:
    """The onebox release running this process (ONEBOX_RELEASE), if any."""
    return os.environ.get("ONEBOX_RELEASE") or None


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    secret_key: str | None


def load(secret_key: bool = True) -> Settings:
    """The settings; the worker and the release step do without SECRET_KEY."""
    return Settings(
        database_url=database_url(),
        redis_url=read_setting("REDIS_URL"),
        secret_key=read_setting("SECRET_KEY") if secret_key else None,
    )
