"""Converge a server: `pyinfra inventories/prod.py deploys/site.py`.

This file only sequences the roles; each role is one module under deploys/.
"""

from pyinfra import host

from deploys.app import deploy_app
from deploys.base import configure_firewall, create_deploy_user, harden_sshd, prepare_host
from deploys.docker import install_docker
from deploys.proxy import configure_proxy
from deploys.tls import issue_certificates
from onebox.inventory import settings_for_host

settings = settings_for_host(host.data.dict(), host.data.get("onebox_group", "all"))

prepare_host(settings)
create_deploy_user(settings)
harden_sshd(settings)
configure_firewall(settings)
install_docker(settings)
deploy_app(settings)
configure_proxy(settings)
issue_certificates(settings)
