"""Converge a server: `pyinfra inventories/prod.py deploys/site.py` (a deploy directory's
deploys/site.py runs this file, onebox/deploys/site.py, from the installed package).

This file only sequences the roles; each role is one module under onebox/deploys/. The
proxy comes before the apps: a release switches nginx to the new version. In a cluster
inventory (docs/cluster.md) a worker gets the host roles, Docker and its place in the swarm;
the manager gets everything.
"""

from pyinfra import host

from onebox.cluster import api_nodes
from onebox.deploys.app import deploy_app, load_worker_images
from onebox.deploys.apps import check_server_apps, register_apps
from onebox.deploys.backup import configure_backups
from onebox.deploys.base import (
    configure_ci_user,
    configure_firewall,
    create_deploy_user,
    harden_sshd,
    prepare_host,
    record_file_integrity_baseline,
)
from onebox.deploys.docker import install_docker
from onebox.deploys.monitoring import configure_monitoring
from onebox.deploys.proxy import configure_proxy
from onebox.deploys.swarm import check_swarm_membership, configure_swarm
from onebox.deploys.tls import issue_certificates
from onebox.deploys.tools import (
    check_onebox_version,
    install_boot_unit,
    install_node_watch,
    install_server_tools,
    record_onebox_version,
)
from onebox.hosts import cluster_nodes
from onebox.inventory import use_private_upload_dir
from onebox.operations import remove_start_policy

settings = host.data.onebox_settings
worker = host.data.get("swarm_role") == "worker"
# Before any operation: an onebox older than the server's last stops the run here,
check_onebox_version()
# and so does an app the server has and the settings forgot.
registry = None if worker else check_server_apps(settings)
check_swarm_membership()  # and a swarm node converged as a single server stops it too
use_private_upload_dir(host, settings)

remove_start_policy(name="Remove the policy-rc.d an interrupted package install left, if any.")
prepare_host(settings)
create_deploy_user(settings)
configure_ci_user(settings, here=not worker)  # CI deploys where onebox-release runs: the manager
harden_sshd(settings)
configure_firewall(settings)  # a swarm node's ports open to the other nodes only
install_docker(settings)
configure_swarm(settings)  # nothing on a single server
if worker:
    record_onebox_version()  # the manager records it with its server tools
    load_worker_images(settings)  # before the manager's releases start API replicas on it
if not worker:
    install_server_tools(settings)  # onebox-release and onebox-backup, which the roles below call
    register_apps(settings, registry)  # and retire the apps the settings took off the server
    configure_proxy(settings)
    issue_certificates(settings)
    configure_backups(settings)
    for app in settings.app_list:  # each app alone: its own projects, slots, secrets, database
        deploy_app(app)
    install_boot_unit()  # and after a reboot, whatever Docker's restart policies leave stopped
    install_node_watch(any(api_nodes(app, cluster_nodes()) for app in settings.app_list))
    configure_monitoring(settings)  # after the apps: it probes their URLs and scrapes their metrics
# Last: the file-integrity baseline must include everything the roles above installed.
record_file_integrity_baseline(settings)
