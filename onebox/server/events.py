"""The changes made to an app, for the dashboard's graphs to mark: each release, rollback,
restore and maintenance window (on, off). `onebox releases` lists them and `onebox-release
metrics` publishes them, so both read the same times.

Kept in the app's directory (events.json, the newest EVENTS_KEPT), whether or not monitoring
is on: turned on later, it marks what happened before. In Prometheus each is the gauge
onebox_event_timestamp_seconds{app, kind, release} = when it happened; the value carries the
time, so a mark lands where the change was however late the textfile collector reads it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from onebox.server import basics
from onebox.server.model import App

KINDS = ("release", "rollback", "restore", "maintenance_on", "maintenance_off")
EVENTS_KEPT = 30  # per app: bounds the series Prometheus holds; a week of changes for most apps
FILE = "events.json"
LOCK_TIMEOUT = 30


def load(app: App) -> list[dict]:
    """The app's events, newest first ([] before the first one, or for a file not ours)."""
    data = basics.read_json(app.dir / FILE, [])
    return [event for event in data if valid(event)] if isinstance(data, list) else []


def valid(event: object) -> bool:
    return (isinstance(event, dict) and event.get("kind") in KINDS and isinstance(event.get("at"), int)
            and isinstance(event.get("release"), str) and isinstance(event.get("note"), str))


def record(app: App, kind: str, release: str | None, note: str = "", at: int | None = None) -> dict:
    """Add an event. Its own lock: maintenance mode takes no deploy lock, and may be turned
    on while a release runs; neither must lose the other's event."""
    assert kind in KINDS, kind
    event = {"at": int(at if at is not None else time.time()), "kind": kind, "release": release or "", "note": note}
    with basics.file_lock(app.dir / ".events.lock", LOCK_TIMEOUT):
        events = [event, *load(app)][:EVENTS_KEPT]
        basics.write_json(app.dir / FILE, events, mode=0o644)
    return event


def record_quietly(app: App, kind: str, release: str | None, note: str = "") -> None:
    """record(), for a command whose work is done already: a mark that cannot be written is
    said, and the command still succeeds."""
    try:
        record(app, kind, release, note)
    except (OSError, basics.OneboxError) as error:
        basics.log(f"could not record the {kind} for the dashboard's marks: {error}")


def iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def samples(app: App) -> list[tuple[str, float, dict[str, str]]]:
    """(metric, value, labels) of each event. One series per (kind, release): the newest of a
    repeated one (two restores under one release) is its value, so the labels never repeat in the
    textfile; Prometheus keeps the earlier value for the time it was published."""
    seen: set[tuple[str, str]] = set()
    out = []
    for event in load(app):
        key = (event["kind"], event["release"])
        if key in seen:
            continue
        seen.add(key)
        out.append(("onebox_event_timestamp_seconds", event["at"],
                    {"app": app.name, "kind": event["kind"], "release": event["release"]}))
    return out
