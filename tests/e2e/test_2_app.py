"""The application stack, live: records survive restarts, broadcasts cross workers,
secrets stay on the server."""

from __future__ import annotations

import hashlib
import json
import secrets

import httpx

from onebox.verify.api import broadcast_received, wait_ready


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
    generated = json.loads(deployed.ssh(f"cat {deployed.settings.app_dir}/secrets/generated.json").stdout)
    secrets = [generated["postgres_password"], *generated["secret"].values()]
    assert len(secrets) == 2 and all(len(secret) == 64 for secret in secrets)
    inspected = deployed.ssh("docker inspect $(docker ps -q)").stdout
    for secret in secrets:
        assert secret not in deployed.first.output and secret not in deployed.second.output
        assert secret not in inspected


def test_a_supplied_secret_reaches_the_app_but_no_output(deployed, api) -> None:
    secret = secrets.token_hex(24)
    supplied = deployed.deploy({"ONEBOX_SECRET_APP_SECRET_KEY": secret}, flags=["--debug", "-vvv"])
    assert supplied.returncode == 0, supplied.output[-3000:]
    for derived in (secret, hashlib.sha256(secret.encode()).hexdigest(), hashlib.sha1(secret.encode()).hexdigest()):
        assert derived not in supplied.output
    app_dir = deployed.settings.app_dir
    assert json.loads(deployed.ssh(f"cat {app_dir}/secrets/supplied.json").stdout)["secret"] == {"APP_SECRET_KEY": secret}
    api_container = deployed.container_ids()["api"]
    # A file for apps that read files, and (through the entrypoint shim) a variable for apps that read their environment.
    assert deployed.ssh(f"docker exec {api_container} cat /run/secrets/APP_SECRET_KEY").stdout == secret
    environ = deployed.ssh(f"docker exec {api_container} cat /proc/1/environ").stdout.split("\0")
    assert f"APP_SECRET_KEY={secret}" in environ
    assert secret not in deployed.ssh(f"docker inspect {api_container}").stdout
    wait_ready(api)
    assert deployed.deploy().returncode == 0  # back to the generated secret
    assert json.loads(deployed.ssh(f"cat {app_dir}/secrets/supplied.json").stdout)["secret"] == {}
