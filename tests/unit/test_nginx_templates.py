"""The rendered nginx files say what the settings say, and nginx itself accepts them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_settings import valid

from onebox.nginx import Layout, distro_nginx, initial_upstream, nginx_files, upstream_file
from onebox.settings import Settings, validate_settings

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
    assert "zone=onebox_api:10m rate=7r/s;" in config
    assert "zone=onebox_strict:10m rate=2r/s;" in config
    assert "limit_req_status 429;" in config
    assert "limit_req zone=onebox_strict burst=3 nodelay;" in location(config, "^~ /login")
    assert "limit_req zone=onebox_api burst=13 nodelay;" in location(config.split("listen 443")[1], "/")


def test_health_paths_are_exempt_and_metrics_hidden() -> None:
    config = site(settings(app_health_path="/health", rate_limit_exempt_paths=["/livez"]))
    assert "location = /ready" not in config  # readiness touches the database: rate limited like the rest
    for path in ("/health", "/livez"):
        body = location(config, f"= {path}")
        assert "proxy_pass http://onebox_api;" in body
        assert "limit_req" not in body
    assert "return 404;" in location(config, "= /metrics")
    assert "limit_req" not in config.split("listen 443")[1].split("location ^~ /ws/")[0].split("location = /health")[0]


def test_websockets_upgrade_with_a_long_timeout() -> None:
    config = site(settings(websocket_paths=["/ws/", "/live/"], websocket_read_timeout=900))
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s+default upgrade;", config)
    for path in ("/ws/", "/live/"):
        body = location(config, f"^~ {path}")
        assert "proxy_set_header Upgrade $http_upgrade;" in body
        assert "proxy_set_header Connection $connection_upgrade;" in body
        assert "proxy_read_timeout 900s;" in body
        assert "proxy_buffering off;" in body


def test_forwarded_headers_are_overwritten_not_appended() -> None:
    config = site(settings())
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config
    assert "$proxy_add_x_forwarded_for" not in config
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in config
    assert "proxy_set_header X-Request-ID $onebox_request_id;" in config


def test_security_headers_and_proxy_limits() -> None:
    config = site(settings(hsts_max_age=123, proxy_client_max_body_size="3m", proxy_read_timeout=17, api_port=8123))
    assert 'add_header Strict-Transport-Security "max-age=123; includeSubDomains" always;' in config
    for header in ('X-Content-Type-Options "nosniff"', 'X-Frame-Options "DENY"', "Referrer-Policy"):
        assert f"add_header {header}" in config
    assert "client_max_body_size 3m;" in config
    assert "proxy_read_timeout 17s;" in config
    assert "include /etc/nginx/onebox-upstream.conf;" in config and "keepalive_timeout 4s;" in config
    assert "server 127.0.0.1:8123;" in initial_upstream(settings(api_port=8123))


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


def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    version = installed_nginx()
    s = settings()
    layout = Layout(nginx_dir=str(tmp_path / "nginx"), webroot=str(tmp_path / "acme"), tls_dir=str(tmp_path / "tls"),
                    log_dir=str(tmp_path), pid=str(tmp_path / "nginx.pid"),
                    local_socket=str(tmp_path / "api.sock"))
    for sub in ("conf.d", "sites-enabled", "modules-enabled"):
        (tmp_path / "nginx" / sub).mkdir(parents=True)
    shutil.copy("/etc/nginx/mime.types", tmp_path / "nginx" / "mime.types")
    cert_dir = Path(layout.cert_dir(s))
    cert_dir.mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=api.example.com", "-keyout", str(cert_dir / "privkey.pem"),
                    "-out", str(cert_dir / "fullchain.pem")], check=True, capture_output=True)
    for path, text in nginx_files(s, layout, version).items():
        Path(path).write_text(text)
    Path(upstream_file(layout)).write_text(initial_upstream(s))
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", f"{layout.nginx_dir}/nginx.conf"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr, result.stderr


def test_the_release_decides_the_http2_syntax() -> None:
    assert "http2 on;" in site(settings(), distro_nginx("debian", "13"))
    assert "listen 443 ssl http2;" in site(settings(), distro_nginx("ubuntu", "24.04"))
    assert distro_nginx("fedora", "40") is None
