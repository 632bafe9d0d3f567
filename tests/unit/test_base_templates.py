"""Templates of the base and docker roles render what the daemons expect."""

from __future__ import annotations

import json

import pytest
from test_settings import valid

from onebox.deploys.docker import DISTRO_PACKAGES, DOCKER_REPO_PACKAGES, docker_repo_source
from onebox.render import HEADER, render
from onebox.settings import validate_settings


@pytest.fixture
def settings():
    return validate_settings(valid(firewall_tcp_ports=[2222, 80, 443], sshd_port=2222, docker_live_restore=False))


def test_docker_repository_source_names_the_distribution_and_key(settings) -> None:
    source = docker_repo_source(settings, "ubuntu", "noble", "amd64")
    assert "URIs: https://download.docker.com/linux/ubuntu\n" in source
    assert "Suites: noble\n" in source
    assert "Architectures: amd64\n" in source
    assert "Signed-By: /etc/apt/keyrings/docker.asc\n" in source
    assert "docker-compose-plugin" in DOCKER_REPO_PACKAGES
    assert "docker-compose-v2" in DISTRO_PACKAGES["ubuntu"] and "docker-compose" in DISTRO_PACKAGES["debian"]


def test_daemon_json_is_valid_json_with_the_settings(settings) -> None:
    daemon = json.loads(render("docker/daemon.json.j2", s=settings, worker=False))
    assert daemon == {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": False}


def test_a_swarm_worker_s_containers_gain_no_privileges_by_default(settings) -> None:
    # A swarm service cannot ask for no-new-privileges (`docker service create` has no flag for it).
    daemon = json.loads(render("docker/daemon.json.j2", s=settings, worker=True))
    assert daemon["no-new-privileges"] is True and daemon["live-restore"] is False


def test_sshd_config_is_hardened_and_uses_the_port(settings) -> None:
    config = render("ssh/sshd_config.j2", s=settings)
    assert HEADER in config
    for line in ("Port 2222", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                 "KbdInteractiveAuthentication no"):
        assert f"\n{line}\n" in config


def test_firewall_allows_exactly_the_configured_ports(settings) -> None:
    rules = render("nftables/nftables.conf.j2", s=settings, swarm=None)
    assert "policy drop;" in rules
    assert "7946" not in rules  # a single server opens no swarm port
    assert "tcp dport { 2222, 80, 443 } accept" in rules
    assert "flush ruleset" not in rules.replace("global `flush ruleset`", "")
