"""Bad settings are refused before any host is touched, naming the setting and the fix."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from onebox import inventory
from onebox.inventory import INTERRUPTED, check_connection, group_data, read_group_file, secrets_file
from onebox.kit import DEFAULTS
from onebox.settings import ALLOWED_ENV, SECRET_FIELDS, Settings, SettingsError, validate_settings
from tests.unit.conftest import ROOT

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDwF/CGfO1iK1iGe/PyFpjWy8+QxR3af2u5cGnj69JZD me@laptop"


def valid(**overrides: object) -> dict:
    data = group_data("no-such-group")
    data.update(deploy_ssh_keys=[KEY], domains=["api.example.com"], letsencrypt_email="ops@example.com")
    data.update(overrides)
    return data


def test_defaults_plus_the_three_required_settings_are_valid() -> None:
    settings = validate_settings(valid())
    assert settings.sshd_port == 22
    assert settings.network_gateway == "172.30.0.1"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"domains": []}, "domains: List should have at least 1 item"),
        ({"domains": ["localhost"]}, "domains: 'localhost' is not a fully qualified domain name"),
        ({"letsencrypt_email": "ops-at-example"}, "letsencrypt_email: 'ops-at-example' is not an e-mail address"),
        # what reaches nginx, certbot and the monitoring files: no second line, no `;` or `{` (issue 29)
        ({"domains": ["api.example.com\n"]}, "domains: 'api.example.com\\n' is not a fully qualified domain name"),
        ({"domains": ["api.example.com;"]}, "domains: 'api.example.com;' is not a fully qualified domain name"),
        ({"domains": ["api.example.com{"]}, "domains: 'api.example.com{' is not a fully qualified domain name"),
        ({"domains": ["a.example.com b.example.com"]}, "domains: 'a.example.com b.example.com' is not a fully"),
        ({"letsencrypt_email": "ops@example.com\n"}, "letsencrypt_email: 'ops@example.com\\n' is not an e-mail"),
        ({"alert_webhook_url": "https://ntfy.sh/x\n"}, "alert_webhook_url: expected an http(s) URL"),
        ({"backup_on_calendar": "daily\n"}, "backup_on_calendar: not a systemd OnCalendar expression"),
        ({"sshd_port": 70000}, "sshd_port: Input should be less than or equal to 65535"),
        ({"api_port": 0}, "api_port: Input should be greater than or equal to 1024"),
        ({"docker_source": "snap"}, "docker_source: Input should be 'distro' or 'docker'"),
        ({"deploy_ssh_keys": []}, "deploy_ssh_keys: List should have at least 1 item"),
        ({"deploy_ssh_keys": ["my key"]}, "not an OpenSSH public key"),
        ({"sshd_port": 2222}, "sshd_port 2222 is not in firewall_tcp_ports [22, 80, 443]"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'"),
        ({"rate_limit_burst": -3}, "rate_limit_burst: Input should be greater than 0"),
        # one client's open requests (WebSockets) stay a fraction of nginx's connections (issue 29)
        ({"max_connections_per_client": 0}, "max_connections_per_client: Input should be greater than 0"),
        ({"max_connections_per_client": 5000}, "max_connections_per_client: Input should be less than or equal to 1024"),
        ({"acme_server": "custom"}, "acme_directory_url is empty"),
        ({"app_image_source": "registry"}, "registry_server is empty"),
        ({"app_source_dir": "/nonexistent"}, "app_source_dir '/nonexistent' is not a directory on this machine"),
        ({"docker_network_subnet": "10.0.0.1/24"}, "docker_network_subnet: 10.0.0.1/24 has host bits set"),
        ({"proxy_client_max_body_size": "ten"}, "proxy_client_max_body_size: String should match pattern"),
        ({"domian": ["x.example.com"]}, "domian: Extra inputs are not permitted"),
        ({"hostname": "Web_1"}, "hostname: String should match pattern"),
        ({"deploy_user": "root"}, "deploy_user: must be an unprivileged account"),
        ({"app_dir": "/opt/my app"}, "app_dir: String should match pattern"),
        # onebox drops every capability of the app's containers (issue 29): they come back one by name
        ({"app_cap_add": ["ALL"]}, "app_cap_add: ALL would give back every capability onebox drops"),
        ({"app_cap_add": ["setuid"]}, "app_cap_add.0: String should match pattern"),
        ({"app_cap_add": ["SETUID SETGID"]}, "app_cap_add.0: String should match pattern"),
        ({"app_read_only": "yes please"}, "app_read_only: Input should be a valid boolean"),
        ({"websocket_paths": ["/ws/ { return 200; } location /x"]}, "websocket_paths.0: String should match pattern"),
        ({"registry_server": "ghcr.io; touch /tmp/x"}, "registry_server: String should match pattern"),
        ({"acme_directory_url": "http://acme.example/dir"}, "acme_directory_url: String should match pattern"),
        # the firewall keeps the proxy reachable
        ({"firewall_tcp_ports": [22]}, "firewall_tcp_ports: lacks 80 and 443: the proxy serves HTTP and HTTPS"),
        ({"firewall_tcp_ports": [22, 80]}, "firewall_tcp_ports: lacks 443"),
        ({"firewall_tcp_ports": [22, 443]}, "lacks 80: the proxy serves HTTP and HTTPS there and the ACME HTTP-01"),
        # both API slots (api_port, api_port + 1) stay clear of ports in use
        ({"api_port": 80}, "api_port: Input should be greater than or equal to 1024"),
        ({"sshd_port": 2222, "firewall_tcp_ports": [2222, 80, 443], "api_port": 2222},
         "api_port is 2222, which is sshd_port; the app needs api_port and api_port + 1 free"),
        ({"sshd_port": 2222, "firewall_tcp_ports": [2222, 80, 443], "api_port": 2221},
         "api_port + 1 (the green slot) is 2222, which is sshd_port"),
        ({"firewall_tcp_ports": [22, 80, 443, 8001]},
         "api_port + 1 (the green slot) is 8001, which is in firewall_tcp_ports; the app needs api_port and "
         "api_port + 1 free on the server: pick another api_port such as 8002"),
        # the compose network stays clear of networks known to be taken
        ({"docker_network_subnet": "172.17.5.0/24"},
         "docker_network_subnet: overlaps 172.17.0.0/16, Docker's default bridge (docker0) on the server"),
        ({"docker_network_subnet": "172.16.0.0/12"}, "docker_network_subnet: overlaps 172.17.0.0/16"),
        ({"docker_network_subnet": "172.29.0.0/25"}, "docker_network_subnet: overlaps 172.29.0.0/24, the local target's"),
        ({"docker_network_subnet": "192.168.56.0/24"}, "docker_network_subnet: overlaps 192.168.56.0/24, the Vagrant VM's"),
        ({"docker_network_subnet": "8.8.8.0/24"}, "docker_network_subnet: must be inside a private range"),
        ({"docker_network_subnet": "169.254.169.0/24"}, "docker_network_subnet: must be inside a private range"),
        ({"docker_network_subnet": "127.0.0.0/24"}, "docker_network_subnet: must be inside a private range"),
        # no unlimited request bodies
        ({"proxy_client_max_body_size": "0"}, "proxy_client_max_body_size: 0 lets nginx accept request bodies of any size"),
        ({"proxy_client_max_body_size": "0m"}, "proxy_client_max_body_size: 0 lets nginx accept"),
        # app_dir never a system directory
        ({"app_dir": "/"}, "app_dir: String should match pattern"),
        ({"app_dir": "//etc"}, "app_dir: '//etc' starts with '//'"),
        ({"app_dir": "/usr"}, "app_dir: '/usr' is a system directory"),
        ({"app_dir": "/etc/"}, "app_dir: '/etc/' is a system directory"),
        ({"app_dir": "/opt"}, "app_dir: '/opt' is a system directory"),
        ({"app_dir": "/var/lib"}, "app_dir: '/var/lib' is a system directory"),
        ({"app_dir": "/opt/../etc"}, "app_dir: '/opt/../etc' is a system directory"),
        ({"app_dir": "/opt/app/../../etc/x"}, "app_dir: '/opt/app/../../etc/x' is a system directory"),
        ({"app_dir": "/etc/onebox"}, "app_dir: '/etc/onebox' is inside /etc, which the system owns"),
        ({"app_dir": "/usr/lib/onebox"}, "app_dir: '/usr/lib/onebox' is inside /usr"),
        ({"app_dir": "/var/lib/docker/onebox"}, "app_dir: '/var/lib/docker/onebox' is inside /var/lib/docker"),
        # the app's contract
        ({"app_health_path": "/he alth"}, "app_health_path: String should match pattern"),
        ({"app_port": 0}, "app_port: Input should be greater than or equal to 1"),
        ({"app_env": {"ONEBOX_RELEASE": "x"}}, "app_env: ONEBOX_RELEASE is set by onebox itself; choose another name"),
        ({"app_secret_env": {"ONEBOX_RELEASE": "x"}}, "app_secret_env: ONEBOX_RELEASE is set by onebox itself"),
        ({"app_env": {"POSTGRES_PASSWORD": "x"}},
         "app_secret_env: POSTGRES_PASSWORD is also set by app_env; set each variable once"),
        ({"app_env": {"APP_SECRET_KEY_FILE": "x"}},
         "app_env: APP_SECRET_KEY_FILE is set by onebox itself (the file of secret APP_SECRET_KEY)"),
        ({"app_secrets": ["APP_SECRET_KEY", "APP_SECRET_KEY_FILE"]}, "app_secrets: APP_SECRET_KEY_FILE is set by onebox"),
        ({"app_dockerfile": "../Dockerfile"}, "app_dockerfile '../Dockerfile' is not a file inside app_source_dir"),
        ({"app_dockerfile": "Missing.Dockerfile"}, "app_dockerfile 'Missing.Dockerfile' is not a file inside app_source_dir"),
        ({"app_processes": {"postgres": {"command": ["run"]}}},
         "app_processes: ['postgres'] is a service onebox manages; name the process differently"),
        # each step under the deploy lock has a time limit, never none (issue 29, finding 7)
        ({"build_timeout": 0}, "build_timeout: Input should be greater than or equal to 1"),
        ({"pull_timeout": -1}, "pull_timeout: Input should be greater than or equal to 1"),
        ({"release_step_timeout": 600000}, "release_step_timeout: Input should be less than or equal to 86400"),
        ({"release_step_timeout": "ten minutes"}, "release_step_timeout: Input should be a valid integer"),
        ({"app_processes": {"worker": {"command": []}}}, "app_processes.worker.command: List should have at least 1 item"),
        ({"app_env": {"DATABASE_URL": "postgresql://{postgres_user}:{postgres_password}@{postgres_host}/app"}},
         "app_env: DATABASE_URL uses a secret; move it to app_secret_env"),
        ({"app_env": {"X": "{secret[APP_SECRET_KEY]}"}}, "app_env: X uses a secret; move it to app_secret_env"),
        ({"app_env": {"X": "{postgres_hots}"}}, "app_env: X uses unknown {postgres_hots}; known: "),
        ({"app_secret_env": {"X": "{nope}"}}, "app_secret_env: X uses unknown {nope}; known: "),
        ({"app_secret_env": {"X": "{secret[OTHER]}"}},
         "app_secret_env: X uses secret[OTHER], which is not in app_secrets; add it there"),
        ({"redis_enabled": False}, "redis_enabled is False but app_env/app_secret_env use {redis_url}"),
        ({"postgres_enabled": False}, "postgres_enabled is False but app_env/app_secret_env use {postgres_*}"),
    ],
)
def test_bad_setting_is_named_with_its_problem(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        validate_settings(valid(**overrides))
    message = str(error.value)
    assert message.startswith("onebox: invalid settings (nothing was changed on any host)")
    assert expected in message


@pytest.mark.parametrize("value", ["changeme", "Secret", "too-short-123"])
def test_placeholder_named_secret_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ONEBOX_SECRET_APP_SECRET_KEY", value)
    with pytest.raises(SettingsError, match="ONEBOX_SECRET_APP_SECRET_KEY: looks like a placeholder") as error:
        validate_settings(valid())
    assert value not in str(error.value)


def test_placeholder_postgres_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_POSTGRES_PASSWORD", "changeme")
    with pytest.raises(SettingsError, match="postgres_password: looks like a placeholder"):
        validate_settings(valid())


def test_a_password_a_url_must_escape_is_refused_raw_in_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    password = "p@ss:w/rd-0123456789-x"
    monkeypatch.setenv("ONEBOX_POSTGRES_PASSWORD", password)
    raw = {"DATABASE_URL": "postgresql://{postgres_user}:{postgres_password}@{postgres_host}/app"}
    with pytest.raises(SettingsError, match=r"app_secret_env: DATABASE_URL .* use \{postgres_password_url\}") as error:
        validate_settings(valid(app_secret_env=raw))
    assert password not in str(error.value)
    quoted = {"DATABASE_URL": "postgresql://{postgres_user}:{postgres_password_url}@{postgres_host}/app",
              "POSTGRES_PASSWORD": "{postgres_password}"}  # not a URL: the raw password is right there
    assert validate_settings(valid(app_secret_env=quoted)).app_secret_env == quoted


def test_named_secret_not_in_app_secrets_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_SECRET_FOO", "f" * 32)
    with pytest.raises(SettingsError) as error:
        validate_settings(valid())
    assert "ONEBOX_SECRET_FOO is supplied but FOO is not in app_secrets; add it there or remove the variable" in str(
        error.value)
    assert "f" * 32 not in str(error.value)


def test_secret_value_is_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_POSTGRES_PASSWORD", "short-secret")
    with pytest.raises(SettingsError) as error:
        validate_settings(valid())
    assert "short-secret" not in str(error.value)


def test_secret_in_group_data_is_refused() -> None:
    with pytest.raises(SettingsError, match="postgres_password found in group data"):
        validate_settings(valid(postgres_password="x" * 32))


def test_environment_overrides_group_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_API_WORKERS", "7")
    monkeypatch.setenv("ONEBOX_FIREWALL_TCP_PORTS", "[22, 80, 443, 8443]")
    monkeypatch.setenv("ONEBOX_SECRET_APP_SECRET_KEY", "k" * 40)
    settings = validate_settings(valid(api_workers=2))
    assert settings.api_workers == 7
    assert settings.firewall_tcp_ports == [22, 80, 443, 8443]
    assert settings.app_secret_values["APP_SECRET_KEY"].get_secret_value() == "k" * 40
    assert "k" * 40 not in repr(settings)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ONEBOX_POSTGRES_PASSWROD", "ONEBOX_POSTGRES_PASSWROD: not a onebox setting; did you mean ONEBOX_POSTGRES_PASSWORD?"),
        ("ONEBOX_API_WORKER", "ONEBOX_API_WORKER: not a onebox setting; did you mean ONEBOX_API_WORKERS?"),
        ("ONEBOX_SSH_USR", "ONEBOX_SSH_USR: not a onebox setting; did you mean ONEBOX_SSH_USER?"),
        # the old name of the example app's key: now the named secret APP_SECRET_KEY
        ("ONEBOX_APP_SECRET_KEY", "ONEBOX_APP_SECRET_KEY: not a onebox setting; did you mean ONEBOX_SECRET_APP_SECRET_KEY?"),
        ("ONEBOX_APP_SECRET_VALUES", "ONEBOX_APP_SECRET_VALUES: not a onebox setting"),
        ("ONEBOX_XYZZY", "ONEBOX_XYZZY: not a onebox setting; settings are ONEBOX_<NAME> of those in onebox/defaults.py"),
    ],
)
def test_unknown_onebox_variable_is_refused_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, name: str, expected: str
) -> None:
    monkeypatch.setenv(name, "V4lueNeverShown-0123456789")
    with pytest.raises(SettingsError) as error:
        validate_settings(valid())
    message = str(error.value)
    assert f"  - {expected}" in message
    assert "V4lueNeverShown" not in message


def test_non_setting_variables_onebox_reads_elsewhere_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    data = valid()
    for pattern in ALLOWED_ENV:
        monkeypatch.setenv(pattern.replace("*", "ANYTHING"), "1")
    monkeypatch.setenv("ONEBOX_SECRET_ANYTHING", "")  # an empty named secret counts as not supplied
    monkeypatch.setenv("ONEBOX_SECRET_APP_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("ONEBOX_TEST_CHECK", "1")
    monkeypatch.setenv("UNRELATED", "1")
    validate_settings(data)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ONEBOX_FIREWALL_TCP_PORTS", "[22, 80"),
        ("ONEBOX_APP_ENV", '{"A": '),
        ("ONEBOX_DOMAINS", "api.example.com"),
    ],
)
def test_malformed_json_in_the_environment_is_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        validate_settings(valid())
    lines = str(error.value).splitlines()
    assert lines[0] == "onebox: invalid settings (nothing was changed on any host):"
    assert lines[1].startswith(f"  - {name}: not valid JSON (")
    assert "list and dict settings take JSON, e.g. '[22, 80, 443]'" in lines[1]
    assert len(lines) == 3  # the problem and the footer; no traceback


def test_secrets_file_supplies_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "prod.env"
    secrets.write_text("ONEBOX_POSTGRES_PASSWORD=" + "p" * 24 + "\n")
    settings = validate_settings(valid(), str(secrets))
    assert settings.postgres_password is not None
    assert settings.postgres_password.get_secret_value() == "p" * 24


def test_the_defaults_declare_every_setting_once_with_a_comment() -> None:
    source = DEFAULTS.read_text()
    lines = source.splitlines()
    declared = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            name = node.targets[0].id  # type: ignore[attr-defined]
            assert lines[node.lineno - 2].startswith("# "), f"{name} has no comment line above it"
            declared[name] = node.lineno
    secrets = {*SECRET_FIELDS, "app_secret_values"}
    assert set(declared) == set(Settings.model_fields) - secrets


def test_group_files_only_override_known_settings() -> None:
    for path in (ROOT / "group_data").glob("*.py"):
        unknown = set(read_group_file(path)) - set(Settings.model_fields)
        assert not unknown, f"{path.name} sets unknown settings {unknown}"


def test_root_login_off_while_connecting_as_root_is_refused() -> None:
    settings = validate_settings(valid(sshd_permit_root_login="no"))
    with pytest.raises(SettingsError, match="would lock itself out. Connect as deploy"):
        check_connection(settings, "root", None)
    check_connection(settings, "deploy", None)


def test_connecting_with_a_key_the_deploy_user_will_not_have_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther other@host\n")
    settings = validate_settings(valid())
    with pytest.raises(SettingsError, match="deploy_ssh_keys lacks"):
        check_connection(settings, "deploy", str(key))
    key.with_suffix(".pub").write_text(KEY.replace("me@laptop", "renamed@elsewhere") + "\n")
    check_connection(settings, "deploy", str(key))


def test_a_misspelt_secret_in_the_secrets_file_is_named_but_not_echoed(tmp_path: Path) -> None:
    secrets = tmp_path / "prod.env"
    secrets.write_text("ONEBOX_POSTGRES_PASWORD=Sup3rSecretValue123\n")
    with pytest.raises(SettingsError) as error:
        validate_settings(valid(), str(secrets))
    assert f"ONEBOX_POSTGRES_PASWORD (in {secrets}): not a onebox setting; did you mean ONEBOX_POSTGRES_PASSWORD?" in str(
        error.value)
    assert "Sup3rSecretValue123" not in str(error.value)


def test_a_variable_read_from_the_environment_only_is_refused_in_the_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "prod.env"
    secrets.write_text("ONEBOX_SSH_USER=deploy\n")
    with pytest.raises(SettingsError, match=r"ONEBOX_SSH_USER \(in .*prod.env\): read from the environment only"):
        validate_settings(valid(), str(secrets))


def test_secrets_file_supplies_named_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "prod.env"
    secrets.write_text("ONEBOX_SECRET_APP_SECRET_KEY=" + "s" * 32 + "\n")
    settings = validate_settings(valid(), str(secrets))
    assert settings.app_secret_values["APP_SECRET_KEY"].get_secret_value() == "s" * 32


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_secrets_file_readable_by_others_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_secrets: Callable[..., Path], mode: int
) -> None:
    monkeypatch.chdir(tmp_path)  # the deploy directory pyinfra runs from
    write_secrets(tmp_path / "secrets" / "prod.env", mode=mode)
    with pytest.raises(SettingsError) as error:
        secrets_file("prod")
    assert str(error.value) == (f"onebox: secrets/prod.env is readable by others (mode {mode:04o}); "
                                "run: chmod 600 secrets/prod.env")


def test_secrets_file_named_in_the_environment_is_checked_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_secrets: Callable[..., Path]
) -> None:
    path = write_secrets(tmp_path / "my secrets.env", mode=0o644)
    monkeypatch.setenv("ONEBOX_SECRETS_FILE", str(path))
    with pytest.raises(SettingsError, match=r"is readable by others \(mode 0644\); run: chmod 600 '.*/my secrets.env'"):
        secrets_file("prod")
    with pytest.raises(SystemExit, match="is readable by others"):
        inventory.settings_for_group("prod")
    path.chmod(0o600)
    assert secrets_file("prod") == str(path)
    monkeypatch.setenv("ONEBOX_SECRETS_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(SettingsError, match="ONEBOX_SECRETS_FILE names .*missing.env, which is not a file"):
        secrets_file("prod")


def test_owner_only_secrets_file_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_secrets: Callable[..., Path]
) -> None:
    assert secrets_file("prod", tmp_path) is None  # no file: nothing supplied
    path = write_secrets(tmp_path / "secrets" / "prod.env", "ONEBOX_POSTGRES_PASSWORD=" + "p" * 24)
    assert secrets_file("prod", tmp_path) == str(path)


# A stand-in for pyinfra's CLI: its handler exits 0, then the inventory loads.
INTERRUPT_SCRIPT = """
import os, signal, sys, time
def pyinfra_handler(signum, frame):
    print("Exiting upon user request!")
    sys.exit(0)
signal.signal(signal.SIGINT, pyinfra_handler)
{load}
os.kill(os.getpid(), signal.SIGINT)
time.sleep(30)
"""


@pytest.mark.parametrize(
    "load",
    [
        "from onebox.inventory import exit_non_zero_on_interrupt; exit_non_zero_on_interrupt()",
        # as inventories/prod.py does under `pyinfra`
        "import pyinfra; pyinfra.is_cli = True; from onebox.inventory import settings_for_group; settings_for_group('prod')",
    ],
)
def test_ctrl_c_exits_130_with_what_became_of_the_release(
    load: str, tmp_path: Path, write_secrets: Callable[..., Path]
) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ONEBOX_")}
    env["ONEBOX_SECRETS_FILE"] = str(write_secrets(tmp_path / "empty.env"))  # never this checkout's real secrets
    done = subprocess.run([sys.executable, "-c", INTERRUPT_SCRIPT.format(load=load)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().endswith(INTERRUPTED)
    assert "Exiting upon user request" not in done.stdout


# --- an ONEBOX_<NAME> variable replaces the group's value, dicts and lists included ------------

def test_a_dict_from_the_environment_replaces_the_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_APP_ENV", '{"A": "b"}')
    monkeypatch.setenv("ONEBOX_APP_BUILD_ARGS", '{"ONLY": "this"}')
    settings = validate_settings(valid(app_env={"A": "z", "X": "1"}, app_build_args={"PYTHON_IMAGE": "python:3.13-slim"}))
    assert settings.app_env == {"A": "b"}  # not merged with the group's keys
    assert settings.app_build_args == {"ONLY": "this"}


def test_an_empty_dict_from_the_environment_empties_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_APP_BUILD_ARGS", "{}")
    assert validate_settings(valid(app_build_args={"PYTHON_IMAGE": "python:3.13-slim"})).app_build_args == {}


def test_a_list_from_the_environment_replaces_the_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_DOMAINS", '["other.example.com"]')
    settings = validate_settings(valid(domains=["api.example.com", "www.example.com"]))
    assert settings.domains == ["other.example.com"]


def test_a_scalar_from_the_environment_replaces_the_groups_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_API_WORKERS", "7")
    assert validate_settings(valid(api_workers=2)).api_workers == 7
    monkeypatch.delenv("ONEBOX_API_WORKERS")
    assert validate_settings(valid(api_workers=2)).api_workers == 2  # the group's again


def test_the_secrets_file_replaces_the_group_and_the_environment_replaces_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_secrets: Callable[..., Path]
) -> None:
    path = str(write_secrets(tmp_path / "prod.env", "ONEBOX_API_WORKERS=4"))
    assert validate_settings(valid(api_workers=2), path).api_workers == 4
    monkeypatch.setenv("ONEBOX_API_WORKERS", "7")
    assert validate_settings(valid(api_workers=2), path).api_workers == 7


@pytest.mark.parametrize("value", ["it's", "C:\\dir\\"])
def test_an_app_env_value_compose_cannot_read_back_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"app_env: X (contains a single quote|ends with a backslash).*app_secret_env"):
        validate_settings(valid(app_env={"X": value}))


@pytest.mark.parametrize("repository", ["rest:https://user:Sup3rSecretValue@backup.example.com/onebox",
                                        "rest:http://user@backup.example.com:8000/",
                                        "s3:https://key:Sup3rSecretValue@s3.example.com/bucket"])
def test_a_repository_url_with_credentials_is_refused_without_echoing_them(repository: str) -> None:
    with pytest.raises(SettingsError) as error:
        validate_settings(valid(backup_restic_repository=repository))
    message = str(error.value)
    assert "backup_restic_repository: the " in message and "carries a user or password" in message
    assert "RESTIC_REST_PASSWORD" in message and "Sup3rSecretValue" not in message
    assert "user@" not in message
