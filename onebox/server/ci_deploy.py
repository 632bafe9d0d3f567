"""`onebox-release ci-deploy`: CI's deploy, the one command the onebox-ci account may run as root.

That account's SSH keys force `sudo -n onebox-release ci-deploy`, and its sudo rule allows that
argv and no other, so everything CI chooses comes on stdin, one line, checked here before
anything runs: `APP_NAME REPOSITORY@sha256:<64 hex>` (the reference alone on a server of one
app). CI deploys only a digest, only of the repository the admin's settings name for that app
(app_image), and only to an app whose image comes from a registry; every other part of the spec
stays the admin's.

The release is `apply`'s own (cli.py): detached, under the deploy lock, its log relayed. Under the
lock the spec's image is checked again and replaced; once the digest is live, CI_IMAGE_FILE
records it, so the admin's next converge keeps it (onebox/ci.py) instead of undoing it.
"""

from __future__ import annotations

import dataclasses
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from onebox import contract
from onebox.server import basics
from onebox.server.basics import UsageError
from onebox.server.model import App, registered_apps

MAX_LINE = 1000  # bytes: a name and a reference are far shorter; nothing unbounded is read
LINE_FORMAT = "one line 'APP_NAME REPOSITORY@sha256:<64 hex>' on stdin (the reference alone on a server of one app)"
# A word of the line: the characters of an app name or an image reference (the settings' ImageRef),
# nothing a terminal or a log would take for more.
WORD = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*\Z")


@dataclasses.dataclass(frozen=True)
class Request:
    app: str | None  # None: the server's only app
    ref: str


def read_line(stream: BinaryIO) -> str:
    """The first line of `stream`, at most MAX_LINE bytes; bytes that are not UTF-8 fail the words' check."""
    line = stream.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise UsageError(f"the input line is longer than {MAX_LINE} bytes; expected {LINE_FORMAT}")
    return line.decode("utf-8", errors="replace")


def parse_line(line: str) -> Request:
    words = line.split()
    if not words:
        raise UsageError(f"no input: expected {LINE_FORMAT}")
    if len(words) > 2:
        raise UsageError(f"the input line has {len(words)} words; expected {LINE_FORMAT}")
    for word in words:
        if not WORD.match(word):
            raise UsageError(f"'{basics.printable(word[:100])}' is neither an app name nor an image reference; "
                             f"expected {LINE_FORMAT}")
    return Request(None, words[0]) if len(words) == 1 else Request(words[0], words[1])


def app_dir_for(name: str | None, registry: str = contract.APPS_FILE) -> Path:
    """The directory of the app CI named, or of the server's only app."""
    apps = registered_apps(registry)
    live = sorted(app for app, entry in apps.items() if not entry.removed)
    if name is None:
        if len(live) != 1:
            raise UsageError(f"this server has {len(live)} apps ({', '.join(live) or 'none yet'}): name the app "
                             f"before the image reference; expected {LINE_FORMAT}")
        name = live[0]
    elif name not in apps:
        raise UsageError(f"no app '{name}' on this server (apps: {', '.join(live) or 'none yet'})")
    elif apps[name].removed:
        raise UsageError(f"app '{name}' was taken off this server (apps_removed): CI cannot deploy it")
    return Path(apps[name].dir)


def check_ref(app: App, ref: str) -> None:
    """Refuse (UsageError) what CI may not deploy to `app`: anything but a digest of the app's own repository."""
    image = app.spec.release.image
    if image.source != "registry":
        raise UsageError(f"app '{app.name}' pulls no image from a registry (app_image_source is '{image.source}'): "
                         "CI deploys only to an app whose app_image_source is 'registry'")
    if not contract.is_digest(ref):
        raise UsageError(f"{ref} is not a digest (REPOSITORY@sha256:<64 hex>): CI deploys by digest only, "
                         "never by a tag that can move")
    if not contract.same_repository(ref, image.ref):
        raise UsageError(f"{ref} is of repository {contract.image_repository(ref)}, but app '{app.name}' runs "
                         f"images of {contract.image_repository(image.ref)}: CI may deploy only digests of the "
                         "repository the admin's app_image names")


def request(stream: BinaryIO, explicit_app: bool, registry: str = contract.APPS_FILE) -> tuple[Path, str]:
    """The app directory and the reference of CI's input line, every check passed; nothing changed yet."""
    if explicit_app:
        raise UsageError(f"{contract.CI_DEPLOY_COMMAND} takes the app from its input line, not --app or --app-dir")
    wanted = parse_line(read_line(stream))
    app = App(app_dir_for(wanted.app, registry))
    check_ref(app, wanted.ref)
    return app.dir, wanted.ref


def with_image(spec: contract.Spec, ref: str) -> contract.Spec:
    """The spec with `ref` as its image. A registry image's source label is its reference, as the
    converge writes it (onebox/deploys/app.py): the converge that keeps CI's image writes this very file."""
    image = dataclasses.replace(spec.release.image, ref=ref)
    return dataclasses.replace(spec, release=dataclasses.replace(spec.release, image=image, source_label=ref))


def deploy(app: App, ref: str, apply: Callable[[App], None], clock: Callable[[], float] = time.time) -> None:
    """Under the deploy lock: the spec's image replaced by `ref`, then `apply`'s release. Once `ref`
    is live (even if something after the switch failed) CI's record is written; otherwise spec.json
    goes back to the version that runs, unless a converge has rewritten it meanwhile."""
    check_ref(app, ref)  # again, under the lock: a converge may have changed the spec since `request`
    path = Path(app.layout.spec)
    before, mode = path.read_text(), stat.S_IMODE(path.stat().st_mode)
    written = with_image(app.spec, ref).to_json()
    basics.write_atomic(path, written, mode)
    basics.log(f"CI deploys {ref} to app {app.name}")
    try:
        apply(app.reloaded())
    finally:
        live = app.record(app.load_state().live)
        if live is not None and live.image == ref:
            basics.write_atomic(Path(app.layout.ci_image), contract.ci_image_text(contract.CiImageRecord(ref, int(clock()))),
                                mode=0o644)
        elif path.read_text() == written:
            basics.write_atomic(path, before, mode)
