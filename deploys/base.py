"""Harden and prepare the host: packages, deploy user, sshd, firewall, upgrades, time."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory
from pyinfra.facts.systemd import SystemdEnabled
from pyinfra.operations import apt, files, server, systemd

from onebox.facts import InContainer
from onebox.operations import checked_file
from onebox.render import render
from onebox.settings import Settings


@deploy("Prepare the host")
def prepare_host(s: Settings) -> None:
    apt.update(name="Refresh the apt package lists when they are stale.", cache_time=s.apt_cache_valid_time)
    apt.packages(name="Install the base packages.", packages=s.base_packages)
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


@deploy("Harden sshd")
def harden_sshd(s: Settings) -> None:
    config = checked_file(
        name="Write the hardened sshd settings (checked by sshd -t).",
        dest="/etc/ssh/sshd_config.d/00-onebox.conf", content=render("ssh/sshd_config.j2", s=s),
        check="sshd -t",
    )
    if host.get_fact(SystemdEnabled).get("ssh.socket"):
        # Ubuntu 24.04 starts sshd from ssh.socket, whose port a generator takes from
        # sshd_config at daemon-reload: reloading sshd alone would leave the old port.
        systemd.daemon_reload(name="Regenerate ssh.socket from the new settings.", _if=config.did_change)
        systemd.service(name="Restart ssh.socket for the new settings.", service="ssh.socket",
                        restarted=True, _if=config.did_change)
    else:
        systemd.service(name="Reload sshd for the new settings.", service="ssh",
                        running=True, reloaded=True, _if=config.did_change)


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
        dest="/etc/nftables.conf", content=render("nftables/nftables.conf.j2", s=s),
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

