"""Image references as both sides read them: the repository of a reference, whether it is a
digest, whether two name one repository; and what a CI deploy leaves in the app's directory
(the converge reads it so as not to undo it). Standard library only (the server's zipapp
carries it)."""

from __future__ import annotations

import dataclasses
import json
import re

# REPOSITORY@sha256:<64 hex>: bytes that never change, unlike a tag.
DIGEST_SUFFIX = re.compile(r"@sha256:[0-9a-f]{64}\Z")
# The one argument sudo lets onebox-ci give onebox-release (its sudo rule names it exactly).
CI_DEPLOY_COMMAND = "ci-deploy"
# In the app's directory: CiImageRecord, written by a CI deploy once its release is live; the
# admin's next converge keeps that digest when app_image is a tag of the same repository (onebox/ci.py).
CI_IMAGE_FILE = "ci-image.json"


@dataclasses.dataclass(frozen=True)
class CiImageRecord:
    ref: str  # the digest CI deployed
    at: int  # when its release went live (Unix seconds)


def ci_image_text(record: CiImageRecord) -> str:
    """onebox-release ci-deploy's one writer."""
    return json.dumps(dataclasses.asdict(record), indent=2, sort_keys=True) + "\n"


def parse_ci_image(text: str) -> CiImageRecord | None:
    """The converge's one reader: the record, or None when it is not one whose ref is a digest (the
    converge then goes by app_image, as with no record)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("ref"), str) or not is_digest(data["ref"]):
        return None
    at = data.get("at")
    return CiImageRecord(data["ref"], at if isinstance(at, int) and not isinstance(at, bool) else 0)


def image_repository(ref: str) -> str:
    """The repository of an image reference: without its digest or tag (a registry port stays)."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def hub_name(repository: str) -> str:
    """Docker Hub's names as Docker shortens them: docker.io/library/redis -> redis."""
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        repository = repository.removeprefix(prefix)
    return repository.removeprefix("library/")


def is_digest(ref: str) -> bool:
    """Whether `ref` names an image by digest (REPOSITORY@sha256:<64 hex>), not by a tag that can move."""
    return bool(DIGEST_SUFFIX.search(ref)) and ref.count("@") == 1


def same_repository(a: str, b: str) -> bool:
    """Whether two references name one repository, registry host and port included (Docker Hub's
    spellings of one name are one name): tags and digests aside."""
    return hub_name(image_repository(a)) == hub_name(image_repository(b))
