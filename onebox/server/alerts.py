"""What Alertmanager on this server says is firing, for `onebox-release status`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from onebox import contract


def firing(app_name: str, config: str = contract.MONITORING_FILE) -> tuple[list[str] | None, list[str]]:
    """(where alerts go, None when monitoring is off; the alerts firing now about this app or the
    server, one line each)."""
    try:
        monitoring = json.loads(Path(config).read_text())
    except (OSError, ValueError):
        return None, []
    try:
        url = f"{monitoring['alertmanager']}/api/v2/alerts?active=true&silenced=false&inhibited=false"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback, our own URL
            alerts = json.load(response)
    except (OSError, ValueError) as error:
        return monitoring["routes"], [f"Alertmanager does not answer ({error})"]
    return monitoring["routes"], [
        f"{alert['labels'].get('alertname')}: {alert.get('annotations', {}).get('summary', '')}"
        for alert in alerts if alert["labels"].get("app") in (None, app_name)]
