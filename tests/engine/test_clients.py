"""The built-in clients, including the misbehaving ones, against a real server."""
from __future__ import annotations

import time

import pytest

from engine.clients import LoadConfig, run_load
from engine.events import MemorySink, Probe
from tests.conftest import ALL_MODES, MODE_IDS, running_server, socket_close, socket_closes


def client_probe() -> tuple[Probe, MemorySink]:
    sink = MemorySink()
    probe = Probe("client")
    probe.add_sink(sink)
    return probe, sink


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_abort_resets_and_the_server_carries_on(mode: str, trigger: str) -> None:
    with running_server(mode, trigger) as (server, sink):
        result = run_load(LoadConfig(server.url + "images/big.bmp", clients=3, requests=2,
                                     behaviour="abort"))
        assert result.expected_failures == 6 and result.failed == 0
        assert sink.wait_for(lambda evs: sum(socket_close(e) for e in evs) >= 6, 5)
        after = run_load(LoadConfig(server.url, clients=2, requests=3))
    assert after.ok == 6 and after.failed == 0
    closes = [e for e in socket_closes(sink)][:6]
    assert len(closes) == 6


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_half_close_still_gets_every_answer(mode: str, trigger: str) -> None:
    probe, csink = client_probe()
    with running_server(mode, trigger) as (server, sink):
        result = run_load(LoadConfig(server.url, requests=3, behaviour="half-close"), probe)
        assert sink.wait_for(lambda evs: any(socket_close(e) for e in evs), 5)
    assert result.ok == 3 and result.failed == 0
    assert [e.kind for e in csink.events if e.kind in ("connect", "shutdown", "close")] == \
        ["connect", "shutdown", "close"]
    (close,) = socket_closes(sink)
    assert close.data["reason"] == "peer closed"


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_half_close_gets_a_large_answer_whole(mode: str, trigger: str) -> None:
    """The client's FIN arrives while 1.5 MiB are still being sent: the server
    finishes the answer before it closes."""
    with running_server(mode, trigger) as (server, sink):
        result = run_load(LoadConfig(server.url + "images/big.bmp", requests=2,
                                     behaviour="half-close"))
        assert sink.wait_for(lambda evs: any(socket_close(e) for e in evs), 5)
    assert result.ok == 2 and result.failed == 0, result.summary()
    sent = sum(e.data["bytes"] for e in sink.of_kind("send"))
    assert sent > 2 * 1_500_000
    assert socket_closes(sink)[0].data["reason"] == "peer closed"


def test_slow_client_is_served_when_under_the_header_timeout() -> None:
    probe, csink = client_probe()
    with running_server(header_timeout=5.0) as (server, sink):
        result = run_load(LoadConfig(server.url + "robots.txt", behaviour="slow",
                                     slow_interval=0.002), probe)
    assert result.ok == 1
    assert len([e for e in csink.events if e.kind == "send"]) > 50  # byte by byte
    assert len(sink.of_kind("recv")) > 5


def test_slow_client_is_cut_off_by_the_header_timeout() -> None:
    with running_server(header_timeout=0.3) as (server, sink):
        result = run_load(LoadConfig(server.url, behaviour="slow", slow_interval=0.05, timeout=5))
    assert result.ok == 0 and result.failed == 1
    assert [e.data["reason"] for e in socket_closes(sink)] == ["header_timeout"]


def test_pipeline_sends_before_reading() -> None:
    probe, csink = client_probe()
    with running_server() as (server, sink):
        result = run_load(LoadConfig(server.url, requests=8, pipeline=4), probe)
    assert result.ok == 8 and result.connections == 1
    sends = [e for e in csink.events if e.kind == "send"]
    assert len(sends) == 2  # two batches of four requests
    assert len(sink.of_kind("request")) == 8


def test_rate_paces_requests() -> None:
    with running_server() as (server, _):
        started = time.monotonic()
        result = run_load(LoadConfig(server.url, clients=2, requests=5, rate=50))
        took = time.monotonic() - started
    assert result.ok == 10
    assert took >= 0.15, f"10 requests at 50/s must take about 0.2 s, took {took:.3f}"


def test_think_time_between_requests() -> None:
    with running_server() as (server, _):
        result = run_load(LoadConfig(server.url, requests=4, think=0.05))
    assert result.ok == 4 and result.elapsed >= 0.19


def test_client_events_carry_the_server_connection_id() -> None:
    probe, csink = client_probe()
    with running_server() as (server, sink):
        run_load(LoadConfig(server.url, clients=2, requests=2, keep_alive=False), probe)
        assert sink.wait_for(lambda evs: sum(socket_close(e) for e in evs) >= 4, 5)
    for conn in {e.conn for e in csink.events}:
        client_kinds = [e.kind for e in csink.events if e.conn == conn]
        assert client_kinds[0] == "connect" and client_kinds[-1] == "close"
        assert {"send", "recv"} <= set(client_kinds)
        server_kinds = [e.kind for e in sink.events if e.conn == conn]
        assert server_kinds[0] == "accept" and server_kinds[-1] in ("close", "epoll_ctl")
