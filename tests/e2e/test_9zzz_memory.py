"""Runs last: the shared target has the memory of a 1 GB VPS without swap (testbed.target), and
the whole session (the upgrade under load, releases, backups and point-in-time restores, two apps,
the cluster's manager) ran on it. Nothing of it may have been killed for memory."""

from __future__ import annotations

from testbed.target import memory_limit_bytes, oom_kills


def test_the_session_ran_on_a_1_gb_target_and_the_oom_killer_killed_nothing(deployed):
    assert deployed.target.memory == "1g", "the e2e session's target must be limited like a 1 GB VPS"
    # Read from the kernel's cgroup on this machine: inside the target, its own cgroup is the root
    # of its namespace, which has no limit file to read.
    assert memory_limit_bytes(deployed.target) == 1024 ** 3
    assert oom_kills(deployed.target) == 0, (
        "the OOM killer killed processes on the 1 GB target during the session: "
        + deployed.ssh("journalctl -k --no-pager | grep -i -A2 'out of memory' | tail -20").stdout)
