"""Backup sets on the server: their manifests, labels and retention."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

from onebox.server.backup.config import MANIFEST, BackupError, Config
from onebox.server.basics import log

LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BackupSet:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        try:
            self.manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as error:
            raise BackupError(f"backup {self.name} has no readable {MANIFEST}: {error}") from None

    @property
    def label(self) -> str:
        return str(self.manifest.get("label", ""))

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.manifest["created"])

    @property
    def size(self) -> int:
        return sum(meta["size"] for meta in self.manifest["files"].values())

    def verify(self) -> None:
        """Every file the manifest lists is there, with its size and SHA-256."""
        for name, meta in self.manifest["files"].items():
            path = self.path / name
            if not path.is_file():
                raise BackupError(f"backup {self.name} is incomplete: {name} is missing")
            if path.stat().st_size != meta["size"] or sha256(path) != meta["sha256"]:
                raise BackupError(f"backup {self.name} is damaged: {name} does not match its checksum")


def local_sets(config: Config) -> list[BackupSet]:
    """Complete local backups, oldest first."""
    root = config.backup_path
    if not root.is_dir():
        return []
    sets = [BackupSet(path) for path in sorted(root.iterdir())
            if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()]
    return sorted(sets, key=lambda s: (s.created, s.name))


def check_label(label: str) -> str:
    if not label or not set(label) <= LABEL_CHARS or len(label) > 80 or label.startswith((".", "-")):
        raise BackupError(f"bad label {label!r}: use letters, digits, '.', '_' and '-' (at most 80)")
    return label


def keep_policy(times: list[dt.datetime], keep_last: int, keep_daily: int, keep_weekly: int) -> set[int]:
    """Indexes to keep, as `restic forget --keep-last/--keep-daily/--keep-weekly` decides:
    the newest `keep_last`, then the newest of each of the last `keep_daily` days (and
    `keep_weekly` ISO weeks) that have a backup. Times in the server's time zone."""
    order = sorted(range(len(times)), key=lambda i: times[i], reverse=True)
    keep = set(order[:keep_last])
    for count, bucket in ((keep_daily, lambda t: t.astimezone().strftime("%Y-%m-%d")),
                          (keep_weekly, lambda t: "{:04d}-{:02d}".format(*t.astimezone().isocalendar()[:2]))):
        last = None
        for index in order:
            if count <= 0:
                break
            key = bucket(times[index])
            if key != last:
                keep.add(index)
                last = key
                count -= 1
    return keep


def apply_local_retention(config: Config) -> None:
    sets = local_sets(config)
    keep = keep_policy([s.created for s in sets], config.keep_last, config.keep_daily, config.keep_weekly)
    removed = [s for index, s in enumerate(sets) if index not in keep]
    for old in removed:
        shutil.rmtree(old.path)
    log(f"local retention: kept {len(keep)}, removed {len(removed)}"
        + (f" ({', '.join(s.name for s in removed)})" if removed else ""))
    # Leftovers of interrupted runs.
    for partial in config.backup_path.glob(".partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
