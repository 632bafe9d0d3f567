"""Batched facts: a converge that changes nothing costs one round trip for its facts, not ~150.

pyinfra 3 runs one SSH command per fact. onebox remembers which facts the last run of
a deploy asked of a host (.onebox/fact-plans/ in the directory pyinfra runs from) and, at the first fact
of the next run, asks the server for all of them in ONE command. Later requests for
the same fact are answered from that batch.

The batch describes the server as it was before this run changed anything: as soon as
an operation runs a command on the host, the batch is dropped, and the next fact fetches
the next few facts of the plan in one command. A fact the plan does not know, one that
failed in the batch, or one whose command is missing there, is read live, as pyinfra
always does. Correctness never depends on the plan; only speed does.

It replaces pyinfra private functions (pyinfra.api.host.get_fact,
pyinfra.api.operations._run_host_op) and calls others (_handle_fact_kwargs,
_make_command): install() patches nothing unless pyinfra is a tested version
(TESTED_PYINFRA) and each of those has the signature this module was written against
(PRIVATE_SIGNATURES). Otherwise it logs one line and pyinfra reads facts as it always does.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import inspect
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pyinfra
import pyinfra.api.arguments as pyinfra_arguments
import pyinfra.api.facts as pyinfra_facts
import pyinfra.api.host as pyinfra_host
import pyinfra.api.operations as pyinfra_operations
from pyinfra import logger
from pyinfra.api.command import StringCommand
from pyinfra.api.facts import FactBase, ShortFactBase

from onebox.shell import raw_shell

MARK = "@@onebox-fact"
LANES = 4  # facts are read-only: a few run at once, even on a one-core server
# After a change, the next facts of the plan in one command: costs about one live read, and
# a run that changes the host every few operations fetches no fact many times over.
AFTER_CHANGE_WINDOW = 10
_MISSING = object()

# The pyinfra versions this module was tested with: >=3.10,<3.11 (as (major, minor) bounds).
TESTED_PYINFRA = ((3, 10), (3, 11))
# pyinfra's private functions this module replaces or calls, as it expects them (annotations left out).
PRIVATE_SIGNATURES = {
    (pyinfra_host, "get_fact"): "(state, host, cls, args=None, kwargs=None, ensure_hosts=None, apply_failed_hosts=True)",
    (pyinfra_operations, "_run_host_op"): "(state, host, op_hash)",
    (pyinfra_facts, "_handle_fact_kwargs"): "(state, host, cls, args, kwargs)",
    (pyinfra_facts, "_make_command"): "(command_attribute, host_args)",
}
# Other names it relies on: (module, attribute path).
PRIVATE_NAMES = [
    ("pyinfra.api.arguments", "CONNECTOR_ARGUMENT_KEYS"),
    ("pyinfra.api.state", "State.get_op_data_for_host"),
    ("pyinfra.api.operation", "OperationMeta._commands"),
]

_original_get_fact: Any = None  # pyinfra's, set by install()
_original_run_host_op: Any = None
_refusal_logged = False
_fact_classes: dict[str, type[FactBase]] = {}
_plans: dict[str, list[dict]] = {}  # host -> facts asked this run (the next run's plan)
_batches: dict[str, dict[str, Any]] = {}  # host -> fact key -> value, until the host changes
_fetched: set[str] = set()  # hosts whose batch describes the server as it is now
_changed: set[str] = set()  # hosts an operation of this run changed


def _key(cls: type[FactBase], args: tuple, kwargs: dict) -> str | None:
    try:
        return _plan_key({"fact": f"{cls.__module__}.{cls.__qualname__}", "args": list(args), "kwargs": kwargs})
    except TypeError:
        return None  # arguments that do not serialise are never batched


def _plan_key(item: dict) -> str:
    """A fact with its arguments, as the plan records it: the batch's key."""
    return json.dumps([item["fact"], list(item["args"]), item["kwargs"]], sort_keys=True)


def plans_dir() -> Path:
    """In the deploy directory pyinfra runs from (git-ignored .onebox/), never inside the installed package."""
    return Path.cwd() / ".onebox" / "fact-plans"


def _plan_path(host) -> Path:  # noqa: ANN001 - pyinfra's Host
    name = hashlib.sha256(f"{host.name}:{host.data.get('ssh_port')}".encode()).hexdigest()[:16]
    return plans_dir() / f"{name}.json"


def _fetch_batch(state, host, after_change_key: str | None = None) -> None:  # noqa: ANN001
    """One command for every fact of the plan; values processed by the facts themselves.
    After an operation changed the host, the next AFTER_CHANGE_WINDOW facts the plan lists
    from after_change_key on (as the last run went): one round trip instead of one per fact."""
    _fetched.add(host.name)
    try:
        plan = json.loads(_plan_path(host).read_text())
    except (OSError, ValueError):
        return
    if after_change_key is not None:
        keys = [_plan_key(item) for item in plan]
        if after_change_key not in keys:
            return  # the last run never asked this: read live until the next change
        start = keys.index(after_change_key)
        plan = plan[start:start + AFTER_CHANGE_WINDOW]
    entries: list[tuple[dict, FactBase]] = []
    parts: list[str] = []
    for item in plan:
        cls = _fact_classes.get(item["fact"]) or _import_fact(item["fact"])
        if cls is None:
            continue
        fact = cls()
        fact_kwargs, _ = pyinfra_facts._handle_fact_kwargs(state, host, cls, item["args"], item["kwargs"])
        command = pyinfra_facts._make_command(fact.command, fact_kwargs)
        requires = pyinfra_facts._make_command(fact.requires_command, fact_kwargs)
        text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
        if requires:
            required = requires.get_raw_value() if isinstance(requires, StringCommand) else str(requires)
            text = raw_shell(f"if command -v {shlex.quote(required)} >/dev/null 2>&1; then {text}; else exit 127; fi")
        index = len(entries)
        entries.append((item, fact))  # the same instance processes the output: some facts keep state
        parts.append(_part(index, text))
    if not parts:
        return
    logger.debug(f"onebox fact batch: {len(parts)} facts in one command")
    _, global_kwargs = pyinfra_facts._handle_fact_kwargs(state, host, type(entries[0][1]), [], {})
    executor_kwargs = {key: value for key, value in global_kwargs.items()
                       if key in pyinfra_arguments.CONNECTOR_ARGUMENT_KEYS}
    status, output = host.run_shell_command(StringCommand("sh", "-c", _quote(_in_lanes(parts))),
                                            print_output=False, print_input=False, **executor_kwargs)
    if not status:
        return
    batch: dict[str, Any] = {}
    for index, (code, lines) in _blocks(output.stdout_lines).items():
        item, fact = entries[index]
        if code == 0:
            try:
                value = fact.process(lines) if lines else fact.default()
            except Exception:  # noqa: BLE001 - whatever a fact raises, reading it live will show
                value = _MISSING
            if value is not _MISSING:
                batch[_plan_key(item)] = value
    _batches[host.name] = batch


def _part(index: int, command: str) -> str:
    """One fact's command, its output between two markers; the second carries its exit status."""
    return raw_shell(f"echo '{MARK} {index}'; ( {command} ) 2>/dev/null; echo \"{MARK} {index} end $?\"")


def _blocks(stdout_lines: list[str]) -> dict[int, tuple[int, list[str]]]:
    """index -> (exit status, output lines) of every fact that finished."""
    blocks: dict[int, tuple[int, list[str]]] = {}
    lines: list[str] = []
    for line in stdout_lines:
        if line.startswith(f"{MARK} ") and " end " in line:
            blocks[int(line.split()[1])] = (int(line.split()[3]), lines)
            lines = []
        elif line.startswith(f"{MARK} "):
            lines = []
        else:
            lines.append(line)
    return blocks


def _in_lanes(parts: list[str]) -> str:
    """The facts in LANES parallel shells, each writing its own file: the batch takes as long
    as its slowest lane, not the sum of ~150 commands. Each fact's block stays whole (the
    markers carry its index), so the files are simply concatenated."""
    lanes = ["\n".join(parts[i::LANES]) for i in range(LANES)]
    started = "".join(f"( {lane}\n) > \"$dir/{i}\" 2>/dev/null &\n" for i, lane in enumerate(lanes) if lane)
    return raw_shell(f'dir=$(mktemp -d) || exit 1\n{started}wait\ncat "$dir"/*\nrm -rf "$dir"')


def _quote(script: str) -> Any:
    from pyinfra.api.command import QuoteString

    return QuoteString(script)


def _import_fact(path: str) -> type[FactBase] | None:
    module, _, name = path.rpartition(".")
    try:
        imported = __import__(module, fromlist=[name])
        cls = getattr(imported, name)
    except (ImportError, AttributeError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, FactBase) else None


def get_fact(state, host, cls, args=None, kwargs=None, **rest):  # noqa: ANN001, ANN002, ANN003, ANN201
    """pyinfra's get_fact, answered from the batch when it can be."""
    if not isinstance(cls, type) or issubclass(cls, ShortFactBase) or rest:
        return _original_get_fact(state, host, cls, args=args, kwargs=kwargs, **rest)
    args, kwargs = tuple(args or ()), dict(kwargs or {})
    key = _key(cls, args, kwargs)
    if key is None:
        return _original_get_fact(state, host, cls, args=args, kwargs=kwargs)
    name = f"{cls.__module__}.{cls.__qualname__}"
    _fact_classes[name] = cls
    plan = _plans.setdefault(host.name, [])
    if not any(item["key"] == key for item in plan):
        plan.append({"key": key, "fact": name, "args": list(args), "kwargs": kwargs, "host": host})
    if host.name not in _fetched:
        _fetch_batch(state, host, key if host.name in _changed else None)
    batch = _batches.get(host.name, {})
    if key in batch:
        return batch[key]
    return _original_get_fact(state, host, cls, args=args, kwargs=kwargs)


def _run_host_op(state, host, op_hash):  # noqa: ANN001, ANN201
    try:
        return _original_run_host_op(state, host, op_hash)
    finally:
        if state.get_op_data_for_host(host, op_hash).operation_meta._commands:
            # The server changed: the batch no longer describes it. The next fact fetches
            # itself and the few after it afresh.
            _batches.pop(host.name, None)
            _fetched.discard(host.name)
            _changed.add(host.name)


def _save_plans() -> None:
    for items in _plans.values():
        if not items:
            continue
        host = items[0]["host"]
        plans_dir().mkdir(parents=True, exist_ok=True)
        plan = [{key: item[key] for key in ("fact", "args", "kwargs")} for item in items]
        _plan_path(host).write_text(json.dumps(plan))


def _signature(function: Any) -> str:
    """A function's signature without its annotations: "(state, host, op_hash)"."""
    signature = inspect.signature(function)
    parameters = [parameter.replace(annotation=inspect.Parameter.empty) for parameter in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def unsupported_reason(version: str | None = None) -> str | None:
    """Why this pyinfra must not be patched (an untested version, a private name missing or
    changed); None when it is one this module was written against."""
    version = str(getattr(pyinfra, "__version__", "unknown")) if version is None else version
    match = re.match(r"(\d+)\.(\d+)", version)
    low, high = TESTED_PYINFRA
    if match is None or not low <= (int(match[1]), int(match[2])) < high:
        return f"pyinfra {version} is not a tested version (>={low[0]}.{low[1]},<{high[0]}.{high[1]})"
    for (module, name), expected in PRIVATE_SIGNATURES.items():
        function = getattr(module, name, None)
        if not callable(function):
            return f"pyinfra {version} has no {module.__name__}.{name}"
        try:
            found = _signature(function)
        except (TypeError, ValueError):
            return f"the signature of {module.__name__}.{name} cannot be read"
        if found != expected:
            return f"{module.__name__}.{name} is {name}{found}, not {name}{expected}"
    for module_name, path in PRIVATE_NAMES:
        try:
            found_object: Any = importlib.import_module(module_name)
            for attribute in path.split("."):
                found_object = getattr(found_object, attribute)
        except (ImportError, AttributeError):
            return f"pyinfra {version} has no {module_name}.{path}"
    return None


def install() -> None:
    """Batch facts for this pyinfra run (called once by the inventory), when this pyinfra
    is one the batch was tested with; otherwise leave pyinfra's fact reads alone."""
    global _original_get_fact, _original_run_host_op, _refusal_logged
    if getattr(pyinfra_host, "get_fact", None) is get_fact:
        return
    reason = unsupported_reason()
    if reason is not None:
        if not _refusal_logged:
            logger.warning(f"onebox: fact batch off, {reason}: facts are read one by one, as pyinfra does")
            _refusal_logged = True
        return
    _original_get_fact = pyinfra_host.get_fact
    _original_run_host_op = pyinfra_operations._run_host_op
    pyinfra_host.get_fact = get_fact  # type: ignore[assignment]
    pyinfra_operations._run_host_op = _run_host_op
    atexit.register(_save_plans)

