"""Certificate operations: a bootstrap certificate, and certbot only when needed."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File

from onebox.facts import CertificateLineage

# certbot's own renewal threshold: a deploy renews no earlier than its timer would.
RENEW_BEFORE = timedelta(days=30)


@operation()
def self_signed_certificate(cert_dir: str, domains: list[str], days: int = 30):
    """Create a throwaway certificate at cert_dir/{fullchain,privkey}.pem when none is there.

    nginx cannot start a TLS server without a certificate, and the ACME challenge
    needs nginx running: this placeholder breaks that circle on a fresh server.
    The key is made on the server and never leaves it.

        self_signed_certificate(name="Bootstrap TLS", cert_dir="/etc/onebox/tls/api.example.com",
                                domains=["api.example.com"])
    """
    fullchain, privkey = f"{cert_dir}/fullchain.pem", f"{cert_dir}/privkey.pem"
    if host.get_fact(File, path=fullchain) is not None and host.get_fact(File, path=privkey) is not None:
        host.noop(f"{cert_dir} already holds a certificate")
        return
    boot = shlex.quote(f"{cert_dir}/bootstrap")
    sans = ",".join(f"DNS:{domain}" for domain in domains)
    yield (f"install -d -m 700 {boot} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
           f"-nodes -days {days} -subj /CN={domains[0]} -addext subjectAltName={sans} "
           f"-keyout {boot}/privkey.pem -out {boot}/fullchain.pem 2>/dev/null && chmod 600 {boot}/privkey.pem "
           f"&& ln -sfn {boot}/fullchain.pem {shlex.quote(fullchain)} "
           f"&& ln -sfn {boot}/privkey.pem {shlex.quote(privkey)}")


def issuance_reasons(lineage: dict | None, domains: list[str], server: str, now: datetime) -> list[str]:
    """Why the certificate must be (re)issued now; empty while the current one serves."""
    if lineage is None:
        return ["no certificate yet"]
    reasons = []
    if sorted(lineage["domains"]) != sorted(domains):
        reasons.append(f"it covers {lineage['domains']}, not {domains}")
    if lineage["server"] and lineage["server"] != server:
        reasons.append(f"it came from {lineage['server']}, not {server}")
    if lineage["not_after"] is None or lineage["not_after"] - now < RENEW_BEFORE:
        reasons.append("it expires within 30 days")
    return reasons


@operation()
def certbot_certificate(cert_name: str, domains: list[str], webroot: str, email: str, server: str,
                        ca_bundle: str | None = None):
    """Obtain a certificate by HTTP-01 over webroot only when the current lineage falls short.

    A re-run with a valid certificate for the same names and server asks the ACME
    server nothing (Let's Encrypt rate-limits duplicate certificates).

        certbot_certificate(name="Obtain the certificate", cert_name="api.example.com",
                            domains=["api.example.com"], webroot="/var/www/acme",
                            email="ops@example.com", server="https://acme-v02.api.letsencrypt.org/directory")
    """
    lineage = host.get_fact(CertificateLineage, cert_name=cert_name)
    reasons = issuance_reasons(lineage, domains, server, datetime.now(UTC))
    if not reasons:
        host.noop(f"the certificate {cert_name} is valid for {', '.join(domains)}")
        return
    env = f"REQUESTS_CA_BUNDLE={shlex.quote(ca_bundle)} " if ca_bundle else ""
    names = " ".join(f"-d {shlex.quote(domain)}" for domain in domains)
    # --force-renewal: certbot alone would keep a valid certificate from another server.
    force = " --force-renewal" if lineage else ""
    yield (f"{env}certbot certonly --webroot -w {shlex.quote(webroot)} --cert-name {shlex.quote(cert_name)} {names} "
           f"--non-interactive --agree-tos -m {shlex.quote(email)} --server {shlex.quote(server)}{force} --quiet")
