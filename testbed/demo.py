"""`make demo`: everything onebox does, against the local VPS-like target.

Stand-in images and a real ACME server (Pebble) on this machine, a fresh-or-running
target, `pyinfra inventories/local.py deploys/site.py`, the host checks, then how to
reach the result.
"""

from __future__ import annotations

import subprocess
import sys

from testbed import pebble
from testbed.stack import bring_up
from testbed.target import ROOT, STATE_DIR, current


def main() -> None:
    target = current()
    bring_up(target)
    pyinfra = [sys.executable.replace("/python", "/pyinfra"), "-y", "inventories/local.py", "deploys/site.py"]
    if subprocess.run(pyinfra, cwd=ROOT, check=False).returncode != 0:
        sys.exit("onebox: the deploy failed; the output above names the operation and the reason")
    checks = [sys.executable, "-m", "pytest", "-q", "tests/host", *target.testinfra_args, "--onebox-group=local"]
    if subprocess.run(checks, cwd=ROOT, check=False).returncode != 0:
        sys.exit("onebox: the target converged but a host check failed (above)")
    root = STATE_DIR / "pebble-root.pem"
    root.write_text(pebble.issuing_root_pem())
    print(f"""
onebox demo: {target.name} ({target.ip}) is converged and verified.
  API through nginx + TLS:  curl --cacert {root} --resolve app.onebox.test:443:{target.ip} https://app.onebox.test/ready
  Status at a glance:       .venv/bin/onebox status inventories/local.py
  Logs:                     .venv/bin/onebox logs inventories/local.py -n 20
  A one-off command:        .venv/bin/onebox run inventories/local.py -- alembic current
  Roll back:                .venv/bin/onebox rollback inventories/local.py
  Converge again:           .venv/bin/onebox deploy inventories/local.py
  SSH in:                   ssh -F {target.ssh_config} {target.name}
  Tear down:                make down
""")


if __name__ == "__main__":
    main()
