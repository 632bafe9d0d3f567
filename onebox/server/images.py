"""The release's image: built here from the uploaded context, loaded by the controller, or
pulled from a registry; and what its compose file cannot say before the image exists."""

from __future__ import annotations

from pathlib import Path

from onebox import contract
from onebox.server import basics, docker, docker_state, secret_files
from onebox.server.basics import OneboxError
from onebox.server.model import App


def ensure_image(app: App) -> str:
    image = app.spec.release.image
    if image.source == "build" and not docker_state.image_present(image.ref):
        # The uploaded tarball itself is the build context (`-f` is a path inside it). Never an
        # extracted directory: its files all carry mtime 0 (the tarball is reproducible), and
        # BuildKit re-sends a directory context only where size or mtime changed, so an edit
        # that keeps a file's size would be built from the previous release's copy.
        basics.log(f"building {image.ref}", timed=True)
        assert image.tarball and image.dockerfile  # the contract's build entries
        # Killing the docker client on timeout ends the build: the daemon cancels a build whose client is gone.
        with Path(app.layout.upload(image.tarball)).open("rb") as context:
            try:
                result = basics.run(docker.build(image.ref, image.dockerfile, image.target, image.args),
                                    stdin_file=context, check=False, timeout=app.spec.build_timeout)
            except basics.CommandTimeout:
                raise basics.over_time("the image build", "build_timeout", app.spec.build_timeout) from None
        if not result.ok:
            raise OneboxError(f"the image build failed (exit {result.returncode}); the running version was left "
                              f"as it was:\n{result.stderr.strip()[-3000:]}")
    elif image.source == "registry":
        password = secret_files.values(app).get("registry_password")
        timeout = app.spec.pull_timeout
        try:
            if password and image.registry_username:
                basics.run(docker.login(image.registry_server, image.registry_username), stdin=password,
                           what="docker login", timeout=timeout)
            basics.log(f"pulling {image.ref}", timed=True)
            basics.run(docker.pull(image.ref), what=f"docker pull {image.ref}", timeout=timeout)
        except basics.CommandTimeout as error:  # the daemon drops a pull whose client is gone
            raise basics.over_time(error.what, "pull_timeout", timeout) from None
        # The release runs the digest, not the tag: a rollback returns to these exact bytes
        # even after the tag has moved on.
        return pinned(image.ref)
    if not docker_state.image_present(image.ref):
        raise OneboxError(f"image {image.ref} is not on the server (app_image_source = {image.source})")
    return image.ref


def pinned(ref: str) -> str:
    """repository@sha256:... of a pulled image (a ref that is a digest already stays as it is)."""
    if "@sha256:" in ref:
        return ref
    repository = contract.image_repository(ref)
    for digest in docker_state.image_config(ref, "RepoDigests") or []:
        if contract.same_repository(digest, repository):
            return digest
    raise OneboxError(f"{ref} was pulled but Docker knows no digest for it from {repository}")


def release_override(app: App, image: str) -> dict | None:
    """What the release's compose file cannot say before the image exists (from its config)."""
    release = app.spec.release
    config = docker_state.image_config(image)
    services: dict[str, dict] = {}
    if release.secrets_in_env:
        # Wrap the image's entrypoint in the shim that exports /run/secrets/* as variables.
        entrypoint = ["/bin/sh", "/onebox/with-secrets.sh", *(config.get("Entrypoint") or [])]
        shim = {"type": "bind", "source": contract.SHIM, "target": "/onebox/with-secrets.sh", "read_only": True}
        commands = {contract.compose.API_SERVICE: release.command or config.get("Cmd") or []}
        commands.update({name: process.command for name, process in release.processes.items()})
        services = {name: {"entrypoint": entrypoint, "command": command, "volumes": [shim]}
                    for name, command in commands.items()}
    if ((config.get("Healthcheck") or {}).get("Test") or ["NONE"]) != ["NONE"]:
        # The image's own HEALTHCHECK first runs after its interval (15-30 s is common) and the
        # switch waits for it: check every second while the new version starts. Docker takes
        # the image's test, interval and retries for what is not set here.
        services.setdefault(contract.compose.API_SERVICE, {})["healthcheck"] = {"start_period": f"{release.health_timeout}s",
                                                        "start_interval": "1s"}
    return {"services": services} if services else None
