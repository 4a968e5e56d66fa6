"""Kernel TCP states: sock_diag, /proc, TCP_INFO, the observer and the inference.

Real sockets on 127.0.0.1, the real kernel, no mocks. Every wait is a bounded
loop (5 s at most). Connections are driven by hand with plain sockets where the
test must hold a state (a server end kept in CLOSE_WAIT for 200 ms), and by
the engine and its built-in clients where the test is about their events.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine.clients import LoadConfig, run_load
from engine.events import Event, MemorySink, Probe
from engine.kernel.inferred import TRANSITIONS, StateInference, diagram_edges
from engine.kernel.observer import KernelObserver
from engine.kernel.sockdiag import (ALL_STATES, SockDiag, SockDiagError, build_request, dump_tcp,
                                    TcpSocket, proc_net_tcp, sockdiag_available)
from engine.kernel.tcpinfo import tcp_info
from engine.server import connection_id
from tests.conftest import Oversleep, running_server

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
NOBODY = 65534

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="sock_diag, /proc/net/tcp and TCP_INFO are Linux interfaces")


# ----------------------------------------------------------------- helpers
@contextlib.contextmanager
def listening(backlog: int = 16, host: str = LOOPBACK) -> Iterator[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(backlog)
        yield sock
    finally:
        sock.close()


def connected_pair(listener: socket.socket) -> tuple[socket.socket, socket.socket, str]:
    """(client, server end, connection id) of a fresh loopback connection."""
    client = socket.create_connection(listener.getsockname()[:2], timeout=5)
    server_end, _ = listener.accept()
    return client, server_end, connection_id(client.getsockname(), client.getpeername())


def probe_with_sink(src: str) -> tuple[Probe, MemorySink]:
    probe, sink = Probe(src), MemorySink()
    probe.add_sink(sink)
    return probe, sink


def states(events: list[Event], conn: str, side: str) -> list[str]:
    return [e.data["state"] for e in events
            if e.kind == "tcp_state" and e.conn == conn and e.data["side"] == side]


def seen(conn: str, side: str, *wanted: str) -> Callable[[list[Event]], bool]:
    """A ``MemorySink.wait_for`` predicate: every ``(side, state)`` in ``wanted`` was emitted.

    ``wanted`` alternates side and state: ``seen(conn, "client", "TIME_WAIT",
    "server", "CLOSED")``; with one state, ``side`` applies to it.
    """
    pairs = [(side, wanted[0])] + list(zip(wanted[1::2], wanted[2::2]))
    return lambda events: all(state in states(events, conn, s) for s, state in pairs)


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(0.005)


def socket_of(port: int, local: tuple, remote: tuple, backend: str = "sockdiag",
              family: int = socket.AF_INET) -> TcpSocket | None:
    """The kernel's record of the socket (local, remote), or None if it has none."""
    records = dump_tcp(port, (family,)) if backend == "sockdiag" else proc_net_tcp(port, (family,))
    return next((s for s in records if s.local == local and s.remote == remote), None)


def assert_chained(events: list[Event], conn: str, side: str) -> None:
    """Each event's ``previous`` is the state the one before it reported."""
    chain = [e for e in events if e.kind == "tcp_state" and e.conn == conn and e.data["side"] == side]
    for before, after in zip(chain, chain[1:]):
        assert after.data["previous"] == before.data["state"], (before.data, after.data)


# ----------------------------------------------------------------- sock_diag
def test_dump_sees_an_established_pair_and_the_listener_with_its_backlog() -> None:
    with listening(backlog=16) as listener:
        port = listener.getsockname()[1]
        client, server_end, _ = connected_pair(listener)
        with client, server_end:
            with SockDiag() as diag:
                found = {(s.local, s.remote): s for s in diag.dump(port, (socket.AF_INET,))}
                # The bytecode filter works on this kernel and returns exactly the
                # port's sockets: the same set as an unfiltered dump filtered here.
                assert diag.kernel_filter is True
                everything = diag.dump(None, (socket.AF_INET,))
            by_hand = {(s.local, s.remote) for s in everything if port in (s.local[1], s.remote[1])}
            assert set(found) == by_hand

            lsock = found[((LOOPBACK, port), ("0.0.0.0", 0))]
            assert (lsock.state, lsock.rqueue, lsock.wqueue) == ("LISTEN", 0, 16)
            assert lsock.inode == os.fstat(listener.fileno()).st_ino

            mine = found[(client.getsockname(), (LOOPBACK, port))]
            theirs = found[((LOOPBACK, port), client.getsockname())]
            assert mine.state == theirs.state == "ESTABLISHED"
            assert mine.inode == os.fstat(client.fileno()).st_ino
            assert theirs.inode == os.fstat(server_end.fileno()).st_ino
            assert mine.uid == theirs.uid == os.getuid()
            assert mine.timer == "off" and mine.family == socket.AF_INET
            assert len({lsock.cookie, mine.cookie, theirs.cookie}) == 3 and mine.cookie


def test_a_refused_request_raises_a_clear_error() -> None:
    with SockDiag() as diag:
        bogus_bytecode = bytes([0xFF, 4, 8, 0])  # an operation code the kernel does not know
        diag.sock.send(build_request(socket.AF_INET, ALL_STATES, 7, bogus_bytecode))
        with pytest.raises(SockDiagError) as caught:
            diag._receive(7)
    assert caught.value.errno == errno.EINVAL
    assert "refused" in str(caught.value)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe_sock:
            probe_sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_sockets_carry_the_engines_connection_ids() -> None:
    probe, sink = probe_with_sink("kernel")
    with listening(host="::1") as listener:
        port = listener.getsockname()[1]
        client, server_end, conn = connected_pair(listener)
        client_port = client.getsockname()[1]
        with client, server_end, KernelObserver(probe, port, host="::1") as observer:
            assert observer.families == (socket.AF_INET6,)
            assert sink.wait_for(seen(conn, "server", "ESTABLISHED", "client", "ESTABLISHED"))
            mine = socket_of(port, client.getsockname()[:2], ("::1", port), family=socket.AF_INET6)
            assert mine is not None and mine.family == socket.AF_INET6
    assert conn == f"[::1]:{client_port}>[::1]:{port}"


# ----------------------------------------------------------------- the observer
@pytest.mark.parametrize("backend", ["sockdiag", "proc"])
def test_client_closes_first_and_the_observer_follows_both_ends(backend: str) -> None:
    probe, sink = probe_with_sink("kernel")
    with listening() as listener:
        port = listener.getsockname()[1]
        with KernelObserver(probe, port, host=LOOPBACK, backend=backend) as observer:
            assert observer.backend == backend
            client, server_end, conn = connected_pair(listener)
            client_addr = client.getsockname()
            server_addr = (LOOPBACK, port)
            with server_end:
                assert sink.wait_for(seen(conn, "client", "ESTABLISHED", "server", "ESTABLISHED"))
                client.close()
                assert sink.wait_for(seen(conn, "server", "CLOSE_WAIT", "client", "FIN_WAIT_2"))
                # The client's socket is orphaned: the kernel keeps its end as a
                # timewait socket in the FIN_WAIT_2 substate, with the 60 s timer.
                fin_wait_2 = socket_of(port, client_addr, server_addr, backend)
                assert fin_wait_2 is not None and fin_wait_2.state == "FIN_WAIT_2"
                assert fin_wait_2.timer == "time_wait"
                time.sleep(0.2)  # the server holds its end before closing it
                held = socket_of(port, server_addr, client_addr, backend)
                assert held is not None and held.state == "CLOSE_WAIT"
            # server_end is closed here: its FIN completes the teardown
            assert sink.wait_for(seen(conn, "client", "TIME_WAIT", "server", "CLOSED"))
            time_wait = socket_of(port, client_addr, server_addr, backend)
            assert time_wait is not None and time_wait.state == "TIME_WAIT"
            assert time_wait.timer == "time_wait" and 0 < time_wait.expires_ms <= 60_000
            assert socket_of(port, server_addr, client_addr, backend) is None

    events = list(sink.events)
    # FIN_WAIT_1 lasts until the server's (possibly delayed) ACK: seen or not.
    assert states(events, conn, "client") in (
        ["ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"],
        ["ESTABLISHED", "FIN_WAIT_2", "TIME_WAIT"])
    # LAST_ACK lasts one loopback round trip: rarely seen.
    assert states(events, conn, "server") in (
        ["ESTABLISHED", "CLOSE_WAIT", "CLOSED"],
        ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"])
    for side in ("client", "server"):
        assert_chained(events, conn, side)
    ours = [e for e in events if e.kind == "tcp_state" and e.conn == conn]
    assert all(e.src == "kernel" and e.fd == -1 and e.data["source"] == "observed" for e in ours)
    assert ours[0].data["previous"] == "CLOSED"  # it appeared while we watched
    tw_event = next(e for e in ours if e.data["state"] == "TIME_WAIT")
    assert tw_event.data["timer"] == "time_wait" and 0 < tw_event.data["expires_ms"] <= 60_000


def test_a_time_wait_sock_with_a_new_cookie_is_the_same_end_not_a_reused_pair() -> None:
    """The kernel makes a socket's cookie lazily, when a dump first asks; the time-wait
    sock that replaces a closing socket copies it. A dump racing that copy reports the
    same end with another cookie. That is one end going on, never CLOSED and back; a
    new socket on the same port pair (the reuse the cookie is there to tell) still is.

    The records are the kernel's, from real sockets; only the cookie is changed, as the
    race would (it cannot be forced)."""
    probe, sink = probe_with_sink("kernel")
    with listening() as listener:
        port = listener.getsockname()[1]
        observer = KernelObserver(probe, port, host=LOOPBACK)
        client, server_end, conn = connected_pair(listener)
        with client:
            client_addr, server_addr = client.getsockname(), (LOOPBACK, port)
            server_end.close()  # the server closes first: its end goes FIN_WAIT_2
            fin_wait_2 = wait_until(lambda: (s := socket_of(port, server_addr, client_addr))
                                    and s.state == "FIN_WAIT_2" and s)
            assert fin_wait_2, "the server's end never showed FIN_WAIT_2"
            client.close()
            time_wait = wait_until(lambda: (s := socket_of(port, server_addr, client_addr))
                                   and s.state == "TIME_WAIT" and s)
            assert time_wait, "the server's end never showed TIME_WAIT"
        raw = {"FIN_WAIT_2": 5, "TIME_WAIT": 6, "ESTABLISHED": 1}
        entry = observer._changed(None, raw["FIN_WAIT_2"], b"cookie-1", fin_wait_2, 0, False)
        entry = observer._changed(entry, raw["TIME_WAIT"], b"cookie-2", time_wait, 0, False)
        assert states(sink.events, conn, "server") == ["FIN_WAIT_2", "TIME_WAIT"]
        assert_chained(list(sink.events), conn, "server")
        # The same port pair, a new socket (established): the old end did end.
        reused = time_wait._replace(state="ESTABLISHED", timer="off", expires_ms=0)
        observer._changed(entry, raw["ESTABLISHED"], b"cookie-3", reused, 0, False)
        assert states(sink.events, conn, "server") == ["FIN_WAIT_2", "TIME_WAIT", "CLOSED",
                                                       "ESTABLISHED"]
        if observer._diag is not None:  # never started: only its netlink socket is open
            observer._diag.close()


@pytest.mark.parametrize("gil_held", [False, True], ids=["alone", "beside-a-busy-thread"])
def test_short_states_are_caught_by_the_counter_trigger_alone(gil_held: bool) -> None:
    """With the periodic resync off, only the TCP-counter trigger can start a
    dump: a CLOSE_WAIT held for 40 ms must still be seen, every time. Also
    beside a thread that wants the GIL all the time (as a server's loop under
    load does): each dump then waits milliseconds to get the GIL back after its
    netlink reads, and dumps spaced by that wall time, not by their CPU time,
    missed whole connections."""
    probe, sink = probe_with_sink("kernel")
    hold = 0.04
    stop_busy = threading.Event()

    def busy() -> None:
        n = 0
        while not stop_busy.is_set():
            n += 1

    spinner = threading.Thread(target=busy, daemon=True)
    if gil_held:
        spinner.start()
    with contextlib.ExitStack() as stack:
        stack.callback(stop_busy.set)
        listener = stack.enter_context(listening())
        port = listener.getsockname()[1]
        machine = stack.enter_context(Oversleep())
        with KernelObserver(probe, port, host=LOOPBACK, resync=3600) as observer:
            conns, held = [], {}
            for _ in range(5):
                client, server_end, conn = connected_pair(listener)
                conns.append(conn)
                client.close()
                since = time.monotonic_ns()
                time.sleep(hold)
                server_end.close()
                held[conn] = (since, time.monotonic_ns())
            # (a deadline, not a delay: a loaded machine may take longer to report; a
            # server end never seen at all has no CLOSED to wait for: judged below)
            sink.wait_for(lambda ev: all("CLOSED" in states(ev, c, "server") for c in conns),
                          20.0)
    if gil_held:
        spinner.join(5)
    for conn in conns:
        seen = states(list(sink.events), conn, "server")
        assert not seen or seen[-1] == "CLOSED", (conn, seen)  # an end seen is seen ending
        if "CLOSE_WAIT" in seen:
            continue
        # Missed (or the whole connection missed): excused only if the machine itself
        # left this process's threads unscheduled for most of that CLOSE_WAIT (an
        # overloaded machine, not the observer's pacing: a sleeping thread woke that
        # late meanwhile).
        late = machine.worst(*held[conn])
        assert late > hold / 2, (conn, late, seen, observer.scans, observer.throttled)
    assert observer.scans["resync"] == 0 and observer.scans["counters"] > 0


def test_the_switch_interval_is_short_while_an_observer_runs() -> None:
    """Beside a thread that holds the GIL, each of a poll's syscalls waits the switch
    interval to get it back: 5 ms by default made a poll take 27 ms and missed 40 ms
    states. While any observer runs the interval is 1 ms; after the last one, as before."""
    import sys
    from engine.kernel.observer import SWITCH_INTERVAL
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL == 0.001
    probe, _ = probe_with_sink("kernel")
    with listening() as listener:
        port = listener.getsockname()[1]
        with KernelObserver(probe, port, host=LOOPBACK):
            assert sys.getswitchinterval() == SWITCH_INTERVAL
            with KernelObserver(probe, port, host=LOOPBACK):
                assert sys.getswitchinterval() == SWITCH_INTERVAL
            assert sys.getswitchinterval() == SWITCH_INTERVAL  # the first one still runs
    assert sys.getswitchinterval() == before


def test_the_accept_queue_fills_when_nobody_accepts() -> None:
    probe, sink = probe_with_sink("kernel")
    clients: list[socket.socket] = []
    with listening(backlog=4) as listener, KernelObserver(probe, listener.getsockname()[1]):
        port = listener.getsockname()[1]
        try:
            for waiting in (1, 2, 3):
                clients.append(socket.create_connection(listener.getsockname(), timeout=5))
                assert sink.wait_for(lambda ev, n=waiting: any(
                    e.kind == "accept_queue" and e.data["length"] == n for e in ev))
        finally:
            for c in clients:
                c.close()
    queue = sink.of_kind("accept_queue")
    assert [e.data["length"] for e in queue][:4] == [0, 1, 2, 3]
    assert all(e.data["backlog"] == 4 and e.data["source"] == "observed" for e in queue)
    assert queue[0].data["listener"] == f"{LOOPBACK}:{port}"


def test_proc_fallback_reports_the_same_states_as_sock_diag() -> None:
    with listening(backlog=8) as listener:
        port = listener.getsockname()[1]
        open_client, open_server, _ = connected_pair(listener)        # ESTABLISHED both
        half_client, half_server, _ = connected_pair(listener)        # FIN_WAIT_2 / CLOSE_WAIT
        done_client, done_server, _ = connected_pair(listener)        # TIME_WAIT / gone
        queued = socket.create_connection(listener.getsockname())     # never accepted
        ports = {s.getsockname()[1] for s in (open_client, half_client, done_client, queued)}
        with open_client, open_server, half_server, queued:
            half_addr, done_addr = half_client.getsockname(), done_client.getsockname()
            half_client.close()
            done_client.close()
            done_server.close()
            server_addr = (LOOPBACK, port)
            assert wait_until(lambda: getattr(socket_of(port, half_addr, server_addr), "state", "")
                              == "FIN_WAIT_2"), "the client end never left FIN_WAIT_1"
            assert wait_until(lambda: getattr(socket_of(port, done_addr, server_addr), "state", "")
                              == "TIME_WAIT")

            def facts(records: list) -> dict:
                return {(s.local, s.remote): (s.state, s.timer, s.rqueue if s.state == "LISTEN" else 0,
                                              s.inode, s.uid)
                        for s in records
                        if s.state == "LISTEN" or ports & {s.local[1], s.remote[1]}}
            from_diag = facts(dump_tcp(port, (socket.AF_INET,)))
            from_proc = facts(proc_net_tcp(port, (socket.AF_INET,)))
    assert from_proc == from_diag
    assert sorted(v[0] for v in from_diag.values()) == sorted(
        ["LISTEN", "ESTABLISHED", "ESTABLISHED", "ESTABLISHED", "ESTABLISHED",
         "FIN_WAIT_2", "CLOSE_WAIT", "TIME_WAIT"])
    assert from_diag[((LOOPBACK, port), ("0.0.0.0", 0))][2] == 1  # the queued connection


def test_the_observer_works_without_privileges() -> None:
    """sock_diag needs no privileges: run the observer as ``nobody``, no capabilities.

    The interpreter lives under /root (mode 700) on this machine, so ``nobody``
    cannot exec it through setpriv; the script imports as the current user and
    drops to nobody (setgroups, setgid, setuid: all capabilities go) before it
    opens a single socket. Run as a normal user, it is unprivileged already.
    """
    script = r"""
import encodings.idna, json, os, socket, time  # idna: getaddrinfo imports it lazily
from engine.events import MemorySink, Probe
from engine.kernel.observer import KernelObserver
from engine.server import connection_id
if os.geteuid() == 0:
    os.setgroups([]); os.setgid(%(uid)d); os.setuid(%(uid)d)
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
probe, sink = Probe("kernel"), MemorySink()
probe.add_sink(sink)
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
port = listener.getsockname()[1]
with KernelObserver(probe, port, host="127.0.0.1") as observer:
    client = socket.create_connection(("127.0.0.1", port)); server_end, _ = listener.accept()
    conn = connection_id(client.getsockname(), client.getpeername())
    time.sleep(0.05)
    client.close()
    def got(events):
        s = {(e.data["side"], e.data["state"]) for e in events if e.conn == conn}
        return ("client", "FIN_WAIT_2") in s and ("server", "CLOSE_WAIT") in s
    sink.wait_for(got, 5)
    server_end.close()
print(json.dumps({"uid": os.geteuid(), "caps": caps, "backend": observer.backend,
                  "states": sorted({(e.data["side"], e.data["state"]) for e in sink.events
                                    if e.kind == "tcp_state" and e.conn == conn})}))
""" % {"uid": NOBODY}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["uid"] != 0 and int(report["caps"], 16) == 0
    if os.geteuid() == 0:
        assert report["uid"] == NOBODY
    assert report["backend"] == "sockdiag"
    assert ["client", "FIN_WAIT_2"] in report["states"]
    assert ["server", "CLOSE_WAIT"] in report["states"]


def test_the_observer_stops_within_half_a_second() -> None:
    probe, _ = probe_with_sink("kernel")
    with listening() as listener:
        for interval in (0.005, 30.0):  # a long interval must not delay stop()
            observer = KernelObserver(probe, listener.getsockname()[1], interval=interval).start()
            assert observer._thread is not None and observer._thread.name == "sockscope-kernel"
            time.sleep(0.05)
            started = time.monotonic()
            observer.stop()
            # Within the stop's 2 s join (a stop waiting out the 30 s interval would end it
            # with the thread alive), with room for a loaded machine.
            assert time.monotonic() - started < 1.5
            assert not observer._thread.is_alive()


def test_available_says_yes_here() -> None:
    ok, reason = KernelObserver.available()
    assert ok, reason
    assert sockdiag_available()[0]


# ----------------------------------------------------------------- TCP_INFO
def test_tcp_info_on_an_owned_connection() -> None:
    with listening() as listener:
        client, server_end, _ = connected_pair(listener)
        with client, server_end:
            client.sendall(b"x" * 1000)
            assert len(server_end.recv(4096)) > 0
            info = wait_until(lambda: (i := tcp_info(client)) and i["bytes_acked"] > 1000 and i)
            assert info, "the 1000 bytes were never acknowledged"
            assert info["state"] == 1 and info["state_name"] == "ESTABLISHED"
            assert info["segs_out"] > 0 and info["data_segs_out"] >= 1
            assert info["rtt_us"] > 0 and info["snd_mss"] > 0
            assert tcp_info(server_end)["bytes_received"] >= 1000  # type: ignore[index]
        assert tcp_info(client) is None  # closed: None, not an exception
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert tcp_info(udp) is None


# ----------------------------------------------------------------- inference
def test_the_transition_table_only_names_real_tcp_states() -> None:
    real = {"CLOSED", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT_1", "FIN_WAIT_2",
            "CLOSE_WAIT", "LAST_ACK", "CLOSING", "TIME_WAIT"}
    for (state, _), transition in TRANSITIONS.items():
        assert state in real
        assert transition.target is None or transition.target in real
        assert set(transition.via) <= real
    edges = {(a, b) for a, b, _, _ in diagram_edges()}
    assert ("FIN_WAIT_1", "TIME_WAIT") in edges and ("CLOSE_WAIT", "LAST_ACK") in edges
    assert not any("FIN_WAIT_2" in (a, b) for a, b in edges)  # never inferred, only "via"


@pytest.mark.parametrize("behaviour,keep_alive", [("normal", True), ("half-close", True),
                                                   ("normal", False)],
                         ids=["client-closes-first", "client-half-closes", "server-closes-first"])
def test_inference_from_a_real_engine_run(behaviour: str, keep_alive: bool) -> None:
    kernel_probe, kernel_sink = probe_with_sink("kernel")
    inference = StateInference(kernel_probe)
    client_probe, client_sink = probe_with_sink("client")
    client_probe.add_sink(inference)
    observed_probe, observed = probe_with_sink("kernel")
    with running_server("epoll") as (server, server_sink):
        server.probe.add_sink(inference)
        with KernelObserver(observed_probe, server.address[1], host=LOOPBACK):
            # The think time holds each server end ESTABLISHED between the two requests
            # long enough for the observer's polls to see it, on a loaded machine too.
            result = run_load(LoadConfig(server.url, clients=3, requests=2, keep_alive=keep_alive,
                                         behaviour=behaviour, think=0.25), client_probe)
            assert result.failed == 0
            assert server_sink.wait_for(
                lambda ev: sum(e.kind == "close" for e in ev) >= result.connections)
            conns = {e.conn for e in client_sink.events if e.kind == "connect"}
            assert len(conns) == result.connections
            # The kernel keeps every first closer's end in TIME_WAIT for 60 s: the
            # observer must see each of them, under the engine's connection id.
            assert observed.wait_for(lambda ev: all(
                "TIME_WAIT" in states(ev, c, "client") + states(ev, c, "server") for c in conns))
    inferred = list(kernel_sink.events)
    assert inferred and all(e.src == "kernel" and e.kind == "tcp_state"
                            and e.data["source"] == "inferred" for e in inferred)
    observed_events = list(observed.events)
    for conn in conns:
        client, server_side = states(inferred, conn, "client"), states(inferred, conn, "server")
        assert client[0] == server_side[0] == "ESTABLISHED"
        if keep_alive:  # the client closes (or shuts down) first
            assert client == ["ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT"]
            assert server_side == ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
        else:  # the server closes first; the client reads its end-of-file, then closes
            assert server_side == ["ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT"]
            assert client == ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
        for side in ("client", "server"):
            assert_chained(inferred, conn, side)
            # Where the kernel was watched too, the inferred TIME_WAIT is on the
            # side the kernel put in TIME_WAIT.
            if "TIME_WAIT" in states(inferred, conn, side):
                assert "TIME_WAIT" in states(observed_events, conn, side)
        if keep_alive and behaviour == "normal":
            # The server's end was held open for the think time between the two
            # requests: the observer saw it, under the engine's connection id.
            assert "ESTABLISHED" in states(observed_events, conn, "server")
    assert not inference._conns  # every connection forgotten once both ends closed


def test_inference_of_an_abort() -> None:
    kernel_probe, kernel_sink = probe_with_sink("kernel")
    inference = StateInference(kernel_probe)
    client_probe, client_sink = probe_with_sink("client")
    client_probe.add_sink(inference)
    with running_server("epoll") as (server, server_sink):
        server.probe.add_sink(inference)
        result = run_load(LoadConfig(server.url, clients=2, requests=1, behaviour="abort"),
                          client_probe)
        assert result.expected_failures == 2
        assert server_sink.wait_for(lambda ev: sum(e.kind == "close" for e in ev) >= 2)
    for conn in {e.conn for e in client_sink.events if e.kind == "connect"}:
        assert states(list(kernel_sink.events), conn, "client") == ["ESTABLISHED", "CLOSED"]
        abort = next(e for e in kernel_sink.events if e.conn == conn and e.data["state"] == "CLOSED")
        assert abort.data["trigger"] == "reset"


def test_inference_takes_the_fin_from_end_of_file_when_shutdown_is_reported_late() -> None:
    """The clients report ``shutdown`` after the call, so the server's recv of 0
    bytes can come first. Fed in that order (as a real run sometimes does),
    the inference still makes the client the first closer. Sans I/O: the state
    machine alone, events emitted exactly as the engine and clients emit them."""
    kernel_probe, kernel_sink = probe_with_sink("kernel")
    inference = StateInference(kernel_probe)
    client, server = Probe("client"), Probe("server")
    client.add_sink(inference)
    server.add_sink(inference)
    conn = "127.0.0.1:40000>127.0.0.1:8080"
    client.emit("connect", conn, 5, 1, peer="127.0.0.1:8080")
    server.emit("accept", conn, 7, 2, peer="127.0.0.1:40000")
    server.emit("recv", conn, 7, 2, bytes=0)  # the client's FIN arrived...
    server.emit("close", conn, 7, 2, reason="peer closed")
    client.emit("shutdown", conn, 5, 1, how="SHUT_WR")  # ...its shutdown is reported late
    client.emit("recv", conn, 5, 1, bytes=0)
    client.emit("close", conn, 5, 1, reason="done")
    events = list(kernel_sink.events)
    assert states(events, conn, "client") == ["ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT"]
    assert states(events, conn, "server") == ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
    assert not inference._conns


def test_the_observer_takes_a_last_look_as_it_stops() -> None:
    """What the server's exit does to its sockets ends the story: not a stale state."""
    ok, reason = KernelObserver.available()
    if not ok:
        pytest.skip(f"no kernel observer here: {reason}")
    sink = MemorySink()
    probe = Probe("kernel")
    probe.add_sink(sink)
    with running_server("epoll") as (server, _):
        port = server.address[1]
        observer = KernelObserver(probe, port, interval=3600).start()  # only the first look
        client = socket.create_connection(server.address[:2], timeout=5)
        try:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
            server.stop()  # closes the keep-alive connection: the server's FIN
            deadline = time.monotonic() + 5
            while client.recv(65536) and time.monotonic() < deadline:
                pass
            observer.stop()
        finally:
            client.close()
    server_states = [e.data["state"] for e in sink.events
                     if e.kind == "tcp_state" and e.data["side"] == "server"]
    # Only the last look saw this connection at all (the first came before it), and it saw
    # the server's end after its close: FIN_WAIT_1 (the ACK of its FIN may be delayed) or later.
    assert server_states and server_states[-1] in ("FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT",
                                                   "CLOSED"), server_states
    assert observer.scans["final"] == 1


@pytest.mark.parametrize("backend", ["sockdiag", "proc"])
def test_the_accept_queue_each_backend_reports_is_a_trace_line_that_reads_back(
        backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """/proc does not show a listener's backlog: its accept_queue event leaves the
    backlog out (a null there is refused by the trace reader) and still reads back."""
    from engine.trace import TraceWriter, read_trace
    probe, sink = probe_with_sink("kernel")
    with listening() as listener:
        port = listener.getsockname()[1]
        with KernelObserver(probe, port, host=LOOPBACK, backend=backend):
            client, server_end, _ = connected_pair(listener)
            client2 = socket.create_connection((LOOPBACK, port), timeout=5)  # not accepted
            with client, server_end, client2:
                assert sink.wait_for(lambda evs: any(e.kind == "accept_queue" and
                                                     e.data["length"] >= 1 for e in evs))
    queues = [e for e in sink.events if e.kind == "accept_queue"]
    assert all(("backlog" in e.data) == (backend == "sockdiag") for e in queues)
    path = tmp_path / "q.jsonl"
    with TraceWriter(path) as writer:
        for e in queues:
            writer(e)
    assert [e.data["length"] for e in read_trace(path).events] == [e.data["length"]
                                                                   for e in queues]
