"""Docker Engine and Compose v2 run with the configured daemon settings."""

from __future__ import annotations

import json


def test_docker_engine_runs_at_boot(host) -> None:
    assert host.service("docker").is_enabled
    assert host.service("docker").is_running
    major = int(host.check_output("docker version --format '{{.Server.Version}}'").split(".")[0])
    assert major >= 24


def test_compose_v2_is_available(host) -> None:
    version = host.check_output("docker compose version --short").lstrip("v")
    assert int(version.split(".")[0]) >= 2


def test_daemon_settings_are_effective(host, settings) -> None:
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is settings.docker_live_restore
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon["log-opts"] == {
        "max-size": settings.docker_log_max_size, "max-file": str(settings.docker_log_max_file),
    }
