"""The host is hardened as configured: deploy user, sshd, fail2ban, firewall, upgrades, time,
kernel parameters and modules, login defaults, file integrity."""

from __future__ import annotations

import re
import shutil
import subprocess

from onebox import ci
from onebox.facts import POLICY_MARK, POLICY_RC_D


def test_deploy_user_has_the_configured_keys_and_sudo(host, settings) -> None:
    user = host.user(settings.deploy_user)
    assert user.exists
    assert "sudo" in user.groups
    keys = host.file(f"{user.home}/.ssh/authorized_keys")
    assert keys.user == settings.deploy_user
    assert keys.mode & 0o077 == 0
    assert sorted(line for line in keys.content_string.splitlines() if line) == sorted(settings.deploy_ssh_keys)
    assert host.run(f"sudo -n -u {settings.deploy_user} sudo -n true").rc == 0


def test_the_ci_account_exists_only_with_ci_keys_and_may_run_one_command(host, settings) -> None:
    user = host.user(ci.CI_USER)
    if not settings.ci_ssh_keys:
        assert not user.exists and not host.file(ci.CI_SUDOERS).exists and not host.file(ci.CI_HOME).exists
        return
    assert user.exists and user.home == ci.CI_HOME and user.shell == "/bin/sh"
    keys = host.file(ci.CI_AUTHORIZED_KEYS)
    assert (keys.user, keys.mode) == ("root", 0o644) and keys.content_string == ci.authorized_keys(settings.ci_ssh_keys)
    assert host.file(ci.CI_HOME).user == "root" and host.file(f"{ci.CI_HOME}/.ssh").user == "root"
    assert host.file(ci.CI_SUDOERS).content_string == ci.sudoers_rule()


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
    assert effective["maxauthtries"] == str(settings.sshd_max_auth_tries)
    assert effective["maxsessions"] == str(settings.sshd_max_sessions)
    assert effective["allowtcpforwarding"] == settings.sshd_allow_tcp_forwarding
    assert effective["loglevel"] == "VERBOSE"
    assert effective["tcpkeepalive"] == "no"
    assert effective["x11forwarding"] == "no" and effective["allowagentforwarding"] == "no"
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


def in_container(host) -> bool:  # noqa: ANN001 - testinfra's host fixture
    return host.run("systemd-detect-virt --container").rc == 0


def test_deploy_home_and_sudoers_dir_are_private(host, settings) -> None:
    assert host.file(f"/home/{settings.deploy_user}").mode == 0o700
    assert host.file("/etc/sudoers.d").mode == 0o750


def test_fail2ban_guards_sshd(host, settings) -> None:
    if not settings.fail2ban_enabled:
        assert not host.package("fail2ban").is_installed
        return
    assert host.service("fail2ban").is_running and host.service("fail2ban").is_enabled
    assert "sshd" in host.check_output("fail2ban-client status")
    ignored = host.check_output("fail2ban-client get sshd ignoreip")
    assert all(address.split("/")[0] in ignored for address in settings.fail2ban_ignore_ips)
    assert host.check_output("fail2ban-client get sshd maxretry") == str(settings.fail2ban_maxretry)


def in_effect(host, wanted: dict) -> dict[str, str]:  # noqa: ANN001 - testinfra's host
    """The kernel's value of each parameter, read in one round trip (`sysctl -n` prints one line per key)."""
    if not wanted:
        return {}
    values = host.check_output("sysctl -n " + " ".join(wanted)).splitlines()
    return dict(zip(wanted, values, strict=True))


def test_kernel_parameters_are_in_effect(host, settings) -> None:
    assert in_effect(host, settings.sysctl_network) == {key: str(value) for key, value in settings.sysctl_network.items()}
    # Docker forwards container traffic: hardening must leave forwarding on.
    if host.service("docker").is_running:
        assert host.check_output("sysctl -n net.ipv4.ip_forward") == "1"
    kernel_file = host.file("/etc/sysctl.d/90-onebox-kernel.conf")
    if in_container(host):  # the kernel is the host's: onebox never touches it
        assert not kernel_file.exists
        return
    assert in_effect(host, settings.sysctl_kernel) == {key: str(value) for key, value in settings.sysctl_kernel.items()}


def test_unneeded_kernel_modules_cannot_load(host, settings) -> None:
    blocklist = host.file("/etc/modprobe.d/onebox-blocklist.conf").content_string
    for module in settings.blocked_kernel_modules:
        assert f"install {module} /bin/false" in blocklist


def test_login_defaults(host, settings) -> None:
    assert "hard    core            0" in host.file("/etc/security/limits.d/onebox.conf").content_string
    profile = host.file("/etc/profile.d/onebox.sh").content_string
    assert "umask 027" in profile and "ulimit -c 0" in profile
    login_shell = host.run("bash -lc 'umask; ulimit -c; echo ${TMOUT:-0}'")
    assert login_shell.stdout.split() == ["0027", "0", str(settings.shell_idle_timeout)]
    for path in ("/etc/issue", "/etc/issue.net"):
        assert host.file(path).content_string.strip() == settings.login_banner.strip()


def test_hardening_packages_are_installed(host, settings) -> None:
    for package in settings.hardening_packages:
        assert host.package(package).is_installed, package


def test_file_integrity_is_monitored(host, settings) -> None:
    if not settings.aide_enabled:
        return
    assert host.package("aide").is_installed
    assert host.run("aide --config-check --config=/etc/aide/aide.conf").rc == 0
    assert host.service("dailyaidecheck.timer").is_enabled
    # Started by onebox: the package's own start is held with every new service's (issue 29).
    assert host.service("dailyaidecheck.timer").is_running


def test_no_policy_of_onebox_s_holds_services_after_a_converge(host) -> None:
    # onebox's policy-rc.d lives for the length of one package install (operations.install_packages).
    policy = host.file(POLICY_RC_D)
    assert not policy.exists or POLICY_MARK not in policy.content_string


def test_auditd_records_changes_outside_containers(host, settings) -> None:
    if not settings.auditd_enabled or in_container(host):
        return
    assert host.service("auditd").is_running
    assert "-k identity" in host.check_output("auditctl -l")
