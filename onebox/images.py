"""Images made on this machine and loaded into the server's engine (`docker save | load`)."""

from __future__ import annotations

import os
import subprocess
import tempfile

from pyinfra import host
from pyinfra.api import FileUploadCommand, FunctionCommand, operation

from onebox.facts import DockerImageIds


def local_image_id(reference: str) -> str:
    result = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", reference],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ValueError(f"image {reference!r} is not on this machine; build it first (controller_images)")
    return result.stdout.strip()


def build_local_image(source_dir: str, tag: str, python_image: str) -> None:
    """Build the API on this machine (app_image_source = "tarball")."""
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode:
        subprocess.run(["docker", "build", "-q", "--build-arg", f"PYTHON_IMAGE={python_image}", "-t", tag, source_dir],
                       check=True, stdout=subprocess.DEVNULL)


@operation()
def images_from_controller(local_ids: dict[str, str]):
    """Copy images from this machine's Docker engine to the server's, when the server's differ.
    `local_ids` maps each reference to its ID here (see local_image_id).

        images_from_controller(name="Load images",
                               local_ids={"onebox-test/postgres:17": local_image_id("onebox-test/postgres:17")})
    """
    remote = host.get_fact(DockerImageIds, references=tuple(local_ids)) or {}
    stale = [ref for ref, image_id in local_ids.items() if remote.get(ref) != image_id]
    if not stale:
        host.noop("the server has these images already")
        return
    archive = tempfile.NamedTemporaryFile(suffix=".tar.gz", delete=False)  # noqa: SIM115 - read by the upload
    saved = subprocess.Popen(["docker", "save", *stale], stdout=subprocess.PIPE)
    subprocess.run(["gzip", "-1"], stdin=saved.stdout, stdout=archive, check=True)
    if saved.wait() != 0:
        raise RuntimeError(f"docker save {' '.join(stale)} failed")
    remote_path = "/var/tmp/onebox-images.tar.gz"
    yield FileUploadCommand(archive.name, remote_path)
    yield FunctionCommand(os.unlink, (archive.name,), {})
    yield f"docker load -q -i {remote_path} && rm -f {remote_path}"
