# The jobs example (examples/jobs: API + worker + release script) on the local target.
# Layered on group_data/local.py: ONEBOX_EXTRA_GROUPS=local_jobs. Only the app's contract is set here.

# The build context on this machine.
app_source_dir = "examples/jobs"
# The Dockerfile lives in docker/, not at the context root.
app_dockerfile = "docker/Dockerfile"
# The named final stage of the multi-stage build.
app_build_target = "runtime"
# The stand-in base image (no registry here); production keeps onebox's default python:3.13-slim.
app_build_args = {"PYTHON_IMAGE": "onebox-test/python:3.13"}
# The image name; onebox tags it with the source hash.
app_image = "onebox/jobs"
# uvicorn listens on 8080 inside the container.
app_port = 8080
# Liveness without the database or Redis.
app_health_path = "/healthz"
# It publishes no Prometheus metrics.
app_metrics_path = None
# The image's own CMD (uvicorn jobs.main:app ...).
app_command = None
# Plain variables: the Redis URL, and the proxy uvicorn trusts for X-Forwarded-* (read by uvicorn itself).
app_env = {"REDIS_URL": "{redis_url}", "FORWARDED_ALLOW_IPS": "{proxy_ip}"}
# Generated on the server once unless ONEBOX_SECRET_SECRET_KEY is supplied; the app reads SECRET_KEY or SECRET_KEY_FILE.
app_secrets = ["SECRET_KEY"]
# The database URL holds the password, so it is a secret too (DATABASE_URL / DATABASE_URL_FILE).
app_secret_env = {
    "DATABASE_URL": "postgresql://{postgres_user}:{postgres_password_url}@{postgres_host}:{postgres_port}/{postgres_db}",
}
# Creates the jobs table before the new version takes traffic; FAIL_RELEASE=1 makes it fail on purpose.
app_release_command = ["sh", "scripts/release.sh"]
# The queue worker from the same image; 20 s to finish its current job after SIGTERM.
app_processes = {"worker": {"command": ["python", "-m", "jobs.worker"], "stop_grace_period": 20}}
