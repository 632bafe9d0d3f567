"""The state report: what `onebox-release --app-dir DIR state` prints for the controller's change
detection (onebox/server/reports.py builds it, onebox/facts.py's ReleaseState parses it). One
JSON line, nothing secret, nothing derived from a secret. Standard library only (the server's
zipapp carries it)."""

from __future__ import annotations

import dataclasses
import json

from onebox.contract.documents import ContractError, json_object, load_checked

# Raise it with every change of the shape below that an older controller cannot read. The
# controller reads the report BEFORE it installs its own server program, so during an upgrade it
# reads the older program's report: one without a version is version 1 (onebox 0.3.0 and before),
# and a field added later needs a default. A newer report than this controller knows is refused.
STATE_REPORT_VERSION = 1

UPGRADE_HINT = ("upgrade onebox on the controller to the version that last converged the server "
                "(/etc/onebox/version, shown by `onebox status`)")


@dataclasses.dataclass(frozen=True)
class LiveRelease:
    id: str
    inputs: str  # contract.inputs_hash of the release: the controller compares it with the settings'
    created: str


@dataclasses.dataclass(frozen=True)
class ReleaseTransition:
    """A release on its way in, as the server's state.json holds it (onebox/server/model.py)."""

    release: str
    slot: str
    phase: str  # starting -> switching -> draining
    since: str
    kind: str = "release"  # or "rollback"


@dataclasses.dataclass(frozen=True)
class StateReport:
    installed: bool  # False: no app here yet (or a server program that cannot say)
    version: int = STATE_REPORT_VERSION
    why: str | None = None  # with installed False, when the server program said why
    live: LiveRelease | None = None
    transition: ReleaseTransition | None = None  # an interrupted release
    deps_inputs: str | None = None  # contract.deps_hash of the dependencies last fully applied
    problems: list[str] = dataclasses.field(default_factory=list)  # what runs that should not, or not what should
    slot: str | None = None  # the live slot (blue | green)
    maintenance: bool = False
    # Only with a live release in a slot: the supplied secrets differ from the live release's.
    secrets_changed: bool = False


NOT_INSTALLED = StateReport(installed=False)


def state_report_text(report: StateReport) -> str:
    """The server's one writer: one line (the controller takes the last line that is JSON)."""
    return json.dumps(dataclasses.asdict(report))


def parse_state_report(text: str, allow_newer: bool = False) -> StateReport:
    """The controller's one reader: every field checked. `allow_newer` (the operator going back to
    an older onebox on purpose, ONEBOX_ALLOW_OLDER=1) reads a newer report's fields this version
    knows and drops the others, rather than stop the way back."""
    data = json_object(text, "the state report of onebox-release")
    version = data.get("version", 1)  # none: onebox 0.3.0's server program or older, which is version 1
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ContractError(f"the state report of onebox-release has version {version!r}, not a version")
    if version > STATE_REPORT_VERSION and allow_newer:
        known = {field.name for field in dataclasses.fields(StateReport)}
        data, version = {key: value for key, value in data.items() if key in known}, STATE_REPORT_VERSION
    if version > STATE_REPORT_VERSION:
        raise ContractError(f"the server's onebox-release reports its state in version {version}, this onebox "
                            f"reads version {STATE_REPORT_VERSION} at most: {UPGRADE_HINT}")
    return load_checked(StateReport, {**data, "version": version}, "state report")
