"""Images made on this machine and loaded into the server's engine (`docker save | load`)."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import tempfile
from typing import Any

from pyinfra import host
from pyinfra.api import FunctionCommand, StringCommand, operation
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS

from onebox import contract
from onebox.facts import DockerImageIds
from onebox.server import docker
from onebox.settings import Settings
from onebox.shell import raw_shell

# Root's own (0700): no other account can plant or read an archive there. Each run names its
# archive anew, so two deploys never load each other's.
ARCHIVE_DIR = f"{contract.STATE_ROOT}/image-archives"


def local_image_id(reference: str) -> str:
    result = subprocess.run(docker.image_inspect(reference, "{{.Id}}"), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ValueError(f"image {reference!r} is not on this machine; build it first (controller_images)")
    return result.stdout.strip()


def build_local_image(s: Settings, tag: str) -> None:
    """Build the app on this machine (app_image_source = "tarball"), as the server would."""
    if subprocess.run(docker.image_inspect(tag), capture_output=True, check=False).returncode == 0:
        return
    subprocess.run(docker.build(tag, os.path.join(s.app_source_dir, s.app_dockerfile), s.app_build_target,
                                s.app_build_args, context=s.app_source_dir), check=True, stdout=subprocess.DEVNULL)


def send_images(state, host, references: list[str], remote: str,  # noqa: ANN001 - pyinfra passes its state and host
                **arguments: Any) -> None:
    """Save, upload, delete: the archive exists on this machine only while it is sent. `arguments`
    are the operation's own (sudo): into root's directory the file goes as pyinfra's files.put
    sends it, through the connecting user's temporary directory."""
    with tempfile.NamedTemporaryFile(prefix="onebox-images-", suffix=".tar.gz") as archive:
        saved = subprocess.Popen(docker.save(*references), stdout=subprocess.PIPE)
        subprocess.run(["gzip", "-1"], stdin=saved.stdout, stdout=archive, check=True)
        if saved.wait() != 0:
            raise RuntimeError(f"docker save {' '.join(references)} failed")
        archive.flush()
        if not host.put_file(archive.name, remote, print_output=state.print_output, print_input=state.print_input,
                             **arguments):
            raise RuntimeError(f"uploading the images to {remote} failed")


@operation()
def images_from_controller(local_ids: dict[str, str]):
    """Copy images from this machine's Docker engine to the server's, when the server's differ.
    `local_ids` maps each reference to its ID here (see local_image_id). The archive is made
    only when the operation runs (not while changes are detected), under a name of its own in
    root's ARCHIVE_DIR, and removed right after `docker load`, whether that succeeds or fails.

        images_from_controller(name="Load images",
                               local_ids={"onebox-test/postgres:17": local_image_id("onebox-test/postgres:17")})
    """
    remote = host.get_fact(DockerImageIds, references=tuple(local_ids)) or {}
    stale = [ref for ref, image_id in local_ids.items() if remote.get(ref) != image_id]
    if not stale:
        host.noop("the server has these images already")
        return
    remote = f"{ARCHIVE_DIR}/{secrets.token_hex(16)}.tar.gz"
    arguments = getattr(host, "current_op_global_arguments", None) or {}
    yield StringCommand("install", "-d", "-m", "700", "-o", "root", "-g", "root", ARCHIVE_DIR)
    yield FunctionCommand(send_images, (stale, remote),
                          {key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS if key in arguments})
    yield StringCommand(raw_shell(f"{shlex.join(docker.load(remote))}; loaded=$?; rm -f {shlex.quote(remote)}; "
                                  "exit $loaded"))
