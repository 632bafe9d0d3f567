"""nginx in front of the API: TLS, security headers, rate limits, WebSockets."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from deploys.docker import distro
from deploys.tls import ensure_certificate_paths
from onebox.nginx import SERVER_LAYOUT, distro_nginx, initial_upstream, nginx_files, upstream_file
from onebox.operations import checked_file, upload_once
from onebox.settings import Settings


@deploy("Configure the reverse proxy")
def configure_proxy(s: Settings) -> None:
    distro_id, version_id = distro()
    version = distro_nginx(distro_id, version_id)
    apt.packages(name="Install nginx from the distribution.", packages=["nginx", "openssl"])
    files.directory(name="Create the ACME challenge webroot.", path=SERVER_LAYOUT.webroot, mode="755")
    ensure_certificate_paths(s, SERVER_LAYOUT)
    # Its catch-all on port 80 would clash with onebox's default server.
    stock_site = files.link(name="Remove Debian's default site.", path=f"{SERVER_LAYOUT.nginx_dir}/sites-enabled/default",
                            present=False)
    changes = [stock_site, upload_once(
        name="Point nginx at the app's first slot (until onebox-release switches it).",
        data=initial_upstream(s).encode(), dest=upstream_file(SERVER_LAYOUT))]
    for dest, content in nginx_files(s, SERVER_LAYOUT, version).items():
        changes.append(checked_file(name=f"Write {dest} (checked by nginx -t).", dest=dest, content=content,
                                    check="nginx -t -q"))
    systemd.service(name="Run nginx at boot.", service="nginx", running=True, enabled=True)
    systemd.service(name="Reload nginx for the new configuration.", service="nginx", reloaded=True,
                    _if=any_changed(*changes))
