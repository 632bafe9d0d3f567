"""`onebox dashboard` (onebox/dashboard.py) in a child process, with a fake `ssh` on PATH that
listens on the tunnel's local port and sleeps: however the dashboard is stopped, the tunnel
goes with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onebox import dashboard

ROOT = Path(__file__).resolve().parents[2]

FAKE_SSH = """#!{python}
import os, socket, sys
# ssh -N -L 127.0.0.1:PORT:REMOTE ...: listen on PORT, as the tunnel does, until killed; a request
# is answered as Prometheus would the dashboard's query of the apps it monitors.
port = int(sys.argv[sys.argv.index("-L") + 1].split(":")[1])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen()
with open(os.environ["FAKE_SSH_PID"], "w") as pid_file:
    pid_file.write(str(os.getpid()))
body = b'{{"status":"success","data":{{"resultType":"vector","result":[' \\
       b'{{"metric":{{"app":"jobs"}},"value":[0,"2"]}},{{"metric":{{"app":"api"}},"value":[0,"3"]}}]}}}}'
while True:
    connection, _ = listener.accept()
    with connection:
        if connection.recv(65536).startswith(b"GET /api/v1/query?"):
            connection.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Type: application/json\\r\\n\\r\\n" + body)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_the_dashboard_closes_its_tunnel(tmp_path: Path, signum: int) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text(FAKE_SSH.format(python=sys.executable))
    ssh.chmod(0o755)
    inventory = tmp_path / "inventory.py"
    inventory.write_text('hosts = [("server.invalid", {"ssh_user": "deploy"})]\n')
    pid_file = tmp_path / "ssh.pid"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SSH_PID": str(pid_file),
           "PYTHONPATH": str(ROOT)}
    code = "import sys; from onebox import dashboard; sys.exit(dashboard.main(sys.argv[1], int(sys.argv[2])))"
    child = subprocess.Popen([sys.executable, "-c", code, str(inventory), str(dashboard.free_port())], env=env,
                             stdout=subprocess.PIPE, text=True)
    ssh_pid = None
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith("onebox dashboard: http://127.0.0.1:")  # the tunnel is up
        base = first.split()[-1].removesuffix("/consoles/onebox.html")
        assert first.split()[-1] == f"{base}/consoles/onebox.html"
        # The graphs of the server, then of each app Prometheus monitors, by name.
        assert [child.stdout.readline().strip() for _ in range(3)] == [
            f"graphs of the server: {base}/consoles/onebox-server.html?range=6h",
            f"graphs of app api: {base}/consoles/onebox-app.html?app=api&range=6h",
            f"graphs of app jobs: {base}/consoles/onebox-app.html?app=jobs&range=6h"]
        ssh_pid = int(pid_file.read_text())
        assert alive(ssh_pid)
        child.send_signal(signum)
        assert child.wait(timeout=20) == 0
        deadline = time.monotonic() + 10
        while alive(ssh_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(ssh_pid)  # gone (and reaped), not left behind holding the port
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if ssh_pid is not None and alive(ssh_pid):
            os.kill(ssh_pid, signal.SIGKILL)
