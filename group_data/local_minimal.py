# The minimal example (examples/minimal: `uvicorn main:app`, PostgreSQL only) on the local target.
# Layered on group_data/local.py: ONEBOX_EXTRA_GROUPS=local_minimal. Only the app's contract is set here.

# The build context on this machine; its Dockerfile is at the root (onebox's default).
app_source_dir = "examples/minimal"
# The image name; onebox tags it with the source hash.
app_image = "onebox/minimal"
# uvicorn listens on 8000 inside the container.
app_port = 8000
# Liveness without the database.
app_health_path = "/health"
# No Redis container: the app does not use it.
redis_enabled = False
# No plain variables: the app needs only DATABASE_URL.
app_env = {}
# No named secrets.
app_secrets = []
# The database URL holds the password, so it is a secret (DATABASE_URL / DATABASE_URL_FILE).
app_secret_env = {
    "DATABASE_URL": "postgresql://{postgres_user}:{postgres_password_url}@{postgres_host}:{postgres_port}/{postgres_db}",
}
# No release step: the app creates its table at startup.
app_release_command = None
# No worker or scheduler.
app_processes = {}
