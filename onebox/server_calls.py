"""Every call the controller makes to the server's programs, `onebox-release` and
`onebox-backup` (onebox/server/), built here and nowhere else.

Each builder returns a pyinfra StringCommand: pyinfra quotes every value (QuoteString), the
operations yield it as it is, and `onebox <command>` passes its text (as_shell) to `pyinfra
exec`. The server programs' own argument parsers are the other side of each call; the unit
tests pin the exact text of every builder. The systemd units that run these programs name
them in their templates (onebox/templates/systemd/).
"""

from __future__ import annotations

from pyinfra.api.command import QuoteString, StringCommand

from onebox.contract import BACKUP_COMMAND, CI_DEPLOY_COMMAND, RELEASE_COMMAND

# What the state fact reads when the server has no onebox-release yet (a server never converged):
# contract.NOT_INSTALLED, as short as the state report can say it (tests/unit/test_server_calls.py).
NOT_INSTALLED_REPORT = '{"installed": false}'


def _words(words: tuple[str, ...]) -> list[QuoteString]:
    return [QuoteString(word) for word in words]


def _app_option(app: str | None) -> list[str | QuoteString]:
    return ["--app", QuoteString(app)] if app else []


def release_tool(app_dir: str, *words: str) -> StringCommand:
    """`onebox-release --app-dir DIR WORDS...`: a call about one app, named by its directory."""
    return StringCommand(RELEASE_COMMAND, "--app-dir", QuoteString(app_dir), *_words(words))


def release_tool_for(app: str | None, *words: str) -> StringCommand:
    """`onebox-release [--app NAME] WORDS...`: the operator's calls (the server picks its one app
    when no name is given) and those about every app."""
    return StringCommand(RELEASE_COMMAND, *_app_option(app), *_words(words))


def backup_tool_for(app: str | None, *words: str) -> StringCommand:
    """`onebox-backup [--app NAME] WORDS...`."""
    return StringCommand(BACKUP_COMMAND, *_app_option(app), *_words(words))


def backup_tool(config: str, *words: str) -> StringCommand:
    """`onebox-backup --config FILE WORDS...`: the app's backup.json names everything else."""
    return StringCommand(BACKUP_COMMAND, "--config", QuoteString(config), *_words(words))


def state(app_dir: str) -> StringCommand:
    """The state report; a server without onebox-release yet answers NOT_INSTALLED_REPORT."""
    return StringCommand(release_tool(app_dir, "state"), "2>/dev/null", "||", "echo",
                         QuoteString(NOT_INSTALLED_REPORT))


def apply(app_dir: str) -> StringCommand:
    return release_tool(app_dir, "apply")


def rollback(app_dir: str, to: str | None = None) -> StringCommand:
    return release_tool(app_dir, "rollback", *([to] if to else []))


def maintenance(app_dir: str, on: bool, message: str = "") -> StringCommand:
    if not on:
        return release_tool(app_dir, "maintenance", "off")
    return release_tool(app_dir, "maintenance", "on", *(["--message", message] if message else []))


def retire(app_dir: str) -> StringCommand:
    return release_tool(app_dir, "retire")


def purge(app: str) -> StringCommand:
    return release_tool_for(app, "purge")


def unmonitor() -> StringCommand:
    """Drop the monitoring role from every app's PostgreSQL."""
    return release_tool_for(None, "unmonitor")


def locked(app_dir: str, command: StringCommand) -> StringCommand:
    """`command` under the app's deploy lock, detached on the server (`locked` relays its log): a
    dropped connection stops the relay only, never the work."""
    return StringCommand(release_tool(app_dir, "locked", "--"), command)


def backup_now(app_dir: str, config: str, label: str) -> StringCommand:
    return locked(app_dir, backup_tool(config, "dump", "--label", label))


def restore(app_dir: str, config: str, source: str, name: str = "", to: str = "") -> StringCommand:
    return locked(app_dir, backup_tool(config, "restore", "--from", source, *(["--name", name] if name else []),
                                       *(["--to", to] if to else [])))


def pitr_setup(config: str) -> StringCommand:
    """pgBackRest's stanza and a first base backup (point-in-time recovery)."""
    return backup_tool(config, "pitr-setup")


def backup_config_check(config: str) -> StringCommand:
    """Accepts a backup.json only if onebox-backup reads it."""
    return StringCommand(backup_tool(config, "status"), ">/dev/null")


def ci_deploy() -> StringCommand:
    """What CI's keys run (sshd's forced command, through sudo) and the one call its sudo rule allows."""
    return release_tool_for(None, CI_DEPLOY_COMMAND)


def as_shell(command: StringCommand) -> str:
    """The command line as the server's shell reads it (for `pyinfra exec`)."""
    return command.get_raw_value()
