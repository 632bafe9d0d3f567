"""gunicorn settings, tuned only through environment variables.

Run as `gunicorn --config gunicorn.conf.py` from the directory holding `app/`.
"""

import ipaddress
import os
import shutil
import tempfile


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _allowed_proxies(raw: str) -> str:
    # Normalise "172.30.0.1/16" to "172.30.0.0/16": gunicorn's strict parser
    # would refuse to start on the former. "*" (trust everyone) passes through.
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    return ",".join(
        str(ipaddress.ip_network(p, strict=False)) if "/" in p else p for p in parts
    )


# Prometheus multiprocess mode: every worker writes its samples into this
# directory and /metrics merges them. It must be set before any worker imports
# prometheus_client, i.e. here in the master, before the fork.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_own_metrics_dir = not _metrics_dir
if _own_metrics_dir:
    _metrics_dir = tempfile.mkdtemp(prefix="prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

wsgi_app = "app.main:create_app()"
worker_class = "uvicorn_worker.UvicornWorker"
bind = f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int("WEB_CONCURRENCY", 2)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycling workers (to cap slow leaks) is off: a uvicorn worker that recycles closes the
# connections it had just accepted, and a proxy answers those requests with 502 under load
# (gunicorn issues #2567, #3038). Set GUNICORN_MAX_REQUESTS for an app that leaks.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# Only these peers may set X-Forwarded-For/-Proto. UvicornWorker hands this
# list to uvicorn's ProxyHeadersMiddleware; anyone else's headers are ignored,
# so a direct client can't spoof its address.
forwarded_allow_ips = _allowed_proxies(
    os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
)

# gunicorn >= 25.1 opens a control socket under $HOME by default; the
# container user has no writable home and needs no runtime control.
# (Older gunicorn ignores unknown settings in this file.)
control_socket_disable = True

# Worker heartbeat files on tmpfs: a slow overlay filesystem can otherwise
# make gunicorn think workers are hung.
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"

# Logs: JSON on stdout. The app's middleware writes the access log, so
# gunicorn's own is off.
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {
            "level": loglevel.upper(),
            "handlers": ["stdout"],
            "propagate": False,
        },
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
}


def on_starting(server) -> None:
    # Samples left by a previous run would be summed into the new one.
    for entry in os.listdir(_metrics_dir):
        path = os.path.join(_metrics_dir, entry)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def child_exit(server, worker) -> None:
    # Drop the dead worker's live gauges (others stay, as counters must).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
