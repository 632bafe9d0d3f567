"""The server's tools: onebox-release and onebox-backup, one zipapp (onebox/server) with
the contract inside, and the secrets shim. Installed before any role that calls them, and
only by a onebox at least as new as the one that last converged the server (onebox/versions.py),
which is recorded beside them."""

from __future__ import annotations

from io import BytesIO, StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from onebox import __version__, contract
from onebox.facts import OneboxVersion
from onebox.render import render
from onebox.server.bundle import PACKAGE, zipapp_bytes
from onebox.settings import Settings
from onebox.versions import older_refusal


def check_onebox_version() -> None:
    """Before any operation: an onebox older than the one that last converged this host stops here."""
    refusal = older_refusal(host.get_fact(OneboxVersion))
    if refusal:
        raise SystemExit(f"onebox: {host.name}: {refusal}")


@deploy("Record the onebox version")
def record_onebox_version() -> None:
    files.directory(name=f"Create {contract.ETC_DIR}.", path=contract.ETC_DIR, mode="755")
    files.put(name=f"Record onebox {__version__} as the version that converged this server.",
              src=StringIO(f"{__version__}\n"), dest=contract.VERSION_FILE, mode="644")


@deploy("Install the server tools")
def install_server_tools(s: Settings) -> None:
    check_onebox_version()  # the operator's deploys (rollback, restore, ...) come through here too
    record_onebox_version()
    files.directory(name=f"Create {contract.LIB_DIR}.", path=contract.LIB_DIR, mode="755")
    files.put(name="Install onebox-release and onebox-backup (one zipapp).", src=BytesIO(zipapp_bytes()),
              dest=contract.SERVER_ZIPAPP, mode="755", user="root", group="root")
    for command in (contract.RELEASE_COMMAND, contract.BACKUP_COMMAND):
        # force: an older onebox installed them as files, not links
        files.link(name=f"Put {command} on root's PATH.", path=command, target=contract.SERVER_ZIPAPP, force=True)
    files.put(name="Install the secrets entrypoint shim.", src=str(PACKAGE / "with-secrets.sh"), dest=contract.SHIM,
              mode="755")


BOOT_UNIT = "onebox-boot.service"


@deploy("Start every app after a boot")
def install_boot_unit() -> None:
    """Enabled, not started: a converge brings the apps up itself; the unit is for the next boot."""
    unit = files.put(name=f"Install {BOOT_UNIT} (onebox-release boot).", dest=f"/etc/systemd/system/{BOOT_UNIT}",
                     src=StringIO(render(f"systemd/{BOOT_UNIT}.j2", command=contract.RELEASE_COMMAND)), mode="644")
    systemd.daemon_reload(name=f"Reload systemd for {BOOT_UNIT}.", _if=unit.did_change)
    systemd.service(name=f"Enable {BOOT_UNIT} at boot.", service=BOOT_UNIT, running=None, enabled=True)


WATCH_UNIT = "onebox-node-watch.service"


@deploy("Keep nginx's connections off swarm nodes that stopped answering")
def install_node_watch(wanted: bool) -> None:
    """On a manager whose apps run their API on the workers (issue 32); gone elsewhere."""
    path = f"/etc/systemd/system/{WATCH_UNIT}"
    if wanted:
        unit = files.put(name=f"Install {WATCH_UNIT} (onebox-release watch-nodes).", dest=path, mode="644",
                         src=StringIO(render(f"systemd/{WATCH_UNIT}.j2", command=contract.RELEASE_COMMAND)))
        systemd.daemon_reload(name=f"Reload systemd for {WATCH_UNIT}.", _if=unit.did_change)
        systemd.service(name=f"Run {WATCH_UNIT}.", service=WATCH_UNIT, running=True, enabled=True)
    elif host.get_fact(File, path=path):
        systemd.service(name=f"Stop {WATCH_UNIT} (no app's API on swarm workers now).", service=WATCH_UNIT,
                        running=False, enabled=False)
        files.file(name=f"Remove {WATCH_UNIT}.", path=path, present=False)
