"""Rollouts: a code change replaces only the API; a broken migration changes nothing
that serves, and loses no data."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx

from onebox.verify.api import wait_ready
from testbed.deploy import changed_operations

BROKEN_MIGRATION = '''"""A migration that fails halfway: the deploy must stop and keep the old API."""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute("CREATE TABLE half_done (id integer)")
    op.execute("SELECT 1 / 0")


def downgrade() -> None:
    pass
'''


def app_copy(tmp_path: Path, version: str, broken_migration: bool = False, crashing: bool = False) -> Path:
    source = tmp_path / f"app-{version}"
    shutil.copytree("examples/app", source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (source / "app" / "version.py").write_text(f'VERSION = "{version}"\n')
    if broken_migration:
        (source / "migrations" / "versions" / "0002_broken.py").write_text(BROKEN_MIGRATION)
    if crashing:
        with (source / "app" / "main.py").open("a") as main:
            main.write('\nraise RuntimeError("this version cannot start")\n')
    return source


def test_a_code_change_replaces_only_the_api(deployed, api, tmp_path) -> None:
    before = deployed.container_ids()
    result = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "e2e-2"))})
    assert result.returncode == 0, result.output[-3000:]
    after = deployed.container_ids()
    assert after["api"] != before["api"]
    assert (after["postgres"], after["redis"]) == (before["postgres"], before["redis"])
    wait_ready(api)
    assert httpx.get(f"{api}/version").json()["version"] == "e2e-2"


def test_an_edit_that_keeps_every_file_size_is_deployed(deployed, api, tmp_path) -> None:
    """Every file in the uploaded build context has mtime 0: the server must build from the
    content, not from a cached copy of a file with the same size and time."""
    result = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "e2e-9"))})
    assert result.returncode == 0, result.output[-3000:]
    assert httpx.get(f"{api}/version").json()["version"] == "e2e-9"
    back = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "e2e-2"))})
    assert back.returncode == 0, back.output[-3000:]
    assert httpx.get(f"{api}/version").json()["version"] == "e2e-2"


def test_an_image_built_here_and_loaded_there_is_deployed(deployed, api, tmp_path) -> None:
    """app_image_source = "tarball": docker build on this machine, save, upload, load."""
    source = app_copy(tmp_path, "e2e-tarball")
    leftovers = set(Path(tempfile.gettempdir()).glob("onebox-images-*"))
    # Without -y: pyinfra detects changes first, then asks; the archive must be made once and removed.
    result = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(source), "ONEBOX_APP_IMAGE_SOURCE": "tarball"}, confirm=True)
    assert result.returncode == 0, result.output[-3000:]
    assert set(Path(tempfile.gettempdir()).glob("onebox-images-*")) == leftovers  # no image archive left behind
    assert "Deploy the application | Load the image of onebox built on this machine." in changed_operations(result.output)
    wait_ready(api)
    assert httpx.get(f"{api}/version").json()["version"] == "e2e-tarball"
    back = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "e2e-2"))})
    assert back.returncode == 0, back.output[-3000:]


def test_a_version_that_never_gets_healthy_is_replaced_by_the_previous_one(deployed, api, tmp_path) -> None:
    live = deployed.live_release()

    result = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "e2e-crash", crashing=True))})

    assert result.returncode != 0
    assert "the new version did not become healthy" in result.output
    assert "this version cannot start" in result.output  # its logs tell why
    wait_ready(api)
    assert httpx.get(f"{api}/version").json()["version"] == "e2e-2"
    assert deployed.live_release() == live


def test_a_broken_migration_keeps_the_old_version_serving(deployed, api, tmp_path) -> None:
    record = httpx.post(f"{api}/items", json={"name": "before the broken migration"}).json()
    live = deployed.live_release()
    before = deployed.container_ids()

    result = deployed.deploy({"ONEBOX_APP_SOURCE_DIR": str(app_copy(tmp_path, "e2e-3", broken_migration=True))})

    assert result.returncode != 0
    assert "the release step failed (e.g. the database migration); the running version was left as it was" in result.output
    assert deployed.container_ids() == before
    assert httpx.get(f"{api}/version").json()["version"] == "e2e-2"
    assert httpx.get(f"{api}/items/{record['id']}").json()["name"] == "before the broken migration"
    assert deployed.live_release() == live
    # PostgreSQL's transactional DDL rolled the half-done migration back.
    tables = deployed.ssh(
        f"docker exec {deployed.container_ids()['postgres']} "
        f"psql -U {deployed.settings.postgres_user} -d {deployed.settings.postgres_db} -Atc '\\dt'"
    ).stdout
    assert "half_done" not in tables and "items" in tables
    # The dump taken before the failed release step is kept, named after that release.
    failed = deployed.ssh(f"grep -o 'new release [^ ]*' {deployed.settings.app_dir}/release.log | tail -1").stdout.split()[-1]
    assert failed != live
    assert f"release-{failed}" in deployed.ssh("/usr/local/sbin/onebox-backup list").stdout


def test_the_next_good_deploy_recovers(deployed, api) -> None:
    result = deployed.deploy()
    assert result.returncode == 0, result.output[-3000:]
    wait_ready(api)
    assert httpx.get(f"{api}/version").json()["version"] != "e2e-2"
