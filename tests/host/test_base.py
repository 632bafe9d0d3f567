"""The host is hardened as configured: deploy user, sshd, firewall, upgrades, time."""

from __future__ import annotations

import re
import shutil
import subprocess


def test_deploy_user_has_the_configured_keys_and_sudo(host, settings) -> None:
    user = host.user(settings.deploy_user)
    assert user.exists
    assert "sudo" in user.groups
    keys = host.file(f"{user.home}/.ssh/authorized_keys")
    assert keys.user == settings.deploy_user
    assert keys.mode & 0o077 == 0
    assert sorted(line for line in keys.content_string.splitlines() if line) == sorted(settings.deploy_ssh_keys)
    assert host.run(f"sudo -n -u {settings.deploy_user} sudo -n true").rc == 0


def test_sshd_effective_settings_are_hardened(host, settings) -> None:
    effective = dict(
        line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line
    )
    assert effective["port"] == str(settings.sshd_port)
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitemptypasswords"] == "no"
    assert effective["permitrootlogin"] in ("without-password", "prohibit-password", "no")
    if settings.sshd_permit_root_login == "no":
        assert effective["permitrootlogin"] == "no"
    assert host.service("ssh").is_running


def test_firewall_drops_everything_but_the_allowed_ports(host, settings) -> None:
    assert host.service("nftables").is_enabled
    table = host.check_output("nft list table inet onebox")
    assert "hook input priority filter; policy drop;" in table
    ports = re.search(r"tcp dport \{ ([0-9, ]+) \} accept", table)
    assert ports, table
    assert {int(port) for port in ports[1].split(",")} == set(settings.firewall_tcp_ports)


def test_stopping_the_firewall_spares_dockers_rules(host) -> None:
    stop = host.check_output("systemctl show nftables -p ExecStop")
    assert "delete table inet onebox" in stop and "flush" not in stop


def test_only_the_allowed_ports_answer_from_outside(address, settings) -> None:
    assert shutil.which("nmap"), "nmap is needed on this machine for the outside scan (apt-get install nmap)"
    scan = subprocess.run(
        ["nmap", "-Pn", "-n", "-p-", "--min-rate", "20000", "--max-retries", "1", "-oG", "-", address],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout
    open_ports = {int(port) for port in re.findall(r"(\d+)/open/tcp", scan)}
    assert open_ports, scan  # at least SSH must answer, or the scan saw nothing
    assert open_ports <= set(settings.firewall_tcp_ports), f"unexpected open ports: {open_ports}"


def test_unattended_security_upgrades_are_on(host, settings) -> None:
    assert host.package("unattended-upgrades").is_installed
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert host.service("unattended-upgrades").is_enabled
    dump = host.check_output("apt-config dump Unattended-Upgrade::Automatic-Reboot")
    assert ('"true"' in dump) is settings.unattended_upgrades_auto_reboot


def test_time_zone_hostname_and_time_sync(host, settings) -> None:
    assert host.check_output("readlink /etc/localtime") == f"/usr/share/zoneinfo/{settings.timezone}"
    assert host.check_output("hostname") == settings.hostname
    assert host.service("systemd-timesyncd").is_enabled
    if host.run("systemd-detect-virt --container").rc != 0:  # timesyncd does not run in containers
        assert host.service("systemd-timesyncd").is_running
