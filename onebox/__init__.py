"""onebox: put a FastAPI application into production on a single server with pyinfra."""
