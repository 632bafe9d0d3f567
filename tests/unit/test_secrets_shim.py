"""The entrypoint shim (onebox/server/with-secrets.sh) exports each secret file whole, byte for byte
(only the file's final newline dropped), under the plain POSIX shells images have, echoing nothing.

The shim reads /run/secrets, which needs root to fill here: the test runs a copy of it that reads a
temporary directory instead, the one line that names the directory changed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.conftest import ROOT

SHIM = ROOT / "onebox" / "server" / "with-secrets.sh"
SECRETS_GLOB = "/run/secrets/*"
# /bin/sh (dash on Debian), busybox's sh (Alpine's /bin/sh) or else dash, and bash (/bin/sh on Fedora/RHEL).
SHELLS = [["/bin/sh"], ["busybox", "sh"] if shutil.which("busybox") else ["dash"], ["bash", "--posix"]]

PEM = (b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7+/=\n"
       b"-----END PRIVATE KEY-----\n")
JSON = b'{\n  "type": "service_account",\n  "private_key": "-----BEGIN KEY-----\\nabc\\n",\n  "id": "a b"\n}\n'
ODD = b"  lead\ttrail  $HOME ${X} $(id) `id` \"dq\" 'sq' \\ \\n back\\\\slash * ? [a] ; & | < > # ~ \xc3\xa9"
SECRETS = {
    "PEM_KEY": (PEM, PEM[:-1]),  # the file's final newline is dropped, as $(cat) would
    "GOOGLE_CREDENTIALS": (JSON, JSON[:-1]),
    "ODD": (ODD, ODD),  # no final newline: nothing dropped
    "ODD_MULTI": (ODD + b"\n\n" + ODD + b"\n", ODD + b"\n\n" + ODD),
    "BLANK_LINES": (b"\nfirst\n\n", b"\nfirst\n"),  # only the final newline dropped, not every one
    "EMPTY": (b"", b""),
}
PRINT = ("import os, sys; names = sys.argv[1:]; "
         "sys.stdout.write(repr({n: os.environb.get(n.encode()) for n in names}))")


def run_shim(shell: list[str], secrets: Path, tmp_path: Path, *command: str) -> subprocess.CompletedProcess[bytes]:
    text = SHIM.read_text()
    assert text.count(SECRETS_GLOB) == 1, "the shim names its directory once"
    copy = tmp_path / "with-secrets.sh"
    copy.write_text(text.replace(SECRETS_GLOB, f"'{secrets}'/*"))
    return subprocess.run([*shell, str(copy), *command], capture_output=True, timeout=30, check=False,
                          env={"PATH": "/usr/bin:/bin", "X": "expanded"})


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: " ".join(shell))
def test_each_secret_reaches_the_environment_whole(shell: list[str], tmp_path: Path) -> None:
    if not shutil.which(shell[0]):
        pytest.skip(f"{shell[0]} is not installed")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, (content, _) in SECRETS.items():
        (secrets / name).write_bytes(content)
    (secrets / "not-a-name").write_bytes(b"skipped")
    (secrets / "DIR").mkdir()
    result = run_shim(shell, secrets, tmp_path, sys.executable, "-c", PRINT, *SECRETS, "not-a-name", "DIR")
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    got = eval(result.stdout)  # the repr of a dict of bytes, written by PRINT above
    assert got == {**{name: wanted for name, (_, wanted) in SECRETS.items()}, "not-a-name": None, "DIR": None}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: " ".join(shell))
def test_the_shim_echoes_no_secret(shell: list[str], tmp_path: Path) -> None:
    if not shutil.which(shell[0]):
        pytest.skip(f"{shell[0]} is not installed")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, (content, _) in SECRETS.items():
        (secrets / name).write_bytes(content)
    result = run_shim(shell, secrets, tmp_path, "true")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
