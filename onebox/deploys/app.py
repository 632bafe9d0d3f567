"""The application: its dependencies (PostgreSQL, Redis) and its releases.

This role writes what the server should run (spec.json, the compose files, the build
context, the supplied secrets) and asks onebox-release (onebox/server/, installed by
deploys/tools.py) to converge to it: dependencies healthy, image ready, the release
step, the new version started beside the old one, health-gated switch of nginx, the
old version drained. A re-run with nothing changed and everything running is a no-op.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from onebox import ci, contract, pitr, server_calls
from onebox.cluster import api_nodes, manager
from onebox.hosts import cluster_nodes, server_name
from onebox.images import build_local_image, images_from_controller, local_image_id
from onebox.operations import private_file, upload_once
from onebox.render import render
from onebox.rollout import release, release_spec
from onebox.settings import Settings
from onebox.source import source_hash, source_tarball


@deploy("Deploy the application")
def deploy_app(s: Settings) -> None:
    project, layout = s.app_dir, contract.AppDir(s.app_dir)
    files.directory(name=f"Create the project directory {project}.", path=project, mode="755")
    for private in layout.private_dirs:
        files.directory(name=f"Create {private} (root only).", path=private, mode="700")
    secrets = private_file(name="Upload the supplied secrets (root only, streamed, never printed).",
                           dest=layout.supplied_secrets, content=supplied_secrets(s))

    image, source_label, upload = prepare_image(s)
    nodes = cluster_nodes()
    workers = api_nodes(s, nodes)
    # On the workers, nginx's requests come from the manager's address, not the compose network's gateway.
    spec = release_spec(s, image, source_label, swarm_nodes=workers,
                        proxy_ip=manager(nodes).address if workers else None)
    app_compose = render("app/app.compose.yaml.j2", s=s)
    deps_compose = pitr.deps_compose(s)
    archiving = write_pitr_files(s)
    spec_op = files.put(name="Write the release spec (spec.json).", src=StringIO(spec.to_json()),
                        dest=layout.spec)
    files.put(name="Write the app's compose file.", src=StringIO(app_compose), dest=layout.app_compose)
    deps_op = files.put(name="Write the dependencies' compose file.", src=StringIO(deps_compose),
                        dest=layout.deps_compose)
    if s.controller_images:
        images_from_controller(name="Load the images built on this machine.",
                               local_ids={ref: local_image_id(ref) for ref in s.controller_images})
    changed = {"settings": spec_op.will_change, "secrets": secrets.will_change}
    if upload is not None:
        changed["source"] = upload.will_change
    release(
        name="Release: dependencies, image, release step, health-gated switch (or heal what runs).",
        app_dir=project, desired_inputs=contract.inputs_hash(spec.release, app_compose.encode()),
        desired_deps=contract.deps_hash(deps_compose.encode()), changed_inputs=changed,
    )
    if pitr.enabled(s):
        # Run when PostgreSQL or pgBackRest's files changed, or no setup succeeded for them yet (a failed
        # one is tried again by the next converge, and by the backup timer).
        ready = host.get_fact(FileContents, path=s.files.pitr_ready()) or []
        done = ready == [pitr.fingerprint(s, server_name(s, host.name))]
        server.shell(name=f"Point-in-time recovery of {s.app_name}: pgBackRest's stanza and a first base backup.",
                     commands=[server_calls.as_shell(server_calls.pitr_setup(s.files.backup_config))],
                     _if=any_changed(deps_op, *archiving) if done else None)


def write_pitr_files(s: Settings) -> list[Any]:
    """postgres-pitr/ (the derived image's Dockerfile, pgbackrest.conf) and pgBackRest's secrets; removed
    when point-in-time recovery is off (the repository volume stays)."""
    directory = f"{s.app_dir}/{pitr.PGBACKREST_DIR}"
    if not pitr.enabled(s):
        files.directory(name="No point-in-time recovery files (backup_pitr_enabled off).", path=directory,
                        present=False)
        for path in (f"{s.app_dir}/{pitr.ENV_FILE}", f"{s.app_dir}/{pitr.ENV_FILE}.fingerprint"):
            files.file(name=f"No pgBackRest secrets ({path}).", path=path, present=False)
        return []
    files.directory(name=f"Create {directory}.", path=directory, mode="755")
    return [
        files.put(name="Write the Dockerfile of PostgreSQL with pgBackRest (built on this server).",
                  src=StringIO(pitr.dockerfile(s)), dest=f"{directory}/Dockerfile", mode="644"),
        files.put(name="Write pgbackrest.conf (no secrets).", src=StringIO(pitr.config(s, server_name(s, host.name))),
                  dest=f"{directory}/pgbackrest.conf", mode="644"),
        # The CA of backup_s3_ca_bundle, also in the app's directory for restic: here for pgBackRest.
        files.put(name="Write the S3 server's CA for pgBackRest." if pitr.ca_bundle(s) else "No S3 CA for pgBackRest.",
                  src=StringIO(pitr.ca_bundle(s) or ""), dest=f"{directory}/{pitr.CA_FILE}", mode="644"),
        private_file(name="Upload pgBackRest's secrets (root only, never printed).",
                     dest=f"{s.app_dir}/{pitr.ENV_FILE}", content=pitr.env(s)),
    ]


@deploy("Load the API images onto a swarm worker")
def load_worker_images(s: Settings) -> None:
    """On a worker, before the manager's release: the image of each app whose API runs on the
    workers and is built on this machine (a registry's image is pulled by each node itself)."""
    for app in s.app_list:
        if app.api_placement == "workers" and app.app_image_source == "tarball":
            load_tarball_image(app, image_tag(app)[1])


def supplied_secrets(s: Settings) -> str:
    """The secrets the user supplied, as the server reads them; absent ones are generated there."""
    return contract.supplied_secrets_text(contract.SuppliedSecrets(
        postgres_password=s.postgres_password.get_secret_value() if s.postgres_password else None,
        registry_password=s.registry_password.get_secret_value() if s.registry_password else None,
        secret={name: value.get_secret_value() for name, value in s.app_secret_values.items()},
    ))


def image_tag(s: Settings) -> tuple[bytes, str]:
    """The build context (as uploaded) and the tag of the image built from it."""
    tarball = source_tarball(s.app_source_dir, s.app_dockerfile)
    build_inputs = json.dumps([s.app_dockerfile, s.app_build_target, s.app_build_args], sort_keys=True)
    return tarball, f"{s.app_image}:{source_hash(tarball + build_inputs.encode())}"


def load_tarball_image(s: Settings, tag: str) -> None:
    """app_image_source = "tarball": built on this machine, loaded into this host's engine."""
    build_local_image(s, tag)
    images_from_controller(name=f"Load the image of {s.app_name} built on this machine.",
                           local_ids={tag: local_image_id(tag)})


def registry_image(s: Settings, ci_ref: str | None) -> tuple[dict[str, Any], str]:
    """app_image_source = "registry": the spec's image entry and source label, CI's last digest kept
    while app_image is a tag of its repository (onebox/ci.py). The label is the reference itself, as
    a CI deploy writes it (server/ci_deploy.py): the converge after one then writes the same spec."""
    ref = ci.image_to_run(s.app_image, ci_ref)
    return {"source": "registry", "ref": ref, "registry_server": s.registry_server,
            "registry_username": s.registry_username}, ref


def prepare_image(s: Settings) -> tuple[dict[str, Any], str, Any]:
    """(the spec's image entry, a label of where it came from, the source upload operation or None)."""
    ci_record = contract.AppDir(s.app_dir).ci_image
    ci_ref = ci.recorded_ref(host.get_fact(FileContents, path=ci_record))
    image, label = registry_image(s, ci_ref) if s.app_image_source == "registry" else ({}, "")
    kept = ci_ref is not None and image.get("ref") == ci_ref
    if kept and ci_ref != s.app_image:
        logger.info(f"    [{host.name}] {s.app_name}: keeping {ci_ref}, which CI deployed ({contract.CI_IMAGE_FILE}); "
                    f"app_image {s.app_image} is a tag of its repository")
    if not kept:  # the admin's image wins (a digest, another repository or source): a later tag must not bring CI's back
        files.file(name=f"No record of a CI deploy of {s.app_name} (app_image decides).", path=ci_record, present=False)
    if image:
        return image, label, None
    tarball, tag = image_tag(s)
    label = f"{Path(s.app_source_dir).name}@{tag.rsplit(':', 1)[1]}"
    if s.app_image_source == "tarball":
        load_tarball_image(s, tag)
        return {"source": "tarball", "ref": tag}, label, None
    name = contract.upload_name(source_hash(tarball))
    upload = upload_once(name="Upload the build context (.dockerignore applied).", data=tarball,
                         dest=contract.AppDir(s.app_dir).upload(name))
    image = {"source": "build", "ref": tag, "tarball": name, "dockerfile": s.app_dockerfile,
             "target": s.app_build_target, "args": s.app_build_args}
    return image, label, upload
