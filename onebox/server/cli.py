"""onebox-release: the server's side of a release (standard library only).

Releases live in APP_DIR/releases/<id>/ (compose file, environment, secrets, record). The
app runs in one of two compose projects, <app>-blue or <app>-green, on two host ports;
nginx's upstream names the live one (onebox/server/engine.py has the phases).

`apply`, `rollback`, `ci-deploy` and `locked` (a restore, a backup now) run detached from the
SSH session (their own session, output to a log that is relayed): a Ctrl-C or a lost connection
never stops a switch or a restore halfway. They hold the deploy lock; a second run waits
(deploy_lock_timeout) and names the holder. `ci-deploy` is CI's `apply` of one digest, the app
and the image read from stdin (ci_deploy.py): the one command onebox-ci's sudo rule allows.

Exit codes: 0 done, 1 failed (the reason is on stderr), 2 usage or refused,
3 status found something that needs attention, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from onebox import contract
from onebox.server import (
    basics,
    boot,
    ci_deploy,
    engine,
    events,
    exporters,
    metrics,
    node_watch,
    placement,
    removal,
    reports,
    slot_project,
    slots,
    switch,
)
from onebox.server.basics import OneboxError
from onebox.server.model import App, app_dirs_from_server, now

# Set for a program run by `onebox-release locked`: its stop-app/start-app calls already hold the lock.
LOCK_HELD = "ONEBOX_DEPLOY_LOCK_HELD"
LOG_ROTATE_BYTES = 1_000_000


def release_id(value: str) -> str:
    try:
        return contract.check_release_id(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="onebox-release", description=__doc__.split("\n\n")[0],
                                  epilog=__doc__.split("\n\n")[-1], formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--app", help="the app, by name (default: the server's only app; status: every app)")
    top.add_argument("--app-dir", help="the app's directory (instead of --app)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("state", help="JSON for the controller's change detection")
    commands.add_parser("apply", help="converge: dependencies, image, release step, health-gated switch")
    rollback = commands.add_parser("rollback", help="switch back to the previous (or a named) release; no build")
    rollback.add_argument("id", nargs="?", type=release_id, help="a release id from `releases`")
    commands.add_parser(contract.CI_DEPLOY_COMMAND,
                        help="CI's deploy of one digest: 'APP_NAME REPOSITORY@sha256:...' on stdin (onebox-ci's sudo rule)")
    for hidden in ("_apply", "_rollback", "_locked", "_ci_deploy"):  # the detached halves of the commands above
        child = commands.add_parser(hidden)
        if hidden == "_rollback":
            child.add_argument("id", nargs="?", type=release_id)
        elif hidden == "_locked":
            child.add_argument("argv", nargs=argparse.REMAINDER)
        elif hidden == "_ci_deploy":
            child.add_argument("ref")
    commands.add_parser("releases", help="the releases kept here, the live one marked; the changes the graphs mark")
    commands.add_parser("status", help="live release, services, certificate, backups, disk, updates (exit 3: attention)")
    logs = commands.add_parser("logs", help="the live release's logs, JSON lines made readable")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=100)
    logs.add_argument("--raw", action="store_true", help="the lines as the app wrote them")
    logs.add_argument("service", nargs="?", default=contract.compose.API_SERVICE, help="api, a process name, postgres or redis")
    run = commands.add_parser("run", help="a one-off container of the live release: run -- alembic current")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    locked = commands.add_parser("locked", help="run a command under the deploy lock, detached (restore uses it)")
    locked.add_argument("argv", nargs=argparse.REMAINDER)
    commands.add_parser("stop-app", help="stop the live release (a restore does, under the lock)")
    commands.add_parser("start-app", help="start the live release again and wait for its health")
    commands.add_parser("boot", help="after a reboot: every app's dependencies and live release running (onebox-boot.service)")
    commands.add_parser("retire", help="stop every container of the app (removed from the settings); data stays")
    metrics_cmd = commands.add_parser("metrics", help="onebox's facts for Prometheus (every app), to a textfile")
    metrics_cmd.add_argument("--textfile", required=True, help="e.g. /var/lib/prometheus/node-exporter/onebox.prom")
    metrics_cmd.add_argument("--targets", help="where the PostgreSQL and Redis exporters' targets go (file discovery)")
    commands.add_parser("watch-nodes", help="on a swarm's manager: nginx's connections kept off nodes whose replica "
                        "stopped answering (onebox-node-watch.service)")
    commands.add_parser("unmonitor", help="monitoring turned off: drop the monitoring role of every app's PostgreSQL")
    commands.add_parser("purge", help="delete a retired app's volumes, directory and backups for good")
    maintenance = commands.add_parser("maintenance", help="503 with Retry-After for all but the health path")
    maintenance.add_argument("mode", choices=("on", "off", "status"))
    maintenance.add_argument("--message", help="the sentence on the maintenance page")
    event = commands.add_parser("record-event", help="mark a change on the dashboard's graphs (a restore does)")
    event.add_argument("kind", choices=("restore",))
    event.add_argument("--note", default="", help="e.g. the backup restored")
    return top


def who() -> str:
    user = os.environ.get("SUDO_USER") or os.environ.get("USER") or "root"
    origin = (os.environ.get("SSH_CLIENT") or "this server").split()[0]
    return f"pid {os.getpid()} ({user} from {origin}) since {now()}"


@contextlib.contextmanager
def deploy_lock(app: App):
    """One deploy at a time; a restore takes the same lock."""
    if os.environ.get(LOCK_HELD) == "1":
        yield
        return
    timeout = app.spec.lock_timeout
    with basics.file_lock(app.dir / ".lock", timeout, holder=who,
                          on_wait=lambda holder: basics.log(f"waiting up to {timeout} s for another deploy: {holder}")):
        yield


def record_outcome(app: App, command: str, ok: bool, message: str) -> None:
    state = app.load_state()
    state.last_deploy = {"command": command, "at": now(), "ok": ok, "message": message}
    app.save_state(state)


def relay_detached(app_dir: Path, argv: list[str]) -> int:
    """Run this tool with `argv` in its own session, logging to a file, and relay the log until it ends."""
    log_path = app_dir / "release.log"
    me = os.path.abspath(sys.argv[0])
    if os.path.basename(me).startswith("onebox-release"):  # the link to the zipapp
        tool = [me]
    elif me.endswith(".pyz"):
        tool = [me, "release"]
    else:  # a checkout: as a module; a script would put its own directory, onebox/server/, first on sys.path
        tool = ["-m", "onebox.server", "release"]
    # Appended, never truncated: a second run (waiting for the lock) must not wipe the first's lines.
    if log_path.exists() and log_path.stat().st_size > LOG_ROTATE_BYTES:
        log_path.replace(log_path.with_name("release.log.1"))  # a run still writing keeps its own file
    with log_path.open("a") as out:
        start = out.tell()
        child = subprocess.Popen([sys.executable, *tool, "--app-dir", str(app_dir), *argv], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    with log_path.open() as log_file:
        log_file.seek(start)
        while True:
            line = log_file.readline()
            if line:
                with contextlib.suppress(OSError):
                    sys.stdout.write(line)
                    sys.stdout.flush()
                continue
            if child.poll() is not None:
                with contextlib.suppress(OSError):
                    sys.stdout.write(log_file.read())
                return child.returncode
            time.sleep(0.1)


def deploy_command(app: App, name: str, work) -> int:  # noqa: ANN001 - a callable of no arguments
    with deploy_lock(app):
        try:
            work()
        except (OneboxError, KeyboardInterrupt) as error:
            record_outcome(app, name, False, str(error) or "interrupted")
            raise
        record_outcome(app, name, True, app.load_state().live or "")
    return basics.EXIT_OK


def dispatch(args: argparse.Namespace, app_dir: Path) -> int:
    if args.command == "state":
        try:
            report = reports.state_report(App(app_dir))
        except OneboxError as error:  # not deployed yet, or a spec of another version
            report = contract.StateReport(installed=False, why=str(error))
        print(contract.state_report_text(report))
        return basics.EXIT_OK
    if args.command in ("apply", "rollback"):
        return relay_detached(app_dir, ["_" + args.command, *([args.id] if getattr(args, "id", None) else [])])
    if args.command == "locked":  # a restore: stopping it halfway would leave the app stopped
        return relay_detached(app_dir, ["_locked", "--", *strip_dashes(args.argv)])
    app = App(app_dir)
    if args.command == "_apply":
        return deploy_command(app, "apply", lambda: engine.apply(app))
    if args.command == "_rollback":
        return deploy_command(app, "rollback", lambda: engine.rollback(app, args.id))
    if args.command == "_ci_deploy":
        return deploy_command(app, contract.CI_DEPLOY_COMMAND, lambda: ci_deploy.deploy(app, args.ref, engine.apply))
    if args.command == "releases":
        reports.releases(app)
    elif args.command == "status":
        return reports.status(app)
    elif args.command == "logs":
        return reports.logs(app, args.follow, args.lines, args.raw, args.service)
    elif args.command == "run":
        return reports.run_in_app(app, strip_dashes(args.argv))
    elif args.command == "_locked":
        with deploy_lock(app):
            return subprocess.run(strip_dashes(args.argv), env={**os.environ, LOCK_HELD: "1"}, check=False).returncode
    elif args.command in ("stop-app", "start-app"):
        with deploy_lock(app):
            state, record = app.live_record()
            assert state.slot is not None
            if args.command == "stop-app":
                slot_project.compose(app, record, state.slot, "stop")
                placement.of(app).stop_api_outside_project(state.slot)  # the replicas on the workers too
            else:
                slots.start_again(app, record, state.slot)
    elif args.command == "maintenance":
        return maintenance(app, args.mode, args.message)
    elif args.command == "record-event":
        events.record(app, args.kind, app.load_state().live, basics.printable(args.note)[:200])
    elif args.command in ("retire", "purge"):
        with deploy_lock(app):
            (removal.retire if args.command == "retire" else removal.purge)(app)
    return basics.EXIT_OK


def maintenance(app: App, mode: str, message: str | None) -> int:
    was_on = switch.maintenance_since(app.maintenance_dir) is not None
    if mode == "on":
        switch.maintenance_on(app.maintenance_dir, message)
        basics.log(f"maintenance mode is on: {app.spec.domain} answers 503 (but {app.spec.release.health_path})")
        if not was_on:  # a new message for a window already open is no new mark
            events.record_quietly(app, "maintenance_on", app.load_state().live)
    elif mode == "off":
        switch.maintenance_off(app.maintenance_dir)
        basics.log(f"maintenance mode is off: {app.spec.domain} serves the live release")
        if was_on:
            events.record_quietly(app, "maintenance_off", app.load_state().live)
    else:
        since = switch.maintenance_since(app.maintenance_dir)
        print(f"maintenance on since {since}" if since else "maintenance off")
    return basics.EXIT_OK


def status_of_every_app(app_dirs: list[Path]) -> int:
    """`status` on a server of several apps: each app's, then the worst exit code (3 above 0, 1 above 3)."""
    codes = []
    for app_dir in app_dirs:
        try:
            app = App(app_dir)
            print(f"== app {app.name} ({app_dir})", flush=True)
            codes.append(reports.status(app))
        except OneboxError as error:
            print(f"== app at {app_dir}\n{contract.ATTENTION}{basics.printable(str(error))}", flush=True)
            codes.append(basics.EXIT_ATTENTION)
    return max(codes, key=lambda code: {basics.EXIT_OK: 0, basics.EXIT_ATTENTION: 1}.get(code, 2))


def strip_dashes(argv: list[str]) -> list[str]:
    rest = argv[1:] if argv[:1] == ["--"] else argv
    if not rest:
        raise basics.UsageError("no command given (e.g. `run -- alembic current`)")
    return rest


def main(argv: list[str]) -> int:
    basics.set_prefix("onebox-release")
    args = parser().parse_args(argv)
    try:
        if args.command == "metrics":  # the whole server, every app
            metrics.write(Path(args.textfile), Path(args.targets) if args.targets else None)
            return basics.EXIT_OK
        if args.command == "unmonitor":
            exporters.drop_roles(metrics.live_apps())
            return basics.EXIT_OK
        if args.command == contract.CI_DEPLOY_COMMAND:  # sudo allows no argument: the app and image come on stdin
            app_dir, ref = ci_deploy.request(sys.stdin.buffer, explicit_app=bool(args.app or args.app_dir))
            return relay_detached(app_dir, ["_ci_deploy", ref])
        app_dirs = app_dirs_from_server(args.app_dir, args.app, every=args.command in ("status", "boot", "watch-nodes"))
        if args.command == "boot":
            return boot.heal_every_app(app_dirs, deploy_lock)
        if args.command == "watch-nodes":
            node_watch.watch(lambda: app_dirs_from_server(args.app_dir, args.app, every=True))
            return basics.EXIT_OK
        if len(app_dirs) == 1:
            return dispatch(args, app_dirs[0])
        return status_of_every_app(app_dirs)
    except OneboxError as error:
        print(f"onebox: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        print("onebox: interrupted", file=sys.stderr, flush=True)
        return basics.EXIT_INTERRUPTED
