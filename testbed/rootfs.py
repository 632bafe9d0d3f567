"""Build Docker images from a debootstrap root filesystem: no registry needed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

DEBIAN_MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"

SOURCES_LIST = f"""\
deb {DEBIAN_MIRROR} {SUITE} main
deb {DEBIAN_MIRROR} {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
"""


def image_exists(tag: str) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, check=False
    )
    return result.returncode == 0


def import_debootstrap_image(
    tag: str,
    include: list[str],
    changes: list[str],
    strip: bool = False,
) -> None:
    """Debootstrap Debian 13 (minbase) and `docker import` it as `tag`.

    `strip` removes apt lists, docs and locales: used for the small stand-in base,
    not for the target, which should look like a real server.
    """
    workdir = Path(tempfile.mkdtemp(prefix="onebox-rootfs-"))
    rootfs = workdir / "rootfs"
    try:
        subprocess.run(
            [
                "debootstrap", "--variant=minbase", f"--include={','.join(include)}",
                SUITE, str(rootfs), DEBIAN_MIRROR,
            ],
            check=True, stdout=subprocess.DEVNULL,
        )
        (rootfs / "etc/apt/sources.list").write_text(SOURCES_LIST)
        # Every container gets its own identity on first boot.
        (rootfs / "etc/machine-id").write_text("")
        if strip:
            for path in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc",
                         "usr/share/man", "usr/share/locale"):
                shutil.rmtree(rootfs / path, ignore_errors=True)
                (rootfs / path).mkdir(parents=True, exist_ok=True)
        change_args = [arg for change in changes for arg in ("--change", change)]
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
            stdout=subprocess.PIPE,
        )
        subprocess.run(
            ["docker", "import", *change_args, "-", tag],
            stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            raise RuntimeError(f"tar of {rootfs} failed")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
