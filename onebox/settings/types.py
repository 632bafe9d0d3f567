"""Value types shared by the settings of every role.

Values that reach shell commands and config files take plain characters only, so no
setting can smuggle in a `;`, a space or a newline.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import Field

from onebox import contract

Port = Annotated[int, Field(ge=1, le=65535)]
PositiveInt = Annotated[int, Field(gt=0)]
Size = Annotated[str, Field(pattern=r"^[0-9]+[kKmMgG]?$")]  # nginx/docker size, e.g. 10m
UrlPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]*$")]
ImageRef = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/:@-]*$")]
HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$")]
PackageName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
# One argument of a command run in a container (compose passes it as an argv item, no shell).
Argument = Annotated[str, Field(pattern=r"^[^\n\r\x00]*$")]
ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]

HOSTNAME_RE = re.compile(r"^(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}\Z")
SSH_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?\Z"
)

# Where a compose network (docker_network_subnet) may live: Docker routes the whole subnet to
# its bridge, so a public range would hide those real addresses from the server, and loopback
# or link-local ranges (169.254.169.254 is many clouds' metadata service) break the host.
PRIVATE_NETWORKS = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# The local test target's network (testbed/target.py takes it from here): a compose network there
# would hide the target from its own host.
LOCAL_TARGET_SUBNET = "172.29.0.0/24"
# Private networks known to be taken before onebox connects. The server's own networks (its
# LAN, a VPN) are only known once connected: the user has to keep clear of them.
TAKEN_NETWORKS = {
    ipaddress.IPv4Network("172.17.0.0/16"): "Docker's default bridge (docker0) on the server",
    ipaddress.IPv4Network(LOCAL_TARGET_SUBNET): "the local target's own network (testbed/target.py)",
    ipaddress.IPv4Network("192.168.56.0/24"): "the Vagrant VM's host-only network (Vagrantfile)",
}

# Directories a directory setting (app_dir, backup_dir) must never be, nor hold: onebox replaces files in
# app_dir and `onebox purge` deletes it whole; backup_dir is re-owned root:700 on every converge. Each
# one's parents are listed too, being as destructive. Directories inside them are fine (/opt/myapp).
SYSTEM_DIRS = {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt", "/proc",
               "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log", "/usr/local",
               "/var/backups", "/var/cache", "/var/local", "/var/mail", "/var/opt", "/var/spool", "/var/tmp",
               "/var/www", "/usr/local/bin", "/usr/local/etc", "/usr/local/include", "/usr/local/lib",
               "/usr/local/sbin", "/usr/local/share", "/usr/local/src"}
# Trees a directory setting must never be inside, nor hold: the system, the Docker engine or onebox
# itself own them (/usr/local, the admin's, is outside /usr's tree here).
OWNED_TREES = {
    **{tree: "the system" for tree in ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin",
                                       "/sys", "/usr")},
    "/var/lib/docker": "the Docker engine", "/var/lib/containerd": "the Docker engine",
    # onebox's own state and programs (onebox/contract/): the apps registry, backup state, the server tools
    contract.ETC_DIR: "onebox", contract.STATE_ROOT: "onebox",
    contract.LIB_DIR: "onebox",
}


def directory_problem(value: str, example: str) -> str | None:
    """Why `value` cannot be a directory onebox owns (app_dir, backup_dir), or None; `example` is the
    directory the message suggests. The deploy user's home is checked with deploy_user (home_problem)."""
    if value.startswith("//"):  # POSIX leaves '//etc' alone; Linux reads it as /etc
        return f"{value!r} starts with '//'; write it with a single leading '/'"
    path = PurePosixPath(value)
    fix = f"use a directory of its own such as {example!r}"
    if str(path) in SYSTEM_DIRS or ".." in path.parts or len(path.parts) < 3:
        return f"{value!r} is a system directory; {fix}"
    for tree, owner in OWNED_TREES.items():
        if path == PurePosixPath(tree):
            return f"{value!r} is a directory {owner} owns; {fix}"
        if path.is_relative_to(tree) and not (tree == "/usr" and path.is_relative_to("/usr/local")):
            return f"{value!r} is inside {tree}, which {owner} owns; {fix}"
        if PurePosixPath(tree).is_relative_to(path):
            return f"{value!r} holds {tree}, which {owner} owns; {fix}"
    if ".ssh" in path.parts:  # a user's SSH keys: re-owned or deleted, that user's key login is gone
        return f"{value!r} is an SSH key directory; {fix}"
    return None


def home_problem(value: str, deploy_user: str) -> str | None:
    """Why `value` must not be a directory onebox owns given the deploy user, or None: the user's home
    (/home/<user>, its SSH keys) and everything above it would be re-owned root-only or purged."""
    home = PurePosixPath("/home", deploy_user)
    if home.is_relative_to(PurePosixPath(value)):
        return f"is the home of deploy_user {deploy_user!r} or holds it: its SSH keys there are how it logs in"
    return None


def overlap(a: str, b: str) -> bool:
    """Whether two directories are the same or one holds the other."""
    first, second = PurePosixPath(a), PurePosixPath(b)
    return first.is_relative_to(second) or second.is_relative_to(first)
