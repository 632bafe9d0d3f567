"""The apps of a server: which it has, which the settings take off it, and the registry
(contract.APPS_FILE) through which the server's tools find an app by name.

An app the server has that the settings name neither in `apps` nor in `apps_removed` stops
the deploy before any operation: a deleted line of group data must never stop an app and
orphan its data. A removed app's containers stop (onebox-release retire); its volumes,
secrets, releases and backups stay until `onebox purge`.
"""

from __future__ import annotations

import dataclasses
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from onebox import contract
from onebox.facts import ServerApps
from onebox.rollout import retire
from onebox.settings import Settings


class UnknownApps(Exception):
    """The server has apps the settings do not mention; the message names the setting."""


def apps_plan(s: Settings, on_server: dict[str, contract.RegisteredApp]) -> dict[str, contract.RegisteredApp]:
    """The registry after this converge: the settings' apps, then the removed ones the server still has.
    Raises UnknownApps for an app the server has that the settings do not mention."""
    wanted = {app.app_name: contract.RegisteredApp(dir=app.app_dir, key=app.files.key) for app in s.app_list}
    unknown = sorted(set(on_server) - set(wanted) - set(s.apps_removed))
    if unknown:
        names = ", ".join(unknown)
        raise UnknownApps(
            f"onebox: this server runs app(s) {names}, which the settings no longer have; nothing was changed. "
            f"To take {names} off the server (containers stop; database, volumes and backups stay until "
            f"`onebox purge INVENTORY --app NAME --yes`), add it to apps_removed in group data: "
            f"apps_removed = {unknown!r}. To keep it, put it back in apps.")
    removed = {name: dataclasses.replace(app, removed=True) for name, app in on_server.items() if name in s.apps_removed}
    return {**wanted, **removed}


def check_server_apps(s: Settings) -> dict[str, contract.RegisteredApp]:
    """Before any operation: the registry to write, or exit naming apps_removed."""
    try:
        return apps_plan(s, host.get_fact(ServerApps))
    except UnknownApps as refused:
        raise SystemExit(str(refused)) from None


@deploy("Register the server's apps")
def register_apps(s: Settings, registry: dict[str, contract.RegisteredApp]) -> None:
    on_server = host.get_fact(ServerApps)
    for name, app in registry.items():
        if app.removed and not on_server[name].removed:
            retire(name=f"Take app {name} off the server: stop its containers (its data stays).", app_dir=app.dir)
    files.directory(name=f"Create {contract.ETC_DIR}.", path=contract.ETC_DIR, mode="755")
    files.put(name="Register the server's apps (onebox-release --app NAME finds them here).",
              src=StringIO(contract.apps_text(registry)), dest=contract.APPS_FILE, mode="644")


