"""The local VPS-like target: a Debian 13 container with systemd, sshd and room for
its own Docker engine, built without any registry (facts: shared/TARGET.md).

    python -m testbed.target up|down|status

ONEBOX_TARGET_INDEX picks one of several independent targets (default 0, the demo's);
the e2e tests use their own, so they never disturb a demo target. Every target has the memory
of the cheapest useful VPS, 1 GB without swap (ONEBOX_TARGET_MEMORY: another limit, or "none").
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from onebox.settings.types import LOCAL_TARGET_SUBNET
from testbed.rootfs import image_exists, import_debootstrap_image

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".onebox" / "local"
SSH_KEY = STATE_DIR / "id_ed25519"
ROOTFS_IMAGE = "onebox-local/rootfs:trixie"
TARGET_IMAGE = "onebox-local/target:trixie"
NETWORK = "onebox-local"
SUBNET = LOCAL_TARGET_SUBNET
GATEWAY_IP = "172.29.0.1"
TARGET_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "sudo",
    "iproute2", "ca-certificates", "curl", "procps",
]
# --privileged fails on these hosts (no CAP_SYS_RESOURCE in the engine's bounding set).
RUN_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined",
    "--cgroupns=private", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp:exec",
]


def memory_limit() -> str | None:
    """ONEBOX_TARGET_MEMORY, "1g" unless set; "none" (or empty) gives a target the machine's memory."""
    limit = os.environ.get("ONEBOX_TARGET_MEMORY", "1g").strip()
    return None if limit.lower() in ("", "none") else limit


@dataclass(frozen=True)
class Target:
    index: int
    # A memory limit like a small VPS's ("1g": memory and swap together), or None: the machine's.
    memory: str | None = field(default_factory=memory_limit)

    @property
    def name(self) -> str:
        return f"onebox-target-{self.index}"

    @property
    def ip(self) -> str:
        return f"172.29.0.{10 + self.index}"

    @property
    def docker_volume(self) -> str:
        return f"{self.name}-docker"

    @property
    def known_hosts(self) -> Path:
        return STATE_DIR / f"known_hosts-{self.index}"

    @property
    def ssh_config(self) -> Path:
        """An ssh_config naming the target, for ssh, scp and testinfra (--ssh-config)."""
        return STATE_DIR / f"ssh_config-{self.index}"

    @property
    def ssh_args(self) -> list[str]:
        return ["-F", str(self.ssh_config), self.name]

    def ssh(self, command: str) -> subprocess.CompletedProcess:
        """Run a shell command on the target as root (text output, never raises)."""
        return subprocess.run(["ssh", *self.ssh_args, command], capture_output=True, text=True, check=False)

    @property
    def testinfra_args(self) -> list[str]:
        return [f"--hosts=ssh://{self.name}", f"--ssh-config={self.ssh_config}"]


def current() -> Target:
    return Target(int(os.environ.get("ONEBOX_TARGET_INDEX", "0")))


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, text=True, **kwargs)


DOCKERD_LOG = Path("/var/log/onebox-dockerd.log")


def ensure_host_docker() -> None:
    """Install and start this machine's Docker engine when missing (no systemd here)."""
    if shutil.which("dockerd") is None:
        run("apt-get", "update", "-qq")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "install", "-y", "-qq", "docker.io", "debootstrap", env=env)
    if run("docker", "info", check=False, capture_output=True).returncode == 0:
        return
    # On one CI machine dockerd did not answer within 30 s and the log was lost with the machine:
    # wait up to three minutes, start the daemon again if it exited, and print the log's end.
    for _attempt in range(2):
        with open(DOCKERD_LOG, "ab") as log:
            daemon = subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and daemon.poll() is None:
            if run("docker", "info", check=False, capture_output=True).returncode == 0:
                return
            time.sleep(0.5)
        if daemon.poll() is None:
            break
    log_end = "".join(DOCKERD_LOG.read_text(errors="replace").splitlines(keepends=True)[-40:])
    sys.exit(f"{log_end}\nonebox: dockerd did not start; the end of {DOCKERD_LOG} is above")


def ensure_target_image() -> None:
    """Build the target image once; later runs reuse the cached one."""
    if image_exists(TARGET_IMAGE):
        return
    if not image_exists(ROOTFS_IMAGE):
        print("Building the Debian 13 root filesystem (about a minute, once)...")
        import_debootstrap_image(ROOTFS_IMAGE, include=TARGET_PACKAGES, changes=['CMD ["/sbin/init"]'])
    run("docker", "build", "-q", "--build-arg", f"ROOTFS_IMAGE={ROOTFS_IMAGE}",
        "-t", TARGET_IMAGE, str(Path(__file__).parent / "target_image"), stdout=subprocess.DEVNULL)


def ensure_ssh_key() -> str:
    """The controller's key for the target; returns the public key line."""
    if not SSH_KEY.exists():
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "onebox-local", "-f", str(SSH_KEY))
    return SSH_KEY.with_suffix(".pub").read_text().strip()


def public_key() -> str:
    """The local key's public half for group data, which must not create files: pyinfra
    reads every group_data file on every run, for any inventory."""
    public = SSH_KEY.with_suffix(".pub")
    return public.read_text().strip() if public.exists() else "missing: run `make target` to create it"


def is_running(target: Target) -> bool:
    result = run("docker", "inspect", "-f", "{{.State.Running}}", target.name, check=False, capture_output=True)
    return result.stdout.strip() == "true"


def wait_for_ssh(ip: str, port: int = 22, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"onebox: the target did not answer SSH on {ip}:{port}")


def up(target: Target) -> None:
    """Bring the target up (a no-op when it already runs)."""
    ensure_host_docker()
    ensure_target_image()
    public_key = ensure_ssh_key()
    target.ssh_config.write_text(
        f"Host {target.name}\n  HostName {target.ip}\n  User root\n  IdentityFile {SSH_KEY}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {target.known_hosts}\n  StrictHostKeyChecking accept-new\n"
    )
    if is_running(target):
        return
    if run("docker", "network", "inspect", NETWORK, check=False, capture_output=True).returncode != 0:
        run("docker", "network", "create", "--subnet", SUBNET, "--gateway", GATEWAY_IP, NETWORK, stdout=subprocess.DEVNULL)
    run("docker", "rm", "-f", target.name, check=False, capture_output=True)
    run("docker", "run", "-d", "--name", target.name, "--hostname", "vps", "--network", NETWORK,
        "--ip", target.ip, *RUN_FLAGS, *memory_flags(target), "-v", f"{target.docker_volume}:/var/lib/docker", TARGET_IMAGE,
        stdout=subprocess.DEVNULL)
    # A fresh VPS comes with the provider's key in root's authorized_keys.
    run("docker", "exec", "-i", target.name, "sh", "-c",
        "install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
        input=public_key + "\n")
    run("docker", "exec", target.name, "systemctl", "is-system-running", "--wait", check=False, capture_output=True)
    wait_for_ssh(target.ip)
    target.known_hosts.unlink(missing_ok=True)  # a new target may present new host keys


def memory_flags(target: Target) -> list[str]:
    """No swap beyond the limit, as on a small VPS: what does not fit is killed, and counted."""
    return ["--memory", target.memory, "--memory-swap", target.memory] if target.memory else []


def memory_cgroup(target: Target) -> Path:
    """The target's memory cgroup on this machine (v1 or v2): what the kernel limits and counts."""
    container = run("docker", "inspect", "-f", "{{.Id}}", target.name, capture_output=True).stdout.strip()
    for path in (Path(f"/sys/fs/cgroup/memory/docker/{container}"),
                 Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope"),
                 Path(f"/sys/fs/cgroup/docker/{container}")):
        if (path / "memory.oom_control").exists() or (path / "memory.events").exists():
            return path
    raise RuntimeError(f"no memory cgroup found for {target.name} ({container[:12]})")


def memory_limit_bytes(target: Target) -> int | None:
    """The limit the kernel holds the target to, in bytes (None: unlimited)."""
    cgroup = memory_cgroup(target)
    limit = (cgroup / ("memory.max" if (cgroup / "memory.max").exists() else "memory.limit_in_bytes")).read_text()
    return None if limit.strip() == "max" or int(limit) >= 2 ** 62 else int(limit)


def oom_kills(target: Target) -> int:
    """How many processes of the target the kernel's OOM killer has killed."""
    cgroup = memory_cgroup(target)
    events = cgroup / ("memory.events" if (cgroup / "memory.events").exists() else "memory.oom_control")
    counts = dict(line.split() for line in events.read_text().splitlines())
    return int(counts["oom_kill"])


def down(target: Target) -> None:
    """Discard the target and its Docker volume: the next `up` is a fresh server."""
    run("docker", "rm", "-f", target.name, check=False, capture_output=True)
    run("docker", "volume", "rm", "-f", target.docker_volume, check=False, capture_output=True)
    target.known_hosts.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "status"
    target = current()
    if command == "up":
        up(target)
        print(f"{target.name} up: ssh -i {SSH_KEY} -o UserKnownHostsFile={target.known_hosts} root@{target.ip}")
    elif command == "down":
        down(target)
        print(f"{target.name} removed")
    elif command == "docker":
        ensure_host_docker()
    elif command == "status":
        print(f"{target.name}: " + ("running" if is_running(target) else "not running"))
    else:
        sys.exit("usage: python -m testbed.target up|down|status|docker")


if __name__ == "__main__":
    main(sys.argv[1:])
