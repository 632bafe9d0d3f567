"""Facts onebox reads from a server, beyond pyinfra's own."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime

from pyinfra.api import FactBase, StringCommand

from onebox import server_calls
from onebox.contract import (
    APP_DIR_FILE,
    APPS_FILE,
    NOT_INSTALLED,
    SPEC_NAME,
    VERSION_FILE,
    RegisteredApp,
    StateReport,
    parse_apps,
    parse_state_report,
)
from onebox.server import docker
from onebox.shell import raw_shell
from onebox.versions import older_allowed


class InContainer(FactBase):
    """The container technology the server runs in ('docker', 'lxc', ...), or None on a VM or metal."""

    def command(self) -> str:
        # `|| true`: it exits 1 when it prints "none".
        return raw_shell("systemd-detect-virt --container 2>/dev/null || true")

    def process(self, output: list[str]) -> str | None:
        value = "".join(output).strip()
        return None if value in ("", "none") else value


class OneboxVersion(FactBase):
    """The onebox version that last converged the server (contract.VERSION_FILE), or None: a new
    server, or one converged only by onebox 0.1.0, which recorded none."""

    def command(self) -> str:
        return raw_shell(f"cat {VERSION_FILE} 2>/dev/null || true")

    def process(self, output: list[str]) -> str | None:
        return "".join(output).strip() or None


class DockerImageIds(FactBase):
    """Image reference -> image ID for the references asked about (absent ones omitted)."""

    def command(self, references: tuple[str, ...]) -> str:
        # A loop: `docker image inspect` of several references fails as a whole when one is absent.
        refs = " ".join(shlex.quote(reference) for reference in references)
        inspect = shlex.join(docker.image_inspect("", "{{.Id}}")[:-1]) + ' "$ref" 2>/dev/null'  # the loop's reference
        return raw_shell(f"for ref in {refs}; do id=$({inspect}) && echo \"$ref $id\"; done; true")

    def process(self, output: list[str]) -> dict[str, str]:
        return dict(line.split(" ", 1) for line in output if " " in line)


class CertificateLineage(FactBase):
    """The certbot lineage `cert_name`: its names, expiry, serial and ACME server; None when absent."""

    def command(self, cert_name: str) -> str:
        live = shlex.quote(f"/etc/letsencrypt/live/{cert_name}/cert.pem")
        renewal = shlex.quote(f"/etc/letsencrypt/renewal/{cert_name}.conf")
        return raw_shell(f"if [ -f {live} ]; then openssl x509 -in {live} -noout -enddate -serial -ext subjectAltName; "
                         f"sed -n 's/^server *= */server=/p' {renewal} 2>/dev/null; fi; true")

    def process(self, output: list[str]) -> dict | None:
        if not output:
            return None
        lineage: dict = {"domains": [], "not_after": None, "serial": None, "server": None}
        for line in (line.strip() for line in output):
            if line.startswith("notAfter="):
                when = datetime.strptime(line.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z")
                lineage["not_after"] = when.replace(tzinfo=UTC)
            elif line.startswith("serial="):
                lineage["serial"] = line.removeprefix("serial=")
            elif line.startswith("server="):
                lineage["server"] = line.removeprefix("server=")
            elif line.startswith("DNS:"):
                lineage["domains"] = [part.strip().removeprefix("DNS:") for part in line.split(",")]
        return lineage


class ReleaseState(FactBase):
    """What onebox-release reports about the app (contract.StateReport): live release, problems,
    interrupted work. Nothing secret, nothing derived from a secret."""

    def command(self, app_dir: str) -> StringCommand:
        # A server onebox never converged has no tool yet: that is "not installed", not an error.
        return server_calls.state(app_dir)

    def process(self, output: list[str]) -> StateReport:
        # The report is one JSON line. A tool of an older onebox (before this converge replaces
        # it) prints something else: read that as "not installed", so the release runs. A report
        # in JSON is parsed by the contract, which refuses one newer than this onebox reads.
        for line in reversed(output):
            if not line.startswith("{"):
                continue
            try:
                json.loads(line)
            except ValueError:
                continue
            return parse_state_report(line, allow_newer=older_allowed())
        return NOT_INSTALLED


class PrivateFileFingerprint(FactBase):
    """The salted fingerprint stored beside a private file ("salt:hash"), or None; None too when the
    file itself is gone (removed by hand, or by a role turned off): it is written again."""

    def command(self, path: str) -> str:
        return raw_shell(f"test -f {shlex.quote(path)} && cat {shlex.quote(f'{path}.fingerprint')} 2>/dev/null || true")

    def process(self, output: list[str]) -> str | None:
        return "".join(output).strip() or None


class ServerApps(FactBase):
    """The apps the server has (contract.APPS_FILE), as name -> RegisteredApp; {} on a fresh server.
    A server an older onebox converged has only /etc/onebox/app-dir: its one app, named by its spec."""

    default = dict

    def command(self) -> str:
        legacy = ("import json,sys; d=sys.argv[1]; "
                  f"print(json.dumps({{json.load(open(d+'/{SPEC_NAME}'))['app_name']: {{'dir': d, 'key': None}}}}))")
        return raw_shell(f"if [ -f {APPS_FILE} ]; then cat {APPS_FILE}; "
                         f"elif [ -f {APP_DIR_FILE} ]; then python3 -c {shlex.quote(legacy)} \"$(cat {APP_DIR_FILE})\" "
                         "2>/dev/null || true; fi")

    def process(self, output: list[str]) -> dict[str, RegisteredApp]:
        text = "\n".join(output).strip()
        return parse_apps(text) if text else {}


class SwarmState(FactBase):
    """This node's swarm membership (`docker info`'s Swarm): LocalNodeState ("inactive",
    "active", ...), NodeID, NodeAddr, ControlAvailable (a manager); None without Docker."""

    def command(self) -> str:
        return raw_shell(f"{shlex.join(docker.info('{{json .Swarm}}'))} 2>/dev/null || true")

    def process(self, output: list[str]) -> dict | None:
        text = "".join(output).strip()
        swarm = json.loads(text) if text.startswith("{") else None
        # A dockerd that does not answer leaves LocalNodeState empty: unknown, not "inactive".
        return swarm if swarm and swarm.get("LocalNodeState") else None


class SwarmNodes(FactBase):
    """On a manager: every node of the swarm, as `docker node inspect` describes it; [] elsewhere."""

    default = list

    def command(self) -> str:
        return raw_shell(f"ids=$({shlex.join(docker.node_ids())} 2>/dev/null) && [ -n \"$ids\" ] "
                         f"&& {shlex.join(docker.node_inspect())} $ids || true")

    def process(self, output: list[str]) -> list[dict]:
        text = "\n".join(output).strip()
        return json.loads(text) if text.startswith("[") else []


class PendingSecurityUpdates(FactBase):
    """name:arch of the packages with an update waiting in a -security suite (lynis PKGS-7392),
    held packages excepted. `apt list` reads the lists without running the resolver, which
    `apt-get --dry-run upgrade` would (several times slower on every deploy)."""

    def command(self) -> str:
        # Two listings joined in one pipe: the held packages mark themselves, then awk filters.
        return raw_shell("{ apt-mark showhold 2>/dev/null | sed 's|$|/held|'; LC_ALL=C apt list --upgradable 2>/dev/null; }"
                         " | awk -F'[/ ]' '$2 == \"held\" { held[$1] = 1; next }"
                         " $2 ~ /-security/ && !($1 in held) { print $1 \":\" $4 }'")

    def process(self, output: list[str]) -> list[str]:
        return sorted({line.strip() for line in output if line.strip()})


# AIDE's database, and the unit its first recording runs as (operations.aide_baseline).
AIDE_DATABASE = "/var/lib/aide/aide.db"
AIDE_INIT_UNIT = "onebox-aide-init"


class AideDatabase(FactBase):
    """'present', 'building' (onebox's background aideinit runs) or 'missing'."""

    def command(self) -> str:
        return raw_shell(f"if [ -e {shlex.quote(AIDE_DATABASE)} ]; then echo present; "
                         f"elif systemctl is-active -q {shlex.quote(AIDE_INIT_UNIT)}; then echo building; "
                         "else echo missing; fi")

    def process(self, output: list[str]) -> str:
        return "".join(output).strip()


# The Debian hook invoke-rc.d and deb-systemd-invoke ask before a package's scripts start a
# service, and the line that marks onebox's own (operations.install_packages).
POLICY_RC_D = "/usr/sbin/policy-rc.d"
POLICY_MARK = "onebox-package-start-policy"


class StartPolicy(FactBase):
    """Who wrote /usr/sbin/policy-rc.d: 'onebox', 'other' (the admin, a tool, the image) or 'absent'."""

    def command(self) -> str:
        path = shlex.quote(POLICY_RC_D)
        return raw_shell(f"if [ ! -e {path} ] && [ ! -L {path} ]; then echo absent; "
                         f"elif grep -qsF {shlex.quote(POLICY_MARK)} {path}; then echo onebox; else echo other; fi")

    def process(self, output: list[str]) -> str:
        return "".join(output).strip()
