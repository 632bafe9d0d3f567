"""The fact batch's shell script, run by a real sh: facts in parallel lanes, each one's
output whole and its exit status kept."""

from __future__ import annotations

import subprocess

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
