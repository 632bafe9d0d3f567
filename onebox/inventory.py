"""Settings for inventories and deploys: read group data, validate it, fail early.

pyinfra connects to every host before it loads the deploy file, so the inventory
calls `settings_for_group` at import time: bad settings stop the run before the
first connection. This is the one path from group data to settings: the inventory
hands the validated model to the deploys as host data (`onebox_settings`), and the
host checks call the same function.

Group data and secrets are the user's, found in the deploy directory beside the inventory
(`onebox init` makes one): never inside the installed package. Groups layer: onebox's
defaults (onebox/defaults.py), then the deploy directory's group_data/all.py if it has one,
then group_data/<group>.py, then each group named in $ONEBOX_EXTRA_GROUPS (comma-separated),
e.g. an app's own contract on the local target.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pyinfra

from onebox import fact_batch
from onebox.kit import DEFAULTS
from onebox.settings import Settings, SettingsError, shown, validate_settings

SECRETS_FILE_ENV = "ONEBOX_SECRETS_FILE"
EXTRA_GROUPS_ENV = "ONEBOX_EXTRA_GROUPS"
INTERRUPTED = ("onebox: interrupted; a release already started on the server finishes or is undone there; "
               "run the deploy again to see the outcome")


def read_group_file(path: Path) -> dict[str, Any]:
    """The public names a group data file defines, as pyinfra itself reads them."""
    namespace: dict[str, Any] = {"__file__": str(path)}  # as pyinfra's exec_file gives it
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own config file
    return {
        key: value for key, value in namespace.items()
        if not key.startswith("_") and not callable(value) and type(value).__name__ != "module"
    }


def layered_groups(group: str) -> list[str]:
    extra = [name.strip() for name in os.environ.get(EXTRA_GROUPS_ENV, "").split(",") if name.strip()]
    return [group, *extra]


def deploy_directory(directory: str | Path | None) -> Path:
    """The user's deploy directory (inventories/, group_data/, secrets/): the one given, else the
    directory pyinfra runs from. Inventories made by `onebox init` give their own parent."""
    return Path(directory).resolve() if directory is not None else Path.cwd()


def group_data(group: str, directory: str | Path | None = None) -> dict[str, Any]:
    """The settings of `group` as layered: onebox's defaults underneath, the user's files on top."""
    own = deploy_directory(directory) / "group_data"
    data = read_group_file(DEFAULTS)
    if (own / "all.py").is_file():  # settings the user's groups share
        data.update(read_group_file(own / "all.py"))
    for name in layered_groups(group):
        group_file = own / f"{name}.py"
        if group_file.is_file():
            data.update(read_group_file(group_file))
        elif name != group:
            raise SettingsError(f"onebox: {EXTRA_GROUPS_ENV} names {name!r}, but {shown(str(group_file))} does not exist")
    return data


def secrets_file(group: str, directory: str | Path | None = None) -> str | None:
    """The git-ignored dotenv file of secrets: $ONEBOX_SECRETS_FILE or the deploy directory's
    secrets/<group>.env, readable by its owner only."""
    named = os.environ.get(SECRETS_FILE_ENV)
    path = named or str(deploy_directory(directory) / "secrets" / f"{group}.env")
    if not Path(path).is_file():
        if named:  # a typo would silently drop every supplied secret
            raise SettingsError(f"onebox: {SECRETS_FILE_ENV} names {named}, which is not a file")
        return None
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    if mode & 0o044:
        raise SettingsError(f"onebox: {shown(path)} is readable by others (mode {mode:04o}); "
                            f"run: chmod 600 {shlex.quote(shown(path))}")
    return path


def settings_for_group(group: str, ssh_user: str = "root", ssh_key: str | None = None,
                       directory: str | Path | None = None) -> Settings:
    """Validated settings of an inventory group, safe for the account pyinfra connects
    as; exits with a clear message otherwise. `directory`: the deploy directory holding
    group_data/ and secrets/ (default: the one pyinfra runs from)."""
    if pyinfra.is_cli:  # not in pytest (host checks, e2e), where Ctrl-C must still stop the session
        exit_non_zero_on_interrupt()
        fact_batch.install()
    try:
        settings = validate_settings(group_data(group, directory), secrets_file(group, directory))
        check_connection(settings, ssh_user, ssh_key)
        return settings
    except SettingsError as error:
        sys.exit(str(error))


def exit_non_zero_on_interrupt() -> None:
    """Ctrl-C exits with status 130 and says what became of the release. pyinfra's CLI installs
    a SIGINT handler that exits 0 ("Exiting upon user request!"), which scripts would take for
    success; inventories load after that, so this one replaces it."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may install signal handlers

    def interrupted(signum: int, frame: FrameType | None) -> None:
        sys.stdout.flush()
        print(INTERRUPTED, file=sys.stderr, flush=True)
        sys.exit(130)

    signal.signal(signal.SIGINT, interrupted)


def _key_body(public_key: str) -> str:
    return " ".join(public_key.split()[:2])  # type and key; the comment does not matter


def check_connection(s: Settings, ssh_user: str, ssh_key: str | None) -> None:
    """Refuse settings that would lock out the account pyinfra connects with."""
    if ssh_user == "root" and s.sshd_permit_root_login == "no":
        raise SettingsError(
            "onebox: sshd_permit_root_login is 'no' but pyinfra connects as root: the run would lock itself out. "
            f"Connect as {s.deploy_user} (ONEBOX_SSH_USER={s.deploy_user}) or keep 'prohibit-password'."
        )
    public_key = Path(f"{ssh_key}.pub") if ssh_key else None
    if ssh_user != s.deploy_user or public_key is None or not public_key.is_file():
        return  # nothing this machine can check: an agent's key, or root's own login
    if _key_body(public_key.read_text()) not in {_key_body(key) for key in s.deploy_ssh_keys}:
        raise SettingsError(
            f"onebox: pyinfra connects as {ssh_user} with {ssh_key}, but deploy_ssh_keys lacks {public_key}: "
            "the run would remove the key it logs in with. Add that public key to deploy_ssh_keys."
        )


def use_private_upload_dir(host, s: Settings) -> None:  # noqa: ANN001 - pyinfra's Host
    """Connected as the deploy user, pyinfra uploads each file by SFTP into a temporary file,
    then copies it into place with sudo. Its default temporary directory comes from the
    server ($TMPDIR as root, or /tmp): not writable by the deploy user under pam_tmpdir,
    and shared with every account otherwise. The deploy user's own home (0700, made by the
    host role) holds those files instead, for the moment they exist."""
    user = host.data.get("ssh_user")
    if user and user != "root" and user == s.deploy_user:
        from pyinfra import config

        # Both: pyinfra's operations read the deploy's config (_temp_dir), raw uploads the state's.
        config.TEMP_DIR = host.state.config.TEMP_DIR = f"/home/{user}"
