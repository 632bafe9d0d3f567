"""What the server tells: the controller's change detection (state), the operator's
status, the releases kept, and logs made readable."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from onebox import contract
from onebox.server import (
    alerts,
    basics,
    deps,
    docker_state,
    events,
    placement,
    port_map,
    secret_files,
    slot_project,
    slots,
    swarm,
    switch,
)
from onebox.server.backup import config as backup_config
from onebox.server.backup import docker as backup_docker
from onebox.server.backup import pitr
from onebox.server.basics import OneboxError
from onebox.server.model import App


def state_report(app: App) -> contract.StateReport:
    """Everything the controller's change detection needs, in one round trip. No secret, nothing derived."""
    state = app.load_state()
    live = app.record(state.live)
    problems = []
    running_deps = {c.service: c for c in docker_state.containers(app.name)}
    for service in app.spec.dependencies:
        item = running_deps.get(service)
        if not item or not item.up:
            problems.append(f"{service} is {item.state if item else 'missing'}")
    problems += [f"{name} is no longer declared but still runs" for name in deps.removed(app)]
    secrets_changed = False
    if live and state.slot:
        secrets_changed = live.secrets != secret_files.fingerprint(app)
        running = {c.service: c for c in slots.containers(app, state.slot)}
        expected = app.slot_services(live)
        for service in sorted(expected):
            item = running.get(service)
            if not item or not item.up:
                problems.append(f"{service} is {item.state if item else 'missing'}")
        if not switch.points_at(app, state.slot):
            problems.append("nginx does not point at the live release")
    return contract.StateReport(
        installed=True, live=contract.LiveRelease(id=live.id, inputs=live.inputs, created=live.created) if live else None,
        transition=contract.ReleaseTransition(**dataclasses.asdict(state.transition)) if state.transition else None,
        deps_inputs=state.deps, problems=problems, slot=state.slot,
        maintenance=switch.maintenance_since(app.maintenance_dir) is not None, secrets_changed=secrets_changed,
    )


def releases(app: App) -> None:
    state = app.load_state()
    print(f"{'':2}{'RELEASE':<24}{'DEPLOYED (UTC)':<22}{'SOURCE':<28}IMAGE")
    for record in app.records():
        mark = "* " if record.id == state.live else "  "
        print(basics.printable(f"{mark}{record.id:<24}{record.created:<22}{record.source[:27]:<28}{record.image}"))
    print("(* live)")
    changes = events.load(app)
    if changes:
        # The times the dashboard's graphs mark (onebox_event_timestamp_seconds): a release when
        # nginx switched to it, which is after it was made (DEPLOYED above).
        print(f"\nCHANGES, as the dashboard marks them (newest first)\n{'AT (UTC)':<22}{'KIND':<17}{'RELEASE':<24}NOTE")
        for event in changes:
            print(basics.printable(f"{events.iso(event['at']):<22}{event['kind']:<17}{event['release'] or '-':<24}"
                                   f"{event['note']}".rstrip()))


def converged_by() -> str:
    """The onebox version the server records (contract.VERSION_FILE); 0.1.0 recorded none."""
    try:
        return Path(contract.VERSION_FILE).read_text().strip() or "unknown"
    except FileNotFoundError:
        return "0.1.0 or earlier (no version recorded)"


def status(app: App) -> int:
    """What an operator asks first, in a few seconds; EXIT_ATTENTION when something needs it."""
    state = app.load_state()
    attention: list[str] = []
    lines = [f"app {app.name} on {app.spec.domain}",
             f"onebox         {converged_by()} (the version that last converged this server)"]
    live = app.record(state.live)
    if live:
        lines.append(f"live release   {live.id}  ({live.source}, deployed {live.created}, slot {state.slot})")
    else:
        attention.append("no release is live")
    if state.previous:
        lines.append(f"previous       {state.previous}  (onebox rollback INVENTORY)")
    since = switch.maintenance_since(app.maintenance_dir)
    if since:
        lines.append(f"maintenance    ON since {since} (onebox maintenance off INVENTORY)")
        attention.append("maintenance mode is on: visitors get 503")
    last = state.last_deploy
    if last:
        lines.append(f"last deploy    {last['at']} {last['command']}: {'ok' if last['ok'] else 'FAILED: ' + last['message']}")
        if not last["ok"]:
            attention.append("the last deploy failed")
    if state.transition:
        attention.append(f"release {state.transition.release} was interrupted (run the deploy again)")
    where = placement.of(app)
    services = docker_state.containers(app.name) + (slots.containers(app, state.slot) if live and state.slot else [])
    for item in services:
        lines.append(f"service        {item.service:<12} {item.state:<10} health: {item.health}"
                     # in a cluster the slot's API is its swarm service: how many nodes answer
                     + (f"  {item.name}" if where.api_status_in_name() and item.service == contract.compose.API_SERVICE else ""))
        if not item.up:
            attention.append(f"{item.service} is {item.state} ({item.health})")
    for problem in state_report(app).problems:
        if not any(problem.startswith(f"{i.service} ") for i in services):
            attention.append(problem)
    if live and state.slot:
        lines += where.task_lines(state.slot)
    if swarm.is_manager():  # whatever this app's placement: a lost node is the cluster's
        lines += swarm.node_lines(attention)
    for node in sorted(port_map.down_nodes(app)):  # onebox-node-watch's finding: no answer from its replica
        lines.append(f"node watch     {node}: its replica does not answer; nginx's connections to it go to the others")
        attention.append(f"the replica on {node} does not answer (onebox-node-watch)")
    lines += certificate_lines(app, attention) + backup_lines(app, attention) + disk_lines(app, attention)
    lines += alert_lines(app, attention)
    lines.append(f"security updates pending: {security_updates()}")
    # Containers' states, task errors, alerts and the last deploy's message come from the app's side.
    print("\n".join(basics.printable(line) for line in lines))
    for need in attention:
        print(basics.printable(f"{contract.ATTENTION}{need}"))
    return contract.EXIT_ATTENTION if attention else contract.EXIT_OK


def alert_lines(app: App, attention: list[str]) -> list[str]:
    try:
        routes, firing = alerts.firing(app.name)
    except contract.ContractError as error:  # another onebox wrote it: which version, and what to do
        attention.append(str(error))
        return ["alerts         unknown (see below)"]
    if routes is None:
        return ["alerts         monitoring is off (monitoring_enabled)"]
    if not routes:
        attention.append("alerts have no route: set alert_webhook_url or alert_email_to")
    attention += [f"alert {line}" for line in firing]
    return [f"alerts         {len(firing)} firing; sent to {', '.join(routes) or 'nobody'}"]


def security_updates() -> int:
    simulated = basics.run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"], check=False).stdout
    return sum(1 for line in simulated.splitlines() if line.startswith("Inst") and "-security" in line)


def certificate_lines(app: App, attention: list[str]) -> list[str]:
    cert = f"{contract.cert_dir(app.spec.domain)}/{contract.CERT_CHAIN}"
    out = basics.run(["openssl", "x509", "-in", cert, "-noout", "-enddate"], check=False).stdout.strip()
    if not out.startswith("notAfter="):
        attention.append(f"no certificate at {cert}")
        return []
    expires = datetime.strptime(out.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    days = (expires - datetime.now(UTC)).days
    if days < 14:
        attention.append(f"the certificate expires in {days} days")
    return [f"certificate    {days} days left (until {expires:%Y-%m-%d})"]


def backup_lines(app: App, attention: list[str]) -> list[str]:
    if not app.spec.backup_before_release:
        return ["backups        disabled"]
    try:
        age_h = (time.time() - int(Path(app.files.last_backup_success()).read_text().strip())) / 3600
    except (OSError, ValueError):
        return ["backups        none has succeeded yet"]
    if age_h > app.spec.backup_max_age_hours:
        attention.append(f"the last successful backup is {age_h:.1f} h old")
    return [f"last backup    {age_h:.1f} h ago", *point_in_time_lines(app, attention)]


def point_in_time_lines(app: App, attention: list[str]) -> list[str]:
    """The point-in-time recovery window (this server's repository) and the archive's state."""
    try:
        config = backup_config.Config.read(app.files.backup_config)
        pg = backup_docker.container(config, "postgres") if config.pitr_enabled else None
        if pg is None:
            return []
        start, state = pitr.window_start(config, pg, 1), pitr.archiver(config, pg)
    except (OneboxError, ValueError, KeyError) as error:
        attention.append(f"point-in-time recovery: {error}")
        return []
    if state["last_failed"] > state["last_archived"]:
        attention.append("WAL archiving fails (pgBackRest): point-in-time recovery stops at the last archived segment")
    window = f"from {pitr.iso(start)} to now" if start else "no base backup yet"
    return [f"point in time  {window} (onebox restore --to TIME)"]


def disk_lines(app: App, attention: list[str]) -> list[str]:
    usage = shutil.disk_usage("/")
    percent = 100 * usage.used / usage.total
    if percent > 90:
        attention.append(f"the root filesystem is {percent:.0f}% full")
    sizes = []
    for data in sorted(Path("/var/lib/docker/volumes").glob(f"{app.name}_*/_data")):  # this app's volumes
        out = basics.run(["du", "-sh", str(data)], check=False).stdout.split()
        if out:
            sizes.append(f"{out[0]} {data.parent.name}")
    return [f"disk /         {percent:.0f}% used ({usage.free / 1e9:.1f} GB free)",
            f"volumes        {', '.join(sizes) or 'none'}"]


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def readable(line: str) -> str:
    """A JSON log line as a person reads it: time, level, message, the rest as key=value. What JSON
    escaped (\\u001b, \\n) stays visible as an escape: the app's text never reaches the terminal raw."""
    line = ANSI_ESCAPE.sub("", line)
    try:
        record = json.loads(line)
    except ValueError:
        return basics.printable(line)
    if not isinstance(record, dict):
        return basics.printable(line)
    when = record.pop("ts", None) or record.pop("time", None) or record.pop("timestamp", "")
    level = str(record.pop("level", record.pop("levelname", ""))).upper()
    message = record.pop("message", record.pop("msg", ""))
    rest = " ".join(f"{key}={value}" for key, value in record.items())
    return basics.printable(f"{when} {level:<7} {message} {rest}".strip())


def logs(app: App, follow: bool, lines: int, raw: bool, service: str) -> int:
    """The live release's logs (or a dependency's); JSON lines rendered for people unless raw."""
    args = ["logs", "--no-color", "--no-log-prefix", "--tail", str(lines), *(["-f"] if follow else []), service]
    if service in ("postgres", "redis"):
        command, env = deps.compose_argv(app, *args), {}
    else:
        state, record = app.live_record()
        assert state.slot is not None
        command = slot_project.compose_argv(app, record, state.slot, *args)
        env = slot_project.compose_env(app, record, state.slot)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **env})
    assert proc.stdout is not None
    for line in proc.stdout:
        line = ANSI_ESCAPE.sub("", line.rstrip("\n"))
        print(basics.printable(line) if raw else readable(line), flush=True)
    return proc.wait()


def run_in_app(app: App, command: list[str]) -> int:
    """A one-off container of the live release's image, with its environment and secrets."""
    state, record = app.live_record()
    assert state.slot is not None
    # A terminal gets a TTY (`ssh -t ... onebox-release run -- python` is an interactive shell); a pipe does not.
    tty = [] if sys.stdin.isatty() else ["-T"]
    return slot_project.compose(app, record, state.slot, "run", "--rm", "--no-deps", *tty, contract.compose.API_SERVICE, *command,
                                check=False).returncode
