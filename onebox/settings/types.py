"""Value types shared by the settings of every role.

Values that reach shell commands and config files take plain characters only, so no
setting can smuggle in a `;`, a space or a newline.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import Field

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

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
SSH_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$"
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
