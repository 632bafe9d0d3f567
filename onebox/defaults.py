# Every onebox setting, with its default. Per-group files (group_data/<group>.py)
# override these. Secrets (postgres_password, registry_password, ONEBOX_SECRET_<NAME>) are
# never set here: use the environment (ONEBOX_<NAME>) or the git-ignored secrets file.
# Validated by onebox/settings.py before any host is touched.

# --- host ---
# The server's hostname (a single DNS label).
hostname = "onebox"
# IANA time zone of the server.
timezone = "UTC"
# The unprivileged account that owns the deploy and has sudo.
deploy_user = "deploy"
# Public keys (one line of an id_*.pub each) allowed to log in as deploy_user; at least one.
deploy_ssh_keys = []
# Public keys CI deploys with, as the account onebox-ci (created while this is not empty): each key
# runs only `onebox-release ci-deploy`, whose sudo rule is the account's one, and deploys only a
# digest of app_image's repository (README: "Deploy from CI"). CI's private key never gets root.
ci_ssh_keys = []
# TCP port sshd listens on; must be in firewall_tcp_ports.
sshd_port = 22
# Root login over SSH: "prohibit-password" (keys only) or "no" (connect as deploy_user then).
sshd_permit_root_login = "prohibit-password"
# The only TCP ports the firewall (nftables) lets in: SSH, HTTP, HTTPS.
firewall_tcp_ports = [22, 80, 443]
# Seconds an apt package list stays fresh before `apt-get update` runs again.
apt_cache_valid_time = 86400
# Packages every server gets.
base_packages = [
    "ca-certificates", "curl", "gnupg", "nftables", "sudo",
    "unattended-upgrades", "systemd-timesyncd", "tzdata", "python3",
]
# Let unattended-upgrades reboot the server when an update needs it.
unattended_upgrades_auto_reboot = False
# Local time of such a reboot (HH:MM).
unattended_upgrades_reboot_time = "04:00"
# NTP servers for systemd-timesyncd; empty keeps the distribution's pool.
ntp_servers = []
# Failed SSH authentications a connection may make before sshd drops it.
sshd_max_auth_tries = 3
# Sessions (shells, commands, sftp) one SSH connection may multiplex.
sshd_max_sessions = 4
# SSH port forwarding: "local" keeps `ssh -L` tunnels (used to reach the API on loopback), "no", or "yes".
sshd_allow_tcp_forwarding = "local"
# Ban addresses that keep failing SSH authentication (fail2ban, sshd jail, nftables bans).
fail2ban_enabled = True
# Failures within fail2ban_findtime that get an address banned.
fail2ban_maxretry = 5
# Seconds in which fail2ban counts failures.
fail2ban_findtime = 600
# Seconds a ban lasts.
fail2ban_bantime = 3600
# Addresses or networks fail2ban never bans (e.g. your office or bastion); loopback always.
fail2ban_ignore_ips = []
# Per-network-namespace kernel parameters (net.ipv4.*, net.ipv6.*); forwarding, which Docker needs, stays on.
sysctl_network = {
    "net.ipv4.conf.all.accept_redirects": 0, "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0, "net.ipv4.conf.default.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0, "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv4.conf.all.accept_source_route": 0, "net.ipv4.conf.default.accept_source_route": 0,
    "net.ipv4.conf.all.log_martians": 1, "net.ipv4.conf.default.log_martians": 1,
    "net.ipv4.conf.all.rp_filter": 1, "net.ipv4.conf.default.rp_filter": 1,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1, "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv6.conf.all.accept_redirects": 0, "net.ipv6.conf.default.accept_redirects": 0,
    "net.ipv6.conf.all.accept_source_route": 0, "net.ipv6.conf.default.accept_source_route": 0,
}
# Host-kernel parameters; applied on a VM or bare metal only (in a container they would change the host's kernel).
sysctl_kernel = {
    "dev.tty.ldisc_autoload": 0, "fs.protected_fifos": 2, "fs.protected_hardlinks": 1,
    "fs.protected_regular": 2, "fs.protected_symlinks": 1, "fs.suid_dumpable": 0,
    "kernel.core_uses_pid": 1, "kernel.ctrl-alt-del": 0, "kernel.dmesg_restrict": 1,
    "kernel.kptr_restrict": 2, "kernel.perf_event_paranoid": 3, "kernel.randomize_va_space": 2,
    "kernel.sysrq": 0, "kernel.unprivileged_bpf_disabled": 1, "kernel.yama.ptrace_scope": 1,
    "net.core.bpf_jit_harden": 2,
}
# Kernel modules that may never be loaded: rare network protocols, USB and FireWire storage.
blocked_kernel_modules = ["dccp", "sctp", "rds", "tipc", "usb-storage", "firewire-core", "firewire-ohci"]
# Hardening tools every server gets: debsums (verify package files), password quality, per-user temp dirs, NEWS before upgrades.
hardening_packages = ["debsums", "libpam-pwquality", "libpam-tmpdir", "apt-listchanges"]
# File integrity monitoring (AIDE): a baseline at the first deploy, a daily check into /var/log/aide/aide.log.
aide_enabled = True
# Audit changes to accounts, sudo, sshd, the firewall and Docker (auditd; VM or bare metal only, not in a container).
auditd_enabled = True
# Legal notice in /etc/issue and /etc/issue.net.
login_banner = (
    "Authorized access only. Activity on this system is monitored and recorded; "
    "unauthorized use is prohibited and may be reported to law enforcement."
)
# Seconds an idle interactive shell stays open (TMOUT); 0 never closes it.
shell_idle_timeout = 900
# Apply pending security updates during the deploy (unattended-upgrades applies later ones on schedule).
security_updates_on_deploy = True

# --- docker ---
# Where Docker Engine and Compose v2 come from: "distro" (Debian/Ubuntu packages) or "docker" (Docker's apt repository).
docker_source = "distro"
# Base URL of Docker's apt repository, used when docker_source = "docker".
docker_apt_url = "https://download.docker.com/linux"
# Container log rotation: size of one json-file log.
docker_log_max_size = "10m"
# Container log rotation: how many log files to keep.
docker_log_max_file = 3
# Keep containers running while dockerd restarts. A cluster needs False: Docker refuses swarm mode
# with it on (docs/cluster.md; the nodes' roles are inventory host data, swarm_role/swarm_address).
docker_live_restore = True

# --- app: where the image comes from ---
# Compose project name; also names the images, volumes and network.
app_name = "onebox"
# Directory on the server holding the compose projects and releases (never a system directory).
app_dir = "/opt/onebox"
# How the app image arrives: "build" (on the server, from app_source_dir), "registry" (pull app_image),
# or "tarball" (built on this machine, loaded there).
app_image_source = "build"
# In a cluster with workers (docs/cluster.md): "workers" runs the API as one replica on each worker
# (its image must reach them: app_image_source "tarball" or "registry"), "manager" keeps it on the
# manager in compose as on a single server. A single server ignores it.
api_placement = "workers"
# The build context on this machine; its .dockerignore decides what is uploaded.
app_source_dir = "examples/app"
# The Dockerfile, as a path inside app_source_dir.
app_dockerfile = "Dockerfile"
# Build arguments (name -> value). The production base image is the official one.
app_build_args = {"PYTHON_IMAGE": "python:3.13-slim"}
# Multi-stage build target (None: the Dockerfile's last stage).
app_build_target = None
# The app image name (a full registry reference when app_image_source = "registry").
app_image = "onebox/api"
# PostgreSQL image.
postgres_image = "postgres:17"
# Redis image.
redis_image = "redis:8"
# Images built on this machine and loaded into the server's engine (for servers without a registry).
controller_images = []
# Registry to log in to when app_image_source = "registry" (password: ONEBOX_REGISTRY_PASSWORD).
registry_server = None
# Registry user name.
registry_username = None

# --- app: its contract (how onebox runs, checks and configures it) ---
# Port the app listens on inside its container.
app_port = 8000
# Command that starts the app (argv list); None keeps the image's own ENTRYPOINT/CMD.
app_command = None
# HTTP path that answers 2xx when the app is alive (no database): checked from the host, so the image needs no curl.
app_health_path = "/health"
# Health check run inside the container by Docker (argv list); None keeps the image's own HEALTHCHECK, if any.
app_healthcheck_command = None
# Seconds a new version has to answer on app_health_path before the release is abandoned.
app_health_timeout = 120
# HTTP path of the app's Prometheus metrics, scraped on the server (never through nginx); None: none published.
# The 5xx and latency alerts read http_requests_total{status} and http_request_duration_seconds from it.
app_metrics_path = "/metrics"
# Plain environment (name -> value); values may use {postgres_host} {postgres_port} {postgres_user} {postgres_db}
# {redis_url} {domain} {public_url} {release} {app_port} {proxy_ip} {api_workers} {api_timeout}
# {api_graceful_timeout} {api_max_requests} {api_max_requests_jitter}.
app_env = {
    "POSTGRES_HOST": "{postgres_host}", "POSTGRES_USER": "{postgres_user}", "POSTGRES_DB": "{postgres_db}",
    "REDIS_URL": "{redis_url}", "PORT": "{app_port}", "FORWARDED_ALLOW_IPS": "{proxy_ip}",
    "WEB_CONCURRENCY": "{api_workers}", "GUNICORN_TIMEOUT": "{api_timeout}",
    "GUNICORN_GRACEFUL_TIMEOUT": "{api_graceful_timeout}", "GUNICORN_MAX_REQUESTS": "{api_max_requests}",
    "GUNICORN_MAX_REQUESTS_JITTER": "{api_max_requests_jitter}",
}
# Named secrets: supplied as ONEBOX_SECRET_<NAME> (environment or secrets file), else generated on the server once.
app_secrets = ["APP_SECRET_KEY"]
# Secret environment assembled on the server (name -> template); may also use {postgres_password},
# {postgres_password_url} (percent-encoded, for URLs such as DATABASE_URL) and {secret[NAME]}.
app_secret_env = {"POSTGRES_PASSWORD": "{postgres_password}"}
# Also export the secrets as environment variables inside the app (needs /bin/sh in the image); they are always
# files in /run/secrets/<NAME> with <NAME>_FILE pointing there, and never in `docker inspect`.
app_secrets_in_env = True
# The release step run once per new version, before it takes traffic (argv list); None: no step.
app_release_command = ["alembic", "upgrade", "head"]
# Extra processes from the app's image (name -> {"command": [...], "stop_grace_period": 30}): workers, schedulers.
app_processes = {}
# Every app container (API, processes, release step) runs with no Linux capabilities and no-new-privileges:
# an app listening on its port as its image's user needs none. Names given back, for an image that needs
# one (e.g. ["CHOWN", "SETUID", "SETGID"] for an entrypoint that starts as root and drops to a user).
app_cap_add = []
# Run the app containers with a read-only root file system (a fresh tmpfs on /tmp, nothing else writable).
app_read_only = False
# Releases kept on the server for rollback (with their images).
releases_kept = 5
# Seconds a deploy waits for another one to finish before it gives up (0: give up at once).
deploy_lock_timeout = 300
# Seconds each step of a release may take on the server while it holds the deploy lock; past it the step
# is stopped and the running version stays (a hung step would otherwise block every later deploy,
# rollback and restore). The image build (app_image_source = "build"):
build_timeout = 1800
# Pulling the image (app_image_source = "registry"), and the registry login before it.
pull_timeout = 600
# The release step (app_release_command, e.g. the migrations): its container is removed when stopped.
release_step_timeout = 600

# --- app: resources and dependencies ---
# Host port of the app on 127.0.0.1 (blue slot); the green slot, used during a release, is api_port + 1.
api_port = 8000
# Worker processes ({api_workers} in app_env).
api_workers = 2
# Seconds a request may take before its worker is restarted ({api_timeout}).
api_timeout = 30
# Seconds in-flight requests get to finish when a version stops ({api_graceful_timeout}; also Docker's stop grace).
api_graceful_timeout = 30
# Requests a worker serves before it is recycled ({api_max_requests}); 0: never. Off by default: a
# recycled uvicorn worker drops connections it had accepted, 502s under load (gunicorn#2567, #3038).
api_max_requests = 0
# Random spread added to api_max_requests ({api_max_requests_jitter}).
api_max_requests_jitter = 100
# Memory limit of the app container.
api_memory_limit = "512m"
# CPU limit of the app container (None: no limit).
api_cpus = 1.0
# Run a PostgreSQL container (False: no database, no {postgres_*} values).
postgres_enabled = True
# Run a Redis container (False: no Redis, no {redis_url}).
redis_enabled = True
# Memory limit of the PostgreSQL container.
postgres_memory_limit = "1g"
# Memory limit of the Redis container.
redis_memory_limit = "256m"
# PostgreSQL role the app uses.
postgres_user = "app"
# PostgreSQL database the app uses.
postgres_db = "app"
# Subnet of the compose network; its first address is the gateway the app trusts for X-Forwarded-* ({proxy_ip}).
docker_network_subnet = "172.30.0.0/24"

# --- proxy ---
# Domain names served over HTTPS; at least one. The first is the certificate's name.
domains = []
# Largest request body nginx accepts.
proxy_client_max_body_size = "10m"
# Seconds to connect to the API on this server.
proxy_connect_timeout = 5
# Milliseconds to connect to the API on a swarm worker (10-5000), in place of proxy_connect_timeout:
# a node that does not answer in time is left out and the request goes to another (even a POST:
# nothing of it was sent). Below 1 s a lost SYN (TCP resends it after 1 s) counts as a failure too.
cluster_connect_timeout_ms = 250
# Seconds nginx leaves out a swarm worker that failed a request (1-300), then tries it again: each
# nginx worker process sends one request per period to a dead node, and sees a returned one that late.
cluster_fail_timeout = 10
# Seconds to wait for the API's response.
proxy_read_timeout = 60
# Seconds to send a request to the API.
proxy_send_timeout = 60
# Seconds nginx keeps an idle upstream connection; below the app server's own keep-alive (uvicorn: 5 s),
# so nginx never reuses a connection the app is closing (that would be a 502).
proxy_upstream_keepalive_timeout = 4
# Seconds nginx keeps using one busy upstream connection before closing it after a response: a release
# switches new connections to the new slot without a reload, and the old slot stops once nginx has
# closed its connections to it, so this bounds how long a release waits under steady traffic.
proxy_upstream_keepalive_time = 5
# Requests per second per client (an IPv4 address, an IPv6 /64).
rate_limit_rps = 10
# Requests above the rate a client may burst before getting 429.
rate_limit_burst = 20
# Requests per second per client on strict_rate_limit_paths.
strict_rate_limit_rps = 1
# Burst on strict_rate_limit_paths.
strict_rate_limit_burst = 5
# Path prefixes under the strict limit (e.g. login).
strict_rate_limit_paths = ["/auth/"]
# Exact paths never rate limited besides app_health_path; keep paths that touch the database out of it.
rate_limit_exempt_paths = []
# Path prefixes proxied as WebSockets.
websocket_paths = ["/ws/"]
# Seconds a WebSocket may stay silent before nginx closes it.
websocket_read_timeout = 3600
# Requests one client (an IPv4 address, an IPv6 /64) may have open at once, WebSockets included; 429 above.
# Over HTTP/2 each request in flight counts. At most 1024, summed over the apps of a server.
max_connections_per_client = 100
# Strict-Transport-Security max-age in seconds.
hsts_max_age = 63072000

# --- tls ---
# Contact address for the ACME account (expiry notices).
letsencrypt_email = ""
# ACME server: "letsencrypt", "letsencrypt-staging" or "custom" (acme_directory_url).
acme_server = "letsencrypt"
# ACME directory URL when acme_server = "custom".
acme_directory_url = None
# CA bundle on this machine that signs the custom ACME server's HTTPS certificate.
acme_ca_bundle = None

# --- backup ---
# Scheduled backups of PostgreSQL (pg_dump -Fc) and Redis (a BGSAVE snapshot) on the server, kept in backup_dir.
backup_enabled = True
# Root-only (0700) directory on the server holding the backups.
backup_dir = "/var/backups/onebox"
# When the backup timer runs (systemd OnCalendar, the server's time zone).
backup_on_calendar = "*-*-* 03:15:00"
# Retention, locally and off-site (restic's --keep-last): the newest backups kept whatever their age.
backup_keep_last = 3
# Retention: the newest backup of each of the last N days that have one.
backup_keep_daily = 7
# Retention: the newest backup of each of the last N weeks that have one.
backup_keep_weekly = 4
# The host check fails when the last successful backup is older than this.
backup_max_age_hours = 26
# Off-site copies with restic: "s3:https://HOST/BUCKET", "sftp:USER@HOST:/PATH" or "rest:https://HOST/PATH";
# None: local only. Password ONEBOX_BACKUP_RESTIC_PASSWORD (keep a copy away from the server), S3 keys
# ONEBOX_BACKUP_S3_ACCESS_KEY_ID / ONEBOX_BACKUP_S3_SECRET_ACCESS_KEY.
backup_restic_repository = None
# Region of an S3 repository (most S3-compatible servers accept "us-east-1").
backup_s3_region = "us-east-1"
# Days between two `restic check` runs of the off-site repository (done by the backup run).
backup_restic_check_interval_days = 7
# The server's name off-site: its snapshots are restic's --host <name>, tagged app=<app_name>, and
# retention and restores take this server's only. None: the inventory's host name, which a rebuilt
# server keeps (restore it before its first nightly run). Two servers sharing a repository need two names.
backup_server_name = None
# Point-in-time recovery of PostgreSQL with pgBackRest: WAL archived as it is written, to the server
# (and to the off-site bucket when backup_restic_repository is "s3:https://..."); `onebox restore
# INVENTORY --from local|offsite --to TIME --yes` brings the database back to any moment in the window
# `onebox backup list` shows. PostgreSQL then runs from postgres_image with pgBackRest added (an
# image derived on the server; turning this on restarts PostgreSQL once).
backup_pitr_enabled = False
# A full base backup when the last is older than this; a differential one on the other runs of the timer.
backup_pitr_full_every_days = 7
# Full backups kept (with their differentials and WAL): the window is about this many times the above.
backup_pitr_keep_full = 2
# Seconds after which a WAL segment with writes in it is archived anyway (the recovery point when writes are few).
backup_pitr_archive_timeout = 60
# PEM file on this machine of the CA that signs a private S3 server's HTTPS certificate (None: the system's CAs).
backup_s3_ca_bundle = None

# --- monitoring and alerts ---
# Prometheus, Alertmanager and the node, blackbox, PostgreSQL, Redis and nginx exporters from the
# distribution, all on 127.0.0.1 (False removes them).
monitoring_enabled = True
# Seconds between two scrapes (and two rule evaluations).
monitoring_scrape_interval = 30
# How long Prometheus keeps samples (15d, 8w...).
monitoring_retention = "15d"
# The most disk Prometheus's samples may take (MB or GB); the oldest go first.
monitoring_retention_size = "512MB"
# Memory limit of Prometheus (systemd MemoryMax), sized for a 1-2 GB VPS.
monitoring_memory_max = "256M"
# The public URL's probe verifies its certificate (False for a private CA the server does not trust).
monitoring_probe_verify_tls = True
# Seconds a condition must hold before its alert fires (short blips do not page anyone).
alert_for_seconds = 120
# Alert when a filesystem is fuller than this (percent).
alert_disk_used_percent = 90
# Alert when less memory than this is available (percent).
alert_memory_available_percent = 10
# Alert when an app's certificate expires within this many days.
alert_certificate_days = 14
# Seconds over which request rates, the 5xx share and latencies are measured for their alerts.
alert_rate_window_seconds = 300
# Alert when this share of an app's responses are 5xx (needs app_metrics_path).
alert_5xx_ratio = 0.05
# Alert when an app's p95 latency is above this (seconds; needs app_metrics_path).
alert_latency_p95_seconds = 1.0
# Alert when an app's p99 latency is above this (seconds).
alert_latency_p99_seconds = 2.5
# Alert when a container restarted this many times within 15 minutes.
alert_restarts = 3
# Seconds Alertmanager waits to group the first alerts of a new group before it sends them.
alert_group_wait_seconds = 30
# Seconds between two messages about one group (new alerts in it, or "resolved").
alert_group_interval_seconds = 300
# Hours before a still-firing alert is sent again.
alert_repeat_interval_hours = 4
# Webhook for alerts (generic JSON, Alertmanager's; ntfy and Slack-style receivers accept it); None: none.
# A URL with a token (Slack, Discord) is a secret: supply it as ONEBOX_ALERT_WEBHOOK_URL instead (never printed).
alert_webhook_url = None
# E-mail alerts to these addresses (needs alert_smtp_host and alert_email_from; password ONEBOX_ALERT_SMTP_PASSWORD).
alert_email_to = []
# Sender of alert e-mails.
alert_email_from = None
# SMTP server for alert e-mails.
alert_smtp_host = None
# Its port (587: submission with STARTTLS).
alert_smtp_port = 587
# SMTP user name (None: no authentication).
alert_smtp_username = None
# Refuse to send alert e-mails without STARTTLS.
alert_smtp_require_tls = True

# --- several apps on one server ---
# Apps of this server: name (lowercase letters, digits, -) -> that app's own settings (any app_*, api_*,
# postgres_*/redis_* of the app, docker_network_subnet, proxy, rate-limit, WebSocket and backup_* setting but
# backup_dir); the rest comes from the settings above. Empty: one app, the settings above (its files keep
# today's names). Each app has its own compose projects, slots, secrets, PostgreSQL and Redis, nginx site and
# certificate, and its app_dir defaults to /opt/onebox-<name>. E.g.
#   apps = {"api": {"domains": ["api.example.com"]},
#           "jobs": {"domains": ["jobs.example.com"], "app_source_dir": "../jobs", "api_port": 8010,
#                    "docker_network_subnet": "172.30.1.0/24"}}
apps = {}
# Apps taken off this server: their containers stop and their nginx site goes; their database, volumes and
# backups stay until `onebox purge INVENTORY --app NAME --yes`. An app the server has that is in neither
# apps nor apps_removed stops the deploy before anything changes.
apps_removed = []
