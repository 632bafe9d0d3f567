"""Every group-data example in the README validates through the settings model, as a user
would paste it (the build context is replaced by a directory holding its Dockerfile)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_settings import valid

from onebox.settings import validate_settings

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def group_data_examples() -> list[str]:
    """The README's python blocks that set onebox settings (assignments at the top level)."""
    return [block for block in BLOCK.findall(README.read_text()) if re.search(r"^[a-z_]+ = ", block, re.M)]


def test_the_readme_has_group_data_examples() -> None:
    assert len(group_data_examples()) >= 2


@pytest.mark.parametrize("block", group_data_examples(), ids=lambda block: block.split("\n", 2)[1][:40])
def test_each_readme_example_validates(block: str, tmp_path: Path) -> None:
    values: dict = {}
    exec(compile(block, "README.md", "exec"), {}, values)  # noqa: S102 - the README's own text
    dockerfile = tmp_path / values.get("app_dockerfile", "Dockerfile")
    dockerfile.parent.mkdir(parents=True, exist_ok=True)
    dockerfile.write_text("FROM scratch\n")
    # Each app of an `apps` example builds from that directory too.
    apps = {name: {**entry, **({"app_source_dir": str(tmp_path)} if "app_source_dir" in entry else {})}
            for name, entry in values.get("apps", {}).items()}
    data = valid(**{**values, "app_source_dir": str(tmp_path), **({"apps": apps} if apps else {})})
    settings = validate_settings(data)
    for name, value in values.items():
        if name not in ("app_source_dir", "apps"):
            assert getattr(settings, name) == value or str(getattr(settings, name)) == str(value), name
    for app in settings.app_list if apps else []:
        for name, value in values["apps"][app.app_name].items():
            if name != "app_source_dir":
                assert getattr(app, name) == value, f"apps.{app.app_name}.{name}"
