"""Images made on this machine and loaded into the server's engine (`docker save | load`)."""

from __future__ import annotations

import os
import subprocess
import tempfile

from pyinfra import host
from pyinfra.api import FunctionCommand, QuoteString, StringCommand, operation

from onebox.facts import DockerImageIds
from onebox.settings import Settings

REMOTE_ARCHIVE = "/var/tmp/onebox-images.tar.gz"


def local_image_id(reference: str) -> str:
    result = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", reference],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ValueError(f"image {reference!r} is not on this machine; build it first (controller_images)")
    return result.stdout.strip()


def build_local_image(s: Settings, tag: str) -> None:
    """Build the app on this machine (app_image_source = "tarball"), as the server would."""
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0:
        return
    command = ["docker", "build", "-q", "-f", os.path.join(s.app_source_dir, s.app_dockerfile), "-t", tag]
    if s.app_build_target:
        command += ["--target", s.app_build_target]
    for name, value in s.app_build_args.items():
        command += ["--build-arg", f"{name}={value}"]
    subprocess.run([*command, s.app_source_dir], check=True, stdout=subprocess.DEVNULL)


def send_images(state, host, references: list[str]) -> None:  # noqa: ANN001 - pyinfra passes its state and host
    """Save, upload, delete: the archive exists on this machine only while it is sent."""
    with tempfile.NamedTemporaryFile(prefix="onebox-images-", suffix=".tar.gz") as archive:
        saved = subprocess.Popen(["docker", "save", *references], stdout=subprocess.PIPE)
        subprocess.run(["gzip", "-1"], stdin=saved.stdout, stdout=archive, check=True)
        if saved.wait() != 0:
            raise RuntimeError(f"docker save {' '.join(references)} failed")
        archive.flush()
        if not host.put_file(archive.name, REMOTE_ARCHIVE, print_output=state.print_output,
                             print_input=state.print_input):
            raise RuntimeError(f"uploading the images to {REMOTE_ARCHIVE} failed")


@operation()
def images_from_controller(local_ids: dict[str, str]):
    """Copy images from this machine's Docker engine to the server's, when the server's differ.
    `local_ids` maps each reference to its ID here (see local_image_id). The archive is made
    only when the operation runs (not while changes are detected) and removed right after.

        images_from_controller(name="Load images",
                               local_ids={"onebox-test/postgres:17": local_image_id("onebox-test/postgres:17")})
    """
    remote = host.get_fact(DockerImageIds, references=tuple(local_ids)) or {}
    stale = [ref for ref, image_id in local_ids.items() if remote.get(ref) != image_id]
    if not stale:
        host.noop("the server has these images already")
        return
    yield FunctionCommand(send_images, (stale,), {})
    # Two commands: pyinfra runs the second only when the first succeeds.
    yield StringCommand("docker", "load", "-q", "-i", QuoteString(REMOTE_ARCHIVE))
    yield StringCommand("rm", "-f", QuoteString(REMOTE_ARCHIVE))
