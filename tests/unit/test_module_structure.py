"""The shape of the package (issue 31): small modules, no import cycle (late imports included),
roles that import no other role and no deploy that imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "onebox"
# The settings' documented defaults: one commented line per setting, long by design.
LONG_BY_DESIGN = {"defaults.py"}
# The deploy files pyinfra runs (deploys/*.py): each composes the roles it needs.
ENTRY_DEPLOYS = {"site", "backup_now", "maintenance", "purge", "restore", "rollback"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(name: str) -> set[str]:
    """The onebox modules `name` imports anywhere in its file (a late import inside a function too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found & set(MODULES) - {name}


def test_no_module_is_over_300_lines() -> None:
    long = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in MODULES.values()
            if path.name not in LONG_BY_DESIGN}
    assert {name: lines for name, lines in long.items() if lines > 300} == {}


def test_no_import_cycle() -> None:
    graph = {name: imported(name) for name in MODULES}
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            current, path = stack.pop()
            for nxt in graph[current]:
                if nxt == start:
                    cycles.append(" -> ".join([*path, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


def test_roles_import_no_other_role_and_no_deploy_imports_the_cli() -> None:
    deploys = {name for name in MODULES if name.startswith("onebox.deploys.")}
    for name in sorted(deploys):
        imports = imported(name)
        assert "onebox.cli" not in imports, name
        if name.rpartition(".")[2] not in ENTRY_DEPLOYS:
            assert imports & deploys == set(), f"{name} imports the role(s) {sorted(imports & deploys)}"


def test_the_slots_are_named_only_in_the_contract() -> None:
    """contract.SLOTS is where a slot's name and its place among the app's ports live: nowhere in onebox/
    is a slot named by a string of its own (docstrings and comments aside)."""
    named = []
    for name, path in MODULES.items():
        if name == "onebox.contract.layout":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
                      and isinstance(node.body[0], ast.Expr)}
        named += [f"{name}:{node.lineno}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value in ("blue", "green") and id(node) not in docstrings]
    assert named == []


def test_the_slots_take_the_app_s_ports_in_order_and_a_release_goes_to_the_one_not_live() -> None:
    from onebox import contract
    assert [contract.slot_port((8000, 8001), slot) for slot in contract.SLOTS] == [8000, 8001]
    assert [contract.other_slot(slot) for slot in (None, *contract.SLOTS)] == ["blue", "green", "blue"]
