"""What releases leave behind, removed after each release or rollback: the releases beyond
releases_kept with their images, the build contexts no release needs, and what the app's
placement leaves (its swarm secrets). An image another app of the server keeps or is about to
run stays, even in a shared repository. Kept apart from engine.py, which makes and switches releases."""

from __future__ import annotations

import shutil
from pathlib import Path

from onebox import contract
from onebox.server import basics, docker, docker_state, placement
from onebox.server.basics import OneboxError
from onebox.server.model import App, registered_apps


def log(message: str) -> None:
    basics.log(message, timed=True)


def other_apps_images(app: App) -> set[str]:
    """The images the server's other apps may run: each release they keep, and the image their
    spec names (the one a release of theirs may be building or pulling now)."""
    refs: set[str] = set()
    for entry in registered_apps(contract.APPS_FILE).values():
        directory = Path(entry.dir)
        if directory.resolve() == app.dir.resolve():
            continue
        try:
            other = App(directory)
            refs |= {record.image for record in other.records()} | {other.spec.release.image.ref}
        except OneboxError:
            continue  # not (or no longer) an app directory: nothing of it to keep
    return refs


def prune(app: App) -> None:
    """Keep the newest releases_kept (the live one and the previous one always), with their images."""
    state = app.load_state()
    records = app.records()
    # The previous release is what `onebox rollback` goes back to: after a rollback to an older
    # release and a new deploy, it may be older than the newest releases_kept.
    kept_ids = ({r.id for r in records[:app.spec.releases_kept]} | {state.live, state.previous}
                | set(state.slots.values()))
    kept_images = {r.image for r in records if r.id in kept_ids}
    for record in records:
        if record.id not in kept_ids:
            shutil.rmtree(app.releases_dir / record.id, ignore_errors=True)
            log(f"pruned release {record.id}")
    # Images of this app that no kept release runs (pruned releases, releases that failed),
    # compared by image ID: a kept release may name its image by digest, the listing by tag.
    # Other apps of the server may build into the same repository: what they keep or are about
    # to run stays. Listed first, resolved after: an image another app builds meanwhile is
    # either not listed or resolved as kept.
    image = app.spec.release.image
    listed = sorted(set(basics.run(docker.images(contract.image_repository(image.ref)), check=False).stdout.split()))
    try:
        others = other_apps_images(app)
    except OneboxError as error:  # the apps registry unreadable: what the others keep is unknown
        log(f"kept every image of {contract.image_repository(image.ref)} ({error})")
        listed, others = [], set()
    kept_image_ids = {docker_state.image_id(ref) for ref in kept_images | {image.ref} | others} - {None}
    for ref in listed:
        if docker_state.image_id(ref) not in kept_image_ids:
            basics.run(docker.image_rm(ref), check=False)
    placement.of(app).prune()
    for upload in Path(app.layout.incoming).glob(contract.UPLOAD_GLOB):
        if upload.name != image.tarball:
            upload.unlink()  # a new build context replaces the old one; releases keep their images
