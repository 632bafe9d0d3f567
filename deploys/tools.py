"""The server's tools: onebox-release and onebox-backup, one zipapp (onebox/server) with
the contract inside, and the secrets shim. Installed before any role that calls them."""

from __future__ import annotations

from io import BytesIO

from pyinfra.api import deploy
from pyinfra.operations import files

from onebox import contract
from onebox.server.bundle import PACKAGE, zipapp_bytes
from onebox.settings import Settings


@deploy("Install the server tools")
def install_server_tools(s: Settings) -> None:
    files.directory(name=f"Create {contract.LIB_DIR}.", path=contract.LIB_DIR, mode="755")
    files.put(name="Install onebox-release and onebox-backup (one zipapp).", src=BytesIO(zipapp_bytes()),
              dest=contract.SERVER_ZIPAPP, mode="755", user="root", group="root")
    for command in (contract.RELEASE_COMMAND, contract.BACKUP_COMMAND):
        # force: an older onebox installed them as files, not links
        files.link(name=f"Put {command} on root's PATH.", path=command, target=contract.SERVER_ZIPAPP, force=True)
    files.put(name="Install the secrets entrypoint shim.", src=str(PACKAGE / "with-secrets.sh"), dest=contract.SHIM,
              mode="755")
