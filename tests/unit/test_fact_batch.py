"""The fact batch's shell script, run by a real sh: facts in parallel lanes, each one's
output whole and its exit status kept."""

from __future__ import annotations

import logging
import subprocess

import pyinfra
import pyinfra.api.arguments
import pyinfra.api.facts
import pyinfra.api.host
import pyinfra.api.operations
import pytest

from onebox import fact_batch
from onebox.fact_batch import LANES, _blocks, _in_lanes, _part


def test_every_fact_comes_back_whole_with_its_status_from_parallel_lanes() -> None:
    count = LANES * 3 + 1
    # Later facts finish first (the sleeps), so the lanes' outputs interleave in time.
    commands = [f"sleep 0.0{(count - i) % 5}; echo first {i}; echo second {i}" for i in range(count)]
    commands[5] = "echo partial; exit 3"
    script = _in_lanes([_part(i, command) for i, command in enumerate(commands)])
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    blocks = _blocks(result.stdout.splitlines())
    assert sorted(blocks) == list(range(count))
    assert blocks[5] == (3, ["partial"])
    for i in set(range(count)) - {5}:
        assert blocks[i] == (0, [f"first {i}", f"second {i}"])


def test_a_fact_that_never_finishes_its_block_is_left_out() -> None:
    assert _blocks(["@@onebox-fact 0", "x", "@@onebox-fact 0 end 0", "@@onebox-fact 1", "cut off"]) == {0: (0, ["x"])}


# The version guard: fact_batch replaces pyinfra private functions only on a pyinfra it was
# tested with; otherwise it patches nothing, says so once, and pyinfra reads facts itself.

@pytest.fixture
def pyinfra_functions(monkeypatch: pytest.MonkeyPatch) -> dict:
    """pyinfra's functions as they are now, restored after the test; no plan written at exit."""
    originals = {"get_fact": pyinfra.api.host.get_fact, "_run_host_op": pyinfra.api.operations._run_host_op}
    monkeypatch.setattr(pyinfra.api.host, "get_fact", originals["get_fact"])
    monkeypatch.setattr(pyinfra.api.operations, "_run_host_op", originals["_run_host_op"])
    for name in ("_original_get_fact", "_original_run_host_op", "_refusal_logged"):
        monkeypatch.setattr(fact_batch, name, getattr(fact_batch, name))
    registered: list = []
    monkeypatch.setattr(fact_batch.atexit, "register", registered.append)
    originals["registered"] = registered
    return originals


def assert_not_patched(originals: dict, caplog: pytest.LogCaptureFixture, says: str) -> None:
    assert pyinfra.api.host.get_fact is originals["get_fact"]  # pyinfra's plain fact reads
    assert pyinfra.api.operations._run_host_op is originals["_run_host_op"]
    assert originals["registered"] == []
    lines = [record.getMessage() for record in caplog.records if "fact batch" in record.getMessage()]
    assert len(lines) == 1 and says in lines[0] and "facts are read one by one" in lines[0]


def test_the_installed_pyinfra_is_the_tested_one_and_gets_patched(pyinfra_functions: dict) -> None:
    assert fact_batch.unsupported_reason() is None, fact_batch.unsupported_reason()
    fact_batch.install()
    assert pyinfra.api.host.get_fact is fact_batch.get_fact
    assert pyinfra.api.operations._run_host_op is fact_batch._run_host_op
    assert fact_batch._original_get_fact is pyinfra_functions["get_fact"]
    assert pyinfra_functions["registered"] == [fact_batch._save_plans]


@pytest.mark.parametrize("version", ["3.11.0", "3.9.4", "4.0", "unknown", ""])
def test_an_untested_pyinfra_version_is_left_alone(version: str, pyinfra_functions: dict, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(pyinfra, "__version__", version)
    with caplog.at_level(logging.WARNING, logger="pyinfra"):
        fact_batch.install()
        fact_batch.install()  # the inventory may ask again: still one line
    assert_not_patched(pyinfra_functions, caplog, f"pyinfra {version} is not a tested version (>=3.10,<3.11)")


@pytest.mark.parametrize("version", ["3.10.0", "3.10.7", "3.10.1.dev2"])
def test_every_3_10_release_is_tested(version: str) -> None:
    assert fact_batch.unsupported_reason(version) is None


@pytest.mark.parametrize(("module", "name"), [
    (pyinfra.api.facts, "_handle_fact_kwargs"),
    (pyinfra.api.facts, "_make_command"),
    (pyinfra.api.operations, "_run_host_op"),
    (pyinfra.api.host, "get_fact"),
])
def test_a_missing_private_function_means_no_patch(module, name: str, pyinfra_functions: dict,  # noqa: ANN001
                                                   monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delattr(module, name)
    with caplog.at_level(logging.WARNING, logger="pyinfra"):
        fact_batch.install()
    assert not hasattr(module, name)  # install put nothing in its place
    if name != "get_fact":
        assert pyinfra.api.host.get_fact is pyinfra_functions["get_fact"]
    if name != "_run_host_op":
        assert pyinfra.api.operations._run_host_op is pyinfra_functions["_run_host_op"]
    assert pyinfra_functions["registered"] == []
    lines = [record.getMessage() for record in caplog.records if "fact batch" in record.getMessage()]
    assert len(lines) == 1 and f"has no {module.__name__}.{name}" in lines[0]


def test_a_changed_signature_means_no_patch(pyinfra_functions: dict, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    def run_host_op(state, host, op_hash, retry=False):  # noqa: ANN001, ANN202 - a later pyinfra's, say
        return True

    monkeypatch.setattr(pyinfra.api.operations, "_run_host_op", run_host_op)
    pyinfra_functions["_run_host_op"] = run_host_op
    with caplog.at_level(logging.WARNING, logger="pyinfra"):
        fact_batch.install()
    assert_not_patched(pyinfra_functions, caplog,
                       "pyinfra.api.operations._run_host_op is _run_host_op(state, host, op_hash, retry=False), "
                       "not _run_host_op(state, host, op_hash)")


def test_a_renamed_parameter_means_no_patch(pyinfra_functions: dict, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    def make_command(command, host_args):  # noqa: ANN001, ANN202
        return command

    monkeypatch.setattr(pyinfra.api.facts, "_make_command", make_command)
    with caplog.at_level(logging.WARNING, logger="pyinfra"):
        fact_batch.install()
    assert_not_patched(pyinfra_functions, caplog, "_make_command(command, host_args), not _make_command(command_attribute")


def test_a_missing_private_attribute_means_no_patch(pyinfra_functions: dict, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delattr(pyinfra.api.arguments, "CONNECTOR_ARGUMENT_KEYS")
    with caplog.at_level(logging.WARNING, logger="pyinfra"):
        fact_batch.install()
    assert_not_patched(pyinfra_functions, caplog, "has no pyinfra.api.arguments.CONNECTOR_ARGUMENT_KEYS")
