"""The kernel's map from an app's stable address to its live slot (issue 33): the exact rules,
the switch undone when nft refuses it, and the drain that waits for nginx's connections."""

from __future__ import annotations

import threading
import time

import pytest
from fake_docker import FakeDocker, make_app
from test_engine import settings

from onebox import contract
from onebox.server import port_map
from onebox.server.basics import OneboxError


def entry(state: str, dst: str, dport: int, answered_from: int) -> str:
    """A line of /proc/net/nf_conntrack as the target's kernel writes it."""
    return (f"ipv4     2 tcp      6 431990 {state} src=127.0.0.1 dst={dst} sport=33388 dport={dport} "
            f"src=127.0.0.1 dst=127.0.0.1 sport={answered_from} dport=33388 [ASSURED] mark=0 zone=0 use=2\n")


# nginx's connections to the stable address, sent to slot 8001 (one open, one closed) and to 8000;
# Prometheus's own, straight to 8001.
CONNTRACK = (entry("ESTABLISHED", "127.100.0.1", 8000, 8001) + entry("TIME_WAIT", "127.100.0.1", 8000, 8001)
             + entry("ESTABLISHED", "127.100.0.1", 8000, 8000) + entry("ESTABLISHED", "127.0.0.1", 8001, 8001))


@pytest.fixture
def fake() -> FakeDocker:
    return FakeDocker()


@pytest.fixture
def app(tmp_path, fake, monkeypatch):  # noqa: ANN001, ANN201
    return make_app(tmp_path, settings(), fake, monkeypatch)


def test_the_rules_replace_the_apps_table_in_one_transaction(app) -> None:
    assert port_map.rules_text(app, "green") == (
        "# managed by onebox-release: app onebox's new connections go to its live slot (green)\n"
        "table ip onebox_switch\n"
        "delete table ip onebox_switch\n"
        "table ip onebox_switch {\n"
        "    chain output {\n"
        "        type nat hook output priority -100; policy accept;\n"
        f"        ip daddr 127.100.0.1 tcp dport {app.port('blue')} dnat to 127.0.0.1:{app.port('green')}\n"
        "    }\n"
        "}\n")
    assert contract.switched_upstream_text(app.port("blue")).endswith(f"server 127.100.0.1:{app.port('blue')};\n")
    assert contract.upstream_port(contract.switched_upstream_text(8000)) is None  # it names no slot


def test_a_switch_nft_refuses_leaves_the_previous_map_in_file_and_kernel(app, fake) -> None:
    port_map.map_to(app, "blue")
    assert port_map.points_at(app, "blue") and port_map.mapped_port(app) == app.port("blue")
    fake.fail = lambda argv: argv[:2] == ["nft", "-f"] and "(green)" in port_map.rules_file(app).read_text()
    with pytest.raises(OneboxError, match="the switch to slot green failed .* the previous version keeps serving"):
        port_map.map_to(app, "green")
    assert port_map.points_at(app, "blue") and port_map.mapped_port(app) == app.port("blue")


def test_a_kernel_that_forgot_the_map_is_not_pointing(app, fake) -> None:
    port_map.map_to(app, "blue")
    fake.nft.clear()  # a reboot, or someone's `nft flush ruleset`
    assert not port_map.points_at(app, "blue")


def test_only_nginx_connections_the_map_sent_to_a_slot_count() -> None:
    assert port_map.mapped_connections(CONNTRACK, ("127.100.0.1", 8000), 8001) == 1
    assert port_map.mapped_connections(CONNTRACK, ("127.100.0.1", 8000), 8000) == 1
    assert port_map.mapped_connections(CONNTRACK, ("127.100.0.1", 8010), 8001) == 0  # another app's address


def test_the_drain_waits_for_the_last_connection_to_the_old_slot(app, monkeypatch, tmp_path) -> None:
    table = tmp_path / "conntrack"
    monkeypatch.setattr(port_map, "CONNTRACK", table)
    table.write_text(entry("ESTABLISHED", "127.100.0.1", app.port("blue"), app.port("green")))
    closing = threading.Timer(1.0, lambda: table.write_text(""))
    closing.start()
    waited = port_map.drain(app, "green")
    assert 0.9 < waited < 5
    started = time.monotonic()
    assert port_map.drain(app, "blue") < 0.5 and time.monotonic() - started < 0.5  # nothing open: no wait
