"""monitoring.json (contract.MONITORING_FILE): where `onebox-release status` asks which alerts
fire, and where they are sent. The controller writes it (deploys/monitoring.py) with
monitoring_config_text; the server reads it (onebox/server/alerts.py) with
load_monitoring_config. Standard library only (the server's zipapp carries it)."""

from __future__ import annotations

import dataclasses
import json

from onebox.contract.backup_config import CONVERGE_HINT
from onebox.contract.documents import json_object, load_checked, message_version
from onebox.contract.layout import ALERTMANAGER_URL, PROMETHEUS_URL

# Raise it with every change of the shape below that an older server program cannot read. A file
# without a version was written by onebox 0.5.0 or before, in the shape of version 1.
MONITORING_CONFIG_VERSION = 1


@dataclasses.dataclass(frozen=True)
class MonitoringConfig:
    routes: list[str]  # where alerts are sent ("webhook", "e-mail"); none: nobody is told
    prometheus: str = PROMETHEUS_URL
    alertmanager: str = ALERTMANAGER_URL
    version: int = MONITORING_CONFIG_VERSION


def monitoring_config_text(config: MonitoringConfig) -> str:
    """The controller's one writer of monitoring.json."""
    return json.dumps(dataclasses.asdict(config), indent=2) + "\n"


def load_monitoring_config(text: str, path: str) -> MonitoringConfig:
    """The server's one reader of monitoring.json (`path` names it in errors): every field checked."""
    data = json_object(text, path)
    version = message_version(data, MONITORING_CONFIG_VERSION, path, "onebox-release", CONVERGE_HINT)
    config: MonitoringConfig = load_checked(MonitoringConfig, {**data, "version": version}, path)
    return config
