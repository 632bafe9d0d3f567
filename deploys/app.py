"""The application stack: a compose project with the API, PostgreSQL and Redis."""

from __future__ import annotations

from io import BytesIO, StringIO

from pyinfra.api import deploy
from pyinfra.operations import files, server

from onebox.images import build_local_image, images_from_controller, local_image_id
from onebox.operations import generated_secrets
from onebox.render import render
from onebox.rollout import compose_rollout, inputs_hash
from onebox.settings import Settings
from onebox.source import source_hash, source_tarball

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
    files.put(name="Upload the supplied secrets (root only).", src=StringIO(supplied),
              dest=f"{project}/supplied.env", mode="600", user="root", group="root")
    files.file(name="Keep the generated secrets root only.", path=f"{project}/generated.env",
               mode="600", user="root", group="root")

    api_image, image_step, fingerprint = prepare_api_image(s)
    compose = render("app/compose.yaml.j2", s=s)
    dotenv = render("app/dotenv.j2", s=s, api_image=api_image)
    files.put(name="Write the compose file.", src=StringIO(compose), dest=f"{project}/compose.yaml")
    files.put(name="Write the image references (.env).", src=StringIO(dotenv), dest=f"{project}/.env")
    if s.controller_images:
        images_from_controller(name="Load the images built on this machine.", references=s.controller_images)
    compose_rollout(
        name="Roll out: dependencies healthy, migrations, then the new API.",
        project_dir=project, image_step=image_step,
        desired=inputs_hash(compose, dotenv, supplied, fingerprint,
                            *[local_image_id(ref) for ref in s.controller_images]),
    )


def prepare_api_image(s: Settings) -> tuple[str, str, str]:
    """(image reference, the rollout's image step, a fingerprint of the image's inputs)."""
    if s.app_image_source == "registry":
        login(s)
        return s.app_image, "docker compose pull api", s.app_image
    tarball = source_tarball(s.app_source_dir)
    tag = f"{s.app_image}:{source_hash(tarball)}-{s.app_python_image.replace('/', '-').replace(':', '-')}"
    if s.app_image_source == "tarball":
        build_local_image(s.app_source_dir, tag, s.app_python_image)
        images_from_controller(name="Load the API image built on this machine.", references=[tag])
        return tag, "true", local_image_id(tag)
    source = files.put(name="Upload the application source.", src=BytesIO(tarball),
                       dest=f"{s.app_dir}/api-src.tar.gz")
    server.shell(
        name="Unpack the new application source.",
        commands=[f"rm -rf {s.app_dir}/src && mkdir {s.app_dir}/src"
                  f" && tar -xzf {s.app_dir}/api-src.tar.gz -C {s.app_dir}/src"],
        _if=source.did_change,
    )
    return tag, "docker compose build -q api", tag


def login(s: Settings) -> None:
    if s.registry_password is None or s.registry_username is None:
        return  # a public image needs no login
    password = files.put(name="Upload the registry password (root only).",
                         src=StringIO(s.registry_password.get_secret_value()),
                         dest="/root/.onebox-registry-password", mode="600")
    server.shell(
        name=f"Log in to {s.registry_server}.",
        commands=[f"docker login {s.registry_server} -u {s.registry_username}"
                  " --password-stdin < /root/.onebox-registry-password"],
        _if=password.did_change,
    )
