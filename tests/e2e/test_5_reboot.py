"""A reboot of the server brings everything back by itself: services enabled, restart
policies, and an API that retries its connections (compose's depends_on does not
apply at boot)."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from onebox.verify import edge
from testbed import pebble
from testbed.target import wait_for_ssh


def test_the_stack_comes_back_after_a_reboot(deployed, tmp_path) -> None:
    root_ca = tmp_path / "root.pem"
    root_ca.write_text(pebble.issuing_root_pem())
    with edge.https(deployed.ip, deployed.domain, root_ca) as client:
        record = client.post("/items", json={"name": "before the reboot"},
                             extensions={"sni_hostname": deployed.domain}).json()

    subprocess.run(["docker", "restart", deployed.target.name], check=True, capture_output=True)
    wait_for_ssh(deployed.ip)

    deadline, last = time.monotonic() + 90, None
    with edge.https(deployed.ip, deployed.domain, root_ca) as client:
        while time.monotonic() < deadline:
            try:
                last = edge.get(client, deployed.domain, "/ready")
                if last.status_code == 200:
                    break
            except httpx.HTTPError as error:
                last = error
            time.sleep(1)
        else:
            pytest.fail(f"the API did not come back through nginx within 90 s after a reboot: {last}")
        assert edge.get(client, deployed.domain, f"/items/{record['id']}").json()["name"] == "before the reboot"
