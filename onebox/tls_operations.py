"""Certificate operations: a bootstrap certificate, and certbot only when needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.facts.files import File

from onebox import contract
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
    fullchain, privkey = f"{cert_dir}/{contract.CERT_CHAIN}", f"{cert_dir}/{contract.CERT_KEY}"
    if host.get_fact(File, path=fullchain) is not None and host.get_fact(File, path=privkey) is not None:
        host.noop(f"{cert_dir} already holds a certificate")
        return
    boot = f"{cert_dir}/bootstrap"
    boot_chain, boot_key = f"{boot}/{contract.CERT_CHAIN}", f"{boot}/{contract.CERT_KEY}"
    sans = ",".join(f"DNS:{domain}" for domain in domains)
    # One command each: pyinfra runs them in order and stops at the first that fails.
    yield StringCommand("install", "-d", "-m", "700", QuoteString(boot))
    yield StringCommand("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", QuoteString(str(days)), "-subj", QuoteString(f"/CN={domains[0]}"),
                        "-addext", QuoteString(f"subjectAltName={sans}"),
                        "-keyout", QuoteString(boot_key), "-out", QuoteString(boot_chain))
    yield StringCommand("chmod", "600", QuoteString(boot_key))
    yield StringCommand("ln", "-sfn", QuoteString(boot_chain), QuoteString(fullchain))
    yield StringCommand("ln", "-sfn", QuoteString(boot_key), QuoteString(privkey))


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
    # env(1), not a shell assignment: a quoted `NAME=value` word is no assignment to the shell.
    env = ["env", QuoteString(f"REQUESTS_CA_BUNDLE={ca_bundle}")] if ca_bundle else []
    names = [bit for domain in domains for bit in ("-d", QuoteString(domain))]
    # --force-renewal: certbot alone would keep a valid certificate from another server.
    force = ["--force-renewal"] if lineage else []
    yield StringCommand(*env, "certbot", "certonly", "--webroot", "-w", QuoteString(webroot),
                        "--cert-name", QuoteString(cert_name), *names,
                        "--non-interactive", "--agree-tos", "-m", QuoteString(email), "--server", QuoteString(server),
                        *force, "--quiet")
