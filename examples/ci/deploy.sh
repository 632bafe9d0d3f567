#!/usr/bin/env bash
# Build the app's image, push it, and deploy it BY DIGEST with onebox: the CI's deploy job.
# Copy it into your deploy directory (as ci-deploy.sh); github-actions.yml runs it from there.
# onebox's e2e suite runs the same script against the local target and registry
# (tests/e2e/test_8c_registry.py).
#
# Inputs (environment; secrets come from the CI's secret store, never from the repository):
#   REGISTRY                  registry host[:port], e.g. ghcr.io
#   IMAGE                     repository path in it, e.g. my-org/my-api
#   REGISTRY_USERNAME         the account that pushes (and that the server pulls with)
#   ONEBOX_REGISTRY_PASSWORD  its password or token (secret); the server stores it root only
#   INVENTORY                 the onebox inventory, e.g. inventories/prod.py
#   CONTEXT                   the build context (default .), DOCKERFILE (default CONTEXT/Dockerfile)
#   TAG                       the moving tag to push besides the digest (default main)
#   BUILD_ARGS                optional "NAME=value NAME2=value2" for docker build
#   ONEBOX                    the onebox command (default onebox); ONEBOX_SSH_KEY etc. as the inventory reads them
set -euo pipefail
: "${REGISTRY:?}" "${IMAGE:?}" "${REGISTRY_USERNAME:?}" "${ONEBOX_REGISTRY_PASSWORD:?}" "${INVENTORY:?}"
context=${CONTEXT:-.}
tag="$REGISTRY/$IMAGE:${TAG:-main}"

build_args=()
for arg in ${BUILD_ARGS:-}; do build_args+=(--build-arg "$arg"); done

printf '%s' "$ONEBOX_REGISTRY_PASSWORD" | docker login "$REGISTRY" -u "$REGISTRY_USERNAME" --password-stdin >/dev/null
docker build -q -f "${DOCKERFILE:-$context/Dockerfile}" "${build_args[@]}" -t "$tag" "$context" >/dev/null
docker push -q "$tag" >/dev/null
# The digest the registry now serves for this push: what the server runs, whatever the tag does later.
digest=$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$tag" | grep -m1 "^$REGISTRY/$IMAGE@sha256:")
echo "deploying $digest"

ONEBOX_APP_IMAGE_SOURCE=registry ONEBOX_APP_IMAGE="$digest" ONEBOX_REGISTRY_SERVER="$REGISTRY" \
  ONEBOX_REGISTRY_USERNAME="$REGISTRY_USERNAME" "${ONEBOX:-onebox}" deploy "$INVENTORY"
