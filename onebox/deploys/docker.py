"""Docker Engine with Compose v2, from the distribution or Docker's apt repository."""

from __future__ import annotations

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Arch
from pyinfra.operations import apt, files, server, systemd

from onebox.hosts import codename, distro
from onebox.operations import checked_file, install_packages
from onebox.render import render
from onebox.server import docker as docker_argv
from onebox.settings import Settings

# Both ship Docker Engine and the Compose v2 CLI plugin (`docker compose`).
DISTRO_PACKAGES = {
    "debian": ["docker.io", "docker-cli", "docker-compose"],
    "ubuntu": ["docker.io", "docker-compose-v2"],
}
DOCKER_REPO_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"]
DPKG_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
RESTART_HEALTH_WAIT = 300  # seconds; a container's health check ends "starting" on its own (healthy or not)


def docker_repo_source(s: Settings, distro_id: str, codename: str, arch: str) -> str:
    """The deb822 source for Docker's repository, e.g. .../linux/debian trixie stable."""
    return render("docker/docker.sources.j2", url=f"{s.docker_apt_url}/{distro_id}", codename=codename, arch=arch)


@deploy("Install Docker")
def install_docker(s: Settings) -> None:
    distro_id, _ = distro()
    if distro_id not in DISTRO_PACKAGES:
        raise ValueError(f"onebox supports Debian and Ubuntu servers, not {distro_id!r}")
    if s.docker_source == "docker":
        add_docker_repository(s, distro_id, codename())
        packages = DOCKER_REPO_PACKAGES
    else:
        packages = DISTRO_PACKAGES[distro_id]
    install_packages(name="Install Docker Engine and Compose v2.", packages=packages)
    # A swarm worker runs only the API's replicas, and a swarm service cannot ask for
    # no-new-privileges (the CLI has no flag): the worker's daemon makes it every container's default.
    worker = host.data.get("swarm_role") == "worker"
    daemon = checked_file(
        name="Write /etc/docker/daemon.json (log rotation, live-restore; checked by dockerd --validate).",
        dest="/etc/docker/daemon.json", content=render("docker/daemon.json.j2", s=s, worker=worker),
        check="dockerd --validate --config-file /etc/docker/daemon.json",
    )
    systemd.service(name="Run Docker at boot.", service="docker", running=True, enabled=True)
    systemd.service(name="Restart Docker for the new daemon settings.", service="docker",
                    restarted=True, _if=daemon.did_change)
    # Without live-restore, that restart restarted every container: the run goes on (and ends)
    # once their health checks have passed, not while the app still answers 503.
    server.shell(
        name="Wait for the containers the Docker restart restarted to pass their health checks.",
        commands=[f"timeout {RESTART_HEALTH_WAIT} sh -c "
                  + shlex.quote(f"while {shlex.join(docker_argv.health_starting())} | grep -q .; do sleep 1; done")
                  + f" || {{ echo 'containers still starting {RESTART_HEALTH_WAIT} s after the Docker restart "
                  "(docker ps shows which)' >&2; exit 1; }"],
        _if=daemon.did_change,
    )


def add_docker_repository(s: Settings, distro_id: str, codename: str) -> None:
    files.directory(name="Create /etc/apt/keyrings.", path="/etc/apt/keyrings", mode="755")
    files.download(
        name="Fetch Docker's apt signing key.",
        src=f"{s.docker_apt_url}/{distro_id}/gpg", dest="/etc/apt/keyrings/docker.asc", mode="644",
    )
    arch = DPKG_ARCH.get(host.get_fact(Arch), host.get_fact(Arch))
    source = files.put(
        name="Add Docker's apt repository.",
        src=StringIO(docker_repo_source(s, distro_id, codename, arch)),
        dest="/etc/apt/sources.list.d/docker.sources",
    )
    apt.update(name="Refresh apt for Docker's repository.", _if=source.did_change)
