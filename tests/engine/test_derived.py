"""Derived packets from a real run: the segments the syscalls imply, no more."""
from __future__ import annotations

import socket
import time

from engine.capture.derived import DELAYED_ACK_NS, PacketDeriver
from engine.clients import LoadConfig, run_load
from engine.events import Event, MemorySink, Probe
from tests.conftest import running_server


def derive_run(*, hold_close: float = 0.0, **load: object) -> tuple[list[Event], MemorySink]:
    """A live server and built-in client, both feeding a PacketDeriver."""
    packets = MemorySink()
    deriver = PacketDeriver(Probe("engine"))
    deriver.probe.add_sink(packets)
    deriver.start()
    client_probe = Probe("client")
    client_probe.add_sink(deriver)
    try:
        with running_server() as (server, sink):
            server.probe.add_sink(deriver)
            if hold_close:
                server.gate.enable()
                import threading
                def stepper() -> None:  # let everything but close through at once
                    deadline = time.monotonic() + 10
                    while server.gate.enabled and time.monotonic() < deadline:
                        if server.gate.wait_until_held(1, 0.05):
                            held = server.gate.held[0]
                            if held.action == "close":
                                time.sleep(hold_close)
                                server.gate.disable()
                                return
                            released = server.gate.released
                            server.gate.step()
                            while server.gate.released == released:  # one step, one action
                                time.sleep(0.0005)
                t = threading.Thread(target=stepper)
                t.start()
            result = run_load(LoadConfig(server.url, **load), client_probe)  # type: ignore[arg-type]
            assert sink.wait_for(lambda evs: any(e.kind == "close" for e in evs), 5)
            if hold_close:
                t.join(10)
            time.sleep(0.1)  # past the delayed-ACK timer
    finally:
        deriver.stop()
    assert result.failed == 0
    return list(packets.events), sink


def check_arithmetic(packets: list[Event]) -> None:
    """Each side's sequence numbers follow from what it sent; acks from what it got."""
    next_seq: dict[int, int] = {}
    for p in packets:
        d = p.data
        if d["sport"] in next_seq and "RST" not in d["flags"]:
            assert d["tcp_seq"] == next_seq[d["sport"]], p
        grow = d["len"] + (1 if "SYN" in d["flags"] else 0) + (1 if "FIN" in d["flags"] else 0)
        next_seq[d["sport"]] = d["tcp_seq"] + grow
        if "ACK" in d["flags"] and d["dport"] in next_seq:
            assert d["ack"] <= next_seq[d["dport"]], p


def test_keep_alive_connection_is_derived_whole() -> None:
    packets, sink = derive_run(requests=2)
    flags = [p.data["flags"] for p in packets]
    assert flags[:3] == ["SYN", "SYN|ACK", "ACK"]
    assert flags.count("PSH|ACK") == 4  # two requests, two answers
    requests = [p for p in packets if p.data["flags"] == "PSH|ACK" and p.data["sender"] == "client"]
    sent = [e.data["bytes"] for e in sink.of_kind("recv") if e.data["bytes"]]
    assert [p.data["len"] for p in requests] == sent
    check_arithmetic(packets)
    assert all(p.data["origin"] == "derived" for p in packets)
    assert {p.conn for p in packets} == {e.conn for e in sink.of_kind("accept")}
    # The client closes; the server reads EOF and closes at once: three segments.
    tail = [(p.data["sender"], p.data["flags"]) for p in packets[-3:]]
    assert tail == [("client", "FIN|ACK"), ("server", "FIN|ACK"), ("client", "ACK")]


def test_server_held_before_close_gives_four_segments() -> None:
    packets, _ = derive_run(requests=1, hold_close=0.2)
    tail = [(p.data["sender"], p.data["flags"]) for p in packets[-4:]]
    assert tail == [("client", "FIN|ACK"), ("server", "ACK"), ("server", "FIN|ACK"),
                    ("client", "ACK")]
    fin, ack = packets[-4], packets[-3]
    assert ack.t_ns - fin.t_ns == DELAYED_ACK_NS
    assert ack.data["ack"] == fin.data["tcp_seq"] + 1
    assert packets[-1].data["ack"] == packets[-2].data["tcp_seq"] + 1
    check_arithmetic(packets)


def test_aborting_client_ends_in_rst() -> None:
    packets, _ = derive_run(requests=1, behaviour="abort")
    assert packets[-1].data["flags"] == "RST|ACK" and packets[-1].data["sender"] == "client"
    assert not [p for p in packets if "FIN" in p.data["flags"]]


def test_external_client_is_derived_from_the_server_side_only() -> None:
    """A client that is not ours (a browser): its data from the server's recvs,
    its FIN from the server's end-of-file."""
    packets = MemorySink()
    deriver = PacketDeriver(Probe("engine"))
    deriver.probe.add_sink(packets)
    with running_server() as (server, sink):
        server.probe.add_sink(deriver)
        with socket.create_connection(server.address[:2], timeout=5) as sock:
            sock.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(65536)
        assert sink.wait_for(lambda evs: any(e.kind == "close" for e in evs), 5)
    got = [(p.data["sender"], p.data["flags"]) for p in packets.events]
    assert got[:4] == [("client", "SYN"), ("server", "SYN|ACK"), ("client", "ACK"),
                       ("client", "PSH|ACK")]
    assert ("client", "FIN|ACK") in got and got[-1] == ("client", "ACK")
    check_arithmetic(list(packets.events))
