"""CI deploys without root, the controller's side: the onebox-ci account's SSH keys and sudo rule
(written by deploys/base.py), and which image the admin's converge runs after a CI deploy.

CI logs in as onebox-ci with a key whose forced command is `sudo -n onebox-release ci-deploy`, and
that account's sudo allows exactly that argv: whatever CI sends comes on stdin and is checked by
the server (onebox/server/ci_deploy.py). A leaked CI key can deploy a digest of the app's own
repository, nothing else: no shell, no forwarding, no other command as root.
"""

from __future__ import annotations

from onebox import contract, server_calls

CI_USER = "onebox-ci"
# Root-owned, and so is the .ssh directory in it: the account cannot change its own keys.
CI_HOME = f"/var/lib/{CI_USER}"
CI_AUTHORIZED_KEYS = f"{CI_HOME}/.ssh/authorized_keys"
CI_SUDOERS = f"/etc/sudoers.d/{CI_USER}"
# The one call CI may make: what sshd forces each of CI's keys to run (through sudo), and all
# that sudo lets it run.
CI_CALL = server_calls.as_shell(server_calls.ci_deploy())
CI_FORCED_COMMAND = f"sudo -n {CI_CALL}"


def authorized_keys(keys: list[str]) -> str:
    """The account's authorized_keys: each key `restrict`ed (no pty, no forwarding of any kind, no
    ~/.ssh/rc) and forced to run CI's deploy command."""
    return "".join(f'restrict,command="{CI_FORCED_COMMAND}" {key}\n' for key in keys)


def sudoers_rule() -> str:
    """One rule: root may run onebox-release with the one argument ci-deploy (sudo matches the
    arguments exactly: `onebox-release ci-deploy --app x`, or any other command, is refused)."""
    return f"{CI_USER} ALL=(root) NOPASSWD: {CI_CALL}\n"


def recorded_ref(lines: list[str] | None) -> str | None:
    """The digest in an app's CI_IMAGE_FILE (pyinfra's FileContents lines), or None: absent or unreadable."""
    record = contract.parse_ci_image("\n".join(lines)) if lines else None
    return record.ref if record else None


def image_to_run(app_image: str, ci_ref: str | None) -> str:
    """The image the converge writes in the spec: CI's last deploy when app_image is a tag of the
    same repository (the converge then changes nothing, where it would have rolled CI's release
    back to whatever the tag names); app_image when it is a digest (the admin chose those bytes),
    names another repository, or CI has deployed nothing."""
    if ci_ref is None or contract.is_digest(app_image) or not contract.same_repository(app_image, ci_ref):
        return app_image
    return ci_ref
