"""The local VPS-like target: a Debian 13 container with systemd, sshd and room for
its own Docker engine, built without any registry (facts: shared/TARGET.md).

    python -m onebox.local.target up|down|status
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from onebox.local.rootfs import image_exists, import_debootstrap_image

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".onebox" / "local"
SSH_KEY = STATE_DIR / "id_ed25519"
KNOWN_HOSTS = STATE_DIR / "known_hosts"
ROOTFS_IMAGE = "onebox-local/rootfs:trixie"
TARGET_IMAGE = "onebox-local/target:trixie"
NAME = "onebox-target"
NETWORK = "onebox-local"
SUBNET = "172.29.0.0/24"
GATEWAY_IP = "172.29.0.1"
TARGET_IP = "172.29.0.10"
DOCKER_VOLUME = "onebox-target-docker"
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


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, text=True, **kwargs)


def ensure_host_docker() -> None:
    """Install and start this machine's Docker engine when missing (no systemd here)."""
    if shutil.which("dockerd") is None:
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", "docker.io", "debootstrap", env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if run("docker", "info", check=False, capture_output=True).returncode == 0:
        return
    log = open("/var/log/onebox-dockerd.log", "ab")  # noqa: SIM115 - handed to the daemon
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    for _ in range(60):
        if run("docker", "info", check=False, capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    sys.exit("onebox: dockerd did not start; see /var/log/onebox-dockerd.log")


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


def is_running() -> bool:
    result = run("docker", "inspect", "-f", "{{.State.Running}}", NAME, check=False, capture_output=True)
    return result.stdout.strip() == "true"


def wait_for_ssh(port: int = 22, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((TARGET_IP, port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"onebox: the target did not answer SSH on {TARGET_IP}:{port}")


def up() -> None:
    """Bring the target up (a no-op when it already runs)."""
    ensure_host_docker()
    ensure_target_image()
    public_key = ensure_ssh_key()
    if is_running():
        return
    if run("docker", "network", "inspect", NETWORK, check=False, capture_output=True).returncode != 0:
        run("docker", "network", "create", "--subnet", SUBNET, "--gateway", GATEWAY_IP, NETWORK, stdout=subprocess.DEVNULL)
    run("docker", "rm", "-f", NAME, check=False, capture_output=True)
    run("docker", "run", "-d", "--name", NAME, "--hostname", "vps", "--network", NETWORK,
        "--ip", TARGET_IP, *RUN_FLAGS, "-v", f"{DOCKER_VOLUME}:/var/lib/docker", TARGET_IMAGE,
        stdout=subprocess.DEVNULL)
    # A fresh VPS comes with the provider's key in root's authorized_keys.
    run("docker", "exec", "-i", NAME, "sh", "-c",
        "install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
        input=public_key + "\n")
    run("docker", "exec", NAME, "systemctl", "is-system-running", "--wait", check=False, capture_output=True)
    wait_for_ssh()
    KNOWN_HOSTS.unlink(missing_ok=True)  # a new target may present new host keys


def down() -> None:
    """Discard the target and its Docker volume: the next `up` is a fresh server."""
    run("docker", "rm", "-f", NAME, check=False, capture_output=True)
    run("docker", "volume", "rm", "-f", DOCKER_VOLUME, check=False, capture_output=True)
    KNOWN_HOSTS.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "status"
    if command == "up":
        up()
        print(f"target up: ssh -i {SSH_KEY} -o UserKnownHostsFile={KNOWN_HOSTS} root@{TARGET_IP}")
    elif command == "down":
        down()
        print("target removed")
    elif command == "status":
        print("running" if is_running() else "not running")
    else:
        sys.exit("usage: python -m onebox.local.target up|down|status")


if __name__ == "__main__":
    main(sys.argv[1:])
