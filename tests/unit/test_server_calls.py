"""The exact command line of every call the controller makes to onebox-release and onebox-backup
(onebox/server_calls.py): each value quoted by pyinfra, nothing a value holds runs."""

from __future__ import annotations

import shlex

from onebox import contract
from onebox import server_calls as calls
from onebox.server.backup.cli import parser as backup_parser
from onebox.server.cli import parser as release_parser

RELEASE = "/usr/local/sbin/onebox-release"
BACKUP = "/usr/local/sbin/onebox-backup"
HOSTILE = "It's down; back at 5 $(never)"


def text(command) -> str:
    return calls.as_shell(command)


def test_the_release_calls_about_one_app() -> None:
    assert text(calls.apply("/opt/onebox")) == f"{RELEASE} --app-dir /opt/onebox apply"
    assert text(calls.retire("/opt/my app")) == f"{RELEASE} --app-dir '/opt/my app' retire"
    assert text(calls.rollback("/opt/onebox")) == f"{RELEASE} --app-dir /opt/onebox rollback"
    assert text(calls.rollback("/opt/onebox", "20261202-081500-3fa2c1")) == (
        f"{RELEASE} --app-dir /opt/onebox rollback 20261202-081500-3fa2c1")
    assert text(calls.state("/opt/onebox")) == (
        f"{RELEASE} --app-dir /opt/onebox state 2>/dev/null || echo '{{\"installed\": false}}'")


def test_the_maintenance_calls() -> None:
    tool = f"{RELEASE} --app-dir /opt/onebox maintenance"
    assert text(calls.maintenance("/opt/onebox", False)) == f"{tool} off"
    assert text(calls.maintenance("/opt/onebox", True)) == f"{tool} on"
    assert text(calls.maintenance("/opt/onebox", True, HOSTILE)) == (
        f"{tool} on --message 'It'\"'\"'s down; back at 5 $(never)'")
    assert shlex.split(text(calls.maintenance("/opt/onebox", True, HOSTILE)))[-1] == HOSTILE


def test_the_calls_about_every_app_or_one_by_name() -> None:
    assert text(calls.purge("jobs")) == f"{RELEASE} --app jobs purge"
    assert text(calls.unmonitor()) == f"{RELEASE} unmonitor"
    assert text(calls.release_tool_for(None, "status")) == f"{RELEASE} status"
    assert text(calls.release_tool_for("jobs", "logs", "-n", "5", "api")) == f"{RELEASE} --app jobs logs -n 5 api"
    assert text(calls.release_tool_for(None, "run", "--", "sh", "-c", "echo $HOME")) == (
        f"{RELEASE} run -- sh -c 'echo $HOME'")
    assert text(calls.backup_tool_for("jobs", "list")) == f"{BACKUP} --app jobs list"
    assert text(calls.ci_deploy()) == f"{RELEASE} ci-deploy"


def test_the_backup_calls_run_under_the_deploy_lock() -> None:
    config = "/opt/onebox/backup.json"
    locked = f"{RELEASE} --app-dir /opt/onebox locked -- {BACKUP} --config {config}"
    assert text(calls.backup_now("/opt/onebox", config, "manual")) == f"{locked} dump --label manual"
    assert text(calls.restore("/opt/onebox", config, "local")) == f"{locked} restore --from local"
    assert text(calls.restore("/opt/onebox", config, "offsite", name="pre-release 1")) == (
        f"{locked} restore --from offsite --name 'pre-release 1'")
    assert text(calls.restore("/opt/onebox", config, "offsite", to="2026-12-07 01:00:00+00")) == (
        f"{locked} restore --from offsite --to '2026-12-07 01:00:00+00'")
    assert text(calls.backup_config_check(config)) == f"{BACKUP} --config {config} status >/dev/null"


def test_the_server_program_parses_what_the_controller_sends() -> None:
    # The other side of each call: onebox-release's own parser reads the words the builders make.
    for command, expected in [
        (calls.apply("/opt/onebox"), "apply"),
        (calls.rollback("/opt/onebox", "20261202-081500-3fa2c1"), "rollback"),
        (calls.maintenance("/opt/onebox", True, HOSTILE), "maintenance"),
        (calls.retire("/opt/onebox"), "retire"),
        (calls.purge("jobs"), "purge"),
        (calls.unmonitor(), "unmonitor"),
        (calls.release_tool_for("jobs", "status"), "status"),
        (calls.ci_deploy(), "ci-deploy"),
    ]:
        words = shlex.split(text(command))
        assert words[0] == RELEASE
        assert release_parser().parse_args(words[1:]).command == expected


def test_onebox_backup_parses_what_the_controller_sends() -> None:
    config = "/opt/onebox/backup.json"
    for command, expected in [
        (calls.backup_now("/opt/onebox", config, "manual"), {"command": "dump", "label": "manual"}),
        (calls.restore("/opt/onebox", config, "offsite", name="n 1", to="latest"),
         {"command": "restore", "source": "offsite", "name": "n 1", "to": "latest"}),
        (calls.backup_tool_for("jobs", "list"), {"command": "list", "app": "jobs"}),
    ]:
        words = shlex.split(text(command))
        words = words[words.index("--") + 1:] if "--" in words else words
        assert words[0] == BACKUP
        parsed = vars(backup_parser().parse_args(words[1:]))
        assert {key: parsed[key] for key in expected} == expected


def test_a_server_without_onebox_release_reads_as_not_installed() -> None:
    assert contract.parse_state_report(calls.NOT_INSTALLED_REPORT) == contract.NOT_INSTALLED


def test_pitr_setup_call() -> None:
    assert text(calls.pitr_setup("/etc/onebox/backup.json")) == (
        "/usr/local/sbin/onebox-backup --config /etc/onebox/backup.json pitr-setup")
    assert backup_parser().parse_args(["--config", "/etc/onebox/backup.json", "pitr-setup"]).command == "pitr-setup"
