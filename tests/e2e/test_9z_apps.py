"""Several apps on one server: examples/app (the app of the other modules, moved into `apps`
with its name and directory) and examples/jobs side by side, each on its own domain through
nginx+TLS with Pebble's certificate. One app's release, restore and removal never touch the
other; one app's credentials open nothing of the other's. Runs last: it leaves the target a
server of two apps, then of one."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from operator_cli import onebox, status_once_alerts_settle

from onebox.contract import AppFiles
from onebox.verify import edge
from onebox.verify.api import api_tunnel, wait_ready
from onebox.verify.load import Load
from testbed.deploy import changed_operations

APPS = {"ONEBOX_EXTRA_GROUPS": "local_apps"}
RELEASED = {**APPS, "ONEBOX_TEST_JOBS_RELEASE": "2"}  # after the code release of jobs below
APP_DOMAIN, JOBS_DOMAIN = "app.onebox.test", "jobs.onebox.test"


def containers(deployed) -> dict[str, str]:
    """"project/service" -> container ID of every compose container on the target."""
    listing = deployed.ssh("docker ps --filter label=com.docker.compose.project --format "
                           "'{{.Label \"com.docker.compose.project\"}}/{{.Label \"com.docker.compose.service\"}} {{.ID}}'")
    return dict(line.split() for line in listing.stdout.splitlines())


def of(app: str, ids: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in ids.items() if key.split("/")[0] in (app, f"{app}-blue", f"{app}-green")}


@pytest.fixture(scope="module")
def two_apps(deployed):
    first = deployed.deploy(APPS)
    assert first.returncode == 0, first.output[-4000:]
    second = deployed.deploy(APPS)
    return first, second


def test_two_apps_converge_pass_their_host_checks_and_a_rerun_changes_nothing(deployed, two_apps) -> None:
    _, second = two_apps
    assert second.returncode == 0 and second.changed == 0, changed_operations(second.output)
    checks = deployed.host_checks(env=APPS)
    assert checks.returncode == 0, checks.stdout[-4000:]
    registry = deployed.ssh("cat /etc/onebox/apps.json").stdout
    assert '"jobs"' in registry and '"onebox"' in registry
    # The single app's files of before are gone, replaced by the app's own.
    assert deployed.ssh("ls /etc/nginx/sites-enabled").stdout.split() == ["00-default.conf", "onebox-jobs.conf",
                                                                           "onebox-onebox.conf"]


def test_each_app_answers_on_its_own_domain_with_its_own_certificate(deployed, two_apps, root_ca) -> None:
    for domain, path in ((APP_DOMAIN, "/ready"), (JOBS_DOMAIN, "/ready")):
        with edge.https(deployed.ip, domain, root_ca) as client:
            response = edge.get(client, domain, path)
            assert response.status_code == 200, (domain, response.text)
            assert response.headers["strict-transport-security"]
        certificate = edge.served_certificate(deployed.ip, domain)
        assert "Pebble" in certificate.issuer.rfc4514_string()
        names = certificate.extensions.get_extension_for_oid(edge.x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        assert names.get_values_for_type(edge.x509.DNSName) == [domain]
    with edge.https(deployed.ip, JOBS_DOMAIN, root_ca) as client:  # jobs' own route, which examples/app lacks
        assert edge.get(client, JOBS_DOMAIN, "/healthz").status_code == 200
    with edge.https(deployed.ip, APP_DOMAIN, root_ca) as client:
        assert edge.get(client, APP_DOMAIN, "/healthz").status_code == 404
    assert edge.handshake_refused(deployed.ip, "unknown.onebox.test")


def test_status_without_app_reports_every_app(deployed, two_apps) -> None:
    # Settled: the converge just restarted Prometheus on 2 busy cores, where a self-scrape can time out
    # (a CI run saw OneboxExporterDown for the prometheus job still firing after 40 s).
    status = status_once_alerts_settle(deployed, timeout=120, env=APPS)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "== app jobs" in status.stdout and "== app onebox" in status.stdout
    releases = onebox(deployed, "releases", env=APPS)
    assert releases.returncode != 0 and "name one with --app NAME" in releases.stdout + releases.stderr
    assert onebox(deployed, "releases", "--app", "jobs", env=APPS).returncode == 0


def test_a_release_of_one_app_under_load_drops_nothing_and_leaves_the_other_alone(deployed, two_apps, root_ca) -> None:
    before = containers(deployed)
    with Load(deployed.ip, APP_DOMAIN, root_ca) as app_load, \
            Load(deployed.ip, JOBS_DOMAIN, root_ca, health_path="/healthz") as jobs_load:
        result = deployed.deploy(RELEASED)
    assert result.returncode == 0, result.output[-4000:]
    assert "release because" in result.output
    for load in (app_load, jobs_load):
        assert load.report.requests > 50, load.report
        assert load.report.failures == [], load.report.failures[:10]
    after = containers(deployed)
    assert of("onebox", after) == of("onebox", before)  # not one container of the other app replaced
    assert of("jobs", after) != of("jobs", before)
    assert deployed.deploy(RELEASED).changed == 0


def test_one_apps_credentials_open_nothing_of_the_other_app(deployed, two_apps) -> None:
    def psql(network: str, password_of: str) -> subprocess.CompletedProcess:
        password = f"/opt/{password_of}/secrets/postgres/postgres_password"
        return deployed.ssh(f'docker run --rm --network {network} -e PGPASSWORD="$(cat {password})" '
                            "-e PGCONNECT_TIMEOUT=5 --entrypoint psql onebox-test/postgres:17 "
                            "-h postgres -U app -d app -tAc 'select 1'")

    own = psql("jobs_default", "onebox-jobs")
    assert own.returncode == 0 and own.stdout.strip() == "1", own.stderr  # the check can succeed
    foreign = psql("jobs_default", "onebox")  # app onebox's password against jobs' database
    assert foreign.returncode != 0 and "password authentication failed" in foreign.stderr
    assert deployed.ssh("docker exec jobs-redis-1 redis-cli set e2e-isolation jobs-only").stdout.strip() == "OK"
    redis_cli = "docker run --rm --network onebox_default --entrypoint timeout onebox-test/redis:8 5 redis-cli"
    assert deployed.ssh(f"{redis_cli} -h redis get e2e-isolation").stdout.strip() == ""  # onebox's own Redis
    jobs_redis = deployed.ssh("docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "
                              "jobs-redis-1").stdout.strip()
    reached = deployed.ssh(f"{redis_cli} -h {jobs_redis} get e2e-isolation")
    assert reached.returncode != 0 and "jobs-only" not in reached.stdout  # jobs' Redis: no route from onebox's network


def test_a_restore_of_one_app_leaves_the_other_apps_rows(deployed, two_apps) -> None:
    with api_tunnel(deployed.ssh_args, AppFiles("onebox").local_socket) as app_api, \
            api_tunnel(deployed.ssh_args, AppFiles("jobs").local_socket) as jobs_api:
        kept = httpx.post(f"{jobs_api}/jobs", json={"n": 3}).json()["id"]
        assert onebox(deployed, "backup now", "--app", "jobs", env=RELEASED).returncode == 0
        listing = onebox(deployed, "backup list", "--app", "jobs", env=RELEASED)
        name = next(word for line in listing.stdout.splitlines() for word in line.split() if word.endswith("-manual"))
        lost = httpx.post(f"{jobs_api}/jobs", json={"n": 4}).json()["id"]
        item = httpx.post(f"{app_api}/items", json={"name": "the other app's row"}).json()["id"]
        before = of("onebox", containers(deployed))
        restored = onebox(deployed, "restore", "--app", "jobs", "--from", "local", "--name", name, "--yes", env=RELEASED)
        assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
        wait_ready(jobs_api, path="/healthz")
        assert httpx.get(f"{jobs_api}/jobs/{kept}").status_code == 200
        assert httpx.get(f"{jobs_api}/jobs/{lost}").status_code == 404
        assert httpx.get(f"{app_api}/items/{item}").status_code == 200  # untouched
        assert of("onebox", containers(deployed)) == before


def test_an_app_left_out_is_refused_then_taken_off_and_purged_only_when_named(deployed, two_apps) -> None:
    before = containers(deployed)
    forgotten = deployed.deploy({**RELEASED, "ONEBOX_TEST_JOBS": "forgotten"})
    assert forgotten.returncode != 0
    assert "runs app(s) jobs, which the settings no longer have; nothing was changed" in forgotten.output
    assert "apps_removed = ['jobs']" in forgotten.output
    assert containers(deployed) == before

    removed_env = {**RELEASED, "ONEBOX_TEST_JOBS": "removed"}
    removed = deployed.deploy(removed_env)
    assert removed.returncode == 0, removed.output[-4000:]
    after = containers(deployed)
    assert of("jobs", after) == {} and of("onebox", after) == of("onebox", before)
    assert "jobs_postgres-data" in deployed.ssh("docker volume ls -q").stdout  # the data stays
    assert deployed.ssh("test -d /var/backups/onebox/jobs && test -d /opt/onebox-jobs").returncode == 0
    assert deployed.ssh("ls /etc/nginx/sites-enabled").stdout.split() == ["00-default.conf", "onebox-onebox.conf"]
    assert edge.handshake_refused(deployed.ip, JOBS_DOMAIN)
    again = deployed.deploy(removed_env)
    assert again.returncode == 0 and again.changed == 0, changed_operations(again.output)

    assert onebox(deployed, "purge", "--app", "jobs", env=removed_env).returncode == 2  # no --yes: nothing run
    assert "jobs_postgres-data" in deployed.ssh("docker volume ls -q").stdout
    purged = onebox(deployed, "purge", "--app", "jobs", "--yes", env=removed_env)
    assert purged.returncode == 0, purged.stdout[-3000:] + purged.stderr[-3000:]
    assert "jobs_" not in deployed.ssh("docker volume ls -q").stdout
    assert deployed.ssh("test -e /var/backups/onebox/jobs || test -e /opt/onebox-jobs").returncode != 0
    assert '"jobs"' not in deployed.ssh("cat /etc/onebox/apps.json").stdout
