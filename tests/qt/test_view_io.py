"""The I/O-model view: what it draws for each mode, at the cursor, from synthetic
traces and from live runs of the real engine."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from engine.events import Event
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.model.series import EventSeries
from visualizer.views.io import IoView

ROOT = Path(__file__).resolve().parents[2]
A = "127.0.0.1:50001>127.0.0.1:7890"
B = "127.0.0.1:50002>127.0.0.1:7890"


class Trace:
    """Builds an event list by hand: one event per call, 1 ms apart."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, kind: str, conn: str | None = None, fd: int = -1, thread: int = 1,
                 src: str = "server", **data: object) -> int:
        n = len(self.events)
        self.events.append(Event(n + 1, 1_000_000_000 + n * 1_000_000, src, kind, conn, fd,
                                 thread, data))
        return n

    def timeline(self) -> Timeline:
        tl = Timeline(EventLog(self.events))
        tl.live = False
        return tl


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = IoView()
    qtbot.addWidget(v)
    v.resize(1280, 720)
    return v


def show(view: IoView, tl: Timeline, index: int) -> IoView:
    tl.seek(index)
    view.show_state(tl)
    return view


def epoll_trace(trigger: str) -> tuple[Trace, dict[str, int]]:
    et = "|ET" if trigger == "edge" else ""
    e = Trace()
    at = {}
    e("mode", mode="epoll", trigger=trigger, policy="keep-alive", multiplexer="epoll")
    e("listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    e("thread_start", name="loop")
    e("epoll_ctl", None, 6, op="ADD", mask="IN" + et)
    e("epoll_ctl", None, 4, op="ADD", mask="IN")
    at["wait0"] = e("epoll_wait", timeout=-1, ready=[(6, 1)])
    e("accept", A, 10, peer="127.0.0.1:50001")
    e("epoll_ctl", A, 10, op="ADD", mask="IN" + et)
    e("accept", B, 11, peer="127.0.0.1:50002")
    at["ctl_b"] = e("epoll_ctl", B, 11, op="ADD", mask="IN" + et)
    e("connect", A, 20, thread=9, src="client", peer="127.0.0.1:7890")
    at["wait1"] = e("epoll_wait", timeout=0.25, ready=[(10, 1), (11, 1)])
    at["recv_a"] = e("recv", A, 10, bytes=93)
    at["send_a"] = e("send", A, 10, bytes=2012, wanted=2012)
    e("send", A, 20, thread=9, src="client", bytes=93, wanted=93)  # another thread: ignored
    at["recv_b"] = e("recv", B, 11, bytes=93)
    at["mod_b"] = e("epoll_ctl", B, 11, op="MOD", mask="IN|OUT" + et)
    at["wait2"] = e("epoll_wait", timeout=0.25, ready=[(11, 5)])
    at["send_b"] = e("send", B, 11, bytes=100, wanted=100)
    at["wait3"] = e("epoll_wait", timeout=0.25, ready=[(10, 1), (11, 1)])
    at["recv_a0"] = e("recv", A, 10, bytes=0)
    at["close_a"] = e("close", A, 10, reason="peer closed")
    at["eagain_b"] = e("eagain", B, 11, op="recv")
    return e, at


@pytest.mark.parametrize("trigger", ["level", "edge"])
def test_epoll_interest_and_ready_lists(view: IoView, trigger: str) -> None:
    e, at = epoll_trace(trigger)
    tl = e.timeline()
    et = "|ET" if trigger == "edge" else ""
    show(view, tl, at["wait0"] - 1)
    assert view.mode == "epoll" and view.trigger == trigger
    assert view.badge == ("EDGE" if trigger == "edge" else "LEVEL")
    assert trigger in view.heading
    assert [(i.fd, i.mask, i.role) for i in view.interest] == [(4, "IN", "wake"),
                                                               (6, "IN" + et, "listen")]
    assert view.ready == [] and view.wait_index == -1
    # The first wait: the listening socket, then the server accepts through it.
    show(view, tl, at["ctl_b"])
    assert [(r.fd, r.status, r.role) for r in view.ready] == [(6, "now", "listen")]
    assert view.now_fd == 6 and view.now_text.endswith("accept → fd 10, 11, watched with epoll_ctl ADD")
    assert view.ready[0].action == "accept → fd 10, 11"
    assert [(i.fd, i.mask, i.conn) for i in view.interest] == [
        (4, "IN", None), (6, "IN" + et, None), (10, "IN" + et, A), (11, "IN" + et, B)]
    # The second wait: two ready fds, handled in order.
    show(view, tl, at["wait1"])
    assert [(r.fd, r.mask, r.status, r.again) for r in view.ready] == [
        (10, "IN", "next", False), (11, "IN", "next", False)]
    assert view.now_fd is None and view.wait_number == 2
    show(view, tl, at["send_a"] + 1)  # the client's send between: not the loop's
    assert [(r.fd, r.status) for r in view.ready] == [(10, "now"), (11, "next")]
    assert view.ready[0].action == "recv 93 B, send 2012 B"
    assert view.now_text.endswith("send 2012 bytes")
    show(view, tl, at["mod_b"])
    assert [(r.fd, r.status) for r in view.ready] == [(10, "done"), (11, "now")]
    assert ("IN|OUT" + et) == next(i.mask for i in view.interest if i.fd == 11)
    # fd 11 again (for writing): "again" marks an fd the previous wait reported too.
    show(view, tl, at["wait2"])
    assert [(r.fd, r.mask, r.again) for r in view.ready] == [(11, "IN|OUT", True)]
    show(view, tl, at["wait3"])
    assert [(r.fd, r.again) for r in view.ready] == [(10, False), (11, True)]
    show(view, tl, at["close_a"])
    assert 10 not in [i.fd for i in view.interest]
    assert view.ready[0].action == "recv 0, close" and view.ready[0].status == "now"
    show(view, tl, at["eagain_b"])
    assert "EAGAIN" in view.now_text and view.now_fd == 11
    # Stepping back un-draws.
    show(view, tl, at["wait1"] - 1)  # (a client's event: the server, done, waits again)
    assert [(r.fd, r.status) for r in view.ready] == [(6, "done")]
    assert view.now_text == "Every ready fd handled: the server is back in epoll_wait, waiting"
    show(view, tl, at["ctl_b"])  # on the server's own last action
    assert [(r.fd, r.status) for r in view.ready] == [(6, "now")]
    assert [i.fd for i in view.interest] == [4, 6, 10, 11]
    show(view, tl, 0)
    assert view.ready == [] and view.interest == [] and view.badge


def test_selectors_masks(view: IoView) -> None:
    e = Trace()
    e("mode", mode="selectors", trigger=None, policy="keep-alive", multiplexer="EpollSelector")
    e("listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    e("epoll_ctl", None, 6, op="ADD", mask="IN")
    e("accept", A, 10, peer="x")
    e("epoll_ctl", A, 10, op="ADD", mask="IN")
    last = e("epoll_wait", timeout=0.25, ready=[(10, 3)])  # selectors: 1 read, 2 write
    view_ = show(view, e.timeline(), last)
    assert view_.badge == "LEVEL" and "EpollSelector" in view_.heading
    assert [(r.fd, r.mask) for r in view_.ready] == [(10, "IN|OUT")]


def threaded_trace() -> tuple[Trace, dict[str, int]]:
    e = Trace()
    at = {}
    e("mode", mode="threaded", trigger=None, policy="keep-alive", multiplexer=None)
    e("listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    e("thread_start", None, -1, thread=1, name="loop")
    at["accept_a"] = e("accept", A, 10, thread=1, peer="x")
    at["start_a"] = e("thread_start", A, 10, thread=100, name="conn-10")
    at["accept_b"] = e("accept", B, 11, thread=1, peer="y")
    at["start_b"] = e("thread_start", B, 11, thread=101, name="conn-11")
    at["recv_a"] = e("recv", A, 10, thread=100, bytes=93)
    at["send_a"] = e("send", A, 10, thread=100, bytes=2012, wanted=2012)
    at["recv_b"] = e("recv", B, 11, thread=101, bytes=93)
    at["part_b"] = e("send", B, 11, thread=101, bytes=1000, wanted=5000)
    at["recv_a0"] = e("recv", A, 10, thread=100, bytes=0)
    at["close_a"] = e("close", A, 10, thread=100, reason="peer closed")
    at["exit_a"] = e("thread_exit", A, -1, thread=100, name="conn-10")
    at["slow_b"] = e("recv", B, 11, thread=101, bytes=1)  # a byte of a request, no more yet
    at["later"] = e("cpu", None, -1, thread=1, percent=1.0)
    return e, at


def test_threaded_lanes(view: IoView) -> None:
    e, at = threaded_trace()
    tl = e.timeline()

    def lanes() -> list[tuple[int, str, str | None, str]]:
        return [(ln.thread, ln.role, ln.conn, ln.activity) for ln in view.lanes]

    show(view, tl, at["accept_a"])
    assert view.heading == "A thread per connection"
    assert lanes() == [(1, "accept", None, "working")]
    assert "accept() → fd 10" in view.lanes[0].text
    show(view, tl, at["start_a"])
    assert lanes() == [(1, "accept", None, "accepting"), (100, "conn", A, "recv_blocked")]
    assert "blocked in recv()" in view.lanes[1].text and view.lanes[1].fd == 10
    show(view, tl, at["recv_a"])
    assert lanes()[1:] == [(100, "conn", A, "working"), (101, "conn", B, "recv_blocked")]
    assert view.lanes[1].text == "read 93 bytes" and view.lanes[1].current
    show(view, tl, at["send_a"])
    assert lanes()[1] == (100, "conn", A, "sending")
    show(view, tl, at["recv_b"])  # A's send is over: it waits in recv again
    assert lanes()[1] == (100, "conn", A, "recv_blocked")
    assert "next request" in view.lanes[1].text and view.lanes[1].last == "send 2012 bytes"
    show(view, tl, at["part_b"] + 1)
    assert lanes()[2] == (101, "conn", B, "sending")
    assert "blocked in send()" in view.lanes[2].text
    show(view, tl, at["close_a"])
    assert lanes()[1] == (100, "conn", A, "closing")
    show(view, tl, at["exit_a"])
    assert [ln.thread for ln in view.lanes] == [1, 101]
    show(view, tl, at["slow_b"])
    assert lanes()[1] == (101, "conn", B, "working")  # the read itself
    show(view, tl, at["later"])  # no request followed: back in recv(), not answering
    assert lanes()[1] == (101, "conn", B, "recv_blocked")
    assert "not complete" in view.lanes[1].text
    show(view, tl, at["accept_b"])  # back: thread 101 not started yet
    assert [ln.thread for ln in view.lanes] == [1, 100]


def test_many_threads_grid(view: IoView, qtbot) -> None:  # type: ignore[no-untyped-def]
    e = Trace()
    e("mode", mode="threaded", trigger=None, policy="keep-alive", multiplexer=None)
    e("listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    e("thread_start", None, -1, thread=1, name="loop")
    for k in range(300):
        conn = f"127.0.0.1:{40000 + k}>127.0.0.1:7890"
        e("accept", conn, 10 + k, thread=1, peer="x")
        e("thread_start", conn, 10 + k, thread=1000 + k, name=f"conn-{10 + k}")
        if k % 3 == 0:  # a whole request read: answering it
            e("recv", conn, 10 + k, thread=1000 + k, bytes=93)
            e("request", conn, 10 + k, thread=1000 + k, method="GET", path="/", version="1.1",
              keep_alive=True)
    show(view, e.timeline(), len(e.events) - 1)
    assert len(view.lanes) == 301 and view.thread_count == 301
    view.grab()  # paints: the main thread as a lane, the rest as a grid
    assert view.hidden_lanes > 250
    assert sum(1 for ln in view.lanes if ln.activity == "working") == 100


def nonblocking_trace() -> tuple[Trace, dict[str, int]]:
    e = Trace()
    at = {}
    e("mode", mode="nonblocking", trigger=None, policy="keep-alive", multiplexer=None)
    e("listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    e("eagain", None, 6, op="accept")
    at["sweep1"] = e("poll_sweep", sockets=1, tries=1, eagain=1, useful=0)
    e("accept", A, 10, peer="x")
    e("accept", B, 11, peer="y")
    e("eagain", None, 6, op="accept")
    e("eagain", A, 10, op="recv")
    e("recv", B, 11, bytes=93)
    e("send", B, 11, bytes=2012, wanted=2012)
    at["sweep2"] = e("poll_sweep", sockets=3, tries=5, eagain=2, useful=3)
    at["next_accept"] = e("eagain", None, 6, op="accept")
    at["next_a"] = e("recv", A, 10, bytes=93)
    return e, at


def test_nonblocking_sweep_and_totals(view: IoView) -> None:
    e, at = nonblocking_trace()
    tl = e.timeline()
    show(view, tl, at["sweep1"])
    assert view.heading == "Non-blocking polling"
    assert view.sweep_complete and view.sweep_number == 1
    assert [(c.fd, c.outcome, c.role) for c in view.sweep] == [(6, "eagain", "listen")]
    assert view.totals == {"sweeps": 1, "tries": 1, "eagain": 1, "useful": 0}
    assert view.wasted_percent == 100.0 and view.ratio_text == "no useful try yet"
    show(view, tl, at["sweep2"])
    assert view.sweep_complete and view.sweep_number == 2
    assert [(c.fd, c.outcome) for c in view.sweep] == [(6, "useful"), (10, "eagain"),
                                                       (11, "useful")]
    assert view.totals == {"sweeps": 2, "tries": 6, "eagain": 3, "useful": 3}
    assert view.wasted_percent == 50.0
    assert view.ratio_text == "1.0 wasted tries for every useful one"
    assert view.history == [(1, 0, 1), (2, 3, 1)]  # EAGAIN per sweep, useful, sweeps
    # The next sweep, in progress: tried so far, and the rest not yet.
    show(view, tl, at["next_accept"])
    assert not view.sweep_complete and view.sweep_number == 3
    assert [(c.fd, c.outcome) for c in view.sweep] == [(6, "eagain"), (10, "untried"),
                                                       (11, "untried")]
    show(view, tl, at["next_a"])
    assert [(c.fd, c.outcome) for c in view.sweep] == [(6, "eagain"), (10, "useful"),
                                                       (11, "untried")]
    assert view.totals["sweeps"] == 2  # totals count finished sweeps
    show(view, tl, at["sweep1"] + 1)  # back
    assert view.totals == {"sweeps": 1, "tries": 1, "eagain": 1, "useful": 0}
    assert [(c.fd, c.outcome) for c in view.sweep] == [(6, "useful"), (10, "untried")]


def test_event_series_survives_late_events() -> None:
    e = Trace()
    for k in range(10):
        e("recv", A, 10, bytes=k + 1)
    tl = e.timeline()
    series = EventSeries(["recv"], value=lambda ev: ev.data["bytes"])
    series.update(tl.log, len(tl.log))
    assert series.v[:, 0].tolist() == [float(k + 1) for k in range(10)]
    # A late recv dated between the 3rd and the 4th is merged into the log.
    late = Event(999, 1_000_000_000 + 2 * 1_000_000 + 500, "server", "recv", A, 10, 1,
                 {"bytes": 100})
    tl.add([late])
    series.update(tl.log, len(tl.log))
    assert series.v[:, 0].tolist() == [1.0, 2.0, 3.0, 100.0] + [float(k + 1)
                                                              for k in range(3, 10)]
    assert series.idx.tolist() == list(range(11))
    assert series.count(3) == 4
    # A new log: everything is read again.
    series.update(EventLog(e.events[:2]), 2)
    assert series.n == 2


def test_event_series_reads_a_big_log_in_slices() -> None:
    e = Trace()
    for k in range(30_000):
        e("recv" if k % 3 else "send", A, 10 + k % 7, bytes=k)
    tl = e.timeline()
    series = EventSeries(["recv"], value=lambda ev: ev.data["bytes"], budget_s=0.0)
    calls = 0
    while calls < 1000:
        calls += 1
        series.update(tl.log, 20_000)
        if series.complete:
            break
    assert calls > 5  # a zero budget still reads 128 events per call
    want = [k for k in range(20_000) if k % 3]
    assert series.v[:, 0].tolist() == [float(k) for k in want]
    assert series.idx.tolist() == want and series.fd.tolist() == [10 + k % 7 for k in want]
    series.update(tl.log, len(tl.log), deadline=float("inf"))  # the rest, at once
    assert series.complete and series.n == 20_000


def test_click_selects_and_exports(view: IoView, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e, at = epoll_trace("level")
    tl = e.timeline()
    view.show()
    show(view, tl, at["wait1"])
    view.grab()
    rect = next(r for r, conn in view._hits if conn == B)
    with qtbot.waitSignal(view.connection_selected, timeout=1000) as signal:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                         pos=QPoint(int(rect.center().x()), int(rect.center().y())))
    assert signal.args == [B]
    view.select(B)
    assert view.selected == B
    for name in ("io.png", "io.svg"):
        view.export(tmp_path / name)
        assert (tmp_path / name).stat().st_size > 2000
    svg = (tmp_path / "io.svg").read_text()
    assert "<svg" in svg and "epoll, level-triggered" in svg and "Ready list" in svg


# ---------------------------------------------------------------- live runs
def record(tmp_path: Path, *mode: str, load: str = "--clients 3 --requests 3 --together"
           ) -> Timeline:
    path = tmp_path / "trace.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode", *mode,
                    "--states", "off", "--packets", "off", f"--load={load}",
                    "--exit-after-load", "--trace", str(path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    tl, _, problems = open_trace(path)
    assert not problems
    return tl


def server_events(tl: Timeline, kind: str) -> list[int]:
    return [i for i in range(len(tl.log)) if tl.log[i].kind == kind
            and tl.log[i].src == "server"]


@pytest.mark.parametrize("trigger", ["level", "edge"])
def test_live_epoll(view: IoView, tmp_path: Path, trigger: str) -> None:
    tl = record(tmp_path, "epoll", "--trigger", trigger)
    waits = [i for i in server_events(tl, "epoll_wait") if tl.log[i].data["ready"]]
    assert waits
    et = "|ET" if trigger == "edge" else ""
    previous = None
    for i in waits[:12]:
        show(view, tl, i)
        assert view.badge == ("EDGE" if trigger == "edge" else "LEVEL")
        ready = [fd for fd, _ in tl.log[i].data["ready"]]
        assert [r.fd for r in view.ready] == ready
        assert all(r.status == "next" for r in view.ready)
        before = [j for j in server_events(tl, "epoll_wait") if j < i]
        again = {fd for fd, _ in tl.log[before[-1]].data["ready"]} if before else set()
        assert [r.again for r in view.ready] == [fd in again for fd in ready]
        listen = [it for it in view.interest if it.role == "listen"]
        assert len(listen) == 1 and listen[0].mask == "IN" + et
        conns = [it for it in view.interest if it.role == "conn"]
        assert all(it.mask.startswith("IN") and it.mask.endswith(et) for it in conns)
        assert {it.fd for it in conns} <= set(tl.state.fds)
        # one step on: the server handles the first ready fd
        show(view, tl, i + 1)
        if tl.log[i + 1].src == "server" and tl.log[i + 1].kind in ("recv", "accept"):
            assert view.ready[0].status == "now"
        previous = i
    assert previous is not None
    show(view, tl, len(tl.log) - 1)
    assert sorted(it.role for it in view.interest) == ["listen", "wake"]  # connections gone


def test_live_threaded(view: IoView, tmp_path: Path) -> None:
    tl = record(tmp_path, "threaded")
    starts = [i for i in server_events(tl, "thread_start") if tl.log[i].conn]
    assert len(starts) == 3
    show(view, tl, starts[-1])
    assert view.heading == "A thread per connection"
    assert view.lanes[0].role == "accept"
    assert {ln.thread for ln in view.lanes} == set(tl.state.threads)
    conn_lanes = [ln for ln in view.lanes if ln.role == "conn"]
    assert len(conn_lanes) == 3
    assert {ln.conn for ln in conn_lanes} == {tl.log[i].conn for i in starts}
    assert conn_lanes[-1].current and conn_lanes[-1].activity == "recv_blocked"
    sends = server_events(tl, "send")
    show(view, tl, sends[0])
    lane = next(ln for ln in view.lanes if ln.thread == tl.log[sends[0]].thread)
    assert lane.activity == "sending" and lane.conn == tl.log[sends[0]].conn
    show(view, tl, len(tl.log) - 1)
    assert [ln.role for ln in view.lanes] in ([], ["accept"])


def test_live_nonblocking(view: IoView, tmp_path: Path) -> None:
    tl = record(tmp_path, "nonblocking", "--sweep-pause", "0.001",
                load="--clients 2 --requests 2 --think 150")  # idle stretches, sockets open
    sweeps = server_events(tl, "poll_sweep")
    assert len(sweeps) > 3
    for i in (sweeps[len(sweeps) // 2], sweeps[-1]):
        show(view, tl, i)
        data = [tl.log[j].data for j in sweeps if j <= i]
        eagain = sum(d["eagain"] for d in data)
        useful = sum(d["useful"] for d in data)
        assert view.totals == {"sweeps": sum(d.get("sweeps", 1) for d in data),
                               "tries": sum(d["tries"] for d in data),
                               "eagain": eagain, "useful": useful}
        assert view.wasted_percent == pytest.approx(100 * eagain / (eagain + useful))
        assert view.sweep_complete and view.sweep[0].role == "listen"
        tried = [c for c in view.sweep if c.outcome != "untried"]
        assert len(tried) <= tl.log[i].data["tries"]
    # An idle stretch, folded into one event: every socket open then, every try EAGAIN.
    folded = [j for j in sweeps if tl.log[j].data.get("sweeps", 1) > 1]
    assert folded, "an idle non-blocking engine folds its idle sweeps"
    j = max(folded, key=lambda k: tl.log[k].data["sockets"])
    assert tl.log[j].data["sockets"] == 3  # the listener and both clients, thinking
    show(view, tl, j)
    n = tl.log[j].data["sweeps"]
    assert view.idle_run is not None and view.idle_run[0] == n
    assert view.sweep and {c.outcome for c in view.sweep} == {"eagain"}
    assert len(view.sweep) == tl.log[j].data["sockets"]  # the listener and each connection
    assert view.sweep_number == view.totals["sweeps"]
    assert view.history[-1][2] == n and view.history[-1][0] == pytest.approx(
        tl.log[j].data["eagain"] / n)


def test_far_jump_into_a_long_sweep_keeps_counting_until_whole(view: IoView, qtbot) -> None:  # type: ignore[no-untyped-def]
    """A lesson step far into a busy run: the totals become whole with the cursor at rest."""
    e = Trace()
    e("mode", mode="nonblocking", trigger="level", policy="keep-alive", multiplexer="none")
    for _ in range(60_000):
        e("poll_sweep", sockets=3, tries=3, eagain=3, useful=0)
    tl = e.timeline()
    view.show()
    show(view, tl, len(tl.log) - 1)
    assert view.totals["sweeps"] < 60_000  # one call reads a slice, within its budget
    qtbot.waitUntil(lambda: view.totals["sweeps"] == 60_000, timeout=20_000)
    assert view.totals == {"sweeps": 60_000, "tries": 180_000, "eagain": 180_000, "useful": 0}


@pytest.mark.parametrize("mode", ["selectors", "epoll"])
def test_a_trace_missing_an_accept_line_is_drawn_at_every_step(view: IoView, tmp_path: Path,
                                                               mode: str) -> None:
    """A trace with a hole (a batch the writer dropped: here the server's first accept
    line taken out of a real recording) must still be drawn at every step, not end in
    a traceback where the ready list's listener action is looked up."""
    record(tmp_path, mode, load="--clients 2 --requests 1 --together")
    path = tmp_path / "trace.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines)
                 if b'"kind":"accept"' in line and b'"src":"server"' in line)
    holed = tmp_path / "holed.jsonl"
    holed.write_bytes(b"".join(lines[:first] + lines[first + 1:]))
    tl, _, _ = open_trace(holed)
    for i in range(min(len(tl.log), 400)):  # bounded: a small recording
        show(view, tl, i)
    assert view.interest


@pytest.mark.parametrize("mode", ["select", "poll", "selectors"])
def test_live_select_poll_and_selectors(view: IoView, tmp_path: Path, mode: str) -> None:
    """Their own calls (wait, interest), not epoll's: the heading names the call, the
    watched set is the interest replayed, and select/poll say how many fds each call
    handed the kernel to scan."""
    tl = record(tmp_path, mode)
    waits = [i for i in server_events(tl, "wait") if tl.log[i].data["ready"]]
    assert waits and not server_events(tl, "epoll_wait") and not server_events(tl, "epoll_ctl")
    for i in waits[:12]:
        show(view, tl, i)
        event = tl.log[i]
        assert view.picture == "readiness" and view.badge == "LEVEL"
        assert [r.fd for r in view.ready] == [fd for fd, _ in event.data["ready"]]
        assert view.wait_number == len([j for j in server_events(tl, "wait") if j <= i])
        if mode == "selectors":
            assert view.call.endswith(".select()") and event.data["call"] in view.call
        else:
            assert view.call == f"{mode}()" and view.heading == f"{mode}(), level-triggered"
            assert view.scanned == event.data["fds"] == len(view.interest)
        assert {"listen", "wake"} <= {it.role for it in view.interest}
    view.grab()
    show(view, tl, len(tl.log) - 1)
    assert sorted(it.role for it in view.interest) == ["listen", "wake"]


def test_live_single(view: IoView, tmp_path: Path) -> None:
    """One thread: serving its client (a connection's calls), then back in accept().
    (Clients that wait for each other would wait for ever: one is served at a time.)"""
    tl = record(tmp_path, "single", load="--clients 3 --requests 3")
    accepts = server_events(tl, "accept")
    closes = server_events(tl, "close")
    assert len(accepts) == 3 and all(c < a for a, c in zip(accepts[1:], closes))  # in turn
    show(view, tl, accepts[0])
    assert view.heading == "One client at a time" and len(view.lanes) == 1
    assert view.lanes[0].conn == tl.log[accepts[0]].conn and "serving" in view.lanes[0].text
    assert view.queue is None  # --states off: nothing observed the queue
    show(view, tl, closes[0])
    assert view.lanes[0].conn is None and view.lanes[0].text == "waiting in accept() for the next client"
    view.grab()


def test_live_gevent(view: IoView, tmp_path: Path) -> None:
    """A real gevent run: the hub first, then one lane per greenlet; whoever made the
    latest server event runs, the others are parked where their recv() said EAGAIN."""
    tl = record(tmp_path, "gevent", load="--clients 3 --requests 2 --think 50")
    starts = server_events(tl, "task_start")
    assert len(starts) == 3
    names = {tl.log[i].data["name"] for i in starts}
    requests = server_events(tl, "request")
    parked = server_events(tl, "eagain")
    # A request after every greenlet has started and parked once: its greenlet runs.
    i = next(r for r in requests if r > starts[-1] and r > parked[2])
    show(view, tl, i)
    assert view.heading == "gevent: a greenlet per connection, one OS thread"
    hub, *lanes = view.lanes
    assert hub.name == "hub" and "over libev" in hub.sub
    assert {ln.name for ln in lanes} == names and {ln.conn for ln in lanes} == \
        {tl.log[k].conn for k in starts}
    running = [ln for ln in lanes if ln.current]
    assert [ln.conn for ln in running] == [tl.log[i].conn]
    assert running[0].text.startswith("runs now: answering GET")
    others = [ln for ln in lanes if not ln.current]
    assert others and all(ln.activity == "parked" for ln in others)
    for ln in others:  # parked where its own last event was an EAGAIN, on its own fd
        last = max(k for k in range(i + 1) if tl.log[k].src == "server"
                   and tl.log[k].conn == ln.conn and tl.log[k].kind != "task_start")
        assert tl.log[last].kind == "eagain" and f"fd {ln.fd}" in ln.text
        assert tl.log[last].fd == ln.fd
    # Back from the hub's epoll_wait: the hub lane runs, every greenlet is parked.
    waits = [k for k in server_events(tl, "wait") if k > starts[-1]]
    show(view, tl, waits[0])
    assert view.lanes[0].current and view.lanes[0].text.startswith("back from epoll_wait")
    assert not any(ln.current for ln in view.lanes[1:])
    show(view, tl, len(tl.log) - 1)
    assert view.lanes[1:] == []  # every greenlet ended


def test_live_asyncio(view: IoView, tmp_path: Path) -> None:
    """A real asyncio run: the event loop reads for the streams in its callbacks (by
    "loop"), so a task can have its bytes before it runs; the task that made the
    latest event of its own (a request) is the one that runs."""
    tl = record(tmp_path, "asyncio", load="--clients 3 --requests 2 --think 50")
    starts = server_events(tl, "task_start")
    assert len(starts) == 3
    names = {tl.log[i].data["name"] for i in starts}
    assert all(n.startswith("Task-") for n in names)  # asyncio's own names
    recvs = server_events(tl, "recv")
    assert recvs and all(tl.log[i].data["by"] == "loop" for i in recvs)
    i = next(r for r in server_events(tl, "request") if r > starts[-1])
    show(view, tl, i)
    assert view.heading == "asyncio: a task per connection, one OS thread"
    hub, *lanes = view.lanes
    assert hub.name == "event loop" and hub.sub == "over EpollSelector" and not hub.current
    assert {ln.name for ln in lanes} == names
    running = [ln for ln in lanes if ln.current]
    assert [ln.conn for ln in running] == [tl.log[i].conn]
    for ln in lanes:
        if ln.current:
            continue
        last = max(k for k in range(i + 1) if tl.log[k].src == "server"
                   and tl.log[k].conn == ln.conn and tl.log[k].kind in ("recv", "send", "request",
                                                                        "response", "accept"))
        if tl.log[last].kind == "recv":  # read by the loop, not yet by the task
            assert ln.text.startswith(f"the loop read {tl.log[last].data['bytes']} bytes")
        else:
            assert ln.text.startswith("awaiting reader.read()") and f"fd {ln.fd}" in ln.text
    # A loop callback's recv: the event loop runs, no task does.
    k = next(r for r in recvs if r > i)
    show(view, tl, k)
    assert view.lanes[0].current and "read" in view.lanes[0].text
    assert not any(ln.current for ln in view.lanes[1:])
    show(view, tl, len(tl.log) - 1)
    assert view.lanes[1:] == []


@pytest.mark.parametrize("keep", [False, True], ids=["closes-its-copy", "keeps-its-copy"])
def test_live_processes(view: IoView, tmp_path: Path, keep: bool) -> None:
    """A real forking run: the parent, then a lane per child alive, each saying whether
    the parent still holds its copy of the child's socket."""
    tl = record(tmp_path, "processes", "--policy", "close",
                *(["--keep-parent-copy"] if keep else []),
                load="--clients 2 --requests 1 --think 50 --timeout 1")
    forks = server_events(tl, "fork")
    assert len(forks) == 2
    show(view, tl, forks[0])
    assert view.heading == "A process per connection"
    parent, child = view.lanes
    child_pid = tl.log[forks[0]].data["child"]
    assert parent.name == "parent" and parent.current and f"child {child_pid}" in parent.text
    assert child.name == f"child {child_pid}" and child.sub == "parent's copy: open"
    closes = [i for i in server_events(tl, "close") if tl.log[i].conn == tl.log[forks[0]].conn]
    if keep:  # the child's close is not the last; the parent's comes when the server stops
        i, last = closes
        assert (tl.log[i].data["copy"], tl.log[i].data["last"]) == ("child", False)
        assert (tl.log[last].data["copy"], tl.log[last].data["last"]) == ("parent", True)
        assert tl.log[last].data["reason"] == "server stopping"
        show(view, tl, i)
        lane = next(ln for ln in view.lanes if ln.name == f"child {child_pid}")
        assert "not the last copy" in lane.text and lane.sub == "parent's copy: open"
        show(view, tl, server_events(tl, "process_exit")[-1] + 1)  # the children are gone
        assert len(view.lanes) == 1 and "holds 2 copies" in view.lanes[0].text
    else:
        first, second = closes
        assert (tl.log[first].data["copy"], tl.log[first].data["last"]) == ("parent", False)
        assert (tl.log[second].data["copy"], tl.log[second].data["last"]) == ("child", True)
        show(view, tl, first)
        assert "the child's is the last one" in view.lanes[0].text
        assert view.lanes[1].sub == "parent's copy: closed"
        show(view, tl, second)
        lane = next(ln for ln in view.lanes if ln.name == f"child {child_pid}")
        assert lane.text == f"close(fd {tl.log[second].fd}): the last copy: FIN"
        show(view, tl, len(tl.log) - 1)
        assert [ln.name for ln in view.lanes] == ["parent"]


def test_a_version_1_selectors_trace_still_opens_and_draws(view: IoView) -> None:
    """Recorded by the release before the mode registry (trace version 1), when the
    selectors mode recorded its calls as epoll_wait/epoll_ctl: it opens, and the io view
    draws its interest and ready lists."""
    from engine.trace import VERSION, read_trace
    path = ROOT / "tests" / "data" / "v1-selectors.jsonl"
    trace = read_trace(path)
    assert trace.header["version"] == 1 < VERSION and not trace.problems
    tl, _, problems = open_trace(path)
    assert not problems
    waits = [i for i in server_events(tl, "epoll_wait") if tl.log[i].data["ready"]]
    assert waits
    show(view, tl, waits[-1])
    assert view.mode == "selectors" and "EpollSelector" in view.heading
    assert [r.fd for r in view.ready] == [fd for fd, _ in tl.log[waits[-1]].data["ready"]]
    assert {it.role for it in view.interest} >= {"listen", "wake"}
