"""`onebox`: the operator's commands, per inventory, on top of pyinfra.

    onebox init        [DIR]                                     # a deploy directory (inventory, group data, deploys/)
    onebox deploy      INVENTORY [--dry] [-- PYINFRA_ARGS...]    # converge (deploys/site.py)
    onebox rollback    INVENTORY [RELEASE_ID]                    # the previous (or that) release (deploys/rollback.py)
    onebox restore     INVENTORY --from local|offsite [--name NAME | --to TIME] --yes   # (deploys/restore.py)
    onebox backup now  INVENTORY                                 # a backup now, label manual (deploys/backup_now.py)
    onebox backup list INVENTORY                                 # local and off-site backups
    onebox maintenance on  INVENTORY [--message TEXT]            # nginx answers 503 (deploys/maintenance.py)
    onebox maintenance off INVENTORY
    onebox dashboard   INVENTORY [--port N]                      # an SSH tunnel to the server's Prometheus and views
    onebox purge       INVENTORY --app NAME --yes                # delete a removed app's data and backups (deploys/purge.py)
    onebox status      INVENTORY                                 # live release, services, certificate, backups, disk
    onebox releases    INVENTORY                                 # releases kept, the live one marked, the changes marked
    onebox logs        INVENTORY [-f] [-n 200] [--raw] [SERVICE]
    onebox run         INVENTORY -- alembic current              # a one-off container of the live image

On a server of several apps (the `apps` setting), every command but `deploy` and `status`
takes `--app NAME`; `status` without it reports every app.

The commands that change a server run a pyinfra deploy file (the deploy directory's
deploys/NAME.py, beside the inventory's folder, else onebox's own), which works just as well
without this command, its arguments given as pyinfra data:

    pyinfra inventories/prod.py deploys/rollback.py --data onebox_rollback_to=20261202-081500-3fa2c1

The others run `onebox-release <command>` (or `onebox-backup list`) on every host through
`pyinfra exec` and print only the server's own lines. Either way pyinfra uses sudo when the
inventory connects as the deploy user. Arguments are checked here, before any connection,
and again by the deploy files (the same checks, onebox/operator_args.py), which refuse
before any operation. The command line each subcommand runs is onebox/pyinfra_argv.py's.

Exit status:
    0    ok
    1    a host failed (or pyinfra did)
    2    usage error, or refused before connecting (nothing was run)
    3    a host needs attention (status)
    130  interrupted
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from onebox import __version__
from onebox.contract import ATTENTION as ATTENTION_LINE
from onebox.contract import EXIT_ATTENTION, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from onebox.operator_args import MAINTENANCE_MESSAGE_MAX, RESTORE_SOURCES, Refused
from onebox.pyinfra_argv import plan

EXIT_CODES = f"""exit status:
  {EXIT_OK:<4} ok
  {EXIT_FAILED:<4} a host failed (or pyinfra did)
  {EXIT_USAGE:<4} usage error, or refused before connecting (nothing was run)
  {EXIT_ATTENTION:<4} a host needs attention (status)
  {EXIT_INTERRUPTED:<4} interrupted"""
PYINFRA_USAGE = 2  # click's exit status for a usage error

SERVER_LINE = re.compile(r"^\[([^\]]+)\] ?(.*)$")  # column 0: "[host] ..." is the server's own output
PYINFRA_HOST_LINE = re.compile(r"^\s+\[([^\]]+)\]\s+(.*)$")  # indented: pyinfra's own word about a host
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROUTINE = ("Connected", "Ready: ", "Success", "No changes")


# --- the command line -------------------------------------------------------------------------

def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {number}")
    return number


def parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    top = argparse.ArgumentParser(prog="onebox", description=(__doc__ or "").split("\n\n")[0], epilog=EXIT_CODES,
                                  formatter_class=formatter)
    top.add_argument("--version", action="version", version=f"onebox {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: Any, name: str, help_text: str, inventory: bool = True, usage: str | None = None
                ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES, formatter_class=formatter,
                               usage=usage)
        sub.set_defaults(subparser=sub)
        if inventory:
            sub.add_argument("inventory", metavar="INVENTORY", help="a pyinfra inventory, e.g. inventories/prod.py")
            if name not in ("deploy", "dashboard"):
                sub.add_argument("--app", metavar="NAME", help="the app, on a server of several (the apps setting)"
                                 + ("; default: every app" if name == "status" else ""))
        return sub

    init = command(commands, "init", "Make a deploy directory in your own repository: inventories/prod.py, "
                   "group_data/prod.py (what must be set, the common settings as comments), deploys/ (onebox's "
                   "own deploy files, from the installed package) and a .gitignore for secrets/. Refuses to "
                   "overwrite a file.", inventory=False)
    init.add_argument("directory", nargs="?", default=".", metavar="DIR", help="default: the current directory")

    deploy = command(commands, "deploy", "Converge the inventory's hosts: pyinfra -y INVENTORY deploys/site.py. "
                     "More pyinfra options go after --, e.g. -- --limit web1 -vv.",
                     usage="onebox deploy [-h] [--dry] INVENTORY [-- PYINFRA_ARGS...]")
    deploy.add_argument("--dry", action="store_true",
                        help="only say what would change, and why a release would run (pyinfra --dry --diff)")

    rollback = command(commands, "rollback", "Switch back to the previous release, or to RELEASE_ID, through the "
                       "health-gated switch (no build; database migrations are NOT reversed).")
    rollback.add_argument("release_id", nargs="?", metavar="RELEASE_ID", help="e.g. 20261202-081500-3fa2c1 "
                          "(see `onebox releases`)")

    restore = command(commands, "restore", "Replace the app's data (PostgreSQL, Redis) with a backup; a safety "
                      "dump of the current data is taken first.")
    restore.add_argument("--from", dest="source", choices=RESTORE_SOURCES,
                         help="local: the server's backup_dir (and pgBackRest's repository there); offsite: the restic "
                         "repository (and the WAL archive in its bucket), e.g. on a fresh server. Required, but with "
                         "--to (default local)")
    restore.add_argument("--name", help="a backup's name from `onebox backup list` (default: the latest, never a "
                         "safety dump)")
    restore.add_argument("--to", metavar="TIME", help="point-in-time recovery (backup_pitr_enabled): PostgreSQL back to "
                         "TIME, ISO 8601 with its zone (e.g. 2026-12-06T14:30:00+01:00), inside the window `onebox "
                         "backup list` shows; 'latest': to the last archived WAL (disaster recovery). Redis is kept")
    restore.add_argument("--yes", action="store_true", help="required: the restore replaces the current data")

    purge = command(commands, "purge", "Delete for good the data of an app taken off the server (apps_removed): "
                    "its volumes (database, Redis), releases, secrets and backups.")
    purge.add_argument("--yes", action="store_true", help="required: the purge cannot be undone")

    backup = command(commands, "backup", "Backups: `backup now INVENTORY`, `backup list INVENTORY`.", inventory=False)
    backups = backup.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(backups, "now", "Take a backup now (label manual), under the deploy lock.")
    command(backups, "list", "List the local and off-site backups.")

    maintenance = command(commands, "maintenance", "Maintenance mode: nginx answers 503 with a maintenance page.",
                          inventory=False)
    modes = maintenance.add_subparsers(dest="action", required=True, metavar="on|off")
    on = command(modes, "on", "Turn maintenance mode on.")
    on.add_argument("--message", help=f"the page's text (one line, at most {MAINTENANCE_MESSAGE_MAX} printable "
                    "characters)")
    command(modes, "off", "Turn maintenance mode off.")

    command(commands, "status", "The live release, each service's state and health, certificate days left, last "
            "backup's age, disk, pending security updates; exit 3 when a host needs attention.")
    dashboard = command(commands, "dashboard", "Open an SSH tunnel to the server's Prometheus (on its loopback) and print "
                        "the local URLs of onebox's views: current values (requests, 5xx, latency, CPU, memory, disk, "
                        "containers, alerts) and graphs of the server and of each app, with each change marked.")
    dashboard.add_argument("--port", type=_positive, help="the local port (default: a free one)")
    command(commands, "releases", "The releases kept, when, from which source; the live one marked; then the "
            "changes (releases, rollbacks, restores, maintenance) the dashboard's graphs mark.")
    logs = command(commands, "logs", "The live release's logs (the API's unless SERVICE).")
    logs.add_argument("-f", "--follow", action="store_true", help="follow (Ctrl-C stops)")
    logs.add_argument("-n", dest="lines", type=_positive, metavar="N", help="the last N lines (default 100)")
    logs.add_argument("--raw", action="store_true", help="the JSON lines as the app wrote them")
    logs.add_argument("service", nargs="?", metavar="SERVICE", help="worker, postgres, redis, ...")
    run = command(commands, "run", "A one-off container of the live image: onebox run INVENTORY -- COMMAND...",
                  usage="onebox run [-h] INVENTORY -- COMMAND...")
    run.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    return top


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments; everything after the first `--` is passed on as it is (pyinfra's options, or the command)."""
    argv = list(argv)
    head, tail = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args, unknown = parser().parse_known_args(head)
    if args.command == "logs" and args.service is None and len(unknown) == 1 and not unknown[0].startswith("-"):
        # `logs INVENTORY -n 200 worker`: argparse gives optional positionals out before the options.
        args.service, unknown = unknown[0], []
    if unknown:
        args.subparser.error(f"unrecognized arguments: {' '.join(unknown)}")  # exits 2
    args.rest = tail
    if tail and args.command not in ("deploy", "run"):
        args.subparser.error(f"unexpected arguments after --: {' '.join(tail)}")
    return args


# --- running it -------------------------------------------------------------------------------

def outcome(returncode: int) -> int:
    """onebox's exit status for pyinfra's."""
    if returncode == 0:
        return EXIT_OK
    if returncode in (EXIT_INTERRUPTED, -signal.SIGINT):
        return EXIT_INTERRUPTED
    if returncode == PYINFRA_USAGE:  # pyinfra stopped before connecting
        return EXIT_USAGE
    return EXIT_FAILED


def exec_outcome(command: str, returncode: int, transcript: Sequence[str]) -> int:
    """Like outcome(), and 3 for `status` when every host that failed said what needs attention
    (and every host connected)."""
    code = outcome(returncode)
    if code != EXIT_FAILED or command != "status":
        return code
    attention, failed, mentioned, connected = set(), set(), set(), set()
    for raw in transcript:
        line = ANSI.sub("", raw.rstrip("\n"))
        if server := SERVER_LINE.match(line):
            if server[2].lstrip().startswith(ATTENTION_LINE):
                attention.add(server[1].strip())
        elif pyinfra := PYINFRA_HOST_LINE.match(line):
            host = pyinfra[1].strip()
            mentioned.add(host)
            if pyinfra[2].startswith("Connected"):
                connected.add(host)
            elif pyinfra[2].startswith("Error"):
                failed.add(host)
    return EXIT_ATTENTION if attention and failed <= attention and mentioned <= connected else EXIT_FAILED


def _wait(process: subprocess.Popen) -> int:
    """Wait for pyinfra; Ctrl-C reaches it too (the same process group) and it stops on its own."""
    try:
        return process.wait()
    except KeyboardInterrupt:
        try:
            process.wait(timeout=30)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            process.terminate()
            process.wait()
        return EXIT_INTERRUPTED


def run_deploy(argv: list[str]) -> int:
    """A deploy file: pyinfra's own output, as when typed."""
    return outcome(_wait(subprocess.Popen(argv)))


def run_exec(command: str, argv: list[str]) -> int:
    """`pyinfra exec`: only the server's own lines ("[host] ..."), streamed (so `logs -f` follows)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    transcript: list[str] = []
    try:
        for line in process.stdout:
            transcript.append(line)
            if SERVER_LINE.match(ANSI.sub("", line)):  # pyinfra's chatter stays out
                print(line, end="", flush=True)
    except KeyboardInterrupt:
        _wait(process)
        return EXIT_INTERRUPTED
    code = exec_outcome(command, _wait(process), transcript)
    if code in (EXIT_FAILED, EXIT_USAGE):
        problems = [line for line in transcript if (match := PYINFRA_HOST_LINE.match(ANSI.sub("", line)))
                    and not match[2].startswith(ROUTINE)]
        if not any(SERVER_LINE.match(ANSI.sub("", line)) for line in transcript):
            problems = transcript[-20:]  # it never got that far: say why
        print("".join(problems), end="", file=sys.stderr)
    return code


def init_directory(directory: Path) -> int:
    from onebox import scaffold

    try:
        written = scaffold.init(directory)
    except FileExistsError as exists:
        print(f"onebox: init writes no file over yours, and these exist: {exists}; nothing was written. "
              "Choose an empty directory (e.g. onebox init deploy)", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(f"wrote {path}")
    print(f"Next: set what must be set in {directory / 'group_data' / 'prod.py'}, then from {directory}:\n"
          "  ONEBOX_HOST=<server address> onebox deploy inventories/prod.py")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if not arguments:
        parser().print_help(sys.stderr)
        return EXIT_USAGE
    args = parse(arguments)
    if args.command == "init":  # files on this machine, no server
        return init_directory(Path(args.directory))
    if args.command == "dashboard":  # a tunnel, not a pyinfra run
        from onebox import dashboard

        return dashboard.main(args.inventory, args.port)
    try:
        command, filtered = plan(args)
    except Refused as refused:
        print(refused, file=sys.stderr)
        return EXIT_USAGE
    return run_exec(args.command, command) if filtered else run_deploy(command)


if __name__ == "__main__":
    sys.exit(main())
