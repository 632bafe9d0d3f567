"""The contract between the controller and the server, each fact once.

The controller (deploys/, onebox/rollout.py) imports this package; the server's tools
(onebox/server/, shipped as one zipapp) carry a copy of it. Standard library only.

What is here: the paths both sides name, the upstream file's format and the names an operator
types (layout.py); the spec's version and shape and the hashes that say
whether a release is what the settings ask for (documents.py); apps.json (apps_registry.py); an
app's directory and its supplied secrets (app_dir.py); image references and what a CI
deploy records (images.py); backup.json (backup_config.py); the state report the controller's
change detection reads (state_report.py). Everything is named from here
(`contract.X`), so which module holds a fact is this package's business only.
"""

from onebox.contract import compose
from onebox.contract.app_dir import (
    SPEC_NAME,
    SUPPLIED_SECRETS_VERSION,
    UPLOAD_GLOB,
    AppDir,
    SuppliedSecrets,
    parse_supplied_secrets,
    supplied_secrets_text,
    upload_name,
)
from onebox.contract.apps_registry import APPS_VERSION, RegisteredApp, apps_text, parse_apps
from onebox.contract.backup_config import (
    ADDED_BACKUP_FIELDS,
    BACKUP_CONFIG_VERSION,
    BACKUP_SECRET_NAMES,
    RESTIC_PASSWORD,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    BackupConfig,
    backup_config_text,
    load_backup_config,
    parse_secret_env,
    secret_env_text,
)
from onebox.contract.documents import (
    ADDED_FIELDS,
    SPEC_VERSION,
    ContractError,
    Image,
    Process,
    ReleaseSpec,
    Spec,
    deps_hash,
    inputs_hash,
)
from onebox.contract.images import (
    CI_DEPLOY_COMMAND,
    CI_IMAGE_FILE,
    CiImageRecord,
    ci_image_text,
    hub_name,
    image_repository,
    is_digest,
    parse_ci_image,
    same_repository,
)
from onebox.contract.layout import (
    ALERTMANAGER_URL,
    APP_DIR_FILE,
    APP_KEY_PATTERN,
    APP_NAME_PATTERN,
    APPS_FILE,
    ATTENTION,
    BACKUP_COMMAND,
    BACKUP_CONFIG,
    BACKUP_LAST_RUN,
    BACKUP_LAST_SUCCESS,
    BACKUP_NAME,
    BACKUP_STATE_DIR,
    EXIT_ATTENTION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXPORTER_TARGETS_DIR,
    FAIL_TIMEOUT_BEFORE,
    LEGACY_APP_DIR,
    LIB_DIR,
    MAINTENANCE_DIR,
    MAINTENANCE_FLAG,
    MAINTENANCE_PAGE,
    MAINTENANCE_RETRY_AFTER,
    MONITOR_ROLES_FILE,
    MONITORING_FILE,
    NGINX_DIR,
    NGINX_STATUS,
    PITR_READY,
    POSTGRES_EXPORTER_CONFIG,
    POSTGRES_MONITOR_PASSWORD,
    PROMETHEUS_URL,
    RELEASE_COMMAND,
    RELEASE_ID,
    RESTIC_CHECK_FAILED,
    RESTORE_SOURCES,
    SERVER_ZIPAPP,
    SHIM,
    SLOTS,
    SWARM_NODE_LABEL,
    SWITCH_ADDRESS,
    TLS_DIR,
    VERSION_FILE,
    AppFiles,
    cert_dir,
    check_backup_name,
    check_release_id,
    env_file_text,
    env_value_problem,
    node_address,
    other_slot,
    recovery_target,
    slot_port,
    switched_upstream_text,
    upstream_path,
    upstream_port,
    upstream_text,
)
from onebox.contract.monitoring_config import (
    MONITORING_CONFIG_VERSION,
    MonitoringConfig,
    load_monitoring_config,
    monitoring_config_text,
)
from onebox.contract.state_report import (
    NOT_INSTALLED,
    STATE_REPORT_VERSION,
    LiveRelease,
    ReleaseTransition,
    StateReport,
    parse_state_report,
    state_report_text,
)

__all__ = [
    "compose",
    "LEGACY_APP_DIR",
    "APP_KEY_PATTERN", "APP_NAME_PATTERN", "RESTORE_SOURCES",
    "CiImageRecord", "ci_image_text", "parse_ci_image",
    "BACKUP_SECRET_NAMES", "RESTIC_PASSWORD", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "parse_secret_env",
    "secret_env_text",
    "SPEC_NAME", "SUPPLIED_SECRETS_VERSION", "UPLOAD_GLOB", "AppDir", "SuppliedSecrets", "parse_supplied_secrets",
    "supplied_secrets_text", "upload_name",
    "APPS_VERSION", "ADDED_BACKUP_FIELDS",
    "BACKUP_CONFIG_VERSION", "BackupConfig", "LiveRelease", "NOT_INSTALLED", "ReleaseTransition",
    "STATE_REPORT_VERSION", "StateReport", "backup_config_text", "load_backup_config", "parse_state_report",
    "state_report_text", "MONITORING_CONFIG_VERSION", "MonitoringConfig", "load_monitoring_config",
    "monitoring_config_text",
    "ADDED_FIELDS", "ALERTMANAGER_URL", "ATTENTION", "EXIT_ATTENTION", "EXIT_FAILED", "EXIT_INTERRUPTED",
    "EXIT_OK", "EXIT_USAGE", "APPS_FILE", "APP_DIR_FILE", "BACKUP_COMMAND", "BACKUP_CONFIG", "BACKUP_NAME",
    "BACKUP_STATE_DIR", "BACKUP_LAST_RUN", "BACKUP_LAST_SUCCESS", "PITR_READY", "RESTIC_CHECK_FAILED",
    "CI_DEPLOY_COMMAND", "CI_IMAGE_FILE",
    "EXPORTER_TARGETS_DIR", "FAIL_TIMEOUT_BEFORE",
    "LIB_DIR", "MAINTENANCE_DIR", "MAINTENANCE_FLAG", "MAINTENANCE_PAGE", "MAINTENANCE_RETRY_AFTER",
    "MONITORING_FILE", "MONITOR_ROLES_FILE", "NGINX_DIR", "NGINX_STATUS", "POSTGRES_EXPORTER_CONFIG",
    "POSTGRES_MONITOR_PASSWORD", "PROMETHEUS_URL", "RELEASE_COMMAND", "RELEASE_ID", "SERVER_ZIPAPP", "SHIM",
    "SLOTS", "SPEC_VERSION", "SWARM_NODE_LABEL", "SWITCH_ADDRESS",
    "TLS_DIR", "VERSION_FILE", "AppFiles", "ContractError", "Image", "Process",
    "RegisteredApp", "ReleaseSpec", "Spec", "apps_text", "cert_dir", "check_backup_name", "check_release_id",
    "deps_hash", "env_file_text", "env_value_problem", "hub_name", "image_repository", "inputs_hash", "is_digest",
    "node_address", "other_slot", "parse_apps", "recovery_target", "same_repository", "slot_port", "switched_upstream_text",
    "upstream_path", "upstream_port",
    "upstream_text",
]
