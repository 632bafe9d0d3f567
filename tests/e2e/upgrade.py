"""Two oneboxes for the upgrade e2e: the version before this one, installed from its commit
(CHANGELOG.md names it) in a virtualenv of its own, and this one, installed from its wheel
(`make dist`) in another, driving a deploy directory made by `onebox init`.

Neither is a skip when it cannot be made: a clone without the previous commit (a shallow
one) fails, saying so, since a skipped upgrade check would hide a broken upgrade.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from onebox.inventory import group_data
from testbed.target import SSH_KEY, Target

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS_ENTRY = re.compile(r"^## (\d+\.\d+\.\d+) .*commit ([0-9a-f]{7,40})\b", re.MULTILINE)


def run(*argv: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run([str(word) for word in argv], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done.stdout


def previous_version() -> tuple[str, str]:
    """(version, commit) of the newest CHANGELOG.md entry that names its commit: the version before this one."""
    found = PREVIOUS_ENTRY.search((ROOT / "CHANGELOG.md").read_text())
    assert found, "CHANGELOG.md names no earlier version with its commit ('## X.Y.Z (date), commit abc1234')"
    return found[1], found[2]


def new_venv(path: Path, *requirements: str | Path, editable: bool = False) -> Path:
    run(sys.executable, "-m", "venv", path)
    run(path / "bin" / "pip", "install", "-q", *(["-e"] if editable else []), *requirements)
    return path / "bin"


@dataclass
class Previous:
    version: str
    tree: Path  # its files, as of its commit; its own inventories/local.py and group data
    bin: Path

    @property
    def pyinfra(self) -> str:
        return str(self.bin / "pyinfra")


def install_previous(workdir: Path) -> Previous:
    """The version before this one, from its commit, in its own virtualenv. Editable, as its
    README installed it: that version read its group data from its own checkout."""
    version, commit = previous_version()
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True).returncode:
        raise AssertionError(f"onebox {version}'s commit {commit} (CHANGELOG.md) is not in this clone: the upgrade "
                             "test needs the whole history (git fetch --unshallow)")
    tree = workdir / f"onebox-{version}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    # The local target's key, known hosts and Pebble's CA, which its test bench looks for in its own tree.
    (tree / ".onebox").symlink_to(ROOT / ".onebox")
    return Previous(version, tree, new_venv(tree / ".venv", tree, editable=True))


@dataclass
class Installed:
    bin: Path
    directory: Path  # the deploy directory `onebox init` made
    env: dict[str, str]  # what its inventories/prod.py reads: the target's address, key and known hosts

    @property
    def pyinfra(self) -> str:
        return str(self.bin / "pyinfra")

    def onebox(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "onebox"), *args], cwd=self.directory, capture_output=True, text=True,
                              check=False, env={**os.environ, **self.env})


def install_current(workdir: Path, target: Target) -> Installed:
    """This onebox from its wheel, in a virtualenv outside the checkout, and a deploy directory made by
    `onebox init` whose group_data/prod.py holds the local target's settings (the repository's group
    "local", resolved: the local test bench is not installed there, so its values are written out)."""
    run("make", "dist")
    wheel = next((ROOT / "dist").glob("onebox-*.whl"))
    bin_dir = new_venv(workdir / "venv", wheel)
    directory = workdir / "deploy"
    run(bin_dir / "onebox", "init", directory, cwd=workdir)
    settings = group_data("local", ROOT)
    settings["app_source_dir"] = str((ROOT / settings["app_source_dir"]).resolve())
    lines = [f"{name} = {value!r}" for name, value in sorted(settings.items())]
    with (directory / "group_data" / "prod.py").open("a") as group_file:
        group_file.write("\n# The local target's (the repository's group_data/local.py, resolved by the e2e test):\n")
        group_file.write("\n".join(lines) + "\n")
    env = {"ONEBOX_HOST": target.ip, "ONEBOX_SSH_KEY": str(SSH_KEY), "ONEBOX_SSH_KNOWN_HOSTS": str(target.known_hosts)}
    return Installed(bin_dir, directory, env)

