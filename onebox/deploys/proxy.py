"""nginx in front of the apps: TLS, security headers, rate limits, WebSockets; a site per app."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from onebox import contract
from onebox.contract import NOT_INSTALLED
from onebox.facts import ReleaseState
from onebox.hosts import cluster_nodes, distro
from onebox.nginx import SERVER_LAYOUT, Layout, distro_nginx, initial_upstream, nginx_files, upstream_file
from onebox.operations import checked_file, install_packages, remove_unlisted, upload_once
from onebox.settings import Settings
from onebox.tls_operations import self_signed_certificate


def ensure_certificate_paths(s: Settings, layout: Layout) -> None:
    """Give nginx a certificate at its stable path before the first real one exists."""
    files.directory(name="Create the directory of TLS certificates nginx reads.", path=layout.tls_dir, mode="700")
    self_signed_certificate(name="Create a self-signed bootstrap certificate when there is none.",
                            cert_dir=layout.cert_dir(s), domains=s.domains)


@deploy("Configure the reverse proxy")
def configure_proxy(s: Settings) -> None:
    distro_id, version_id = distro()
    version = distro_nginx(distro_id, version_id)
    layout = SERVER_LAYOUT
    install_packages(name="Install nginx from the distribution.", packages=["nginx", "openssl"])
    files.directory(name="Create the ACME challenge webroot.", path=layout.webroot, mode="755")
    for app in s.app_list:
        ensure_certificate_paths(app, layout)
    # Its catch-all on port 80 would clash with onebox's default server.
    changes = [files.link(name="Remove Debian's default site.", path=f"{layout.nginx_dir}/sites-enabled/default",
                          present=False)]
    rendered = nginx_files(s, layout, version, cluster_nodes())  # an API on swarm workers: their connect timeout
    sites = {layout.site(app): app for app in s.app_list}
    # The server's files first: the sites use the variables they define.
    for dest, content in rendered.items():
        if dest not in sites:
            changes.append(checked_file(name=f"Write {dest} (checked by nginx -t).", dest=dest, content=content,
                                        check="nginx -t -q"))
    every_app = contract.AppFiles(contract.ANY_APP)
    changes += remove_unlisted(f"{layout.nginx_dir}/sites-enabled", every_app.site, set(sites), "the site")
    changes += remove_unlisted(layout.nginx_dir, every_app.upstream,
                               {upstream_file(app, layout) for app in s.app_list}, "the upstream")
    for dest, app in sites.items():
        live_slot = (host.get_fact(ReleaseState, app_dir=app.app_dir) or NOT_INSTALLED).slot
        changes.append(upload_once(
            name=f"Point nginx at app {app.app_name}'s live slot (onebox-release switches it from then on).",
            data=initial_upstream(app, live_slot).encode(), dest=upstream_file(app, layout)))
        changes.append(checked_file(name=f"Write {dest} (checked by nginx -t).", dest=dest, content=rendered[dest],
                                    check="nginx -t -q"))
    systemd.service(name="Run nginx at boot.", service="nginx", running=True, enabled=True)
    systemd.service(name="Reload nginx for the new configuration.", service="nginx", reloaded=True,
                    _if=any_changed(*changes))
