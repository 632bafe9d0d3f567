"""onebox reference FastAPI service."""
