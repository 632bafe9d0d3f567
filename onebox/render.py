"""Render onebox/templates/ with jinja2; templates are laid out like their destinations."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from onebox import contract
from onebox.kit import TEMPLATES

HEADER = "managed by onebox: local edits are overwritten on the next deploy"

# StrictUndefined: a typo in a template fails the render instead of writing an empty value.
_env = Environment(
    loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
    keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False,
)
# The facts a rendered file shares with the server programs (contract.SLOTS, contract.compose, ...).
_env.globals["contract"] = contract


def yaml_str(value: object) -> str:
    """`value` as a YAML double-quoted scalar that reads back as exactly str(value): a backslash, a quote or
    a newline in a setting (a password) is escaped, never interpreted, and cannot end the string."""
    out = []
    for char in str(value):
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:  # anything else as an escape: YAML's printable set differs between versions and readers
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


_env.filters["yaml"] = yaml_str


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(header=HEADER, **context)


def secret_env_lines(values: dict[str, Any]) -> str:
    """NAME=value lines of the secrets supplied (pydantic SecretStr; None left out), for a root-only
    file a program reads into its environment (restic's backup.env, pgBackRest's)."""
    return contract.secret_env_text({name: value.get_secret_value() for name, value in values.items() if value is not None})
