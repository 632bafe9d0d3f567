"""Test-only deploy: converge the host roles only (base and docker), without the app,
the proxy or TLS: `pyinfra -y inventories/local.py tests/e2e/deploys/host_only.py`."""

from pyinfra import host

from onebox.deploys.base import (
    configure_firewall,
    create_deploy_user,
    harden_sshd,
    prepare_host,
    record_file_integrity_baseline,
)
from onebox.deploys.docker import install_docker

settings = host.data.onebox_settings

prepare_host(settings)
create_deploy_user(settings)
harden_sshd(settings)
configure_firewall(settings)
install_docker(settings)
record_file_integrity_baseline(settings)
