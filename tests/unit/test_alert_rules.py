"""The monitoring files onebox renders are accepted by the tools that read them (promtool,
amtool, the blackbox exporter), and the alert rules fire, with the settings' thresholds, on
the series a breaking server produces (promtool test rules)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_apps_settings import two_apps
from test_settings import valid

from onebox import contract
from onebox.deploys.monitoring import PACKAGES, go_runtime, monitoring_config
from onebox.render import render
from onebox.settings import Settings, SettingsError, validate_settings

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (make setup)")


def settings(**overrides: object) -> Settings:
    return validate_settings(valid(**overrides))


def tool(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def alertmanager(s: Settings, smtp_password: str) -> str:
    """alertmanager.yml as the monitoring role renders it: the secrets passed in the clear."""
    return render("prometheus/alertmanager.yml.j2", s=s, smtp_password=smtp_password,
                  webhook_url=s.alert_webhook_url.get_secret_value() if s.alert_webhook_url else "")


def rendered(s: Settings, tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("onebox.rules.yml", "prometheus.yml", "alertmanager.yml",
                                                "blackbox.yml")}
    paths["onebox.rules.yml"].write_text(render("prometheus/onebox.rules.yml.j2", s=s))
    paths["prometheus.yml"].write_text(render("prometheus/prometheus.yml.j2", s=s, rules=paths["onebox.rules.yml"], app_nodes={},
                                                        targets_dir=str(tmp_path)))
    paths["alertmanager.yml"].write_text(alertmanager(s, "a-password"))
    paths["blackbox.yml"].write_text(render("prometheus/blackbox.yml.j2", s=s))
    return paths


EMAIL = {"alert_email_to": ["ops@example.com"], "alert_email_from": "onebox@example.com",
         "alert_smtp_host": "smtp.example.com", "alert_smtp_username": "onebox"}


@pytest.mark.parametrize("data", [valid(), valid(alert_webhook_url="https://ntfy.sh/onebox", **EMAIL), two_apps()],
                         ids=["defaults", "webhook and e-mail", "two apps"])
def test_the_tools_accept_every_rendered_file(data: dict, tmp_path: Path) -> None:
    paths = rendered(validate_settings(data), tmp_path)
    for argv in (["promtool", "check", "rules", paths["onebox.rules.yml"]],
                 ["promtool", "check", "config", paths["prometheus.yml"]],
                 ["amtool", "check-config", paths["alertmanager.yml"]],
                 ["prometheus-blackbox-exporter", "--config.check", "--config.file", paths["blackbox.yml"]]):
        result = tool(*map(str, argv))
        assert result.returncode == 0, (argv, result.stdout, result.stderr)


def test_routes_follow_the_settings_and_resolved_messages_are_sent(tmp_path: Path) -> None:
    s = settings(alert_webhook_url="https://hooks.example.com/onebox", **EMAIL)
    config = yaml.safe_load(alertmanager(s, "pass-word-of-16-chars"))
    receiver = config["receivers"][0]
    assert receiver["webhook_configs"] == [{"url": "https://hooks.example.com/onebox", "send_resolved": True}]
    assert receiver["email_configs"] == [{"to": "ops@example.com", "send_resolved": True}]
    assert config["global"]["smtp_auth_password"] == "pass-word-of-16-chars"
    assert config["route"]["group_by"] == ["alertname", "app"]
    assert json.loads(monitoring_config(s))["routes"] == ["webhook", "e-mail"]
    bare = yaml.safe_load(alertmanager(settings(), ""))
    assert bare["receivers"] == [{"name": "onebox"}] and json.loads(monitoring_config(settings()))["routes"] == []


def default_file(service: str, s: Settings) -> str:
    return render(f"default/{service}.j2", s=s, go=go_runtime(s, service), textfile_dir="/t", config="/c",
                  nginx_status=contract.NGINX_STATUS)


def test_everything_listens_on_loopback_only() -> None:
    for service in PACKAGES:
        assert "--web.listen-address=127.0.0.1:" in default_file(service, settings()), service
    assert contract.NGINX_STATUS.startswith("127.0.0.1:")
    assert "--cluster.listen-address=" in default_file("prometheus-alertmanager", settings())


def environment(text: str) -> dict[str, str]:
    """The variables systemd's EnvironmentFile= gives the service (comments and blank lines skipped)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_every_daemon_gets_a_tighter_go_collector_and_prometheus_a_limit_below_its_memory_max() -> None:
    for service in PACKAGES:
        env = environment(default_file(service, settings()))
        assert env["GOGC"] == "50", service
        assert env["GOMEMLIMIT"].endswith("MiB") and int(env["GOMEMLIMIT"][:-3]) >= 32, service
    assert environment(default_file("prometheus", settings()))["GOMEMLIMIT"] == "192MiB"  # 3/4 of 256M
    assert environment(default_file("prometheus", settings(monitoring_memory_max="1G")))["GOMEMLIMIT"] == "768MiB"
    assert environment(default_file("prometheus", settings(monitoring_memory_max="400000K")))["GOMEMLIMIT"] == "292MiB"


def series(name: str, labels: dict[str, str], values: str) -> dict:
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


def alert(name: str, at: str, labels: dict[str, str] | None, summary: str = "") -> dict:
    """The alert `name` at time `at`: firing with `labels` and `summary`, or (None) not firing."""
    firing = [{"exp_labels": labels, "exp_annotations": {"summary": summary}}]
    return {"eval_time": at, "alertname": name, "exp_alerts": [] if labels is None else firing}


APP = {"app": "onebox"}


def test_the_rules_fire_on_a_breaking_server_and_clear_after_the_fix(tmp_path: Path) -> None:
    s = settings(alert_for_seconds=60, alert_disk_used_percent=80, alert_certificate_days=20, alert_restarts=3)
    (tmp_path / "rules.yml").write_text(render("prometheus/onebox.rules.yml.j2", s=s))
    fs = {"mountpoint": "/", "fstype": "ext4", "instance": "h", "job": "node"}
    public = {"job": "onebox_public_url_onebox", "app": "onebox", "domain": "api.example.com", "instance": "i"}
    app = {"job": "onebox_app_onebox", "app": "onebox", "instance": "i", "slot": "blue"}
    day = 86400
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "30s", "tests": [{
        "interval": "30s",
        "input_series": [
            # The API killed at 2m and started again at 6m.
            series("onebox_container_up", {**APP, "service": "api"}, "1 1 1 1 0 0 0 0 0 0 0 0 1 1 1 1"),
            # The disk: 70 % used, then 90 % from 3m on.
            series("node_filesystem_size_bytes", fs, "100+0x20"),
            series("node_filesystem_avail_bytes", fs, "30 30 30 30 30 30 10+0x14"),
            # The certificate: 30 days left, then 10.
            series("probe_ssl_earliest_cert_expiry", public, f"{30 * day}+0x5 {10 * day}+0x10"),
            series("probe_success", public, "1+0x20"),
            # The last backup run failed from 4m on.
            series("onebox_backup_last_run_ok", {**APP, "unit": "onebox-backup.service"}, "1+0x7 0+0x12"),
            # A worker restarting: +1 every minute.
            series("onebox_container_restarts_total", {**APP, "service": "worker"}, "0 0 1 1 2 2 3 3 4 4 5 5"),
            # 10 requests/s, 2 of them 500s from 3m on.
            series("http_requests_total", {**app, "status": "200"}, "0+300x20"),
            series("http_requests_total", {**app, "status": "500"}, "0 0 0 0 0 0 0+60x14"),
            series("onebox_metrics_timestamp_seconds", {}, "0+30x20"),
            # PostgreSQL stops answering its exporter from 1m to 4m; Redis answers throughout.
            series("pg_up", {**APP, "job": "postgres"}, "1 1 0 0 0 0 0 0 1+0x12"),
            series("redis_up", {**APP, "job": "redis"}, "1+0x20"),
            series("redis_up", {"app": "jobs", "job": "redis"}, "0+0x20"),  # another app's, down throughout
            # An app's Redis just removed: its last sample may linger in Prometheus; no alert for it.
            series("redis_up", {"app": "minimal", "job": "redis"}, "0+0x20"),
            # The apps' dependencies that run (onebox's facts): what the two alerts below ask for.
            series("onebox_container_up", {**APP, "service": "postgres"}, "1+0x20"),
            series("onebox_container_up", {"app": "jobs", "service": "redis"}, "1+0x20"),
            series("onebox_container_up", {"app": "minimal", "service": "postgres"}, "1+0x20"),
        ],
        "alert_rule_test": [
            alert("OneboxContainerDown", "2m30s", None),  # down, but not for alert_for_seconds yet
            alert("OneboxContainerDown", "4m", {**APP, "service": "api", "severity": "critical"},
                  "app onebox: api is not running (or unhealthy)"),
            alert("OneboxContainerDown", "7m", None),  # resolved
            alert("OneboxDiskFull", "2m", None),
            alert("OneboxDiskFull", "5m", {**fs, "severity": "critical"}, "/ is 90% full"),
            alert("OneboxCertificateExpiring", "1m", None),
            alert("OneboxCertificateExpiring", "4m", {**public, "severity": "warning"},
                  "app onebox: the certificate of api.example.com expires in 10 days"),
            alert("OneboxBackupFailed", "3m", None),
            alert("OneboxBackupFailed", "5m", {**APP, "unit": "onebox-backup.service", "severity": "critical"},
                  "app onebox: the last backup run failed (journalctl -u onebox-backup.service)"),
            alert("OneboxContainerRestarting", "30s", None),
            alert("OneboxContainerRestarting", "5m30s", {**APP, "service": "worker", "severity": "warning"},
                  "app onebox: worker restarted 5 times in 15 minutes"),
            alert("OneboxHttp5xx", "2m", None),
            alert("OneboxHttp5xx", "6m", {"app": "onebox", "severity": "critical"},
                  "app onebox: 10.71% of responses are 5xx"),
            alert("OneboxPublicUrlDown", "5m", None),
            alert("OneboxMetricsStale", "5m", None),
            alert("OneboxPostgresDown", "1m30s", None),
            alert("OneboxPostgresDown", "3m", {**APP, "job": "postgres", "severity": "critical"},
                  "app onebox: PostgreSQL does not answer its exporter"),
            alert("OneboxPostgresDown", "5m", None),
            alert("OneboxRedisDown", "30s", None),
            alert("OneboxRedisDown", "5m", {"app": "jobs", "job": "redis", "severity": "critical"},
                  "app jobs: Redis does not answer its exporter"),
        ],
    }]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_backup_older_than_its_limit_fires_and_one_never_made_too(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render("prometheus/onebox.rules.yml.j2", s=settings()))
    hour = 3600
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1h",
        "input_series": [
            series("onebox_backup_max_age_seconds", {"app": "a"}, f"{26 * hour}+0x40"),
            series("onebox_backup_last_success_timestamp_seconds", {"app": "a"}, "0+0x40"),  # one at t=0, none since
            series("onebox_backup_max_age_seconds", {"app": "b"}, f"{26 * hour}+0x40"),
            series("onebox_backup_configured_timestamp_seconds", {"app": "b"}, "0+0x40"),  # never succeeded
        ],
        "alert_rule_test": [
            alert("OneboxBackupTooOld", "25h", None),
            {"eval_time": "27h", "alertname": "OneboxBackupTooOld", "exp_alerts": [
                {"exp_labels": {"app": app, "severity": "critical"},
                 "exp_annotations": {"summary": f"app {app}: no backup has succeeded for 1d 3h 0m 0s"}}
                for app in ("a", "b")]},
        ],
    }]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wal_archiving_that_fails_or_lags_fires(tmp_path: Path) -> None:
    """Point-in-time recovery: an archive_command failing for alert_for_seconds, and writes waiting
    more than 5 minutes to be archived, each fire; archiving again clears both."""
    (tmp_path / "rules.yml").write_text(render("prometheus/onebox.rules.yml.j2", s=settings(alert_for_seconds=60)))
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "30s", "tests": [{
        "interval": "1m",
        "input_series": [
            # Failing from 2m to 9m; the lag grows by 60 s a minute meanwhile, then archiving catches up.
            series("onebox_pitr_archive_failing", APP, "0 0 1 1 1 1 1 1 1 1 0 0 0"),
            series("onebox_pitr_archive_lag_seconds", APP, "0 0 60 120 180 240 300 360 420 480 0 0 0"),
        ],
        "alert_rule_test": [
            alert("OneboxWalArchiveFailing", "2m30s", None),  # not for alert_for_seconds yet
            alert("OneboxWalArchiveFailing", "4m", {**APP, "severity": "critical"},
                  "app onebox: PostgreSQL cannot archive its WAL (pgBackRest; docker logs of its postgres "
                  "container): point-in-time recovery stops at the last archived segment"),
            alert("OneboxWalArchiveLagging", "6m", None),  # 300 s is the limit, not over it
            alert("OneboxWalArchiveLagging", "7m", {**APP, "severity": "critical"},
                  "app onebox: writes of the last 6m 0s are not archived yet; losing the server now loses them"),
            alert("OneboxWalArchiveFailing", "11m", None),
            alert("OneboxWalArchiveLagging", "11m", None),
        ],
    }]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


HOSTILE = 'a\\b"c\\"d $e #f {{ g }}\n\'h\' \\u00e9 é\t😀 end\\'


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed (prometheus-alertmanager)")
def test_a_hostile_smtp_password_reaches_alertmanager_unchanged(tmp_path: Path) -> None:
    # A backslash in a YAML double-quoted string is an escape (`\b` is a backspace) and a quote ends it:
    # every value is rendered through a serializer, so the password amtool reads is the one supplied.
    s = settings(**EMAIL)
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager(s, HOSTILE))
    result = tool("amtool", "check-config", str(path))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert yaml.safe_load(path.read_text())["global"]["smtp_auth_password"] == HOSTILE


def test_every_value_in_the_monitoring_files_reads_back_unchanged(tmp_path: Path) -> None:
    s = settings(alert_webhook_url="https://hooks.example.com/x?a=1&b=%20", **EMAIL)
    paths = rendered(s, tmp_path)
    alertmanager = yaml.safe_load(paths["alertmanager.yml"].read_text())
    assert alertmanager["global"]["smtp_from"] == "onebox@example.com"
    assert alertmanager["receivers"][0]["webhook_configs"][0]["url"] == "https://hooks.example.com/x?a=1&b=%20"
    prometheus = yaml.safe_load(paths["prometheus.yml"].read_text())
    probe = next(job for job in prometheus["scrape_configs"] if job["job_name"].startswith("onebox_public_url_"))
    assert probe["static_configs"][0]["labels"] == {"app": s.app_name, "domain": s.domains[0]}
    assert probe["params"]["module"] == [s.app_name]
    assert yaml.safe_load(paths["blackbox.yml"].read_text())["modules"][s.app_name]["http"]["headers"] == {
        "Host": s.domains[0]}


TOKEN_URL = "https://hooks.slack.com/services/T000/B000/tokentokentoken"


def test_the_webhook_url_is_a_secret_supplied_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Slack's and Discord's webhook URLs carry a token: the environment or the secrets file supplies it,
    # it reaches alertmanager.yml, and no repr, error or report shows it.
    secrets = tmp_path / "prod.env"
    secrets.write_text(f"ONEBOX_ALERT_WEBHOOK_URL={TOKEN_URL}\n")
    secrets.chmod(0o600)
    for s in (validate_settings(valid(), str(secrets)),
              (monkeypatch.setenv("ONEBOX_ALERT_WEBHOOK_URL", TOKEN_URL), validate_settings(valid()))[1]):
        assert s.alert_webhook_url is not None and s.alert_webhook_url.get_secret_value() == TOKEN_URL
        assert "tokentoken" not in repr(s) and "tokentoken" not in str(s)
        assert "tokentoken" not in monitoring_config(s) and json.loads(monitoring_config(s))["routes"] == ["webhook"]
        receiver = yaml.safe_load(alertmanager(s, ""))["receivers"][0]
        assert receiver["webhook_configs"][0]["url"] == TOKEN_URL
    monkeypatch.setenv("ONEBOX_ALERT_WEBHOOK_URL", TOKEN_URL + " x")
    with pytest.raises(SettingsError, match="alert_webhook_url: expected an http") as error:
        validate_settings(valid())
    assert "tokentoken" not in str(error.value)
