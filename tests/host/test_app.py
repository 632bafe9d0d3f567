"""The app runs as declared: its dependencies and the live release healthy, only the
live slot published, on 127.0.0.1, secrets as root-only files and never in `docker inspect`."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def state(host, app) -> dict:
    return json.loads(host.check_output(f"cat {app.app_dir}/state.json"))


@pytest.fixture(scope="module")
def containers(host, app, state) -> dict[str, dict]:
    """service -> `docker inspect`, for the dependencies and the live release."""
    projects = (app.app_name, f"{app.app_name}-{state['slot']}")
    ids = []
    for project in projects:
        ids += host.check_output(f"docker ps -aq --filter label=com.docker.compose.project={project}").split()
    inspected = json.loads(host.check_output("docker inspect " + " ".join(ids)))
    return {item["Config"]["Labels"]["com.docker.compose.service"]: item for item in inspected}


def test_what_the_restart_policies_leave_stopped_is_started_at_boot(host) -> None:
    # a `docker kill`ed container stays down under unless-stopped; onebox-release boot starts it
    assert host.service("onebox-boot.service").is_enabled


def declared_services(app) -> set[str]:
    dependencies = {name for name, on in (("postgres", app.postgres_enabled), ("redis", app.redis_enabled)) if on}
    return {"api", *app.app_processes, *dependencies}


def test_a_release_is_live_and_nothing_is_half_done(state) -> None:
    assert state["live"], "no release is live"
    assert state.get("transition") is None, f"an interrupted release: {state['transition']}"
    assert state["last_deploy"]["ok"], state["last_deploy"]


def test_every_declared_service_runs_healthy_with_a_restart_policy(containers, app) -> None:
    assert set(containers) == declared_services(app)
    for service, item in containers.items():
        assert item["State"]["Status"] == "running", f"{service} is {item['State']['Status']}"
        health = item["State"].get("Health", {}).get("Status", "none")
        assert health in ("healthy", "none"), f"{service} is {health}"
        assert item["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", service
        assert item["HostConfig"]["LogConfig"]["Config"].get("max-size"), service


def test_the_live_release_answers_its_health_path_through_nginx(host, app, state) -> None:
    socket = app.files.local_socket
    status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --unix-socket {socket} "
                               f"http://{app.domains[0]}{app.app_health_path}")
    assert status.startswith("2"), f"{app.app_health_path} answered {status}"
    assert host.file(f"{app.app_dir}/releases/{state['live']}/release.json").exists


def test_only_the_live_slot_is_published_and_only_on_loopback(containers, app, state) -> None:
    port = app.slot_ports[0 if state["slot"] == "blue" else 1]
    bindings = containers["api"]["HostConfig"]["PortBindings"]
    assert bindings == {f"{app.app_port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    for service, item in containers.items():
        if service != "api":
            assert not item["HostConfig"]["PortBindings"], service


def test_the_app_s_containers_have_no_capabilities_and_gain_none(containers, app) -> None:
    # issue 29, finding 8: templates/app/app.compose.yaml.j2.
    for service, item in containers.items():
        if service in ("postgres", "redis"):
            continue
        config = item["HostConfig"]
        assert "no-new-privileges=true" in (config["SecurityOpt"] or []), service
        assert config["CapDrop"] == ["ALL"], service
        given_back = sorted(name.removeprefix("CAP_") for name in config["CapAdd"] or [])  # Docker may add CAP_
        assert given_back == sorted(name.removeprefix("CAP_") for name in app.app_cap_add), service
        assert config["ReadonlyRootfs"] is app.app_read_only, service


def test_nothing_but_the_proxy_listens_publicly(host, app) -> None:
    for port in (*app.slot_ports, 5432, 6379):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_secrets_are_root_only_files_and_never_in_docker_inspect(host, app, state, containers) -> None:
    secrets_dir = host.file(f"{app.app_dir}/secrets")
    assert (secrets_dir.user, secrets_dir.mode) == ("root", 0o700)
    release_secrets = host.file(f"{app.app_dir}/releases/{state['live']}/secrets")
    assert (release_secrets.user, release_secrets.mode) == ("root", 0o700)
    values = [host.file(f"{release_secrets.path}/{name}").content_string
              for name in release_secrets.listdir()]
    inspected = json.dumps(list(containers.values()))
    for value in values:
        assert len(value) >= 16 and value not in inspected


def test_data_volumes_exist_and_are_mounted(host, app, containers) -> None:
    volumes = host.check_output("docker volume ls -q").split()
    for service, volume, path in (("postgres", "postgres-data", "/var/lib/postgresql/data"),
                                  ("redis", "redis-data", "/data")):
        if service not in containers:
            continue
        assert f"{app.app_name}_{volume}" in volumes
        mounts = {m["Destination"]: m.get("Name") for m in containers[service]["Mounts"]}
        assert mounts.get(path) == f"{app.app_name}_{volume}"


def test_redis_persists_with_an_append_only_file(host, app, containers) -> None:
    if "redis" not in containers:
        pytest.skip("redis_enabled = False")
    out = host.check_output(f"docker exec {containers['redis']['Id']} redis-cli config get appendonly")
    assert out.split() == ["appendonly", "yes"]
