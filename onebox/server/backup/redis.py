"""Redis: a BGSAVE snapshot copied out of its container, and a restore that has a one-off
server write a fresh append-only file from the snapshot."""

from __future__ import annotations

import contextlib
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from onebox.server import docker
from onebox.server.backup.config import BackupError, Config
from onebox.server.backup.docker import inspect, run_exec, wait_healthy
from onebox.server.basics import OneboxError, log, run, wait_until

# Shell steps run in a one-off container of the Redis image on its volume: the previous data
# moves aside (and comes back if the restore fails) before the snapshot takes its place.
REDIS_STAGE = (
    "set -e; cat > /data/.onebox-restore.rdb; rm -rf /data/.onebox-previous; mkdir /data/.onebox-previous; "
    "find /data -mindepth 1 -maxdepth 1 ! -name .onebox-restore.rdb ! -name .onebox-previous "
    "-exec mv {} /data/.onebox-previous/ \\; ; mv /data/.onebox-restore.rdb /data/dump.rdb"
)
REDIS_ROLLBACK = (
    "set -e; test -d /data/.onebox-previous; "
    "find /data -mindepth 1 -maxdepth 1 ! -name .onebox-previous -exec rm -rf {} +; "
    "find /data/.onebox-previous -mindepth 1 -maxdepth 1 -exec mv {} /data/ \\; ; rmdir /data/.onebox-previous"
)
REDIS_DONE = "rm -rf /data/.onebox-previous"


def redis_cli(redis: str, *args: str) -> str:
    return run_exec(docker.exec_in(redis, "redis-cli", *args), what=f"redis-cli {args[0]}").stdout.strip()


def redis_info(redis: str, section: str) -> dict[str, str]:
    lines = redis_cli(redis, "info", section).splitlines()
    return dict(line.strip().split(":", 1) for line in lines if ":" in line)


def snapshot_redis(redis: str, dest: Path, timeout: float = 600) -> None:
    """BGSAVE, wait for it, copy the RDB file out of the container."""
    log("snapshotting Redis (BGSAVE)")
    deadline = time.monotonic() + timeout
    while True:
        reply = redis_cli(redis, "bgsave")
        if "started" in reply.lower():
            break
        if "in progress" not in reply.lower() or time.monotonic() > deadline:
            raise BackupError(f"Redis BGSAVE failed: {reply}")
        time.sleep(0.5)  # another save or an AOF rewrite is running: wait for it, then take ours
    if not wait_until(lambda: redis_info(redis, "persistence").get("rdb_bgsave_in_progress") == "0",
                      max(0.0, deadline - time.monotonic()), interval=0.2):
        raise BackupError(f"Redis BGSAVE did not finish within {timeout:.0f} s")
    status = redis_info(redis, "persistence").get("rdb_last_bgsave_status")
    if status != "ok":
        raise BackupError(f"Redis BGSAVE failed (rdb_last_bgsave_status: {status}); see `docker logs {redis[:12]}`")
    directory = redis_cli(redis, "config", "get", "dir").splitlines()[-1]
    filename = rdb_file_name(redis_cli(redis, "config", "get", "dbfilename"))
    # `docker cp` streams a tar archive: no tool needed inside the image.
    with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
        archive = Path(scratch) / "rdb.tar"
        with archive.open("wb") as out:
            run(docker.copy_out(redis, f"{directory}/{filename}"), stdout_file=out,
                what="copying the Redis snapshot")
        run(["tar", "-xf", str(archive), "-C", scratch], what="unpacking the Redis snapshot")
        snapshot = Path(scratch) / filename
        # A link in the container (dump.rdb -> /etc/shadow) arrives as a link: moved into the backup,
        # it would have the backup read this server's file. Only the file itself is taken.
        if not stat.S_ISREG(snapshot.lstat().st_mode):
            raise BackupError(f"Redis's snapshot {directory}/{filename} in container {redis[:12]} is not a regular "
                              "file (a link or a directory); refusing to back it up")
        snapshot.rename(dest)


def rdb_file_name(reply: str) -> str:
    """The snapshot's file name from `CONFIG GET dbfilename`'s reply. The reply comes from inside the
    container, yet names a path this root job moves on the server (the scratch directory joined with
    it): anything but a plain file name (../../etc/shadow, /etc/shadow, a/b) is refused."""
    lines = reply.splitlines()
    name = lines[-1] if len(lines) == 2 and lines[0] == "dbfilename" else ""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise BackupError(f"Redis answered CONFIG GET dbfilename with {reply!r}, not a plain file name in its data "
                          "directory; refusing to copy it. Set it back in the Redis container (redis-cli CONFIG SET "
                          "dbfilename dump.rdb) and find out who changed it")
    return name


def restore_redis(config: Config, redis: str, rdb: Path, timeout: float = 300) -> None:
    """Load the RDB snapshot with a one-off server that writes a fresh append-only file from
    it, then start the real container: with appendonly on, Redis ignores a lone dump.rdb."""
    info = inspect(redis)
    image = info["Config"]["Image"]
    mount = next((m for m in info["Mounts"] if m.get("Type") == "volume" and m["Destination"] == "/data"), None)
    if mount is None:
        raise BackupError(f"the Redis container {redis[:12]} has no volume at /data; cannot restore into it")
    volume = mount["Name"]
    helper = f"{config.app_name}-redis-restore"
    shell = docker.run_shell_on_volume(volume, image)
    log(f"restoring Redis into volume {volume}")
    run(docker.stop(redis), what="stopping Redis")
    try:
        with rdb.open("rb") as snapshot:
            run([*shell, REDIS_STAGE], stdin_file=snapshot, what="writing the snapshot into the Redis volume")
        try:
            keys = rewrite_append_only_file(helper, image, volume, timeout)
        except OneboxError:
            with contextlib.suppress(OneboxError):
                run([*shell, REDIS_ROLLBACK], stdin_file=subprocess.DEVNULL, what="putting the previous Redis data back")
            raise
        run([*shell, REDIS_DONE], stdin_file=subprocess.DEVNULL, what="removing the previous Redis data")
        log(f"Redis data restored ({', '.join(f'{k}: {v}' for k, v in keys.items()) or 'no keys'})")
    finally:
        run(docker.start(redis), what="starting Redis")
    wait_healthy([redis], timeout)


def _answers(helper: str) -> bool:
    return run(docker.exec_in(helper, "redis-cli", "ping"), check=False).stdout.strip() == "PONG"


def _aof_written(helper: str) -> bool:
    persistence = redis_info(helper, "persistence")
    return (persistence.get("aof_enabled") == "1" and persistence.get("aof_rewrite_in_progress") == "0"
            and persistence.get("aof_rewrite_scheduled") == "0")


def rewrite_append_only_file(helper: str, image: str, volume: str, timeout: float) -> dict[str, str]:
    """A one-off Redis loads dump.rdb (append-only off), then writes the append-only file from it."""
    run(docker.rm_force(helper, short_flag=True), check=False)
    try:
        run(docker.run_detached_on_volume(helper, volume, image, "redis-server", "--dir", "/data", "--appendonly", "no",
                                         "--save", ""), what="starting a one-off Redis")
        deadline = time.monotonic() + timeout
        wait_until(lambda: _answers(helper) or not inspect(helper)["State"]["Running"], timeout, interval=0.3)
        if not _answers(helper):
            logs = run(docker.logs(helper, 5), check=False)
            raise BackupError("a one-off Redis could not load the snapshot: "
                              + " | ".join((logs.stdout + logs.stderr).strip().splitlines()))
        keys = redis_info(helper, "keyspace")
        redis_cli(helper, "config", "set", "appendonly", "yes")
        if not wait_until(lambda: _aof_written(helper), max(0.0, deadline - time.monotonic()), interval=0.3):
            raise BackupError("Redis did not write its append-only file from the snapshot in time")
        if redis_info(helper, "persistence").get("aof_last_bgrewrite_status") != "ok":
            raise BackupError("Redis failed to write its append-only file from the snapshot")
        run(docker.stop(helper), what="stopping the one-off Redis")
        return keys
    finally:
        run(docker.rm_force(helper, short_flag=True), check=False)
