"""The onebox-ci account as the converge makes it (deploys/base.py): root-owned keys forced to run
ci-deploy, the sudo rule checked by visudo; all of it removed without ci_ssh_keys, and on a
swarm worker (issue 29, finding 9)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_settings import KEY, valid

from onebox import ci
from onebox.deploys import base
from onebox.settings import validate_settings


def converge_ci_account(monkeypatch: pytest.MonkeyPatch, here: bool = True, users: tuple[str, ...] = (),
                        **settings: object) -> list[tuple]:
    """The operations deploys/base.py's role asks for (their arguments but the name), in order;
    `users`: the accounts the server has."""
    calls: list[tuple] = []
    monkeypatch.setattr(base, "host", SimpleNamespace(get_fact=lambda fact, **kwargs: {user: {} for user in users}))

    def recorder(prefix: str, *names: str) -> SimpleNamespace:
        def record(name: str):  # noqa: ANN202 - an operation's stand-in
            return lambda **kwargs: calls.append((f"{prefix}{name}", {k: v for k, v in kwargs.items() if k != "name"}))
        return SimpleNamespace(**{name: record(name) for name in names})

    monkeypatch.setattr(base, "server", recorder("server.", "user", "shell"))
    monkeypatch.setattr(base, "files", recorder("files.", "file", "directory"))
    monkeypatch.setattr(base, "checked_file", recorder("", "checked_file").checked_file)
    base.configure_ci_user._inner(validate_settings(valid(**settings)), here)  # type: ignore[attr-defined]
    return calls


def test_the_converge_makes_the_account_root_owned_keys_and_the_checked_sudo_rule(monkeypatch) -> None:
    assert converge_ci_account(monkeypatch, ci_ssh_keys=[KEY]) == [
        # no public_keys here: pyinfra would write them into a file the account owns
        ("server.user", {"user": "onebox-ci", "home": "/var/lib/onebox-ci", "shell": "/bin/sh", "system": True,
                         "ensure_home": False}),
        ("files.directory", {"path": "/var/lib/onebox-ci", "user": "root", "group": "root", "mode": "755"}),
        ("files.directory", {"path": "/var/lib/onebox-ci/.ssh", "user": "root", "group": "root", "mode": "755"}),
        ("checked_file", {"dest": "/var/lib/onebox-ci/.ssh/authorized_keys", "content": ci.authorized_keys([KEY]),
                          "mode": "644"}),
        ("checked_file", {"dest": "/etc/sudoers.d/onebox-ci", "content": ci.sudoers_rule(), "check": "visudo -c",
                          "mode": "440"}),
    ]
    removed = [
        ("files.file", {"path": "/etc/sudoers.d/onebox-ci", "present": False}),
        ("files.directory", {"path": "/var/lib/onebox-ci", "present": False}),
        ("server.user", {"user": "onebox-ci", "present": False}),
    ]
    assert converge_ci_account(monkeypatch) == removed  # ci_ssh_keys empty
    assert converge_ci_account(monkeypatch, here=False, ci_ssh_keys=[KEY]) == removed  # a swarm worker


def test_an_account_still_logged_in_is_ended_before_it_is_removed(monkeypatch) -> None:
    """userdel refuses while the account has a process (the user manager lingers after CI's login)."""
    calls = converge_ci_account(monkeypatch, users=("root", "onebox-ci"))
    ending = [call for call in calls if call[0] == "server.shell"]
    assert len(ending) == 1 and "loginctl terminate-user onebox-ci" in ending[0][1]["commands"][0]
    assert "pkill -KILL -u onebox-ci" in ending[0][1]["commands"][0]
    assert calls.index(ending[0]) == len(calls) - 2 and calls[-1] == ("server.user", {"user": "onebox-ci", "present": False})
