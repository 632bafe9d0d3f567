"""The application stack: a compose project with the API, PostgreSQL and Redis."""

from __future__ import annotations

from io import BytesIO, StringIO

from pyinfra.api import deploy
from pyinfra.operations import files

from onebox.images import build_local_image, images_from_controller, local_image_id
from onebox.operations import checked_file, generated_secrets
from onebox.render import render
from onebox.rollout import compose_rollout, inputs_hash
from onebox.settings import Settings
from onebox.source import source_hash, source_tarball

REGISTRY_PASSWORD_FILE = "/root/.onebox-registry-password"
# Secrets onebox generates on the server when the user supplies none.
GENERATED_SECRETS = {"postgres_password": "POSTGRES_PASSWORD", "app_secret_key": "APP_SECRET_KEY"}


def supplied_secrets(s: Settings) -> str:
    """The env file of secrets the user supplied (environment or secrets file)."""
    lines = [
        f"{variable}={getattr(s, field).get_secret_value()}"
        for field, variable in GENERATED_SECRETS.items() if getattr(s, field) is not None
    ]
    return "".join(f"{line}\n" for line in lines)


@deploy("Deploy the application")
def deploy_app(s: Settings) -> None:
    project = s.app_dir
    files.directory(name=f"Create the project directory {project}.", path=project, mode="755")
    generated_secrets(
        name="Generate the secrets nobody supplied (once, on the server).",
        path=f"{project}/generated.env",
        names=[variable for field, variable in GENERATED_SECRETS.items() if getattr(s, field) is None],
    )
    supplied = supplied_secrets(s)
    checked_file(name="Upload the supplied secrets (root only).", content=supplied,
                 dest=f"{project}/supplied.env", mode="600")
    files.file(name="Keep the generated secrets root only.", path=f"{project}/generated.env",
               mode="600", user="root", group="root")

    api_image, image_step, fingerprint = prepare_api_image(s)
    compose = render("app/compose.yaml.j2", s=s)
    dotenv = render("app/dotenv.j2", s=s, api_image=api_image)
    files.put(name="Write the compose file.", src=StringIO(compose), dest=f"{project}/compose.yaml")
    files.put(name="Write the image references (.env).", src=StringIO(dotenv), dest=f"{project}/.env")
    controller_ids = {ref: local_image_id(ref) for ref in s.controller_images}
    if controller_ids:
        images_from_controller(name="Load the images built on this machine.", local_ids=controller_ids)
    compose_rollout(
        name="Roll out: dependencies healthy, migrations, then the new API.",
        project_dir=project, image_step=image_step,
        desired=inputs_hash(compose, dotenv, supplied, fingerprint, *controller_ids.values()),
    )


def prepare_api_image(s: Settings) -> tuple[str, str, str]:
    """(image reference, the rollout's image step, a fingerprint of the image's inputs)."""
    if s.app_image_source == "registry":
        return s.app_image, registry_image_step(s), s.app_image
    tarball = source_tarball(s.app_source_dir)
    tag = f"{s.app_image}:{source_hash(tarball)}-{s.app_python_image.replace('/', '-').replace(':', '-')}"
    if s.app_image_source == "tarball":
        build_local_image(s.app_source_dir, tag, s.app_python_image)
        image_id = local_image_id(tag)
        images_from_controller(name="Load the API image built on this machine.", local_ids={tag: image_id})
        return tag, "true", image_id
    files.put(name="Upload the application source.", src=BytesIO(tarball), dest=f"{s.app_dir}/api-src.tar.gz")
    # Unpacked by the rollout itself: a run interrupted after the upload still builds the new code next time.
    return tag, "rm -rf src && mkdir src && tar -xzf api-src.tar.gz -C src && docker compose build -q api", tag


def registry_image_step(s: Settings) -> str:
    """Pull the API image, logging in first when credentials are configured."""
    if s.registry_password is None or s.registry_username is None:
        return "docker compose pull api"  # a public image needs no login
    checked_file(name="Upload the registry password (root only).", content=s.registry_password.get_secret_value(),
                 dest=REGISTRY_PASSWORD_FILE, mode="600")
    login = f"docker login {s.registry_server} -u {s.registry_username} --password-stdin < {REGISTRY_PASSWORD_FILE}"
    return f"{login} >&2 && docker compose pull api"
