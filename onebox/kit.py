"""Where onebox's own files are, and where the user's are.

onebox's files (the deploy files, the templates, the defaults) are package data: the
same paths in this repository and in an installed wheel. The user's files (inventories,
group data, secrets) live in a deploy directory of their own, which `onebox init` makes;
this repository is such a directory too (inventories/, group_data/, deploys/).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
DEPLOYS = PACKAGE / "deploys"
TEMPLATES = PACKAGE / "templates"
DEFAULTS = PACKAGE / "defaults.py"
SCAFFOLD = PACKAGE / "scaffold"


def deploy_file(name: str) -> Path:
    """onebox's packaged deploy file `name` (site, rollback, restore, ...)."""
    path = DEPLOYS / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"onebox has no deploy file {name!r} (looked for {path})")
    return path


def run_deploy_file(name: str) -> None:
    """Run onebox's deploy file `name` in the current pyinfra run, as if pyinfra had been given
    its path: a deploy directory's `deploys/site.py` is this one call. pyinfra runs a deploy
    file once per host, so this runs it once per host too (an import would run it only once)."""
    from pyinfra_cli.util import exec_file

    exec_file(str(deploy_file(name)))
