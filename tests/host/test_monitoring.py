"""Monitoring on any onebox server: each part runs, listens on loopback only, and Prometheus
scrapes what it should (skipped when monitoring_enabled = False)."""

from __future__ import annotations

import json
import time

import pytest

from onebox import contract
from onebox.deploys.monitoring import PACKAGES, RULES, TEXTFILE

PORTS = {"prometheus": 9090, "prometheus-alertmanager": 9093, "prometheus-node-exporter": 9100,
         "prometheus-blackbox-exporter": 9115, "prometheus-postgres-exporter": 9187, "prometheus-redis-exporter": 9121,
         "prometheus-nginx-exporter": 9113}


@pytest.fixture(autouse=True)
def _monitoring_enabled(settings) -> None:
    if not settings.monitoring_enabled:
        pytest.skip("monitoring is off (monitoring_enabled = False)")


@pytest.mark.parametrize("service", PACKAGES)
def test_each_part_runs_at_boot_on_loopback_only(host, service: str) -> None:
    unit = host.service(service)
    assert unit.is_running and unit.is_enabled
    assert host.socket(f"tcp://127.0.0.1:{PORTS[service]}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{PORTS[service]}").is_listening


def test_the_rules_pass_promtool_and_onebox_facts_are_fresh(host) -> None:
    assert host.run(f"promtool check rules {RULES}").rc == 0
    assert host.service("onebox-metrics.timer").is_enabled
    age = int(host.check_output(f"echo $(( $(date +%s) - $(stat -c %Y {TEXTFILE}) ))"))
    assert age < 600, f"{TEXTFILE} is {age} s old: is onebox-metrics.timer running?"


def test_prometheus_scrapes_the_host_and_each_apps_public_url(host, app) -> None:
    # Just after a restart a target is "unknown" until its first scrape: wait two intervals for it.
    deadline = time.monotonic() + 2 * app.monitoring_scrape_interval + 10
    while True:
        targets = json.loads(host.check_output("curl -s http://127.0.0.1:9090/api/v1/targets?state=active"))
        health = {(t["labels"]["job"], t["labels"].get("instance")): t["health"] for t in targets["data"]["activeTargets"]}
        probe = [value for (job, _), value in health.items() if job == f"onebox_public_url_{app.app_name}"]
        if (health.get(("node", "127.0.0.1:9100")), probe) == ("up", ["up"]) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert health[("node", "127.0.0.1:9100")] == "up"
    assert probe == ["up"], health


def wait_query(host, expr: str, timeout: float, empty: bool = False) -> list[dict]:
    """A PromQL query's result once it has one (the first scrapes after a restart), or with
    `empty` once it has none (a target just removed); its last answer after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        out = host.check_output(f"curl -s --get http://127.0.0.1:9090/api/v1/query --data-urlencode 'query={expr}'")
        if bool(result := json.loads(out)["data"]["result"]) != empty or time.monotonic() > deadline:
            return result
        time.sleep(2)


def test_prometheus_scrapes_nginx_and_each_apps_postgres_and_redis(host, app) -> None:
    # The collector finds the containers each run (onebox-metrics.timer), then Prometheus scrapes them.
    timeout = 3 * app.monitoring_scrape_interval + 20
    assert [r["value"][1] for r in wait_query(host, "nginx_up", timeout)] == ["1"]
    for enabled, metric, service in ((app.postgres_enabled, "pg_up", "postgres"),
                                     (app.redis_enabled, "redis_up", "redis")):
        if enabled:
            found = [r["value"][1] for r in wait_query(host, f'{metric}{{app="{app.app_name}"}} == 1', timeout)]
            assert found == ["1"], (metric, found)
            continue
        # One the app no longer has leaves the collector's targets, and no alert can come of the
        # last sample Prometheus may keep of it for a few minutes (the rule asks for the container).
        targets = json.loads(host.file(f"{contract.EXPORTER_TARGETS_DIR}/{service}.json").content_string)
        assert app.app_name not in [group["labels"]["app"] for group in targets], targets
        alerting = wait_query(host, f'{metric}{{app="{app.app_name}"}} == 0 and on(app) '
                                    f'onebox_container_up{{service="{service}"}}', timeout, empty=True)
        assert alerting == [], alerting
