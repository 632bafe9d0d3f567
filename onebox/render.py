"""Render onebox/templates/ with jinja2; templates are laid out like their destinations."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from onebox.kit import TEMPLATES

HEADER = "managed by onebox: local edits are overwritten on the next deploy"

# StrictUndefined: a typo in a template fails the render instead of writing an empty value.
_env = Environment(
    loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
    keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False,
)


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(header=HEADER, **context)
