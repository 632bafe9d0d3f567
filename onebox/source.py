"""The build context as a reproducible tarball: same files, same bytes, same hash.

What goes in is what `docker build` would send: the context's .dockerignore decides,
with Docker's own matching rules (docker-py's implementation). Without one, only
caches and local environments stay behind. The hash names the app image, so a code
change gives a new tag while an unchanged tree changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from docker.utils.build import exclude_paths

# Used only when the context has no .dockerignore: never worth shipping.
DEFAULT_IGNORE = [".git", ".venv", "**/__pycache__", "**/*.pyc", ".pytest_cache", ".ruff_cache", ".mypy_cache"]


def ignore_patterns(root: Path) -> list[str]:
    dockerignore = root / ".dockerignore"
    if not dockerignore.is_file():
        return DEFAULT_IGNORE
    lines = (line.strip() for line in dockerignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def source_files(root: Path, dockerfile: str = "Dockerfile") -> list[Path]:
    included = exclude_paths(str(root), ignore_patterns(root), dockerfile=dockerfile)
    return sorted(root / name for name in included if (root / name).is_file())


def source_tarball(root: str | Path, dockerfile: str = "Dockerfile") -> bytes:
    """A gzipped tar of the build context with fixed owners, times and modes (executables stay so)."""
    root = Path(root)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in source_files(root, dockerfile):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            executable = path.stat().st_mode & 0o111
            info.size, info.mode, info.mtime = len(data), 0o755 if executable else 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def source_hash(tarball: bytes) -> str:
    return hashlib.sha256(tarball).hexdigest()[:12]
