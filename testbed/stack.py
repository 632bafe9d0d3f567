"""This machine's side of a local run, shared by the demo, the e2e tests and the benchmarks."""

from __future__ import annotations

from testbed import images, pebble
from testbed.target import Target, down, ensure_host_docker, up


def bring_up(target: Target, fresh: bool = False) -> None:
    """dockerd, the stand-in images, the target (discarded first when `fresh`), and Pebble for it."""
    ensure_host_docker()
    images.ensure_standin_images()
    if fresh:
        down(target)
    up(target)
    pebble.ensure_running(target.ip)
