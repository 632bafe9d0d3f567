"""The edge on any onebox server: nginx, TLS files, renewal. Read-only checks.

    pytest tests/host --hosts=ssh://root@IP --ssh-identity-file=KEY
"""

from __future__ import annotations

import pytest

from onebox.deploys.tls import CERTBOT_DROP_IN, DEPLOY_HOOK
from onebox.verify.edge import gixy_findings

# Private keys nginx and certbot keep: none may be readable by other users.
KEY_SEARCH = ("find /etc/letsencrypt /etc/onebox/tls -type f "
              r"\( -name 'privkey*.pem' -o -path '/etc/letsencrypt/keys/*' \) -perm /o=rwx 2>/dev/null; true")


def test_nginx_runs_and_starts_at_boot(host) -> None:
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled


def test_nginx_configuration_passes_its_own_check(host) -> None:
    result = host.run("nginx -t")
    assert result.rc == 0, result.stderr


def test_nginx_hides_its_version(host) -> None:
    assert "server_tokens off;" in host.check_output("nginx -T 2>/dev/null")


@pytest.mark.parametrize("port", [80, 443])
def test_http_and_https_are_listening(host, port: int) -> None:
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_debian_default_site_is_gone(host) -> None:
    assert not host.file("/etc/nginx/sites-enabled/default").exists


def test_gixy_finds_nothing_in_the_live_configuration(host) -> None:
    # gixy runs here on the controller: the server needs no extra tool.
    assert gixy_findings(host.check_output("nginx -T 2>/dev/null")) == []


def test_certbot_renewal_timer_is_enabled(host) -> None:
    timer = host.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running


def test_renewal_reloads_nginx(host) -> None:
    hook = host.file(DEPLOY_HOOK)
    assert hook.exists and hook.user == "root"
    assert hook.mode & 0o111, "the deploy hook must be executable or certbot skips it"
    assert "systemctl reload nginx" in hook.content_string


def test_custom_acme_trust_reaches_renewals(host) -> None:
    drop_in = host.file(CERTBOT_DROP_IN)
    if not drop_in.exists:
        pytest.skip("no custom ACME server configured on this host")
    bundle = drop_in.content_string.split("REQUESTS_CA_BUNDLE=")[1].split()[0]
    assert host.file(bundle).is_file


def test_nginx_serves_a_certificate_from_certbot(host, app) -> None:
    site = host.file(f"/etc/nginx/sites-enabled/{app.files.site}").content_string
    live = site.split("ssl_certificate ")[1].split(";")[0]
    # linked_to resolves every link: certbot's live/ ones end in its archive/.
    assert host.file(live).linked_to.startswith("/etc/letsencrypt/archive/"), f"{live} is not certbot's certificate"


def test_no_private_key_is_readable_by_others(host) -> None:
    assert host.check_output(KEY_SEARCH) == ""


def test_nginx_has_a_site_per_app_and_no_other(host, settings) -> None:
    sites = set(host.file("/etc/nginx/sites-enabled").listdir())
    assert sites == {"00-default.conf", *(app.files.site for app in settings.app_list)}
