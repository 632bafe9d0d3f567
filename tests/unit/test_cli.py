"""`onebox`: what each subcommand parses, the exact pyinfra command line it runs, and what it
refuses before anything runs (exit 2)."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from onebox import cli, kit, operator_args, pyinfra_argv
from onebox.operator_args import Refused
from onebox.pyinfra_argv import PYINFRA
from tests.unit.conftest import ROOT

INV = "inventories/prod.py"
RELEASE = "/usr/local/sbin/onebox-release"
BACKUP = "/usr/local/sbin/onebox-backup"
ID = "20261202-081500-3fa2c1"


def argv_of(*words: str) -> tuple[list[str], bool]:
    return pyinfra_argv.plan(cli.parse(list(words)))


# --- parsing ----------------------------------------------------------------------------------

def test_each_subcommand_parses_its_arguments() -> None:
    deploy = cli.parse(["deploy", INV, "--dry", "--", "--limit", "web1"])
    assert (deploy.command, deploy.inventory, deploy.dry, deploy.rest) == ("deploy", INV, True, ["--limit", "web1"])
    assert cli.parse(["rollback", INV]).release_id is None
    assert cli.parse(["rollback", INV, ID]).release_id == ID
    restore = cli.parse(["restore", INV, "--from", "offsite", "--name", "n1", "--yes"])
    assert (restore.source, restore.name, restore.yes) == ("offsite", "n1", True)
    assert not cli.parse(["restore", INV, "--from", "local"]).yes
    assert (cli.parse(["backup", "now", INV]).action, cli.parse(["backup", "list", INV]).action) == ("now", "list")
    on = cli.parse(["maintenance", "on", INV, "--message", "Back soon"])
    assert (on.action, on.inventory, on.message) == ("on", INV, "Back soon")
    assert cli.parse(["maintenance", "off", INV]).action == "off"
    assert cli.parse(["status", INV]).inventory == INV
    logs = cli.parse(["logs", INV, "-f", "-n", "200", "--raw", "worker"])
    assert (logs.follow, logs.lines, logs.raw, logs.service) == (True, 200, True, "worker")
    run = cli.parse(["run", INV, "--", "alembic", "-c", "x.ini", "current"])
    assert run.rest == ["alembic", "-c", "x.ini", "current"]


@pytest.mark.parametrize(
    "words",
    [
        [],
        ["frobnicate", INV],
        ["status"],  # no inventory
        ["restore", INV, "--yes"],  # no --from
        ["restore", INV, "--from", "elsewhere", "--yes"],
        ["logs", INV, "-n", "0"],
        ["logs", INV, "-n", "many"],
        ["backup", INV],  # no action
        ["backup", "delete", INV],
        ["maintenance", "off", INV, "--message", "x"],  # off takes no message
        ["status", INV, "--", "extra"],  # only deploy and run take words after --
        ["rollback", INV, ID, "another"],
    ],
)
def test_usage_errors_exit_2_and_run_nothing(monkeypatch: pytest.MonkeyPatch, words: list[str]) -> None:
    monkeypatch.setattr(subprocess, "Popen", _never)
    try:  # argparse's refusals exit; onebox's own (Refused) return
        code = cli.main(words)
    except SystemExit as exited:
        code = exited.code
    assert code == 2


@pytest.mark.parametrize(
    "words",
    [["--help"], ["deploy", "--help"], ["rollback", "--help"], ["restore", "--help"], ["backup", "--help"],
     ["backup", "now", "--help"], ["backup", "list", "--help"], ["maintenance", "--help"], ["maintenance", "on", "--help"],
     ["maintenance", "off", "--help"], ["status", "--help"], ["releases", "--help"], ["logs", "--help"], ["run", "--help"]],
)
def test_every_subcommand_has_help_with_the_exit_codes(capsys: pytest.CaptureFixture[str], words: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse(words)
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "usage: onebox" in out
    assert "exit status:" in out and "3    a host needs attention (status)" in out and "130  interrupted" in out


def test_the_module_docstring_documents_the_exit_codes() -> None:
    assert cli.__doc__ is not None
    for line in ("0    ok", "1    a host failed", "2    usage error, or refused before connecting",
                 "3    a host needs attention (status)", "130  interrupted"):
        assert line in cli.__doc__


# --- the exact pyinfra command lines ----------------------------------------------------------

@pytest.mark.parametrize(
    ("words", "expected", "filtered"),
    [
        (["deploy", INV], [PYINFRA, "-y", INV, "deploys/site.py"], False),
        (["deploy", INV, "--", "--limit", "web1", "-vv"], [PYINFRA, "-y", INV, "deploys/site.py", "--limit", "web1", "-vv"],
         False),
        # --dry without -y, so that pyinfra detects the changes (with -y it skips detection)
        (["deploy", INV, "--dry"], [PYINFRA, INV, "deploys/site.py", "--dry", "--diff"], False),
        (["rollback", INV], [PYINFRA, "-y", INV, "deploys/rollback.py"], False),
        (["rollback", INV, ID], [PYINFRA, "-y", INV, "deploys/rollback.py", "--data", f"onebox_rollback_to={ID}"], False),
        (["restore", INV, "--from", "local", "--yes"],
         [PYINFRA, "-y", INV, "deploys/restore.py", "--data", "onebox_restore_confirm=yes",
          "--data", "onebox_restore_from=local"], False),
        (["restore", INV, "--from", "offsite", "--name", "20261123T031500Z-scheduled", "--yes"],
         [PYINFRA, "-y", INV, "deploys/restore.py", "--data", "onebox_restore_confirm=yes",
          "--data", "onebox_restore_from=offsite", "--data", "onebox_restore_name=20261123T031500Z-scheduled"], False),
        (["backup", "now", INV], [PYINFRA, "-y", INV, "deploys/backup_now.py"], False),
        (["backup", "list", INV], [PYINFRA, "-y", INV, "exec", "--", f"{BACKUP} list"], True),
        (["maintenance", "on", INV], [PYINFRA, "-y", INV, "deploys/maintenance.py", "--data", "onebox_maintenance=on"],
         False),
        (["maintenance", "on", INV, "--message", "Back at 14:00 UTC; sorry!"],
         [PYINFRA, "-y", INV, "deploys/maintenance.py", "--data", "onebox_maintenance=on",
          "--data", "onebox_maintenance_message=Back at 14:00 UTC; sorry!"], False),
        # a message pyinfra would read as a number goes as a JSON string
        (["maintenance", "on", INV, "--message", "42"],
         [PYINFRA, "-y", INV, "deploys/maintenance.py", "--data", "onebox_maintenance=on",
          "--data", 'onebox_maintenance_message="42"'], False),
        (["maintenance", "off", INV], [PYINFRA, "-y", INV, "deploys/maintenance.py", "--data", "onebox_maintenance=off"],
         False),
        (["status", INV], [PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} status"], True),
        (["releases", INV], [PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} releases"], True),
        (["logs", INV], [PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} logs"], True),
        (["logs", INV, "-f", "-n", "200", "--raw", "worker"],
         [PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} logs -f -n 200 --raw worker"], True),
        (["run", INV, "--", "alembic", "current"], [PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} run -- alembic current"],
         True),
        (["run", INV, "--", "python", "-c", "print('a b')", "$HOME"],
         [PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} run -- python -c 'print('\"'\"'a b'\"'\"')' '$HOME'"], True),
        (["run", INV, "alembic", "current"], [PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} run -- alembic current"], True),
    ],
)
def test_the_pyinfra_command_line_of_each_subcommand(words: list[str], expected: list[str], filtered: bool) -> None:
    assert argv_of(*words) == (expected, filtered)


def test_deploy_files_are_named_absolutely_from_outside_the_checkout(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert argv_of("rollback", str(ROOT / INV))[0] == [PYINFRA, "-y", str(ROOT / INV), str(ROOT / "deploys" / "rollback.py")]


def test_without_a_deploy_directory_of_its_own_an_inventory_gets_onebox_s_deploy_files(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.py"  # not in an inventories/ folder beside a deploys/ folder
    inventory.write_text("hosts = ['203.0.113.7']\n")
    for name in ("site", "rollback", "restore", "backup_now", "maintenance", "purge"):
        assert Path(pyinfra_argv.deploy_file(str(inventory), name)).resolve() == kit.deploy_file(name)
    own = tmp_path / "deploys" / "site.py"
    own.parent.mkdir()
    own.write_text("")
    nested = tmp_path / "inventories" / "prod.py"
    nested.parent.mkdir()
    assert Path(pyinfra_argv.deploy_file(str(nested), "site")) == own  # a deploy directory's own site.py (roles added)
    assert Path(pyinfra_argv.deploy_file(str(nested), "rollback")).resolve() == kit.deploy_file("rollback")


DATA_VALUES = ["plain", "42", "0042", "1_000", "-7", "true", "False", "null", "1e5", "NaN", "Infinity", "[1]", '{"a": 1}',
               '"quoted"', "20261202-081500-3fa2c1", "20261123T031500Z-scheduled", "Back at 14:00 UTC", "déjà vu",
               " spaced ", "a=b", ""]
# pyinfra_cli's own reading of `--data key=value`, in a child: importing pyinfra_cli monkey-patches this process (gevent).
READ_AS_PYINFRA = """
import json, sys
from pyinfra_cli.util import parse_cli_arg
pairs = [arg.split("=", 1) for arg in json.loads(sys.stdin.read())]  # as pyinfra_cli.cli._set_override_data
print(json.dumps([[key, parse_cli_arg(value)] for key, value in pairs]))
"""


def test_data_values_reach_the_deploy_as_the_same_text() -> None:
    """pyinfra turns `--data k=42` into an int (and true, JSON...): onebox quotes what it would change."""
    flags = [pyinfra_argv.data_flag("onebox_x", value) for value in DATA_VALUES]
    assert {flag for flag, _ in flags} == {"--data"}
    read = subprocess.run([sys.executable, "-c", READ_AS_PYINFRA], input=json.dumps([pair for _, pair in flags]),
                          capture_output=True, text=True, check=True)
    assert json.loads(read.stdout) == [["onebox_x", value] for value in DATA_VALUES]
    assert pyinfra_argv.data_flag("onebox_x", "plain") == ["--data", "onebox_x=plain"]  # quoted only when needed


# --- refused before anything runs: exit 2 -----------------------------------------------------

def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"nothing may run: {args}")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["restore", INV, "--from", "local"], "add --yes"),
        (["restore", INV, "--from", "offsite", "--name", "20261123T031500Z-scheduled"], "--yes"),
        (["restore", INV, "--from", "local", "--name", "../../etc", "--yes"], "is not a backup name"),
        (["restore", INV, "--from", "local", "--name", "x; rm -rf /", "--yes"], "is not a backup name"),
        (["rollback", INV, "previous"], "is not a release id"),
        (["rollback", INV, "20261202-081500-3fa2c1; reboot"], "is not a release id"),
        (["maintenance", "on", INV, "--message", "x" * 501], "at most 500"),
        (["maintenance", "on", INV, "--message", "two\nlines"], "unprintable character '\\n'"),
        (["maintenance", "on", INV, "--message", "bell\a"], "unprintable"),
        (["logs", INV, "api;reboot"], "is not a service name"),
        (["run", INV], "run needs a command"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                     words: list[str], message: str) -> None:
    monkeypatch.setattr(subprocess, "Popen", _never)
    assert cli.main(words) == 2
    assert message in capsys.readouterr().err


def test_a_message_of_500_printable_characters_is_taken_whole() -> None:
    message = "é" * 499 + "!"
    argv, _ = argv_of("maintenance", "on", INV, "--message", message)
    assert argv[-1] == f"onebox_maintenance_message={message}"


# --- the checks the deploy files run on their pyinfra data ------------------------------------

def test_rollback_data() -> None:
    assert operator_args.rollback_target({}) is None
    assert operator_args.rollback_target({"onebox_rollback_to": ""}) is None
    assert operator_args.rollback_target({"onebox_rollback_to": ID}) == ID
    with pytest.raises(Refused, match="is not a release id"):
        operator_args.rollback_target({"onebox_rollback_to": "../x"})
    with pytest.raises(Refused, match="pyinfra read 20261202 as int, not text"):
        operator_args.rollback_target({"onebox_rollback_to": 20261202})


def test_maintenance_data() -> None:
    assert operator_args.maintenance_request({"onebox_maintenance": "on"}) == (True, "")
    assert operator_args.maintenance_request({"onebox_maintenance": "on", "onebox_maintenance_message": "Back soon"}) == (True,
                                                                                                                "Back soon")
    assert operator_args.maintenance_request({"onebox_maintenance": "off"}) == (False, "")
    for data, message in [
        ({}, "must be 'on' or 'off'"),
        ({"onebox_maintenance": True}, "pyinfra read True as bool"),
        ({"onebox_maintenance": "off", "onebox_maintenance_message": "x"}, "goes with onebox_maintenance=on only"),
        ({"onebox_maintenance": "on", "onebox_maintenance_message": "a\tb"}, "unprintable"),
        ({"onebox_maintenance": "on", "onebox_maintenance_message": "y" * 501}, "at most 500"),
    ]:
        with pytest.raises(Refused, match=message):
            operator_args.maintenance_request(data)


# --- several apps: --app NAME ---------------------------------------------------------------------

def test_app_reaches_the_deploy_files_as_data_and_the_server_tools_as_an_option() -> None:
    assert pyinfra_argv.plan(cli.parse(["rollback", "inv.py", "--app", "jobs"]))[0][-2:] == ["--data", "onebox_app=jobs"]
    assert pyinfra_argv.plan(cli.parse(["status", "inv.py", "--app", "jobs"]))[0][-1].endswith("--app jobs status")
    assert pyinfra_argv.plan(cli.parse(["status", "inv.py"]))[0][-1].endswith("onebox-release status")
    assert pyinfra_argv.plan(cli.parse(["backup", "list", "inv.py", "--app", "jobs"]))[0][-1].endswith("--app jobs list")
    assert pyinfra_argv.plan(cli.parse(["logs", "inv.py", "--app", "api", "worker"]))[0][-1].endswith("--app api logs worker")
    assert "onebox_app=api" in pyinfra_argv.plan(cli.parse(["restore", "inv.py", "--from", "local", "--yes", "--app", "api"]))[0]
    # Any name app_name allows (a single app's may have _ or begin with a digit), not only the apps setting's.
    assert pyinfra_argv.plan(cli.parse(["logs", "inv.py", "--app", "my_app2"]))[0][-1].endswith("--app my_app2 logs")


@pytest.mark.parametrize(("argv", "expected"), [
    (["rollback", "inv.py", "--app", "Jobs"], "--app 'Jobs' is not an app name"),
    (["status", "inv.py", "--app", "x;rm"], "is not an app name"),
    (["status", "inv.py", "--app", "jobs\n"], "is not an app name"),
    (["purge", "inv.py", "--yes"], "purge needs --app NAME"),
    (["purge", "inv.py", "--app", "jobs"], "a purge DELETES app jobs's database"),
])
def test_bad_app_arguments_are_refused_before_connecting(argv: list[str], expected: str) -> None:
    with pytest.raises(Refused, match=expected.replace("(", r"\(")):
        pyinfra_argv.plan(cli.parse(argv))


class _Apps:
    def __init__(self, *names: str) -> None:
        self.app_list = [type("App", (), {"app_name": name})() for name in names]


def test_a_deploy_file_picks_the_named_app_or_the_only_one() -> None:
    assert operator_args.chosen_app(_Apps("onebox"), {}).app_name == "onebox"
    assert operator_args.chosen_app(_Apps("api", "jobs"), {"onebox_app": "jobs"}).app_name == "jobs"
    with pytest.raises(Refused, match=r"several apps \(api, jobs\): name one with --app NAME"):
        operator_args.chosen_app(_Apps("api", "jobs"), {})
    with pytest.raises(Refused, match="--app web: no such app in the settings"):
        operator_args.chosen_app(_Apps("api", "jobs"), {"onebox_app": "web"})


# --- running: only the server's lines, and the exit status ------------------------------------

STATUS_ATTENTION = """--> Connecting to hosts...
    [web1] Connected
    [web2] Connected
--> Beginning operation run...
[web1] app demo on api.example.com
[web1] ATTENTION: api is exited (unhealthy)
    [web1] Error: executed 0 commands
[web2] app demo on api.example.com
    [web2] Success
"""


def test_status_needing_attention_exits_3() -> None:
    assert cli.exec_outcome("status", 1, STATUS_ATTENTION.splitlines(True)) == 3


def test_a_host_that_failed_otherwise_exits_1() -> None:
    unreachable = STATUS_ATTENTION.replace("    [web2] Connected\n", "    [web2] Could not connect (timed out)\n")
    assert cli.exec_outcome("status", 1, unreachable.splitlines(True)) == 1
    crashed = STATUS_ATTENTION.replace("    [web2] Success", "[web2] Traceback ...\n    [web2] Error: executed 0 commands")
    assert cli.exec_outcome("status", 1, crashed.splitlines(True)) == 1
    assert cli.exec_outcome("releases", 1, STATUS_ATTENTION.splitlines(True)) == 1


@pytest.mark.parametrize(("returncode", "expected"), [(0, 0), (1, 1), (2, 2), (130, 130), (-signal.SIGINT, 130), (-9, 1)])
def test_pyinfras_exit_status_maps_to_ones(returncode: int, expected: int) -> None:
    assert cli.outcome(returncode) == expected


class FakePyinfra:
    """Stands in for subprocess.Popen: records the command line, replays a transcript."""

    runs: list[list[str]] = []

    def __init__(self, argv: list[str], transcript: str = "", returncode: int = 0, **kwargs: object) -> None:
        FakePyinfra.runs.append(argv)
        self.stdout = io.StringIO(transcript) if kwargs.get("stdout") == subprocess.PIPE else None
        self.returncode = returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode


def fake(monkeypatch: pytest.MonkeyPatch, transcript: str = "", returncode: int = 0) -> list[list[str]]:
    FakePyinfra.runs = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **kw: FakePyinfra(argv, transcript, returncode, **kw))
    return FakePyinfra.runs


def test_status_prints_only_the_servers_lines_and_exits_3(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    runs = fake(monkeypatch, STATUS_ATTENTION, 1)
    assert cli.main(["status", INV]) == 3
    assert runs == [[PYINFRA, "-y", INV, "exec", "--", f"{RELEASE} status"]]
    out = capsys.readouterr().out
    assert out.splitlines() == ["[web1] app demo on api.example.com", "[web1] ATTENTION: api is exited (unhealthy)",
                                "[web2] app demo on api.example.com"]


def test_a_failure_before_any_server_line_says_why(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake(monkeypatch, "--> Loading inventory...\nonebox: invalid settings (nothing was changed on any host):\n", 1)
    assert cli.main(["releases", INV]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "invalid settings" in captured.err


def test_a_deploy_subcommand_runs_its_deploy_file(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = fake(monkeypatch, returncode=0)
    assert cli.main(["rollback", INV, ID]) == 0
    assert cli.main(["backup", "now", INV]) == 0
    assert runs == [[PYINFRA, "-y", INV, "deploys/rollback.py", "--data", f"onebox_rollback_to={ID}"],
                    [PYINFRA, "-y", INV, "deploys/backup_now.py"]]
    fake(monkeypatch, returncode=130)
    assert cli.main(["deploy", INV]) == 130
