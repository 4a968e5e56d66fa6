"""Derived segments in the kernel side's process (engine/kernelside.py: Feed, FedEvents).

Where packets cannot be captured, the kernel side derives them from the engine's own
events, read through a pipe as the trace writer serialized them: the server's
interpreter only emits. These tests need no privilege: ``--packets derived`` is what
an ordinary user records (tests/engine/test_as_a_user.py runs it as one).
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.capture.derived import DELAYED_ACK_NS, PacketDeriver
from engine.events import Event, MemorySink, Probe
from engine.kernelside import FED_GRACE_NS, SEQ_BASE, Feed, FedEvents
from engine.trace import read_trace, serialize

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine"]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the kernel side's process is Linux's (sock_diag, "
                                       "PR_SET_PDEATHSIG); elsewhere the engine derives inline")
CONN = "127.0.0.1:40000>127.0.0.1:8080"


def wire(events: list[Event]) -> list[tuple[str, str, int]]:
    packets = sorted((e for e in events if e.kind == "packet"), key=lambda e: (e.t_ns, e.seq))
    return [(e.data["sender"], e.data["flags"], e.data["len"]) for e in packets]


class Fed:
    """A real feed over a real pipe, read by a real ``FedEvents``, with a deriver going by
    its clock: the engine's side is driven by hand (which batch, with what time, when)."""

    def __init__(self) -> None:
        r, w = os.pipe()
        self.feed = Feed(w)
        self.fed = FedEvents(r)
        self.sink = MemorySink()
        self.deriver = PacketDeriver(Probe("engine"), clock=self.fed.now)
        self.deriver.probe.add_sink(self.sink)
        self.fed.server.add_sink(self.deriver)
        self.fed.clients = [self.deriver]
        self.fed.on_time.append(self.deriver.tick)
        self.fed.start()
        self.deriver.start()
        self.feed.start()
        self.base = time.monotonic_ns()
        self.seq = 0
        self.batch: list[Event] = []

    def __call__(self, ms: float, src: str, kind: str, conn: str | None = CONN,
                 **data: object) -> None:
        self.seq += 1
        self.batch.append(Event(self.seq, self.base + int(ms * 1e6), src, kind, conn, 5, 1,
                                data))

    def exchange(self, ms: float, who: str, n: int) -> None:
        other = "server" if who == "client" else "client"
        self(ms, who, "send", bytes=n, wanted=n)
        self(ms + 0.1, other, "recv", bytes=n)

    def ping_pong(self) -> None:
        """A connection, a request answered at once (both ends now in ping-pong), and a
        second request at 3 ms: its delayed-ACK timer is due at 43 ms."""
        self(0, "client", "connect", peer="127.0.0.1:8080")
        self(0.05, "server", "accept", peer="127.0.0.1:40000")
        self.exchange(1, "client", 80)
        self.exchange(2, "server", 2000)
        self.exchange(3, "client", 80)

    def send(self, upto_ms: float, grace: bool = True) -> None:
        """What was made so far, as one batch: every event before ``upto_ms`` is in it
        (``grace``: even those of a thread preempted between its stamp and the batch;
        without it, ``upto_ms`` is when the writer took the batch, as the engine says)."""
        self.feed(serialize(self.batch),
                  self.base + int(upto_ms * 1e6) + (FED_GRACE_NS if grace else 0))
        self.batch = []

    def end(self) -> list[Event]:
        self.feed.close(timeout=10)
        assert self.fed.join(10)
        self.deriver.stop()
        return list(self.sink.events)


def test_a_late_answer_is_waited_for_by_the_feds_clock_not_the_wall() -> None:
    """The request comes in one batch, its answer (30 ms later: within the delayed-ACK
    timer) in the next, which the engine hands over 200 ms of wall time later. The ACK
    of the request rides on the answer, as on the wire: the deriver's clock is the
    feed's (the request's batch said nothing later had happened), not the wall's, by
    which the timer would have fired and drawn a pure ACK."""
    f = Fed()
    f(0, "client", "connect", peer="127.0.0.1:8080")
    f(0.05, "server", "accept", peer="127.0.0.1:40000")
    f.exchange(1, "client", 80)
    f.exchange(2, "server", 2000)  # answered at once: both ends now in ping-pong
    f.exchange(3, "client", 80)
    time.sleep(0.1)  # the batch is handed over 100 ms after its events, on the wall
    f.send(upto_ms=4)
    time.sleep(0.2)
    early = wire(list(f.sink.events))
    f.exchange(33, "server", 2000)  # 30 ms after the request
    f(40, "client", "close", reason="done")
    f(40.1, "server", "recv", bytes=0)
    f(40.2, "server", "close", reason="peer closed")
    f.send(upto_ms=41)
    events = f.end()
    assert ("server", "ACK", 0) not in early[-2:], early  # nothing decided past the feed
    assert wire(events)[7:9] == [("client", "PSH|ACK", 80), ("server", "PSH|ACK", 2000)] \
        and ("server", "ACK", 0) not in wire(events)[7:], wire(events)
    assert f.fed.events == 13 and f.fed.failures == 0


def test_when_the_feeds_time_passes_the_timer_the_pure_ack_is_drawn() -> None:
    """The other way round: the answer comes 60 ms after the request, and the batches
    said so: the timer's pure ACK at 40 ms is drawn, dated by the events, not by when
    they were read."""
    f = Fed()
    f.ping_pong()
    f.send(upto_ms=50)  # nothing else happened up to 50 ms: the timer fired at 43 ms
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and ("server", "ACK", 0) not in wire(list(f.sink.events))[7:]:
        time.sleep(0.01)
    # Drawn as soon as the feed's time passed the timer, before anything more came.
    assert wire(list(f.sink.events))[7:] == [("client", "PSH|ACK", 80), ("server", "ACK", 0)]
    f.exchange(63, "server", 2000)
    f.send(upto_ms=70)
    events = f.end()
    packets = sorted((e for e in events if e.kind == "packet"), key=lambda e: (e.t_ns, e.seq))
    assert wire(events)[7:10] == [("client", "PSH|ACK", 80), ("server", "ACK", 0),
                                  ("server", "PSH|ACK", 2000)], wire(events)
    assert packets[8].t_ns - packets[7].t_ns == DELAYED_ACK_NS


def test_an_answer_stamped_before_the_batch_but_late_to_it_is_waited_for() -> None:
    """The writer takes a batch at 60 ms holding the request (3 ms); the answer was
    stamped at 40 ms by a thread that then lost the GIL (for a few switch intervals) and
    reached the writer after that batch: it comes with the next one. The deriver's clock
    stays the grace behind what a batch says, so the request's delayed-ACK timer (due at
    43 ms) has not fired and the ACK rides on the answer, as on the wire."""
    f = Fed()
    f.ping_pong()
    f.send(upto_ms=60, grace=False)  # taken at 60 ms, as the writer says
    time.sleep(0.1)
    f.exchange(40, "server", 2000)  # stamped at 40 ms, in the next batch
    f.send(upto_ms=70, grace=False)
    events = f.end()
    # (Not a pure ACK at 43 ms too: the answer at 40 ms carried it.)
    assert wire(events)[7:9] == [("client", "PSH|ACK", 80), ("server", "PSH|ACK", 2000)] \
        and ("server", "ACK", 0) not in wire(events)[7:], wire(events)


def test_the_kernels_word_waits_for_the_engines_events_before_it() -> None:
    """The kernel side's own observer reports the server's CLOSE_WAIT at 40 ms, before the
    engine's batch holding the client's close at 39 ms has come: the report waits its
    turn, so the client's FIN is drawn at its close (as the client's own event says),
    not at the report (as the report alone would say)."""
    f = Fed()
    f(0, "client", "connect", peer="127.0.0.1:8080")
    f(0.05, "server", "accept", peer="127.0.0.1:40000")
    f.exchange(1, "client", 80)
    f.exchange(2, "server", 2000)
    f.send(upto_ms=3)
    time.sleep(0.05)
    f.deriver(Event(SEQ_BASE, f.base + 40_000_000, "kernel", "tcp_state", CONN, -1, 0,
                    {"side": "server", "state": "CLOSE_WAIT", "previous": "ESTABLISHED",
                     "source": "observed"}))
    time.sleep(0.05)
    f(39, "client", "close", reason="done")
    f.send(upto_ms=45)
    events = f.end()
    (fin,) = [e for e in events if e.kind == "packet" and e.data["sender"] == "client"
              and "FIN" in e.data["flags"]]
    assert fin.t_ns - f.base < 40_000_000, (fin.t_ns - f.base) / 1e6


def frames_read(r: int, until: int, deadline: float) -> tuple[list[int], int]:
    """Read the feed's pipe as the kernel side does: each frame's time, and the events."""
    import struct
    frame = struct.Struct("<qI")
    times, events, buffer = [], 0, b""
    with os.fdopen(os.dup(r), "rb") as f:
        while time.monotonic() < deadline and (not times or times[-1] != until):
            head = f.read(frame.size)
            if len(head) < frame.size:
                break
            upto, n = frame.unpack(head)
            buffer = f.read(n)
            times.append(upto)
            events += buffer.count(b"\n")
    return times, events


def block_of(events: int) -> bytes:
    return serialize([Event(1, 1, "server", "send", CONN, 5, 1,
                            {"bytes": 1, "wanted": 1})]) * events


def test_a_kernel_side_that_reads_late_loses_nothing(tmp_path: Path) -> None:
    """Nobody reads the pipe for a while (a kernel side with no core to run on): the tap
    never waits; what memory does not hold waits in the spill file, in order. Then the
    kernel side reads while the engine goes on making batches: it gets every event, each
    frame with its time, in order, none dropped, and once it has caught up the file is
    empty again (batches wait in memory)."""
    import threading
    r, w = os.pipe()
    try:
        feed = Feed(w, spill_dir=str(tmp_path))
        feed.MAX_BYTES = 2 << 20  # type: ignore[misc]
        feed.start()
        block = block_of(1000)
        started = time.monotonic()
        for i in range(100):  # 100 blocks of 1000 events: far more than pipe and memory hold
            feed(block, 1000 + i)
            feed(b"", 1000 + i)  # (a frame of time alone, between)
        assert time.monotonic() - started < 5  # the tap never waited for the pipe
        assert feed.spilled > 0 and feed.dropped == 0
        got: list = []
        reader = threading.Thread(target=lambda: got.append(
            frames_read(r, 1199, time.monotonic() + 60)))
        reader.start()
        for i in range(100, 200):  # more batches while the file is read
            feed(block, 1000 + i)
            time.sleep(0.002)
        reader.join(70)
        (times, events), = got
        assert events == 200 * 1000 and feed.dropped == 0
        assert times == sorted(times) and times[-1] == 1199 and len(times) >= 200
        assert feed._spill_end == 0  # caught up: nothing waits in the file
        feed.close(timeout=10)
    finally:
        os.close(r)


@pytest.mark.parametrize("memory", [1 << 20, 1], ids=["memory-then-file", "file-only"])
def test_a_feed_whose_spill_is_full_drops_and_says_so(tmp_path: Path, memory: int) -> None:
    """Past what the spill file may hold (a full disk says the same), batches are dropped
    and counted, and a ``dropped`` event (sink "derive") says so; the tap never blocks.
    Closed while nobody reads (a frame of memory, or of the file, in flight): each event
    was delivered or is counted, never both."""
    r, w = os.pipe()
    try:
        feed = Feed(w, spill_dir=str(tmp_path))
        feed.MAX_BYTES = memory  # type: ignore[misc]
        feed.MAX_SPILL = 4 << 20  # type: ignore[misc]
        probe = Probe("server")
        said = MemorySink()
        probe.add_sink(said)
        feed.probe = probe
        feed.start()
        block = block_of(1000)
        started = time.monotonic()
        for i in range(200):
            feed(block, 1000 + i)
        assert time.monotonic() - started < 5
        assert feed.dropped > 0 and feed.dropped % 1000 == 0
        feed.close(timeout=0.5)  # nobody reads: what still waits is counted too
        _, delivered = frames_read(r, -1, time.monotonic() + 30)  # to the end of the pipe
        assert delivered + feed.dropped == 200 * 1000  # each event got there, or is counted
        (dropped,) = [e for e in said.events if e.kind == "dropped"]
        assert dropped.data["sink"] == "derive" and dropped.data["count"] == feed.dropped
    finally:
        os.close(r)


def test_a_kernel_side_that_dies_costs_what_it_had_not_read_counted(tmp_path: Path) -> None:
    """The kernel side goes away (its end of the pipe closed) with batches waiting in
    memory and in the file: every event it never read is counted, those waiting and
    those that come after, each once; the tap never fails."""
    r, w = os.pipe()
    feed = Feed(w, spill_dir=str(tmp_path))
    feed.MAX_BYTES = 1 << 20  # type: ignore[misc]
    feed.start()
    block = block_of(1000)
    for i in range(50):
        feed(block, 1000 + i)
    os.close(r)  # gone: the write in flight fails (EPIPE), the thread counts and ends
    deadline = time.monotonic() + 10
    while feed._thread.is_alive() and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.01)
    for i in range(50, 60):
        feed(block, 1000 + i)  # after its end: counted at once
    feed.close(timeout=5)
    # The pipe held at most what one write put in it before it went (64 KiB: under a
    # block's 116 KB, a partial frame, which the kernel side never parsed).
    assert feed.dropped == 60 * 1000
# ---------------------------------------------------------------- real runs
def serve(tmp_path: Path, name: str, load: str, *extra: str) -> list[Event]:
    trace = tmp_path / f"{name}.jsonl"
    run = subprocess.run([*CLI, "serve", "--port", "0", "--packets", "derived", "--trace",
                          str(trace), f"--load={load}", "--exit-after-load", *extra],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "packets: derived" in run.stdout
    return read_trace(trace).events


def shapes(events: list[Event]) -> tuple[list, collections.Counter]:
    own = {e.conn for e in events if e.kind in ("accept", "connect")}
    by_conn: dict[str, list] = {}
    for e in sorted(events, key=lambda e: (e.t_ns, e.seq)):
        if e.kind == "packet" and e.conn in own:
            by_conn.setdefault(e.conn or "", []).append(
                (e.data["sender"], e.data["flags"], e.data["len"]))
    states = collections.Counter((e.kind, e.data["side"], e.data["state"], e.data["source"])
                                 for e in events if e.kind == "tcp_state" and e.conn in own)
    return sorted(by_conn.values()), states


@linux_only
@pytest.mark.parametrize("load", ["--clients 4 --requests 1 --short",
                                  "--clients 3 --requests 4 --think 25"])
def test_the_kernel_side_derives_what_the_server_derived_inline(tmp_path: Path, load: str
                                                                 ) -> None:
    """The same load, derived by the kernel side's process (numbered apart: it made
    them) and inline in the server's: the same segments on every connection, the same
    states. With 25 ms of thinking, each client's ACK of an answer rides on its next
    request (the delayed-ACK timer is 40 ms), though the batches reach the kernel side
    up to 50 ms late (the tests above pin the clock that makes it so)."""
    away, here = serve(tmp_path, "away", load), serve(tmp_path, "here", load,
                                                      "--kernel-side", "inline")
    packets = [e for e in away if e.kind == "packet"]
    assert packets and all(e.seq >= SEQ_BASE for e in packets)
    assert all(e.seq < SEQ_BASE for e in here if e.kind == "packet")
    (conns_away, states_away), (conns_here, states_here) = shapes(away), shapes(here)
    assert len(conns_away) in (3, 4) and conns_away == conns_here
    assert states_away == states_here
    if "--think" in load:
        # The handshake's, the quick ACK of the first answer, the last one (of the server's
        # FIN): every other answer's ACK rode on the next request.
        for flags in conns_away:
            assert flags.count(("client", "ACK", 0)) == 3, flags
    checks = [e for e in away if e.kind == "state_check"]
    assert checks and all(e.data.get("verdict") == "confirms" for e in checks), \
        [e.data for e in checks if e.data.get("verdict") != "confirms"]


def test_the_checks_judge_a_report_once_the_feed_has_passed_it() -> None:
    """The kernel side's checks hold a sock_diag report until the feed's clock is past
    it, however long that takes on the wall: the derived states that confirm it come
    with the engine's later batch (here 300 ms later, past the 100 ms hold)."""
    from engine.kernel.checks import StateChecks
    said = MemorySink()
    clock = [time.monotonic_ns() - 1_000_000_000]
    checks = StateChecks([said], clock=lambda: clock[0]).start()
    t = clock[0] + 10_000_000
    checks(Event(SEQ_BASE, t, "kernel", "tcp_state", CONN, -1, 0,
                 {"side": "server", "state": "ESTABLISHED", "previous": "SYN_RECV",
                  "source": "observed", "seen_from_ns": t - 1_000_000}))
    time.sleep(0.3)
    assert not said.events  # the feed has not passed it: it waits
    for when, state in ((t - 5_000_000, "SYN_RECV"), (t - 4_000_000, "ESTABLISHED")):
        checks.record(Event(SEQ_BASE + 1, when, "kernel", "tcp_state", CONN, -1, 0,
                            {"side": "server", "state": state, "source": "inferred",
                             "origin": "derived"}))
    clock[0] = t + 200_000_000
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not said.events:
        time.sleep(0.01)
    checks.stop()
    (judged,) = said.events
    assert judged.kind == "state_check" and judged.data["verdict"] == "confirms"


@linux_only
def test_a_stopped_kernel_side_holds_no_one_up_and_catches_up(tmp_path: Path) -> None:
    """The deriving kernel side stopped (SIGSTOP) while 300 short connections are served:
    the server answers them all at once, as if nobody derived; let go, the kernel side
    reads what waited and derives every connection whole (its SYN and its FINs), and
    nothing is lost."""
    from tests.conftest import child_pids, lines_until
    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--packets", "derived", "--trace",
                             str(trace)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _, url = lines_until(proc, "recording events")
        (side,) = child_pids(proc.pid)
        os.kill(side, signal.SIGSTOP)
        try:
            done = subprocess.run([*CLI, "load", url, "--clients", "10", "--requests", "30",
                                   "--short"], cwd=ROOT, capture_output=True, text=True,
                                  timeout=60)
        finally:
            os.kill(side, signal.SIGCONT)
        assert done.returncode == 0 and "requests: 300 ok" in done.stdout, done.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    trace_read = read_trace(trace)
    events = trace_read.events
    accepted = {e.conn for e in events if e.kind == "accept"}
    assert len(accepted) == 300
    flags: dict[str, set[str]] = {}
    for e in events:
        if e.kind == "packet":
            flags.setdefault(e.conn or "", set()).add(e.data["flags"])
    assert all({"SYN", "SYN|ACK"} <= flags.get(c, set()) and
               any("FIN" in f for f in flags.get(c, set())) for c in accepted), \
        [c for c in accepted if c not in flags][:3]
    assert not [e for e in events if e.kind == "dropped"]
    assert trace_read.header["end"]["lost"] == {}


def nice_of(tid: int, pid: int | None = None) -> int:
    """A thread's nice value, as the kernel has it (/proc/PID/task/TID/stat, field 19)."""
    stat = Path(f"/proc/{pid or os.getpid()}/task/{tid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])


@linux_only
def test_the_bulk_threads_yield_to_the_server_and_the_observers_do_not() -> None:
    """The kernel side's bulk threads (capture, feed, its trace writer) get a core after
    the server; the observer's and the tracepoint reader's keep their priority (when they
    read is part of what they tell). Real threads, the kernel's word on their priority."""
    import threading
    from engine.kernelside import BULK_NICE, BULK_THREADS, yield_to_the_server
    stop = threading.Event()
    names = [*BULK_THREADS, "sockscope-kernel", "sockscope-tracepoint"]
    threads = [threading.Thread(target=stop.wait, name=name, daemon=True) for name in names]
    for thread in threads:
        thread.start()
    try:
        before = {t.name: nice_of(t.native_id) for t in threads}  # type: ignore[arg-type]
        assert sorted(yield_to_the_server()) == sorted(BULK_THREADS)
        after = {t.name: nice_of(t.native_id) for t in threads}  # type: ignore[arg-type]
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    assert all(after[n] == min(19, before[n] + BULK_NICE) for n in BULK_THREADS), after
    assert after["sockscope-kernel"] == before["sockscope-kernel"]
    assert after["sockscope-tracepoint"] == before["sockscope-tracepoint"]
    assert nice_of(threading.get_native_id()) == before["sockscope-kernel"]  # (this one too)


@linux_only
def test_a_serving_kernel_side_runs_its_bulk_threads_lower() -> None:
    """``serve --trace --packets derived``: in the kernel side's process, some threads (its
    feed, its trace writer) run BULK_NICE lower than its main thread; the server's own
    threads all keep the server's priority."""
    from engine.kernelside import BULK_NICE
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--packets", "derived", "--trace",
                             os.devnull], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "http://" in proc.stdout.readline()
        deadline = time.monotonic() + 10
        children: list[int] = []
        while time.monotonic() < deadline and not children:
            children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                        .read_text().split()]
            time.sleep(0.05)
        assert children, "no kernel side"
        side = children[0]
        lowered: list[int] = []
        for _ in range(100):  # (its threads start as it starts: until they are there)
            nices = {int(t): nice_of(int(t), side) for t in os.listdir(f"/proc/{side}/task")}
            lowered = [t for t, n in nices.items() if n == nices[side] + BULK_NICE]
            if len(lowered) >= 2:
                break
            time.sleep(0.05)
        assert len(lowered) >= 2 and side not in lowered, nices
        server = {nice_of(int(t), proc.pid) for t in os.listdir(f"/proc/{proc.pid}/task")}
        assert server == {nice_of(proc.pid, proc.pid)}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        proc.stdout.close()  # type: ignore[union-attr]
