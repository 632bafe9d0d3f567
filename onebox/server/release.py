#!/usr/bin/env python3
"""onebox-release: the server's side of a release (stdlib only; installed by deploys/app.py).

    onebox-release state              JSON for the controller's change detection
    onebox-release apply              converge: dependencies, image, release step, health-gated switch
    onebox-release rollback [ID]      switch back to the previous (or a named) release, no build, no pull
    onebox-release releases           the releases kept here, the live one marked
    onebox-release stop-app | start-app   stop / start the live release (used by restore)
    onebox-release status             the live release, services, certificate, backups, disk, updates
    onebox-release logs [-f] [-n N] [--raw] [SERVICE]   the live release's logs (JSON lines made readable)
    onebox-release run -- COMMAND...  a one-off container of the live release (e.g. alembic current)
    onebox-release locked -- COMMAND...   run COMMAND under the deploy lock (restore uses it)

Releases live in APP_DIR/releases/<id>/ (compose file, environment, secrets, metadata).
The app runs in one of two compose projects, <app>-blue or <app>-green, on two host
ports; nginx's upstream names the live one. A new release starts in the idle slot,
must answer its health path, then nginx is switched by a graceful reload, the old
slot drains and stops, and the new release's extra processes start.

`apply` and `rollback` run detached from the SSH session (their own session, output to
a log that is relayed): a Ctrl-C or a lost connection never stops a switch halfway.
They hold a lock; a second run waits (deploy_lock_timeout) and names the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Where the app lives: the deploy writes it to APP_DIR_FILE, so operators need not say it.
APP_DIR_FILE = Path("/etc/onebox/app-dir")


def _app_dir() -> Path:
    if os.environ.get("ONEBOX_APP_DIR"):
        return Path(os.environ["ONEBOX_APP_DIR"])
    with contextlib.suppress(OSError):
        return Path(APP_DIR_FILE.read_text().strip())
    return Path("/opt/onebox")


APP_DIR = _app_dir()
SHIM = "/usr/local/lib/onebox/with-secrets.sh"
BACKUP_COMMAND = "/usr/local/sbin/onebox-backup"
SLOTS = ("blue", "green")
# Set for a program run by `onebox-release locked`: its stop-app/start-app calls already hold the lock.
LOCK_HELD = "ONEBOX_DEPLOY_LOCK_HELD"


class ReleaseError(RuntimeError):
    """A step failed; the message says what still serves."""


STARTED = time.monotonic()


def log(message: str) -> None:
    """A line of the release log, with the seconds since the command started (where time goes)."""
    with contextlib.suppress(OSError):
        print(f"onebox-release: [{time.monotonic() - STARTED:5.1f} s] {message}", flush=True)


def run(*args: str, env: dict | None = None, check: bool = True, capture: bool = False, stdin: str | None = None):
    """Run a command; its output goes to the release log unless captured."""
    result = subprocess.run(list(args), env={**os.environ, **(env or {})}, text=True, input=stdin,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.PIPE if capture else subprocess.STDOUT, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else ""
        raise ReleaseError(f"`{' '.join(args[:4])} ...` failed (exit {result.returncode}) {detail}".strip())
    return result


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def write_json(path: Path, data, mode: int = 0o600) -> None:
    """Atomic: a reader (or a crash) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.chmod(mode)
    tmp.replace(path)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the desired state, as the controller wrote it -------------------------------------------

class Spec:
    def __init__(self, app_dir: Path = APP_DIR) -> None:
        self.dir = app_dir
        self.data = read_json(app_dir / "spec.json")
        if self.data is None:
            raise ReleaseError(f"{app_dir}/spec.json is missing: run the deploy (deploys/site.py) first")
        self.app = self.data["app_name"]
        self.secrets_dir = app_dir / "secrets"
        self.releases_dir = app_dir / "releases"

    def __getitem__(self, key: str):
        return self.data[key]

    def project(self, slot: str) -> str:
        return f"{self.app}-{slot}"

    def port(self, slot: str) -> int:
        return self.data["slot_ports"][SLOTS.index(slot)]

    @property
    def app_inputs(self) -> str:
        """What makes a release: the app part of the spec and its compose file (not the dependencies)."""
        compose = (self.dir / "app.compose.yaml").read_bytes()
        return hashlib.sha256(json.dumps(self.data["release"], sort_keys=True).encode() + b"\0" + compose).hexdigest()

    @property
    def deps_inputs(self) -> str:
        return hashlib.sha256((self.dir / "deps.compose.yaml").read_bytes()).hexdigest()


# --- secrets: supplied by the controller (streamed through sudo), or generated here once -----

def secret_values(spec: Spec) -> dict:
    """{'postgres_password': ..., 'secret': {NAME: ...}, 'registry_password': ...}; generates what is missing."""
    supplied = read_json(spec.secrets_dir / "supplied.json", {})
    generated_path = spec.secrets_dir / "generated.json"
    generated = read_json(generated_path, {"secret": {}})
    wanted = list(spec["release"]["secrets"])
    changed = False
    if spec["postgres"]["enabled"] and not supplied.get("postgres_password") and not generated.get("postgres_password"):
        generated["postgres_password"] = secrets.token_hex(32)
        changed = True
    for name in wanted:
        if name not in supplied.get("secret", {}) and name not in generated["secret"]:
            generated["secret"][name] = secrets.token_hex(32)
            changed = True
    if changed:
        old_umask = os.umask(0o077)
        try:
            write_json(generated_path, generated)
        finally:
            os.umask(old_umask)
    values = {"postgres_password": supplied.get("postgres_password") or generated.get("postgres_password", ""),
              "registry_password": supplied.get("registry_password"),
              "secret": {**generated["secret"], **supplied.get("secret", {})}}
    return values


def secrets_fingerprint(spec: Spec) -> str:
    """A keyed fingerprint of the supplied secrets, kept here: it never leaves the server."""
    key_path = spec.secrets_dir / "fingerprint.key"
    if not key_path.exists():
        key_path.write_bytes(secrets.token_bytes(32))
        key_path.chmod(0o600)
    supplied = (spec.secrets_dir / "supplied.json")
    data = supplied.read_bytes() if supplied.exists() else b""
    return hashlib.blake2b(data, key=key_path.read_bytes(), digest_size=16).hexdigest()


def placeholder_values(spec: Spec, release_id: str) -> dict:
    return {**spec["release"]["placeholders"], "release": release_id}


def render_env(templates: dict, values: dict) -> dict:
    formatter = string.Formatter()
    return {name: formatter.vformat(template, (), values) for name, template in templates.items()}


def secret_placeholders(plain: dict, values: dict) -> dict:
    """What app_secret_env templates may use: the plain values, the secrets, and the
    PostgreSQL password percent-encoded for URLs ({postgres_password_url})."""
    password = values["postgres_password"]
    return {**plain, "postgres_password": password, "postgres_password_url": quote(password, safe=""),
            "secret": values["secret"]}


def write_release_secrets(spec: Spec, release_dir: Path, release_id: str) -> None:
    """Each secret as a file in the release's root-only directory (0700): the containers get
    them as compose secrets (bind-mounted files), so `docker inspect` shows no value."""
    values = secret_values(spec)
    rel = spec["release"]
    files = dict(values["secret"].items())
    files = {name: value for name, value in files.items() if name in rel["secrets"]}
    files.update(render_env(rel["secret_env"], secret_placeholders(placeholder_values(spec, release_id), values)))
    directory = release_dir / "secrets"
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    for name, value in files.items():
        path = directory / name
        tmp = directory / f".{name}.tmp"
        tmp.write_text(value)
        # Readable inside the container whatever its user; on the host the 0700 directory keeps others out.
        tmp.chmod(0o444)
        tmp.replace(path)


def write_postgres_secret(spec: Spec) -> None:
    if not spec["postgres"]["enabled"]:
        return
    directory = spec.secrets_dir / "postgres"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / "postgres_password"
    value = secret_values(spec)["postgres_password"]
    if not path.exists() or path.read_text() != value:
        tmp = directory / ".postgres_password.tmp"
        tmp.write_text(value)
        tmp.chmod(0o444)
        tmp.replace(path)


# --- compose --------------------------------------------------------------------------------

def compose_env(spec: Spec, release: dict, slot: str) -> dict:
    return {"APP_IMAGE": release["image"], "ONEBOX_RELEASE": release["id"], "ONEBOX_SLOT_PORT": str(spec.port(slot))}


def compose(spec: Spec, release: dict, slot: str, *args: str, check: bool = True, capture: bool = False):
    release_dir = spec.releases_dir / release["id"]
    files = ["-f", str(release_dir / "compose.yaml")]
    for override in ("override.json", "entrypoint.json"):  # entrypoint.json: releases made before 2026-11-23
        if (release_dir / override).exists():
            files += ["-f", str(release_dir / override)]
    return run("docker", "compose", "-p", spec.project(slot), "--project-directory", str(release_dir), *files, *args,
               env=compose_env(spec, release, slot), check=check, capture=capture)


def deps_up(spec: Spec) -> None:
    run("docker", "network", "inspect", f"{spec.app}_default", check=False, capture=True).returncode == 0 or run(
        "docker", "network", "create", "--subnet", spec["network_subnet"], f"{spec.app}_default", capture=True)
    write_postgres_secret(spec)
    run("docker", "compose", "-p", spec.app, "--project-directory", str(spec.dir), "-f", str(spec.dir / "deps.compose.yaml"),
        "up", "-d", "--wait", "--wait-timeout", "180", "--remove-orphans")


def containers(project: str) -> list[dict]:
    """The project's containers: service, state, health."""
    out = run("docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
              "--format", "{{json .}}", capture=True, check=False).stdout
    found = []
    for line in out.splitlines():
        item = json.loads(line)
        labels = dict(part.split("=", 1) for part in item.get("Labels", "").split(",") if "=" in part)
        status = item.get("Status", "")
        health = "healthy" if "(healthy)" in status else "unhealthy" if "(unhealthy)" in status else \
            "starting" if "(health: starting)" in status else "none"
        found.append({"service": labels.get("com.docker.compose.service", "?"), "state": item.get("State"),
                      "health": health, "name": item.get("Names")})
    return found


# --- images ---------------------------------------------------------------------------------

def image_present(ref: str) -> bool:
    return run("docker", "image", "inspect", ref, check=False, capture=True).returncode == 0


def ensure_image(spec: Spec) -> str:
    image = spec["release"]["image"]
    source = image["source"]
    if source == "build" and not image_present(image["ref"]):
        # The uploaded tarball itself is the build context (`-f` is a path inside it). Never an
        # extracted directory: its files all carry mtime 0 (the tarball is reproducible), and
        # BuildKit re-sends a directory context only where size or mtime changed, so an edit
        # that keeps a file's size would be built from the previous release's copy.
        args = ["docker", "build", "-q", "-f", image["dockerfile"], "-t", image["ref"]]
        if image.get("target"):
            args += ["--target", image["target"]]
        for name, value in image.get("args", {}).items():
            args += ["--build-arg", f"{name}={value}"]
        log(f"building {image['ref']}")
        with (spec.dir / "incoming" / image["tarball"]).open("rb") as context:
            result = subprocess.run([*args, "-"], stdin=context, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ReleaseError(f"the image build failed (exit {result.returncode}); the running version was left "
                               f"as it was:\n{result.stderr.strip()[-3000:]}")
    elif source == "registry":
        password = secret_values(spec).get("registry_password")
        if password and image.get("registry_username"):
            run("docker", "login", image["registry_server"], "-u", image["registry_username"], "--password-stdin",
                stdin=password, capture=True)
        log(f"pulling {image['ref']}")
        run("docker", "pull", "-q", image["ref"], capture=True)
    if not image_present(image["ref"]):
        raise ReleaseError(f"image {image['ref']} is not on the server (app_image_source = {source})")
    return image["ref"]


def release_override(spec: Spec, image: str) -> dict | None:
    """What the release's compose file cannot say before the image exists (from its config)."""
    rel = spec["release"]
    config = json.loads(run("docker", "image", "inspect", "-f", "{{json .Config}}", image, capture=True).stdout)
    services: dict[str, dict] = {}
    if rel["secrets_in_env"]:
        # Wrap the image's entrypoint in the shim that exports /run/secrets/* as variables.
        entrypoint = ["/bin/sh", "/onebox/with-secrets.sh", *(config.get("Entrypoint") or [])]
        shim = {"type": "bind", "source": SHIM, "target": "/onebox/with-secrets.sh", "read_only": True}
        commands = {"api": rel["command"] or config.get("Cmd") or []}
        commands.update({name: process["command"] for name, process in rel["processes"].items()})
        services = {name: {"entrypoint": entrypoint, "command": command, "volumes": [shim]}
                    for name, command in commands.items()}
    if ((config.get("Healthcheck") or {}).get("Test") or ["NONE"]) != ["NONE"]:
        # The image's own HEALTHCHECK first runs after its interval (15-30 s is common) and the
        # switch waits for it: check every second while the new version starts. Docker takes
        # the image's test, interval and retries for what is not set here.
        services.setdefault("api", {})["healthcheck"] = {"start_period": f"{rel['health_timeout']}s",
                                                        "start_interval": "1s"}
    return {"services": services} if services else None


# --- state ----------------------------------------------------------------------------------

def load_state(spec: Spec) -> dict:
    return read_json(spec.dir / "state.json", {"live": None, "slot": None, "history": [], "transition": None})


def save_state(spec: Spec, state: dict) -> None:
    write_json(spec.dir / "state.json", state, mode=0o644)


def release_record(spec: Spec, release_id: str) -> Any:
    return read_json(spec.releases_dir / release_id / "release.json")


def other(slot: str | None) -> str:
    return "green" if slot == "blue" else "blue"


# --- health and the switch ------------------------------------------------------------------

def http_ok(spec: Spec, port: int, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{spec['release']['health_path']}",
                                     headers={"Host": spec["domain"], "X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(spec: Spec, release: dict, slot: str) -> None:
    """Until the app answers its health path on the slot's port (and Docker's check, if any, passes)."""
    deadline = time.monotonic() + spec["release"]["health_timeout"]
    while time.monotonic() < deadline:
        api = [c for c in containers(spec.project(slot)) if c["service"] == "api"]
        if api and api[0]["state"] in ("exited", "dead", "restarting"):
            break  # it crashed: restarting it in a loop would not make it healthy
        if api and api[0]["health"] in ("healthy", "none") and http_ok(spec, spec.port(slot)):
            return
        time.sleep(0.5)
    compose(spec, release, slot, "logs", "--no-color", "--tail", "30", "api", check=False)
    raise ReleaseError(f"the new version did not become healthy on {spec['release']['health_path']} "
                       "(its last log lines are above); it never received traffic")


def upstream_port(spec: Spec) -> int | None:
    try:
        text = Path(spec["nginx_upstream"]).read_text()
    except OSError:
        return None
    for word in text.replace(";", " ").split():
        if word.startswith("127.0.0.1:"):
            return int(word.split(":")[1])
    return None


def point_nginx_at(spec: Spec, slot: str) -> None:
    """Graceful switch: new nginx workers use the new slot; old workers finish their requests."""
    path = Path(spec["nginx_upstream"])
    if upstream_port(spec) == spec.port(slot) or not shutil.which("nginx"):
        return
    previous = path.read_text() if path.exists() else None
    path.write_text(f"# managed by onebox-release: the live release's slot ({slot})\nserver 127.0.0.1:{spec.port(slot)};\n")
    if run("nginx", "-t", "-q", check=False, capture=True).returncode != 0:
        if previous is not None:
            path.write_text(previous)
        raise ReleaseError("nginx -t refused the upstream switch; the previous version keeps serving")
    old_workers = nginx_workers()
    run("systemctl", "reload", "nginx")
    # The reload is asynchronous, and the workers that existed before it may still send requests
    # to the old slot: wait until every one of them has exited (they finish their requests
    # first), bounded by the grace period, since an open WebSocket keeps its worker alive.
    deadline = time.monotonic() + spec["release"]["graceful_timeout"]
    while time.monotonic() < deadline and old_workers & nginx_workers():
        time.sleep(0.25)


def nginx_workers() -> set[str]:
    """PIDs of nginx worker processes, the current generation and any shutting down."""
    out = run("pgrep", "-f", "^nginx: worker process", check=False, capture=True).stdout
    return set(out.split())


def stop_slot(spec: Spec, slot: str) -> None:
    state = load_state(spec)
    release_id = state.get("slots", {}).get(slot)
    record = release_record(spec, release_id) if release_id else None
    if record is None:
        run("docker", "compose", "-p", spec.project(slot), "down", "--remove-orphans", check=False, capture=True)
        return
    # SIGTERM, then each service's own grace period (stop_grace_period): in-flight requests finish.
    compose(spec, record, slot, "down", "--remove-orphans", check=False)


def switch_to(spec: Spec, release: dict, run_release_step: bool) -> None:
    """The one path every release, rollback and recovery takes."""
    state = load_state(spec)
    live_slot = state.get("slot")
    new_slot = other(live_slot) if state.get("live") else "blue"
    # Whatever is left in the idle slot (an abandoned attempt) goes first.
    stop_slot(spec, new_slot)
    state.setdefault("slots", {})[new_slot] = release["id"]
    state["transition"] = {"release": release["id"], "slot": new_slot, "phase": "starting", "since": now()}
    save_state(spec, state)
    try:
        if run_release_step and spec["release"]["release_command"]:
            if spec["backup_before_release"] and Path(BACKUP_COMMAND).exists():
                log(f"dump before the release step ({BACKUP_COMMAND} dump --label release-{release['id']})")
                if run(BACKUP_COMMAND, "dump", "--label", f"release-{release['id']}", check=False).returncode != 0:
                    raise ReleaseError("the pre-release backup failed; the running version was left as it was")
            log(f"release step: {' '.join(spec['release']['release_command'])}")
            step = compose(spec, release, new_slot, "run", "--rm", "--no-deps", "-T", "api",
                           *spec["release"]["release_command"], check=False)
            if step.returncode != 0:
                raise ReleaseError("the release step failed (e.g. the database migration); "
                                   "the running version was left as it was")
        compose(spec, release, new_slot, "up", "-d", "--no-build", "--pull", "never", "api")
        wait_healthy(spec, release, new_slot)
    except ReleaseError:
        stop_slot(spec, new_slot)
        state = load_state(spec)
        state["transition"] = None
        save_state(spec, state)
        raise
    healthy_at = time.monotonic()
    log(f"{release['id']} is healthy in slot {new_slot}; switching nginx to it")
    state["transition"]["phase"] = "switching"
    save_state(spec, state)
    point_nginx_at(spec, new_slot)
    finish_switch(spec, release, new_slot, healthy_at)


def finish_switch(spec: Spec, release: dict, new_slot: str, healthy_at: float | None = None) -> None:
    """After nginx points at the new slot: drain and stop the old one, start the new processes."""
    state = load_state(spec)
    previous = state.get("live")
    state.update(live=release["id"], slot=new_slot, transition=None)
    if previous and previous != release["id"]:
        state["previous"] = previous
    state["history"] = ([{"id": release["id"], "at": now()}] + state.get("history", []))[:50]
    save_state(spec, state)
    started = healthy_at or time.monotonic()
    stop_slot(spec, other(new_slot))
    log(f"the previous version stopped {time.monotonic() - started:.1f} s after the new one was healthy")
    if spec["release"]["processes"]:
        start_processes(spec, release, new_slot)
    state = load_state(spec)
    state["slots"] = {new_slot: release["id"]}
    save_state(spec, state)


def start_processes(spec: Spec, release: dict, slot: str) -> None:
    """The extra processes (workers): started, and still running a few seconds later. They
    usually have no health check, so `compose up --wait` cannot judge them."""
    names = list(spec["release"]["processes"])
    compose(spec, release, slot, "up", "-d", "--no-build", "--pull", "never", *names)
    time.sleep(3)
    states = {c["service"]: c["state"] for c in containers(spec.project(slot))}
    failing = [name for name in names if states.get(name) != "running" or
               any(c["service"] == name and c["health"] == "unhealthy" for c in containers(spec.project(slot)))]
    if failing:
        compose(spec, release, slot, "logs", "--no-color", "--tail", "30", *failing, check=False)
        raise ReleaseError(f"{', '.join(failing)} did not stay up (logs above); the new API serves, "
                           "the previous release's processes are stopped: fix and deploy again")


def recover(spec: Spec) -> None:
    """A release stopped halfway (the server rebooted, the tool was killed): finish or undo it."""
    state = load_state(spec)
    transition = state.get("transition")
    if not transition:
        return
    release = release_record(spec, transition["release"])
    slot = transition["slot"]
    if release and upstream_port(spec) == spec.port(slot):
        log(f"finishing the interrupted switch to {release['id']}")
        compose(spec, release, slot, "up", "-d", "--no-build", "--pull", "never", "api")
        finish_switch(spec, release, slot)
    else:
        log(f"undoing the interrupted release {transition['release']}: the live version stays")
        stop_slot(spec, slot)
        state = load_state(spec)
        state["transition"] = None
        save_state(spec, state)


def heal(spec: Spec) -> list[str]:
    """The live release as declared: its containers running, nginx pointing at it."""
    state = load_state(spec)
    release = release_record(spec, state["live"])
    slot = state["slot"]
    fixed = []
    down = [c["service"] for c in containers(spec.project(slot)) if c["state"] != "running"]
    expected = {"api", *spec["release"]["processes"]} if release["processes_started"] else {"api"}
    missing = expected - {c["service"] for c in containers(spec.project(slot))}
    if down or missing:
        fixed.append(f"started {', '.join(sorted(set(down) | missing))} of {release['id']}")
        compose(spec, release, slot, "up", "-d", "--no-build", "--pull", "never", "api")
        wait_healthy(spec, release, slot)
        if release["processes_started"]:
            start_processes(spec, release, slot)
    if upstream_port(spec) != spec.port(slot):
        fixed.append(f"pointed nginx at slot {slot}")
        point_nginx_at(spec, slot)
    return fixed


def new_release(spec: Spec, image: str) -> dict:
    created = datetime.now(UTC)
    inputs = spec.app_inputs
    release_id = f"{created:%Y%m%d-%H%M%S}-{inputs[:6]}"
    release_dir = spec.releases_dir / release_id
    release_dir.mkdir(parents=True, mode=0o700)
    shutil.copy(spec.dir / "app.compose.yaml", release_dir / "compose.yaml")
    rel = spec["release"]
    env = render_env(rel["env"], placeholder_values(spec, release_id))
    (release_dir / "app.env").write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    write_release_secrets(spec, release_dir, release_id)
    override = release_override(spec, image)
    if override:
        write_json(release_dir / "override.json", override)
    record = {"id": release_id, "image": image, "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "source": rel["source_label"], "inputs": inputs, "secrets": secrets_fingerprint(spec),
              "processes_started": bool(rel["processes"])}
    write_json(release_dir / "release.json", record, mode=0o644)
    return record


def prune(spec: Spec) -> None:
    """Keep the newest releases_kept (the live one always), with their images."""
    state = load_state(spec)
    records = sorted((r for r in (read_json(p / "release.json") for p in spec.releases_dir.iterdir()) if r),
                     key=lambda r: r["created"], reverse=True)
    kept = records[:spec["releases_kept"]]
    kept_ids = {r["id"] for r in kept} | {state.get("live")}
    kept_images = {r["image"] for r in records if r["id"] in kept_ids}
    for record in records:
        if record["id"] in kept_ids:
            continue
        shutil.rmtree(spec.releases_dir / record["id"], ignore_errors=True)
        log(f"pruned release {record['id']}")
    # Images of this app that no kept release runs (pruned releases, releases that failed).
    repository = spec["release"]["image"]["ref"].rsplit(":", 1)[0]
    listed = run("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository, capture=True, check=False).stdout
    for image in set(listed.split()) - kept_images - {spec["release"]["image"]["ref"]}:
        run("docker", "image", "rm", image, check=False, capture=True)
    current = spec["release"]["image"].get("tarball")
    for upload in (spec.dir / "incoming").glob("src-*.tar.gz"):
        if upload.name != current:
            upload.unlink()  # a new build context replaces the old one; releases keep their images


# --- commands -------------------------------------------------------------------------------

@contextlib.contextmanager
def deploy_lock(spec: Spec, timeout: int):
    """One deploy at a time. The kernel drops the lock when its holder dies: a stale lock is taken over."""
    path = spec.dir / ".lock"
    handle = path.open("a+")
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = read_json(spec.dir / ".lock.holder", {})
            who = f"pid {holder.get('pid')} ({holder.get('who')}) since {holder.get('since')}"
            if time.monotonic() >= deadline:
                raise ReleaseError(f"another deploy holds the lock: {who}; waited {timeout} s. "
                                   "Run again when it has finished") from None
            if not said:
                log(f"waiting up to {timeout} s for another deploy: {who}")
                said = True
            time.sleep(1)
    who = f"{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'root'} from " \
          f"{(os.environ.get('SSH_CLIENT') or 'this server').split()[0]}"
    write_json(spec.dir / ".lock.holder", {"pid": os.getpid(), "who": who, "since": now()}, mode=0o644)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def record_outcome(spec: Spec, command: str, ok: bool, message: str) -> None:
    state = load_state(spec)
    state["last_deploy"] = {"command": command, "at": now(), "ok": ok, "message": message}
    save_state(spec, state)


def apply(spec: Spec) -> None:
    recover(spec)
    deps_up(spec)
    state = load_state(spec)
    live = release_record(spec, state["live"]) if state.get("live") else None
    if live and live["inputs"] == spec.app_inputs and live["secrets"] == secrets_fingerprint(spec):
        fixed = heal(spec)
        log("; ".join(fixed) if fixed else f"{live['id']} is live and healthy; nothing to do")
        state = load_state(spec)
        state["deps"] = spec.deps_inputs
        save_state(spec, state)
        return
    image = ensure_image(spec)
    release = new_release(spec, image)
    log(f"new release {release['id']} ({release['source']})")
    try:
        switch_to(spec, release, run_release_step=True)
    except ReleaseError:
        # It never served: nothing to roll back to, nothing to keep.
        shutil.rmtree(spec.releases_dir / release["id"], ignore_errors=True)
        raise
    state = load_state(spec)
    state["deps"] = spec.deps_inputs
    save_state(spec, state)
    prune(spec)
    log(f"{release['id']} is live")


def rollback(spec: Spec, target: str | None) -> None:
    recover(spec)
    state = load_state(spec)
    target = target or state.get("previous")
    if not target:
        raise ReleaseError("there is no previous release to roll back to (see `onebox-release releases`)")
    release = release_record(spec, target)
    if release is None:
        raise ReleaseError(f"release {target!r} is not kept on this server (see `onebox-release releases`)")
    if target == state.get("live"):
        log(f"{target} is already live")
        return
    if not image_present(release["image"]):
        raise ReleaseError(f"the image of {target} ({release['image']}) is gone; deploy it again instead")
    log(f"rolling back to {target}; database migrations are NOT reversed (expand/contract, see README)")
    switch_to(spec, release, run_release_step=False)
    log(f"{target} is live")


def releases(spec: Spec) -> None:
    state = load_state(spec)
    records = sorted((r for r in (read_json(p / "release.json") for p in spec.releases_dir.glob("*")) if r),
                     key=lambda r: r["created"], reverse=True)
    print(f"{'':2}{'RELEASE':<24}{'DEPLOYED (UTC)':<22}{'SOURCE':<28}IMAGE")
    for record in records:
        mark = "* " if record["id"] == state.get("live") else "  "
        print(f"{mark}{record['id']:<24}{record['created']:<22}{record['source'][:27]:<28}{record['image']}")
    print("(* live)")


def status(spec: Spec) -> int:
    """What an operator asks first, in a few seconds; non-zero when something needs attention."""
    state = load_state(spec)
    attention: list[str] = []
    lines = [f"app {spec.app} on {spec['domain']}"]
    live = release_record(spec, state["live"]) if state.get("live") else None
    if live:
        lines.append(f"live release   {live['id']}  ({live['source']}, deployed {live['created']}, slot {state['slot']})")
    else:
        attention.append("no release is live")
    if state.get("previous"):
        lines.append(f"previous       {state['previous']}  (pyinfra ... deploys/rollback.py)")
    last = state.get("last_deploy")
    if last:
        lines.append(f"last deploy    {last['at']} {last['command']}: {'ok' if last['ok'] else 'FAILED: ' + last['message']}")
        if not last["ok"]:
            attention.append("the last deploy failed")
    if state.get("transition"):
        attention.append(f"release {state['transition']['release']} was interrupted (run the deploy again)")
    services = containers(spec.app) + (containers(spec.project(state["slot"])) if live else [])
    for item in services:
        lines.append(f"service        {item['service']:<12} {item['state']:<10} health: {item['health']}")
        if item["state"] != "running" or item["health"] == "unhealthy":
            attention.append(f"{item['service']} is {item['state']} ({item['health']})")
    for problem in report_problems(spec, state):
        if not any(problem.startswith(f"{i['service']} ") for i in services):
            attention.append(problem)
    lines += certificate_lines(spec, attention) + backup_lines(spec, attention) + disk_lines(attention)
    updates = run("sh", "-c", "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst.*-security'",
                  check=False, capture=True).stdout.strip() or "0"
    lines.append(f"security updates pending: {updates}")
    print("\n".join(lines))
    for need in attention:
        print(f"ATTENTION: {need}")
    return 1 if attention else 0


def certificate_lines(spec: Spec, attention: list[str]) -> list[str]:
    cert = f"/etc/onebox/tls/{spec['domain']}/fullchain.pem"
    out = run("openssl", "x509", "-in", cert, "-noout", "-enddate", check=False, capture=True).stdout.strip()
    if not out.startswith("notAfter="):
        attention.append(f"no certificate at {cert}")
        return []
    expires = datetime.strptime(out.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    days = (expires - datetime.now(UTC)).days
    if days < 14:
        attention.append(f"the certificate expires in {days} days")
    return [f"certificate    {days} days left (until {expires:%Y-%m-%d})"]


def backup_lines(spec: Spec, attention: list[str]) -> list[str]:
    if not spec.data.get("backup_before_release"):
        return ["backups        disabled"]
    try:
        age_h = (time.time() - int(Path("/var/lib/onebox/backup/last-success").read_text().strip())) / 3600
    except (OSError, ValueError):
        return ["backups        none has succeeded yet"]
    if age_h > spec.data.get("backup_max_age_hours", 26):
        attention.append(f"the last successful backup is {age_h:.1f} h old")
    return [f"last backup    {age_h:.1f} h ago"]


def disk_lines(attention: list[str]) -> list[str]:
    usage = shutil.disk_usage("/")
    percent = 100 * usage.used / usage.total
    if percent > 90:
        attention.append(f"the root filesystem is {percent:.0f}% full")
    volumes = run("sh", "-c", "du -sh /var/lib/docker/volumes/*/_data 2>/dev/null", check=False, capture=True).stdout
    sizes = [f"{line.split()[0]} {line.split()[1].split('/')[5]}" for line in volumes.splitlines() if line.strip()]
    return [f"disk /         {percent:.0f}% used ({usage.free / 1e9:.1f} GB free)",
            f"volumes        {', '.join(sizes) or 'none'}"]


def logs(spec: Spec, follow: bool, lines: int, raw: bool, service: str) -> int:
    """The live release's logs (or a dependency's); JSON lines rendered for people unless raw."""
    state = load_state(spec)
    release = release_record(spec, state["live"])
    args = ["logs", "--no-color", "--no-log-prefix", "--tail", str(lines), *(["-f"] if follow else []), service]
    if service in ("postgres", "redis"):
        command = ["docker", "compose", "-p", spec.app, "--project-directory", str(spec.dir),
                   "-f", str(spec.dir / "deps.compose.yaml"), *args]
        env = {}
    else:
        release_dir = spec.releases_dir / release["id"]
        command = ["docker", "compose", "-p", spec.project(state["slot"]), "--project-directory", str(release_dir),
                   "-f", str(release_dir / "compose.yaml"), *args]
        env = compose_env(spec, release, state["slot"])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **env})
    assert proc.stdout is not None
    for line in proc.stdout:
        line = ANSI_ESCAPE.sub("", line.rstrip("\n"))
        print(line if raw else readable(line), flush=True)
    return proc.wait()


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def readable(line: str) -> str:
    line = ANSI_ESCAPE.sub("", line)
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    when = record.pop("ts", None) or record.pop("time", None) or record.pop("timestamp", "")
    level = str(record.pop("level", record.pop("levelname", ""))).upper()
    message = record.pop("message", record.pop("msg", ""))
    rest = " ".join(f"{key}={value}" for key, value in record.items())
    return f"{when} {level:<7} {message} {rest}".strip()


def run_in_app(spec: Spec, command: list[str]) -> int:
    """A one-off container of the live release's image, with its environment and secrets."""
    state = load_state(spec)
    release = release_record(spec, state["live"])
    # A terminal gets a TTY (`ssh -t ... onebox-release run -- python` is an interactive shell); a pipe does not.
    tty = [] if sys.stdin.isatty() else ["-T"]
    return compose(spec, release, state["slot"], "run", "--rm", "--no-deps", *tty, "api", *command, check=False).returncode


def report_problems(spec: Spec, state: dict) -> list[str]:
    return state_report(spec.dir).get("problems", [])


def state_report(spec_dir: Path) -> dict:
    """Everything the controller's change detection needs, in one round trip. No secret, nothing derived."""
    try:
        spec = Spec(spec_dir)
    except ReleaseError:
        return {"installed": False}
    state = load_state(spec)
    live = release_record(spec, state["live"]) if state.get("live") else None
    report: dict[str, Any] = {"installed": True, "live": live and {k: live[k] for k in ("id", "inputs", "created")},
              "transition": state.get("transition"), "deps_inputs": state.get("deps"), "problems": []}
    deps = containers(spec.app)
    wanted_deps = {name for name in ("postgres", "redis") if spec[name]["enabled"]}
    for service in sorted(wanted_deps):
        found = [c for c in deps if c["service"] == service]
        if not found or found[0]["state"] != "running" or found[0]["health"] == "unhealthy":
            report["problems"].append(f"{service} is {found[0]['state'] if found else 'missing'}")
    if live:
        report["secrets_changed"] = live["secrets"] != secrets_fingerprint(spec)
        running = {c["service"]: c for c in containers(spec.project(state["slot"]))}
        expected = {"api", *spec["release"]["processes"]} if live.get("processes_started") else {"api"}
        for service in sorted(expected):
            item = running.get(service)
            if not item or item["state"] != "running" or item["health"] == "unhealthy":
                report["problems"].append(f"{service} is {item['state'] if item else 'missing'}")
        if upstream_port(spec) != spec.port(state["slot"]):
            report["problems"].append("nginx does not point at the live release")
    return report


def relay_detached(argv: list[str]) -> int:
    """Run `argv` in its own session, logging to a file, and relay the log until it ends."""
    log_path = APP_DIR / "release.log"
    with log_path.open("w") as out:
        child = subprocess.Popen([sys.executable, __file__, *argv], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    with log_path.open() as log_file:
        while True:
            line = log_file.readline()
            if line:
                with contextlib.suppress(OSError):
                    sys.stdout.write(line)
                    sys.stdout.flush()
                continue
            if child.poll() is not None:
                rest = log_file.read()
                with contextlib.suppress(OSError):
                    sys.stdout.write(rest)
                return child.returncode
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "releases"
    if command in ("apply", "rollback"):
        return relay_detached(["_" + command, *argv[1:]])
    if command == "state":
        print(json.dumps(state_report(APP_DIR)))
        return 0
    try:
        spec = Spec()
        if command in ("_apply", "_rollback"):
            with deploy_lock(spec, spec["lock_timeout"]):
                try:
                    apply(spec) if command == "_apply" else rollback(spec, argv[1] if len(argv) > 1 else None)
                except ReleaseError as error:
                    record_outcome(spec, command[1:], False, str(error))
                    raise
                record_outcome(spec, command[1:], True, load_state(spec)["live"])
        elif command == "releases":
            releases(spec)
        elif command == "status":
            return status(spec)
        elif command == "logs":
            options = argv[1:]
            lines = int(options[options.index("-n") + 1]) if "-n" in options else 100
            names = [o for i, o in enumerate(options) if not o.startswith("-") and (i == 0 or options[i - 1] != "-n")]
            return logs(spec, "-f" in options, lines, "--raw" in options, names[0] if names else "api")
        elif command == "run":
            return run_in_app(spec, argv[2:] if argv[1:2] == ["--"] else argv[1:])
        elif command == "locked":
            # Another program that must not overlap a release (a restore) runs under the deploy lock.
            with deploy_lock(spec, spec["lock_timeout"]):
                rest = argv[2:] if argv[1:2] == ["--"] else argv[1:]
                return subprocess.run(rest, env={**os.environ, LOCK_HELD: "1"}, check=False).returncode
        elif command in ("stop-app", "start-app"):
            held = os.environ.get(LOCK_HELD) == "1"
            with contextlib.nullcontext() if held else deploy_lock(spec, spec["lock_timeout"]):
                state = load_state(spec)
                release = release_record(spec, state["live"])
                if command == "stop-app":
                    compose(spec, release, state["slot"], "stop")
                else:
                    compose(spec, release, state["slot"], "up", "-d", "--no-build", "--pull", "never",
                            "--wait", "--wait-timeout", "180")
                    wait_healthy(spec, release, state["slot"])
        else:
            print(__doc__)
            return 2
    except ReleaseError as error:
        print(f"onebox: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
