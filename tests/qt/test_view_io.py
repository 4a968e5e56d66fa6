"""The I/O-model view: what it draws for each mode, at the cursor, from synthetic
traces and from live runs of the real engine."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from unittest.mock import patch

import pytest
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QPainter

from engine.events import Event
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.model.series import EventSeries
from visualizer import textaudit
from visualizer.textaudit import TextAudit
from visualizer.views import style
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


def record_with(tmp_path: Path, *options: str, load: str) -> Timeline:
    """A run of the real engine with ``options`` as given (states, packets...)."""
    path = tmp_path / "trace.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", *options,
                    f"--load={load}", "--exit-after-load", "--trace", str(path)],
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
    # the sweeps the recording counted up to here, the folded run's included (not the
    # view's own total: the two views of one count would agree however wrong)
    swept = sum(tl.log[k].data.get("sweeps", 1) for k in sweeps if k <= j)
    assert view.sweep_number == swept and view.totals["sweeps"] == swept
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


# ---------------------------------------------------------------- fitting, zoomed in
# The view's size in presentation layout (under the slide's caption) at 1280x720 and
# 1920x1080, and the window's.
SLIDE_SIZES = [(1244, 460), (1884, 790), (1280, 720)]


@pytest.fixture
def zoom200():  # type: ignore[no-untyped-def]
    before = style.ZOOM
    style.set_zoom(2.0)
    yield 2.0
    style.set_zoom(before)


def unfit(view: IoView, size: tuple[int, int]) -> list[str]:
    """Every text the view's picture cuts, lets out of the view (even wholly) or lays
    on another, every text it had to shorten (…), and every fd number set too small to
    read (under 0.7 of the view's body type), painted at ``size``."""
    view.resize(*size)
    sizes: list[tuple[str, float]] = []
    draw = QPainter.drawText

    def spy(painter: QPainter, *args: object) -> object:
        text = next((a for a in args if isinstance(a, str)), "")
        sizes.append((text, painter.font().pointSizeF()))
        return draw(painter, *args)

    everywhere = QRectF(-1e6, -1e6, 2e6, 2e6)  # the audit skips what lies wholly outside
    with patch.object(textaudit, "_visible", lambda device: everywhere), \
            patch.object(QPainter, "drawText", spy), TextAudit() as audit:
        view.grab()
    found = [f"{size}: {f}" for f in audit.findings()]
    inside = QRectF(view.rect()).adjusted(-1.5, -1.5, 1.5, 1.5)
    found += [f"{size}: outside the view: {d.text!r} at {d.rect.x():.0f},{d.rect.y():.0f}"
              for d in audit.drawn if not inside.contains(d.rect)]
    found += [f"{size}: shortened: {t!r}" for t in view.elided]
    body = view._font(1.0).pointSizeF()
    found += [f"{size}: fd {t} set at {pt:.1f} pt (the body's {body:.1f})"
              for t, pt in sizes if t.isdigit() and pt < 0.7 * body]
    return found


def painted(view: IoView) -> list[str]:
    """The texts one paint of the view draws."""
    with TextAudit() as audit:
        view.grab()
    return [d.text for d in audit.drawn]


def test_nonblocking_fits_at_200_percent(view: IoView, tmp_path: Path, zoom200) -> None:  # type: ignore[no-untyped-def]
    """The sweep, its legend and the totals (the big percentage, the wasted tries for
    every useful one) all inside the view, apart, whole: a real run, zoomed in."""
    tl = record(tmp_path, "nonblocking", "--sweep-pause", "0.001",
                load="--clients 2 --requests 2 --think 150")
    sweeps = server_events(tl, "poll_sweep")
    folded = [j for j in sweeps if tl.log[j].data.get("sweeps", 1) > 1]
    useful = [j for j in sweeps if tl.log[j].data.get("useful", 0) > 0]
    assert folded and useful
    view.show()
    found: list[str] = []
    for i in (useful[0], folded[-1], useful[-1] + 1, sweeps[-1]):
        show(view, tl, i)
        assert view.totals["sweeps"] > 0
        for size in SLIDE_SIZES:
            found += unfit(view, size)
    assert not found, "\n".join(found[:30])


def test_epoll_with_many_fds_fits_at_200_percent(view: IoView, tmp_path: Path, zoom200) -> None:  # type: ignore[no-untyped-def]
    """A hundred connections and more, three-digit fds: the interest list is chips whose
    numbers fit them, or squares under a summary when a number could not be read; its
    legend, the ready list and the line at the bottom lie apart."""
    tl = record(tmp_path, "epoll", load="--clients 110 --requests 2 --think 300 --together")
    waits = [i for i in server_events(tl, "epoll_wait") if tl.log[i].data["ready"]]
    busiest = max(waits, key=lambda i: len(tl.log[i].data["ready"]))
    view.show()
    found: list[str] = []
    seen = 0
    for i in (busiest, busiest + 1, waits[len(waits) // 2]):
        show(view, tl, i)
        seen = max(seen, len(view.interest))
        for size in SLIDE_SIZES:
            found += unfit(view, size)
    assert seen > 100 and max(it.fd for it in view.interest) >= 100
    style.set_zoom(1.0)  # and at 100 %, where the chips are labelled
    show(view, tl, busiest)
    for size in SLIDE_SIZES:
        found += unfit(view, size)
    assert not found, "\n".join(found[:30])


def test_threads_keep_readable_lanes_at_200_percent(view: IoView, tmp_path: Path, zoom200) -> None:  # type: ignore[no-untyped-def]
    """More threads than lanes fit: as many readable lanes as fit (not one lane and a
    field of squares), the rest counted by what they do, every text whole."""
    tl = record(tmp_path, "threaded", load="--clients 10 --requests 2 --think 200 --together")
    starts = [i for i in server_events(tl, "thread_start") if tl.log[i].conn]
    assert len(starts) == 10
    view.show()
    show(view, tl, starts[-1])
    assert len(view.lanes) == 11
    found = unfit(view, (1244, 460))
    drawn = len(view.lanes) - view.hidden_lanes
    assert 3 <= drawn < 11, drawn  # folded, yet lanes, not squares
    assert any(t.startswith(f"{view.hidden_lanes} more threads") for t in painted(view))
    for size in SLIDE_SIZES[1:]:
        found += unfit(view, size)
    assert not found, "\n".join(found[:30])


# ---------------------------------------------------------------- unread bytes
NO_DRAIN_LOAD = "--clients 1 --requests 24 --pipeline 12 --think 200 --timeout 1.0"
DERIVED_LEGEND = "B unread: derived from the segments and the reads"


@pytest.mark.parametrize("packets", ["auto", "derived"])
def test_unread_bytes_of_edge_triggered_without_draining(view: IoView, tmp_path: Path,
                                                         packets: str) -> None:
    """Edge-triggered, one recv(1024) per report: the bytes the kernel holds and the
    server never read are on the connection's chip and ready row, with their number
    and where it comes from (the segments, captured or derived, and the reads:
    derived), until read."""
    tl = record_with(tmp_path, "--mode", "epoll", "--trigger", "edge", "--no-drain",
                     "--states", "off", "--packets", packets, load=NO_DRAIN_LOAD)
    first = server_events(tl, "recv")[0]
    conn = tl.log[first].conn
    assert tl.log[first].data["bytes"] == 1024
    gave_up = next(i for i in range(first, len(tl.log)) if tl.log[i].kind == "close"
                   and tl.log[i].src == "client")
    # (the client's send event may come after the server's read: it is written once
    # the call returns)
    sent = sum(tl.log[i].data["bytes"] for i in range(gave_up) if tl.log[i].kind == "send"
               and tl.log[i].src == "client" and tl.log[i].conn == conn)
    left = sent - 1024
    assert left == 92  # the twelfth request, less its first byte
    view.show()
    show(view, tl, first)
    assert view.unread == {conn: (left, "derived")}
    texts = painted(view)
    assert f"{left} B unread" in texts  # on the chip: the number alone, since ...
    assert DERIVED_LEGEND in texts  # ... the legend under the list says where it comes from
    assert f"{left} B unread (derived)" in texts  # on the ready row
    # The stall: the loop asleep in epoll_wait, the bytes still there, and it says so,
    # with where the number comes from.
    stall = next(k for k in range(gave_up - 1, first, -1) if tl.log[k].src != "server")
    show(view, tl, stall)
    assert view.unread == {conn: (left, "derived")}
    assert view.now_text.endswith(
        f"though fd {tl.log[first].fd} still holds {left} unread bytes (derived)")
    texts = painted(view)
    assert f"{left} B unread (derived)" in texts and DERIVED_LEGEND in texts
    assert view.now_text in texts  # the footer
    # The client gives up and closes: its FIN is new, an edge, and the next wait reports
    # the fd: no stall from then on, though the bytes are still there until read.
    late = next(i for i in server_events(tl, "recv") if i > gave_up)
    for k in range(gave_up, late):  # a few steps
        show(view, tl, k)
        assert "still holds" not in view.now_text, (k, tl.log[k])
    # Reported again, the bytes read, too late: nothing unread.
    assert tl.log[late].data["bytes"] == left
    show(view, tl, late)
    assert view.unread == {}


def test_unread_bytes_are_not_guessed(view: IoView, tmp_path: Path) -> None:
    """No segments, no kernel observer: nothing tells the unread bytes, none are shown."""
    tl = record_with(tmp_path, "--mode", "epoll", "--trigger", "edge", "--no-drain",
                     "--states", "off", "--packets", "off", load=NO_DRAIN_LOAD)
    first = server_events(tl, "recv")[0]
    assert tl.log[first].data["bytes"] == 1024
    view.show()
    show(view, tl, first)
    assert view.unread == {}
    assert not any("unread" in t for t in painted(view))


def test_unread_bytes_observed_while_nothing_moved(view: IoView) -> None:
    """The kernel's report (sock_diag's Recv-Q) is shown as observed while no segment
    and no read since can have changed it; after a read, the segments and reads tell
    (derived); with neither, nothing."""
    e = Trace()
    e("mode", mode="epoll", trigger="edge", policy="keep-alive", multiplexer="epoll")
    e("listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    e("packet", A, -1, src="capture", sport=50001, dport=7890, flags="SYN", tcp_seq=1000,
      ack=0, len=0, origin="captured")
    e("accept", A, 10, peer="127.0.0.1:50001")
    e("epoll_ctl", A, 10, op="ADD", mask="IN|ET")
    e("packet", A, -1, src="capture", sport=50001, dport=7890, flags="PSH|ACK", tcp_seq=1001,
      ack=1, len=300, origin="captured")
    t_seen = e.events[-1].t_ns + 1
    seen = e("state_check", A, -1, src="kernel", side="server", state="ESTABLISHED",
             source="observed", rqueue=300, wqueue=0, seen_from_ns=t_seen, verdict="confirms")
    wait = e("epoll_wait", timeout=-1, ready=[(10, 1)])
    read = e("recv", A, 10, bytes=200)
    tl = e.timeline()
    show(view, tl, seen - 1)  # the segments alone: derived
    assert view.unread == {A: (300, "derived")}
    show(view, tl, seen)  # the kernel's word, nothing moved since the dump began
    assert view.unread == {A: (300, "observed")}
    show(view, tl, wait)
    assert view.unread == {A: (300, "observed")}
    show(view, tl, read)  # the read moved it since the report
    assert view.unread == {A: (100, "derived")}
    # Without the segments, the stale report is not a number.
    bare = Trace()
    for ev in e.events:
        if ev.kind != "packet":
            bare(ev.kind, ev.conn, ev.fd, ev.thread, ev.src, **ev.data)
    tl = bare.timeline()
    show(view, tl, len(tl.log) - 2)
    assert view.unread == {A: (300, "observed")}
    show(view, tl, len(tl.log) - 1)
    assert view.unread == {}


# ---------------------------------------------------------------- the accept queue
def test_the_accept_queue_says_linux_admits_backlog_plus_one(view: IoView, tmp_path: Path) -> None:
    """listen(1): the kernel's accept queue holds 2 connections, not 1, and the picture
    says so with the queue the kernel observer reported."""
    tl = record_with(tmp_path, "--mode", "epoll", "--backlog", "1", "--states", "observed",
                     "--packets", "off", load="--clients 3 --requests 1 --together")
    queued = [i for i in range(len(tl.log)) if tl.log[i].kind == "accept_queue"]
    if not queued:
        pytest.skip("the kernel observer (sock_diag, /proc) cannot run here")
    first_wait = server_events(tl, "epoll_wait")[0]
    view.show()
    show(view, tl, first_wait)
    assert view.queue is not None and view.queue[1] == 1
    texts = painted(view)
    assert any("backlog 1: Linux queues up to 2" in t for t in texts), texts


# ---------------------------------------------------------------- review: unread bytes
def record_held_before_read(tmp_path: Path, *options: str, load: str) -> Timeline:
    """A stepped run of the real engine (--step): every action is let go, one at a time,
    until the server is held before its first recv(); there it stays until the kernel
    observer has reported the server's end in CLOSE_WAIT (the client's FIN arrived,
    nothing read yet), then it runs freely to the end of the load. Bounded throughout."""
    import queue
    import threading
    import time
    path = tmp_path / "held.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0", "--step",
                             *options, f"--load={load}", "--exit-after-load", "--trace", str(path)],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()

    def say(word: str) -> None:
        proc.stdin.write(word + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    try:
        for _ in range(40):  # a handful of actions come before the first recv
            line = lines.get(timeout=20)
            assert line, "the server stopped before its first recv"
            if line.startswith("held before recv"):
                break
            if line.startswith("held before "):
                say("")
        else:
            raise AssertionError("never held before a recv")
        for _ in range(200):  # the observer asks every 5 ms; the trace is flushed every 50
            text = path.read_bytes() if path.exists() else b""
            if any(b'"CLOSE_WAIT"' in ln and b'"side":"server"' in ln for ln in text.splitlines()):
                break
            time.sleep(0.05)
        say("c")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    tl, _, problems = open_trace(path)
    assert not problems
    return tl


def test_a_received_fin_is_not_an_unread_byte(view: IoView, tmp_path: Path) -> None:
    """sock_diag's Recv-Q is rcv_nxt - copied_seq, and a received FIN advances rcv_nxt:
    held before its first recv(), the server's end in CLOSE_WAIT holds the request and
    the client's FIN, and the kernel says one byte more than the request. The view
    shows the request's bytes, as observed, not the FIN as a byte."""
    tl = record_held_before_read(tmp_path, "--mode", "epoll", "--states", "observed",
                                 "--packets", "auto",
                                 load="--clients 1 --requests 1 --half-close --timeout 10")
    recv = server_events(tl, "recv")[0]
    conn = tl.log[recv].conn
    seen = [i for i in range(recv) if tl.log[i].kind == "tcp_state" and tl.log[i].conn == conn
            and tl.log[i].data.get("side") == "server"
            and tl.log[i].data.get("state") == "CLOSE_WAIT"]
    if not seen:
        pytest.skip("the kernel observer (sock_diag, /proc) cannot run here")
    sent = sum(e.data["bytes"] for e in tl.log[:recv] if e.kind == "send" and e.src == "client")
    assert sent > 0 and tl.log[seen[-1]].data["rqueue"] == sent + 1  # the kernel counts the FIN
    wait = max(i for i in server_events(tl, "epoll_wait") if i < recv)
    at = max(wait, seen[-1])  # the server waits, its fd ready, the report the latest word
    view.show()
    show(view, tl, at)
    assert conn in [r.conn for r in view.ready]
    assert view.unread == {conn: (sent, "observed")}
    texts = painted(view)
    assert f"{sent} B unread (observed)" in texts
    assert "B unread: observed by the kernel (Recv-Q)" in texts


def unread_series(events: list[tuple]) -> tuple[object, EventLog]:
    """One connection's series read from hand-built events (src, kind, data)."""
    from visualizer.views.io import _ConnSeries
    log = EventLog([Event(n + 1, 1_000_000_000 + n * 1_000_000, src, kind, A, -1, 0, data)
                    for n, (src, kind, data) in enumerate(events)])
    series = _ConnSeries(A)
    series.update(log, len(log), deadline=float("inf"))
    assert series.complete
    return series, log


def pkt(seq: int, n: int = 0, flags: str = "PSH|ACK", **extra: object) -> tuple:
    return ("capture", "packet", dict(sport=50001, dport=7890, flags=flags, tcp_seq=seq, ack=1,
                                      len=n, origin="captured", **extra))


def observed(state: str, rqueue: int, since: int) -> tuple:
    return ("kernel", "tcp_state", dict(side="server", state=state, source="observed",
                                        rqueue=rqueue, seen_from_ns=since))


def test_a_received_fin_and_the_reads_that_passed_it() -> None:
    """The FIN is taken off an observed Recv-Q in the states that received it, unless a
    recv() returned 0 (past the FIN) before the dump began; and never below 0 (a recv
    that reached the FIN took it already)."""
    from visualizer.views.io import unread_at
    t = 1_000_000_000 + 4 * 1_000_000 + 1  # after the FIN, before the report
    series, log = unread_series([
        pkt(1000, flags="SYN"), pkt(1001, 100), ("server", "recv", {"bytes": 100}),
        pkt(1101, flags="FIN|ACK"), ("server", "recv", {"bytes": 0}),
        observed("CLOSE_WAIT", 1, t + 1_000_000), observed("CLOSE_WAIT", 0, t + 2_000_000)])
    assert unread_at(series, 5) == (1, "observed")  # the recv reached the FIN before the dump
    assert unread_at(series, 6) == (0, "observed")
    series, log = unread_series([  # everything read, then the FIN: Recv-Q 1, nothing unread
        pkt(1000, flags="SYN"), pkt(1001, 100), ("server", "recv", {"bytes": 100}),
        pkt(1101, flags="FIN|ACK"), observed("CLOSE_WAIT", 1, t)])
    assert unread_at(series, 4) == (0, "observed")
    series, log = unread_series([
        pkt(1000, flags="SYN"), pkt(1001, 100), pkt(1101, flags="FIN|ACK"),
        ("server", "recv", {"bytes": 100}),  # took the data and the FIN behind it
        observed("CLOSE_WAIT", 0, 1_000_000_000 + 3_000_001),
        observed("ESTABLISHED", 7, 1_000_000_000 + 3_000_001)])  # (made up: no FIN counted)
    assert unread_at(series, 4) == (0, "observed")  # not -1
    assert unread_at(series, 5) == (7, "observed")


def test_the_derived_recv_q_reads_one_origin_one_connection_and_what_arrived() -> None:
    """Captured segments carry absolute sequence numbers, derived ones relative (ISN 0):
    one origin is read, captured if any. A port pair used again begins anew at its
    latest SYN. A segment the lab's fault dropped never arrived."""
    from visualizer.views.io import unread_at
    rel = dict(origin="derived", relative=True, sender="client")
    series, _ = unread_series([
        ("engine", "packet", dict(sport=50001, dport=7890, flags="SYN", tcp_seq=0, ack=0,
                                  len=0, **rel)),
        pkt(3_000_000_000, flags="SYN"),
        ("engine", "packet", dict(sport=50001, dport=7890, flags="PSH|ACK", tcp_seq=1, ack=1,
                                  len=93, **rel)),
        pkt(3_000_000_001, 93)])
    assert unread_at(series, 2) == (0, "derived")  # not the derived segment's 93 ...
    assert unread_at(series, 3) == (93, "derived")  # ... nor 3,000,000,093
    series, _ = unread_series([  # captured preferred, whichever SYN came last
        pkt(3_000_000_000, flags="SYN"),
        ("engine", "packet", dict(sport=50001, dport=7890, flags="SYN", tcp_seq=0, ack=0,
                                  len=0, **rel)),
        pkt(3_000_000_001, 93)])
    assert unread_at(series, 2) == (93, "derived")
    # The same port pair again: the old connection's SYN, bytes and reads are not this one's.
    series, _ = unread_series([
        pkt(1000, flags="SYN"), pkt(1001, 500), ("server", "recv", {"bytes": 500}),
        pkt(1501, flags="FIN|ACK"), ("server", "recv", {"bytes": 0}),
        pkt(900_000, flags="SYN"), pkt(900_001, 93)])
    assert unread_at(series, 6) == (93, "derived")
    # A dropped segment (a lab fault): not arrived until it is sent again.
    series, _ = unread_series([
        pkt(1000, flags="SYN"), pkt(1001, 100, dropped="drop-data"), pkt(1001, 100)])
    assert unread_at(series, 1) == (0, "derived")
    assert unread_at(series, 2) == (100, "derived")


# ---------------------------------------------------------------- review: the stall sentence
STALL = "still holds"


@pytest.mark.parametrize("trigger, options, load", [
    ("edge", (), "--clients 2 --requests 4 --think 60"),  # drains to EAGAIN, then new arrivals
    ("level", ("--no-drain",), NO_DRAIN_LOAD)],  # leaves bytes, but the next wait reports them
    ids=["edge-draining", "level-without-draining"])
def test_no_stall_is_said_where_the_next_wait_reports_the_bytes(
        view: IoView, tmp_path: Path, trigger: str, options: tuple[str, ...], load: str) -> None:
    """"Back in epoll_wait, though fd N still holds B unread bytes" is edge-triggered's
    stall: bytes the server left at its last call on the fd, that no report will name.
    A server that drained to EAGAIN, whose next request's segment then arrives, has
    a new edge coming; under level-triggered epoll every wait names an fd holding
    bytes. At no step of either run is a stall said, though the bytes are shown."""
    tl = record_with(tmp_path, "--mode", "epoll", "--trigger", trigger, *options,
                     "--states", "off", "--packets", "auto", load=load)
    shown = waiting = 0
    for i in range(len(tl.log)):  # a small recording: every step
        show(view, tl, i)
        assert STALL not in view.now_text, (i, view.now_text)
        shown += bool(view.unread)
        waiting += bool(view.unread) and view.now_text.startswith("Every ready fd handled")
    assert shown and waiting  # bytes unread while the server waits: the case in question


def test_one_unread_byte_is_one_byte(view: IoView, tmp_path: Path) -> None:
    """Edge-triggered without draining, a pipeline of 1025 bytes read by one recv(1024):
    the stall says "1 unread byte", not "1 unread bytes"."""
    path = "/" + "a" * 112  # 5 requests of 205 bytes (92 + the path's 113)
    tl = record_with(tmp_path, "--mode", "epoll", "--trigger", "edge", "--no-drain",
                     "--states", "off", "--packets", "auto",
                     load=f"--clients 1 --requests 10 --pipeline 5 --path {path} --timeout 1.0")
    first = server_events(tl, "recv")[0]
    conn = tl.log[first].conn
    gave_up = next(i for i in range(first, len(tl.log)) if tl.log[i].kind == "close"
                   and tl.log[i].src == "client")
    sent = sum(tl.log[i].data["bytes"] for i in range(gave_up) if tl.log[i].kind == "send"
               and tl.log[i].src == "client" and tl.log[i].conn == conn)
    assert (sent, tl.log[first].data["bytes"]) == (1025, 1024)
    stall = next(k for k in range(gave_up - 1, first, -1) if tl.log[k].src != "server")
    show(view, tl, stall)
    assert view.unread[conn][0] == 1
    assert view.now_text.endswith(f"though fd {tl.log[first].fd} still holds 1 unread byte "
                                  f"({view.unread[conn][1]})")


# ---------------------------------------------------------------- review: the queue, restarted
def test_the_accept_queue_of_a_previous_run_is_not_shown_after_a_restart(
        view: IoView, tmp_path: Path) -> None:
    """Two real runs in one trace (a lesson restarts the engine): once the second has
    started and listened, the first run's report is not its queue, and until the
    kernel observer reports the new listening socket the picture says so."""
    from engine.trace import read_trace
    events = []
    for k, mode in enumerate(("single", "epoll")):
        (tmp_path / mode).mkdir()
        record_with(tmp_path / mode, "--mode", mode, "--backlog", "4", "--states", "observed",
                    "--packets", "off", load="--clients 2 --requests 1")
        events += read_trace(tmp_path / mode / "trace.jsonl").events
    tl = Timeline(EventLog(events))
    tl.live = False
    log = tl.log
    modes = [i for i in range(len(log)) if log[i].kind == "mode"]
    reports = [i for i in range(len(log)) if log[i].kind == "accept_queue"]
    if not reports:
        pytest.skip("the kernel observer (sock_diag, /proc) cannot run here")
    listen = next(i for i in range(modes[1], len(log)) if log[i].kind == "listen")
    assert any(r < modes[1] for r in reports)  # the first run's queue was reported
    view.show()
    show(view, tl, max(r for r in reports if r < modes[1]))
    assert view.queue is not None and view.queue[1] == 4
    show(view, tl, modes[1])  # the new engine, not listening yet: no queue to speak of
    assert view.queue is None
    assert not any(t.startswith("Accept queue") for t in painted(view))
    show(view, tl, listen)  # listening, not reported yet
    assert view.queue is None
    assert "Accept queue: not observed yet since the server started listening" in painted(view)
    later = next(r for r in reports if r > listen)
    show(view, tl, later)
    assert view.queue == (log[later].data["length"], log[later].data["backlog"])


# ---------------------------------------------------------------- review: null fields
def test_null_fields_a_trace_may_hold_are_drawn(view: IoView, tmp_path: Path) -> None:
    """The trace reader accepts null for a poll_sweep's sweeps and since_ns (and an
    EAGAIN's op): a real non-blocking recording with them null is drawn at every step,
    a null run of sweeps counted as one sweep, a folded run without its start as lasting
    no time."""
    import json
    record(tmp_path, "nonblocking", "--sweep-pause", "0.001",
           load="--clients 1 --requests 2 --think 100")
    path = tmp_path / "trace.jsonl"
    nulled, total = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        row = json.loads(line)
        if row.get("kind") == "poll_sweep":
            total += row.get("sweeps") or 1
            if (row.get("sweeps") or 1) > 1:
                row["since_ns"] = None  # a folded run of idle sweeps: its start unknown
            else:
                row["sweeps"] = None
        elif row.get("kind") == "eagain":
            row["op"] = None
        nulled.append(json.dumps(row).encode() + b"\n")
    (tmp_path / "nulled.jsonl").write_bytes(b"".join(nulled))
    tl, _, problems = open_trace(tmp_path / "nulled.jsonl")
    assert not problems
    sweeps = server_events(tl, "poll_sweep")
    folded = [i for i in sweeps if tl.log[i].data["sweeps"] is not None]
    assert folded and len(folded) < len(sweeps)  # both kinds of null
    view.show()
    for i in range(0, len(tl.log), max(1, len(tl.log) // 300)):  # bounded: ~300 steps
        show(view, tl, i)
    show(view, tl, folded[-1])
    assert view.idle_run == (tl.log[folded[-1]].data["sweeps"], 0.0)
    view.grab()
    show(view, tl, sweeps[-1])
    assert view.totals["sweeps"] == total
    view.grab()


def test_a_loop_wait_without_its_call_is_drawn(view: IoView, tmp_path: Path) -> None:
    """A real asyncio recording whose waits lost their "call" (null, or left out: the
    reader accepts both): the event loop's lane still says it is back from its wait."""
    import json
    record(tmp_path, "asyncio", load="--clients 2 --requests 1")
    rows = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_bytes().splitlines()]
    waits = [row for row in rows if row.get("kind") == "wait"]
    assert waits and all("call" in row for row in waits)
    for k, row in enumerate(waits):
        if k % 2:
            row["call"] = None
        else:
            del row["call"]
    (tmp_path / "nocall.jsonl").write_bytes(b"".join(json.dumps(r).encode() + b"\n"
                                                     for r in rows))
    tl, _, problems = open_trace(tmp_path / "nocall.jsonl")
    assert not problems
    for i in server_events(tl, "wait"):
        show(view, tl, i)
        assert view.lanes[0].current and view.lanes[0].text.startswith("back from")


# ---------------------------------------------------------------- review: the cost of a frame
def busy_trace(conns: int = 40, rounds: int = 150) -> Trace:
    """Level-triggered epoll, ``conns`` keep-alive connections, each sent ``rounds``
    captured segments, read now and then."""
    e = Trace()
    e("mode", mode="epoll", trigger="level", policy="keep-alive", multiplexer="epoll")
    e("listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    e("thread_start", name="loop")
    ids = [f"127.0.0.1:{40000 + c}>127.0.0.1:7890" for c in range(conns)]
    for c, conn in enumerate(ids):
        e("packet", conn, -1, src="capture", sport=40000 + c, dport=7890, flags="SYN",
          tcp_seq=1000, ack=0, len=0, origin="captured")
        e("accept", conn, 10 + c, peer=f"127.0.0.1:{40000 + c}")
        e("epoll_ctl", conn, 10 + c, op="ADD", mask="IN")
    for r in range(rounds):
        for c, conn in enumerate(ids):
            e("packet", conn, -1, src="capture", sport=40000 + c, dport=7890, flags="PSH|ACK",
              tcp_seq=1001 + 100 * r, ack=1, len=100, origin="captured")
        if r % 50 == 0:
            e("epoll_wait", timeout=-1, ready=[(10 + c, 1) for c in range(conns)])
            for c, conn in enumerate(ids):
                e("recv", conn, 10 + c, bytes=100)
    return e


def test_the_unread_bytes_share_one_budget_per_frame_and_are_worked_out_once(
        view: IoView) -> None:
    """Up to 32 connections' events are decoded within one budget for the whole frame
    (not one each: a huge log took 300 ms a frame), the first drawn first, until
    whole; then each connection's number is worked out once for where the cursor is,
    not again on every frame."""
    from visualizer.views import io
    from visualizer.views.io import _ConnSeries
    tl = busy_trace().timeline()
    tl.seek(len(tl.log) - 1)
    decoded = []
    row = io._unread_row

    def counted(ev: Event) -> tuple[float, ...]:
        decoded.append(ev)
        return row(ev)

    with patch.object(io, "_unread_row", counted), \
            patch.object(io, "UNREAD_BUDGET_S", 0.0, create=True):
        view.show_state(tl)
        assert 0 < len(decoded) <= 128  # one slice of one connection's events, no more
        frames = 1
        while view._unread_pending and frames < 2000:  # bounded: ~50 frames of 128 rows
            view.show_state(tl)
            frames += 1
    assert not view._unread_pending and len(view.unread) == io.UNREAD_CONNS
    assert all(v == (100 * 150 - 300, "derived") for v in view.unread.values())
    # Whole: the same frame again reads no connection's rows again.
    looked = []
    v = _ConnSeries.v

    def spied(self: _ConnSeries) -> object:
        looked.append(self.conn)
        return v.fget(self)  # type: ignore[attr-defined]

    log = tl.log
    last = max(i for i in range(len(log)) if log[i].kind == "packet" and log[i].conn in view.unread)
    with patch.object(_ConnSeries, "v", property(spied)):
        view.show_state(tl)
        assert looked == []
        show(view, tl, last)
        looked.clear()
        show(view, tl, last - 1)  # one segment back: that connection's number alone
        assert set(looked) == {log[last].conn}


def test_the_unread_bytes_and_their_legend_fit_at_200_percent(view: IoView, tmp_path: Path,
                                                               zoom200) -> None:  # type: ignore[no-untyped-def]
    """Zoomed in, the unread bytes on the chip and the ready row, the legend that says
    where they come from and the stall below: inside the view, apart, whole."""
    tl = record_with(tmp_path, "--mode", "epoll", "--trigger", "edge", "--no-drain",
                     "--states", "off", "--packets", "auto", load=NO_DRAIN_LOAD)
    first = server_events(tl, "recv")[0]
    gave_up = next(i for i in range(first, len(tl.log)) if tl.log[i].kind == "close"
                   and tl.log[i].src == "client")
    stall = next(k for k in range(gave_up - 1, first, -1) if tl.log[k].src != "server")
    view.show()
    found: list[str] = []
    for i in (first, stall):
        show(view, tl, i)
        assert view.unread
        for size in SLIDE_SIZES:
            found += unfit(view, size)
            texts = painted(view)
            said = [t for t in texts if "B unread" in t]
            assert said and (DERIVED_LEGEND in texts or all("(derived)" in t for t in said)), \
                (size, said)
    assert not found, "\n".join(found[:30])
    # Where no legend is drawn, a number keeps its origin or is left out, never shortened
    # to the number alone.
    conn = next(iter(view.unread))
    n = view.unread[conn][0]
    view._short_notes = False
    assert view._note(conn) == f"{n} B unread (derived)"
    font = view._font(0.85, True)
    short = view._pill(None, 0, 0, f"{n} B unread", font)
    assert view._unread_pill(None, 0, 0, conn, font, short + 20) == 0.0
    view._short_notes = True  # (with the legend: the number alone where that alone fits)
    assert view._note(conn) == f"{n} B unread"
    assert view._unread_pill(None, 0, 0, conn, font, short + 20) > 0.0


def test_the_sweep_says_where_its_unread_bytes_come_from(view: IoView, tmp_path: Path) -> None:
    """Non-blocking, a pause between sweeps: a request waits in the kernel until the next
    sweep tries its socket. Its cell carries the number; the legend says it is derived."""
    tl = record_with(tmp_path, "--mode", "nonblocking", "--sweep-pause", "0.05",
                     "--states", "off", "--packets", "auto",
                     load="--clients 1 --requests 3 --think 30")
    view.show()
    seen = 0
    for i in range(len(tl.log)):  # a small recording: every step
        if tl.log[i].kind != "packet":
            continue
        show(view, tl, i)
        if not any(c.conn in view.unread for c in view.sweep):
            continue
        seen += 1
        texts = painted(view)
        said = [t for t in texts if "B unread" in t]
        assert said and (DERIVED_LEGEND in texts or all("(derived)" in t for t in said)), said
    assert seen
