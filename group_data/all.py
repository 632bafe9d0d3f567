# Every onebox setting, with its default. Per-group files (group_data/<group>.py)
# override these. Secrets (app_secret_key, postgres_password, registry_password) are
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

# --- docker ---
# Where Docker Engine and Compose v2 come from: "distro" (Debian/Ubuntu packages) or "docker" (Docker's apt repository).
docker_source = "distro"
# Base URL of Docker's apt repository, used when docker_source = "docker".
docker_apt_url = "https://download.docker.com/linux"
# Container log rotation: size of one json-file log.
docker_log_max_size = "10m"
# Container log rotation: how many log files to keep.
docker_log_max_file = 3
# Keep containers running while dockerd restarts.
docker_live_restore = True

# --- app ---
# Compose project name; also names the image, volumes and network.
app_name = "onebox"
# Directory on the server holding the compose project.
app_dir = "/opt/onebox"
# How the API image arrives: "build" (on the server, from app_source_dir), "registry" (pull app_image),
# or "tarball" (built on this machine, loaded there).
app_image_source = "build"
# The application's source directory on this machine (has a Dockerfile).
app_source_dir = "examples/app"
# The API image name (a full registry reference when app_image_source = "registry").
app_image = "onebox/api"
# Base image the API is built from (Dockerfile build argument PYTHON_IMAGE).
app_python_image = "python:3.13-slim"
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
# Port the API is published on, bound to 127.0.0.1 only.
api_port = 8000
# Gunicorn worker processes.
api_workers = 2
# Seconds a request may take before its worker is restarted.
api_timeout = 30
# Seconds in-flight requests get to finish on shutdown.
api_graceful_timeout = 30
# Requests a worker serves before it is recycled (guards against leaks).
api_max_requests = 1000
# Random spread added to api_max_requests so workers do not recycle together.
api_max_requests_jitter = 100
# Memory limit of the API container.
api_memory_limit = "512m"
# CPU limit of the API container (None: no limit).
api_cpus = 1.0
# Memory limit of the PostgreSQL container.
postgres_memory_limit = "1g"
# Memory limit of the Redis container.
redis_memory_limit = "256m"
# PostgreSQL role the API uses.
postgres_user = "app"
# PostgreSQL database the API uses.
postgres_db = "app"
# Subnet of the compose network; its first address is the gateway the API trusts for X-Forwarded-*.
docker_network_subnet = "172.30.0.0/24"

# --- proxy ---
# Domain names served over HTTPS; at least one. The first is the certificate's name.
domains = []
# Largest request body nginx accepts.
proxy_client_max_body_size = "10m"
# Seconds to connect to the API.
proxy_connect_timeout = 5
# Seconds to wait for the API's response.
proxy_read_timeout = 60
# Seconds to send a request to the API.
proxy_send_timeout = 60
# Requests per second per client IP.
rate_limit_rps = 10
# Requests above the rate a client may burst before getting 429.
rate_limit_burst = 20
# Requests per second per client IP on strict_rate_limit_paths.
strict_rate_limit_rps = 1
# Burst on strict_rate_limit_paths.
strict_rate_limit_burst = 5
# Path prefixes under the strict limit (e.g. login).
strict_rate_limit_paths = ["/auth/"]
# Exact paths never rate limited (health checks).
rate_limit_exempt_paths = ["/health", "/ready"]
# Path prefixes proxied as WebSockets.
websocket_paths = ["/ws/"]
# Seconds a WebSocket may stay silent before nginx closes it.
websocket_read_timeout = 3600
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
