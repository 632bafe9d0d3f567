"""`onebox init [DIR]`: a deploy directory in the user's own repository.

It holds what is the user's (an inventory, the settings that must be set, the secrets file's
place) and deploy files that run onebox's own, from the installed package: upgrading onebox
changes no file of theirs. This repository's inventories/prod.py, group_data/prod.py and
deploys/ are what `onebox init` writes (a unit test holds them to it).
"""

from __future__ import annotations

import ast
from pathlib import Path

from onebox.kit import DEFAULTS

# The deploy files onebox runs (`onebox COMMAND` runs the deploy directory's when it has them).
DEPLOY_FILES = {
    "site": "Converge the inventory's servers",
    "rollback": "Roll back to the previous release (or --data onebox_rollback_to=RELEASE_ID)",
    "restore": "Restore a backup (see `onebox restore --help`)",
    "backup_now": "Take a backup now",
    "maintenance": "Turn maintenance mode on or off (--data onebox_maintenance=on|off)",
    "purge": "Delete a removed app's data for good (see `onebox purge --help`)",
}

INVENTORY = '''"""Production inventory: one Debian 13 / Ubuntu 24.04 server.

    ONEBOX_HOST=203.0.113.7 pyinfra inventories/prod.py deploys/site.py     # or: onebox deploy inventories/prod.py

Settings come from onebox's defaults, then group_data/prod.py beside this directory; secrets
from the environment (ONEBOX_<NAME>) or secrets/prod.env (git-ignored, mode 600). They are
validated here, before pyinfra connects.
"""

import os
from pathlib import Path

from onebox.inventory import settings_for_group

# The first run connects as the provider's root (key login); once deploy_user exists
# you may connect as it instead (ONEBOX_SSH_USER=deploy) and set sshd_permit_root_login = "no".
_user = os.environ.get("ONEBOX_SSH_USER", "root")
_key = os.environ.get("ONEBOX_SSH_KEY")  # None: ssh-agent or ~/.ssh defaults
_known_hosts = os.environ.get("ONEBOX_SSH_KNOWN_HOSTS")  # None: ~/.ssh/known_hosts
_settings = settings_for_group("prod", ssh_user=_user, ssh_key=_key, directory=Path(__file__).resolve().parents[1])

prod = [
    (os.environ.get("ONEBOX_HOST", "203.0.113.7"), {
        "onebox_group": "prod",
        "onebox_settings": _settings,
        "ssh_user": _user,
        **({"ssh_key": _key} if _key else {}),
        **({"ssh_known_hosts_file": _known_hosts} if _known_hosts else {}),
        # Moving sshd to a new port: connect once more on the old one (ONEBOX_SSH_CONNECT_PORT).
        "ssh_port": int(os.environ.get("ONEBOX_SSH_CONNECT_PORT", _settings.sshd_port)),
        "ssh_strict_host_key_checking": "accept-new",
        "_sudo": _user != "root",
    }),
]
'''

REQUIRED = '''# Settings of the servers in inventories/prod.py; onebox's defaults apply to everything not set here.
# Secrets never go here: ONEBOX_<NAME> in the environment, or secrets/prod.env (git-ignored).

# --- what must be set ---
# Your public key(s): the deploy user's only way in once passwords are off.
deploy_ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample you@laptop"]
# The names your API answers on; DNS A/AAAA records must point at the server.
domains = ["api.example.com"]
# Where Let's Encrypt sends expiry notices.
letsencrypt_email = "ops@example.com"
# The app's build context on this machine, relative to the directory you run pyinfra from (this one).
app_source_dir = ".."
'''

# The settings shown (commented, with onebox's default) under the ones that must be set: the app's
# contract and what people change most. `onebox init` copies them from onebox/defaults.py.
COMMON = (
    "app_name", "app_image_source", "app_dockerfile", "app_port", "app_command", "app_health_path",
    "app_metrics_path", "app_env", "app_secrets", "app_secret_env", "app_release_command", "app_processes",
    "api_workers", "api_memory_limit", "postgres_enabled", "redis_enabled", "websocket_paths", "rate_limit_rps",
    "backup_restic_repository", "alert_email_to", "hostname", "timezone",
)

GITIGNORE = """# Secrets (ONEBOX_<NAME>=value, mode 600) and onebox's local state never enter git.
secrets/
*.env
.onebox/
pyinfra-debug.log
"""


def deploy_entry(name: str) -> str:
    """A deploy directory's deploys/<name>.py: onebox's own deploy file, from the installed package."""
    return (f'"""{DEPLOY_FILES[name]}: `pyinfra inventories/prod.py deploys/{name}.py`.\n\n'
            "It runs onebox's own deploy file from the installed package, so upgrading onebox updates it.\n"
            '"""\n\nfrom onebox.kit import run_deploy_file\n\n'
            f'run_deploy_file("{name}")\n')


def commented_defaults(names: tuple[str, ...] = COMMON) -> str:
    """Each setting in `names` as onebox/defaults.py documents it (its comment lines and default), commented out."""
    lines = DEFAULTS.read_text().splitlines()
    blocks = {}
    for node in ast.parse(DEFAULTS.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            start = node.lineno - 1
            while start > 0 and lines[start - 1].startswith("# ") and not lines[start - 1].startswith("# ---"):
                start -= 1
            blocks[node.targets[0].id] = lines[start:node.end_lineno]
    missing = [name for name in names if name not in blocks]
    if missing:
        raise KeyError(f"not settings in onebox/defaults.py: {missing}")
    out = []
    for name in names:
        out += [line if line.startswith("#") else f"# {line}" for line in blocks[name]]
    return "\n".join(out) + "\n"


def group_data_file() -> str:
    return (REQUIRED + "\n# --- common settings, shown with onebox's defaults: uncomment to change ---\n"
            + commented_defaults() + "# Every setting: onebox/defaults.py in the installed package.\n")


def files() -> dict[str, str]:
    """Relative path -> content of a new deploy directory."""
    return {
        "inventories/prod.py": INVENTORY,
        "group_data/prod.py": group_data_file(),
        **{f"deploys/{name}.py": deploy_entry(name) for name in DEPLOY_FILES},
        ".gitignore": GITIGNORE,
    }


def init(directory: Path) -> list[Path]:
    """Write a new deploy directory; refuses (FileExistsError, nothing written) if any of its files exists."""
    planned = {directory / relative: content for relative, content in files().items()}
    existing = [path for path in planned if path.exists()]
    if existing:
        raise FileExistsError(", ".join(str(path) for path in existing))
    for path, content in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (directory / "secrets").mkdir(mode=0o700, exist_ok=True)
    return list(planned)
