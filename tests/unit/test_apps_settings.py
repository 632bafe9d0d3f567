"""Several apps on one server: each entry of `apps` is a whole app, refused early when two
apps would share a directory, a port, a network or a domain."""

from __future__ import annotations

import pytest

from onebox.settings import SettingsError, validate_settings
from tests.unit.test_settings import valid

JOBS = {"domains": ["jobs.example.com"], "app_source_dir": "examples/jobs", "app_dockerfile": "docker/Dockerfile",
        "api_port": 8010,
        "docker_network_subnet": "172.30.1.0/24", "app_secrets": [], "app_release_command": None}


def two_apps(**jobs: object) -> dict:
    return valid(apps={"api": {"domains": ["api.example.com"]}, "jobs": {**JOBS, **jobs}})


def refusal(data: dict) -> str:
    with pytest.raises(SettingsError) as error:
        validate_settings(data)
    return str(error.value)


def test_no_apps_is_one_app_with_todays_file_names() -> None:
    settings = validate_settings(valid())
    assert [app.app_name for app in settings.app_list] == ["onebox"]
    assert settings.files.key is None
    assert settings.files.upstream == "onebox-upstream.conf" and settings.files.site == "onebox.conf"
    assert settings.files.backup_config == "/etc/onebox/backup.json"
    assert settings.app_backup_dir == settings.backup_dir


def test_each_app_is_the_top_level_with_its_entry_on_top() -> None:
    settings = validate_settings(two_apps())
    api, jobs = settings.app_list
    assert (api.app_name, jobs.app_name) == ("api", "jobs")
    assert (api.app_dir, jobs.app_dir) == ("/opt/onebox-api", "/opt/onebox-jobs")
    assert jobs.app_source_dir == "examples/jobs" and api.app_source_dir == "examples/app"
    assert jobs.slot_ports == (8010, 8011) and api.slot_ports == (8000, 8001)
    assert jobs.hostname == api.hostname == "onebox"  # server-wide settings are shared
    assert jobs.files.upstream == "onebox-upstream-jobs.conf" and jobs.files.site == "onebox-jobs.conf"
    assert jobs.files.nginx_prefix == "onebox_jobs" and jobs.files.local_socket == "/run/onebox-api-jobs.sock"
    assert jobs.app_backup_dir == "/var/backups/onebox/jobs"
    assert jobs.app_list is api.app_list


@pytest.mark.parametrize(("jobs", "expected"), [
    ({"api_port": 8001}, "apps.jobs.api_port: its slots 8001 and 8002 meet apps.api's (8000, 8001)"),
    ({"docker_network_subnet": "172.30.0.0/16"}, "apps.jobs.docker_network_subnet: 172.30.0.0/16 overlaps apps.api's"),
    ({"domains": ["api.example.com"]}, "apps.jobs.domains: api.example.com is also apps.api's"),
    ({"app_dir": "/opt/onebox-api/jobs"}, "apps.jobs.app_dir: /opt/onebox-api/jobs and apps.api's /opt/onebox-api overlap"),
    ({"hostname": "other"}, "apps.jobs.hostname: not a setting an app can have"),
    ({"backup_dir": "/srv/b"}, "apps.jobs.backup_dir: not a setting an app can have"),
    ({"app_name": "x"}, "apps.jobs.app_name: an app's name is its key"),
    ({"api_port": 80}, "apps.jobs.api_port: Input should be greater than or equal to 1024"),
    # each app counts a client's connections apart: the sum is what one client may hold (issue 29)
    ({"max_connections_per_client": 1000}, "max_connections_per_client: the apps' limits add up to 1100"),
])
def test_what_two_apps_may_not_share_is_refused_naming_the_setting(jobs: dict, expected: str) -> None:
    assert expected in refusal(two_apps(**jobs))


def test_a_clash_suggests_a_free_value() -> None:
    message = refusal(two_apps(api_port=8000, docker_network_subnet="172.30.0.0/24"))
    assert "pick another such as 8010" in message and "pick another such as 172.30.1.0/24" in message


def test_an_app_named_after_anothers_slot_project_is_refused() -> None:
    data = valid(apps={"api": {"domains": ["a.example.com"]},
                       "api-blue": {**JOBS, "domains": ["b.example.com"]}})
    assert "apps.api-blue: its name is the compose project of app api's blue slot" in refusal(data)


def test_removed_apps_must_not_also_be_apps() -> None:
    assert "apps_removed: jobs is also in apps" in refusal({**two_apps(), "apps_removed": ["jobs"]})


def test_a_supplied_postgres_password_is_refused_with_several_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_POSTGRES_PASSWORD", "a-real-password-of-length")
    assert "ONEBOX_POSTGRES_PASSWORD: with several apps each app's database has its own password" in refusal(two_apps())


def test_named_secrets_go_to_the_apps_that_list_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_SECRET_APP_SECRET_KEY", "k" * 32)
    api, jobs = validate_settings(two_apps()).app_list
    assert set(api.app_secret_values) == {"APP_SECRET_KEY"} and jobs.app_secret_values == {}
    monkeypatch.setenv("ONEBOX_SECRET_NOBODY", "n" * 32)
    assert "ONEBOX_SECRET_NOBODY: not a onebox setting" in refusal(two_apps()) or \
        "NOBODY is supplied but no app lists NOBODY" in refusal(two_apps())


def test_the_environment_replaces_an_apps_own_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_RATE_LIMIT_RPS", "3")
    api, jobs = validate_settings(two_apps(rate_limit_rps=50)).app_list
    assert api.rate_limit_rps == jobs.rate_limit_rps == 3
