"""Converge -> idempotence -> verify, the contract every role keeps."""

from __future__ import annotations

import pytest

from testbed.deploy import changed_operations


def test_first_deploy_converges_a_fresh_server(deployed) -> None:
    assert deployed.first.errors == 0
    assert deployed.first.changed > 20


def test_second_run_changes_nothing(deployed) -> None:
    assert deployed.second.returncode == 0, deployed.second.output[-3000:]
    assert deployed.second.changed == 0, changed_operations(deployed.second.output)


def test_host_checks_pass_against_the_converged_target(deployed) -> None:
    result = deployed.host_checks()
    assert result.returncode == 0, result.stdout[-4000:]


def test_a_changed_setting_changes_only_what_depends_on_it(deployed) -> None:
    changed = deployed.deploy({"ONEBOX_UNATTENDED_UPGRADES_REBOOT_TIME": "05:30"})
    assert changed.returncode == 0, changed.output[-3000:]
    assert changed_operations(changed.output) == ["Prepare the host | Set the unattended-upgrades reboot policy."]
    reverted = deployed.deploy()
    assert changed_operations(reverted.output) == ["Prepare the host | Set the unattended-upgrades reboot policy."]


def test_an_app_setting_recreates_only_the_api(deployed) -> None:
    before = deployed.container_ids()
    result = deployed.deploy({"ONEBOX_API_WORKERS": "3"})
    assert result.returncode == 0, result.output[-3000:]
    assert set(changed_operations(result.output)) == {
        "Deploy the application | Write the release spec (spec.json).",
        "Deploy the application | Release: dependencies, image, release step, health-gated switch (or heal what runs).",
    }
    assert "release because: settings changed" in result.output
    after = deployed.container_ids()
    assert after["postgres"] == before["postgres"] and after["redis"] == before["redis"]
    assert after["api"] != before["api"]
    assert "WEB_CONCURRENCY=3" in deployed.ssh("docker inspect -f '{{.Config.Env}}' " + after["api"]).stdout
    assert deployed.deploy().returncode == 0  # back to the group data's settings


@pytest.mark.parametrize(("dest", "check"), [
    ("/etc/ssh/sshd_config.d/00-onebox.conf", "sshd -t"),
    ("/etc/nginx/sites-enabled/onebox.conf", "nginx -t -q"),
    ("/etc/nftables.conf", "nft -c -f /etc/nftables.conf"),
])
def test_an_invalid_config_never_replaces_a_working_one(deployed, dest: str, check: str) -> None:
    before = deployed.ssh(f"sha256sum {dest}").stdout
    result = deployed.deploy({"ONEBOX_TEST_DEST": dest, "ONEBOX_TEST_CHECK": check},
                             deploy="tests/e2e/deploys/offer_invalid_config.py")
    assert result.returncode != 0
    assert f"`{check}` rejected the new {dest}; the previous version was kept" in result.output
    assert deployed.ssh(f"sha256sum {dest}").stdout == before
    assert deployed.ssh(check).returncode == 0  # and a new SSH connection still gets in
    again = deployed.deploy()
    assert again.changed == 0, changed_operations(again.output)
