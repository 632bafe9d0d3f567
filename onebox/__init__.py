"""onebox: put a FastAPI application into production on a single server with pyinfra."""

# The one version number (pyproject.toml reads it from here); semantic: see CHANGELOG.md.
__version__ = "0.5.2"
