"""backup.json, a message from the controller to the server program: written by one function,
read by one, every field checked; what onebox 0.3.0 left (contract_shapes.py) still reads."""

from __future__ import annotations

import dataclasses
import json

import pytest
from contract_shapes import ADDED_BY_0_3_0, BACKUP_JSON_0_3_0
from test_backup_settings import settings

from onebox import contract
from onebox.contract import ContractError
from onebox.deploys.backup import backup_config

PATH = "/etc/onebox/backup.json"

# --- backup.json ---------------------------------------------------------------------------


def test_backup_json_written_by_the_controller_loads_as_the_same_config() -> None:
    written = backup_config(settings(), "prod.example.com")
    text = contract.backup_config_text(written)
    assert json.loads(text)["version"] == contract.BACKUP_CONFIG_VERSION
    assert contract.load_backup_config(text, PATH) == written


def test_backup_json_of_onebox_0_3_0_loads_as_version_1_with_the_same_values() -> None:
    """The backup timer may run this server program before the upgrade's converge rewrites the file."""
    loaded = contract.load_backup_config(BACKUP_JSON_0_3_0, PATH)
    assert loaded.version == 1
    assert {key: value for key, value in dataclasses.asdict(loaded).items() if key in json.loads(BACKUP_JSON_0_3_0)} \
        == json.loads(BACKUP_JSON_0_3_0)
    # The controller of this version writes the same values for the same settings, the version added.
    assert loaded == backup_config(settings(), "prod.example.com")


def test_backup_json_of_onebox_0_2_0_loads_with_point_in_time_recovery_off() -> None:
    older = {key: value for key, value in json.loads(BACKUP_JSON_0_3_0).items() if key not in ADDED_BY_0_3_0}
    loaded = contract.load_backup_config(json.dumps(older), PATH)
    assert not loaded.pitr_enabled and loaded.project_dir is None and loaded.s3_ca_file is None
    assert set(ADDED_BY_0_3_0) <= set(contract.ADDED_BACKUP_FIELDS)


@pytest.mark.parametrize(("change", "message"), [
    ({"keep_last": "3"}, f"{PATH}.keep_last: expected int, got '3'"),
    ({"enabled": 1}, f"{PATH}.enabled: expected bool, got 1"),
    ({"restic_repository": 5}, f"{PATH}.restic_repository: expected str, got 5"),
    ({"app_name": ""}, f"{PATH}.app_name: empty"),
    ({"keep_hourly": 3}, f"{PATH}: unknown key(s) keep_hourly"),
])
def test_backup_json_with_a_wrong_field_is_refused_naming_it(change: dict, message: str) -> None:
    with pytest.raises(ContractError) as error:
        contract.load_backup_config(json.dumps({**json.loads(BACKUP_JSON_0_3_0), **change}), PATH)
    assert str(error.value) == message


def test_backup_json_without_a_required_field_is_refused_naming_it() -> None:
    data = json.loads(BACKUP_JSON_0_3_0)
    del data["keep_daily"]
    with pytest.raises(ContractError, match=f"^{PATH}.keep_daily: missing$"):
        contract.load_backup_config(json.dumps(data), PATH)


@pytest.mark.parametrize("version", [2, 0, "1"])
def test_backup_json_of_another_version_is_refused_saying_to_converge(version: object) -> None:
    with pytest.raises(ContractError) as error:
        contract.load_backup_config(json.dumps({**json.loads(BACKUP_JSON_0_3_0), "version": version}), PATH)
    assert str(error.value) == (f"{PATH} has version {version!r}, this onebox-backup reads version 1: "
                                "converge the server with this onebox: pyinfra INVENTORY deploys/site.py")
