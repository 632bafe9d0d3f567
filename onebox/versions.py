"""Which onebox may drive a server: the one that last converged it, or a newer one.

A newer onebox knows what an older one left on a server (CHANGELOG.md says what it changes);
an older one does not know what a newer one wrote, and could undo it halfway. So an older
onebox refuses before changing anything, unless the operator says so ($ONEBOX_ALLOW_OLDER=1),
e.g. to go back to the version before after a bad upgrade of onebox itself.
"""

from __future__ import annotations

import os

from packaging.version import InvalidVersion, Version

from onebox import __version__

ALLOW_OLDER_ENV = "ONEBOX_ALLOW_OLDER"


def older_allowed() -> bool:
    """The operator said to drive a server a newer onebox converged ($ONEBOX_ALLOW_OLDER=1)."""
    return os.environ.get(ALLOW_OLDER_ENV) == "1"


def older_refusal(on_server: str | None, running: str = __version__,
                  allowed: bool | None = None) -> str | None:
    """Why onebox `running` must not drive a server last converged by `on_server`, or None when it may."""
    if allowed is None:
        allowed = older_allowed()
    if on_server is None or allowed:
        return None
    override = f"run a newer onebox (pip install 'onebox>={on_server}'), or set {ALLOW_OLDER_ENV}=1 to go ahead anyway"
    try:
        newer = Version(on_server) > Version(running)
    except InvalidVersion:
        return (f"onebox {running} cannot read the version this server records ({on_server!r}); "
                f"nothing was changed; {override}")
    if not newer:
        return None
    return (f"this server was last converged by onebox {on_server}, newer than this onebox {running}; "
            f"nothing was changed; {override}")
