"""Derived packets from a real run: the segments the syscalls imply, no more.

The truth they are held to is the wire: as root, the same run is captured on
`lo` and, per connection, the derived (sender, flags, length) list must equal
the captured one. What Linux 6.x put on the wire here (tcp_pingpong_thresh 1):

short connection (the client sends one request, reads the answer and the
server's FIN, and closes at once):
    C SYN, S SYN|ACK, C ACK, C PSH|ACK 88, S ACK (quick-ACK), S PSH|ACK 2007,
    C ACK (quick-ACK), S FIN|ACK, C FIN|ACK (carries the delayed ACK of the FIN),
    S ACK
keep-alive, three requests (from the second on, both ends are in ping-pong
mode: each ACK rides on the answer, the last on the client's FIN):
    C SYN, S SYN|ACK, C ACK, C PSH|ACK 93, S ACK, S PSH|ACK 2012, C ACK,
    C PSH|ACK 93, S PSH|ACK 2012, C PSH|ACK 93, S PSH|ACK 2012,
    C FIN|ACK, S FIN|ACK, C ACK
"""
from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from typing import Iterator

import pytest

from engine import ServerConfig, create_server
from engine.capture.derived import DELAYED_ACK_NS, LOCAL_ONE_SEGMENT, PacketDeriver
from engine.capture.live import LoopbackCapture, can_capture
from engine.clients import LoadConfig, run_load
from engine.events import Event, MemorySink, Probe
from engine.server import Server
from tests.conftest import ALL_MODES, MODE_IDS, running_server

capture_ok, capture_why = can_capture()
needs_capture = pytest.mark.skipif(
    not capture_ok and not os.environ.get("CI"),
    reason=f"comparing with the wire needs live capture (root or CAP_NET_RAW): {capture_why}")


def derive_run(*, hold_close: float = 0.0, path: str = "", server: dict | None = None,
               **load: object) -> tuple[list[Event], MemorySink]:
    """A live server and built-in client, both feeding a PacketDeriver.
    ``server``: ServerConfig options; ``path``: what the client asks for."""
    packets = MemorySink()
    deriver = PacketDeriver(Probe("engine"))
    deriver.probe.add_sink(packets)
    deriver.start()
    client_probe = Probe("client")
    client_probe.add_sink(deriver)
    try:
        with running_server(**(server or {})) as (srv, sink):
            srv.probe.add_sink(deriver)
            if hold_close:
                srv.gate.enable()

                def stepper() -> None:  # let everything but close through at once
                    deadline = time.monotonic() + 10
                    while srv.gate.enabled and time.monotonic() < deadline:
                        if srv.gate.wait_until_held(1, 0.05):
                            held = srv.gate.held[0]
                            if held.action == "close":
                                time.sleep(hold_close)
                                srv.gate.disable()
                                return
                            released = srv.gate.released
                            srv.gate.step()
                            while srv.gate.released == released:  # one step, one action
                                time.sleep(0.0005)
                t = threading.Thread(target=stepper)
                t.start()
            config = LoadConfig(srv.url + path, **load)  # type: ignore[arg-type]
            result = run_load(config, client_probe)
            assert sink.wait_for(lambda evs: any(e.kind == "close" for e in evs), 5)
            if hold_close:
                t.join(10)
            time.sleep(0.1)  # past the delayed-ACK timer
    finally:
        deriver.stop()
    assert result.failed == 0
    return in_time_order(packets.events), sink


def in_time_order(events: object) -> list[Event]:
    """Derived events as the timeline shows them: some are dated in the past."""
    return sorted(events, key=lambda e: (e.t_ns, e.seq))  # type: ignore[attr-defined]


def shape(packets: list[Event]) -> list[tuple[str, str]]:
    return [(p.data["sender"], p.data["flags"]) for p in packets]


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
    # Quick-ACK for the first request and answer; then ping-pong: the second
    # request carries the client's ACK, the answer the server's, the FIN the last.
    assert shape(packets) == [("client", "SYN"), ("server", "SYN|ACK"), ("client", "ACK"),
                              ("client", "PSH|ACK"), ("server", "ACK"),
                              ("server", "PSH|ACK"), ("client", "ACK"),
                              ("client", "PSH|ACK"), ("server", "PSH|ACK"),
                              ("client", "FIN|ACK"), ("server", "FIN|ACK"), ("client", "ACK")]
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
    got = shape(in_time_order(packets.events))
    assert got[:4] == [("client", "SYN"), ("server", "SYN|ACK"), ("client", "ACK"),
                       ("client", "PSH|ACK")]
    assert ("client", "FIN|ACK") in got and got[-1] == ("client", "ACK")
    check_arithmetic(in_time_order(packets.events))


# ---------------------------------------------------------------- against the wire
@contextlib.contextmanager
def server_watched_from_start(mode: str, trigger: str, sinks: list, **options: object
                              ) -> Iterator[Server]:
    """``running_server``, with the sinks there before it starts, so that the
    deriver sees the ``mode`` event (blocking modes leave Nagle on)."""
    if mode == "nonblocking":
        options.setdefault("sweep_pause", 0.001)
    probe = Probe("server")
    for sink in sinks:
        probe.add_sink(sink)
    config = ServerConfig(mode=mode, trigger=trigger, port=0, **options)  # type: ignore[arg-type]
    server = create_server(config, probe).start()
    try:
        yield server
    finally:
        server.stop()


def captured_and_derived(mode: str, trigger: str, loads: list[dict], path: str = "",
                         **options: object) -> tuple[dict[str, tuple[list, list]], MemorySink]:
    """One run, captured on lo and derived from the syscalls: per connection,
    (captured packets in wire order, derived packets in time order)."""
    derived, captured, server_sink = MemorySink(), MemorySink(), MemorySink()
    deriver = PacketDeriver(Probe("engine"))
    deriver.probe.add_sink(derived)
    client_probe = Probe("client")
    client_probe.add_sink(deriver)
    capture_probe = Probe("capture")
    capture_probe.add_sink(captured)
    deriver.start()
    try:
        with server_watched_from_start(mode, trigger, [deriver, server_sink], **options) as server:
            port = server.address[1]
            with LoopbackCapture(capture_probe, port):
                for load in loads:
                    result = run_load(LoadConfig(server.url + path, timeout=5, **load),
                                      client_probe)
                    assert result.failed == 0, result.summary()
                closes = sum(connections_of(load) for load in loads)
                assert server_sink.wait_for(
                    lambda evs: sum(e.kind == "close" for e in evs) >= closes, 5)
                time.sleep(0.1)  # the last ACKs reach the capture; delayed ones fire
    finally:
        deriver.stop()
    conns: dict[str, tuple[list, list]] = {}
    for e in captured.events:  # one capture thread: the order it read them is the wire's
        conns.setdefault(e.conn, ([], []))[0].append(e)
    for e in in_time_order(derived.events):
        conns.setdefault(e.conn, ([], []))[1].append(e)
    return conns, server_sink


def connections_of(load: dict) -> int:
    """How many connections a load opens: one per client, or per request when short."""
    per_client = 1 if load.get("keep_alive", True) else int(load.get("requests", 1))
    return int(load.get("clients", 1)) * per_client


def wire(packets: list[Event], port: int | None = None) -> list[tuple[str, str, int]]:
    """(sender, flags, length) of each segment."""
    out = []
    for p in packets:
        d = p.data
        sender = d.get("sender") or ("server" if d["sport"] == port else "client")
        out.append((sender, d["flags"], d["len"]))
    return out


def near_the_timer(packets: list[Event], port: int | None = None) -> bool:
    """Whether the kernel tossed a coin here, or could have: the answer to some
    data (or FIN) came 30 ms or more after it, with nothing from the first
    sender in between (an answer that had to wait for the timer, as behind
    Nagle, is no toss). Whether the delayed-ACK timer fired first (a pure ACK)
    or the answer carried the ACK, and whether the answer counts as ping-pong,
    was then decided by the kernel's clock, on jiffies, from the segment's
    arrival; the derived packets know the syscalls' times, which a loaded
    machine can stamp tens of ms after the kernel's moment. So the question is
    asked of the wire's times (``packets`` captured, with ``port``) and of the
    syscalls' (derived): a gap near or past the timer in either is a toss."""
    segs = [(w[0], w[1], w[2], p.t_ns) for w, p in zip(wire(packets, port), packets)]
    for i, (who, flags, n, t) in enumerate(segs):
        if not n and "FIN" not in flags:
            continue
        for who2, flags2, n2, t2 in segs[i + 1:]:
            if who2 == who:
                break
            if n2 or "FIN" in flags2:
                if t2 - t > DELAYED_ACK_NS - 10_000_000:
                    return True
                break
    return False


def retransmitted(captured: list[Event]) -> bool:
    """Whether the kernel sent some bytes (or a FIN) twice. Retransmissions are not
    derived: on lo they come from the tail-loss probe, which fires about 2 ms after
    two segments go unacknowledged because the receiving thread held its socket
    (a loaded machine); an idle one shows none."""
    sent_up_to: dict[int, int] = {}
    for p in captured:
        d = p.data
        end = (d["tcp_seq"] + d["len"] + ("FIN" in d["flags"])) % (1 << 32)
        if end == d["tcp_seq"] or "SYN" in d["flags"]:
            continue
        top = sent_up_to.get(d["sport"])
        if top is not None and ((end - top) % (1 << 32) >= 1 << 31 or end == top):
            return True
        sent_up_to[d["sport"]] = end
    return False


SHORT = {"keep_alive": False, "clients": 5, "requests": 1}
KEEP_ALIVE = {"keep_alive": True, "clients": 3, "requests": 3}
PIPELINED = {"keep_alive": True, "clients": 2, "requests": 4, "pipeline": 2}


@needs_capture
@pytest.mark.parametrize(("mode", "trigger"), ALL_MODES, ids=MODE_IDS)
def test_derived_segments_equal_the_captured_ones(mode: str, trigger: str) -> None:
    """Short (5) and keep-alive (3 x 3 requests) connections and pipelined ones
    (2 x 2 batches of 2), the default small file: per connection the derived
    (sender, flags, length) list is the captured one, segment for segment."""
    # A loaded machine (two busy loops on both cores) can excuse most of one run's
    # connections; then the run is made again, at most three times in all, until
    # half of one run's worth were compared. Every connection compared, in any
    # run, must be the wire's.
    compared, runs, differ, excused = 0, 0, [], []
    while runs < 3 and compared < (5 + 3 + 2) // 2:
        runs += 1
        conns, sink = captured_and_derived(mode, trigger, [SHORT, KEEP_ALIVE, PIPELINED])
        port = next(e.data["port"] for e in sink.of_kind("listen"))
        accepted = {e.conn for e in sink.of_kind("accept")}
        assert len(accepted) == 5 + 3 + 2 and set(conns) == accepted
        for conn, (captured, derived) in conns.items():
            assert captured and derived, conn
            assert all(p.data["origin"] == "derived" and not p.data.get("aggregate")
                       for p in derived)
            check_arithmetic(derived)
            same = wire(derived) == wire(captured, port)
            # The only tolerance: what the kernel decided by a clock the syscalls cannot
            # show (an answer 30 ms or more after its data, near or past the delayed-ACK
            # timer, on the wire or in the syscalls), or a retransmission. Both are
            # seen only on a loaded machine; a connection excused is not compared.
            if near_the_timer(captured, port) or near_the_timer(derived) or retransmitted(captured):
                excused.append((runs, conn, same))
                continue
            compared += 1
            if not same:
                differ.append((conn, wire(captured, port), wire(derived)))
    assert not differ, "\n".join(f"{c}\n  captured {cap}\n  derived  {der}"
                                  for c, cap, der in differ)
    assert compared >= (5 + 3 + 2) // 2, f"only {compared} compared in {runs} runs: {excused}"


SHORT_SHAPE = [("client", "SYN"), ("server", "SYN|ACK"), ("client", "ACK"),
               ("client", "PSH|ACK"), ("server", "ACK"), ("server", "PSH|ACK"), ("client", "ACK"),
               ("server", "FIN|ACK"), ("client", "FIN|ACK"), ("server", "ACK")]


def test_short_connections_are_ten_segments() -> None:
    """Unprivileged too: a short connection is the ten segments the wire had,
    the server's quick ACK of the request and the client's of the answer among them."""
    packets, sink = derive_run(keep_alive=False, clients=3)
    by_conn: dict[str, list[Event]] = {}
    for p in packets:
        by_conn.setdefault(p.conn, []).append(p)
    assert len(by_conn) == 3
    for conn, segs in by_conn.items():
        assert shape(segs) == SHORT_SHAPE, conn
        ack = segs[4]  # the server's ACK of the request, at the request's arrival
        assert ack.t_ns == segs[3].t_ns + 1 and ack.data["ack"] == 1 + segs[3].data["len"]
        assert segs[6].t_ns == segs[5].t_ns + 1
        check_arithmetic(segs)


# ---------------------------------------------------------------- large writes
def test_large_file_is_drawn_as_aggregates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 1 MiB download: the kernel cuts its 64 KiB writes into segments the
    syscalls do not tell (32,768, 47,616, 65,483 + 53 bytes... on lo), so each
    write is one aggregate event, never an invented 65,536-byte segment. As
    root, the wire of the same run agrees up to the first aggregate and in the
    bytes carried."""
    size = 1 << 20
    (tmp_path / "big.bin").write_bytes(os.urandom(size))
    if capture_ok:
        conns, sink = captured_and_derived("epoll", "level", [{"keep_alive": False}],
                                           path="big.bin", root=str(tmp_path))
        ((captured, derived),) = conns.values()
    else:
        packets, sink = derive_run(keep_alive=False, server={"root": str(tmp_path)},
                                   path="big.bin")
        captured, derived = [], packets
    check_arithmetic(derived)
    sent = sum(e.data["bytes"] for e in sink.of_kind("send"))
    body = [p for p in derived if p.data["sender"] == "server" and p.data["len"]]
    aggregates = [p for p in body if p.data.get("aggregate")]
    exact = [p for p in body if not p.data.get("aggregate")]
    assert sum(p.data["len"] for p in body) == sent >= size
    assert sum(p.data["len"] for p in aggregates) == size  # the body, write by write
    assert all(p.data["flags"] == "PSH|ACK" for p in aggregates)
    assert [p.data["len"] for p in exact] == [sent - size]  # the head: one segment
    assert all(p.data["len"] <= LOCAL_ONE_SEGMENT for p in exact)
    assert not [p for p in derived if p.data["len"] == 65536 and not p.data.get("aggregate")]
    assert any(p.data["sender"] == "client" and p.data.get("aggregate") for p in derived)
    assert shape(derived)[-3:] == [("server", "FIN|ACK"), ("client", "FIN|ACK"),
                                   ("server", "ACK")]
    if capture_ok:  # where this machine captures (CI, as root), the wire must agree
        assert captured
        port = next(e.data["port"] for e in sink.of_kind("listen"))
        on_wire = [p.data["len"] for p in captured if p.data["sport"] == port]
        assert sum(on_wire) == sent and 65536 not in on_wire
        first = next(i for i, p in enumerate(derived) if p.data.get("aggregate"))
        assert wire(derived[:first]) == wire(captured[:first], port)


# ---------------------------------------------------------------- by hand
CONN = "127.0.0.1:40000>127.0.0.1:8080"


class Script:
    """Feed a deriver hand-made events at given times (ms), no network, no clock."""

    def __init__(self, **options: object) -> None:
        self.sink = MemorySink()
        self.deriver = PacketDeriver(Probe("engine"), **options)  # type: ignore[arg-type]
        self.deriver.probe.add_sink(self.sink)
        self.seq = itertools.count(1)

    def __call__(self, ms: float, src: str, kind: str, conn: str | None = CONN,
                 **data: object) -> None:
        self.deriver(Event(next(self.seq), int(ms * 1_000_000), src, kind, conn, 5, 1, data))

    def exchange(self, ms: float, who: str, n: int) -> None:
        """``who`` sends n bytes; the other end reads them 0.1 ms later."""
        other = "server" if who == "client" else "client"
        self(ms, who, "send", bytes=n, wanted=n)
        self(ms + 0.1, other, "recv", bytes=n)

    def packets(self) -> list[Event]:
        return in_time_order(self.sink.events)

    def wire(self) -> list[tuple[str, str, int]]:
        return wire(self.packets())


def opened(script: Script) -> None:
    script(0, "client", "connect", peer="127.0.0.1:8080")
    script(0.05, "server", "accept", peer="127.0.0.1:40000")


HANDSHAKE = [("client", "SYN", 0), ("server", "SYN|ACK", 0), ("client", "ACK", 0)]


def test_a_slow_answer_gets_a_delayed_ack_and_ends_ping_pong() -> None:
    """In ping-pong mode the server's ACK waits for its answer; the answer takes
    60 ms, so the delayed-ACK timer sends a pure ACK at 40 ms, which also ends
    ping-pong: the next request is acknowledged at once again."""
    s = Script()
    opened(s)
    s.exchange(1, "client", 80)
    s.exchange(2, "server", 2000)  # answered within 40 ms: the server is in ping-pong
    s.exchange(3, "client", 80)  # so is the client
    s.exchange(63, "server", 2000)  # 60 ms later
    s.exchange(64, "client", 80)
    s.exchange(65, "server", 2000)
    s(66, "client", "close", reason="done")
    s(66.1, "server", "recv", bytes=0)
    s(66.2, "server", "close", reason="peer closed")
    assert s.wire() == HANDSHAKE + [
        ("client", "PSH|ACK", 80), ("server", "ACK", 0), ("server", "PSH|ACK", 2000),
        ("client", "ACK", 0), ("client", "PSH|ACK", 80),
        ("server", "ACK", 0), ("server", "PSH|ACK", 2000),  # the timer's ACK, then the answer
        ("client", "PSH|ACK", 80), ("server", "ACK", 0),  # quick again
        ("server", "PSH|ACK", 2000),
        ("client", "FIN|ACK", 0), ("server", "FIN|ACK", 0), ("client", "ACK", 0)]
    packets = s.packets()
    request, timer_ack = packets[7], packets[8]
    assert timer_ack.t_ns - request.t_ns == DELAYED_ACK_NS
    check_arithmetic(packets)


@pytest.mark.parametrize("mode", ["threaded", "epoll"])
def test_pipelined_answers_and_nagle(mode: str) -> None:
    """Two answers written back to back to a client in ping-pong mode. Without
    TCP_NODELAY (threaded mode) Nagle holds the second until the client's
    delayed ACK, 40 ms later; with it both go, and two full segments unacked
    are acknowledged at once."""
    s = Script()
    s(0, "server", "mode", conn=None, mode=mode, trigger="level")
    opened(s)
    s.exchange(1, "client", 93)
    s.exchange(2, "server", 2012)
    s.exchange(3, "client", 186)  # two requests in one write
    s(4, "server", "send", bytes=2012, wanted=2012)
    s(4.02, "server", "send", bytes=2012, wanted=2012)
    s(4.1, "client", "recv", bytes=2012)
    s(50, "client", "recv", bytes=2012)
    s(51, "client", "close", reason="done")
    start = HANDSHAKE + [("client", "PSH|ACK", 93), ("server", "ACK", 0),
                         ("server", "PSH|ACK", 2012), ("client", "ACK", 0),
                         ("client", "PSH|ACK", 186), ("server", "PSH|ACK", 2012)]
    if mode == "threaded":
        assert s.wire()[:-1] == start + [("client", "ACK", 0), ("server", "PSH|ACK", 2012),
                                         ("client", "ACK", 0)]
        released = s.packets()[-3]  # then the client ACK, then its FIN
        assert released.t_ns == 4 * 1_000_000 + DELAYED_ACK_NS + 1
    else:
        assert s.wire()[:-1] == start + [("server", "PSH|ACK", 2012), ("client", "ACK", 0)]
    assert s.wire()[-1] == ("client", "FIN|ACK", 0)
    check_arithmetic(s.packets())


def test_bytes_nagle_held_arriving_early_mean_the_ack_came_early() -> None:
    """The server's report of its first answer came late (its thread was
    preempted after the syscall), so our delayed-ACK clock started late; the
    client then reads the held answer before that clock fires. The ACK that
    let it go must have come first: drawn just before the read, not skipped."""
    s = Script()
    s(0, "server", "mode", conn=None, mode="threaded", trigger="level")
    opened(s)
    s.exchange(1, "client", 93)
    s.exchange(2, "server", 2012)
    s.exchange(3, "client", 186)
    s(5, "server", "send", bytes=2012, wanted=2012)  # sent at about 4, reported at 5
    s(5.02, "server", "send", bytes=2012, wanted=2012)  # held
    s(5.1, "client", "recv", bytes=2012)
    s(44.5, "client", "recv", bytes=2012)  # before 5 + 40 ms: the real timer ran from 4
    got = s.wire()
    assert got[-4:] == [("server", "PSH|ACK", 2012), ("client", "ACK", 0),
                        ("server", "PSH|ACK", 2012), ("client", "ACK", 0)]
    ack = s.packets()[-3]
    assert ack.t_ns == 44_500_000 - 4  # before the held bytes, dated before the read
    check_arithmetic(s.packets())


def test_a_read_ahead_of_the_writers_report_waits_for_it() -> None:
    """The client's one read of both answers is reported before the server's
    send events (emitted after each syscall returns): the segments are the
    server's two writes, dated just before the read, not one 4,024-byte segment."""
    s = Script()
    opened(s)
    s.exchange(1, "client", 186)
    s(2.0, "client", "recv", bytes=4024)
    s(2.05, "server", "send", bytes=2012, wanted=2012)
    s(2.06, "server", "send", bytes=2012, wanted=2012)
    data = [p for p in s.packets() if p.data["sender"] == "server" and p.data["len"]]
    assert [p.data["len"] for p in data] == [2012, 2012]
    assert [p.t_ns for p in data] == [2_000_000 - 2, 2_000_000 - 2]
    check_arithmetic(s.packets())


def test_a_write_without_a_send_event_falls_back_to_the_reads() -> None:
    """Bytes the server wrote without reporting them (its 408 on a timeout):
    once it moves on (closes), the client's read is all there is to go by."""
    s = Script()
    opened(s)
    s(1, "client", "recv", bytes=120)
    s(1.5, "server", "close", reason="header_timeout")
    got = s.wire()
    assert got[3:5] == [("server", "PSH|ACK", 120), ("client", "ACK", 0)]
    assert got[5] == ("server", "FIN|ACK", 0)
    check_arithmetic(s.packets())


def test_an_external_clients_bytes_come_from_the_reads() -> None:
    """A client whose syscalls we do not see: one segment per server read, and
    a read of more than one segment's worth is an aggregate."""
    s = Script()
    s(0, "server", "accept", peer="10.0.0.7:40000", conn="10.0.0.7:40000>10.0.0.2:8080")
    s(1, "server", "recv", bytes=300, conn="10.0.0.7:40000>10.0.0.2:8080")
    s(2, "server", "recv", bytes=5000, conn="10.0.0.7:40000>10.0.0.2:8080")
    client = [p for p in s.packets() if p.data["sender"] == "client" and p.data["len"]]
    assert [(p.data["len"], bool(p.data.get("aggregate"))) for p in client] == \
        [(300, False), (5000, True)]  # over 536 bytes, the MSS of an unknown path is unknown
    # What only a read reveals arrived before the read returned: in time order, each
    # segment (and the client's FIN) comes before the server's recv that reported it.
    s(3, "server", "recv", bytes=0, conn="10.0.0.7:40000>10.0.0.2:8080")
    fin = next(p for p in s.packets() if p.data["sender"] == "client" and "FIN" in p.data["flags"])
    assert [p.t_ns for p in client] == [1_000_000 - 2, 2_000_000 - 2]
    assert fin.t_ns == 3_000_000 - 2
