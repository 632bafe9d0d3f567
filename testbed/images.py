"""Build the test-only stand-in images of tests/images/ from Debian 13 packages.

Production uses the official python, postgres and redis images; the test
machines reach no container registry, so the tests use look-alikes built here
(see tests/images/README.md). Run with `python -m testbed.images`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from testbed.rootfs import SUITE, image_exists, import_debootstrap_image

IMAGES_DIR = Path(__file__).resolve().parents[1] / "tests" / "images"
BASE_TAG = "onebox-test/debian:trixie"
STANDIN_IMAGES: dict[str, str] = {
    "python": "onebox-test/python:3.13",
    "postgres": "onebox-test/postgres:17",
    "redis": "onebox-test/redis:8",
}
HASH_LABEL = "onebox.inputs-hash"
# `docker import` takes no Dockerfile: these are the base image's instructions.
BASE_CHANGES = [
    (
        'LABEL org.opencontainers.image.description="Test-only Debian 13 minbase'
        ' for the onebox stand-in images."'
    ),
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]
# This machine's HTTPS goes through an intercepting proxy: images that run pip
# must trust its CA. Copied into the build context only, never into the repo.
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
NEEDS_HOST_CA = {"python"}


def inputs_hash(context: Path, *extra: str) -> str:
    """Hash of every file (path, exec bit, bytes) under `context`, plus `extra`."""
    digest = hashlib.sha256()
    for item in extra:
        digest.update(item.encode() + b"\0")
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _inspect(tag: str, template: str) -> str:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", template, tag],
        capture_output=True, text=True, check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def _drop_superseded(old_id: str, tag: str) -> None:
    """Remove the image a rebuild replaced, so repeated builds don't fill the disk.

    Refused (and ignored) while a container or a child image still uses it.
    """
    if old_id and old_id != _inspect(tag, "{{.Id}}"):
        subprocess.run(["docker", "image", "rm", old_id], capture_output=True,
                       check=False)


def _is_current(tag: str, wanted: str) -> bool:
    labels = json.loads(_inspect(tag, "{{json .Config.Labels}}") or "null") or {}
    return labels.get(HASH_LABEL) == wanted


def _base_packages() -> list[str]:
    lines = (IMAGES_DIR / "debian" / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ensure_base(force: bool) -> bool:
    """Debootstrap the base unless current; True when it was (re)built."""
    wanted = inputs_hash(IMAGES_DIR / "debian", SUITE, *BASE_CHANGES)
    if not force and image_exists(BASE_TAG) and _is_current(BASE_TAG, wanted):
        return False
    import_debootstrap_image(
        BASE_TAG, include=_base_packages(),
        changes=[*BASE_CHANGES, f"LABEL {HASH_LABEL}={wanted}"], strip=True,
    )
    return True


def _stage_context(name: str, dest: Path) -> Path:
    context = dest / name
    shutil.copytree(IMAGES_DIR / name, context)
    if name in NEEDS_HOST_CA:
        (context / "ca").mkdir()
        for cert in sorted(HOST_CA_DIR.glob("*.crt")):
            shutil.copy(cert, context / "ca" / cert.name)
    return context


def _ensure_standin(name: str, tag: str, force: bool) -> bool:
    """Build `tag` from tests/images/<name>/ unless current; True when built."""
    with tempfile.TemporaryDirectory(prefix="onebox-image-") as tmp:
        context = _stage_context(name, Path(tmp))
        # The base's id is an input: a rebuilt base means rebuilt stand-ins.
        wanted = inputs_hash(context, _inspect(BASE_TAG, "{{.Id}}"))
        if not force and image_exists(tag) and _is_current(tag, wanted):
            return False
        old_id = _inspect(tag, "{{.Id}}")
        result = subprocess.run(
            ["docker", "build", "--label", f"{HASH_LABEL}={wanted}", "-t", tag,
             str(context)],
            capture_output=True, text=True, check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"docker build of {tag} failed:\n{result.stdout[-3000:]}{result.stderr}"
        )
    _drop_superseded(old_id, tag)
    return True


def _report(tag: str, built: bool, started: float) -> None:
    seconds = time.monotonic() - started
    print(f"{tag}: {'built' if built else 'cached'} ({seconds:.0f} s)")


def ensure_standin_images(force: bool = False) -> dict[str, str]:
    """Build the missing or outdated stand-in images, base first; role -> tag."""
    started, old_base = time.monotonic(), _inspect(BASE_TAG, "{{.Id}}")
    _report(BASE_TAG, _ensure_base(force), started)
    for name, tag in STANDIN_IMAGES.items():
        started = time.monotonic()
        _report(tag, _ensure_standin(name, tag, force), started)
    # Only now: the old stand-ins, built FROM the old base, are gone.
    _drop_superseded(old_base, BASE_TAG)
    return dict(STANDIN_IMAGES)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild every image")
    ensure_standin_images(force=parser.parse_args().force)
