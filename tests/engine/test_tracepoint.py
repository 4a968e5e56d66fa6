"""The kernel's own TCP transitions, read from tracefs (engine/kernel/tracepoint.py).

Everything live here is real: a SockScope server, the built-in clients, the
kernel's tracepoints read from an instance of our own. That needs root and
tracefs: elsewhere those tests skip with the reason, except in CI (CI=true),
which runs as root, where not being able to trace fails. The ring-buffer page
parser is tested on pages built byte by byte and runs everywhere.
"""
from __future__ import annotations

import errno
import json
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import pytest

from engine.clients import LoadConfig, run_load
from engine.events import Event, MemorySink, Probe
from engine.kernel import tracepoint
from engine.kernel.tracepoint import (EventFormat, KernelTracer, PageLayout, PageParser,
                                      TracepointError)
from tests.conftest import running_server

IN_CI = os.environ.get("CI") == "true"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def require_tracing() -> None:
    ok, reason = KernelTracer.available()
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI runs as root and must be able to trace: {reason}")
    pytest.skip(reason)


def traced_load(host: str, **load: Any) -> tuple[list[Event], int, int, int]:
    """A real server, a tracer on its port, the built-in clients. Returns the
    events (server, client and kernel in one sink), the port, and the time span."""
    with running_server(host=host) as (server, sink):
        port = server.address[1]
        kernel, clients = Probe("kernel"), Probe("client")
        kernel.add_sink(sink)
        clients.add_sink(sink)
        url_host = f"[{host}]" if ":" in host else host
        t0 = time.monotonic_ns()
        with KernelTracer(kernel, port, host=host) as tracer:
            result = run_load(LoadConfig(url=f"http://{url_host}:{port}/", timeout=5, **load),
                              clients)
            # The last ACK of a close can follow the client's close event by microseconds.
            sink.wait_for(lambda evs: sum(1 for e in evs if e.kind == "state_check" and
                                          e.data["state"] in ("CLOSED", "TIME_WAIT"))
                          >= 2 * result.connections, timeout=2)
        t1 = time.monotonic_ns()
        stats = tracer.stop()
        assert result.failed == 0, result.summary()
        assert stats["bad_pages"] == 0 and stats["unattributed"] == 0, stats
        assert stats["missed_events"] == stats["overrun"] == stats["dropped_events"] == 0, stats
        assert stats["instance_removed"] and stats["thread_alive"] is False, stats
        return list(sink.events), port, t0, t1


def transitions(events: list[Event]) -> dict[tuple[str, str], list[Event]]:
    by: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for e in events:
        if e.kind == "state_check":
            by[(e.conn, e.data["side"])].append(e)
    return by


def path(evs: list[Event]) -> list[str]:
    return [f"{e.data['previous']}>{e.data['state']}" for e in evs]


# What Linux does on loopback (checked on 6.18). The server's half-open
# request socket is not reported: its first transition is LISTEN -> SYN_RECV,
# made by the handshake's last ACK. The end that closes first passes
# FIN_WAIT_2 (its FIN acknowledged, with or without the peer's FIN on the
# same segment) and becomes a time-wait socket, which the kernel reports as
# FIN_WAIT2 -> CLOSE; the other end passes CLOSE_WAIT and LAST_ACK.
OPEN_CLIENT = ["CLOSED>SYN_SENT", "SYN_SENT>ESTABLISHED"]
OPEN_SERVER = ["LISTEN>SYN_RECV", "SYN_RECV>ESTABLISHED"]
CLOSES_FIRST = ["ESTABLISHED>FIN_WAIT_1", "FIN_WAIT_1>FIN_WAIT_2", "FIN_WAIT_2>TIME_WAIT"]
CLOSES_SECOND = ["ESTABLISHED>CLOSE_WAIT", "CLOSE_WAIT>LAST_ACK", "LAST_ACK>CLOSED"]


def check_connections(events: list[Event], t0: int, t1: int, server_closes: bool
                      ) -> dict[tuple[str, str], list[Event]]:
    by = transitions(events)
    accepted = {e.conn for e in events if e.src == "server" and e.kind == "accept"}
    connected = {e.conn: e for e in events if e.src == "client" and e.kind == "connect"}
    assert accepted and set(connected) == accepted
    assert {conn for conn, _ in by} == accepted, "traced connections != accepted ones"
    for conn in accepted:
        client, server = by[(conn, "client")], by[(conn, "server")]
        expect_client = OPEN_CLIENT + (CLOSES_SECOND if server_closes else CLOSES_FIRST)
        expect_server = OPEN_SERVER + (CLOSES_FIRST if server_closes else CLOSES_SECOND)
        assert path(client) == expect_client, (conn, path(client))
        assert path(server) == expect_server, (conn, path(server))
        for side in (client, server):
            times = [e.t_ns for e in side]
            assert times == sorted(times), f"{conn}: traced times go backwards"
            assert t0 <= times[0] and times[-1] <= t1, f"{conn}: outside the run"
            assert all(e.src == "kernel" and e.fd == -1 and e.data["source"] == "traced"
                       for e in side)
        tw = (server if server_closes else client)[-1]
        assert tw.data["kernel"] == "TCP_CLOSE"
        # The client's SYN_SENT (reported before its port existed) is this connection's:
        # it comes before connect() returned and before the server's half of the handshake.
        syn_sent = client[0]
        assert syn_sent.t_ns < connected[conn].t_ns
        assert syn_sent.t_ns < client[1].t_ns < server[0].t_ns
        close_event = next(e for e in events if e.conn == conn and e.kind == "close"
                           and e.src == ("server" if server_closes else "client"))
        first_fin_wait = (server if server_closes else client)[2]
        assert close_event.t_ns < first_fin_wait.t_ns, "FIN_WAIT_1 comes with close()"
    return by


# ------------------------------------------------------------ live tracing
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_short_connections_show_every_transition(host: str) -> None:
    require_tracing()
    events, port, t0, t1 = traced_load(host, clients=2, requests=10, keep_alive=False)
    by = check_connections(events, t0, t1, server_closes=True)
    assert len(by) == 2 * 20
    if ":" in host:
        assert all(conn.startswith("[::1]:") and conn.endswith(f">[::1]:{port}")
                   for conn, _ in by)


def test_keep_alive_connections_show_every_transition() -> None:
    require_tracing()
    events, _, t0, t1 = traced_load("127.0.0.1", clients=3, requests=4, keep_alive=True)
    by = check_connections(events, t0, t1, server_closes=False)
    assert len(by) == 2 * 3
    for conn, _ in by:  # four requests on each, between ESTABLISHED and the close
        assert sum(1 for e in events if e.conn == conn and e.kind == "request") == 4


def test_a_closed_client_waiting_on_a_server_in_close_wait_is_in_fin_wait_2() -> None:
    """The server never closes: the client's closed socket, its FIN acknowledged, becomes
    a time-wait socket in its FIN_WAIT2 sub-state. The kernel reports FIN_WAIT2 -> CLOSE
    as it does for a real TIME_WAIT; the server's end still in CLOSE_WAIT says which."""
    require_tracing()
    with running_server(never_close=True) as (server, sink):
        port = server.address[1]
        kernel = Probe("kernel")
        kernel.add_sink(sink)
        with KernelTracer(kernel, port) as tracer:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                c.recv(65536)
            # The server's delayed ACK of the FIN (40 ms or more), then the time-wait socket.
            assert sink.wait_for(lambda evs: any(
                e.kind == "state_check" and e.data.get("kernel") == "TCP_CLOSE"
                for e in evs), timeout=3)
        tracer.stop()
        events = list(sink.events)
    by = transitions(events)
    (conn,) = {c for c, _ in by}
    assert path(by[(conn, "client")])[-3:] == ["ESTABLISHED>FIN_WAIT_1", "FIN_WAIT_1>FIN_WAIT_2",
                                              "FIN_WAIT_2>FIN_WAIT_2"]
    assert by[(conn, "client")][-1].data["kernel"] == "TCP_CLOSE"
    assert path(by[(conn, "server")])[-1] == "ESTABLISHED>CLOSE_WAIT"


def test_an_aborting_client_produces_resets() -> None:
    """SO_LINGER 0 then close(): the client's kernel sends RST, the server's receives it."""
    require_tracing()
    with running_server() as (server, sink):
        port = server.address[1]
        kernel, clients = Probe("kernel"), Probe("client")
        kernel.add_sink(sink)
        clients.add_sink(sink)
        with KernelTracer(kernel, port) as tracer:
            run_load(LoadConfig(url=f"http://127.0.0.1:{port}/", clients=1, requests=3,
                                behaviour="abort", timeout=5), clients)
            assert sink.wait_for(lambda evs: sum(1 for e in evs if e.kind == "reset"
                                                 and e.data["direction"] == "received") >= 3,
                                 timeout=2)
        stats = tracer.stop()
    events = list(sink.events)
    conns = {e.conn for e in events if e.src == "client" and e.kind == "connect"}
    assert len(conns) == 3 and stats["reset"] >= 6, stats
    for conn in conns:
        resets = [e for e in events if e.kind == "reset" and e.conn == conn]
        sent = [e for e in resets if e.data["direction"] == "sent" and e.data["side"] == "client"]
        got = [e for e in resets if e.data["direction"] == "received"
               and e.data["side"] == "server"]
        assert sent and got, [e.data for e in resets]
        # Linux 6.10+ says why: TCP_ABORT_ON_CLOSE when the answer had arrived unread,
        # else TCP_STATE (linger 0 on an established socket). Older kernels do not say.
        reasons = ("TCP_STATE", "TCP_ABORT_ON_CLOSE") if tracer._reasons else (None,)
        assert sent[0].data["reason"] in reasons, sent[0].data
        assert got[0].data["reason"] is None and got[0].data["source"] == "traced"
        # Both ends really closed, no time-wait: the reset ends the connection.
        states = transitions(events)
        assert path(states[(conn, "client")])[-1] == "ESTABLISHED>CLOSED"
        assert path(states[(conn, "server")])[-1].endswith(">CLOSED")
        assert got[0].data["state"] == path(states[(conn, "server")])[-1].split(">")[0]


def test_a_dropped_syn_is_retransmitted_and_traced() -> None:
    """A full accept queue drops a SYN; the client's kernel sends it again after 1 s.

    The retransmission names the socket's port: the client's SYN_SENT, waiting
    for it, is emitted then rather than at ESTABLISHED.
    """
    require_tracing()
    sink = MemorySink()
    probe = Probe("kernel")
    probe.add_sink(sink)
    listener = socket.socket()
    waiting = socket.socket()
    first = accepted = second = None
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # room for one connection waiting for accept()
        port = listener.getsockname()[1]
        with KernelTracer(probe, port) as tracer:
            first = socket.create_connection(("127.0.0.1", port), timeout=5)
            waiting.setblocking(False)
            assert waiting.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
            conn = f"127.0.0.1:{waiting.getsockname()[1]}>127.0.0.1:{port}"
            time.sleep(0.2)
            accepted, _ = listener.accept()  # room again for the retransmitted SYN
            assert sink.wait_for(lambda evs: any(e.kind == "retransmit" for e in evs),
                                 timeout=3), "no retransmission traced within 3 s"
            order = [(e.kind, e.data.get("state")) for e in sink.events if e.conn == conn]
            assert order[:2] == [("state_check", "SYN_SENT"), ("retransmit", "SYN_SENT")]
            listener.settimeout(3)
            second, _ = listener.accept()
            assert sink.wait_for(lambda evs: sum(1 for e in evs if e.conn == conn
                                                 and e.data.get("state") == "ESTABLISHED")
                                 == 2, timeout=2)
        stats = tracer.stop()
    finally:
        for s in (first, accepted, second, waiting, listener):
            if s is not None:
                s.close()
    retransmit = next(e for e in sink.events if e.kind == "retransmit")
    syn_sent = next(e for e in sink.events if e.conn == conn and e.data["state"] == "SYN_SENT")
    assert retransmit.conn == conn and retransmit.data == {
        "side": "client", "state": "SYN_SENT", "what": "segment", "source": "traced"}
    assert 0.9e9 < retransmit.t_ns - syn_sent.t_ns < 3e9  # the initial RTO: 1 s
    assert stats["retransmit"] == 1 and stats["unattributed"] == 0, stats


def read_at_the_stop(**options: Any) -> tuple[socket.socket, MemorySink, KernelTracer]:
    """A listener, and a tracer of its port that reads its ring only at its stop."""
    listener = socket.create_server(("127.0.0.1", 0))
    sink = MemorySink()
    probe = Probe("kernel")
    probe.add_sink(sink)
    tracer = KernelTracer(probe, listener.getsockname()[1], interval=30.0, **options).start()
    return listener, sink, tracer


def test_raw_pages_decode_as_the_kernel_prints_them() -> None:
    """Every transition equals the kernel's own text of the same instance (``trace``)."""
    require_tracing()
    listener, sink, tracer = read_at_the_stop()
    port = listener.getsockname()[1]
    time.sleep(0.1)  # its first read of the (empty) buffers is over: the next is at stop
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                accepted, _ = listener.accept()
                accepted.sendall(b"x")
                client.recv(1)
                accepted.close()
                client.recv(1)
        time.sleep(0.01)
        assert tracer.instance is not None
        with open(f"{tracer.instance}/trace", encoding="utf-8") as f:
            text = f.read()
    finally:
        stats = tracer.stop()
        listener.close()
    names = {"TCP_FIN_WAIT1": "FIN_WAIT_1", "TCP_FIN_WAIT2": "FIN_WAIT_2",
             "TCP_CLOSE": "CLOSED", "TCP_NEW_SYN_RECV": "SYN_RECV"}
    printed = []
    for m in re.finditer(r"\s(\d+)\.(\d{6}): inet_sock_set_state: .*? sport=(\d+) dport=(\d+) "
                         r".*oldstate=(\w+) newstate=(\w+)", text):
        old = names.get(m.group(5), m.group(5)[4:])
        new = names.get(m.group(6), m.group(6)[4:])
        if new == "CLOSED" and old in ("FIN_WAIT_2", "CLOSING"):
            new = "TIME_WAIT"
        printed.append((int(m.group(1)) * 1_000_000 + int(m.group(2)), old, new))
    # The text rounds to the nearest microsecond (ns2usecs adds 500 ns).
    decoded = [((e.t_ns + 500) // 1000, e.data["previous"], e.data["state"])
               for e in sink.events if e.kind == "state_check"]
    assert len(printed) == 3 * 10 and stats["state_check"] == 30, (text, stats)
    assert sorted(decoded) == sorted(printed)


# ------------------------------------------------------------ the instance
def test_what_the_kernels_ring_loses_is_said() -> None:
    """A ring of one page per CPU, read once at the stop: 200 short connections (about
    2,000 transitions) overflow it. The kernel counts what it overwrote; the tracer
    says it as a ``dropped`` event (sink ``tracepoint``), as every source says its
    losses, and what it could still read is whole."""
    require_tracing()
    listener, sink, tracer = read_at_the_stop(buffer_kb=4)
    port = listener.getsockname()[1]
    try:
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                accepted, _ = listener.accept()
                accepted.close()
                client.recv(1)
    finally:
        stats = tracer.stop()
        listener.close()
    lost = [e.data for e in sink.events if e.kind == "dropped"]
    want = max(stats["missed_events"], stats["overrun"] + stats["dropped_events"])
    assert want > 0, stats
    assert lost == [{"count": want, "sink": "tracepoint"}]
    assert stats["bad_pages"] == 0 and stats["state_check"] + want >= 200 * 9, stats


def instance_dir(name: str) -> str:
    ok, _ = KernelTracer.available()
    assert ok
    return f"{tracepoint._mounted_tracefs()}/instances/{name}"


def test_stop_removes_the_instance_and_a_new_tracer_starts_at_once() -> None:
    require_tracing()
    with running_server() as (server, _):
        port = server.address[1]
        first = KernelTracer(Probe("kernel"), port).start()
        time.sleep(0.05)  # the reader is waiting
        assert first.instance is not None and os.path.isdir(first.instance)
        started = time.monotonic()
        stats = first.stop()
        took = time.monotonic() - started
        assert took < 0.3, f"stop() took {took:.3f} s"
        assert not os.path.exists(first.instance) and stats["instance_removed"] is True
        assert first.stop() is stats  # idempotent
        sink = MemorySink()
        probe = Probe("kernel")
        probe.add_sink(sink)
        with KernelTracer(probe, port) as second:
            assert second.instance != first.instance
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                assert sink.wait_for(lambda evs: any(e.data.get("state") == "ESTABLISHED"
                                                     for e in evs), timeout=2)
        assert not os.path.exists(second.instance)  # type: ignore[arg-type]


def test_stale_instances_do_not_stop_a_new_tracer() -> None:
    """A killed process leaves its instance behind; ours may even have its name."""
    require_tracing()
    with running_server() as (server, _):
        port = server.address[1]
        # A process tracing the same port, killed (SIGKILL: no clean-up at all).
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time\n"
             "from engine.events import Probe\n"
             "from engine.kernel.tracepoint import KernelTracer\n"
             f"t = KernelTracer(Probe('kernel'), {port}).start()\n"
             "print(t.instance, flush=True)\n"
             "time.sleep(30)\n"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 20)
            assert ready, "the child tracer did not start within 20 s"
            stale = child.stdout.readline().strip()
            assert os.path.isdir(stale), stale
        finally:
            child.kill()
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()
        assert os.path.isdir(stale), "nobody removed the killed process's instance"
        # The name our next tracer would take: a process with our pid, killed, left it.
        taken = instance_dir(f"sockscope-{os.getpid()}-{next(tracepoint._INSTANCES) + 1}")
        os.makedirs(taken, exist_ok=True)
        try:
            sink = MemorySink()
            probe = Probe("kernel")
            probe.add_sink(sink)
            with KernelTracer(probe, port) as tracer:
                assert not os.path.exists(stale), "the dead process's instance is reaped"
                assert not os.path.exists(taken)
                assert tracer.instance not in (stale, taken)
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    assert sink.wait_for(lambda evs: any(e.data.get("state") == "ESTABLISHED"
                                                         for e in evs), timeout=2)
        finally:
            for leftover in (stale, taken):
                if os.path.isdir(leftover):
                    os.rmdir(leftover)


def test_start_failure_leaves_no_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    require_tracing()
    tracer = KernelTracer(Probe("kernel"), 9)

    def broken(*_: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(tracer, "_configure", broken)
    with pytest.raises(TracepointError, match="cannot set up kernel tracing"):
        tracer.start()
    assert tracer.instance is not None and not os.path.exists(tracer.instance)


def test_available_says_why_not_without_root() -> None:
    if os.geteuid() != 0:
        ok, reason = KernelTracer.available()
        assert not ok and "root" in reason
        return
    run = subprocess.run(
        [sys.executable, "-c",
         "import json, os\n"
         "from engine.kernel.tracepoint import KernelTracer\n"
         "os.setgroups([]); os.setresgid(65534, 65534, 65534); "
         "os.setresuid(65534, 65534, 65534)\n"
         "print(json.dumps(KernelTracer.available()))"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT})
    assert run.returncode == 0, run.stderr
    ok, reason = json.loads(run.stdout)
    assert ok is False and reason.startswith("tracing the kernel's TCP transitions needs root")
    assert "euid 65534" in reason


# ------------------------------------------------------------ the page parser
def header(type_len: int, delta: int) -> bytes:
    return struct.pack("<I", type_len | (delta << 5))


def record(event_id: int, payload: bytes) -> bytes:
    """A data event: type_len = length in 4-byte words (payload padded)."""
    body = struct.pack("<H", event_id) + payload
    body += b"\0" * (-len(body) % 4)
    return body


def page(ts: int, events: bytes, size: int = 4096, commit_flags: int = 0,
         missed: int | None = None) -> bytes:
    tail = struct.pack("<Q", missed) if missed is not None else b""
    raw = struct.pack("<QQ", ts, len(events) | commit_flags) + events + tail
    return raw + b"\0" * (size - len(raw))


def small(delta: int, event_id: int, payload: bytes) -> bytes:
    body = record(event_id, payload)
    return header(len(body) // 4, delta) + body


LAYOUT = PageLayout(byteorder="little")


def test_parser_reads_deltas_extends_absolute_stamps_padding_and_long_events() -> None:
    parser = PageParser(LAYOUT)
    long_body = record(7, b"L" * 200)  # 202 bytes + pad: still fits type_len, force type 0
    events = (small(5, 1, b"abcdef")  # t = 1000 + 5
              + header(30, 3) + struct.pack("<I", 2)  # extend: + (2 << 27) + 3
              + small(10, 2, b"xy")
              + header(29, 1) + struct.pack("<I", 12) + b"\0" * 8  # a discarded event
              + header(0, 7) + struct.pack("<I", len(long_body) + 4) + long_body
              + header(31, 123) + struct.pack("<I", 1)  # absolute: (1 << 27) + 123
              + small(0, 3, b"z"))
    out = parser.parse(page(1000, events))
    assert parser.bad_pages == 0, parser.last_error
    stamps = [(t, i) for t, i, _, _ in out]
    t1 = 1005
    t2 = t1 + (2 << 27) + 3 + 10
    t3 = t2 + 7
    assert stamps == [(t1, 1), (t2, 2), (t3, 7), ((1 << 27) + 123, 3)]
    data = page(1000, events)
    _, _, off, size = out[2]
    assert data[off:off + size][:2] == b"\x07\x00" and data[off + 2:off + 202] == b"L" * 200


def test_parser_stops_at_the_empty_rest_of_a_page_and_counts_missed_events() -> None:
    parser = PageParser(LAYOUT)
    events = small(1, 4, b"ab") + header(29, 0) + b"\0" * 4
    out = parser.parse(page(50, events, commit_flags=(1 << 31) | (1 << 30), missed=17))
    assert [(t, i) for t, i, _, _ in out] == [(51, 4)]
    assert parser.missed_events == 17 and parser.bad_pages == 0
    parser.parse(page(50, small(1, 4, b"ab"), commit_flags=1 << 31))
    assert parser.missed_unknown == 1


def test_corrupt_or_short_pages_are_counted_never_raised() -> None:
    parser = PageParser(LAYOUT)
    good = small(1, 4, b"ab")
    assert parser.parse(b"\x01\x02") == []  # shorter than the page header
    assert parser.parse(page(0, good)[:20]) == []  # commit says more than there is
    # An event claiming more bytes than the page holds: the one before it is kept.
    bad = good + header(28, 1) + b"\0" * 8
    out = parser.parse(page(0, bad))
    assert [i for _, i, _, _ in out] == [4]
    assert parser.parse(page(0, good, size=16 + len(good))) != []  # exactly full: fine
    assert parser.bad_pages == 3 and parser.pages == 4
    # (the last bad page was the event running past the page; the full page after it is good)
    assert re.fullmatch(r"event of \d+ bytes at \d+ runs past the page",
                        parser.last_error or ""), parser.last_error
    rng = random.Random(7)
    for _ in range(300):  # garbage of every kind: counted, never raised
        junk = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 7, 16, 64, 4096))))
        parser.parse(junk)
        cut = page(rng.getrandbits(40), good * rng.randint(1, 50))[:rng.randint(0, 4096)]
        parser.parse(cut)
    assert parser.pages == 604


def test_tracer_thread_survives_bad_pages() -> None:
    """A page the parser cannot read is counted by the tracer and reading goes on."""
    tracer = KernelTracer(Probe("kernel"), 8080)
    tracer._parser = PageParser(LAYOUT)
    pages = [b"junk", page(0, header(28, 1))]
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        for p in pages:
            os.write(w, p)
        tracer._fds = [r]
        tracer._page_size = 4096
        assert tracer._drain() == 0
        assert tracer.stats["bad_pages"] >= 1 and tracer.crashed is None
    finally:
        os.close(r)
        os.close(w)


STATE_FORMAT = """name: inet_sock_set_state
ID: 2287
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;

print fmt: "family=%s", __print_symbolic(REC->family, { 2, "AF_INET" }, { 10, "AF_INET6" })
"""


def test_format_files_give_offsets_and_symbol_tables() -> None:
    fmt = EventFormat("sock", "inet_sock_set_state", STATE_FORMAT)
    assert fmt.id == 2287 and fmt.fields["sport"].offset == 24
    assert fmt.fields["saddr_v6"].is_array and fmt.fields["saddr_v6"].size == 16
    assert fmt.symbols("family") == {2: "AF_INET", 10: "AF_INET6"}
    reader, names = fmt.reader(("skaddr", "sport", "dport", "oldstate", "newstate", "saddr",
                                "nope"))
    assert names == ("skaddr", "oldstate", "newstate", "sport", "dport", "saddr")
    raw = (struct.pack("=HBBi", 2287, 0, 0, 1) + struct.pack("=Qii", 0xFFFF8880DEAD0000, 7, 2)
           + struct.pack("=HHHH", 0, 8080, 2, 6) + socket.inet_aton("127.0.0.1") * 2
           + b"\0" * 32)
    assert reader.unpack(raw[:reader.size]) == (0xFFFF8880DEAD0000, 7, 2, 0, 8080,
                                                socket.inet_aton("127.0.0.1"))


def test_the_client_syn_sent_without_a_port_waits_for_its_socket() -> None:
    """CLOSE -> SYN_SENT comes with sport 0; the socket's next transition names it."""
    sink = MemorySink()
    probe = Probe("kernel")
    probe.add_sink(sink)
    tracer = KernelTracer(probe, 8080)
    lo = socket.inet_aton("127.0.0.1")
    v6 = b"\0" * 16

    def rec(skaddr: int, sport: int, dport: int, old: int, new: int) -> dict[str, Any]:
        return {"skaddr": skaddr, "family": 2, "sport": sport, "dport": dport, "saddr": lo,
                "daddr": lo, "saddr_v6": v6, "daddr_v6": v6, "oldstate": old, "newstate": new,
                "protocol": 6}

    tracer._on_state_record(100, rec(0xA, 0, 8080, 7, 2))  # no port yet
    tracer._on_state_record(101, rec(0xB, 0, 8080, 7, 2))  # another client, same moment
    assert not sink.events
    tracer._on_state_record(150, rec(0xB, 40002, 8080, 2, 1))
    tracer._on_state_record(160, rec(0xA, 40001, 8080, 2, 1))
    tracer._on_state_record(170, rec(0xC, 8080, 0, 7, 10))  # the listener itself
    tracer._on_state_record(180, rec(0xD, 0, 8080, 7, 2))  # gone before it had a port
    tracer._on_state_record(190, rec(0xD, 0, 8080, 2, 7))
    got = [(e.t_ns, e.conn, e.data["previous"], e.data["state"]) for e in sink.events]
    a, b = "127.0.0.1:40001>127.0.0.1:8080", "127.0.0.1:40002>127.0.0.1:8080"
    assert got == [(101, b, "CLOSED", "SYN_SENT"), (150, b, "SYN_SENT", "ESTABLISHED"),
                   (100, a, "CLOSED", "SYN_SENT"), (160, a, "SYN_SENT", "ESTABLISHED")]
    assert tracer.stats["listen_transitions"] == 1 and tracer.stats["unattributed"] == 2
