"""onebox's own pyinfra operations: each reads facts, yields commands, and calls
host.noop when the server already matches."""

from __future__ import annotations

import hashlib
import shlex
from datetime import UTC, datetime, timedelta
from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File, Sha1File

from onebox.facts import CertificateLineage, EnvFileKeys

BACKUP_DIR = "/var/lib/onebox/previous"
# certbot's own renewal threshold: a deploy renews no earlier than its timer would.
RENEW_BEFORE = timedelta(days=30)


@operation()
def checked_file(dest: str, content: str, check: str, mode: str = "644", user: str = "root", group: str = "root"):
    """Install a config file only if `check` accepts it; otherwise keep the previous file.

    The new file goes into place, `check` runs (it reads the live path, as `sshd -t`
    or `nginx -t` do), and on failure the previous file is restored and the
    operation fails with the checker's message: a running service never reloads an
    invalid config.

        checked_file(
            name="Harden sshd",
            dest="/etc/ssh/sshd_config.d/00-onebox.conf",
            content=rendered,
            check="sshd -t",
        )
    """
    data = content.encode()
    current = host.get_fact(File, path=dest)
    if (
        current
        and host.get_fact(Sha1File, path=dest) == hashlib.sha1(data).hexdigest()
        and (str(current["mode"]), current["user"], current["group"]) == (mode, user, group)
    ):
        host.noop(f"{dest} is up to date")
        return
    staged = f"{dest}.onebox-new"
    backup = f"{BACKUP_DIR}/{dest.strip('/').replace('/', '__')}"
    yield FileUploadCommand(BytesIO(data), staged)
    yield install_checked_script(staged, dest, backup, check, mode, user, group)


def install_checked_script(staged: str, dest: str, backup: str, check: str, mode: str, user: str, group: str) -> str:
    q_staged, q_dest, q_backup = (shlex.quote(path) for path in (staged, dest, backup))
    return "\n".join([
        "set -e",
        f"chmod {mode} {q_staged} && chown {user}:{group} {q_staged}",
        f"mkdir -p {BACKUP_DIR} && rm -f {q_backup}",
        f"if [ -e {q_dest} ]; then cp -p {q_dest} {q_backup}; fi",
        f"mv {q_staged} {q_dest}",
        f"if ! ({check}) >&2; then",
        f"  if [ -e {q_backup} ]; then mv {q_backup} {q_dest}; else rm -f {q_dest}; fi",
        f"  echo {shlex.quote(f'onebox: `{check}` rejected the new {dest}; the previous version was kept')} >&2",
        "  exit 1",
        "fi",
        f"rm -f {q_backup}",
    ])


@operation()
def generated_secrets(path: str, names: list[str]):
    """Generate each missing secret on the server, once; existing values are kept.

    Values come from the server's /dev/urandom and are written straight into a
    root-only file: they never pass through the controller or the output.

        generated_secrets(name="Generate secrets", path="/etc/onebox/generated.env",
                          names=["POSTGRES_PASSWORD", "APP_SECRET_KEY"])
    """
    present = set(host.get_fact(EnvFileKeys, path=path) or [])
    missing = [name for name in names if name not in present]
    if not missing:
        host.noop(f"all secrets in {path} exist")
        return
    random_hex = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n')"
    appends = "; ".join(f"printf '%s=%s\\n' {name} \"{random_hex}\"" for name in missing)
    yield f"umask 077 && {{ {appends}; }} >> {shlex.quote(path)} && chmod 600 {shlex.quote(path)}"


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
