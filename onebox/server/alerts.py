"""What is firing on this server, for `onebox-release status`.

Asked of Prometheus, not Alertmanager: Alertmanager holds an alert until its endsAt passes (up to
four resend delays after the cause is gone), so a status run right after a fix would still name it.
Prometheus drops it at the first rule evaluation that finds the cause gone. Alertmanager is asked
only which alerts someone silenced (or an inhibition hides): those are left out, as they page nobody.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from onebox import contract


def get_json(url: str):  # noqa: ANN201 - the JSON answer
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback, our own URLs
        return json.load(response)


def suppressed(alertmanager: str) -> set[frozenset]:
    """The label sets Alertmanager holds silenced or inhibited (none when it does not answer)."""
    try:
        held = get_json(f"{alertmanager}/api/v2/alerts?active=false&silenced=true&inhibited=true")
    except (OSError, ValueError):
        return set()
    return {frozenset(alert["labels"].items()) for alert in held if alert.get("status", {}).get("state") == "suppressed"}


def firing(app_name: str, config: str = contract.MONITORING_FILE) -> tuple[list[str] | None, list[str]]:
    """(where alerts go, None when monitoring is off; the alerts firing now about this app or the
    server, one line each)."""
    try:
        text = Path(config).read_text()
    except OSError:
        return None, []
    monitoring = contract.load_monitoring_config(text, config)  # ContractError: another onebox's file
    try:
        answer = get_json(f"{monitoring.prometheus}/api/v1/alerts")
        alerts = [alert for alert in answer["data"]["alerts"] if alert["state"] == "firing"]
    except (OSError, ValueError, KeyError) as error:
        return monitoring.routes, [f"Prometheus does not answer ({error})"]
    quiet = suppressed(monitoring.alertmanager) if alerts else set()
    return monitoring.routes, [
        f"{alert['labels'].get('alertname')}: {alert.get('annotations', {}).get('summary', '')}"
        for alert in alerts
        if alert["labels"].get("app") in (None, app_name) and frozenset(alert["labels"].items()) not in quiet]
