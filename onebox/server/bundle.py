"""The server's tools as one file: a zipapp of onebox/server and onebox/contract/.

Built the same bytes from the same sources (fixed timestamps, sorted names), so a
converge uploads it only when the code changed."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ONEBOX = PACKAGE.parent
SHEBANG = b"#!/usr/bin/env python3\n"


def sources() -> dict[str, bytes]:
    """Archive name -> content: the server package and the contract package (nothing else of onebox)."""
    files = {"onebox/__init__.py": b'"""onebox\'s server tools (zipapp)."""\n'}
    for path in sorted((ONEBOX / "contract").glob("*.py")):
        files[f"onebox/contract/{path.name}"] = path.read_bytes()
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" not in path.parts and path.name != "bundle.py":
            files[f"onebox/server/{path.relative_to(PACKAGE).as_posix()}"] = path.read_bytes()
    files["__main__.py"] = b"import sys\nfrom onebox.server.__main__ import main\nsys.exit(main())\n"
    return files


def zipapp_bytes() -> bytes:
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(sources().items()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def write_zipapp(dest: Path) -> Path:
    dest.write_bytes(zipapp_bytes())
    dest.chmod(0o755)
    return dest
