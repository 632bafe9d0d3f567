"""The messages between the controller and the server programs besides the spec: backup.json,
monitoring.json and apps.json (controller -> server) and the state report (server -> controller). Each written
by one function, read by one, every field checked; what onebox 0.3.0 and 0.5.0 left or print
(contract_shapes.py) still reads."""

from __future__ import annotations

import dataclasses
import json

import pytest
from contract_shapes import (
    ADDED_BY_0_3_0,
    APPS_JSON_0_5_0,
    BACKUP_JSON_0_3_0,
    MONITORING_JSON_0_5_0,
    STATE_REPORT_0_3_0,
    STATE_REPORT_0_3_0_INTERRUPTED,
    STATE_REPORT_0_3_0_NOT_INSTALLED,
)
from test_alert_rules import EMAIL
from test_alert_rules import settings as alert_settings
from test_backup_settings import settings

from onebox import contract
from onebox.contract import ContractError
from onebox.deploys.backup import backup_config
from onebox.deploys.monitoring import monitoring_config
from onebox.facts import ReleaseState, ServerApps
from onebox.server import alerts, basics, model

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


# --- the state report ----------------------------------------------------------------------

REPORT = contract.StateReport(
    installed=True, live=contract.LiveRelease(id="r1", inputs="abc", created="2026-12-06T06:36:32Z"),
    transition=contract.ReleaseTransition(release="r2", slot="green", phase="draining", since="2026-12-06T06:40:00Z",
                                          kind="rollback"),
    deps_inputs="d", problems=["api is exited"], slot="blue", maintenance=True, secrets_changed=True)


@pytest.mark.parametrize("report", [REPORT, contract.NOT_INSTALLED, contract.StateReport(installed=False, why="no spec")])
def test_the_state_report_written_by_the_server_parses_as_the_same_report(report: contract.StateReport) -> None:
    text = contract.state_report_text(report)
    assert "\n" not in text and json.loads(text)["version"] == contract.STATE_REPORT_VERSION
    assert contract.parse_state_report(text) == report
    # As the fact reads it: the last JSON line of what the command printed.
    assert ReleaseState().process(["a warning", text]) == report


def test_the_state_report_of_onebox_0_3_0_parses_as_version_1() -> None:
    """The controller reads it before its converge installs the new server program."""
    report = contract.parse_state_report(STATE_REPORT_0_3_0)
    assert report.version == 1 and report.installed and report.slot == "blue" and not report.problems
    assert report.live == contract.LiveRelease(
        id="20261206-063632-39504a", inputs="39504ab6d58828ffc6a2c17e34a821512237406e7167146ce590a8cd6426c2c5",
        created="2026-12-06T06:36:32Z")
    assert report.deps_inputs == "7a2d06639878c74de18188fd489a15b2747c9cfa96bb070f1feade7dde6dcc77"
    assert contract.parse_state_report(STATE_REPORT_0_3_0_NOT_INSTALLED) == contract.StateReport(
        installed=False, why="no spec at /opt/onebox/spec.json")
    interrupted = contract.parse_state_report(STATE_REPORT_0_3_0_INTERRUPTED)  # no secrets_changed: no live slot
    assert interrupted.transition == contract.ReleaseTransition(
        release="r2", slot="green", phase="switching", since="2026-12-06T06:40:00Z")
    assert interrupted.maintenance and interrupted.problems == ["api is exited"] and not interrupted.secrets_changed


@pytest.mark.parametrize(("change", "message"), [
    ({"installed": "yes"}, "state report.installed: expected bool, got 'yes'"),
    ({"problems": "api is exited"}, "state report.problems: expected a list"),
    ({"live": {"id": "r1", "inputs": 5, "created": "x"}}, "state report.live.inputs: expected str, got 5"),
    ({"transition": {"release": "r2"}}, "state report.transition.slot: missing"),
    ({"uptime": 5}, "state report: unknown key(s) uptime"),
])
def test_a_state_report_with_a_wrong_field_is_refused_naming_it(change: dict, message: str) -> None:
    with pytest.raises(ContractError) as error:
        contract.parse_state_report(json.dumps({**json.loads(STATE_REPORT_0_3_0), **change}))
    assert str(error.value) == message


def test_a_state_report_newer_than_this_onebox_is_refused_saying_to_upgrade_the_controller() -> None:
    newer = json.dumps({**json.loads(STATE_REPORT_0_3_0), "version": contract.STATE_REPORT_VERSION + 1})
    message = ("the server's onebox-release reports its state in version 2, this onebox reads version 1 at most: "
               "upgrade onebox on the controller")
    with pytest.raises(ContractError, match=f"^{message}"):
        contract.parse_state_report(newer)
    with pytest.raises(ContractError, match=f"^{message}"):  # not mistaken for "not installed" (a release)
        ReleaseState().process([newer])


def test_going_back_to_an_older_onebox_on_purpose_reads_a_newer_report_s_known_fields(monkeypatch) -> None:
    """ONEBOX_ALLOW_OLDER=1 is the documented way back: a newer server program's report must not stop it."""
    old = json.loads(STATE_REPORT_0_3_0)
    newer = json.dumps({**old, "version": contract.STATE_REPORT_VERSION + 1, "a_field_of_later": [1, 2]})
    monkeypatch.setenv("ONEBOX_ALLOW_OLDER", "1")
    report = ReleaseState().process([newer])
    assert report == contract.parse_state_report(STATE_REPORT_0_3_0)
    assert report.live is not None and report.live.id == old["live"]["id"]


# --- monitoring.json (controller -> server: where `onebox-release status` asks about alerts) -----

MONITORING_PATH = "/etc/onebox/monitoring.json"


def test_monitoring_json_written_by_the_controller_loads_as_the_same_config() -> None:
    written = monitoring_config(alert_settings(alert_webhook_url="https://hooks.example.com/onebox", **EMAIL))
    config = contract.load_monitoring_config(written, MONITORING_PATH)
    assert config == contract.MonitoringConfig(routes=["webhook", "e-mail"])
    assert contract.monitoring_config_text(config) == written


def test_monitoring_json_of_onebox_0_5_0_loads_as_version_1() -> None:
    config = contract.load_monitoring_config(MONITORING_JSON_0_5_0, MONITORING_PATH)
    assert config == contract.MonitoringConfig(routes=["webhook", "e-mail"], prometheus="http://127.0.0.1:9090",
                                               alertmanager="http://127.0.0.1:9093", version=1)


@pytest.mark.parametrize("change, message", [
    ({"routes": "webhook"}, r"\.routes: expected a list"),
    ({"prometheus": 9090}, r"\.prometheus: expected str"),
    ({"receivers": []}, r"unknown key\(s\) receivers"),
])
def test_monitoring_json_with_a_wrong_field_is_refused_naming_it(change: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        contract.load_monitoring_config(json.dumps({**json.loads(MONITORING_JSON_0_5_0), **change}), MONITORING_PATH)


def test_monitoring_json_of_another_version_is_refused_saying_to_converge() -> None:
    with pytest.raises(ContractError) as error:
        contract.load_monitoring_config(json.dumps({**json.loads(MONITORING_JSON_0_5_0), "version": 2}),
                                        MONITORING_PATH)
    assert str(error.value) == (f"{MONITORING_PATH} has version 2, this onebox-release reads version 1: "
                                "converge the server with this onebox: pyinfra INVENTORY deploys/site.py")


def test_status_says_which_monitoring_json_it_cannot_read_and_what_to_do(tmp_path) -> None:
    newer = tmp_path / "monitoring.json"
    newer.write_text(json.dumps({"routes": [], "version": 2}))
    with pytest.raises(ContractError, match="has version 2"):
        alerts.firing("onebox", str(newer))


# --- apps.json (controller -> server: which apps the server has) ---------------------------------

APPS_0_5_0 = {"onebox": contract.RegisteredApp("/opt/onebox", None),
              "jobs": contract.RegisteredApp("/opt/onebox-jobs", "jobs", removed=True)}


def test_apps_json_written_by_the_converge_reads_as_the_same_apps() -> None:
    assert contract.parse_apps(contract.apps_text(APPS_0_5_0)) == APPS_0_5_0


def test_apps_json_version_1_is_written_byte_for_byte_as_onebox_0_5_0_wrote_it() -> None:
    """0.5.x reads every key of apps.json as an app: going back to it (ONEBOX_ALLOW_OLDER=1) works only
    while this onebox writes version 1 exactly as 0.5.0 did, with no version key."""
    assert contract.APPS_VERSION == 1
    assert contract.apps_text(APPS_0_5_0) == APPS_JSON_0_5_0
    assert contract.parse_apps(APPS_JSON_0_5_0) == APPS_0_5_0


def test_apps_json_naming_version_1_reads_as_version_1() -> None:
    assert contract.parse_apps(json.dumps({"_version": 1, **json.loads(APPS_JSON_0_5_0)})) == APPS_0_5_0


@pytest.mark.parametrize("change, message", [
    ({"onebox": {"dir": "/opt/onebox"}}, r"apps.json: onebox\.key: missing"),
    ({"onebox": {"dir": 1, "key": None}}, r"apps.json: onebox\.dir: expected str"),
    ({"jobs": {"dir": "/opt/onebox-jobs", "key": "jobs", "kept": True}}, r"jobs: unknown key\(s\) kept"),
    ({"version": 2}, r"apps.json: version: expected an object"),  # "version" could be an app's name
])
def test_apps_json_with_a_wrong_entry_is_refused_naming_it(change: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        contract.parse_apps(json.dumps({**json.loads(APPS_JSON_0_5_0), **change}))


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_apps_json_of_another_version_is_refused_saying_which_and_what_to_do(version: object) -> None:
    with pytest.raises(ContractError) as error:
        contract.parse_apps(json.dumps({"_version": version, **json.loads(APPS_JSON_0_5_0)}))
    assert str(error.value) == (
        f"/etc/onebox/apps.json has version {version!r}, this onebox reads version 1: the onebox that last "
        "converged the server (/etc/onebox/version, shown by `onebox status`) wrote it; converge the server "
        "with that version or a newer one")


def test_server_programs_and_the_controller_say_which_apps_json_they_cannot_read(tmp_path) -> None:
    newer = tmp_path / "apps.json"
    newer.write_text(json.dumps({"_version": 2, "apps": {}}))
    with pytest.raises(basics.OneboxError, match="has version 2, this onebox reads version 1"):
        model.chosen_apps(None, registry=str(newer))
    with pytest.raises(ContractError, match="has version 2, this onebox reads version 1"):
        ServerApps().process(newer.read_text().splitlines())


# --- an app's directory and secrets/supplied.json (controller -> server) ------------------------

def test_an_app_directory_s_files_are_where_servers_of_0_5_keep_them() -> None:
    layout = contract.AppDir("/opt/shop")
    assert (layout.spec, layout.app_compose, layout.deps_compose) == (
        "/opt/shop/spec.json", "/opt/shop/app.compose.yaml", "/opt/shop/deps.compose.yaml")
    assert layout.private_dirs == ("/opt/shop/secrets", "/opt/shop/releases", "/opt/shop/incoming")
    assert layout.supplied_secrets == "/opt/shop/secrets/supplied.json"
    assert layout.postgres_password == "/opt/shop/secrets/postgres/postgres_password"
    assert layout.upload(contract.upload_name("ab12")) == "/opt/shop/incoming/src-ab12.tar.gz"
    assert contract.UPLOAD_GLOB == "src-*.tar.gz"


SUPPLIED = contract.SuppliedSecrets(postgres_password=None, registry_password="r-pass", secret={"API_KEY": "k-1"})
# deploys/app.py's supplied_secrets of 0.5.1 (json.dumps of the same values, sort_keys=True).
SUPPLIED_JSON_0_5_1 = '{"postgres_password": null, "registry_password": "r-pass", "secret": {"API_KEY": "k-1"}}'
SUPPLIED_PATH = "/opt/shop/secrets/supplied.json"


def test_supplied_json_reads_as_written_and_is_byte_for_byte_what_0_5_wrote() -> None:
    """The server tells a change of the secrets by a digest of the file's bytes: other bytes for the
    same secrets would make a release on every server an upgrade converges."""
    assert contract.supplied_secrets_text(SUPPLIED) == SUPPLIED_JSON_0_5_1
    assert contract.parse_supplied_secrets(SUPPLIED_JSON_0_5_1, SUPPLIED_PATH) == SUPPLIED
    assert contract.parse_supplied_secrets("{}", SUPPLIED_PATH) == contract.SuppliedSecrets()


@pytest.mark.parametrize("change, message", [
    ({"secret": {"API_KEY": 12345}}, r"supplied.json.secret.API_KEY: expected str$"),
    ({"postgres_password": ["hunter2"]}, r"supplied.json.postgres_password: expected str$"),
    ({"extra": "hunter2"}, r"unknown key\(s\) extra$"),
    ({"version": 2}, r"has version 2, this onebox-release reads version 1: converge the server with this onebox$"),
])
def test_supplied_json_that_cannot_be_read_is_refused_naming_the_field_never_the_value(change, message) -> None:
    with pytest.raises(ContractError, match=message) as error:
        contract.parse_supplied_secrets(json.dumps({**json.loads(SUPPLIED_JSON_0_5_1), **change}), SUPPLIED_PATH)
    assert "12345" not in str(error.value) and "hunter2" not in str(error.value)


def test_the_backup_state_files_are_where_servers_of_0_5_keep_them() -> None:
    files = contract.AppFiles(None)
    assert (files.last_backup_success(), files.last_backup_run(), files.backup_installed(), files.pitr_ready(),
            files.restic_check_failed()) == tuple(f"/var/lib/onebox/backup/{name}" for name in (
                "last-success", "last-run.json", "installed", "pitr-ready", "last-check-failed"))
    assert contract.AppFiles("jobs").pitr_ready() == "/var/lib/onebox/backup-jobs/pitr-ready"


def test_the_backup_secrets_read_as_the_converge_writes_them_values_verbatim() -> None:
    values = {contract.RESTIC_PASSWORD: "p=a ss#1 'x'", contract.S3_ACCESS_KEY_ID: "AKIA", contract.S3_SECRET_ACCESS_KEY: None}
    text = contract.secret_env_text(values)
    assert text == "RESTIC_PASSWORD=p=a ss#1 'x'\nAWS_ACCESS_KEY_ID=AKIA\n"
    assert contract.parse_secret_env("# the admin's note\n\n" + text) == {"RESTIC_PASSWORD": "p=a ss#1 'x'",
                                                                         "AWS_ACCESS_KEY_ID": "AKIA"}


# --- ci-image.json (server -> controller: what CI deployed last) ---------------------------------

DIGEST = "registry.example.com/shop@sha256:" + "ab" * 32


def test_ci_image_json_reads_as_the_server_writes_it() -> None:
    record = contract.CiImageRecord(DIGEST, 1765000000)
    assert contract.parse_ci_image(contract.ci_image_text(record)) == record
    assert contract.AppDir("/opt/shop").ci_image == "/opt/shop/ci-image.json"


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"at": 1}', '{"ref": "shop:latest", "at": 1}',
                                  '{"ref": 7}'])
def test_a_ci_image_json_without_a_digest_is_no_record(text: str) -> None:
    assert contract.parse_ci_image(text) is None


def test_any_app_s_files_glob_matches_the_single_app_s_and_each_named_app_s() -> None:
    from fnmatch import fnmatch
    every = contract.AppFiles(contract.ANY_APP)
    for files in (contract.AppFiles(None), contract.AppFiles("jobs")):
        for name in ("site", "upstream", "backup_secrets", "backup_config", "backup_unit"):
            assert fnmatch(getattr(files, name), getattr(every, name)), (files.key, name)
    assert not fnmatch("onebox-api.sock.conf", every.upstream) and not fnmatch("/etc/onebox/backup.json", every.backup_secrets)
