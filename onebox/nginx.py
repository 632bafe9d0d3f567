"""Where the edge's files live and what nginx is given: one source for the proxy and
TLS roles and for the tests that run `nginx -t` on the rendered files."""

from __future__ import annotations

from dataclasses import dataclass

from onebox import contract
from onebox.cluster import Node, api_nodes
from onebox.render import render
from onebox.settings import Settings
from onebox.settings.proxy import NGINX_WORKER_CONNECTIONS

# `listen ... http2` is deprecated from nginx 1.25.1 on, in favour of `http2 on;`.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)
# The nginx each supported release ships. Known from the release, not read from the
# server: apt's answer on a fresh server (empty lists) would differ from the next run's.
DISTRO_NGINX = {
    ("debian", "12"): (1, 22, 1), ("debian", "13"): (1, 26, 3),
    ("ubuntu", "22.04"): (1, 18, 0), ("ubuntu", "24.04"): (1, 24, 0),
}


def distro_nginx(distro_id: str, version_id: str) -> tuple[int, int, int] | None:
    """The nginx version a release ships; None (the syntax every version reads) if unknown."""
    return DISTRO_NGINX.get((distro_id, version_id))


@dataclass(frozen=True)
class Layout:
    """Paths on the server; tests relocate them under a temporary directory."""

    nginx_dir: str = contract.NGINX_DIR
    webroot: str = "/var/www/acme"  # ACME HTTP-01 challenges
    tls_dir: str = contract.TLS_DIR  # stable certificate paths nginx reads
    log_dir: str = "/var/log/nginx"
    pid: str = "/run/nginx.pid"
    run_dir: str = "/run"  # each app's local socket: its live release, for tools on the server
    maintenance_dir: str = contract.MAINTENANCE_DIR  # an app's flag file there turns 503s on, without a reload

    def cert_dir(self, s: Settings) -> str:
        """Holds fullchain.pem and privkey.pem: links to the bootstrap or certbot's files."""
        return contract.cert_dir(s.domains[0], self.tls_dir)

    def local_socket(self, s: Settings) -> str:
        return f"{self.run_dir}/{s.files.local_socket.rsplit('/', 1)[1]}"

    def site(self, s: Settings) -> str:
        return f"{self.nginx_dir}/sites-enabled/{s.files.site}"


SERVER_LAYOUT = Layout()  # the real paths; only tests use another


def nginx_files(s: Settings, layout: Layout, nginx_version: tuple[int, int, int] | None,
                nodes: list[Node] | None = None) -> dict[str, str]:
    """Destination path -> content of the server's nginx files and every app's site, in the order
    they can be installed one by one (nginx -t must pass after each); `nodes`: the cluster's."""
    shared = {
        "p": layout, "maintenance_page": contract.MAINTENANCE_PAGE, "retry_after": contract.MAINTENANCE_RETRY_AFTER,
        "http2_directive": nginx_version is not None and nginx_version >= HTTP2_DIRECTIVE_SINCE,
        "nginx_status": contract.NGINX_STATUS, "worker_connections": NGINX_WORKER_CONNECTIONS,
    }
    templates = ["nginx.conf", "conf.d/onebox-tls.conf", "conf.d/onebox-http.conf", "sites-enabled/00-default.conf"]
    rendered = {f"{layout.nginx_dir}/{name}": render(f"nginx/{name}.j2", s=s, **shared) for name in templates}
    for app in s.app_list:
        rendered[layout.site(app)] = render("nginx/sites-enabled/onebox.conf.j2", s=app, **shared,
                                            **site_context(app, layout, nodes or []))
    return rendered


def site_context(s: Settings, layout: Layout, nodes: list[Node]) -> dict[str, str]:
    maintenance_dir = s.files.maintenance_dir(layout.maintenance_dir)
    return {
        "prefix": s.files.nginx_prefix, "cert_dir": layout.cert_dir(s), "upstream": upstream_file(s, layout),
        "maintenance_dir": maintenance_dir, "maintenance_flag": f"{maintenance_dir}/{contract.MAINTENANCE_FLAG}",
        "local_socket": layout.local_socket(s), "connect_timeout": connect_timeout(s, nodes),
    }


def connect_timeout(s: Settings, nodes: list[Node]) -> str:
    """nginx's proxy_connect_timeout to the app's API. On swarm workers (the nodes the release spec
    names, api_nodes), milliseconds: a dead node that drops the connect costs each request sent
    to it that long before nginx tries the next. On this server, 127.0.0.1 refuses at once."""
    return f"{s.cluster_connect_timeout_ms}ms" if api_nodes(s, nodes) else f"{s.proxy_connect_timeout}s"


def upstream_file(s: Settings, layout: Layout) -> str:
    return contract.upstream_path(layout.nginx_dir, s.files.key)


def initial_upstream(s: Settings, live_slot: str | None = None) -> str:
    """The upstream before onebox-release owns the file. Nothing live yet: the stable address the
    kernel's map will send to the first release's slot, so that release reloads nothing. A release
    live (the server of an older onebox whose file went missing): its slot, as that version wrote
    it, until onebox-release converts the file at the next switch."""
    if live_slot not in contract.SLOTS:
        return contract.switched_upstream_text(s.api_port)
    return contract.upstream_text(live_slot, contract.slot_port(s.slot_ports, live_slot))
