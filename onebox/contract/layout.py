"""Where things are and what text files say, as both sides of the contract name them: the
paths on the server, one app's files, the upstream file nginx reads, the swarm node label,
the names an operator types and the release's env file. Standard library only (the server's
zipapp carries it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

# --- paths on the server ----------------------------------------------------------------------

LIB_DIR = "/usr/local/lib/onebox"
SERVER_ZIPAPP = f"{LIB_DIR}/onebox-server.pyz"  # both tools, one upload
RELEASE_COMMAND = "/usr/local/sbin/onebox-release"  # links to the zipapp
BACKUP_COMMAND = "/usr/local/sbin/onebox-backup"
# Their exit codes, which `onebox` passes on as its own (the README lists them), and how
# `onebox-release status` starts each line that needs the operator (`onebox status` exits
# EXIT_ATTENTION when every host that failed printed one).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ATTENTION, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
ATTENTION = "ATTENTION: "
ETC_DIR = "/etc/onebox"  # onebox's settings on the server, secrets included (root only where they are)
STATE_ROOT = "/var/lib/onebox"  # what onebox keeps between runs: backup state, staging, image archives
RESTIC_CACHE_DIR = "/var/cache/onebox-backup"  # restic's cache of the off-site repositories
SHIM = f"{LIB_DIR}/with-secrets.sh"  # exports /run/secrets/* as variables (app_secrets_in_env)
APP_DIR_FILE = f"{ETC_DIR}/app-dir"  # where the app lived, as an onebox before the apps registry wrote it
LEGACY_APP_DIR = "/opt/onebox"  # where the first onebox, before APP_DIR_FILE, put its only app
VERSION_FILE = f"{ETC_DIR}/version"  # the onebox version that last converged this server (one line)
APPS_FILE = f"{ETC_DIR}/apps.json"  # the apps on this server: name -> {"dir": ..., "removed": bool}
TLS_DIR = f"{ETC_DIR}/tls"  # stable certificate paths nginx reads
BACKUP_CONFIG = f"{ETC_DIR}/backup.json"
BACKUP_STATE_DIR = f"{STATE_ROOT}/backup"
# In an app's backup state directory (AppFiles.backup_state_dir), as onebox-backup and the converge
# write them and onebox-release's status and metrics read them:
BACKUP_INSTALLED = "installed"  # the converge's stamp of when backups were first configured
BACKUP_LAST_SUCCESS = "last-success"  # the end of the last backup that succeeded (Unix seconds)
BACKUP_LAST_RUN = "last-run.json"  # the last run's result, failed or not
RESTIC_CHECK_FAILED = "last-check-failed"  # present while the off-site repository's last check failed
PITR_READY = "pitr-ready"  # the pitr_fingerprint of the last point-in-time recovery setup that succeeded
NGINX_DIR = "/etc/nginx"
MONITORING_FILE = f"{ETC_DIR}/monitoring.json"  # where alerts go, for `onebox-release status`
# Where Prometheus and Alertmanager listen (their defaults files) and `onebox-release status` asks.
PROMETHEUS_LISTEN, ALERTMANAGER_LISTEN = "127.0.0.1:9090", "127.0.0.1:9093"
ALERTMANAGER_URL = f"http://{ALERTMANAGER_LISTEN}"
PROMETHEUS_URL = f"http://{PROMETHEUS_LISTEN}"
POSTGRES_EXPORTER_CONFIG = f"{ETC_DIR}/postgres-exporter.yml"  # written by onebox-release metrics: its password
POSTGRES_MONITOR_PASSWORD = f"{ETC_DIR}/postgres-monitor.password"  # the monitoring role's, root only
MONITOR_ROLES_FILE = f"{STATE_ROOT}/monitor-roles.json"  # app -> the PostgreSQL container its role was made in
EXPORTER_TARGETS_DIR = "/var/lib/prometheus/onebox-targets"  # the apps' PostgreSQL and Redis, for file discovery
EXPORTER_AUTH_MODULE = "onebox"  # POSTGRES_EXPORTER_CONFIG's module, which prometheus.yml's postgres job names
NGINX_STATUS = "127.0.0.1:9180"  # nginx's stub_status, for the nginx exporter (loopback only)
# Maintenance mode: nginx answers 503 while this file exists (no reload needed to turn it on or off).
MAINTENANCE_DIR = f"{STATE_ROOT}/maintenance"
MAINTENANCE_FLAG = "on"  # a file in MAINTENANCE_DIR
MAINTENANCE_PAGE = "onebox-maintenance.html"  # in MAINTENANCE_DIR; nginx serves it as /onebox-maintenance.html
MAINTENANCE_RETRY_AFTER = 60  # seconds, in the 503's Retry-After


def exporter_targets(service: str, targets_dir: str = EXPORTER_TARGETS_DIR) -> str:
    """The file discovery file of one kind of dependency (compose.POSTGRES_SERVICE, REDIS_SERVICE)."""
    return f"{targets_dir}/{service}.json"


CERT_CHAIN, CERT_KEY = "fullchain.pem", "privkey.pem"  # certbot's names, which the stable links keep


def cert_dir(domain: str, tls_dir: str = TLS_DIR) -> str:
    """Holds CERT_CHAIN and CERT_KEY: links to the bootstrap or certbot's files."""
    return f"{tls_dir}/{domain}"


# --- the files of one app ---------------------------------------------------------------------
# An app's key is None for the one app of a single-app server (the files keep the names they
# had before onebox hosted several apps, so such a server needs no migration), else its name.
# AppFiles(ANY_APP) names glob patterns that match each app's file, the single app's too.
ANY_APP = "*"


@dataclasses.dataclass(frozen=True)
class AppFiles:
    """Where one app's server-wide files live (relative names: tests relocate the roots)."""

    key: str | None

    def _named(self, stem: str, sep: str = "-") -> str:
        if self.key == ANY_APP:
            return f"{stem}*"
        return stem if self.key is None else f"{stem}{sep}{self.key}"

    @property
    def upstream(self) -> str:  # in nginx's directory
        return f"{self._named('onebox-upstream')}.conf"

    @property
    def site(self) -> str:  # in nginx's sites-enabled
        return f"{self._named('onebox')}.conf"

    @property
    def nginx_prefix(self) -> str:  # upstream and rate-limit zone names
        return self._named("onebox", "_").replace("-", "_")

    @property
    def local_socket(self) -> str:
        return f"/run/{self._named('onebox-api')}.sock"

    @property
    def backup_config(self) -> str:
        return f"{ETC_DIR}/{self._named('backup')}.json"

    @property
    def backup_secrets(self) -> str:  # the restic password and S3 keys of this app's off-site copies
        return f"{ETC_DIR}/{self._named('backup')}.env"

    @property
    def backup_state_dir(self) -> str:
        return self._named(BACKUP_STATE_DIR)

    @property
    def backup_unit(self) -> str:  # the systemd service and timer, without their suffix
        return self._named("onebox-backup")

    def backup_dir(self, root: str) -> str:
        return root if self.key is None else f"{root}/{self.key}"

    def last_backup_success(self) -> str:
        return f"{self.backup_state_dir}/{BACKUP_LAST_SUCCESS}"

    def last_backup_run(self) -> str:
        return f"{self.backup_state_dir}/{BACKUP_LAST_RUN}"

    def backup_installed(self) -> str:
        return f"{self.backup_state_dir}/{BACKUP_INSTALLED}"

    def restic_check_failed(self) -> str:
        return f"{self.backup_state_dir}/{RESTIC_CHECK_FAILED}"

    def pitr_ready(self) -> str:
        return f"{self.backup_state_dir}/{PITR_READY}"

    def maintenance_dir(self, root: str = MAINTENANCE_DIR) -> str:
        return f"{root}/{self.key}" if self.key else root


# --- names an operator types ------------------------------------------------------------------

# An app's name (its settings' app_name): its compose projects, containers and paths carry it.
APP_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
# A name in the `apps` setting (several apps on one server): shorter, since file and unit names carry it too.
APP_KEY_PATTERN = r"^[a-z][a-z0-9-]{0,29}$"
# Where `onebox restore --from` takes a backup: this server's copies or the off-site ones.
RESTORE_SOURCES = ("local", "offsite")


# --- the slots: the two places a release runs, the live one and the next ---------------------

SLOTS = ("blue", "green")  # an app's ports, in this order: api_port (also the stable address), api_port + 1


def slot_port(ports: tuple[int, int] | list[int], slot: str) -> int:
    """The port of `slot` among an app's slot ports (settings' slot_ports, the spec's)."""
    return ports[SLOTS.index(slot)]


def other_slot(slot: str | None) -> str:
    """Where the next release goes: the slot that is not live (the first one when none is)."""
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


# --- the upstream file: which slot nginx sends traffic to -------------------------------------

def upstream_path(nginx_dir: str = NGINX_DIR, key: str | None = None) -> str:
    return f"{nginx_dir}/{AppFiles(key).upstream}"


# What nginx was told before cluster_fail_timeout existed: a spec written then still means it.
FAIL_TIMEOUT_BEFORE = 5


def upstream_text(slot: str, port: int, nodes: list[str] | None = None, fail_timeout: int = FAIL_TIMEOUT_BEFORE) -> str:
    """The live slot on this server, or on each swarm node: one that fails a connection (refused, or
    no answer within the site's proxy_connect_timeout) is left out for `fail_timeout` seconds and
    the request goes to the next (nginx's proxy_next_upstream default, which retries even a POST
    then: nothing of it was sent)."""
    if not nodes:
        return f"# managed by onebox-release: the live release's slot ({slot})\nserver 127.0.0.1:{port};\n"
    servers = "".join(f"server {node}:{port} max_fails=1 fail_timeout={fail_timeout}s;\n" for node in nodes)
    return f"# managed by onebox-release: the live release's slot ({slot}) on {len(nodes)} swarm node(s)\n{servers}"


# One server: nginx's upstream names this address and the app's api_port, whichever slot is live;
# the kernel maps it to the live slot (onebox-release's port_map), so a release reloads nothing.
# 127.0.0.0/8 is local and nothing listens on this address: only the mapping answers.
SWITCH_ADDRESS = "127.100.0.1"


SWITCHED = "# managed by onebox-release: the live slot is chosen by the kernel's map (nft list table ip ..._switch)"


def switched_upstream_text(api_port: int, nodes: list[str] | None = None, fail_timeout: int = FAIL_TIMEOUT_BEFORE) -> str:
    """What nginx's upstream names once the kernel's map switches the slots: the stable address on
    one server; on a cluster each node, left out for `fail_timeout` seconds after a failed connect."""
    if not nodes:
        return f"{SWITCHED}\nserver {SWITCH_ADDRESS}:{api_port};\n"
    return SWITCHED + "\n" + "".join(f"server {node}:{api_port} max_fails=1 fail_timeout={fail_timeout}s;\n"
                                     for node in nodes)


def upstream_port(text: str) -> int | None:
    """The slot port an upstream file points at, or None (also for a switched upstream, which names none)."""
    if text.startswith(SWITCHED):
        return None
    match = re.search(r"^server [0-9.]+:(\d+)[ ;]", text, re.MULTILINE)
    return int(match.group(1)) if match else None


# --- swarm nodes, as the converge labels them and the manager's tools report them -----------

# Names each node after its inventory host: node hostnames are often all alike (one provider image).
SWARM_NODE_LABEL = "onebox.host"


def node_address(described: dict) -> str:
    """A node's address in its `docker node inspect` (a manager may show 0.0.0.0 in Status.Addr;
    its ManagerStatus.Addr then has it, with the port)."""
    addr = described.get("Status", {}).get("Addr", "")
    if addr in ("", "0.0.0.0"):
        addr = described.get("ManagerStatus", {}).get("Addr", "").rsplit(":", 1)[0]
    return addr


# --- names an operator types, checked before they reach a command -----------------------------

RELEASE_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # 20261202-081500-3fa2c1
BACKUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def check_release_id(value: str) -> str:
    if not RELEASE_ID.match(value):
        raise ValueError(f"{value!r} is not a release id (like 20261202-081500-3fa2c1; see `onebox releases`)")
    return value


def check_backup_name(value: str) -> str:
    if not BACKUP_NAME.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a backup name (letters, digits, . _ -; see `onebox backup list`)")
    return value


def recovery_target(value: str) -> dt.datetime | None:
    """`onebox restore --to`: "latest" (None: the end of the archive) or an ISO 8601 time with its zone."""
    if value == "latest":
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{value!r} is not an ISO 8601 time with its zone, e.g. 2026-12-06T14:30:00+01:00 or "
                         "2026-12-06T13:30:00Z, nor 'latest' (the last archived WAL)")
    return moment


# --- the release's env file (app.env): what compose's env_file parser reads back exactly ------

def env_value_problem(value: str) -> str | None:
    """Why `value` cannot be an app.env value compose reads back exactly, or None. compose takes a
    single-quoted value literally (no `$` interpolation, no ` #` comment, no escapes); inside one, a
    quote cannot be written and a trailing backslash would escape the closing quote."""
    if "'" in value:
        return "contains a single quote (')"
    if value.endswith("\\"):
        return "ends with a backslash"
    if any(char in value for char in "\r\n\x00"):
        return "is more than one line"
    return None


def env_file_text(env: dict[str, str]) -> str:
    """app.env: one NAME='value' line each (see env_value_problem); a value it cannot hold is refused."""
    for name, value in env.items():
        problem = env_value_problem(value)
        if problem:
            raise ValueError(f"app_env: {name} {problem}, which compose's env file cannot hold as it is")
    return "".join(f"{name}='{value}'\n" for name, value in env.items())

