"""The compose file of an app's release (issue 29, finding 8): its containers run without
capabilities, gain none through a setuid binary, and run read-only on request."""

from __future__ import annotations

import yaml
from test_settings import valid

from onebox.render import render
from onebox.settings import validate_settings

WORKER = {"worker": {"command": ["python", "-m", "worker"]}}
NO_NEW_PRIVILEGES = ["no-new-privileges=true"]


def app_services(**overrides: object) -> dict:
    s = validate_settings(valid(app_processes=WORKER, **overrides))
    return yaml.safe_load(render("app/app.compose.yaml.j2", s=s))["services"]


def test_every_app_container_drops_every_capability_and_gains_none() -> None:
    services = app_services()
    assert set(services) == {"api", "worker"}  # the release step is `compose run api`: the same settings
    for name, service in services.items():
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == NO_NEW_PRIVILEGES, name
        assert "cap_add" not in service and "read_only" not in service and "tmpfs" not in service, name


def test_capabilities_the_image_needs_are_given_back_by_name() -> None:
    for name, service in app_services(app_cap_add=["SETUID", "SETGID"]).items():
        assert service["cap_add"] == ["SETUID", "SETGID"] and service["cap_drop"] == ["ALL"], name


def test_app_read_only_makes_the_root_file_system_read_only_with_a_tmpfs_on_tmp() -> None:
    for name, service in app_services(app_read_only=True).items():
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"], name


def test_the_compose_files_name_what_onebox_release_names() -> None:
    """The converge renders them, onebox-release runs them: the service it starts, the variables it
    sets, the network and volumes it makes or removes, the files it writes beside them."""
    from onebox import contract, pitr
    from onebox.contract import compose
    from onebox.server import slot_project

    s = validate_settings(valid(app_processes=WORKER, app_secrets=["API_KEY"], backup_pitr_enabled=True))
    text = render("app/app.compose.yaml.j2", s=s)
    release = yaml.safe_load(text)
    api = release["services"][compose.API_SERVICE]
    record = type("Record", (), {"image": "shop:1", "id": "r1"})()
    app = type("App", (), {"port": lambda self, slot: 8001})()
    for variable in slot_project.compose_env(app, record, "green"):  # type: ignore[arg-type]
        assert compose.required(variable) in text, variable
    assert api["env_file"] == [compose.RELEASE_ENV_FILE]
    assert release["secrets"]["API_KEY"]["file"] == f"./{compose.RELEASE_SECRETS_DIR}/API_KEY"
    assert release["networks"]["default"]["name"] == compose.network(s.app_name)
    deps = yaml.safe_load(pitr.deps_compose(s))
    assert set(deps["services"]) == {compose.POSTGRES_SERVICE, compose.REDIS_SERVICE}
    assert deps["networks"]["default"]["name"] == compose.network(s.app_name)
    assert {compose.PG_DATA_VOLUME, compose.REDIS_DATA_VOLUME, compose.PITR_REPO_VOLUME} <= set(deps["volumes"])
    assert f"{s.app_dir}/{deps['secrets']['postgres_password']['file'][2:]}" == contract.AppDir(s.app_dir).postgres_password
