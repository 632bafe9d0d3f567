"""The application stack, live: records survive restarts, broadcasts cross workers,
secrets stay on the server."""

from __future__ import annotations

import secrets

import httpx
import pytest

from onebox.verify.api import api_tunnel, broadcast_received, wait_ready


@pytest.fixture(scope="module")
def api(deployed):
    with api_tunnel(deployed.ssh_args) as base_url:
        wait_ready(base_url)
        yield base_url


def test_health_and_readiness(api) -> None:
    assert httpx.get(f"{api}/health").json() == {"status": "ok"}
    assert httpx.get(f"{api}/ready").json() == {"postgres": "ok", "redis": "ok"}


def test_a_record_survives_an_api_restart(deployed, api) -> None:
    created = httpx.post(f"{api}/items", json={"name": "survivor"})
    assert created.status_code == 201
    restart = deployed.ssh(f"docker restart {deployed.container_ids()['api']}")
    assert restart.returncode == 0, restart.stderr
    wait_ready(api)
    assert httpx.get(f"{api}/items/{created.json()['id']}").json()["name"] == "survivor"


def test_redis_counter_counts(api) -> None:
    first = httpx.post(f"{api}/hits").json()["hits"]
    assert httpx.post(f"{api}/hits").json()["hits"] == first + 1


def test_a_broadcast_reaches_two_clients(api) -> None:
    assert broadcast_received(api, "/ws/broadcast", "hello both") == ["hello both", "hello both"]


def test_generated_secrets_never_leave_the_server(deployed) -> None:
    env = deployed.ssh(f"cat {deployed.settings.app_dir}/generated.env").stdout
    secrets = [line.split("=", 1)[1] for line in env.splitlines() if "=" in line]
    assert len(secrets) == 2 and all(len(secret) == 64 for secret in secrets)
    labels = deployed.ssh("docker inspect -f '{{json .Config.Labels}}' $(docker ps -q)").stdout
    for secret in secrets:
        assert secret not in deployed.first.output and secret not in deployed.second.output
        assert secret not in labels


def test_a_supplied_secret_reaches_the_api_but_no_output(deployed, api) -> None:
    secret = secrets.token_hex(24)
    supplied = deployed.deploy({"ONEBOX_APP_SECRET_KEY": secret})
    assert supplied.returncode == 0, supplied.output[-3000:]
    assert secret not in supplied.output
    app_dir = deployed.settings.app_dir
    assert f"APP_SECRET_KEY={secret}" in deployed.ssh(f"cat {app_dir}/supplied.env").stdout
    api_container = deployed.container_ids()["api"]
    assert deployed.ssh(f"docker exec {api_container} printenv APP_SECRET_KEY").stdout.strip() == secret
    assert secret not in deployed.ssh(f"docker inspect -f '{{{{json .Config.Labels}}}}' {api_container}").stdout
    wait_ready(api)
    assert deployed.deploy().returncode == 0  # back to the generated secret
    assert deployed.ssh(f"cat {app_dir}/supplied.env").stdout == ""
