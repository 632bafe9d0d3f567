"""The compose project runs healthy, with only the API published, on 127.0.0.1."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def containers(host, settings) -> dict[str, dict]:
    ids = host.check_output(f"docker compose --project-directory {settings.app_dir} ps -q").split()
    inspected = json.loads(host.check_output("docker inspect " + " ".join(ids)))
    return {item["Config"]["Labels"]["com.docker.compose.service"]: item for item in inspected}


def test_every_service_runs_healthy_with_a_restart_policy(containers) -> None:
    assert set(containers) == {"api", "postgres", "redis"}
    for service, item in containers.items():
        assert item["State"]["Health"]["Status"] == "healthy", service
        assert item["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", service
        assert item["HostConfig"]["LogConfig"]["Config"].get("max-size"), service


def test_only_the_api_is_published_and_only_on_loopback(containers, settings) -> None:
    bindings = containers["api"]["HostConfig"]["PortBindings"]
    assert bindings == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(settings.api_port)}]}
    assert not containers["postgres"]["HostConfig"]["PortBindings"]
    assert not containers["redis"]["HostConfig"]["PortBindings"]


def test_api_listens_on_loopback_only(host, settings) -> None:
    assert host.socket(f"tcp://127.0.0.1:{settings.api_port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{settings.api_port}").is_listening
    for port in (5432, 6379):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_secret_env_files_are_root_only(host, settings) -> None:
    for name in ("generated.env", "supplied.env"):
        env_file = host.file(f"{settings.app_dir}/{name}")
        assert (env_file.user, env_file.group, env_file.mode) == ("root", "root", 0o600), name


def test_data_volumes_exist_and_are_mounted(host, settings, containers) -> None:
    volumes = host.check_output("docker volume ls -q").split()
    for service, volume, path in (("postgres", "postgres-data", "/var/lib/postgresql/data"),
                                  ("redis", "redis-data", "/data")):
        assert f"{settings.app_name}_{volume}" in volumes
        mounts = {m["Destination"]: m.get("Name") for m in containers[service]["Mounts"]}
        assert mounts.get(path) == f"{settings.app_name}_{volume}"


def test_redis_persists_with_an_append_only_file(host, settings) -> None:
    out = host.check_output(
        f"docker compose --project-directory {settings.app_dir} exec -T redis redis-cli config get appendonly"
    )
    assert out.split() == ["appendonly", "yes"]
