"""The apps a server has against the apps the settings name: a forgotten app stops the deploy,
a removed one is marked, and the registry reads back what was written."""

from __future__ import annotations

import pytest

from onebox import contract
from onebox.deploys.apps import UnknownApps, apps_plan
from onebox.settings import validate_settings
from tests.unit.test_apps_settings import two_apps
from tests.unit.test_settings import valid


def registered(**apps: str) -> dict[str, contract.RegisteredApp]:
    return {name: contract.RegisteredApp(dir=directory, key=name) for name, directory in apps.items()}


def test_the_registry_holds_every_app_of_the_settings() -> None:
    plan = apps_plan(validate_settings(two_apps()), {})
    assert plan == {"api": contract.RegisteredApp("/opt/onebox-api", "api"),
                    "jobs": contract.RegisteredApp("/opt/onebox-jobs", "jobs")}
    assert contract.parse_apps(contract.apps_text(plan)) == plan


def test_a_single_app_server_registers_its_app_without_a_key() -> None:
    assert apps_plan(validate_settings(valid()), {}) == {"onebox": contract.RegisteredApp("/opt/onebox", None)}


def test_an_app_the_settings_forgot_is_refused_naming_apps_removed() -> None:
    with pytest.raises(UnknownApps) as refused:
        apps_plan(validate_settings(valid()), registered(onebox="/opt/onebox", jobs="/opt/onebox-jobs"))
    assert "runs app(s) jobs, which the settings no longer have; nothing was changed" in str(refused.value)
    assert "apps_removed = ['jobs']" in str(refused.value)


def test_a_removed_app_stays_registered_as_removed() -> None:
    s = validate_settings(valid(apps_removed=["jobs"]))
    plan = apps_plan(s, registered(onebox="/opt/onebox", jobs="/opt/onebox-jobs"))
    assert plan["jobs"] == contract.RegisteredApp("/opt/onebox-jobs", "jobs", removed=True)
    assert not plan["onebox"].removed


def test_a_registry_of_another_shape_is_refused_clearly() -> None:
    with pytest.raises(contract.ContractError, match="jobs.dir: expected str"):
        contract.parse_apps('{"jobs": {"dir": 3, "key": "jobs"}}')
