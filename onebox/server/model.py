"""The server's typed view of an app: its spec (from the contract), its releases and its
state, each validated when loaded and written atomically."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

from onebox import contract
from onebox.server import basics
from onebox.server.basics import OneboxError

HISTORY_KEPT = 50


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class ReleaseRecord:
    """One release as it was made: releases/<id>/release.json."""

    id: str
    image: str
    created: str
    source: str
    inputs: str
    secrets: str
    processes_started: bool

    @classmethod
    def load(cls, path: Path) -> ReleaseRecord | None:
        data = basics.read_json(path)
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except KeyError:
            return None


@dataclasses.dataclass
class Transition:
    """A release on its way in: which one, in which slot, how far it got."""

    release: str
    slot: str
    phase: str  # starting -> switching -> draining
    since: str
    kind: str = "release"  # or "rollback": the dashboard marks which it was (a state written before has none)


@dataclasses.dataclass
class State:
    """What runs: state.json, the one record the engine keeps."""

    live: str | None = None
    slot: str | None = None
    previous: str | None = None
    history: list[dict] = dataclasses.field(default_factory=list)
    transition: Transition | None = None
    slots: dict[str, str] = dataclasses.field(default_factory=dict)  # slot -> release it holds
    deps: str | None = None  # hash of the dependencies' compose file last fully applied
    last_deploy: dict | None = None

    @classmethod
    def from_dict(cls, data: dict) -> State:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("transition"):
            values["transition"] = Transition(**values["transition"])
        return cls(**values)

    def went_live(self, release_id: str, slot: str) -> None:
        if self.live != release_id:  # not a recovery finishing the same switch again
            self.previous = self.live or self.previous
            self.history = ([{"id": release_id, "at": now()}] + self.history)[:HISTORY_KEPT]
        self.live, self.slot, self.transition = release_id, slot, None


class App:
    """One app on this server: its directory, spec, releases and state."""

    def __init__(self, directory: Path, nginx_dir: str = contract.NGINX_DIR,
                 maintenance_dir: str = contract.MAINTENANCE_DIR) -> None:
        self.dir = directory
        self.layout = contract.AppDir(str(directory))
        self.nginx_dir = nginx_dir
        self._maintenance_root = maintenance_dir
        try:
            text = Path(self.layout.spec).read_text()
        except OSError:
            raise OneboxError(f"{self.layout.spec} is missing: run the deploy (deploys/site.py) first") from None
        try:
            self.spec = contract.Spec.from_json(text)
        except contract.ContractError as error:
            raise OneboxError(str(error)) from None
        self.name = self.spec.app_name
        self.files = self.spec.files
        self.maintenance_dir = Path(self.files.maintenance_dir(maintenance_dir))
        self.secrets_dir = Path(self.layout.secrets)
        self.releases_dir = Path(self.layout.releases)

    def reloaded(self) -> App:
        """The app as its spec.json now reads (after a CI deploy rewrote it), with the same roots."""
        return App(self.dir, nginx_dir=self.nginx_dir, maintenance_dir=self._maintenance_root)

    # --- names ---
    def project(self, slot: str) -> str:
        return f"{self.name}-{slot}"

    def slot_services(self, record: ReleaseRecord) -> set[str]:
        """The services a release runs in its slot: the API, and its processes once started."""
        api = contract.compose.API_SERVICE
        return {api, *self.spec.release.processes} if record.processes_started else {api}

    def port(self, slot: str) -> int:
        return contract.slot_port(self.spec.slot_ports, slot)

    @property
    def api_port(self) -> int:
        """The port nginx's upstream names whichever slot is live (the first slot's, the settings' api_port)."""
        return self.port(contract.SLOTS[0])

    @property
    def upstream(self) -> Path:
        return Path(contract.upstream_path(self.nginx_dir, self.files.key))

    @property
    def app_inputs(self) -> str:
        return contract.inputs_hash(self.spec.release, Path(self.layout.app_compose).read_bytes())

    @property
    def deps_inputs(self) -> str:
        return contract.deps_hash(Path(self.layout.deps_compose).read_bytes())

    # --- state ---
    def load_state(self) -> State:
        data = basics.read_json(self.dir / "state.json", {})
        try:
            return State.from_dict(data if isinstance(data, dict) else {})
        except TypeError as error:
            raise OneboxError(f"{self.dir}/state.json is unreadable ({error}); move it aside and deploy again") from None

    def save_state(self, state: State) -> None:
        basics.write_json(self.dir / "state.json", dataclasses.asdict(state), mode=0o644)

    def record(self, release_id: str | None) -> ReleaseRecord | None:
        if not release_id or not contract.RELEASE_ID.match(release_id):
            return None
        return ReleaseRecord.load(self.releases_dir / release_id / "release.json")

    def live_record(self) -> tuple[State, ReleaseRecord]:
        """The live release, or a clear error when none is (commands that need one)."""
        state = self.load_state()
        record = self.record(state.live)
        if record is None or state.slot is None:
            raise OneboxError("no release is live on this server yet: deploy first (onebox deploy)")
        return state, record

    def records(self) -> list[ReleaseRecord]:
        """Every release kept here, newest first."""
        found = [ReleaseRecord.load(path / "release.json") for path in self.releases_dir.glob("*")]
        return sorted((r for r in found if r), key=lambda r: r.created, reverse=True)


def registered_apps(path: str = contract.APPS_FILE) -> dict[str, contract.RegisteredApp]:
    """The apps the converge registered on this server ({} before the first one)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    try:
        return contract.parse_apps(text)
    except contract.ContractError as error:
        raise OneboxError(str(error)) from None


def chosen_apps(name: str | None, every: bool = False,
                registry: str = contract.APPS_FILE) -> list[contract.RegisteredApp]:
    """The registered app(s) a command is about: NAME; else the server's only live app, or each
    live app when `every` (status); [] before the first converge of this onebox."""
    apps = registered_apps(registry)
    if name:
        if name not in apps:
            raise basics.UsageError(f"no app {name!r} on this server (apps: {', '.join(apps) or 'none yet'})")
        return [apps[name]]
    live = {app_name: app for app_name, app in apps.items() if not app.removed}
    if len(live) > 1 and not every:
        raise basics.UsageError(f"this server has several apps ({', '.join(live)}): name one with --app NAME")
    return list(live.values())


def app_dirs_from_server(explicit: str | None, name: str | None, every: bool = False,
                         registry: str = contract.APPS_FILE) -> list[Path]:
    """The app(s) a command is about: --app-dir; else chosen_apps; else what an older onebox
    wrote to /etc/onebox/app-dir."""
    if explicit or os.environ.get("ONEBOX_APP_DIR"):
        return [Path(explicit or os.environ["ONEBOX_APP_DIR"])]
    chosen = chosen_apps(name, every, registry)
    if chosen:
        return [Path(app.dir) for app in chosen]
    try:
        return [Path(Path(contract.APP_DIR_FILE).read_text().strip())]
    except OSError:
        return [Path(contract.LEGACY_APP_DIR)]
