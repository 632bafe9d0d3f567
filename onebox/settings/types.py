"""Value types shared by the settings of every role.

Values that reach shell commands and config files take plain characters only, so no
setting can smuggle in a `;`, a space or a newline.
"""

from __future__ import annotations

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
