"""The root backup job copies Redis's snapshot out of its container (onebox/server/backup/redis.py)
by the name Redis itself reports (`CONFIG GET dbfilename`): a hostile or odd reply must not make it
read or move a file of this server outside the Redis data directory.

Docker is faked: redis-cli answers as a Redis that has just saved, and `docker cp ... -` writes the
tar archive the real one would (one member, the source's last path component); tar itself is real."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from onebox.server import basics
from onebox.server.backup import docker as backup_docker
from onebox.server.backup import redis
from onebox.server.backup.config import BackupError

SNAPSHOT = b"REDIS0011 the snapshot"


class FakeRedis:
    def __init__(self, dbfilename: str, member: tarfile.TarInfo | None = None) -> None:
        self.dbfilename, self.member, self.copied = dbfilename, member, []

    def run(self, argv: list[str], **kwargs: Any) -> basics.Result:
        if argv[:2] == ["docker", "exec"]:
            reply = {"bgsave": "Background saving started",
                     "info": "# Persistence\nrdb_bgsave_in_progress:0\nrdb_last_bgsave_status:ok",
                     "config": f"{argv[-1]}\n" + ("/data" if argv[-1] == "dir" else self.dbfilename)}[argv[4]]
            return basics.Result(argv, 0, reply, "")
        if argv[:2] == ["docker", "cp"]:
            self.copied.append(argv[2])
            source = argv[2].split(":", 1)[1]
            member = self.member or tarfile.TarInfo(source.rstrip("/").rsplit("/", 1)[-1])
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                if member.isreg():
                    member.size = len(SNAPSHOT)
                archive.addfile(member, io.BytesIO(SNAPSHOT) if member.isreg() else None)
            kwargs["stdout_file"].write(buffer.getvalue())
            return basics.Result(argv, 0, "", "")
        assert argv[0] == "tar", argv
        return basics.run(argv, **kwargs)


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    (tmp_path / "backups" / "partial").mkdir(parents=True)
    return tmp_path / "backups" / "partial"


def snapshot(monkeypatch: pytest.MonkeyPatch, fake: FakeRedis, dest: Path) -> None:
    monkeypatch.setattr(redis, "run", fake.run)
    monkeypatch.setattr(backup_docker, "run", fake.run)  # redis-cli goes through run_exec
    redis.snapshot_redis("c0ffee", dest, timeout=5)


def test_a_plain_file_name_is_copied_out(monkeypatch: pytest.MonkeyPatch, backup_dir: Path) -> None:
    fake = FakeRedis("dump.rdb")
    snapshot(monkeypatch, fake, backup_dir / "redis.rdb")
    assert fake.copied == ["c0ffee:/data/dump.rdb"]
    assert (backup_dir / "redis.rdb").read_bytes() == SNAPSHOT


@pytest.mark.parametrize("name", ["../../../victim", "{victim}", "sub/dump.rdb", "..", ".", "", "dump.rdb/"])
def test_a_dbfilename_that_is_not_a_plain_file_name_is_refused(
        monkeypatch: pytest.MonkeyPatch, backup_dir: Path, tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim"  # a file of this server outside Redis's data: ../../../ of the scratch directory
    victim.write_text("the server's own file")
    fake = FakeRedis(name.format(victim=victim))
    with pytest.raises(BackupError, match="not a plain file name") as error:
        snapshot(monkeypatch, fake, backup_dir / "redis.rdb")
    assert "CONFIG GET dbfilename" in str(error.value)
    assert fake.copied == []  # refused before anything is copied
    assert victim.read_text() == "the server's own file"
    assert not (backup_dir / "redis.rdb").exists()


def test_a_snapshot_that_is_a_link_out_of_the_container_is_refused(
        monkeypatch: pytest.MonkeyPatch, backup_dir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("the server's own file")
    link = tarfile.TarInfo("dump.rdb")
    link.type, link.linkname = tarfile.SYMTYPE, str(victim)  # /data/dump.rdb -> a path of this server
    with pytest.raises(BackupError, match="not a regular file"):
        snapshot(monkeypatch, FakeRedis("dump.rdb", link), backup_dir / "redis.rdb")
    assert not (backup_dir / "redis.rdb").is_symlink() and not (backup_dir / "redis.rdb").exists()
    assert victim.read_text() == "the server's own file"
