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
