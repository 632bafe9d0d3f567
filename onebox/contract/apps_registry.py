"""apps.json (contract.APPS_FILE): which apps this server has, name -> RegisteredApp. The
converge writes it (onebox/deploys/apps.py) with apps_text; the server programs (onebox/server/
model.py) and the controller's ServerApps fact read it with parse_apps. Standard library only
(the server's zipapp carries it).

Its version is a reserved key, VERSION_KEY, which no app can be named (app names start with a
letter or digit). Version 1 is written without it: onebox 0.5.x reads every key of the file as an
app, so a key it does not know would stop the way back to it (ONEBOX_ALLOW_OLDER=1). A file
without the key is version 1; the writer adds the key from version 2 on, when the older readers
cannot read the shape anyway, and every reader from this one on then says which version it met."""

from __future__ import annotations

import dataclasses
import json

from onebox.contract.documents import json_object, load_checked, message_version
from onebox.contract.layout import APPS_FILE, VERSION_FILE

# Raise it with every change of the shape below that this reader cannot read.
APPS_VERSION = 1
VERSION_KEY = "_version"


@dataclasses.dataclass(frozen=True)
class RegisteredApp:
    dir: str
    key: str | None
    removed: bool = False  # named in apps_removed: stopped, its data and backups kept until a purge


def apps_text(apps: dict[str, RegisteredApp]) -> str:
    """The converge's one writer of apps.json (version 1: no version key, see above)."""
    return json.dumps({name: dataclasses.asdict(app) for name, app in sorted(apps.items())}, indent=2) + "\n"


def parse_apps(text: str) -> dict[str, RegisteredApp]:
    """The one reader of apps.json, the server programs' and the controller's: every field checked;
    another version is refused, naming it and what to do."""
    data = json_object(text, APPS_FILE)
    message_version(data, APPS_VERSION, APPS_FILE, "onebox",
                    f"the onebox that last converged the server ({VERSION_FILE}, shown by `onebox status`) wrote it; "
                    "converge the server with that version or a newer one", key=VERSION_KEY)
    return {name: load_checked(RegisteredApp, entry, f"{APPS_FILE}: {name}") for name, entry in data.items()}
