"""Roll a compose project out: database first, then migrations, then the new API.

pyinfra's docker.compose always reports a change, so onebox gates the rollout on a
stamp instead: the hash of every input (compose file, .env, supplied secrets, source,
images) is written to .deployed only after a rollout succeeds. Same inputs: nothing
runs. A failed rollout leaves no stamp, so the next run tries again.
"""

from __future__ import annotations

import hashlib
import shlex

from pyinfra import host
from pyinfra.api import operation

from onebox.facts import FileText

STAMP = ".deployed"
UNHEALTHY = (
    "onebox: the new version did not become healthy (its last log lines are above); "
    "the previous version was started again."
)
MIGRATION_FAILED = (
    "onebox: the database migration failed; the running API was left as it was. "
    "Fix the migration and deploy again."
)


def inputs_hash(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def rollout_script(project_dir: str, desired: str, image_step: str, migrate: str) -> str:
    """Dependencies healthy -> image ready -> migrate (if the API image changed) -> API up.

    The files of the last good rollout are kept (compose.deployed.yaml, .env.deployed):
    if the new version never gets healthy, the previous one is started again from them,
    with the images it had (--no-build). Migrations must therefore stay compatible with
    the previous version (expand first, contract in a later release).
    """
    restore = (
        "if [ -f compose.deployed.yaml ]; then docker compose -f compose.deployed.yaml --env-file .env.deployed "
        "up -d --no-build --pull never --wait --wait-timeout 180 --remove-orphans >&2 || true; fi"
    )
    image_id = "docker image inspect -f '{{.Id}}' \"$(sed -n 's/^API_IMAGE=//p' .env)\""
    running_id = "docker inspect -f '{{.Image}}' \"$(docker compose ps -q api)\" 2>/dev/null || true"
    return "\n".join([
        "set -e",
        f"cd {shlex.quote(project_dir)}",
        "docker compose up -d --wait --wait-timeout 180 --remove-orphans postgres redis",
        image_step,
        f"new=$({image_id})",
        f"running=$({running_id})",
        'if [ "$new" != "$running" ]; then',
        f"  docker compose run --rm --no-deps -T api {migrate} >&2 || {{ echo {shlex.quote(MIGRATION_FAILED)} >&2; exit 1; }}",
        "fi",
        "if ! docker compose up -d --wait --wait-timeout 180 --remove-orphans >&2; then",
        "  docker compose logs --no-color --tail 30 api >&2 || true",
        f"  echo {shlex.quote(UNHEALTHY)} >&2",
        f"  {restore}",
        "  exit 1",
        "fi",
        "cp compose.yaml compose.deployed.yaml && cp .env .env.deployed",
        f"echo {desired} > {STAMP}",
    ])


@operation()
def compose_rollout(project_dir: str, desired: str, image_step: str, migrate: str = "alembic upgrade head"):
    """Roll the project out when its inputs hash differs from the last successful rollout.

        compose_rollout(name="Roll out", project_dir="/opt/onebox", desired=inputs_hash(...),
                        image_step="docker compose build api")
    """
    if host.get_fact(FileText, path=f"{project_dir}/{STAMP}") == desired:
        host.noop("the running stack already matches its inputs")
        return
    yield rollout_script(project_dir, desired, image_step, migrate)
