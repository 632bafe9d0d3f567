"""One JSON object per log line on stdout, tagged with the release and the service."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from jobs import config

# Attributes every LogRecord has; anything else came through `extra=` and becomes a field.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}
# The liveness probe runs every few seconds: its successful requests are not worth a line.
_QUIET_PATHS = {"/healthz"}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.release = config.release()
        self.service = os.environ.get("ONEBOX_SERVICE") or None

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "release": self.release,
        }
        if self.service:
            entry["service"] = self.service
        access = _access_fields(record)
        if access:
            entry.update(access)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _access_fields(record: logging.LogRecord) -> dict[str, object] | None:
    """uvicorn's access line as fields: client, method, path, status."""
    if record.name != "uvicorn.access" or not isinstance(record.args, tuple) or len(record.args) != 5:
        return None
    client, method, path, _http_version, status = record.args
    return {"client": client, "method": method, "path": path, "status": status}


class QuietHealthChecks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        access = _access_fields(record)
        return not (access and str(access["path"]).split("?", 1)[0] in _QUIET_PATHS and access["status"] == 200)


def setup_logging() -> None:
    """Root and uvicorn's loggers to stdout as JSON; LOG_LEVEL (default info). Idempotent."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(QuietHealthChecks())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "info").upper())
    # uvicorn gives its loggers their own plain-text handlers before it imports the app: route them to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
