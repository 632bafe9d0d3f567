"""Certificates: a self-signed placeholder on the first run, then certbot by HTTP-01
over webroot, renewed by certbot's timer with an nginx reload."""

from __future__ import annotations

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from onebox import contract
from onebox.nginx import SERVER_LAYOUT
from onebox.operations import install_packages
from onebox.render import render
from onebox.settings import Settings
from onebox.tls_operations import certbot_certificate

ACME_DIRECTORIES = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
CA_BUNDLE = f"{contract.ETC_DIR}/acme-ca.pem"
DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/onebox-reload-nginx"
CERTBOT_DROP_IN = "/etc/systemd/system/certbot.service.d/onebox-acme-ca.conf"


def acme_directory(s: Settings) -> str:
    return s.acme_directory_url if s.acme_server == "custom" else ACME_DIRECTORIES[s.acme_server]  # type: ignore[return-value]


@deploy("Issue TLS certificates")
def issue_certificates(s: Settings) -> None:
    install_packages(name="Install certbot from the distribution.", packages=["certbot"])
    ca_bundle = trust_custom_acme_server(s)
    files.put(name="Reload nginx after each renewal (certbot deploy hook).",
              src=StringIO(render("letsencrypt/renewal-hooks/deploy/onebox-reload-nginx.j2")),
              dest=DEPLOY_HOOK, mode="755")
    systemd.service(name="Run certbot's renewal timer.", service="certbot.timer", running=True, enabled=True)
    changes = []
    for app in s.app_list:  # one certificate per app, for all of its domains (named after the first)
        name = app.domains[0]
        changes.append(certbot_certificate(
            name=f"Obtain a certificate for {', '.join(app.domains)} when the current one falls short.",
            cert_name=name, domains=app.domains, webroot=SERVER_LAYOUT.webroot, email=s.letsencrypt_email,
            server=acme_directory(s), ca_bundle=ca_bundle,
        ))
        # certbot's live/ links follow each renewal, so nginx's path never changes again.
        changes += [
            files.link(name=f"Point nginx's {part} for {name} at certbot's.", path=f"{SERVER_LAYOUT.cert_dir(app)}/{part}",
                       target=f"/etc/letsencrypt/live/{name}/{part}")
            for part in (contract.CERT_CHAIN, contract.CERT_KEY)
        ]
    systemd.service(name="Reload nginx for the new certificates.", service="nginx", reloaded=True,
                    _if=any_changed(*changes))


def trust_custom_acme_server(s: Settings) -> str | None:
    """Upload the custom ACME server's CA and hand it to certbot's renewals too."""
    bundle = s.acme_ca_bundle if s.acme_server == "custom" else None
    if bundle:
        files.directory(name=f"Create {contract.ETC_DIR}.", path=contract.ETC_DIR, mode="755")
        files.put(name="Upload the CA bundle of the custom ACME server.", src=bundle,
                  dest=CA_BUNDLE, mode="644")
        drop_in = files.put(name="Make certbot's renewals trust the custom ACME server.",
                            src=StringIO(render("systemd/certbot-acme-ca.conf.j2", ca_bundle=CA_BUNDLE)),
                            dest=CERTBOT_DROP_IN, create_remote_dir=True)
    else:
        drop_in = files.file(name="Remove the custom ACME trust from certbot's renewals.", path=CERTBOT_DROP_IN,
                             present=False)
    systemd.daemon_reload(name="Reload systemd for certbot's settings.", _if=drop_in.did_change)
    return CA_BUNDLE if bundle else None
