"""The Qt-free timeline: stepping anywhere gives the same state as folding."""
from __future__ import annotations

import dataclasses
import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.capture.derived import PacketDeriver
from engine.clients import LoadConfig, run_load
from engine.events import Event, MemorySink, Probe
from tests.conftest import running_server
from engine.trace import TraceWriter
from visualizer.model import EventLog, ServerState, Timeline, apply, open_trace


@pytest.fixture(scope="module")
def recorded() -> list[Event]:
    """A real run: server, clients and derived packets, short and keep-alive."""
    sink = MemorySink()
    client = Probe("client")
    deriver = PacketDeriver(Probe("engine"))
    for p in (client, deriver.probe):
        p.add_sink(sink)
    client.add_sink(deriver)
    with running_server("epoll") as (server, server_sink):
        server.probe.add_sink(deriver)
        run_load(LoadConfig(server.url, clients=3, requests=4), client)
        run_load(LoadConfig(server.url, clients=2, requests=2, keep_alive=False), client)
        assert server_sink.wait_for(lambda evs: sum(e.kind == "close" for e in evs) >= 7, 5)
    return list(server_sink.events) + list(sink.events)


def fold(events: list[Event], upto: int) -> ServerState:
    state = ServerState()
    for i, e in enumerate(events[:upto + 1]):
        apply(state, e, i)
    return state


def same(a: ServerState, b: ServerState) -> bool:
    owned = {"owned"}  # bookkeeping of copy-on-write, not part of the picture
    return {k: v for k, v in dataclasses.asdict(a).items() if k not in owned} == \
        {k: v for k, v in dataclasses.asdict(b).items() if k not in owned}


def test_log_orders_every_source_by_time(recorded: list[Event]) -> None:
    shuffled = recorded[:]
    random.Random(4).shuffle(shuffled)
    log = EventLog()
    for i in range(0, len(shuffled), 37):  # batches arrive in any order
        log.extend(shuffled[i:i + 37])
    times = [(e.t_ns, e.seq) for e in log]
    assert times == sorted(times) and len(log) == len(recorded)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_stepping_anywhere_equals_folding(recorded: list[Event], data: st.DataObject) -> None:
    log = EventLog(recorded)
    ordered = list(log)
    timeline = Timeline(log, every=50)
    timeline.live = False
    n = data.draw(st.integers(0, len(log) - 1))
    m = data.draw(st.integers(0, n + 1))
    timeline.seek(n)
    assert same(timeline.state, fold(ordered, n))
    timeline.step(-m)
    assert timeline.cursor == n - m
    assert same(timeline.state, fold(ordered, n - m))
    timeline.step(m)
    assert same(timeline.state, fold(ordered, n))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_bounded_history_of_snapshots_still_folds_right(recorded: list[Event],
                                                          data: st.DataObject) -> None:
    """Snapshots every 5 events, at most 6 kept: the older ones are thinned as the
    cursor goes on, and put back as it folds through an old stretch; wherever it
    goes, the state is the fold's, and the count stays bounded."""
    log = EventLog(recorded)
    ordered = list(log)
    timeline = Timeline(log, every=5, max_snaps=6)
    timeline.live = False
    timeline.seek(len(log) - 1)
    assert len(timeline._snaps) <= 6 < len(log) // 5
    for _ in range(4):
        n = data.draw(st.integers(0, len(log) - 1))
        timeline.seek(n)
        assert same(timeline.state, fold(ordered, n))
        assert len(timeline._snaps) <= 7 + len(log) // 5  # (put back: still bounded by the log)
        # the stretch folded through has its snapshots back: a step back is cheap again
        assert max(i for i in timeline._snap_index if i <= n) >= n - timeline.every
        timeline.step(-1)
        assert same(timeline.state, fold(ordered, n - 1))
    timeline.seek(len(log) - 1)  # on past the newest: thinned again
    timeline.seek(len(log) - 1)
    assert timeline._snap_index == sorted(set(timeline._snap_index))
    assert all(snap.index == i for snap, i in zip(timeline._snaps, timeline._snap_index))


def test_late_batches_refold_history(recorded: list[Event]) -> None:
    ordered = list(EventLog(recorded))
    timeline = Timeline(every=25)
    late = ordered[10:40]  # e.g. derived packets dated in the past, or a slower process
    rest = ordered[:10] + ordered[40:]
    for i in range(0, len(rest), 20):
        timeline.add(rest[i:i + 20])
    timeline.add(late)
    assert timeline.cursor == len(ordered) - 1
    assert same(timeline.state, fold(ordered, len(ordered) - 1))


def test_state_holds_what_the_views_draw(recorded: list[Event]) -> None:
    timeline = Timeline(EventLog(recorded))
    timeline.seek(len(timeline.log) - 1)
    state = timeline.state
    conns = [c for c in state.connections.values() if c.opened_ns is not None]
    assert len(conns) == 3 + 4  # three keep-alive clients, four short connections
    assert sum(c.requests for c in conns) == 3 * 4 + 2 * 2
    assert all(set(c.statuses) == {200} and c.responses == c.requests for c in conns)
    assert state.open_connections == 0 and not state.fds
    assert all(c.packets >= 7 for c in conns)  # handshake, data, teardown
    assert state.mode["mode"] == "epoll"
    # Midway: the first connection accepted and registered for reading (its epoll_ctl
    # follows the accept; other events, a client's or the kernel's, may come between).
    log = timeline.log
    first_accept = next(i for i, e in enumerate(log) if e.kind == "accept")
    fd = log[first_accept].fd
    added = next(i for i in range(first_accept + 1, len(log))
                 if log[i].kind == "epoll_ctl" and log[i].fd == fd)
    state = timeline.seek(added)
    conn_id = log[first_accept].conn
    assert state.connections[conn_id].open
    assert state.interest.get(fd) == "IN"
    assert timeline.seek(added - 1).interest.get(fd) is None  # nor before its epoll_ctl


def test_next_and_previous_event_of_a_connection(recorded: list[Event]) -> None:
    timeline = Timeline(EventLog(recorded))
    timeline.live = False
    timeline.seek(-1)
    conn = next(e.conn for e in timeline.log if e.kind == "accept")
    i = timeline.next_of(conn, 1)
    assert i is not None and timeline.log[i].conn == conn
    timeline.seek(i)
    j = timeline.next_of(conn, 1)
    assert j is not None and j > i and timeline.log[j].conn == conn
    timeline.seek(j)
    assert timeline.next_of(conn, -1) == i


def test_a_trace_opens_to_the_same_timeline(recorded: list[Event], tmp_path) -> None:
    path = tmp_path / "run.jsonl"
    with TraceWriter(path) as writer:
        for e in recorded:
            writer(e)
    timeline, header, problems = open_trace(path, batch=50)  # many batches, some reaching back
    assert header["format"] and problems == []
    ordered = list(EventLog(recorded))
    assert [tuple(e) for e in timeline.log] == [tuple(e) for e in ordered]
    assert timeline.cursor == len(ordered) - 1 and not timeline.live
    assert same(timeline.state, fold(ordered, len(ordered) - 1))
    # Columnar, and the events' text stays in the file: what an event costs in memory
    # is its columns (under 70 bytes), not its JSON (about 240) nor a dict.
    assert timeline.log.data_where == "file"
    assert timeline.log.nbytes < 70 * len(ordered) + 100_000
    # Every event read again from the file (none left decoded) is the one written.
    timeline.log._decoded.clear()
    assert [tuple(e) for e in timeline.log] == [tuple(e) for e in ordered]


def test_a_trace_rewritten_while_open_is_refused_not_misread(recorded: list[Event],
                                                            tmp_path) -> None:
    """The opened trace's text is read again from its file: renamed or replaced, the
    file opened is still the one read; rewritten in place, an event no longer where
    it was is refused (``DataChanged``, naming the file), never shown as another's."""
    from visualizer.model.log import DataChanged
    path = tmp_path / "run.jsonl"
    with TraceWriter(path) as writer:
        for e in recorded:
            writer(e)
    timeline, _, _ = open_trace(path)
    log = timeline.log
    expected = [tuple(e) for e in log]
    path.rename(tmp_path / "moved.jsonl")
    path.write_bytes(b"{}\n" * 10)  # a new file by the old name
    log._decoded.clear()
    assert [tuple(e) for e in log] == expected
    # The same file, rewritten in place: one line shorter at the start.
    moved = tmp_path / "moved.jsonl"
    lines = moved.read_bytes().splitlines(keepends=True)
    with open(moved, "r+b") as f:
        f.write(b"".join(lines[:1] + lines[2:]))
    log._decoded.clear()
    with pytest.raises(DataChanged, match="run.jsonl changed on disk since it was opened"):
        list(log)


@pytest.mark.parametrize("pread", [True, False], ids=["pread", "seek-and-read"])
def test_a_live_log_spills_its_text_and_reads_it_back(recorded: list[Event], tmp_path,
                                                      monkeypatch, pread: bool) -> None:
    """A live session's log writes each event's JSON to an unnamed file in the
    folder given, as batches arrive (late ones merged into the past too): memory
    keeps the columns; every event read back is the one added. Also as on Windows,
    where there is no ``os.pread``: reads seek the descriptor the writes use, reads
    and writes interleaved."""
    import visualizer.model.log as log_module
    monkeypatch.setattr(log_module, "_HAS_PREAD", pread)
    log = EventLog(spill=str(tmp_path))
    shuffled = recorded[:]
    random.Random(5).shuffle(shuffled)
    for i in range(0, len(shuffled), 41):
        log.extend(shuffled[i:i + 41])
        log._decoded.clear()
        assert log[0].seq == min(e.seq for e in shuffled[:i + 41] if e.t_ns == log[0].t_ns)
    assert log.data_where == "spill" and log.spill_failed is None
    assert list(tmp_path.iterdir()) == []  # unnamed: nothing to clean up, even after a crash
    # The columns are maps of files too (where the system can reserve their space):
    # this process's own memory holds neither the text nor the columns.
    if hasattr(os, "posix_fallocate"):
        assert isinstance(log.column("t_ns").base, np.memmap) or \
            isinstance(log._t.a, np.memmap)
        assert log.nbytes < 10_000
    log._decoded.clear()
    assert [tuple(e) for e in log] == [tuple(e) for e in EventLog(recorded)]
    log.close()


SPILL_LIMITED = """
import resource, sys
from engine.events import Event
from visualizer.model import EventLog
# (Python ignores SIGXFSZ from the start: a write past the limit fails with EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
events = [Event(n, 1000 + n, "server", "recv", f"c{n % 7}", 5, 1, {"bytes": n, "pad": "x" * 40})
          for n in range(1, 3001)]
log = EventLog(spill=sys.argv[1])
for i in range(0, len(events), 100):
    log.extend(events[i:i + 100])
log._decoded.clear()
assert [tuple(e) for e in log] == [tuple(e) for e in events], "an event was lost or changed"
print(type(log.spill_failed).__name__, log.spill_failed.errno if log.spill_failed else None)
"""


def test_a_spill_the_disk_refuses_keeps_every_event_in_memory(tmp_path) -> None:
    """A full disk (here, a file-size limit: EFBIG past 20 kB) loses nothing: the
    chunks the file refuses stay in memory, and the log says why."""
    import errno
    import subprocess
    import sys
    from pathlib import Path
    done = subprocess.run([sys.executable, "-c", SPILL_LIMITED, str(tmp_path)],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["OSError", str(errno.EFBIG)]


@pytest.mark.parametrize("kind,field,value", [
    ("recv", "bytes", "lots"), ("response", "status", None), ("listen", "backlog", "x"),
    ("recv", "conn", 5)])
def test_a_field_of_the_wrong_type_names_its_line(recorded: list[Event], tmp_path,
                                                    kind: str, field: str, value: object) -> None:
    """JSON that parses but says nonsense ("bytes": "lots") is refused like a broken
    line: a TraceError naming the line, not a crash deep in the fold."""
    import orjson
    from engine.trace import TraceError
    path = tmp_path / "run.jsonl"
    with TraceWriter(path) as writer:
        for e in recorded:
            writer(e)
    lines = path.read_bytes().splitlines(keepends=True)
    target = next(n for n, raw in enumerate(lines[1:], 2) if orjson.loads(raw)["kind"] == kind)
    row = orjson.loads(lines[target - 1])
    assert field in row  # the field is really there, and really replaced
    row[field] = value
    lines[target - 1] = orjson.dumps(row) + b"\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(TraceError) as caught:
        open_trace(path, batch=50)
    assert caught.value.line == target, str(caught.value)
    assert field in str(caught.value) or kind in str(caught.value)


def test_indices_answer_like_a_scan(recorded: list[Event]) -> None:
    log = EventLog(recorded)
    conn = next(e.conn for e in log if e.kind == "accept")
    fd = next(e.fd for e in log if e.kind == "accept")
    assert list(log.indices(conn=conn)) == [i for i, e in enumerate(log) if e.conn == conn]
    assert list(log.indices(kinds=["request", "response"], src="server", start=10, stop=400)) \
        == [i for i, e in enumerate(log) if 10 <= i < 400 and e.src == "server"
            and e.kind in ("request", "response")]
    assert list(log.indices(fd=fd, kinds=["recv"])) == \
        [i for i, e in enumerate(log) if e.fd == fd and e.kind == "recv"]
    assert len(log.indices(conn="nobody")) == 0 and len(log.indices(kinds=["nothing"])) == 0
    assert conn in log.connection_ids()
    assert list(log.column("t_ns")) == [e.t_ns for e in log]


def test_finished_connections_retire_from_big_states() -> None:
    """Thousands of short connections: snapshots stay small, the count stays right."""
    events, seq = [], 0
    for n in range(2500):
        conn = f"127.0.0.1:{20000 + n}>127.0.0.1:80"
        for kind in ("accept", "request", "close"):
            seq += 1
            events.append(Event(seq, seq, "server", kind, conn, 7, 1,
                                 {"method": "GET", "path": "/"} if kind == "request" else {}))
    timeline = Timeline(EventLog(events), every=100)
    state = timeline.seek(len(events) - 1)
    assert len(state.connections) <= 1001
    assert state.retired + len(state.connections) == 2500
    assert same(state, fold(list(timeline.log), len(events) - 1))


def test_a_closed_end_nobody_reports_on_reads_closed() -> None:
    """Without observed states, accept() implies ESTABLISHED and close() CLOSED;
    an observed end keeps what the kernel said."""
    conn = "127.0.0.1:40000>127.0.0.1:80"
    events = [Event(1, 1, "client", "connect", conn, 4, 2, {}),
              Event(2, 2, "server", "accept", conn, 7, 1, {}),
              Event(3, 3, "server", "close", conn, 7, 1, {"reason": "done"}),
              Event(4, 4, "kernel", "tcp_state", conn, -1, 0,
                    {"side": "server", "state": "TIME_WAIT", "previous": "FIN_WAIT_2",
                     "source": "observed", "expires_ms": 60000}),
              Event(5, 5, "client", "close", conn, 4, 2, {})]
    timeline = Timeline(EventLog(events))
    state = timeline.seek(1)
    assert (state.connections[conn].client, state.connections[conn].server) == \
        ("ESTABLISHED", "ESTABLISHED")
    state = timeline.seek(2)
    assert state.connections[conn].server == "CLOSED"
    state = timeline.seek(4)
    assert (state.connections[conn].client, state.connections[conn].server) == \
        ("CLOSED", "TIME_WAIT")


def test_the_listening_socket_goes_when_the_server_loop_ends(recorded: list[Event]) -> None:
    timeline = Timeline(EventLog(recorded))
    log = timeline.log
    listen = next(i for i, e in enumerate(log) if e.kind == "listen")
    end = next(i for i, e in enumerate(log) if e.kind == "thread_exit" and e.src == "server"
               and e.data.get("name") == "loop")
    assert timeline.seek(listen).listen["port"] > 0
    assert timeline.seek(end - 1).listen
    assert timeline.seek(end).listen == {}


def test_a_connection_clone_copies_every_field() -> None:
    from visualizer.model.state import ConnectionState
    values = {f.name: (f"v{i}" if f.name != "statuses" else {200: i})
              for i, f in enumerate(dataclasses.fields(ConnectionState))}
    original = ConnectionState(**values)
    copy = original.clone()
    assert dataclasses.asdict(copy) == dataclasses.asdict(original)
    assert copy.statuses is not original.statuses


def test_an_accept_after_the_client_left_does_not_bring_its_end_back() -> None:
    """An aborting client connects, resets and is gone before accept() returns: its end
    stays CLOSED (a browser's end, never seen, reads ESTABLISHED from accept())."""
    conn, browser = "127.0.0.1:5000>127.0.0.1:80", "127.0.0.1:5001>127.0.0.1:80"
    events = [Event(1, 10, "client", "connect", conn, 3, 1, {}),
              Event(2, 20, "client", "close", conn, 3, 1, {"reason": "abort (RST)"}),
              Event(3, 30, "server", "accept", conn, 7, 2, {"peer": "127.0.0.1:5000"}),
              Event(4, 40, "server", "accept", browser, 8, 2, {"peer": "127.0.0.1:5001"})]
    state = fold(events, len(events) - 1)
    assert state.connections[conn].client == "CLOSED"
    assert state.connections[conn].server == "ESTABLISHED"
    assert state.connections[browser].client == "ESTABLISHED"


def test_a_socket_older_than_the_trace_is_marked_until_its_port_pair_is_opened_again() -> None:
    """The observer's first look finds a socket in TIME_WAIT (no previous state): older
    than the trace, marked so. A client then uses the same port pair again and the server
    accepts it: a connection of the trace from then on, the mark gone."""
    from visualizer.model.state import ServerState, apply
    conn = "127.0.0.1:40000>127.0.0.1:7890"
    state = ServerState()
    state = apply(state, Event(1, 1_000, "kernel", "tcp_state", conn, -1, 0, {
        "side": "client", "state": "TIME_WAIT", "previous": None, "source": "observed"}))
    assert state.connections[conn].predates
    state = apply(state, Event(2, 2_000, "kernel", "tcp_state", conn, -1, 0, {
        "side": "client", "state": "CLOSED", "previous": "TIME_WAIT", "source": "observed"}))
    assert state.connections[conn].predates  # (still nothing of the trace's)
    state = apply(state, Event(3, 3_000, "server", "accept", conn, 9, 1,
                               {"peer": "127.0.0.1:40000"}))
    assert not state.connections[conn].predates
