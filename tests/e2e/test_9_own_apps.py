"""Apps with other contracts, by group data alone (issue: your app, not ours).

examples/jobs: port 8080, /healthz, DATABASE_URL and SECRET_KEY, Dockerfile in docker/,
a release script, a worker fed through Redis. examples/minimal: no Redis at all.
Each replaces the live app on the e2e target as a new release; this module runs last.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from onebox.verify.api import api_tunnel, wait_ready
from testbed.deploy import changed_operations

JOBS = {"ONEBOX_EXTRA_GROUPS": "local_jobs"}
MINIMAL = {"ONEBOX_EXTRA_GROUPS": "local_minimal"}


@pytest.fixture(scope="module")
def jobs(deployed):
    result = deployed.deploy(JOBS)
    assert result.returncode == 0, result.output[-4000:]
    with api_tunnel(deployed.ssh_args) as base_url:
        wait_ready(base_url, path="/healthz")
        yield result, base_url


def test_the_jobs_app_is_served_and_checked_on_its_own_contract(deployed, jobs) -> None:
    _, api = jobs
    assert httpx.get(f"{api}/ready").status_code == 200
    checks = deployed.host_checks(env=JOBS)
    assert checks.returncode == 0, checks.stdout[-4000:]
    services = deployed.container_ids()
    assert {"api", "worker", "postgres", "redis"} <= set(services)
    inspected = deployed.ssh(f"docker inspect {services['api']}").stdout
    assert '"8080/tcp"' in inspected and "DATABASE_URL_FILE=/run/secrets/DATABASE_URL" in inspected
    assert "postgresql://" not in inspected  # the assembled URL (with its password) stays a file


def test_a_job_posted_through_the_api_is_done_by_the_worker(jobs) -> None:
    _, api = jobs
    posted = httpx.post(f"{api}/jobs", json={"n": 9})
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/jobs/{job_id}").json()
        if job["status"] == "done":
            assert job["result"] == 81
            return
        time.sleep(0.5)
    raise AssertionError(f"the worker never finished job {job_id}: {job}")


def test_a_failing_release_step_keeps_the_previous_version_serving(deployed, jobs) -> None:
    _, api = jobs
    live = deployed.live_release()
    env = json.dumps({"REDIS_URL": "{redis_url}", "FORWARDED_ALLOW_IPS": "{proxy_ip}", "FAIL_RELEASE": "1"})
    result = deployed.deploy({**JOBS, "ONEBOX_APP_ENV": env})
    assert result.returncode != 0
    assert "the release step failed" in result.output
    assert deployed.live_release() == live
    assert httpx.get(f"{api}/healthz").status_code == 200


def test_a_rerun_of_the_jobs_app_changes_nothing(deployed, jobs) -> None:
    assert deployed.deploy(JOBS).returncode == 0  # the good release again after the failed one
    again = deployed.deploy(JOBS)
    assert again.returncode == 0 and again.changed == 0, changed_operations(again.output)


def test_the_minimal_app_runs_without_redis(deployed) -> None:
    result = deployed.deploy(MINIMAL)
    assert result.returncode == 0, result.output[-4000:]
    services = deployed.container_ids()
    assert "redis" not in services and "worker" not in services
    assert "REDIS" not in deployed.ssh(f"docker inspect {services['api']}").stdout
    checks = deployed.host_checks(env=MINIMAL)
    assert checks.returncode == 0, checks.stdout[-4000:]
    again = deployed.deploy(MINIMAL)
    assert again.changed == 0, changed_operations(again.output)
    with api_tunnel(deployed.ssh_args) as api:
        wait_ready(api, path="/health")
        note = httpx.post(f"{api}/notes", json={"text": "no redis here"}).json()
        assert httpx.get(f"{api}/notes/{note['id']}").json()["text"] == "no redis here"
