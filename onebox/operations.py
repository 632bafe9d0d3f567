"""onebox's own pyinfra operations: each reads facts, yields commands, and calls
host.noop when the server already matches."""

from __future__ import annotations

import hashlib
import posixpath
import secrets
import shlex
from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand, operation
from pyinfra.facts.files import File, FindFiles, Sha1File
from pyinfra.operations import apt, files

from onebox import contract
from onebox.facts import (
    AIDE_INIT_UNIT,
    POLICY_RC_D,
    AideDatabase,
    PendingSecurityUpdates,
    PrivateFileFingerprint,
    StartPolicy,
)
from onebox.render import render
from onebox.shell import raw_shell

# Root-only (0700): files wait here before they go into place, so a staged secret is
# never readable by others and a staged nginx file never sits in an include directory.
STAGING_DIR = f"{contract.STATE_ROOT}/staging"
BACKUP_DIR = f"{contract.STATE_ROOT}/previous"
# In the environment of onebox's package installs: its policy-rc.d (install_packages) holds the
# services they bring until onebox has configured and started them.
HOLD_NEW_SERVICES = {"ONEBOX_HOLD_NEW_SERVICES": "1"}


@operation()
def checked_file(dest: str, content: str, check: str = "true", mode: str = "644", user: str = "root",
                 group: str = "root"):
    """Install a file only if `check` accepts it; otherwise keep the previous file.

    The new file goes into place, `check` runs (it reads the live path, as `sshd -t`
    or `nginx -t` do), and on failure the previous file is restored and the
    operation fails with the checker's message: a running service never reloads an
    invalid config. The content is uploaded, never diffed or printed, so this is
    also how secrets are written (with the default check). `check` is a command line
    for the server's shell: any value in it is quoted (shlex.quote), and one that
    needs shell syntax is built with onebox.shell.raw_shell.

        checked_file(
            name="Harden sshd",
            dest="/etc/ssh/sshd_config.d/00-onebox.conf",
            content=rendered,
            check="sshd -t",
        )
    """
    data = content.encode()
    current = host.get_fact(File, path=dest)
    if (
        current
        and host.get_fact(Sha1File, path=dest) == hashlib.sha1(data).hexdigest()
        and (str(current["mode"]), current["user"], current["group"]) == (mode, user, group)
    ):
        host.noop(f"{dest} is up to date")
        return
    flat_name = dest.strip("/").replace("/", "__")
    staged, backup = f"{STAGING_DIR}/{flat_name}", f"{BACKUP_DIR}/{flat_name}"
    yield StringCommand("install", "-d", "-m", "700", QuoteString(STAGING_DIR), QuoteString(BACKUP_DIR))
    yield upload_command(data, staged)
    yield install_checked_script(staged, dest, backup, check, mode, user, group)


def install_checked_script(staged: str, dest: str, backup: str, check: str, mode: str, user: str, group: str) -> str:
    """The shell script that swaps the file in, runs `check` (a command line: shell text whose
    values the caller quoted) and restores the previous file when it fails."""
    q_staged, q_dest, q_backup = (shlex.quote(path) for path in (staged, dest, backup))
    q_mode, q_owner = shlex.quote(mode), shlex.quote(f"{user}:{group}")
    return raw_shell("\n".join([
        "set -e",
        f"chmod {q_mode} {q_staged} && chown {q_owner} {q_staged}",
        f"rm -f {q_backup}",
        f"if [ -e {q_dest} ]; then cp -p {q_dest} {q_backup}; fi",
        f"mv {q_staged} {q_dest}",
        f"if ! ({check}) >&2; then",
        f"  if [ -e {q_backup} ]; then mv {q_backup} {q_dest}; else rm -f {q_dest}; fi",
        f"  echo {shlex.quote(f'onebox: `{check}` rejected the new {dest}; the previous version was kept')} >&2",
        "  exit 1",
        "fi",
        f"rm -f {q_backup}",
    ]))


def fingerprint(content: str, salt: str) -> str:
    """A salted, slow fingerprint: it tells a change without letting anyone guess the value."""
    return hashlib.scrypt(content.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32).hex()


@operation()
def private_file(dest: str, content: str):
    """Write a root-only (0600) file whatever account pyinfra connects as.

    The content is streamed through the command's stdin (and sudo) into a file
    created under umask 077: it is never in a temporary file others can read, never
    in a command line, never diffed or printed. Change detection compares a salted
    scrypt fingerprint kept beside the file, so no plain hash of a secret is shown.

        private_file(name="Upload the supplied secrets", dest="/opt/onebox/secrets/supplied.json",
                     content=json.dumps(values))
    """
    stored = host.get_fact(PrivateFileFingerprint, path=dest)
    salt = stored.split(":", 1)[0] if stored and ":" in stored else secrets.token_hex(16)
    wanted = f"{salt}:{fingerprint(content, salt)}"
    if stored == wanted:
        host.noop(f"{dest} is up to date")
        return
    q_dir, q_dest, q_tmp, q_fingerprint = (shlex.quote(path) for path in (
        posixpath.dirname(dest) or ".", dest, f"{dest}.tmp", f"{dest}.fingerprint"))
    # A shell for the umask, the redirections from stdin and the chain that stops at the first failure.
    script = raw_shell(f"umask 077 && mkdir -p {q_dir} && cat > {q_tmp} && mv {q_tmp} {q_dest} "
                       f"&& printf '%s\\n' {shlex.quote(wanted)} > {q_fingerprint}")
    # write_stdin adds a newline to a last line without one: the file holds JSON, which ignores it.
    yield StringCommand("sh", "-c", QuoteString(script), _stdin=content)


@operation()
def upload_once(data: bytes, dest: str):
    """Upload bytes when `dest` does not exist yet; never diffed (binary-safe), never replaced.
    For content-addressed files and for files another program owns after creating them.

        upload_once(name="Upload the source", data=tarball, dest="/opt/onebox/incoming/src-abc.tar.gz")
    """
    if host.get_fact(File, path=dest):
        host.noop(f"{dest} is already on the server")
        return
    yield upload_command(data, dest)


def upload_command(data: bytes, dest: str) -> FileUploadCommand:
    """An upload whose sudo hand-over file lives in the deploy's temporary directory (_temp_dir,
    the connecting user's private home: onebox.inventory.use_private_upload_dir), as pyinfra's
    own files.put does; never in a directory the server picked for root."""
    arguments = getattr(host, "current_op_global_arguments", None) or {}
    temp_dir = arguments.get("_temp_dir")
    return FileUploadCommand(BytesIO(data), dest, remote_temp_filename=host.get_temp_filename(dest, temp_directory=temp_dir))


@operation()
def security_updates():
    """Upgrade the packages that have a pending security update, keeping local config files.

    The fact is read again when the operation runs, so it sees the lists that
    apt.update refreshed earlier in the same deploy.
    """
    pending = host.get_fact(PendingSecurityUpdates)
    if not pending:
        host.noop("no security updates are pending")
        return
    yield StringCommand("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--only-upgrade",
                        "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef",
                        "-o", "Dpkg::Options::=--force-confold", *(QuoteString(package) for package in pending))


@operation()
def aide_baseline():
    """Start recording the AIDE database when there is none, in the background at idle priority."""
    state = host.get_fact(AideDatabase)
    if state != "missing":
        host.noop(f"the AIDE database is {state}")
        return
    yield StringCommand("systemd-run", QuoteString(f"--unit={AIDE_INIT_UNIT}"), "--collect", "--property=Nice=19",
                        "--property=IOSchedulingClass=idle", "/usr/sbin/aideinit", "--yes", "--force")


@operation()
def install_packages(packages: list[str], no_recommends: bool = False):
    """apt.packages whose new services do not start with the package's defaults (Prometheus on
    0.0.0.0:9090, nginx's default site): onebox's systemd.service operations start each one once
    its configuration is written.

    For the install only, /usr/sbin/policy-rc.d denies the first start of a service to this apt
    run (HOLD_NEW_SERVICES in its environment; any other apt run is allowed), and it is removed
    whether apt succeeds or not. One a lost connection leaves behind blocks nothing and goes at
    the next converge (remove_start_policy). A policy-rc.d onebox did not write is left alone.

        install_packages(name="Install nginx.", packages=["nginx"])
    """
    # apt.packages decides what to install (and says what is installed already, host.noop).
    apt_commands = [command if isinstance(command, str) else command.get_raw_value()
                    for command in apt.packages._inner(packages=packages, no_recommends=no_recommends)]
    if not apt_commands:
        return
    install = " && ".join(apt_commands)
    if host.get_fact(StartPolicy) == "other":
        yield raw_shell(install)
        return
    script = render("apt/policy-rc.d.j2").encode()
    staged = f"{POLICY_RC_D}.onebox-new"
    yield upload_command(script, staged)
    # Made executable beside its place, then renamed: apt never runs a half-written policy.
    yield StringCommand("chmod", "755", QuoteString(staged))
    yield StringCommand("mv", "-f", QuoteString(staged), QuoteString(POLICY_RC_D))
    hold = " ".join(f"{name}={value}" for name, value in HOLD_NEW_SERVICES.items())
    yield raw_shell(f"export {hold} && {install}; installed=$?; rm -f {shlex.quote(POLICY_RC_D)}; exit $installed")


@operation()
def remove_start_policy():
    """Remove the policy-rc.d an interrupted install_packages left behind. It would hold nothing
    for any other apt run, but it is not left there: each converge starts with this."""
    if host.get_fact(StartPolicy) != "onebox":
        host.noop(f"no policy-rc.d of onebox's in {POLICY_RC_D}")
        return
    yield StringCommand("rm", "-f", QuoteString(POLICY_RC_D))


def unlisted(directory: str, pattern: str, keep: set[str]) -> list[str]:
    """The files in `directory` matching `pattern` that are not in `keep` (full paths): what onebox
    wrote for an app the server no longer runs, or under an app's earlier name."""
    found = host.get_fact(FindFiles, path=directory, maxdepth=1, fname=pattern) or []
    return sorted(set(found) - keep)


def remove_unlisted(directory: str, pattern: str, keep: set[str], what: str) -> list:
    return [files.file(name=f"Remove {path} ({what} of no current app).", path=path, present=False)
            for path in unlisted(directory, pattern, keep)]
