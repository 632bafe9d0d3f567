"""app_dir and backup_dir are directories of their own: `onebox purge` deletes app_dir whole and every
converge re-owns backup_dir root:700, so neither may be a system directory, the deploy user's home,
onebox's own state, nor overlap the other. Refused before any connection, naming the setting."""

from __future__ import annotations

import pytest

from onebox.settings import SettingsError, validate_settings
from tests.unit.test_apps_settings import two_apps
from tests.unit.test_settings import valid


def refusal(data: dict) -> str:
    with pytest.raises(SettingsError) as error:
        validate_settings(data)
    message = str(error.value)
    assert message.startswith("onebox: invalid settings (nothing was changed on any host)")
    return message


SYSTEM = ["/etc", "/usr", "/var", "/var/lib", "/home", "/root", "/boot", "/opt", "/srv", "/tmp", "/run", "/var/backups",
          "/usr/local", "/usr/local/lib"]
ONEBOX_STATE = ["/var/lib/onebox", "/var/lib/onebox/backup", "/etc/onebox", "/usr/local/lib/onebox"]


@pytest.mark.parametrize("directory", [*SYSTEM, *ONEBOX_STATE, "/etc/ssh", "/var/lib/docker", "/home/deploy",
                                       "/home/deploy/.ssh", "/root/.ssh"])
def test_a_destructive_backup_dir_is_refused(directory: str) -> None:
    message = refusal(valid(backup_dir=directory))
    assert f"backup_dir: '{directory}' " in message or f"backup_dir: {directory!r} " in message
    assert "use a directory of its own such as '/var/backups/onebox'" in message or "use e.g." in message


@pytest.mark.parametrize("directory", [*SYSTEM, *ONEBOX_STATE, "/var/lib/onebox/app", "/home/deploy",
                                       "/home/deploy/.ssh", "/root/.ssh"])
def test_a_destructive_app_dir_is_refused(directory: str) -> None:
    message = refusal(valid(app_dir=directory))
    assert f"app_dir: '{directory}' " in message
    assert "use a directory of its own such as '/opt/myapp'" in message


def test_the_deploy_users_home_is_the_deploy_users() -> None:
    assert "is the home of deploy_user 'ops'" in refusal(valid(deploy_user="ops", backup_dir="/home/ops"))
    assert "is the home of deploy_user 'ops'" in refusal(valid(deploy_user="ops", app_dir="/home/ops"))
    # another name under /home is nobody's home as far as onebox knows; inside the home is the user's own
    assert validate_settings(valid(deploy_user="ops", app_dir="/home/deploy")).app_dir == "/home/deploy"
    assert validate_settings(valid(app_dir="/home/deploy/app")).app_dir == "/home/deploy/app"


@pytest.mark.parametrize(("app_dir", "backup_dir"), [
    ("/opt/onebox", "/opt/onebox"),
    ("/opt/onebox", "/opt/onebox/backups"),
    ("/srv/data/app", "/srv/data"),
    ("/opt/onebox", "/opt/onebox/"),
])
def test_app_dir_and_backup_dir_may_not_overlap(app_dir: str, backup_dir: str) -> None:
    message = refusal(valid(app_dir=app_dir, backup_dir=backup_dir))
    assert "backup_dir: " in message and "overlap" in message and "keep them apart" in message


def test_directories_of_their_own_stay_valid() -> None:
    settings = validate_settings(valid())
    assert (settings.app_dir, settings.backup_dir) == ("/opt/onebox", "/var/backups/onebox")
    settings = validate_settings(valid(app_dir="/opt/onebox-x", backup_dir="/opt/onebox"))  # a prefix, not inside
    assert (settings.app_dir, settings.backup_dir) == ("/opt/onebox-x", "/opt/onebox")
    settings = validate_settings(valid(app_dir="/srv/myapp", backup_dir="/srv/backups/"))
    assert (settings.app_dir, settings.backup_dir) == ("/srv/myapp", "/srv/backups")
    assert validate_settings(valid(app_dir="/usr/local/myapp")).app_dir == "/usr/local/myapp"  # the admin's


@pytest.mark.parametrize(("data", "expected"), [
    (two_apps(app_dir="/var/backups/onebox/jobs"), "apps.jobs: backup_dir: '/var/backups/onebox' and app_dir "
                                                   "'/var/backups/onebox/jobs' overlap"),
    (two_apps(app_dir="/var/backups"), "apps.jobs.app_dir: '/var/backups' is a system directory"),
    (two_apps(app_dir="/home/deploy"), "apps.jobs: app_dir: '/home/deploy' is the home of deploy_user 'deploy'"),
    (two_apps(app_dir="/var/lib/onebox"), "apps.jobs.app_dir: '/var/lib/onebox' is a directory onebox owns"),
    ({**two_apps(), "backup_dir": "/opt/onebox-api/backups"},
     "apps.api: backup_dir: '/opt/onebox-api/backups' and app_dir '/opt/onebox-api' overlap"),
])
def test_each_app_of_several_keeps_its_directory_apart(data: dict, expected: str) -> None:
    assert expected in refusal(data)
