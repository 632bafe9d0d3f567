#!/usr/bin/env bash
# Build the app's image, push it, and deploy it BY DIGEST as the onebox-ci account: CI's deploy
# job without root on the server (README "Deploy from CI"). The server must have been converged
# by the admin with this key's public half in ci_ssh_keys and app_image_source = "registry";
# CI may then deploy any digest of app_image's repository, and nothing else. No onebox, no
# inventory and no app secret here: the server has them.
# onebox's e2e suite runs this script against the local target and registry
# (tests/e2e/test_8c_registry.py).
#
# Inputs (environment; secrets come from the CI's secret store, never from the repository):
#   REGISTRY                  registry host[:port], e.g. ghcr.io
#   IMAGE                     repository path in it, e.g. my-org/my-api (the one app_image names)
#   REGISTRY_USERNAME         the account that pushes
#   ONEBOX_REGISTRY_PASSWORD  its password or token (secret), for the push only
#   HOST                      the server (address or name; its host key in ~/.ssh/known_hosts)
#   CI_SSH_KEY                the private key whose public half is in ci_ssh_keys (secret)
#   APP                       the app's name; may be empty on a server of one app
#   SSH_PORT                  sshd_port (default 22)
#   CONTEXT                   the build context (default .), DOCKERFILE (default CONTEXT/Dockerfile)
#   TAG                       the moving tag to push besides the digest (default main)
#   BUILD_ARGS                optional "NAME=value NAME2=value2" for docker build
#   SSH_OPTIONS               optional extra ssh options, e.g. "-o UserKnownHostsFile=ci_known_hosts"
set -euo pipefail
: "${REGISTRY:?}" "${IMAGE:?}" "${REGISTRY_USERNAME:?}" "${ONEBOX_REGISTRY_PASSWORD:?}" "${HOST:?}" "${CI_SSH_KEY:?}"
context=${CONTEXT:-.}
tag="$REGISTRY/$IMAGE:${TAG:-main}"

build_args=()
for arg in ${BUILD_ARGS:-}; do build_args+=(--build-arg "$arg"); done
ssh_options=()
for option in ${SSH_OPTIONS:-}; do ssh_options+=("$option"); done

printf '%s' "$ONEBOX_REGISTRY_PASSWORD" | docker login "$REGISTRY" -u "$REGISTRY_USERNAME" --password-stdin >/dev/null
docker build -q -f "${DOCKERFILE:-$context/Dockerfile}" "${build_args[@]}" -t "$tag" "$context" >/dev/null
docker push -q "$tag" >/dev/null
# The digest the registry now serves for this push: what the server runs, whatever the tag does later.
digest=$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$tag" | grep -m1 "^$REGISTRY/$IMAGE@sha256:")
echo "deploying $digest"

# The key's forced command on the server is `sudo -n onebox-release ci-deploy`, whatever is asked
# here: the app and the digest go on stdin, one line. Its exit status is the deploy's (0 live,
# 1 failed and the running version kept, 2 refused before anything changed).
printf '%s %s\n' "${APP:-}" "$digest" |
  ssh -i "$CI_SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -p "${SSH_PORT:-22}" "${ssh_options[@]}" \
    onebox-ci@"$HOST"
