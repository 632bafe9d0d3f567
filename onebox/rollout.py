"""The controller's side of a release: what the server is asked to converge to, and
the operations that ask it (onebox/server/engine.py does the work on the server).

The desired state is the spec (onebox/contract/: non-secret settings, the image to run)
and the app's compose file. The server reports, in one round trip, what is live, whether
its containers run and answer, and whether a release was interrupted; the operation
compares and runs `onebox-release apply` only when something differs, saying why.
"""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import operation

from onebox import contract, server_calls
from onebox.facts import ReleaseState
from onebox.settings import Settings


def release_spec(s: Settings, image: dict, source_label: str, swarm_nodes: list[str] | None = None,
                 proxy_ip: str | None = None) -> contract.Spec:
    """What the server needs to run a release, without a secret in it; `swarm_nodes`: the workers
    its API runs on (none: this server), reached by nginx from `proxy_ip` (the manager's address)."""
    placeholders = {
        "postgres_host": "postgres", "postgres_port": "5432", "postgres_user": s.postgres_user,
        "postgres_db": s.postgres_db, "redis_url": "redis://redis:6379/0", "domain": s.domains[0],
        "public_url": f"https://{s.domains[0]}", "app_port": str(s.app_port), "proxy_ip": proxy_ip or s.network_gateway,
        "api_workers": str(s.api_workers), "api_timeout": str(s.api_timeout),
        "api_graceful_timeout": str(s.api_graceful_timeout), "api_max_requests": str(s.api_max_requests),
        "api_max_requests_jitter": str(s.api_max_requests_jitter),
    }
    release = contract.ReleaseSpec(
        image=contract.Image(**image), source_label=source_label, placeholders=placeholders,
        env=dict(s.app_env), secrets=list(s.app_secrets), secret_env=dict(s.app_secret_env),
        secrets_in_env=s.app_secrets_in_env, command=s.app_command, release_command=s.app_release_command,
        health_path=s.app_health_path, health_timeout=s.app_health_timeout, graceful_timeout=s.api_graceful_timeout,
        processes={name: contract.Process(**p.model_dump()) for name, p in s.app_processes.items()},
    )
    return contract.Spec(
        version=contract.SPEC_VERSION, app_name=s.app_name, app_key=s.files.key, domain=s.domains[0],
        slot_ports=list(s.slot_ports),
        network_subnet=s.docker_network_subnet, postgres_enabled=s.postgres_enabled,
        postgres_image=s.postgres_image if s.postgres_enabled else None, redis_enabled=s.redis_enabled,
        releases_kept=s.releases_kept, lock_timeout=s.deploy_lock_timeout, backup_before_release=s.backup_enabled,
        backup_max_age_hours=s.backup_max_age_hours, release=release, swarm_nodes=list(swarm_nodes or []),
        cluster_fail_timeout=s.cluster_fail_timeout,
        build_timeout=s.build_timeout, pull_timeout=s.pull_timeout, release_step_timeout=s.release_step_timeout,
    )


def reasons_to_release(state: contract.StateReport, desired_inputs: str, desired_deps: str,
                       changed_inputs: dict[str, bool]) -> list[str]:
    if not state.installed or not state.live:
        return ["nothing is live yet"]
    reasons = [f"{name} changed" for name, changed in changed_inputs.items() if changed]
    if state.live.inputs != desired_inputs and not reasons:
        reasons.append("the app's settings or image changed")
    if state.secrets_changed:
        reasons.append("secrets changed")
    if state.deps_inputs != desired_deps:
        reasons.append("the dependencies' compose file changed")
    if state.transition:
        reasons.append(f"release {state.transition.release} was interrupted")
    reasons += state.problems
    return reasons


@operation()
def release(app_dir: str, desired_inputs: str, desired_deps: str, changed_inputs: dict[str, bool] | None = None):
    """Ask the server to converge the app (dependencies, image, release step, health-gated
    switch, healing) when anything differs from what it runs, and say why.

        release(name="Release", app_dir="/opt/onebox", desired_inputs=contract.inputs_hash(spec.release, compose),
                desired_deps=contract.deps_hash(deps_compose), changed_inputs={"source": upload.will_change})
    """
    state = host.get_fact(ReleaseState, app_dir=app_dir) or contract.NOT_INSTALLED
    reasons = reasons_to_release(state, desired_inputs, desired_deps, changed_inputs or {})
    if not reasons:
        assert state.live is not None  # without one, the reasons say "nothing is live yet"
        host.noop(f"release {state.live.id} is live, running and healthy")
        return
    logger.info(f"    [{host.name}] release because: {'; '.join(reasons)}")
    yield server_calls.apply(app_dir)


@operation()
def rollback(app_dir: str, to: str | None = None):
    """Switch back to the previous (or a named) release through the same health-gated path.

        rollback(name="Roll back", app_dir="/opt/onebox", to="20261202-081500-3fa2c1")
    """
    if to is not None:
        contract.check_release_id(to)
    logger.info(f"    [{host.name}] rolling back to {to or 'the previous release'}: "
                "database migrations are NOT reversed (see README: expand/contract)")
    yield server_calls.rollback(app_dir, to)


@operation()
def maintenance(app_dir: str, on: bool, message: str | None = None):
    """Turn maintenance mode on (nginx answers 503 with Retry-After, but on the health path) or off.
    The app keeps running; a converge leaves the mode as it is.

        maintenance(name="Maintenance on", app_dir="/opt/onebox", on=True, message="Back at 10:00 UTC")
    """
    yield server_calls.maintenance(app_dir, on, message or "")


@operation()
def retire(app_dir: str):
    """Stop every container of an app taken off the server (apps_removed); its volumes, secrets,
    releases and backups stay.

        retire(name="Take app jobs off the server", app_dir="/opt/onebox-jobs")
    """
    yield server_calls.retire(app_dir)


@operation()
def purge(app_name: str):
    """Delete for good a retired app's volumes, directory and backups (the server refuses an app
    not taken off it first).

        purge(name="Purge app jobs", app_name="jobs")
    """
    yield server_calls.purge(app_name)
