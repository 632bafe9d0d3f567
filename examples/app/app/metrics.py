"""Prometheus metrics, aggregated across gunicorn workers when
PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it before forking)."""

import os

from fastapi import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
# livesum: the sum over workers that are alive (dead workers' files are ignored).
WEBSOCKETS = Gauge(
    "websocket_connections",
    "Open WebSocket connections",
    ["route"],
    multiprocess_mode="livesum",
)

# The running release (ONEBOX_RELEASE, set by onebox), as Prometheus' usual info-style gauge.
RELEASE = Gauge("app_release_info", "The release this process runs", ["release"], multiprocess_mode="liveall")
RELEASE.labels(release=os.environ.get("ONEBOX_RELEASE", "unknown")).set(1)


def render() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A fresh registry per scrape reading every worker's files; the
        # default registry would only report the worker that got the request.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
