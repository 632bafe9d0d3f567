"""Harden and prepare the host: packages, deploy user, CI's account, sshd, fail2ban, firewall,
upgrades, time, kernel parameters and modules, login defaults."""

from __future__ import annotations

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory
from pyinfra.facts.server import Users
from pyinfra.facts.systemd import SystemdEnabled
from pyinfra.operations import apt, files, server, systemd

from onebox import ci, contract
from onebox.facts import InContainer
from onebox.hosts import ran_before_this_run, swarm_firewall
from onebox.operations import aide_baseline, checked_file, install_packages, security_updates
from onebox.render import render
from onebox.settings import Settings
from onebox.shell import raw_shell


@deploy("Prepare the host")
def prepare_host(s: Settings) -> None:
    apt.update(name="Refresh the apt package lists when they are stale.", cache_time=s.apt_cache_valid_time)
    install_packages(name="Install the base packages.", packages=s.base_packages)
    if s.hardening_packages:
        install_packages(name="Install the hardening packages.", packages=s.hardening_packages)
    configure_file_integrity(s)
    if host.get_fact(Directory, path="/etc/cloud/cloud.cfg.d"):
        files.put(name="Keep cloud-init from resetting the hostname and /etc/hosts at boot.",
                  src=StringIO(render("cloud/99-onebox.cfg.j2")), dest="/etc/cloud/cloud.cfg.d/99-onebox.cfg")
    server.hostname(name=f"Set the hostname to {s.hostname}.", hostname=s.hostname)
    files.line(
        name=f"Resolve {s.hostname} locally (sudo looks its own host name up).",
        path="/etc/hosts", line=r"^127\.0\.1\.1\s", replace=f"127.0.1.1 {s.hostname}",
    )
    files.link(
        name=f"Set the time zone to {s.timezone}.",
        path="/etc/localtime", target=f"/usr/share/zoneinfo/{s.timezone}",
    )
    files.put(name="Record the time zone for tools that read /etc/timezone.",
              src=StringIO(f"{s.timezone}\n"), dest="/etc/timezone")
    configure_time_sync(s)
    configure_unattended_upgrades(s)
    if s.security_updates_on_deploy:
        security_updates(name="Apply pending security updates.")
    configure_kernel(s)
    configure_logins(s)


@deploy("Create the deploy user")
def create_deploy_user(s: Settings) -> None:
    server.user(
        name=f"Create {s.deploy_user} with its SSH keys.",
        user=s.deploy_user, home=f"/home/{s.deploy_user}", shell="/bin/bash",
        groups=["sudo"], append=True, public_keys=s.deploy_ssh_keys, delete_keys=True,
    )
    checked_file(
        name=f"Let {s.deploy_user} use sudo without a password (checked by visudo).",
        dest=f"/etc/sudoers.d/onebox-{s.deploy_user}", content=render("sudoers/deploy.j2", s=s),
        check="visudo -c", mode="440",
    )
    files.directory(name="Keep /etc/sudoers.d readable by root only.", path="/etc/sudoers.d",
                    user="root", group="root", mode="750")
    files.directory(name=f"Keep /home/{s.deploy_user} private to {s.deploy_user}.", path=f"/home/{s.deploy_user}",
                    user=s.deploy_user, group=s.deploy_user, mode="700")


@deploy("Let CI deploy without root")
def configure_ci_user(s: Settings, here: bool = True) -> None:
    """The account CI logs in as (ci_ssh_keys; onebox/ci.py): its keys run onebox-release ci-deploy
    and nothing else, its sudo allows exactly that. Removed, keys and sudo rule first, when
    ci_ssh_keys is empty or `here` is False (a swarm worker, which has no onebox-release)."""
    if not (s.ci_ssh_keys and here):
        files.file(name=f"No sudo rule for {ci.CI_USER} (no ci_ssh_keys here).", path=ci.CI_SUDOERS, present=False)
        files.directory(name=f"No SSH keys for {ci.CI_USER}.", path=ci.CI_HOME, present=False)
        if ci.CI_USER in (host.get_fact(Users) or {}):
            # userdel refuses while the account has a process: the user manager systemd starts at a
            # login lingers for seconds after CI's last deploy.
            server.shell(name=f"End {ci.CI_USER}'s sessions and processes.",
                         commands=[raw_shell(f"loginctl terminate-user {ci.CI_USER} 2>/dev/null; "
                                             f"pkill -KILL -u {ci.CI_USER}; sleep 1; true")])
        server.user(name=f"No {ci.CI_USER} account.", user=ci.CI_USER, present=False)
        return
    # No password (sshd takes the keys only); a home it cannot write to, so it cannot add a key of its own.
    server.user(name=f"Create {ci.CI_USER}, the account CI deploys as.", user=ci.CI_USER, home=ci.CI_HOME,
                shell="/bin/sh", system=True, ensure_home=False)
    for path in (ci.CI_HOME, f"{ci.CI_HOME}/.ssh"):
        files.directory(name=f"Create {path} (root's, so {ci.CI_USER} cannot change its keys).", path=path,
                        user="root", group="root", mode="755")
    checked_file(name=f"Let CI's keys run onebox-release {contract.CI_DEPLOY_COMMAND} only (forced command, restrict).",
                 dest=ci.CI_AUTHORIZED_KEYS, content=ci.authorized_keys(s.ci_ssh_keys), mode="644")
    checked_file(name=f"Let {ci.CI_USER} run onebox-release {contract.CI_DEPLOY_COMMAND} as root, nothing else "
                      "(checked by visudo).",
                 dest=ci.CI_SUDOERS, content=ci.sudoers_rule(), check="visudo -c", mode="440")


@deploy("Harden sshd")
def harden_sshd(s: Settings) -> None:
    config = checked_file(
        name="Write the hardened sshd settings (checked by sshd -t).",
        dest="/etc/ssh/sshd_config.d/00-onebox.conf", content=render("ssh/sshd_config.j2", s=s),
        check="sshd -t",
    )
    if host.get_fact(SystemdEnabled, services=["ssh.socket"]).get("ssh.socket"):  # one unit: all of them takes ~1 s
        # Ubuntu 24.04 starts sshd from ssh.socket, whose port a generator takes from
        # sshd_config at daemon-reload: reloading sshd alone would leave the old port.
        systemd.daemon_reload(name="Regenerate ssh.socket from the new settings.", _if=config.did_change)
        systemd.service(name="Restart ssh.socket for the new settings.", service="ssh.socket",
                        restarted=True, _if=config.did_change)
    else:
        systemd.service(name="Reload sshd for the new settings.", service="ssh",
                        running=True, reloaded=True, _if=config.did_change)
    configure_fail2ban(s)


def configure_fail2ban(s: Settings) -> None:
    if not s.fail2ban_enabled:
        apt.packages(name="Remove fail2ban (fail2ban_enabled is off).", packages=["fail2ban"], present=False)
        return
    # python3-systemd: the sshd jail reads the journal (Debian 13 has no /var/log/auth.log).
    install_packages(name="Install fail2ban.", packages=["fail2ban", "python3-systemd"])
    jail = checked_file(
        name="Ban addresses that keep failing SSH authentication (checked by fail2ban-client -t).",
        dest="/etc/fail2ban/jail.local", content=render("fail2ban/jail.local.j2", s=s), check="fail2ban-client -t",
    )
    was_running = ran_before_this_run("fail2ban")
    systemd.service(name="Run fail2ban.", service="fail2ban", running=True, enabled=True)
    if was_running:
        systemd.service(name="Reload fail2ban for the new jail.", service="fail2ban", reloaded=True,
                        _if=jail.did_change)


@deploy("Configure the firewall")
def configure_firewall(s: Settings) -> None:
    stop = files.put(
        name="Make stopping nftables drop only onebox's table (Debian's unit flushes every rule, Docker's too).",
        src=StringIO(render("systemd/nftables-stop.conf.j2")),
        dest="/etc/systemd/system/nftables.service.d/onebox.conf", create_remote_dir=True,
    )
    systemd.daemon_reload(name="Reload systemd for the nftables change.", _if=stop.did_change)
    rules = checked_file(
        name=f"Allow only TCP ports {s.firewall_tcp_ports} in (checked by nft -c).",
        dest="/etc/nftables.conf", content=render("nftables/nftables.conf.j2", s=s, swarm=swarm_firewall()),
        check="nft -c -f /etc/nftables.conf", mode="755",
    )
    systemd.service(name="Enable the firewall at boot.", service="nftables", running=True, enabled=True)
    systemd.service(name="Load the new firewall rules.", service="nftables", reloaded=True, _if=rules.did_change)


def configure_time_sync(s: Settings) -> None:
    config = files.put(
        name="Configure systemd-timesyncd.",
        src=StringIO(render("systemd/timesyncd.conf.j2", s=s)), dest="/etc/systemd/timesyncd.conf.d/onebox.conf",
    )
    # timesyncd refuses to run in a container (the host's clock is shared): enable it only.
    in_container = host.get_fact(InContainer) is not None
    systemd.service(name="Run systemd-timesyncd.", service="systemd-timesyncd",
                    enabled=True, running=not in_container)
    systemd.service(name="Restart systemd-timesyncd for the new servers.", service="systemd-timesyncd",
                    restarted=True, _if=lambda: config.did_change() and not in_container)


def configure_unattended_upgrades(s: Settings) -> None:
    files.put(name="Run apt updates and unattended upgrades daily.",
              src=StringIO(render("apt/20auto-upgrades.j2", s=s)), dest="/etc/apt/apt.conf.d/20auto-upgrades")
    files.put(name="Set the unattended-upgrades reboot policy.",
              src=StringIO(render("apt/52onebox-unattended-upgrades.j2", s=s)),
              dest="/etc/apt/apt.conf.d/52onebox-unattended-upgrades")
    systemd.service(name="Run the unattended-upgrades service.", service="unattended-upgrades",
                    running=True, enabled=True)


SYSCTL_DIR = "/etc/sysctl.d"


def sysctl_check(path: str) -> str:
    """Every line of `path` is `key = value` (or a comment) and every key exists: read with
    `sysctl -n`, which applies nothing."""
    q_path = shlex.quote(path)
    return raw_shell(
        f"awk '/^[[:space:]]*([#;]|$)/ {{ next }} !/^[a-z0-9_.-]+ = / {{ print \"not a sysctl setting: \" $0; bad = 1 }}"
        f" END {{ exit bad }}' {q_path} && sed -n 's/^\\([a-z0-9_.-]*\\) = .*/\\1/p' {q_path} | xargs -r sysctl -n >/dev/null")


def configure_kernel(s: Settings) -> None:
    """Kernel parameters and modules. A container shares the host's kernel: there only the
    per-network-namespace parameters apply, to the container's own network."""
    in_container = host.get_fact(InContainer) is not None
    groups = [("network", s.sysctl_network, "Per-network-namespace kernel parameters (sysctl_network).")]
    if not in_container:
        groups.append(("kernel", s.sysctl_kernel, "Host-kernel parameters (sysctl_kernel; never written in a container)."))
    for group, values, purpose in groups:
        path = f"{SYSCTL_DIR}/90-onebox-{group}.conf"
        config = checked_file(
            name=f"Write the {group} kernel parameters (each key checked by sysctl).",
            dest=path, content=render("sysctl/onebox.conf.j2", values=values, purpose=purpose),
            check=sysctl_check(path),
        )
        server.shell(name=f"Apply the {group} kernel parameters.", commands=[shlex.join(["sysctl", "-q", "-p", path])],
                     _if=config.did_change)
    files.put(name="Keep unneeded kernel modules from loading.",
              src=StringIO(render("modprobe/onebox-blocklist.conf.j2", s=s)),
              dest="/etc/modprobe.d/onebox-blocklist.conf")
    if s.auditd_enabled and not in_container:  # the audit subsystem is not namespaced: a container's is the host's
        configure_audit()


def configure_audit() -> None:
    install_packages(name="Install auditd.", packages=["auditd"])
    rules = files.put(name="Audit changes to accounts, sudo, sshd, the firewall and Docker.",
                      src=StringIO(render("audit/onebox.rules.j2")), dest="/etc/audit/rules.d/onebox.rules", mode="640")
    systemd.service(name="Run auditd.", service="auditd", running=True, enabled=True)
    server.shell(name="Load the new audit rules.", commands=["augenrules --load"], _if=rules.did_change)


def configure_logins(s: Settings) -> None:
    """Login defaults: no core dumps, umask and idle timeout of interactive shells, legal banners."""
    files.put(name="Disable core dumps of login sessions.", src=StringIO(render("security/limits.conf.j2")),
              dest="/etc/security/limits.d/onebox.conf")
    files.put(name="Keep no core dumps in systemd-coredump.", src=StringIO(render("coredump/onebox.conf.j2")),
              dest="/etc/systemd/coredump.conf.d/onebox.conf", create_remote_dir=True)
    files.put(name="Set the umask, core limit and idle timeout of interactive login shells.",
              src=StringIO(render("login/profile.sh.j2", s=s)), dest="/etc/profile.d/onebox.sh")
    for path in ("/etc/issue", "/etc/issue.net"):
        files.put(name=f"Show the legal banner in {path}.", src=StringIO(render("login/issue.j2", s=s)), dest=path)


def configure_file_integrity(s: Settings) -> None:
    if not s.aide_enabled:
        apt.packages(name="Remove AIDE (aide_enabled is off).", packages=["aide", "aide-common"], present=False)
        return
    # Without recommends, which would bring an MTA and cron: the package's own systemd timer runs
    # the daily check and its report goes to /var/log/aide/aide.log.
    install_packages(name="Install AIDE (file integrity).", packages=["aide", "aide-common"], no_recommends=True)
    checked_file(
        name="Keep Docker's, the app's and the backups' state out of AIDE (checked by aide --config-check).",
        dest="/etc/aide/aide.conf.d/50_aide_onebox", content=render("aide/50_aide_onebox.j2", s=s),
        check="aide --config-check --config=/etc/aide/aide.conf",
    )
    # The package enables its timer; its start is held with every new service (install_packages).
    systemd.service(name="Run AIDE's daily check timer.", service="dailyaidecheck.timer", running=True, enabled=True)


@deploy("Record the file integrity baseline")
def record_file_integrity_baseline(s: Settings) -> None:
    """Run last, once everything else is in place: AIDE's first database is the converged server."""
    if s.aide_enabled:
        aide_baseline(name="Record the AIDE database of the converged server (in the background, once).")
