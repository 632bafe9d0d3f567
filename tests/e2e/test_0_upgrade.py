"""An upgrade of onebox never breaks a server (conftest.py did it): the previous version
converged a fresh target, this one, installed from its wheel and run from a deploy directory
made by `onebox init`, converged it again under load. Every later change is checked against a
server made by the version before it."""

from __future__ import annotations

import os
import subprocess

import httpx

from onebox import __version__, server_calls
from onebox.verify.api import api_tunnel, wait_ready
from testbed.deploy import changed_operations, run_deploy


def test_the_upgrade_dropped_no_request(deployed) -> None:
    load = deployed.upgrade.load
    print(f"{load.requests} requests during the upgrade, {len(load.failures)} failed, {len(load.written)} rows written")
    assert load.failures == [], load.failures[:10]
    assert load.requests > 50


def test_the_upgrade_made_a_release_and_kept_every_row(deployed) -> None:
    assert deployed.live_release() != deployed.upgrade.release_before  # api_workers 1 -> 2
    with api_tunnel(deployed.ssh_args) as api:
        wait_ready(api)
        for row in [*deployed.upgrade.rows_before, *deployed.upgrade.load.written]:
            assert httpx.get(f"{api}/items/{row}").status_code == 200, row


def test_the_installed_onebox_records_and_shows_its_version(deployed) -> None:
    assert deployed.ssh("cat /etc/onebox/version").stdout.strip() == __version__
    version = deployed.upgrade.installed.onebox("--version")
    assert version.stdout.strip() == f"onebox {__version__}"
    status = deployed.upgrade.installed.onebox("status", "inventories/prod.py")
    assert f"onebox         {__version__} (the version that last converged this server)" in status.stdout, status


def test_the_installed_package_holds_no_test_bench(deployed) -> None:
    python = str(deployed.upgrade.installed.bin / "python")
    for module in ("testbed", "onebox.local"):
        done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True,
                              cwd=deployed.upgrade.installed.directory)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, module


def test_a_rollback_to_the_previous_version_s_release_works_and_a_rerun_changes_nothing(deployed) -> None:
    installed, before = deployed.upgrade.installed, deployed.upgrade.release_before
    releases = installed.onebox("releases", "inventories/prod.py").stdout
    assert before in releases, releases
    rolled = installed.onebox("rollback", "inventories/prod.py", before)
    assert rolled.returncode == 0, rolled.stdout[-3000:] + rolled.stderr[-2000:]
    assert deployed.live_release() == before
    api = deployed.container_ids()["api"]
    assert "WEB_CONCURRENCY=1" in deployed.ssh("docker inspect -f '{{.Config.Env}}' " + api).stdout
    forward = installed.onebox("deploy", "inventories/prod.py")
    assert forward.returncode == 0, forward.stdout[-3000:] + forward.stderr[-2000:]
    assert deployed.live_release() != before
    again = deployed.deploy()  # the repository's converge: the installed onebox left nothing for it to do
    assert again.returncode == 0 and again.changed == 0, changed_operations(again.output)


def test_the_previous_onebox_reads_what_this_one_left_on_the_server(deployed) -> None:
    """The way back (ONEBOX_ALLOW_OLDER=1) starts with the previous version's facts: its own readers, run
    from its virtualenv, must take this version's apps.json and state report."""
    previous = deployed.upgrade.previous
    state_call = server_calls.as_shell(server_calls.state(deployed.settings.app_dir))
    reads = {
        "apps.json": ("cat /etc/onebox/apps.json",
                      "from onebox.contract import parse_apps; print(sorted(parse_apps(sys.stdin.read())))"),
        "the state report": (state_call, "from onebox.contract import parse_state_report; "
                             "print(parse_state_report(sys.stdin.read().splitlines()[-1], allow_newer=True).live)"),
    }
    for message, (server_command, reader) in reads.items():
        text = deployed.ssh(server_command).stdout
        # -I: not this checkout's onebox (python -c would import it from the working directory first);
        # the first line printed says whose onebox read the message.
        done = subprocess.run([str(previous.bin / "python"), "-I", "-c", f"import sys, onebox; print(onebox.__file__); {reader}"],
                              input=text, capture_output=True, text=True, check=False,
                              env={**os.environ, "ONEBOX_ALLOW_OLDER": "1"})
        assert done.returncode == 0, (message, text, done.stderr[-2000:])
        module, answer = done.stdout.strip().split("\n", 1)
        assert module.startswith(str(previous.tree)), f"{module}: not onebox {previous.version}'s own code"
        print(f"onebox {previous.version} ({module}) reads this version's {message}: {answer}")


def test_an_older_onebox_refuses_before_changing_anything(deployed) -> None:
    deployed.ssh("echo 99.0.0 > /etc/onebox/version")  # as if a newer onebox had converged it
    try:
        refused = deployed.deploy()
        assert refused.returncode != 0
        assert f"last converged by onebox 99.0.0, newer than this onebox {__version__}; nothing was changed" \
            in refused.output, refused.output[-3000:]
        assert "ONEBOX_ALLOW_OLDER=1" in refused.output
        assert refused.changed == 0
        rollback = run_deploy(deployed.target.index, deploy="deploys/rollback.py")  # the operator's deploys too
        assert rollback.returncode != 0 and "newer than this onebox" in rollback.output, rollback.output[-3000:]
        assert deployed.ssh("cat /etc/onebox/version").stdout.strip() == "99.0.0"
    finally:
        deployed.ssh(f"echo {__version__} > /etc/onebox/version")
