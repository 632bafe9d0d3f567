"""Secrets stay private on every path: connecting as the deploy user with sudo (root
login disabled for the run), a watcher on the server never sees a file holding the
secret that anyone but root could read; the secret still reaches the app."""

from __future__ import annotations

import secrets
import subprocess
import time

WATCHER = r'''
import os, sys, time
secret = sys.stdin.readline().strip().encode()
roots = ["/tmp", "/var/tmp", "/home", "/opt", "/etc", "/run", "/var/lib/onebox", "/root"]
seen = set()
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in files:
                path = os.path.join(folder, name)
                try:
                    st = os.lstat(path)
                    if not (st.st_mode & 0o044) or st.st_size > 1_000_000 or not os.path.isfile(path):
                        continue
                    # Readable by others only if every directory above lets them in, too.
                    parts, blocked = path.split("/")[1:-1], False
                    for i in range(len(parts)):
                        if not os.stat("/" + "/".join(parts[: i + 1])).st_mode & 0o001:
                            blocked = True
                            break
                    if blocked:
                        continue
                    with open(path, "rb") as handle:
                        if secret in handle.read() and path not in seen:
                            seen.add(path)
                            print(f"{path} {oct(st.st_mode)}", flush=True)
                except OSError:
                    pass
    time.sleep(0.02)
'''


def as_deploy(deployed, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-l", deployed.settings.deploy_user, *deployed.ssh_args, command],
                          capture_output=True, text=True, check=False)


def test_a_secret_change_as_the_deploy_user_never_lands_in_a_readable_file(deployed) -> None:
    secret = secrets.token_hex(24)
    watcher = subprocess.Popen(["ssh", *deployed.ssh_args, "python3", "-c", f"'{WATCHER}'", "240"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert watcher.stdin is not None
    watcher.stdin.write(secret + "\n")
    watcher.stdin.flush()
    # A control the watcher must see: proof that it is watching.
    time.sleep(2)
    deployed.ssh(f"umask 022; printf %s {secret} > /tmp/onebox-watch-control; sleep 3; rm /tmp/onebox-watch-control")
    env = {"ONEBOX_SSH_USER": deployed.settings.deploy_user, "ONEBOX_SSHD_PERMIT_ROOT_LOGIN": "no",
           "ONEBOX_SECRET_APP_SECRET_KEY": secret}
    try:
        result = deployed.deploy(env)
        assert result.returncode == 0, result.output[-3000:]
        assert secret not in result.output
        api = as_deploy(deployed, "sudo docker ps -q --filter label=com.docker.compose.service=api").stdout.strip()
        assert as_deploy(deployed, f"sudo docker exec {api} cat /run/secrets/APP_SECRET_KEY").stdout == secret
        assert as_deploy(deployed, "sudo sshd -T | grep -i '^permitrootlogin'").stdout.strip() == "permitrootlogin no"
    finally:
        # Root login back, the generated secret back: the modules after this one connect as root.
        restored = deployed.deploy({"ONEBOX_SSH_USER": deployed.settings.deploy_user})
        assert restored.returncode == 0, restored.output[-3000:]
        watcher.terminate()
    seen = watcher.communicate(timeout=30)[0].split("\n")
    assert any(line.startswith("/tmp/onebox-watch-control ") for line in seen), "the watcher saw nothing"
    leaks = [line for line in seen if line and not line.startswith("/tmp/onebox-watch-control ")]
    assert leaks == [], f"readable files held the secret: {leaks}"
