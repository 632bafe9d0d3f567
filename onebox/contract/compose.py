"""What the compose files the converge renders (templates/app/app.compose.yaml.j2 for a release,
deps.compose.yaml.j2 for PostgreSQL and Redis) and onebox-release agree on: the services and
variables the server names, the network, the volumes and the files beside them. The templates
see this module as `compose`. Standard library only (the server's zipapp carries it)."""

from __future__ import annotations

API_SERVICE = "api"  # a release's web service; its processes are services of their own
POSTGRES_SERVICE, REDIS_SERVICE = "postgres", "redis"  # in the dependencies' project, named after the app
# onebox-release sets these on each compose run of a release (slot_project.compose_env).
IMAGE_VAR, RELEASE_VAR, SLOT_PORT_VAR = "APP_IMAGE", "ONEBOX_RELEASE", "ONEBOX_SLOT_PORT"
RELEASE_ENV_FILE = "app.env"  # in the release's directory: app_env as env_file_text writes it
RELEASE_SECRETS_DIR = "secrets"  # in the release's directory: one root-only file per secret
POSTGRES_PASSWORD_FILE = "secrets/postgres/postgres_password"  # in the app's directory (AppDir)
PG_DATA_VOLUME, REDIS_DATA_VOLUME = "postgres-data", "redis-data"
PITR_REPO_VOLUME = "pgbackrest-repo"  # pgBackRest's repository on the server (point-in-time recovery)


def network(app_name: str) -> str:
    """The app's network, made by onebox-release, shared by its dependencies and both slots."""
    return f"{app_name}_default"


def volume(app_name: str, name: str) -> str:
    """A volume of the dependencies' project as Docker names it."""
    return f"{app_name}_{name}"


def required(variable: str) -> str:
    """A variable in a compose file that only onebox-release sets: compose refuses to run without it."""
    return f"${{{variable}:?{variable} is set by onebox-release}}"
