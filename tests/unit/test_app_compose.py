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
