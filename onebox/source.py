"""The application's source as a reproducible tarball: same files, same bytes, same hash.

The hash names the API image (onebox/api:<hash>), so a code change gives a new tag
and compose recreates the API, while an unchanged tree changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

# Never shipped: caches, local environments and tests do not belong in the image.
EXCLUDED = {"__pycache__", ".venv", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".git", "tests"}


def source_files(root: Path) -> list[Path]:
    return sorted(
        path for path in root.rglob("*")
        if path.is_file() and not EXCLUDED.intersection(path.relative_to(root).parts)
        and path.suffix != ".pyc"
    )


def source_tarball(root: str | Path) -> bytes:
    """A gzipped tar of `root` with fixed owners, modes and times."""
    root = Path(root)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in source_files(root):
            info = tarfile.TarInfo(str(path.relative_to(root)))
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def source_hash(tarball: bytes) -> str:
    return hashlib.sha256(tarball).hexdigest()[:12]
