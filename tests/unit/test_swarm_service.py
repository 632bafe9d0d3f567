"""A slot's API as a swarm service (onebox/server/swarm.py): translated from the release's own
compose file as `docker compose config` resolves it (this machine has no compose: its output's
shape is written out below; the e2e cluster test runs the real one), its secrets named per
content, its health check and limits kept; nginx's upstream across the nodes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fake_docker import FakeDocker, make_app
from test_settings import valid

from onebox import contract
from onebox.server import basics, engine, node_watch, port_map, swarm, switch
from onebox.server.basics import Result
from onebox.settings import validate_settings

NODES = ["10.0.0.2", "10.0.0.3"]


@pytest.fixture
def app(tmp_path, monkeypatch):
    s = validate_settings(valid(app_healthcheck_command=["python", "-c", "print(1)"], api_cpus=0.5))
    made = make_app(tmp_path, s, FakeDocker(), monkeypatch)
    spec = contract.Spec.from_json((made.dir / "spec.json").read_text())
    (made.dir / "spec.json").write_text(dataclasses.replace(spec, swarm_nodes=list(NODES)).to_json())
    return type(made)(made.dir, nginx_dir=made.nginx_dir)


def resolved(release_dir: Path) -> dict:
    """`docker compose config --format json` of a release's API (Compose v2.26, abridged)."""
    return {"services": {"api": {
        "command": ["gunicorn", "app.main:app"], "entrypoint": ["/bin/sh", "/onebox/with-secrets.sh"],
        "environment": {"ONEBOX_RELEASE": release_dir.name, "APP_SECRET_KEY_FILE": "/run/secrets/APP_SECRET_KEY"},
        "healthcheck": {"test": ["CMD", "python", "-c", "print(1)"], "interval": "15s", "retries": 3},
        "stop_grace_period": "35s", "mem_limit": "536870912", "cpus": 0.5,
        "cap_drop": ["ALL"], "security_opt": ["no-new-privileges=true"],
        "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
        "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8000, "published": "18001"}],
        "secrets": [{"source": "APP_SECRET_KEY"}],
        "volumes": [{"type": "bind", "source": contract.SHIM, "target": "/onebox/with-secrets.sh", "read_only": True}],
    }}, "secrets": {"APP_SECRET_KEY": {"name": "x", "file": str(release_dir / "secrets" / "APP_SECRET_KEY")}}}


def test_the_service_is_the_release_s_compose_api_on_every_worker(app, monkeypatch, tmp_path) -> None:
    ran: list[list[str]] = []

    def run(argv, **kwargs):  # noqa: ANN001, ANN202 - recorded; nothing exists in the swarm yet
        ran.append(list(argv))
        if argv[:3] == ["docker", "image", "inspect"]:
            return Result(argv, 0, "{}", "")  # an image with no config of note
        return Result(argv, 1 if argv[2] == "inspect" else 0, "", "")

    monkeypatch.setattr(basics, "run", run)
    shim = tmp_path / "with-secrets.sh"
    shim.write_text("exec \"$@\"\n")
    monkeypatch.setattr(contract, "SHIM", str(shim))
    record = engine.new_release(app, "onebox/api:v1")
    config = resolved(app.releases_dir / record.id)
    config["services"]["api"]["volumes"][0]["source"] = str(shim)
    monkeypatch.setattr(swarm, "api_config", lambda *_: (config["services"]["api"], config["secrets"]))
    argv = swarm.service_argv(app, record, "green")

    assert argv[:3] == ["docker", "service", "create"]
    assert argv[argv.index("--mode"):argv.index("--mode") + 2] == ["--mode", "global"]
    assert "node.role==worker" in argv and f"{app.name}_swarm" in argv
    assert f"mode=host,published={app.port('green')},target=8000" in argv
    assert argv[argv.index("--health-cmd") + 1] == "python -c 'print(1)'"
    assert argv[argv.index("--limit-cpu") + 1] == "0.5"
    assert argv[argv.index("--stop-grace-period") + 1] == "35s"
    assert argv[argv.index("--limit-memory") + 1] == "536870912"
    assert "max-size=10m" in argv
    # No capabilities, as in compose (no-new-privileges has no service flag: the workers' daemon.json sets it).
    assert argv[argv.index("--cap-drop") + 1] == "ALL" and "--read-only" not in argv
    # The secret: a swarm secret named by a keyed digest of its content, mounted where compose mounts it.
    secret = next(arg for arg in argv if arg.startswith("source=") and "target=APP_SECRET_KEY" in arg)
    name = secret.split(",")[0].removeprefix("source=")
    assert name.startswith(f"{app.name}_APP_SECRET_KEY_") and ["docker", "secret", "create", name, "-"] in ran
    # The secrets shim (app_secrets_in_env) as a swarm config; no bind of a manager's file.
    assert any(arg.startswith("source=onebox-with-secrets-sh-") for arg in argv)
    assert argv[argv.index("--entrypoint") + 1] == "/bin/sh /onebox/with-secrets.sh"
    # The environment in a root-only file, not on the command line.
    env_file = Path(argv[argv.index("--env-file") + 1])
    assert env_file.stat().st_mode & 0o777 == 0o600 and f"ONEBOX_RELEASE={record.id}" in env_file.read_text()
    assert argv[-3:] == ["onebox/api:v1", "gunicorn", "app.main:app"]


def test_a_secret_s_name_changes_with_its_content_and_tells_nothing_of_it(app) -> None:
    first, second = swarm.secret_name(app, "KEY", b"one"), swarm.secret_name(app, "KEY", b"two")
    assert first != second and first == swarm.secret_name(app, "KEY", b"one")
    assert len(first) <= 64  # swarm's limit on names


def test_nginx_names_every_node_and_the_kernel_s_map_picks_the_slot(app) -> None:
    text = switch.upstream_text(app, "blue")
    assert text == switch.upstream_text(app, "green")  # a switch leaves nginx's file alone (issue 33)
    assert text.count("max_fails=1 fail_timeout=5s") == 2 and f"server 10.0.0.3:{app.port('blue')}" in text
    assert contract.upstream_port(text) is None  # it names no slot
    blue, green = app.port("blue"), app.port("green")
    # Only nginx's connections are mapped: the manager's tools and Prometheus reach each slot as it is.
    assert port_map.rules(app, "green") == [
        f'meta skuid "www-data" ip daddr 10.0.0.2 tcp dport {blue} dnat to 10.0.0.2:{green}',
        f'meta skuid "www-data" ip daddr 10.0.0.3 tcp dport {blue} dnat to 10.0.0.3:{green}']
    # A node the watcher found down: nginx's connections to it go to a live one (issue 32).
    assert port_map.rules(app, "green", {"10.0.0.3"})[1].endswith(f"ip daddr 10.0.0.3 tcp dport {blue} dnat to 10.0.0.2:{green}")
    assert port_map.rules(app, "green", set(NODES)) == port_map.rules(app, "green")  # none left: as they are
    switch.point_nginx_at(app, "blue")
    assert switch.points_at(app, "blue") and not switch.points_at(app, "green")
    app.upstream.write_text(contract.switched_upstream_text(blue, NODES[:1]))
    assert not switch.points_at(app, "blue")  # a node joined: nginx must hear of it


def test_a_single_server_s_upstream_and_spec_read_as_before() -> None:
    assert contract.upstream_text("blue", 18000) == ("# managed by onebox-release: the live release's slot (blue)\n"
                                                     "server 127.0.0.1:18000;\n")
    assert contract.upstream_port("server 127.0.0.1:18001;\n") == 18001
    spec = contract.Spec.from_json(contract.Spec.from_json(
        make_spec_json()).to_json())
    assert spec.swarm_nodes == [] and "swarm_nodes" not in spec.to_json()


def make_spec_json() -> str:
    from onebox.rollout import release_spec

    s = validate_settings(valid())
    return release_spec(s, {"source": "registry", "ref": "x/y:1", "registry_server": "r", "registry_username": None},
                        "x").to_json()


def test_health_flags_follow_the_compose_check() -> None:
    assert swarm.health_args({"disable": True}) == ["--no-healthcheck"]
    assert swarm.health_args({}) == []
    assert swarm.health_args({"test": ["CMD-SHELL", "curl -f localhost"], "retries": 3}) == [
        "--health-cmd", "curl -f localhost", "--health-retries", "3"]


def answering(answers: dict[tuple[str, ...], str], ran: list[list[str]]):  # noqa: ANN201 - a fake basics.run
    def run(argv, **kwargs):  # noqa: ANN001, ANN202
        ran.append(list(argv))
        for prefix, stdout in answers.items():
            if tuple(argv[:len(prefix)]) == prefix:
                return Result(argv, 0, stdout, "")
        return Result(argv, 1, "", "no such object")
    return run


def test_status_names_each_replica_s_node_by_address(app, monkeypatch) -> None:
    tasks = [{"NodeID": "n1", "DesiredState": "running", "Status": {"State": "running", "Timestamp": "2026-12-03T19:28:05.1Z"}},
             {"NodeID": "n2", "DesiredState": "running", "Status": {"State": "rejected", "Err": "No such image: x"}},
             {"NodeID": "n2", "DesiredState": "shutdown", "Status": {"State": "failed"}}]
    nodes = [{"ID": "n1", "Status": {"Addr": "10.0.0.2"}}, {"ID": "n2", "Status": {"Addr": "10.0.0.3"}}]
    monkeypatch.setattr(basics, "run", answering({("docker", "service", "ps"): "t1\nt2\nt3",
                                                  ("docker", "inspect"): json.dumps(tasks),
                                                  ("docker", "node", "inspect"): json.dumps(nodes)}, []))
    lines = swarm.task_lines(app, "blue")
    assert len(lines) == 2  # the shut-down task is history
    assert "10.0.0.2" in lines[0] and "running" in lines[0] and "2026-12-03T19:28:05" in lines[0]
    assert "10.0.0.3" in lines[1] and "error: No such image: x" in lines[1]


def test_prune_removes_only_the_secrets_no_slot_mounts(app, monkeypatch) -> None:
    ran: list[list[str]] = []
    mounted = json.dumps([{"SecretName": "onebox_KEY_new"}])
    monkeypatch.setattr(basics, "run", answering({("docker", "secret", "ls"): "onebox_KEY_old\nonebox_KEY_new",
                                                  ("docker", "service", "inspect", "-f"): mounted}, ran))
    swarm.prune(app)
    assert [argv for argv in ran if argv[:3] == ["docker", "secret", "rm"]] == [["docker", "secret", "rm", "onebox_KEY_old"]]


def test_capabilities_and_a_read_only_root_reach_the_service_as_compose_resolved_them() -> None:
    api = {"cap_drop": ["ALL"], "cap_add": ["SETUID", "SETGID"], "read_only": True, "tmpfs": ["/tmp"],
           "security_opt": ["no-new-privileges=true"]}
    assert swarm.privilege_args(api) == ["--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID",
                                         "--read-only", "--mount", "type=tmpfs,destination=/tmp"]
    assert swarm.privilege_args({"tmpfs": ["/tmp:size=64m"]}) == ["--mount", "type=tmpfs,destination=/tmp"]
    assert swarm.privilege_args({}) == []


def test_the_watcher_takes_a_silent_node_out_of_nginx_s_way_and_back(app) -> None:
    """Two failed checks in a row: nginx's connections to the node go to the other; three answers
    in a row: back to it (issue 32). nginx's file is never touched."""
    switch.point_nginx_at(app, "green")
    upstream = app.upstream.read_text()
    answering = {"10.0.0.2": True, "10.0.0.3": True}
    asked: list[tuple[str, int, str]] = []

    def check(node: str, port: int, path: str) -> bool:
        asked.append((node, port, path))
        return answering[node]

    streaks = node_watch.Streaks(set())
    node_watch.round_for(app, streaks, check)
    assert asked == [("10.0.0.2", app.port("green"), "/health"), ("10.0.0.3", app.port("green"), "/health")]
    answering["10.0.0.3"] = False
    node_watch.round_for(app, streaks, check)
    assert port_map.down_nodes(app) == set()  # one failure is not yet down
    node_watch.round_for(app, streaks, check)
    assert port_map.down_nodes(app) == {"10.0.0.3"}
    assert f"ip daddr 10.0.0.3 tcp dport {app.port('blue')} dnat to 10.0.0.2:{app.port('green')}" in \
        port_map.rules_file(app).read_text()
    assert switch.points_at(app, "green")  # what the heal and status see: as it should be
    answering["10.0.0.3"] = True
    for _ in range(2):
        node_watch.round_for(app, streaks, check)
    assert port_map.down_nodes(app) == {"10.0.0.3"}  # two answers are not yet back
    node_watch.round_for(app, streaks, check)
    assert port_map.down_nodes(app) == set() and port_map.points_at(app, "green")
    assert "dnat to 10.0.0.2" not in port_map.rules(app, "green")[1]
    assert app.upstream.read_text() == upstream


def test_an_api_moving_onto_the_workers_keeps_the_old_address_mapped_until_nginx_reloaded(tmp_path, monkeypatch) -> None:
    """nginx's workers from before the reload still connect to this server's stable address: its
    rule stays in the map until the reload has retired them, then goes."""
    fake = FakeDocker()
    single = make_app(tmp_path, validate_settings(valid()), fake, monkeypatch)
    switch.point_nginx_at(single, "blue")
    spec = contract.Spec.from_json((single.dir / "spec.json").read_text())
    (single.dir / "spec.json").write_text(dataclasses.replace(spec, swarm_nodes=list(NODES)).to_json())
    app = type(single)(single.dir, nginx_dir=single.nginx_dir)
    at_reload = []
    fake.fail = lambda argv: argv == ["systemctl", "reload", "nginx"] and bool(at_reload.append(fake.nft["onebox_switch"]))
    switch.point_nginx_at(app, "green")
    blue, green = app.port("blue"), app.port("green")
    assert f"ip daddr 127.100.0.1 tcp dport {blue} dnat to 127.0.0.1:{blue}" in at_reload[0]
    assert f"ip daddr 10.0.0.2 tcp dport {blue} dnat to 10.0.0.2:{green}" in at_reload[0]
    assert "127.100.0.1" not in fake.nft["onebox_switch"] and switch.points_at(app, "green")
