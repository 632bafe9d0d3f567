"""Every docker argv onebox runs (server tools and controller), as the exact list each builder returns (borgmatic's
tests are the model): a changed flag or order shows here before it reaches a server."""

from __future__ import annotations

import re
from pathlib import Path

from onebox.server import docker

# --- compose ---------------------------------------------------------------------------------


def test_compose_names_the_project_its_directory_and_each_file() -> None:
    assert docker.compose("shop-blue", Path("/srv/shop"), [Path("/srv/shop/a.yaml"), Path("/srv/shop/b.yaml")],
                          "ps", "-q") == [
        "docker", "compose", "-p", "shop-blue", "--project-directory", "/srv/shop",
        "-f", "/srv/shop/a.yaml", "-f", "/srv/shop/b.yaml", "ps", "-q"]


def test_compose_without_files() -> None:
    assert docker.compose("shop", Path("/srv/shop"), []) == [
        "docker", "compose", "-p", "shop", "--project-directory", "/srv/shop"]


def test_up_plain() -> None:
    assert docker.up("api") == ["up", "-d", "--no-build", "--pull", "never", "api"]


def test_up_with_every_option() -> None:
    assert docker.up("api", "worker", wait=True, no_recreate=True, remove_orphans=True) == [
        "up", "-d", "--no-build", "--pull", "never", "--no-recreate", "--remove-orphans",
        "--wait", "--wait-timeout", "180", "api", "worker"]


def test_compose_down_unfiled() -> None:
    assert docker.compose_down_unfiled("shop-green") == [
        "docker", "compose", "-p", "shop-green", "down", "--remove-orphans"]


# --- containers ------------------------------------------------------------------------------


def test_ps() -> None:
    assert docker.ps("shop-blue") == [
        "docker", "ps", "-a", "--filter", "label=com.docker.compose.project=shop-blue", "--format", "{{json .}}"]


def test_ps_service_ids_running() -> None:
    assert docker.ps_service_ids("shop", "redis") == [
        "docker", "ps", "-q", "--filter", "label=com.docker.compose.project=shop",
        "--filter", "label=com.docker.compose.service=redis"]


def test_ps_service_ids_stopped_too() -> None:
    assert docker.ps_service_ids("shop", "redis", running=False) == [
        "docker", "ps", "-q", "-a", "--filter", "label=com.docker.compose.project=shop",
        "--filter", "label=com.docker.compose.service=redis"]


def test_ps_projects() -> None:
    assert docker.ps_projects() == [
        "docker", "ps", "--format",
        '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Label "com.docker.compose.service"}}']


def test_inspect_plain() -> None:
    assert docker.inspect("c1") == ["docker", "inspect", "c1"]
    assert docker.inspect("t1", "t2") == ["docker", "inspect", "t1", "t2"]


def test_inspect_with_template() -> None:
    assert docker.inspect("c1", "c2", template="{{.Id}}") == ["docker", "inspect", "-f", "{{.Id}}", "c1", "c2"]


def test_container_networks() -> None:
    assert docker.container_networks("c1") == ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", "c1"]


def test_restart_counts() -> None:
    assert docker.restart_counts("a1", "b2") == ["docker", "inspect", "-f", "{{.Id}} {{.RestartCount}}", "a1", "b2"]


def test_container_running() -> None:
    assert docker.container_running("pg") == ["docker", "inspect", "-f", "{{.State.Running}}", "pg"]


def test_rm_force_long_flag() -> None:
    assert docker.rm_force("shop-release") == ["docker", "rm", "--force", "shop-release"]


def test_rm_force_short_flag() -> None:
    assert docker.rm_force("shop-redis-restore", short_flag=True) == ["docker", "rm", "-f", "shop-redis-restore"]


def test_stop_and_start() -> None:
    assert docker.stop("pg") == ["docker", "stop", "pg"]
    assert docker.stop("a", "b") == ["docker", "stop", "a", "b"]
    assert docker.start("pg") == ["docker", "start", "pg"]
    assert docker.start("a", "b") == ["docker", "start", "a", "b"]


def test_logs() -> None:
    assert docker.logs("pg", 30) == ["docker", "logs", "--tail", "30", "pg"]


def test_copy_out() -> None:
    assert docker.copy_out("redis1", "/data/dump.rdb") == ["docker", "cp", "redis1:/data/dump.rdb", "-"]


def test_exec_in_plain() -> None:
    assert docker.exec_in("c1", "redis-cli", "ping") == ["docker", "exec", "c1", "redis-cli", "ping"]


def test_exec_in_as_user_reading_stdin() -> None:
    assert docker.exec_in("c1", "pg_restore", "-l", user="postgres", stdin=True) == [
        "docker", "exec", "-i", "-u", "postgres", "c1", "pg_restore", "-l"]


def test_exec_in_as_user_only() -> None:
    assert docker.exec_in("c1", "pg_dump", user="postgres") == ["docker", "exec", "-u", "postgres", "c1", "pg_dump"]


def test_exec_in_reading_stdin_only() -> None:
    assert docker.exec_in("c1", "cat", stdin=True) == ["docker", "exec", "-i", "c1", "cat"]


def test_run_shell_on_volume() -> None:
    assert docker.run_shell_on_volume("shop_redis", "redis:7") == [
        "docker", "run", "--rm", "-i", "--network", "none", "--security-opt", "no-new-privileges=true",
        "-v", "shop_redis:/data", "--entrypoint", "sh", "redis:7", "-c"]


def test_run_detached_on_volume() -> None:
    assert docker.run_detached_on_volume("helper", "shop_redis", "redis:7", "redis-server", "--save", "") == [
        "docker", "run", "-d", "--name", "helper", "--network", "none", "--security-opt", "no-new-privileges=true",
        "-v", "shop_redis:/data", "redis:7", "redis-server", "--save", ""]


# --- images ----------------------------------------------------------------------------------


def test_image_inspect_plain() -> None:
    assert docker.image_inspect("shop:r1") == ["docker", "image", "inspect", "shop:r1"]


def test_image_inspect_with_template() -> None:
    assert docker.image_inspect("shop:r1", "{{.Id}}") == ["docker", "image", "inspect", "-f", "{{.Id}}", "shop:r1"]


def test_build_plain() -> None:
    assert docker.build("shop:r1", "Dockerfile", None, {}) == [
        "docker", "build", "-q", "-f", "Dockerfile", "-t", "shop:r1", "-"]


def test_build_with_target_and_args() -> None:
    assert docker.build("shop:r1", "app/Dockerfile", "prod", {"A": "1", "B": "x=y"}) == [
        "docker", "build", "-q", "-f", "app/Dockerfile", "-t", "shop:r1", "--target", "prod",
        "--build-arg", "A=1", "--build-arg", "B=x=y", "-"]


def test_login_to_docker_hub() -> None:
    assert docker.login(None, "me") == ["docker", "login", "-u", "me", "--password-stdin"]


def test_login_to_a_registry() -> None:
    assert docker.login("ghcr.io", "me") == ["docker", "login", "ghcr.io", "-u", "me", "--password-stdin"]


def test_pull() -> None:
    assert docker.pull("ghcr.io/me/shop:1") == ["docker", "pull", "-q", "ghcr.io/me/shop:1"]


def test_images() -> None:
    assert docker.images("shop") == ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "shop"]


def test_image_rm() -> None:
    assert docker.image_rm("shop:r1") == ["docker", "image", "rm", "shop:r1"]


# --- volumes and networks --------------------------------------------------------------------


def test_volume_commands() -> None:
    assert docker.volume_inspect("shop_pg") == ["docker", "volume", "inspect", "shop_pg"]
    assert docker.volume_rm("shop_pg") == ["docker", "volume", "rm", "shop_pg"]
    assert docker.volume_mountpoint("shop_pg") == ["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", "shop_pg"]


def test_network_inspect_and_rm() -> None:
    assert docker.network_inspect("shop_default") == ["docker", "network", "inspect", "shop_default"]
    assert docker.network_rm("shop_default") == ["docker", "network", "rm", "shop_default"]


def test_network_create() -> None:
    assert docker.network_create("onebox", "172.30.0.0/16") == [
        "docker", "network", "create", "--subnet", "172.30.0.0/16", "onebox"]


def test_overlay_network_create() -> None:
    assert docker.overlay_network_create("shop_swarm") == [
        "docker", "network", "create", "--driver", "overlay", "--attachable", "shop_swarm"]


def test_network_connect() -> None:
    assert docker.network_connect("shop_swarm", "shop-postgres-1", alias="postgres") == [
        "docker", "network", "connect", "--alias", "postgres", "shop_swarm", "shop-postgres-1"]


# --- swarm -----------------------------------------------------------------------------------


def test_build_from_a_directory_on_the_controller() -> None:
    assert docker.build("shop:r1", "/src/shop/Dockerfile", None, {}, context="/src/shop") == [
        "docker", "build", "-q", "-f", "/src/shop/Dockerfile", "-t", "shop:r1", "/src/shop"]


def test_save_and_load() -> None:
    assert docker.save("shop:r1", "postgres:17") == ["docker", "save", "shop:r1", "postgres:17"]
    assert docker.load("/var/lib/onebox/image-archives/ab.tar.gz") == [
        "docker", "load", "-q", "-i", "/var/lib/onebox/image-archives/ab.tar.gz"]


def test_health_starting() -> None:
    assert docker.health_starting() == ["docker", "ps", "-q", "--filter", "health=starting"]


def test_swarm_init_and_join_token() -> None:
    assert docker.swarm_init("10.0.0.1") == [
        "docker", "swarm", "init", "--advertise-addr", "10.0.0.1", "--listen-addr", "10.0.0.1:2377"]
    assert docker.join_token("worker") == ["docker", "swarm", "join-token", "-q", "worker"]


def test_node_labels_drain_tasks_and_removal() -> None:
    assert docker.node_add_labels("n1", {"onebox.host": "10.0.0.2", "zone": "a"}) == [
        "docker", "node", "update", "--label-add", "onebox.host=10.0.0.2", "--label-add", "zone=a", "n1"]
    assert docker.node_drain("n1") == ["docker", "node", "update", "--availability", "drain", "n1"]
    assert docker.node_task_states("n1") == ["docker", "node", "ps", "n1", "--format", "{{.CurrentState}}"]
    assert docker.node_rm("n1") == ["docker", "node", "rm", "--force", "n1"]


def test_info() -> None:
    assert docker.info("{{.Swarm.LocalNodeState}}") == ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]


def test_nodes() -> None:
    assert docker.node_ids() == ["docker", "node", "ls", "-q"]
    assert docker.node_inspect("n1", "n2") == ["docker", "node", "inspect", "n1", "n2"]


def test_secrets() -> None:
    assert docker.secret_inspect("shop_key") == ["docker", "secret", "inspect", "shop_key"]
    assert docker.secret_create("shop_key") == ["docker", "secret", "create", "shop_key", "-"]
    assert docker.secret_names("shop_") == ["docker", "secret", "ls", "--filter", "name=shop_", "--format", "{{.Name}}"]
    assert docker.secret_rm("shop_key") == ["docker", "secret", "rm", "shop_key"]


def test_configs() -> None:
    assert docker.config_inspect("onebox-shim") == ["docker", "config", "inspect", "onebox-shim"]
    assert docker.config_create("onebox-shim", "/opt/shim.sh") == [
        "docker", "config", "create", "onebox-shim", "/opt/shim.sh"]


def test_service_create() -> None:
    assert docker.service_create("shop-blue-api", "shop_swarm", "/r/swarm-blue.env", 8001, 8000,
                                 "onebox.release=r1") == [
        "docker", "service", "create", "--detach", "--name", "shop-blue-api", "--mode", "global",
        "--constraint", "node.role==worker", "--network", "shop_swarm", "--env-file", "/r/swarm-blue.env",
        "--publish", "mode=host,published=8001,target=8000",
        "--label", "onebox.release=r1", "--container-label", "onebox.release=r1",
        "--restart-condition", "any", "--update-order", "stop-first", "--update-failure-action", "rollback",
        "--no-resolve-image", "--with-registry-auth"]


def test_service_inspect_plain() -> None:
    assert docker.service_inspect("shop-blue-api") == ["docker", "service", "inspect", "shop-blue-api"]


def test_service_inspect_with_template() -> None:
    assert docker.service_inspect("shop-blue-api", "{{json .Spec}}") == [
        "docker", "service", "inspect", "-f", "{{json .Spec}}", "shop-blue-api"]


def test_service_rm_tasks_and_logs() -> None:
    assert docker.service_rm("shop-blue-api") == ["docker", "service", "rm", "shop-blue-api"]
    assert docker.service_task_ids("shop-blue-api") == ["docker", "service", "ps", "-q", "--no-trunc", "shop-blue-api"]
    assert docker.service_logs("shop-blue-api", 40) == [
        "docker", "service", "logs", "--no-task-ids", "--tail", "40", "shop-blue-api"]


def test_no_docker_argv_is_written_out_anywhere_else_in_onebox() -> None:
    """The controller's too (onebox/images.py, the swarm role, the facts): they call the builders."""
    package = Path(docker.__file__).resolve().parents[1]
    literal = re.compile(r'[\[(]\s*"docker",')
    elsewhere = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
                 if path != Path(docker.__file__).resolve() and literal.search(path.read_text())]
    assert elsewhere == []
