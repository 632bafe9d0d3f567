"""Converge a server: `pyinfra inventories/prod.py deploys/site.py`.

This file only sequences the roles; each role is one module under deploys/. The
proxy comes before the app: a release switches nginx to the new version.
"""

from pyinfra import host

from deploys.app import deploy_app
from deploys.backup import configure_backups
from deploys.base import (
    configure_firewall,
    create_deploy_user,
    harden_sshd,
    prepare_host,
    record_file_integrity_baseline,
)
from deploys.docker import install_docker
from deploys.proxy import configure_proxy
from deploys.tls import issue_certificates
from deploys.tools import install_server_tools
from onebox.inventory import use_private_upload_dir

settings = host.data.onebox_settings
use_private_upload_dir(host, settings)

prepare_host(settings)
create_deploy_user(settings)
harden_sshd(settings)
configure_firewall(settings)
install_docker(settings)
install_server_tools(settings)  # onebox-release and onebox-backup, which the roles below call
configure_proxy(settings)
issue_certificates(settings)
configure_backups(settings)
deploy_app(settings)
# Last: the file-integrity baseline must include everything the roles above installed.
record_file_integrity_baseline(settings)
