"""Documents as onebox 0.3.0 (commit ceb63c7) wrote them, to check that this onebox still reads
what an older one left on a server. Each was printed by that commit's own code, not written by hand."""

from __future__ import annotations

# deploys/backup.py's backup_config(settings(), "prod.example.com") of 0.3.0 (tests/unit/test_backup_settings.py's
# settings()): no version field.
BACKUP_JSON_0_3_0 = """{
  "enabled": true,
  "app_name": "onebox",
  "app_dir": null,
  "postgres_enabled": true,
  "redis_enabled": true,
  "postgres_user": "app",
  "postgres_db": "app",
  "backup_dir": "/var/backups/onebox",
  "state_dir": "/var/lib/onebox/backup",
  "secrets_file": "/etc/onebox/backup.env",
  "keep_last": 3,
  "keep_daily": 7,
  "keep_weekly": 4,
  "restic_repository": null,
  "server_name": "prod.example.com",
  "s3_region": "us-east-1",
  "restic_check_interval_days": 7,
  "release_tool": "/usr/local/sbin/onebox-release",
  "start_timeout": 120,
  "s3_ca_file": null,
  "pitr_enabled": false,
  "pitr_offsite": false,
  "pitr_full_every_days": 7,
  "pitr_fingerprint": null,
  "project_dir": "/opt/onebox"
}
"""

# The keys 0.3.0 added to the file of 0.2.0 (commit 4e8998f): a 0.2.0 file is this one without them.
ADDED_BY_0_3_0 = ("s3_ca_file", "pitr_enabled", "pitr_offsite", "pitr_full_every_days", "pitr_fingerprint", "project_dir")

# `onebox-release --app-dir DIR state` of 0.3.0 after a first release (tests/unit/test_engine.py's deployed()):
# no version field.
STATE_REPORT_0_3_0 = (
    '{"installed": true, "live": {"id": "20261206-063632-39504a", "inputs": '
    '"39504ab6d58828ffc6a2c17e34a821512237406e7167146ce590a8cd6426c2c5", "created": "2026-12-06T06:36:32Z"}, '
    '"transition": null, "deps_inputs": "7a2d06639878c74de18188fd489a15b2747c9cfa96bb070f1feade7dde6dcc77", '
    '"problems": [], "slot": "blue", "maintenance": false, "secrets_changed": false}'
)
# 0.3.0's report of an app it cannot read (onebox/server/cli.py), and of an interrupted release, whose
# transition is state.json's Transition.__dict__.
STATE_REPORT_0_3_0_NOT_INSTALLED = '{"installed": false, "why": "no spec at /opt/onebox/spec.json"}'
STATE_REPORT_0_3_0_INTERRUPTED = (
    '{"installed": true, "live": {"id": "r1", "inputs": "abc", "created": "2026-12-06T06:36:32Z"}, '
    '"transition": {"release": "r2", "slot": "green", "phase": "switching", "since": "2026-12-06T06:40:00Z", '
    '"kind": "release"}, "deps_inputs": "d", "problems": ["api is exited"], "slot": "blue", "maintenance": true}'
)

# deploys/monitoring.py's monitoring_config(settings(alert_webhook_url=..., **EMAIL)) of 0.5.0 (commit e5209a0,
# tests/unit/test_alert_rules.py's settings): no version field.
MONITORING_JSON_0_5_0 = """{
  "prometheus": "http://127.0.0.1:9090",
  "alertmanager": "http://127.0.0.1:9093",
  "routes": [
    "webhook",
    "e-mail"
  ]
}
"""

# contract.apps_text of 0.5.0 (commit e5209a0) for {"onebox": RegisteredApp("/opt/onebox", None),
# "jobs": RegisteredApp("/opt/onebox-jobs", "jobs", removed=True)}: app name -> entry, no version.
APPS_JSON_0_5_0 = """{
  "jobs": {
    "dir": "/opt/onebox-jobs",
    "key": "jobs",
    "removed": true
  },
  "onebox": {
    "dir": "/opt/onebox",
    "key": null,
    "removed": false
  }
}
"""
