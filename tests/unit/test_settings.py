"""Bad settings are refused before any host is touched, naming the setting and the fix."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from onebox.inventory import GROUP_DATA, check_connection, group_data, read_group_file
from onebox.settings import Settings, SettingsError, validate_settings

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
        ({"sshd_port": 70000}, "sshd_port: Input should be less than or equal to 65535"),
        ({"api_port": 0}, "api_port: Input should be greater than or equal to 1"),
        ({"docker_source": "snap"}, "docker_source: Input should be 'distro' or 'docker'"),
        ({"deploy_ssh_keys": []}, "deploy_ssh_keys: List should have at least 1 item"),
        ({"deploy_ssh_keys": ["my key"]}, "not an OpenSSH public key"),
        ({"sshd_port": 2222}, "sshd_port 2222 is not in firewall_tcp_ports [22, 80, 443]"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'"),
        ({"rate_limit_burst": -3}, "rate_limit_burst: Input should be greater than 0"),
        ({"acme_server": "custom"}, "acme_directory_url is empty"),
        ({"app_image_source": "registry"}, "registry_server is empty"),
        ({"app_source_dir": "/nonexistent"}, "app_source_dir '/nonexistent' has no Dockerfile"),
        ({"docker_network_subnet": "10.0.0.1/24"}, "docker_network_subnet: 10.0.0.1/24 has host bits set"),
        ({"proxy_client_max_body_size": "ten"}, "proxy_client_max_body_size: String should match pattern"),
        ({"domian": ["x.example.com"]}, "domian: Extra inputs are not permitted"),
        ({"hostname": "Web_1"}, "hostname: String should match pattern"),
        ({"deploy_user": "root"}, "deploy_user: must be an unprivileged account"),
        ({"app_dir": "/opt/my app"}, "app_dir: String should match pattern"),
        ({"websocket_paths": ["/ws/ { return 200; } location /x"]}, "websocket_paths.0: String should match pattern"),
        ({"registry_server": "ghcr.io; touch /tmp/x"}, "registry_server: String should match pattern"),
        ({"acme_directory_url": "http://acme.example/dir"}, "acme_directory_url: String should match pattern"),
    ],
)
def test_bad_setting_is_named_with_its_problem(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        validate_settings(valid(**overrides))
    message = str(error.value)
    assert message.startswith("onebox: invalid settings (nothing was changed on any host)")
    assert expected in message


def test_placeholder_secret_from_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEBOX_APP_SECRET_KEY", "changeme")
    with pytest.raises(SettingsError, match="app_secret_key: looks like a placeholder"):
        validate_settings(valid())


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
    monkeypatch.setenv("ONEBOX_APP_SECRET_KEY", "k" * 40)
    settings = validate_settings(valid(api_workers=2))
    assert settings.api_workers == 7
    assert settings.app_secret_key is not None
    assert "k" * 40 not in repr(settings)


def test_secrets_file_supplies_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "prod.env"
    secrets.write_text("ONEBOX_POSTGRES_PASSWORD=" + "p" * 24 + "\n")
    settings = validate_settings(valid(), str(secrets))
    assert settings.postgres_password is not None
    assert settings.postgres_password.get_secret_value() == "p" * 24


def test_all_py_declares_every_setting_once_with_a_comment() -> None:
    source = (GROUP_DATA / "all.py").read_text()
    lines = source.splitlines()
    declared = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            name = node.targets[0].id  # type: ignore[attr-defined]
            assert lines[node.lineno - 2].startswith("# "), f"{name} has no comment line above it"
            declared[name] = node.lineno
    secrets = {"app_secret_key", "postgres_password", "registry_password"}
    assert set(declared) == set(Settings.model_fields) - secrets


def test_group_files_only_override_known_settings() -> None:
    for path in GROUP_DATA.glob("*.py"):
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
    assert "postgres_pasword: Extra inputs are not permitted" in str(error.value)
    assert "Sup3rSecretValue123" not in str(error.value)
