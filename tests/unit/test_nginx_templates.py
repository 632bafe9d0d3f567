"""The rendered nginx files say what the settings say, and nginx itself accepts them."""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_settings import valid

from onebox import contract
from onebox.nginx import Layout, distro_nginx, initial_upstream, nginx_files, upstream_file
from onebox.settings import Settings, validate_settings
from onebox.settings.proxy import CLIENT_CONNECTIONS_CEILING
from onebox.verify.edge import gixy_findings

NEW_NGINX = (1, 26, 3)


def settings(**overrides: object) -> Settings:
    return validate_settings(valid(domains=["api.example.com", "www.example.com"], app_image_source="registry",
                                   registry_server="ghcr.io", **overrides))


def rendered(s: Settings, version: tuple[int, int, int] | None = NEW_NGINX) -> dict[str, str]:
    layout = Layout()
    return {path.removeprefix(layout.nginx_dir + "/"): text for path, text in nginx_files(s, layout, version).items()}


def site(s: Settings, version: tuple[int, int, int] | None = NEW_NGINX) -> str:
    return rendered(s, version)["sites-enabled/onebox.conf"]


def location(config: str, match: str) -> str:
    """The body of the location block opened by `location {match} {`."""
    start = config.index(f"location {match} {{")
    return config[start:config.index("\n    }", start)]


def test_every_file_carries_the_managed_header() -> None:
    for name, text in rendered(settings()).items():
        assert text.startswith("# managed by onebox"), name


def test_plain_http_serves_acme_challenges_and_redirects_the_rest() -> None:
    config = site(settings())
    assert "root /var/www/acme;" in location(config, "^~ /.well-known/acme-challenge/")
    assert "return 301 https://$host$request_uri;" in location(config, "/")
    assert "server_name api.example.com www.example.com;" in config


def test_rate_limits_come_from_the_settings() -> None:
    config = site(settings(rate_limit_rps=7, rate_limit_burst=13, strict_rate_limit_rps=2,
                           strict_rate_limit_burst=3, strict_rate_limit_paths=["/login"]))
    assert "limit_req_zone $onebox_client zone=onebox_req:10m rate=7r/s;" in config
    assert "limit_req_zone $onebox_client zone=onebox_req_strict:10m rate=2r/s;" in config
    assert "limit_req_status 429;" in config
    assert "limit_req zone=onebox_req_strict burst=3 nodelay;" in location(config, "^~ /login")
    assert "limit_req zone=onebox_req burst=13 nodelay;" in location(config.split("listen 443")[1], "/")
    # Per client, not per address: an IPv6 /64 would have 2^64 limits otherwise (issue 29).
    assert re.findall(r"^limit_\w+_zone (\S+)", config, re.M) == ["$onebox_client"] * 3


def servers(config: str) -> tuple[str, str, str]:
    """The site's port 80, port 443 and local socket server blocks."""
    _, http, https, local = config.split("\nserver {")
    return http, https, local


def test_each_client_holds_a_bounded_number_of_requests() -> None:
    # limit_req counts a WebSocket's handshake, not the hour it then stays open (issue 29).
    files = rendered(settings(max_connections_per_client=7, websocket_paths=["/ws/"], rate_limit_exempt_paths=["/livez"]))
    config = files["sites-enabled/onebox.conf"]
    assert "limit_conn_zone $onebox_client zone=onebox_conn:10m;" in config
    http, https, local = servers(config)
    for server in (http, https):
        # At server level, before any location: every location inherits it, WebSockets and health paths too.
        assert server.index("    limit_conn onebox_conn 7;") < server.index("    location ")
        assert "limit_conn_status 429;" in server
    # No location replaces it with a limit of its own.
    assert re.findall(r"^ *limit_conn .*$", config, re.M) == ["    limit_conn onebox_conn 7;"] * 2
    assert "limit_conn" not in local  # the server's own tools
    # The most one client may hold (two connections a request) is a quarter of one worker's.
    workers = int(re.search(r"worker_connections (\d+);", files["nginx.conf"])[1])  # type: ignore[index]
    assert workers // 4 >= 2 * CLIENT_CONNECTIONS_CEILING
    assert f"worker_rlimit_nofile {2 * workers};" in files["nginx.conf"]


def test_health_paths_are_exempt_and_metrics_hidden() -> None:
    config = site(settings(app_health_path="/health", rate_limit_exempt_paths=["/livez"]))
    assert "location = /ready" not in config  # readiness touches the database: rate limited like the rest
    for path in ("/health", "/livez"):
        body = location(config, f"= {path}")
        assert "proxy_pass http://onebox_api;" in body
        assert "limit_req" not in body
    assert "return 404;" in location(config, "= /metrics")
    assert "limit_req zone" not in config.split("listen 443")[1].split("location ^~ /ws/")[0].split("location = /health")[0]


def test_websockets_upgrade_with_a_long_timeout() -> None:
    files = rendered(settings(websocket_paths=["/ws/", "/live/"], websocket_read_timeout=900))
    config = files["sites-enabled/onebox.conf"]
    assert re.search(r"map \$http_upgrade \$onebox_connection \{\s+default upgrade;", files["conf.d/onebox-http.conf"])
    for path in ("/ws/", "/live/"):
        body = location(config, f"^~ {path}")
        assert "proxy_set_header Upgrade $http_upgrade;" in body
        assert "proxy_set_header Connection $onebox_connection;" in body
        assert "proxy_read_timeout 900s;" in body
        assert "proxy_buffering off;" in body


def test_forwarded_headers_are_overwritten_not_appended() -> None:
    config = site(settings())
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config
    assert "$proxy_add_x_forwarded_for" not in config
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in config
    assert "proxy_set_header X-Request-ID $onebox_rid;" in config


def test_security_headers_and_proxy_limits() -> None:
    config = site(settings(hsts_max_age=123, proxy_client_max_body_size="3m", proxy_read_timeout=17, api_port=8123))
    assert 'add_header Strict-Transport-Security "max-age=123; includeSubDomains" always;' in config
    for header in ('X-Content-Type-Options "nosniff"', 'X-Frame-Options "DENY"', "Referrer-Policy"):
        assert f"add_header {header}" in config
    assert "client_max_body_size 3m;" in config
    assert "proxy_read_timeout 17s;" in config
    assert "include /etc/nginx/onebox-upstream.conf;" in config and "keepalive_timeout 4s;" in config
    assert "server 127.100.0.1:8123;" in initial_upstream(settings(api_port=8123))


def test_tls_is_mozilla_intermediate_at_http_level() -> None:
    files = rendered(settings())
    tls = files["conf.d/onebox-tls.conf"]
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in tls
    assert "ssl_ecdh_curve X25519:prime256v1:secp384r1;" in tls
    assert "ssl_session_tickets off;" in tls
    assert all(cipher.startswith("ECDHE-") for cipher in re.search(r"ssl_ciphers (.*);", tls)[1].split(":"))
    assert "server_tokens off;" in files["nginx.conf"]


def test_unknown_hosts_get_the_default_server() -> None:
    default = rendered(settings())["sites-enabled/00-default.conf"]
    assert "listen 80 default_server;" in default and "return 444;" in default
    assert "listen 443 ssl default_server;" in default and "ssl_reject_handshake on;" in default


def test_http2_syntax_follows_the_nginx_version() -> None:
    assert "http2 on;" in site(settings(), (1, 26, 3))
    assert "listen 443 ssl http2;" in site(settings(), (1, 22, 1))
    assert "listen 443 ssl http2;" in site(settings(), None)  # unknown: the syntax every version reads


def installed_nginx() -> tuple[int, int, int]:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed on this machine (apt-get install nginx-light)")
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    return tuple(int(part) for part in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version).groups())  # type: ignore[return-value, union-attr]


TWO_APPS = {"apps": {"api": {"domains": ["api.example.com"]},
                     "jobs": {"domains": ["jobs.example.com"], "api_port": 8010, "docker_network_subnet": "172.30.1.0/24",
                              "rate_limit_rps": 3}}}


@pytest.mark.parametrize("overrides", [{}, TWO_APPS], ids=["one app", "two apps"])
def test_nginx_accepts_the_rendered_configuration(tmp_path: Path, overrides: dict) -> None:
    version = installed_nginx()
    s = settings(**overrides)
    layout = Layout(nginx_dir=str(tmp_path / "nginx"), webroot=str(tmp_path / "acme"), tls_dir=str(tmp_path / "tls"),
                    log_dir=str(tmp_path), pid=str(tmp_path / "nginx.pid"), run_dir=str(tmp_path))
    for sub in ("conf.d", "sites-enabled", "modules-enabled"):
        (tmp_path / "nginx" / sub).mkdir(parents=True)
    shutil.copy("/etc/nginx/mime.types", tmp_path / "nginx" / "mime.types")
    for app in s.app_list:
        cert_dir = Path(layout.cert_dir(app))
        cert_dir.mkdir(parents=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-days", "1", "-subj", f"/CN={app.domains[0]}", "-keyout", str(cert_dir / "privkey.pem"),
                        "-out", str(cert_dir / "fullchain.pem")], check=True, capture_output=True)
        Path(upstream_file(app, layout)).write_text(initial_upstream(app))
    for path, text in nginx_files(s, layout, version).items():
        Path(path).write_text(text)
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", f"{layout.nginx_dir}/nginx.conf"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr, result.stderr
    # gixy, as the host check runs it on the server: nothing found (the loopback stub_status too).
    dump = subprocess.run(["nginx", "-T", "-p", str(tmp_path), "-c", f"{layout.nginx_dir}/nginx.conf"],
                          capture_output=True, text=True).stdout
    assert gixy_findings(dump) == []


@contextmanager
def nginx_serving(tmp_path: Path, http: str) -> Iterator[Path]:
    """nginx in the foreground with `http` as its http block; yields the unix socket it listens on
    ({socket} in `http`), where it takes the client's address from the X-Client header."""
    installed_nginx()
    if "http_realip_module" not in subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr:
        pytest.skip("this nginx lacks the realip module, which stands in for clients' addresses")
    listener = tmp_path / "nginx.sock"
    # Its own temporary directories: the built-in ones are the system nginx's.
    temp_paths = "".join(f"{kind}_temp_path {tmp_path}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"daemon off;\nmaster_process off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                    f"events {{}}\nhttp {{\naccess_log off;\n{temp_paths}{http.replace('{socket}', str(listener))}\n}}\n")
    process = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(conf)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not listener.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.stderr else ""
            time.sleep(0.05)
        yield listener
    finally:
        process.terminate()
        process.wait(10)


def request(listener: Path, client: str, path: str) -> socket.socket:
    """A request to nginx as if from address `client`; read its answer with `answer`."""
    conn = socket.socket(socket.AF_UNIX)
    conn.settimeout(10)
    conn.connect(str(listener))
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nX-Client: {client}\r\nConnection: close\r\n\r\n".encode())
    return conn


def answer(conn: socket.socket) -> tuple[int, bytes]:
    """Status and body of the response on `conn`, read to its end."""
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    conn.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# A client's address -> the network that shares its limits.
CLIENT_NETWORKS = {
    "2001:db8:1:2::5": "2001:db8:1:2::/64",
    "2001:db8:1:2:aaaa::1": "2001:db8:1:2::/64",
    "2001:db8:1:2:ffff:ffff:ffff:ffff": "2001:db8:1:2::/64",
    "2001:db8::1": "2001:db8::/64",  # printed compressed by nginx: the first four groups are not its text's
    "::1": "::/64",
    "2001:db8:a0a:a::1": "2001:db8:a0a:a::/64",  # newline bytes (0x0a) in the prefix
    "192.0.2.7": "192.0.2.7/32",
    "192.0.2.10": "192.0.2.10/32",  # a newline byte in an IPv4 address
}


def test_the_client_key_is_an_ipv4_address_or_an_ipv6_64(tmp_path: Path) -> None:
    shared = rendered(settings())["conf.d/onebox-http.conf"]
    server = ("server {\n listen unix:{socket};\n set_real_ip_from unix:;\n real_ip_header X-Client;\n"
              " location / { return 200 $onebox_client; }\n}\n")
    with nginx_serving(tmp_path, shared + server) as listener:
        for client, network in CLIENT_NETWORKS.items():
            net = ipaddress.ip_network(network)
            assert answer(request(listener, client, "/")) == (200, net.network_address.packed[:net.prefixlen // 8]), client


def test_one_ipv6_64_shares_one_connection_limit(tmp_path: Path) -> None:
    """The site's own limit_conn lines, with a limit of one and an upstream that never answers:
    a request held open (an idle WebSocket) takes the client's, and its whole /64's, one place."""
    files = rendered(settings(max_connections_per_client=1))
    config = files["sites-enabled/onebox.conf"]
    zone = re.search(r"^limit_conn_zone .*$", config, re.M)[0]  # type: ignore[index]
    limits = [line for line in servers(config)[1].splitlines() if line.strip().startswith("limit_conn")]
    assert limits == ["    limit_conn onebox_conn 1;", "    limit_conn_status 429;"]
    upstream = socket.socket(socket.AF_UNIX)
    upstream.settimeout(10)
    upstream.bind(str(tmp_path / "upstream.sock"))
    upstream.listen(16)
    server = ("server {\n listen unix:{socket};\n set_real_ip_from unix:;\n real_ip_header X-Client;\n"
              + "\n".join(limits) + f"\n location / {{ proxy_pass http://unix:{tmp_path}/upstream.sock; }}\n}}\n")
    with nginx_serving(tmp_path, files["conf.d/onebox-http.conf"] + zone + "\n" + server) as listener, upstream:
        held = request(listener, "2001:db8:1:2::5", "/held")
        first_upstream, _ = upstream.accept()  # nginx passed it on: it holds the client's place
        assert answer(request(listener, "2001:db8:1:2:aaaa::1", "/held"))[0] == 429  # the same /64
        other_64 = request(listener, "2001:db8:1:3::5", "/held")
        upstream.accept()[0].close()  # another /64 is served
        assert answer(other_64)[0] == 502
        v4 = request(listener, "192.0.2.7", "/held")
        held_v4, _ = upstream.accept()
        assert answer(request(listener, "192.0.2.7", "/held"))[0] == 429
        held_v4.close()
        assert answer(v4)[0] == 502
        first_upstream.close()  # the held request ends: its /64 has its place back
        assert answer(held)[0] == 502
        again = request(listener, "2001:db8:1:2:aaaa::1", "/held")
        upstream.accept()[0].close()
        assert answer(again)[0] == 502


def test_the_release_decides_the_http2_syntax() -> None:
    assert "http2 on;" in site(settings(), distro_nginx("debian", "13"))
    assert "listen 443 ssl http2;" in site(settings(), distro_nginx("ubuntu", "24.04"))
    assert distro_nginx("fedora", "40") is None


def test_each_app_has_its_own_site_upstream_zones_socket_and_maintenance_flag() -> None:
    files = rendered(settings(**TWO_APPS))
    api, jobs = files["sites-enabled/onebox-api.conf"], files["sites-enabled/onebox-jobs.conf"]
    assert "sites-enabled/onebox.conf" not in files
    assert "server_name jobs.example.com;" in jobs and "api.example.com" not in jobs
    assert "upstream onebox_jobs_api {" in jobs and "include /etc/nginx/onebox-upstream-jobs.conf;" in jobs
    assert "zone=onebox_jobs_req:10m rate=3r/s;" in jobs and "zone=onebox_api_req:10m rate=10r/s;" in api
    assert "zone=onebox_jobs_conn:10m;" in jobs and "zone=onebox_api_conn:10m;" in api
    assert "map $binary_remote_addr $onebox_client" in files["conf.d/onebox-http.conf"]
    assert "listen unix:/run/onebox-api-jobs.sock;" in jobs
    assert "if (-f /var/lib/onebox/maintenance/jobs/on)" in jobs and "/maintenance/api/on" in api
    assert "ssl_certificate /etc/onebox/tls/jobs.example.com/fullchain.pem;" in jobs
    assert "map $http_upgrade $onebox_connection" in files["conf.d/onebox-http.conf"]
    assert "map " not in api  # the shared variables are defined once, for every site


def test_the_initial_upstream_keeps_a_live_green_slot_and_a_fresh_server_starts_switched() -> None:
    s = settings(api_port=8100)
    assert "server 127.0.0.1:8101;" in initial_upstream(s, "green")
    assert "server 127.0.0.1:8100;" in initial_upstream(s, "blue")
    # Nothing live: what onebox-release's switch writes itself, so the first release reloads nothing.
    assert initial_upstream(s, None) == contract.switched_upstream_text(8100)
    assert contract.upstream_port(initial_upstream(s, None)) is None


def test_an_apps_own_metrics_path_is_hidden_from_the_internet_too() -> None:
    config = site(settings(app_metrics_path="/internal/prometheus"))
    assert "return 404;" in location(config, "= /internal/prometheus")
    assert "location = /internal/prometheus" not in site(settings(app_metrics_path=None))
