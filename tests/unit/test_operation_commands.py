"""Every custom operation, pyinfra fixture style: facts in, the exact commands (or the noop) out.

Each case is what a pyinfra operation fixture holds: the operation's arguments, the
facts the server reports (a fact with arguments is keyed "name=value", as pyinfra's
fixtures do; a fact the case does not list fails the test), and then either the exact
commands or the noop description. Commands are shown as the server's shell gets them:
a StringCommand as its raw text (with its connector arguments, if any), an upload as
("upload", data, dest, temp file), a controller-side function as ("function", name, args).

Quoting is checked twice: hostile values come back from shlex.split as the same words,
and the shell-syntax commands (onebox.shell.raw_shell) run for real in a temp dir.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyinfra.api import FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.facts.files import File, Sha1File

import onebox.images
import onebox.operations
import onebox.tls_operations
from onebox.deploys.base import sysctl_check
from onebox.facts import (
    AideDatabase,
    CertificateLineage,
    DockerImageIds,
    InContainer,
    PendingSecurityUpdates,
    PrivateFileFingerprint,
    StartPolicy,
)
from onebox.images import images_from_controller
from onebox.operations import (
    aide_baseline,
    checked_file,
    fingerprint,
    install_packages,
    private_file,
    remove_start_policy,
    security_updates,
    upload_once,
)
from onebox.render import render
from onebox.tls_operations import certbot_certificate, self_signed_certificate

ROOT = Path(__file__).resolve().parents[2]
TEMP_DIR = "/home/deploy/.onebox-tmp"  # the deploy's _temp_dir (onebox.inventory.use_private_upload_dir)
SALT = "5a" * 16
ACME = "https://acme-v02.api.letsencrypt.org/directory"


class FixtureHost:
    """pyinfra's `host` as an operation sees it: facts from the fixture, noops recorded."""

    name = "fixture-host"
    current_op_global_arguments = {"_temp_dir": TEMP_DIR}

    def __init__(self, facts: dict) -> None:
        self.facts = facts
        self.noops: list[str] = []

    def get_fact(self, cls, **kwargs):  # noqa: ANN001, ANN201 - pyinfra's signature
        if cls not in self.facts:
            raise AssertionError(f"the fixture has no {cls.__name__} fact")
        if not kwargs:
            return self.facts[cls]
        key = ", ".join(f"{name}={value}" for name, value in sorted(kwargs.items()))
        if key not in self.facts[cls]:
            raise AssertionError(f"the fixture has no {cls.__name__} fact for {key}")
        return self.facts[cls][key]

    def get_temp_filename(self, hash_key: str, temp_directory: str | None = None) -> str:
        return f"{temp_directory}/pyinfra-{hashlib.sha1(hash_key.encode()).hexdigest()}"

    def noop(self, reason: str) -> None:
        self.noops.append(reason)


def shown(command: Any) -> Any:
    if isinstance(command, str):
        return command
    if isinstance(command, StringCommand):
        text = command.get_raw_value()
        return (text, command.connector_arguments) if command.connector_arguments else text
    if isinstance(command, FileUploadCommand):
        assert isinstance(command.src, BytesIO)
        return ("upload", command.src.getvalue(), command.dest, command.remote_temp_filename)
    if isinstance(command, FunctionCommand):
        return ("function", command.function.__name__, command.args)
    raise AssertionError(f"unexpected command {command!r}")


def temp_for(dest: str) -> str:
    return f"{TEMP_DIR}/pyinfra-{hashlib.sha1(dest.encode()).hexdigest()}"


def run(operation, module, facts: dict, monkeypatch: pytest.MonkeyPatch, patches: dict | None = None,  # noqa: ANN001
        **kwargs) -> tuple[list, list[str]]:
    fake = FixtureHost(facts)
    monkeypatch.setattr(module, "host", fake)
    for name, value in (patches or {}).items():  # what the operation calls besides facts (another operation)
        monkeypatch.setattr(module, name, value)
    monkeypatch.setattr(onebox.operations.secrets, "token_hex", lambda _: SALT)
    return [shown(command) for command in operation._inner(**kwargs)], fake.noops


@dataclass
class Case:
    id: str
    operation: Any
    module: Any
    kwargs: dict
    facts: dict
    commands: list = field(default_factory=list)
    noop: str | None = None
    patches: dict = field(default_factory=dict)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


SSHD = "/etc/ssh/sshd_config.d/00-onebox.conf"
SSHD_STAGED = "/var/lib/onebox/staging/etc__ssh__sshd_config.d__00-onebox.conf"
SSHD_BACKUP = "/var/lib/onebox/previous/etc__ssh__sshd_config.d__00-onebox.conf"
SSHD_SCRIPT = "\n".join([
    "set -e",
    f"chmod 600 {SSHD_STAGED} && chown root:root {SSHD_STAGED}",
    f"rm -f {SSHD_BACKUP}",
    f"if [ -e {SSHD} ]; then cp -p {SSHD} {SSHD_BACKUP}; fi",
    f"mv {SSHD_STAGED} {SSHD}",
    "if ! (sshd -t) >&2; then",
    f"  if [ -e {SSHD_BACKUP} ]; then mv {SSHD_BACKUP} {SSHD}; else rm -f {SSHD}; fi",
    f"  echo 'onebox: `sshd -t` rejected the new {SSHD}; the previous version was kept' >&2",
    "  exit 1",
    "fi",
    f"rm -f {SSHD_BACKUP}",
])
SSHD_CHANGED = [
    "install -d -m 700 /var/lib/onebox/staging /var/lib/onebox/previous",
    ("upload", b"Port 22\n", SSHD_STAGED, temp_for(SSHD_STAGED)),
    SSHD_SCRIPT,
]
SSHD_ARGS = {"dest": SSHD, "content": "Port 22\n", "check": "sshd -t", "mode": "600"}

SECRETS = "/opt/onebox/secrets/supplied.json"
SECRET = '{"SECRET_KEY": "s3cr3t-value-of-some-length"}'
OLD_SALT = "01" * 16


def private_script(salt: str) -> str:
    wanted = f"{salt}:{fingerprint(SECRET, salt)}"
    return ("sh -c 'umask 077 && mkdir -p /opt/onebox/secrets && cat > /opt/onebox/secrets/supplied.json.tmp "
            "&& mv /opt/onebox/secrets/supplied.json.tmp /opt/onebox/secrets/supplied.json "
            f"&& printf '\"'\"'%s\\n'\"'\"' {wanted} > /opt/onebox/secrets/supplied.json.fingerprint'")


TLS = "/etc/onebox/tls/api.example.com"
BOOT = f"{TLS}/bootstrap"
SELF_SIGNED_ARGS = {"cert_dir": TLS, "domains": ["api.example.com", "www.example.com"]}
SELF_SIGNED = [
    f"install -d -m 700 {BOOT}",
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=api.example.com"
    f" -addext subjectAltName=DNS:api.example.com,DNS:www.example.com -keyout {BOOT}/privkey.pem -out {BOOT}/fullchain.pem",
    f"chmod 600 {BOOT}/privkey.pem",
    f"ln -sfn {BOOT}/fullchain.pem {TLS}/fullchain.pem",
    f"ln -sfn {BOOT}/privkey.pem {TLS}/privkey.pem",
]

CERTBOT_ARGS = {"cert_name": "api.example.com", "domains": ["api.example.com", "www.example.com"],
                "webroot": "/var/www/acme", "email": "ops@example.com", "server": ACME}
CERTBOT = ("certbot certonly --webroot -w /var/www/acme --cert-name api.example.com -d api.example.com -d www.example.com"
           f" --non-interactive --agree-tos -m ops@example.com --server {ACME}")
LATER = datetime.now(UTC) + timedelta(days=80)


def lineage(**changes: Any) -> dict:
    return {"cert_name=api.example.com": {"domains": ["www.example.com", "api.example.com"], "not_after": LATER,
                                          "serial": "0A1B", "server": ACME, **changes}}


IMAGES = {"onebox-test/postgres:17": "sha256:aaa", "onebox-test/redis:7": "sha256:bbb"}
IMAGES_KEY = "references=('onebox-test/postgres:17', 'onebox-test/redis:7')"
ARCHIVE = f"/var/lib/onebox/image-archives/{SALT}.tar.gz"  # a name of its own each run (token_hex)
MAKE_ARCHIVE_DIR = "install -d -m 700 -o root -g root /var/lib/onebox/image-archives"
LOAD = [f"docker load -q -i {ARCHIVE}; loaded=$?; rm -f {ARCHIVE}; exit $loaded"]

APT_UPGRADE = ("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade -o DPkg::Lock::Timeout=300"
               " -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold")

POLICY = "/usr/sbin/policy-rc.d"
APT_INSTALL = ('DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::="--force-confdef"'
               ' -o Dpkg::Options::="--force-confold" install --no-install-recommends prometheus')


def apt_stub(*commands: str) -> SimpleNamespace:
    """pyinfra's apt.packages as install_packages calls it: its commands, or its noop when installed."""
    def inner(packages: list[str], no_recommends: bool):  # noqa: ANN202
        assert (packages, no_recommends) == (["prometheus"], True)
        if not commands:
            onebox.operations.host.noop("package prometheus is installed")
        yield from commands
    return SimpleNamespace(packages=SimpleNamespace(_inner=inner))


INSTALL_ARGS = {"packages": ["prometheus"], "no_recommends": True}
HELD_INSTALL = [
    ("upload", render("apt/policy-rc.d.j2").encode(), f"{POLICY}.onebox-new", temp_for(f"{POLICY}.onebox-new")),
    f"chmod 755 {POLICY}.onebox-new",
    f"mv -f {POLICY}.onebox-new {POLICY}",
    f"export ONEBOX_HOLD_NEW_SERVICES=1 && {APT_INSTALL}; installed=$?; rm -f {POLICY}; exit $installed",
]

CASES = [
    # checked_file: noop when content, mode and owner match; else stage, upload, swap-and-check.
    Case("checked_file-noop", checked_file, onebox.operations, SSHD_ARGS,
         {File: {f"path={SSHD}": {"mode": 600, "user": "root", "group": "root"}}, Sha1File: {f"path={SSHD}": sha1("Port 22\n")}},
         noop=f"{SSHD} is up to date"),
    Case("checked_file-new", checked_file, onebox.operations, SSHD_ARGS, {File: {f"path={SSHD}": None}},
         commands=SSHD_CHANGED),
    Case("checked_file-content-changed", checked_file, onebox.operations, SSHD_ARGS,
         {File: {f"path={SSHD}": {"mode": 600, "user": "root", "group": "root"}},
          Sha1File: {f"path={SSHD}": sha1("Port 2222\n")}},
         commands=SSHD_CHANGED),
    Case("checked_file-mode-changed", checked_file, onebox.operations, SSHD_ARGS,
         {File: {f"path={SSHD}": {"mode": 644, "user": "root", "group": "root"}}, Sha1File: {f"path={SSHD}": sha1("Port 22\n")}},
         commands=SSHD_CHANGED),
    # private_file: noop when the salted fingerprint matches; else stream through stdin, reusing the salt.
    Case("private_file-noop", private_file, onebox.operations, {"dest": SECRETS, "content": SECRET},
         {PrivateFileFingerprint: {f"path={SECRETS}": f"{OLD_SALT}:{fingerprint(SECRET, OLD_SALT)}"}},
         noop=f"{SECRETS} is up to date"),
    Case("private_file-new", private_file, onebox.operations, {"dest": SECRETS, "content": SECRET},
         {PrivateFileFingerprint: {f"path={SECRETS}": None}}, commands=[(private_script(SALT), {"_stdin": SECRET})]),
    Case("private_file-changed", private_file, onebox.operations, {"dest": SECRETS, "content": SECRET},
         {PrivateFileFingerprint: {f"path={SECRETS}": f"{OLD_SALT}:{fingerprint('old', OLD_SALT)}"}},
         commands=[(private_script(OLD_SALT), {"_stdin": SECRET})]),
    # upload_once: never replaces what is there.
    Case("upload_once-noop", upload_once, onebox.operations, {"data": b"\x00tar", "dest": "/opt/onebox/incoming/src.tgz"},
         {File: {"path=/opt/onebox/incoming/src.tgz": {"mode": 644, "user": "root", "group": "root"}}},
         noop="/opt/onebox/incoming/src.tgz is already on the server"),
    Case("upload_once-new", upload_once, onebox.operations, {"data": b"\x00tar", "dest": "/opt/onebox/incoming/src.tgz"},
         {File: {"path=/opt/onebox/incoming/src.tgz": None}},
         commands=[("upload", b"\x00tar", "/opt/onebox/incoming/src.tgz", temp_for("/opt/onebox/incoming/src.tgz"))]),
    # self_signed_certificate: only when either file is missing.
    Case("self_signed_certificate-noop", self_signed_certificate, onebox.tls_operations, SELF_SIGNED_ARGS,
         {File: {f"path={TLS}/fullchain.pem": {"mode": 777}, f"path={TLS}/privkey.pem": {"mode": 777}}},
         noop=f"{TLS} already holds a certificate"),
    Case("self_signed_certificate-new", self_signed_certificate, onebox.tls_operations, SELF_SIGNED_ARGS,
         {File: {f"path={TLS}/fullchain.pem": None}}, commands=SELF_SIGNED),
    Case("self_signed_certificate-key-missing", self_signed_certificate, onebox.tls_operations,
         {**SELF_SIGNED_ARGS, "days": 7},
         {File: {f"path={TLS}/fullchain.pem": {"mode": 777}, f"path={TLS}/privkey.pem": None}},
         commands=[command.replace("-days 30", "-days 7") for command in SELF_SIGNED]),
    # certbot_certificate: asks the ACME server only when the lineage falls short.
    Case("certbot_certificate-noop", certbot_certificate, onebox.tls_operations, CERTBOT_ARGS,
         {CertificateLineage: lineage()}, noop="the certificate api.example.com is valid for api.example.com, www.example.com"),
    Case("certbot_certificate-new", certbot_certificate, onebox.tls_operations, CERTBOT_ARGS,
         {CertificateLineage: {"cert_name=api.example.com": None}}, commands=[f"{CERTBOT} --quiet"]),
    Case("certbot_certificate-new-custom-ca", certbot_certificate, onebox.tls_operations,
         {**CERTBOT_ARGS, "ca_bundle": "/etc/onebox/acme-ca.pem"},
         {CertificateLineage: {"cert_name=api.example.com": None}},
         commands=[f"env REQUESTS_CA_BUNDLE=/etc/onebox/acme-ca.pem {CERTBOT} --quiet"]),
    Case("certbot_certificate-expiring", certbot_certificate, onebox.tls_operations, CERTBOT_ARGS,
         {CertificateLineage: lineage(not_after=datetime.now(UTC) + timedelta(days=10))},
         commands=[f"{CERTBOT} --force-renewal --quiet"]),
    Case("certbot_certificate-other-names", certbot_certificate, onebox.tls_operations, CERTBOT_ARGS,
         {CertificateLineage: lineage(domains=["api.example.com"])}, commands=[f"{CERTBOT} --force-renewal --quiet"]),
    # images_from_controller: sends only the images whose ID differs on the server.
    Case("images_from_controller-noop", images_from_controller, onebox.images, {"local_ids": IMAGES},
         {DockerImageIds: {IMAGES_KEY: dict(IMAGES)}}, noop="the server has these images already"),
    Case("images_from_controller-one-differs", images_from_controller, onebox.images, {"local_ids": IMAGES},
         {DockerImageIds: {IMAGES_KEY: {"onebox-test/postgres:17": "sha256:aaa", "onebox-test/redis:7": "sha256:old"}}},
         commands=[MAKE_ARCHIVE_DIR, ("function", "send_images", (["onebox-test/redis:7"], ARCHIVE)), *LOAD]),
    Case("images_from_controller-none-there", images_from_controller, onebox.images, {"local_ids": IMAGES},
         {DockerImageIds: {IMAGES_KEY: {}}},
         commands=[MAKE_ARCHIVE_DIR, ("function", "send_images", (list(IMAGES), ARCHIVE)), *LOAD]),
    # security_updates: upgrades exactly the pending packages.
    Case("security_updates-noop", security_updates, onebox.operations, {}, {PendingSecurityUpdates: []},
         noop="no security updates are pending"),
    Case("security_updates-pending", security_updates, onebox.operations, {},
         {PendingSecurityUpdates: ["libssl3t64:amd64", "openssl:amd64"]},
         commands=[f"{APT_UPGRADE} libssl3t64:amd64 openssl:amd64"]),
    # aide_baseline: starts aideinit once, in the background.
    Case("aide_baseline-noop-present", aide_baseline, onebox.operations, {}, {AideDatabase: "present"},
         noop="the AIDE database is present"),
    Case("aide_baseline-noop-building", aide_baseline, onebox.operations, {}, {AideDatabase: "building"},
         noop="the AIDE database is building"),
    Case("aide_baseline-missing", aide_baseline, onebox.operations, {}, {AideDatabase: "missing"},
         commands=["systemd-run --unit=onebox-aide-init --collect --property=Nice=19 --property=IOSchedulingClass=idle"
                   " /usr/sbin/aideinit --yes --force"]),
    # install_packages: apt.packages with the new services held by policy-rc.d for that apt run only.
    Case("install_packages-noop", install_packages, onebox.operations, INSTALL_ARGS, {},
         noop="package prometheus is installed", patches={"apt": apt_stub()}),
    Case("install_packages-held", install_packages, onebox.operations, INSTALL_ARGS, {StartPolicy: "absent"},
         commands=HELD_INSTALL, patches={"apt": apt_stub(APT_INSTALL)}),
    Case("install_packages-after-an-interrupted-one", install_packages, onebox.operations, INSTALL_ARGS,
         {StartPolicy: "onebox"}, commands=HELD_INSTALL, patches={"apt": apt_stub(APT_INSTALL)}),
    Case("install_packages-the-admin-s-policy-rules", install_packages, onebox.operations, INSTALL_ARGS,
         {StartPolicy: "other"}, commands=[APT_INSTALL], patches={"apt": apt_stub(APT_INSTALL)}),
    # remove_start_policy: only onebox's own, left by an interrupted install.
    Case("remove_start_policy-left", remove_start_policy, onebox.operations, {}, {StartPolicy: "onebox"},
         commands=[f"rm -f {POLICY}"]),
    Case("remove_start_policy-noop", remove_start_policy, onebox.operations, {}, {StartPolicy: "absent"},
         noop=f"no policy-rc.d of onebox's in {POLICY}"),
    Case("remove_start_policy-the-admin-s", remove_start_policy, onebox.operations, {}, {StartPolicy: "other"},
         noop=f"no policy-rc.d of onebox's in {POLICY}"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_facts_in_exact_commands_out(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    commands, noops = run(case.operation, case.module, case.facts, monkeypatch, case.patches, **case.kwargs)
    assert commands == case.commands
    assert noops == ([case.noop] if case.noop else [])


def operations_in(path: Path) -> list[str]:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    source = path.read_text()
    return [f"{module}.{name}" for name in re.findall(r"^@operation\([^)]*\)\ndef (\w+)", source, re.MULTILINE)]


def test_every_custom_operation_has_a_noop_and_a_change_case() -> None:
    # onebox/rollout.py's release and rollback have their own tests (test_operations.py).
    # Every module of the package is scanned: an operation defined anywhere needs its cases here.
    found = {name for path in sorted((ROOT / "onebox").rglob("*.py")) if path.name != "rollout.py"
             for name in operations_in(path)}
    covered: dict[str, set[str]] = {}
    for case in CASES:
        covered.setdefault(f"{case.operation._inner.__module__}.{case.operation.__name__}", set()).add(
            "noop" if case.noop else "change")
    assert len(found) >= 8
    assert {name: covered.get(name) for name in found} == dict.fromkeys(found, {"noop", "change"})
    for name in found:  # each found name is a real pyinfra operation
        module, _, attribute = name.rpartition(".")
        assert hasattr(getattr(importlib.import_module(module), attribute), "_inner")


# Hostile values: each comes back from the shell as one word, the same word.

ODD = "/srv/it's a $(touch pwned); dir"


def test_argument_commands_quote_every_value(monkeypatch: pytest.MonkeyPatch) -> None:
    commands, _ = run(self_signed_certificate, onebox.tls_operations, {File: {f"path={ODD}/fullchain.pem": None}},
                      monkeypatch, cert_dir=ODD, domains=["a.example", "b.example"])
    assert [shlex.split(command) for command in commands] == [
        ["install", "-d", "-m", "700", f"{ODD}/bootstrap"],
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
         "-subj", "/CN=a.example", "-addext", "subjectAltName=DNS:a.example,DNS:b.example",
         "-keyout", f"{ODD}/bootstrap/privkey.pem", "-out", f"{ODD}/bootstrap/fullchain.pem"],
        ["chmod", "600", f"{ODD}/bootstrap/privkey.pem"],
        ["ln", "-sfn", f"{ODD}/bootstrap/fullchain.pem", f"{ODD}/fullchain.pem"],
        ["ln", "-sfn", f"{ODD}/bootstrap/privkey.pem", f"{ODD}/privkey.pem"],
    ]
    commands, _ = run(certbot_certificate, onebox.tls_operations, {CertificateLineage: {f"cert_name={ODD}": None}},
                      monkeypatch, cert_name=ODD, domains=["a.example"], webroot=ODD, email="a@b.example",
                      server="https://acme.test/dir?x=1&y=2", ca_bundle=f"{ODD}/ca.pem")
    assert shlex.split(commands[0]) == [
        "env", f"REQUESTS_CA_BUNDLE={ODD}/ca.pem", "certbot", "certonly", "--webroot", "-w", ODD, "--cert-name", ODD,
        "-d", "a.example", "--non-interactive", "--agree-tos", "-m", "a@b.example",
        "--server", "https://acme.test/dir?x=1&y=2", "--quiet"]
    commands, _ = run(security_updates, onebox.operations, {PendingSecurityUpdates: ["evil;reboot:amd64"]}, monkeypatch)
    assert shlex.split(commands[0])[-1] == "evil;reboot:amd64"


def test_a_self_signed_certificate_is_made_in_an_odd_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_dir = tmp_path / "it's a $(touch pwned); dir"
    facts = {File: {f"path={cert_dir}/fullchain.pem": None}}
    commands, _ = run(self_signed_certificate, onebox.tls_operations, facts, monkeypatch,
                      cert_dir=str(cert_dir), domains=["a.example"])
    cert_dir.mkdir()
    for command in commands:
        subprocess.run(["sh", "-c", command], cwd=tmp_path, check=True, capture_output=True)
    assert (cert_dir / "fullchain.pem").resolve() == cert_dir / "bootstrap" / "fullchain.pem"
    assert oct((cert_dir / "privkey.pem").stat().st_mode)[-3:] == "600"
    assert not (tmp_path / "pwned").exists()


def test_a_private_file_is_written_under_an_odd_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "new dir; $(touch pwned)" / "it's.json"
    commands, _ = run(private_file, onebox.operations, {PrivateFileFingerprint: {f"path={dest}": None}}, monkeypatch,
                      dest=str(dest), content="{}")
    ((text, arguments),) = commands
    subprocess.run(["sh", "-c", text], input=arguments["_stdin"], text=True, cwd=tmp_path, check=True)
    assert dest.read_text() == "{}"
    assert oct(dest.stat().st_mode)[-3:] == "600"
    # The fact reads back the fingerprint the operation wrote: the next run is a noop.
    fact = subprocess.run(["sh", "-c", PrivateFileFingerprint().command(str(dest))], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    stored = PrivateFileFingerprint().process(fact.stdout.splitlines())
    assert stored == f"{SALT}:{fingerprint('{}', SALT)}"
    assert not (tmp_path / "pwned").exists()


# The facts' commands, exactly, and the shell-syntax ones run with odd values.

def test_fact_commands() -> None:
    assert InContainer().command() == "systemd-detect-virt --container 2>/dev/null || true"
    assert DockerImageIds().command(("a:1", "b/c:2")) == (
        "for ref in a:1 b/c:2; do id=$(docker image inspect -f '{{.Id}}' \"$ref\" 2>/dev/null) && echo \"$ref $id\"; done; true")
    assert CertificateLineage().command("api.example.com") == (
        "if [ -f /etc/letsencrypt/live/api.example.com/cert.pem ]; then openssl x509 -in"
        " /etc/letsencrypt/live/api.example.com/cert.pem -noout -enddate -serial -ext subjectAltName;"
        " sed -n 's/^server *= */server=/p' /etc/letsencrypt/renewal/api.example.com.conf 2>/dev/null; fi; true")
    # The file itself gone (removed by hand, or by a role turned off): no fingerprint, so it is written again.
    assert PrivateFileFingerprint().command("/opt/onebox/secrets/supplied.json") == (
        "test -f /opt/onebox/secrets/supplied.json && cat /opt/onebox/secrets/supplied.json.fingerprint 2>/dev/null"
        " || true")
    assert AideDatabase().command() == (
        "if [ -e /var/lib/aide/aide.db ]; then echo present; elif systemctl is-active -q onebox-aide-init;"
        " then echo building; else echo missing; fi")
    assert StartPolicy().command() == (
        "if [ ! -e /usr/sbin/policy-rc.d ] && [ ! -L /usr/sbin/policy-rc.d ]; then echo absent;"
        " elif grep -qsF onebox-package-start-policy /usr/sbin/policy-rc.d; then echo onebox; else echo other; fi")
    assert PendingSecurityUpdates().command().startswith("{ apt-mark showhold 2>/dev/null | sed 's|$|/held|';")
    assert sysctl_check("/etc/sysctl.d/90-onebox-network.conf").endswith(
        "' /etc/sysctl.d/90-onebox-network.conf && sed -n 's/^\\([a-z0-9_.-]*\\) = .*/\\1/p'"
        " /etc/sysctl.d/90-onebox-network.conf | xargs -r sysctl -n >/dev/null")


def test_docker_image_ids_keeps_each_reference_one_word(tmp_path: Path) -> None:
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text('#!/bin/sh\n[ "$5" = "b/c:2" ] && echo sha256:bbb\n')  # docker image inspect -f X REF
    docker.chmod(0o755)
    command = DockerImageIds().command(("a; touch pwned", "b/c:2", "$(touch pwned)"))
    result = subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True,
                            env={"PATH": f"{docker.parent}:/usr/bin:/bin"})
    assert DockerImageIds().process(result.stdout.splitlines()) == {"b/c:2": "sha256:bbb"}
    assert not (tmp_path / "pwned").exists()


def test_certificate_lineage_and_sysctl_check_quote_their_paths(tmp_path: Path) -> None:
    result = subprocess.run(["sh", "-c", CertificateLineage().command("x; touch pwned; $(touch pwned)")],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout == "" and not (tmp_path / "pwned").exists()
    config = tmp_path / "it's; $(touch pwned).conf"
    config.write_text("# comment\nnot a setting\n")
    result = subprocess.run(["sh", "-c", sysctl_check(str(config))], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == "not a sysctl setting: not a setting\n"
    assert not (tmp_path / "pwned").exists()


def test_the_image_archive_is_private_named_anew_each_run_and_removed_even_when_the_load_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FixtureHost({DockerImageIds: {IMAGES_KEY: {}}})
    fake.current_op_global_arguments = {"_temp_dir": TEMP_DIR, "_sudo": True}
    monkeypatch.setattr(onebox.images, "host", fake)
    runs = [list(images_from_controller._inner(local_ids=IMAGES)) for _ in range(2)]
    sends = [next(c for c in commands if isinstance(c, FunctionCommand)) for commands in runs]
    archives = [send.args[1] for send in sends]
    assert archives[0] != archives[1]  # two deploys never share (or load) one archive
    assert all(re.fullmatch(r"/var/lib/onebox/image-archives/[0-9a-f]{32}\.tar\.gz", a) for a in archives)
    assert sends[0].kwargs == {"_temp_dir": TEMP_DIR, "_sudo": True}  # into root's directory as files.put puts a file
    assert runs[0][0].get_raw_value() == MAKE_ARCHIVE_DIR  # root's own, 0700, before anything is in it
    # The load, run by a shell as pyinfra does, with a docker that fails and one that loads.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    odd_dir = tmp_path / "it's $(touch pwned)"
    odd_dir.mkdir()
    monkeypatch.setattr(onebox.images, "ARCHIVE_DIR", str(odd_dir))
    monkeypatch.setattr(onebox.images.secrets, "token_hex", lambda _: "x")
    archive = odd_dir / "x.tar.gz"
    for status in (1, 0):
        docker.write_text(f"#!/bin/sh\ntest -f \"$4\" || exit 9\nexit {status}\n")  # docker load -q -i FILE
        docker.chmod(0o755)
        archive.write_bytes(b"images")
        load = list(images_from_controller._inner(local_ids=IMAGES))[-1].get_raw_value()
        result = subprocess.run(["sh", "-c", load], cwd=tmp_path, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
        assert result.returncode == status  # pyinfra sees the load's own outcome
        assert not archive.exists()
    assert not (tmp_path / "pwned").exists()
