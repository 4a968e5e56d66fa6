"""The server's I/O model at work: one picture per mode.

- epoll / selectors: the interest list (every fd registered, with its mask),
  and the latest ``epoll_wait``'s ready list with the server working through
  it; fds reported by this wait *and* the previous one are marked "again"
  (level-triggered repeats an fd while it has unread data; edge-triggered
  reports it once per arrival).
- threaded: a lane per thread (the accept loop, then one per connection),
  each saying what the thread does now and for which connection.
- nonblocking: the latest sweep over the sockets, each try marked useful or
  EAGAIN, and the running totals of wasted vs useful tries.

Everything is read from ``timeline.state`` and from the log's columns up to
the cursor; the only things kept are caches keyed by log index
(``EventSeries``, in ``visualizer.model.series``), so stepping back un-draws
what came after.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer, QT_TRANSLATE_NOOP, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QWidget

from engine.events import INTEREST_KINDS, WAIT_KINDS
from engine.modes import picture as mode_picture

from ..model import Timeline
from ..model.series import EventSeries, kind_codes, last_index
from ..model.text import ready_mask_text, short_conn
from . import style
from .base import View


def _percent(value: float) -> str:
    """A share in percent, never rounded to a false 0 % or 100 %."""
    text = f"{value:.0f} %"
    if text in ("0 %", "100 %") and 0 < value < 100:
        text = f"{value:.1f} %" if 0.05 <= value <= 99.95 else f"{value:.2f} %"
    return text


# ---------------------------------------------------------------- drawn model
@dataclass
class InterestItem:
    fd: int
    mask: str
    role: str  # "listen", "wake" (the server's own stop signal) or "conn"
    conn: str | None = None


@dataclass
class ReadyItem:
    fd: int
    mask: str
    status: str  # "done", "now", "next"
    again: bool  # also reported by the previous wait
    role: str
    conn: str | None = None
    action: str = ""  # what the server did with it so far (e.g. "recv 93 B")


@dataclass
class Lane:
    thread: int
    role: str  # "accept" (the main loop) or "conn"
    conn: str | None
    fd: int
    activity: str  # "recv_blocked", "working", "sending", "closing", "accepting", "held", "error"
    text: str  # what it does now, in words
    last: str = ""  # the last call it made
    current: bool = False  # its last call is the event at the cursor
    name: str = ""  # shown instead of "thread N" (a greenlet, a task, the hub)
    sub: str = ""  # shown under the name instead of its fd


@dataclass
class SweepCell:
    fd: int
    outcome: str  # "useful", "eagain", "untried"
    role: str
    conn: str | None = None


# What the loop does with a ready fd: its calls.
_CALL_KINDS = ("accept", "recv", "send", "eagain", "close", "shutdown", "epoll_ctl", "interest",
               "gate", "error")

# What a thread lane reads: the calls and steps of the server's threads.
_LANE_KINDS = ("thread_start", "accept", "recv", "send", "request", "response", "close",
               "shutdown", "gate", "error", "eagain")

ACTIVITY_COLOURS = {
    "recv_blocked": style.WAIT, "accepting": style.WAIT, "working": style.CLIENT,
    "sending": style.SERVER, "closing": style.FOREGROUND, "held": style.CONTROL,
    "error": style.SERVER, "started": style.WAIT, "parked": style.WAIT,
}
HISTORY = 60  # sweeps in the nonblocking picture's bar chart
SWEEP_WINDOW = 200_000  # events looked at for the sweep at the cursor, at most
OUTCOME_COLOURS = {"useful": style.DATA, "eagain": style.WASTE, "untried": style.GRID}


class IoView(View):
    name = "io"
    title = QT_TRANSLATE_NOOP("View", "I/O model")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(640, 400)
        self.setMouseTracking(False)
        self._reset_model()
        self._listen_cache: tuple[Any, int, int] | None = None  # (log ref, index, fd)
        self._sweeps = EventSeries(["poll_sweep"], value=lambda e: (
            float(e.data.get("tries", 0)), float(e.data.get("eagain", 0)),
            float(e.data.get("useful", 0)), float(e.data.get("sweeps", 1))), width=4)
        self._hits: list[tuple[QRectF, str]] = []
        self._catch_up = QTimer(self)
        self._catch_up.setSingleShot(True)
        self._catch_up.timeout.connect(self._keep_counting)
        self._s = 1.0  # type scale: the view's size against 1280 x 720
        self.last_draw_ms = 0.0

    def _reset_model(self) -> None:
        self.mode = ""
        self.picture = ""
        self.call = "epoll_wait"  # the readiness call, as the server made it
        self.scanned: int | None = None  # fds the latest select/poll handed the kernel
        self.trigger: str | None = None
        self.heading = ""
        self.explanation = ""
        self.badge = ""
        self.listen_fd = -1
        self.interest: list[InterestItem] = []
        self.ready: list[ReadyItem] = []
        self.wait_number = 0
        self.wait_index = -1
        self.wait_timeout: Any = None
        self.previous_ready: list[int] = []  # the fds the wait before this one reported
        self.now_fd: int | None = None
        self.now_text = ""
        self.lanes: list[Lane] = []
        self.queue: tuple[int, int] | None = None  # single: (waiting, backlog), if observed
        self.hidden_lanes = 0
        self.thread_count = 0
        self.sweep: list[SweepCell] = []
        self.sweep_complete = False
        self.sweep_number = 0
        self.totals = {"sweeps": 0, "tries": 0, "eagain": 0, "useful": 0}
        self.wasted_percent: float | None = None
        # (EAGAIN tries per sweep, useful tries, sweeps) of the latest sweep events: idle
        # sweeps in a row are one event (sweeps > 1)
        self.history: list[tuple[float, int, int]] = []
        self.idle_run: tuple[int, float] | None = None  # the idle sweeps at the cursor: n, ms
        self.ratio_text = ""
        self.note = ""

    # ---------------------------------------------------------------- model
    def show_state(self, timeline: Timeline) -> None:
        started = time.perf_counter()
        self.timeline = timeline
        self._reset_model()
        state, log, cursor = timeline.state, timeline.log, timeline.cursor
        mode = str(state.mode.get("mode") or "")
        self.mode = mode
        self.picture = str(state.mode.get("picture") or mode_picture(mode))
        self.trigger = state.mode.get("trigger") or ("level" if self.picture == "readiness"
                                                      else None)
        self.listen_fd = self._listen_fd(log, cursor)
        if mode == "epoll":
            edge = self.trigger == "edge"
            self.heading = self.tr("epoll, edge-triggered") if edge else \
                self.tr("epoll, level-triggered")
            self.badge = self.tr("EDGE") if edge else self.tr("LEVEL")
            self.explanation = self.tr(
                "The kernel reports an fd once, when new data arrives: the server must read "
                "until EAGAIN.") if edge else self.tr(
                "The kernel reports an fd in every wait while it still has unread data.")
            self._epoll(state, log, cursor, selectors=False)
        elif mode == "selectors":
            mux = state.mode.get("multiplexer") or "selector"
            self.heading = self.tr("selectors ({0}), level-triggered").format(mux)
            self.badge = self.tr("LEVEL")
            self.explanation = self.tr(
                "The portable selector waits on every registered socket and returns the ready "
                "ones, again and again while data is unread.")
            self.call = f"{mux}.select()"
            self._epoll(state, log, cursor, selectors=True)
        elif mode in ("select", "poll"):
            self.call = f"{mode}()"
            self.heading = self.tr("{0}, level-triggered").format(self.call)
            self.badge = self.tr("LEVEL")
            self.explanation = self.tr(
                "Every call hands the kernel the whole set of watched fds, which it scans, and "
                "returns the ready ones: epoll keeps that set in the kernel instead.")
            self._epoll(state, log, cursor, selectors=False)
        elif mode == "single":
            self.heading = self.tr("One client at a time")
            self.explanation = self.tr(
                "One thread accepts a client and serves it to the end; the next clients wait "
                "in the kernel's accept queue, their handshakes done, until it comes back.")
            self._single(state, log, cursor)
        elif mode == "threaded":
            self.heading = self.tr("A thread per connection")
            self.explanation = self.tr(
                "Each connection has its own thread, blocked in recv() until its client sends; "
                "the main thread only accepts.")
            self._threaded(state, log, cursor)
        elif self.picture == "coroutines":
            if mode == "gevent":
                self.heading = self.tr("gevent: a greenlet per connection, one OS thread")
                self.explanation = self.tr(
                    "A greenlet's recv() that would block gets EAGAIN and parks it; the hub's "
                    "epoll wakes it when its fd is ready. One greenlet runs at a time.")
            else:
                self.heading = self.tr("asyncio: a task per connection, one OS thread")
                self.explanation = self.tr(
                    "A task awaiting data is parked; the event loop's selector wakes it when "
                    "its fd is ready. One task runs at a time.")
            self._coroutines(state, log, cursor)
        elif self.picture == "processes":
            self.heading = self.tr("A process per connection")
            self.explanation = self.tr(
                "The parent accepts and forks; the child serves with its own descriptor of the "
                "socket. The kernel sends FIN only when the last descriptor is closed.")
            self._processes(state, log, cursor)
        elif mode == "nonblocking":
            self.heading = self.tr("Non-blocking polling")
            self.explanation = self.tr(
                "One thread tries every socket in turn; nothing says which is ready, so most "
                "tries find nothing (EAGAIN).")
            self._nonblocking(state, log, cursor)
        else:
            self.heading = self.tr("I/O model")
            self.explanation = self.tr("Waiting for the server to say which I/O model it runs.")
        self.last_draw_ms = (time.perf_counter() - started) * 1e3
        # A far jump into a long run: the sweep totals are read a slice per call;
        # keep reading on a timer until they are whole, even if the cursor rests.
        if mode == "nonblocking" and not self._sweeps.complete and not self._catch_up.isActive():
            self._catch_up.start(40)
        self.update()

    def _keep_counting(self) -> None:
        if self.timeline is not None and self.isVisible():
            self.show_state(self.timeline)

    def _listen_fd(self, log: Any, cursor: int) -> int:
        cache = self._listen_cache
        if cache is not None and cache[0]() is log and cache[1] <= cursor:
            i = cache[1]
            if i < len(log) and log[i].kind == "listen":
                later = last_index(log, ["listen"], cursor + 1, before=i + 1)
                if later < 0:
                    return cache[2]
        i = last_index(log, ["listen"], cursor + 1)
        if i < 0:
            self._listen_cache = None
            return -1
        fd = log[i].fd
        self._listen_cache = (weakref.ref(log), i, fd)
        return fd

    def _role(self, fd: int, conn: str | None) -> str:
        if fd == self.listen_fd:
            return "listen"
        return "conn" if conn else "wake"

    # epoll / selectors -------------------------------------------------
    def _epoll(self, state: Any, log: Any, cursor: int, selectors: bool) -> None:
        fds = state.fds
        self.interest = [InterestItem(fd, mask, self._role(fd, fds.get(fd)), fds.get(fd))
                         for fd, mask in sorted(state.interest.items())]
        call = self.call
        wait = last_index(log, list(WAIT_KINDS), cursor + 1)
        if wait < 0:
            self.now_text = self.tr("Not waiting yet: the server is registering its sockets.")
            return
        event = log[wait]
        self.wait_index = wait
        self.wait_timeout = event.data.get("timeout")
        # This engine's calls: a trace may hold several runs (a restart, a lesson's modes).
        started = max(0, last_index(log, ["mode"], wait + 1))
        self.wait_number = int(len(log.indices(kinds=list(WAIT_KINDS), src="server",
                                               start=started, stop=wait + 1)))
        if event.kind == "wait" and event.data.get("fds") is not None:
            self.scanned = int(event.data["fds"])
        # (A selectors trace before 'wait' existed wrote the selector's own bits.)
        selectors = selectors and event.kind == "epoll_wait"
        ready = [(int(fd), int(mask)) for fd, mask in state.ready]
        previous = last_index(log, list(WAIT_KINDS), wait, thread=event.thread)
        self.previous_ready = [int(fd) for fd, _ in log[previous].data.get("ready") or ()] \
            if previous >= 0 else []
        before = set(self.previous_ready)
        # What the loop did since the wait: its own events after it, up to the cursor.
        position = {fd: k for k, (fd, _) in enumerate(ready)}
        listen_pos = position.get(self.listen_fd)
        actions: dict[int, list[str]] = {}
        now_pos, now_event = -1, None
        accepted: list[int] = []
        drained = False
        conn_of: dict[int, str] = {}  # a ready fd's connection, also once it closed
        thread_col = log.column("thread")[wait + 1:cursor + 1]
        src_code = log.sources.codes.get("server")
        mine = np.flatnonzero((thread_col == event.thread)
                              & (log.column("src")[wait + 1:cursor + 1] == src_code)
                              & np.isin(log.column("kind")[wait + 1:cursor + 1],
                                        kind_codes(log, _CALL_KINDS))) + wait + 1
        for i in mine[-2000:].tolist():
            e = log[i]
            k = position.get(e.fd)
            if e.kind == "accept" or (e.kind in INTEREST_KINDS and e.fd not in position):
                k = listen_pos if k is None else k
            if k is None:
                continue
            if e.conn and k != listen_pos:
                conn_of[e.fd] = e.conn
            if k == listen_pos and e.kind != "close":  # the listener: a summary
                if e.kind == "accept":
                    accepted.append(e.fd)
                elif e.kind == "eagain":
                    drained = True
            else:
                actions.setdefault(k, []).append(self._action_text(e))
            if k >= now_pos:
                now_pos, now_event = k, e
        if listen_pos is not None and (accepted or drained):
            text = self.tr("accept → fd {0}").format(", ".join(map(str, accepted[-6:]))) \
                if len(accepted) <= 6 else self.tr("accepted {0}, the last fd {1}").format(
                    len(accepted), accepted[-1])
            if drained:
                text = (text + ", " if accepted else "") + self.tr("accept EAGAIN")
            actions[listen_pos] = [text]
        # Every ready fd handled, and the cursor on another source's event: the one thread
        # is back in its wait (whose event comes only when it returns).
        waiting = bool(ready) and now_event is not None and now_pos == len(ready) - 1 \
            and log[cursor].src != "server"
        for k, (fd, mask) in enumerate(ready):
            conn = fds.get(fd) or conn_of.get(fd)
            status = "now" if k == now_pos and not waiting else \
                "done" if k <= now_pos else "next"
            done = actions.get(k, [])
            text = ", ".join(done[-3:]) if len(done) <= 3 else \
                "…, " + ", ".join(done[-2:])
            self.ready.append(ReadyItem(fd, ready_mask_text(mask, selectors), status,
                                        fd in before, self._role(fd, conn), conn, text))
        if waiting:
            self.now_text = self.tr("Every ready fd handled: the server is back in {0}, "
                                    "waiting").format(call)
        elif now_event is not None:
            self.now_fd = ready[now_pos][0]
            who = self._fd_words(self.now_fd, fds.get(self.now_fd) or conn_of.get(self.now_fd))
            what = self._action_text(now_event, long=True)
            if now_pos == listen_pos and now_event.kind in ("accept", *INTEREST_KINDS):
                # (a trace missing the accept line, as after a dropped batch, has none)
                added = self.tr(", watched with epoll_ctl ADD") \
                    if now_event.kind == "epoll_ctl" else self.tr(", added to the watched set") \
                    if now_event.kind == "interest" else ""
                what = actions.get(listen_pos, [what])[0] + added
            self.now_text = self.tr("Now: fd {0} ({1}): {2}").format(self.now_fd, who, what)
        elif not ready:
            self.now_text = self.tr("{0} returned nothing (timed out after {1} s): "
                                    "no fd is ready.").format(call, self.wait_timeout)
        else:
            self.now_text = self.tr("{0} returned {1} ready fd(s): the server "
                                    "takes them in order.").format(call, len(ready))

    def _fd_words(self, fd: int, conn: str | None) -> str:
        if fd == self.listen_fd:
            return self.tr("listening socket")
        if conn:
            return short_conn(conn)
        return self.tr("wake-up pipe")

    def _action_text(self, e: Any, long: bool = False) -> str:
        kind, data = e.kind, e.data
        if kind == "recv":
            n = int(data.get("bytes", 0))
            if n == 0:
                return self.tr("recv → 0: peer closed") if long else self.tr("recv 0")
            return self.tr("recv {0} bytes").format(n) if long else self.tr("recv {0} B").format(n)
        if kind == "send":
            n, wanted = int(data.get("bytes", 0)), int(data.get("wanted", 0))
            if long and wanted > n:
                return self.tr("send {0} of {1} bytes (buffer full)").format(n, wanted)
            return self.tr("send {0} bytes").format(n) if long else self.tr("send {0} B").format(n)
        if kind == "eagain":
            op = data.get("op", "")
            if long:
                return self.tr("{0} → EAGAIN: nothing more, drained").format(op)
            return self.tr("{0} EAGAIN").format(op)
        if kind == "accept":
            return self.tr("accept → new fd {0}").format(e.fd)
        if kind == "close":
            return self.tr("close ({0})").format(data.get("reason", "")) if long else \
                self.tr("close")
        if kind in INTEREST_KINDS:  # epoll's epoll_ctl, or select/poll's watched set
            op, mask = data.get("op", ""), data.get("mask", "")
            if not long:
                return f"{op} {mask}" if op != "DEL" else "DEL"
            epoll = kind == "epoll_ctl"
            if op == "DEL":
                return (self.tr("epoll_ctl DEL fd {0}: no longer watched") if epoll else
                        self.tr("fd {0} leaves the watched set")).format(e.fd)
            if op == "MOD":
                return (self.tr("epoll_ctl MOD fd {0}: now watch {1}") if epoll else
                        self.tr("fd {0}: now watch {1}")).format(e.fd, mask)
            return (self.tr("epoll_ctl ADD fd {0} {1}: now watched") if epoll else
                    self.tr("fd {0} joins the watched set, {1}")).format(e.fd, mask)
        if kind == "request":
            return f"{data.get('method', '')} {data.get('path', '')}"
        if kind == "response":
            return self.tr("answer {0}").format(data.get("status", ""))
        if kind == "gate":
            return self.tr("held before {0}").format(data.get("action", ""))
        return kind

    # threaded ------------------------------------------------------------
    def _threaded(self, state: Any, log: Any, cursor: int) -> None:
        threads = list(state.threads)
        self.thread_count = len(threads)
        if not threads:
            return
        # The last server event of every thread, from the tail of the columns.
        stop = cursor + 1
        window = max(20_000, 40 * len(threads))
        lo = max(0, stop - window)
        src_code = log.sources.codes.get("server")
        th = log.column("thread")[lo:stop]
        ok = log.column("src")[lo:stop] == src_code
        ok &= np.isin(log.column("kind")[lo:stop], kind_codes(log, _LANE_KINDS))
        pos = np.flatnonzero(ok)
        last: dict[int, int] = {}
        if len(pos):
            rev = th[pos][::-1]
            uniq, first = np.unique(rev, return_index=True)
            last = {int(u): lo + int(pos[len(pos) - 1 - f]) for u, f in zip(uniq, first)}
        main_tid = None
        k = last_index(log, ["thread_start"], stop, no_conn=True)
        if k >= 0:
            main_tid = log[k].thread
        # Threads idle since before the window: look each up (a bounded number).
        for tid in [t for t in threads if t not in last][:64]:
            i = last_index(log, _LANE_KINDS, lo, thread=tid)
            if i >= 0:
                last[tid] = i
        order = ([main_tid] if main_tid in state.threads else []) + \
            [t for t in threads if t != main_tid]
        for tid in order:
            i = last.get(tid, -1)
            self.lanes.append(self._lane(log, tid, i, cursor, tid == main_tid,
                                         state.threads.get(tid, "")))

    def _single(self, state: Any, log: Any, cursor: int) -> None:
        """The one thread: serving a client (its calls, as a connection thread's), or
        back in accept(); and how many wait in the accept queue (observed)."""
        self.queue = state.accept_queue if state.counts.get("accept_queue") else None
        k = last_index(log, ["thread_start"], cursor + 1, no_conn=True)
        if k < 0:
            return
        tid = log[k].thread
        self.thread_count = 1
        i = last_index(log, _LANE_KINDS, cursor + 1, thread=tid)
        accepted = last_index(log, ["accept"], cursor + 1, thread=tid)
        serving = accepted >= 0 and log[accepted].conn in state.connections \
            and last_index(log, ["close"], cursor + 1, thread=tid) < accepted
        if serving:
            lane = self._lane(log, tid, i, cursor, False, "")
            lane.role = "accept"  # the loop itself: never folded away
            if i == accepted:
                lane.activity = "working"
                lane.text = self.tr("accept() → fd {0}: serving this client to the end").format(
                    log[accepted].fd)
        else:
            lane = Lane(tid, "accept", None, self.listen_fd, "accepting",
                        self.tr("waiting in accept() for the next client"), current=i == cursor)
            if i >= 0:
                lane.last = self._action_text(log[i], long=True)
        self.lanes.append(lane)

    def _lane(self, log: Any, tid: int, i: int, cursor: int, main: bool, coarse: str) -> Lane:
        e = log[i] if i >= 0 else None
        current = i == cursor
        if main:
            lane = Lane(tid, "accept", None, self.listen_fd, "accepting",
                        self.tr("waiting in accept() for a new connection"), current=current)
            if e is not None and e.kind == "accept":
                lane.last = self.tr("accepted fd {0} ({1}), started its thread").format(
                    e.fd, short_conn(e.conn))
                if current:
                    lane.activity = "working"
                    lane.text = self.tr("accept() → fd {0}: a new thread will serve it").format(
                        e.fd)
            return lane
        conn = e.conn if e is not None else None
        fd = e.fd if e is not None else -1
        lane = Lane(tid, "conn", conn, fd, "recv_blocked",
                    self.tr("blocked in recv(): waiting for the client"), current=current)
        if e is None:
            lane.activity, lane.text = "started", self.tr("started ({0})").format(coarse)
            return lane
        kind, data = e.kind, e.data
        lane.last = self._action_text(e, long=True)
        if kind == "thread_start":
            lane.last = self.tr("started for fd {0}").format(fd)
        elif kind == "recv":
            got = int(data.get("bytes", 0))
            if got == 0:
                lane.activity, lane.text = "closing", self.tr("the client closed: closing")
            elif current:
                lane.activity = "working"
                lane.text = self.tr("read {0} bytes").format(got)
            else:  # no request followed: it was not complete, and the thread reads again
                lane.text = self.tr("blocked in recv(): the request is not complete yet "
                                    "(last read {0} bytes)").format(got)
        elif kind == "request":
            lane.activity, lane.text = "working", self.tr("answering {0}").format(
                self._action_text(e))
        elif kind == "response":
            lane.activity, lane.text = "working", self.tr("answer {0} made: sending it").format(
                data.get("status", ""))
        elif kind == "send":
            if int(data.get("wanted", 0)) > int(data.get("bytes", 0)):
                lane.activity = "sending"
                lane.text = self.tr("blocked in send(): the client's window is full")
            elif current:
                lane.activity = "sending"
                lane.text = self.tr("send() {0} bytes").format(int(data.get("bytes", 0)))
            else:
                lane.text = self.tr("blocked in recv(): waiting for the next request")
        elif kind in ("close", "shutdown"):
            lane.activity, lane.text = "closing", self.tr("closing the connection")
        elif kind == "gate":
            lane.activity = "held"
            lane.text = self.tr("held before {0} (stepping)").format(data.get("action", ""))
        elif kind == "error":
            lane.activity, lane.text = "error", self.tr("error: {0}").format(data.get("what", ""))
        return lane

    # processes -----------------------------------------------------------
    def _processes(self, state: Any, log: Any, cursor: int) -> None:
        """The parent (accept, fork, close its copy) and a lane per child alive, each
        saying whether the parent still holds its copy of the child's socket."""
        stop = cursor + 1
        start = last_index(log, ["thread_start"], stop, no_conn=True)
        if start < 0:
            return
        tid = log[start].thread
        pid = log[start].data.get("pid")
        self.thread_count = 1 + len(state.children)
        i = last_index(log, ("accept", "fork", "close", "error", "gate", "process_exit"), stop,
                       thread=tid)
        e = log[i] if i >= 0 else None
        parent = Lane(tid, "accept", None, self.listen_fd, "accepting",
                      self.tr("waiting in accept() for the next client"), current=i == cursor,
                      name=self.tr("parent"), sub=self.tr("pid {0}").format(pid) if pid else "")
        if e is not None and i == cursor:
            parent.activity = "working"
            if e.kind == "accept":
                parent.text = self.tr("accept() → fd {0}: fork() a child for it").format(e.fd)
            elif e.kind == "fork":
                parent.text = self.tr("fork() → child {0}: fd {1} now in both processes").format(
                    e.data.get("child"), e.fd)
            elif e.kind == "close" and e.data.get("last") is False:
                parent.text = self.tr("close(fd {0}): the parent's copy; the child's is the "
                                      "last one, no FIN yet").format(e.fd)
            elif e.kind == "close":
                parent.text = self.tr("close(fd {0}): the last copy: the kernel sends FIN").format(
                    e.fd)
            elif e.kind == "process_exit":
                parent.text = self.tr("reaped child {0} (exit status {1})").format(
                    e.data.get("child"), e.data.get("status"))
            else:
                parent.text = self._action_text(e, long=True)
        kept = len(state.parent_copies)
        if state.mode.get("keep_parent_copy") and kept and not parent.current:
            parent.activity = "error"
            parent.text = self.tr("holds the copy of a connected socket it never closes: its "
                                  "FIN cannot leave") if kept == 1 else \
                self.tr("holds {0} copies of connected sockets it never closes: their FIN "
                        "cannot leave").format(kept)
        if e is not None and not parent.current:
            parent.last = self._action_text(e, long=True)
        self.lanes.append(parent)
        for child, conn in sorted(state.children.items())[:2000]:
            k = last_index(log, _LANE_KINDS, stop, thread=child)
            lane = self._lane(log, child, k, cursor, False, "")
            if k < 0:
                lane.text = self.tr("forked: waiting for the parent to settle its copy")
            lane.conn = conn
            lane.name = self.tr("child {0}").format(child)
            fd = state.connections[conn].fd if conn in state.connections else None
            lane.fd = fd if fd is not None else -1
            lane.sub = self.tr("parent's copy: open") if conn in state.parent_copies else \
                self.tr("parent's copy: closed")
            ev = log[k] if k >= 0 else None
            if ev is not None and ev.kind == "close":
                lane.text = self.tr("close(fd {0}): the last copy: FIN").format(ev.fd) \
                    if ev.data.get("last") is not False else \
                    self.tr("close(fd {0}): not the last copy (the parent holds one): no FIN") \
                    .format(ev.fd)
            self.lanes.append(lane)

    # gevent, asyncio -----------------------------------------------------
    def _coroutines(self, state: Any, log: Any, cursor: int) -> None:
        """The loop underneath (gevent's hub, asyncio's event loop) as the first lane,
        then a lane per greenlet or task: parked (its fd watched by the loop's epoll)
        or the one running now, which is whoever made the latest server event."""
        stop = cursor + 1
        start = last_index(log, ["thread_start"], stop, no_conn=True)
        if start < 0:
            return
        tid = log[start].thread
        self.thread_count = 1
        mux = str(state.mode.get("multiplexer") or "")
        hub_name = self.tr("hub") if self.mode == "gevent" else self.tr("event loop")
        latest = last_index(log, (*_LANE_KINDS, "task_start", "task_end", *WAIT_KINDS,
                                  *INTEREST_KINDS), stop, thread=tid)
        e = log[latest] if latest >= 0 else None
        hub = Lane(tid, "accept", None, -1, "accepting", "", name=hub_name,
                   sub=self.tr("over {0}").format(mux) if mux else "")
        runs: str | None = None  # the connection whose coroutine runs now
        # The loop runs: it returned from its wait, or works for the transports (a
        # recv in a callback, an interest change), or a coroutine just parked or ended.
        if e is None or e.conn is None or e.kind in WAIT_KINDS or e.kind in INTEREST_KINDS \
                or e.kind in ("eagain", "task_end") or e.data.get("by") == "loop":
            hub.current = e is not None and latest == cursor
            hub.activity = "working" if e is not None else "accepting"
            if e is None:
                hub.text = self.tr("starting")
            elif e.kind in WAIT_KINDS:
                blocked = e.data.get("blocked_ns")
                ready = e.data.get("ready") or []
                hub.text = self.tr("back from {0} (slept {1} ms): waking the ready "
                                   "ones").format(str(e.data.get("call", "")).split()[-1],
                                                  f"{blocked / 1e6:.1f}") \
                    if isinstance(blocked, int) else \
                    self.tr("back from {0}.select(): {1} fd(s) ready").format(
                        e.data.get("call"), len(ready))
            elif e.kind == "accept":
                hub.text = self.tr("accepted fd {0}: a new coroutine will serve it").format(e.fd)
            elif e.kind in INTEREST_KINDS:
                hub.text = self._action_text(e, long=True)
            elif e.kind == "recv":
                hub.text = self.tr("a callback read {0} bytes of fd {1} for its stream").format(
                    int(e.data.get("bytes", 0)), e.fd)
            elif e.kind == "send":
                hub.text = self.tr("a callback sent {0} more bytes of fd {1}").format(
                    int(e.data.get("bytes", 0)), e.fd)
            else:
                hub.text = self.tr("runs: the next ready one, or waits when none is")
        else:
            runs = e.conn
            hub.activity = "accepting"
            hub.text = self.tr("waiting for the running coroutine to give way")
        self.lanes.append(hub)
        gevent = self.mode == "gevent"
        for conn, name in list(state.tasks.items())[:2000]:
            i = last_index(log, _LANE_KINDS, stop, conn=conn)
            lane = self._lane(log, tid, i, cursor, False, "")
            lane.name, lane.conn = name, conn
            fd = state.connections[conn].fd if conn in state.connections else lane.fd
            lane.fd = fd if fd is not None else -1
            lane.sub = self.tr("fd {0}").format(lane.fd) if lane.fd >= 0 else ""
            ev = log[i] if i >= 0 else None
            kind = ev.kind if ev is not None else ""
            data = ev.data if ev is not None else {}
            if conn == runs:
                lane.current = True
                if lane.activity == "recv_blocked":
                    lane.activity = "working"
                lane.text = self.tr("runs now: {0}").format(lane.text)
            elif lane.activity in ("closing", "held", "error"):
                lane.current = False
            elif kind == "eagain":
                lane.activity = "parked"
                lane.last = self.tr("{0}() → EAGAIN").format(data.get("op", "recv"))
                lane.text = self.tr("parked: {0}() said EAGAIN; the loop's epoll watches "
                                    "fd {1}").format(data.get("op", "recv"), lane.fd)
            elif kind == "recv" and data.get("by") == "loop":
                got = int(data.get("bytes", 0))
                lane.activity, lane.current = "parked", False  # (the loop's call, not its own)
                lane.text = self.tr("the loop read {0} bytes for it: it runs when its turn "
                                    "comes").format(got) if got else \
                    self.tr("the loop read the client's FIN: it runs when its turn comes")
            elif kind == "send" and int(data.get("wanted", 0)) > int(data.get("bytes", 0)):
                lane.activity = "parked"
                lane.text = self.tr("awaiting drain(): the socket took part; the loop sends the "
                                    "rest when fd {0} is writable").format(lane.fd)
            else:
                lane.activity = "parked"
                lane.text = self.tr("parked") if gevent else \
                    self.tr("awaiting reader.read(): the selector watches fd {0}").format(lane.fd)
            self.lanes.append(lane)

    # nonblocking -------------------------------------------------------
    def _nonblocking(self, state: Any, log: Any, cursor: int) -> None:
        series = self._sweeps.update(log, cursor + 1)
        k = series.count(cursor)
        sums = series.v[:k].sum(axis=0) if k else np.zeros(4)
        swept = int(sums[3])  # idle sweeps in a row are one event: their count, summed
        self.totals = {"sweeps": swept, "tries": int(sums[0]), "eagain": int(sums[1]),
                       "useful": int(sums[2])}
        if not series.complete:
            self.note = self.tr("(still counting: {0} sweeps read so far)").format(swept)
        tried = self.totals["eagain"] + self.totals["useful"]
        if tried:
            self.wasted_percent = 100.0 * self.totals["eagain"] / tried
            if self.totals["useful"]:
                ratio = self.totals["eagain"] / self.totals["useful"]
                self.ratio_text = self.tr("{0:.1f} wasted tries for every useful one").format(
                    ratio) if ratio < 10 else self.tr("{0:,.0f} wasted tries for every useful "
                                                      "one").format(ratio)
            else:
                self.ratio_text = self.tr("no useful try yet")
        self.sweep_number = swept
        self.idle_run = None
        recent = series.v[max(0, k - HISTORY):k]
        self.history = [(e / max(1.0, n), int(u), int(n)) for _, e, u, n in recent.tolist()]
        # The sweep at the cursor: in progress after the last poll_sweep, or the one it closed.
        p = int(series.idx[k - 1]) if k else -1
        src_code = log.sources.codes.get("server")
        codes = kind_codes(log, ["accept", "eagain", "recv", "send", "close"])

        def tries(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            a = max(a, b - SWEEP_WINDOW)  # a sweep is a few tries per socket, not millions
            kinds = log.column("kind")[a:b]
            m = np.isin(kinds, codes) & (log.column("src")[a:b] == src_code)
            hit = np.flatnonzero(m)
            return kinds[hit], log.column("fd")[a:b][hit]

        kinds, fdcol = tries(p + 1, cursor + 1)
        if len(kinds):
            self.sweep_complete = False
            self.sweep_number = swept + 1
        elif k:
            self.sweep_complete = True
            last = log[p]
            run = int(last.data.get("sweeps", 0) or 0)
            if run:  # idle sweeps, folded: every socket tried, every try EAGAIN
                since = int(last.data.get("since_ns", last.t_ns) or last.t_ns)
                self.idle_run = (run, max(0.0, (last.t_ns - since) / 1e6))
                kinds = fdcol = np.zeros(0, dtype=np.int64)
            else:
                prev = int(series.idx[k - 2]) if k >= 2 else -1
                kinds, fdcol = tries(prev + 1, p + 1)
        names = log.kinds.names
        outcome: dict[int, str] = {}
        for code, fd in zip(kinds.tolist(), fdcol.tolist()):
            kind = names[code]
            if kind == "accept":
                fd_key, good = self.listen_fd, True
            else:
                fd_key, good = fd, kind != "eagain"
            if good:
                outcome[fd_key] = "useful"
            else:
                outcome.setdefault(fd_key, "eagain")
        fds = state.fds
        cells: list[SweepCell] = []
        order = list(outcome)
        if self.listen_fd >= 0 and self.listen_fd not in outcome:
            order.insert(0, self.listen_fd)
        if not self.sweep_complete:
            order += [fd for fd in fds if fd not in outcome]
        elif self.idle_run:
            order += [fd for fd in fds if fd not in outcome and fd != self.listen_fd]
            outcome = dict.fromkeys(order, "eagain")
        for fd in order:
            cells.append(SweepCell(fd, outcome.get(fd, "untried"),
                                   self._role(fd, fds.get(fd)) if fd != self.listen_fd
                                   else "listen", fds.get(fd)))
        self.sweep = cells

    # ---------------------------------------------------------------- drawing
    def select(self, conn: str | None) -> None:
        super().select(conn)
        self.update()

    def apply_theme(self) -> None:
        # the two neutrals among the meanings follow the theme
        ACTIVITY_COLOURS["closing"] = style.FOREGROUND
        OUTCOME_COLOURS["untried"] = style.GRID
        super().apply_theme()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        point = event.position()
        for rect, conn in self._hits:
            if rect.contains(point):
                self.connection_selected.emit(conn)
                return
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            self._paint(p, QRectF(0, 0, self.width(), self.height()))
        finally:
            p.end()

    def _font(self, scale: float = 1.0, bold: bool = False, mono: bool = False) -> Any:
        """style.font, scaled with the view: a small window shrinks the type, a
        full-screen projector enlarges it."""
        return style.font(scale * self._s / style.ZOOM, bold, mono)  # style's size has the zoom

    def _paint(self, p: QPainter, area: QRectF) -> None:
        self._hits = []
        # The zoom enlarges the type and, alike, the chips and rows sized for it.
        self._s = max(0.75, min(1.6, area.width() / 1280, area.height() / 720)) * style.ZOOM
        p.fillRect(area, QColor(style.BACKGROUND))
        margin = 18.0
        x, y, w = margin, margin, area.width() - 2 * margin
        # Title, and the trigger in large type on the right.
        badge_w = 0.0
        if self.badge:
            f = self._font(2.2, bold=True)
            badge_w = QFontMetricsF(f).horizontalAdvance(self.badge) + 36
            rect = QRectF(x + w - badge_w, y, badge_w, QFontMetricsF(f).height() + 12)
            p.setPen(QPen(QColor(style.FOREGROUND), style.pen(3)))
            p.setBrush(QColor(style.BACKGROUND))
            p.drawRoundedRect(rect, 8, 8)
            p.setFont(f)
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.badge)
        y = self._text(p, QRectF(x, y, w - badge_w - 12, 0), self.heading, self._font(2.0, True))
        y = self._text(p, QRectF(x, y + 2, w - badge_w - 12, 0), self.explanation,
                       self._font(1.1), style.MUTED, wrap=True)
        y += 14
        body = QRectF(x, y, w, area.bottom() - margin - y)
        if self.picture == "readiness":
            self._paint_epoll(p, body)
        elif self.mode == "threaded" or self.picture in ("coroutines", "processes"):
            self._paint_threads(p, body)
        elif self.picture == "single":
            self._paint_single(p, body)
        elif self.mode == "nonblocking":
            self._paint_sweep(p, body)

    def _text(self, p: QPainter, rect: QRectF, text: str, font: Any, colour: str | None = None,
              wrap: bool = False, align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft,
              shrink: bool = False) -> float:
        """Draw text at the top of ``rect`` (in ``colour``, else the theme's text colour);
        returns the y below it. With ``shrink``, one line that does not fit is set
        smaller, down to 3/4 of its size (zoomed in, a half of the view is narrow),
        before it loses its end."""
        if shrink and not wrap:
            fm = QFontMetricsF(font)
            floor = font.pointSizeF() * 0.75
            while fm.horizontalAdvance(text) > rect.width() and font.pointSizeF() > floor:
                font = QFont(font)
                font.setPointSizeF(max(floor, font.pointSizeF() * 0.92))
                fm = QFontMetricsF(font)
        p.setFont(font)
        p.setPen(QColor(colour or style.FOREGROUND))
        fm = QFontMetricsF(font)
        flags = align | Qt.AlignmentFlag.AlignTop
        if wrap:
            flags |= Qt.TextFlag.TextWordWrap
            bound = fm.boundingRect(QRectF(rect.x(), rect.y(), rect.width(), 10_000), int(flags),
                                    text)
            height = bound.height()
        else:
            text = fm.elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
            height = fm.height()
            if not text.isascii():  # Chinese comes from a fallback font with a taller line
                height = max(height, fm.boundingRect(QRectF(0, 0, 1e6, 1e4), int(flags),
                                                     text).height())
        p.drawText(QRectF(rect.x(), rect.y(), rect.width(), height), int(flags), text)
        return rect.y() + height

    def _chip(self, p: QPainter, rect: QRectF, top: str, bottom: str, *, fill: str,
              border: str, border_width: float = 1.5, selected: bool = False,
              top_scale: float = 1.3, text_colour: str | None = None,
              caption: str = "") -> None:
        if selected:
            p.fillRect(rect.adjusted(-4, -4, 4, 4), QColor(style.SELECTED))
        p.setPen(QPen(QColor(border), style.pen(border_width)))
        p.setBrush(QColor(fill))
        p.drawRoundedRect(rect, 6, 6)
        if rect.height() < 18 or rect.width() < 18:
            return
        p.setPen(QColor(text_colour or style.FOREGROUND))
        if bottom and rect.height() >= 44 * self._s:
            f1 = self._font(top_scale, True, mono=True)
            f2 = self._font(0.85, mono=True)
            f0 = self._font(0.75)
            h1 = QFontMetricsF(f1).height()
            h2 = QFontMetricsF(f2).height()
            h0 = QFontMetricsF(f0).height() if caption and rect.height() >= 64 * self._s else 0.0
            top_y = rect.center().y() - (h0 + h1 + h2) / 2 + h0
            if h0:
                p.setFont(f0)
                p.drawText(QRectF(rect.x(), top_y - h0, rect.width(), h0),
                           Qt.AlignmentFlag.AlignCenter,
                           QFontMetricsF(f0).elidedText(caption, Qt.TextElideMode.ElideRight,
                                                        rect.width() - 4))
            p.setFont(f1)
            p.drawText(QRectF(rect.x(), top_y, rect.width(), h1), Qt.AlignmentFlag.AlignCenter,
                       top)
            p.setFont(f2)
            p.drawText(QRectF(rect.x(), top_y + h1, rect.width(), h2),
                       Qt.AlignmentFlag.AlignCenter,
                       QFontMetricsF(f2).elidedText(bottom, Qt.TextElideMode.ElideRight,
                                                    rect.width() - 4))
        else:
            scale = top_scale if rect.height() >= 30 * self._s else 0.8
            p.setFont(self._font(scale, True, mono=True))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, top)

    @staticmethod
    def _grid(count: int, area: QRectF, big: tuple[float, float], gap: float
              ) -> tuple[float, float, int, int]:
        """Cell size and columns for ``count`` cells in ``area``: as big as fits."""
        w, h = big
        while True:
            cols = max(1, int((area.width() + gap) // (w + gap)))
            rows = max(1, int((area.height() + gap) // (h + gap)))
            if cols * rows >= count or w <= 10:
                return w, h, cols, rows
            w, h = w * 0.85, h * 0.85

    def _paint_epoll(self, p: QPainter, body: QRectF) -> None:
        gap = 28.0
        foot = 64 * self._s + 8
        left = QRectF(body.x(), body.y(), body.width() * 0.40 - gap / 2, body.height() - foot)
        right = QRectF(left.right() + gap, body.y(), body.width() - left.width() - gap,
                       body.height() - foot)
        # Interest list.
        if self.mode == "epoll":
            head = self.tr("Interest list: {0} fds registered").format(len(self.interest))
            sub = self.tr("added by epoll_ctl; the mask is what to watch")
        else:  # select, poll, a selector: the set lives in the program
            head = self.tr("Watched set: {0} fds").format(len(self.interest))
            sub = self.tr("kept by the program, handed to the kernel on every call") \
                if self.mode in ("select", "poll") else \
                self.tr("registered with the selector; the mask is what to watch")
        y = self._text(p, left, head, self._font(1.3, True), shrink=True)
        y = self._text(p, QRectF(left.x(), y, left.width(), 0), sub,
                       self._font(0.95), style.MUTED, shrink=True)
        area = QRectF(left.x(), y + 10, left.width(), left.bottom() - y - 10)
        count = len(self.interest)
        cw, ch, cols, rows = self._grid(count, area, (128.0 * self._s, 76.0 * self._s), 10.0)
        if cw < 44:  # too many to label: a summary, and one small square per fd
            self._paint_interest_squares(p, area)
        else:
            self._paint_interest_chips(p, area, cw, ch, cols, rows)
        # Ready list.
        call = self.call
        if self.wait_index >= 0 and self.scanned is not None:
            head = self.tr("{0} #{1}: scanned {2} fds, {3} ready").format(
                call, self.wait_number, self.scanned, len(self.ready))
        elif self.wait_index >= 0:
            head = self.tr("Ready list: {0} #{1} returned {2}").format(
                call, self.wait_number, len(self.ready))
        else:
            head = self.tr("Ready list: no {0} yet").format(call)
        y = self._text(p, right, head, self._font(1.3, True), shrink=True)
        y = self._text(p, QRectF(right.x(), y, right.width(), 0),
                       self.tr("the server handles them in order, then waits again"),
                       self._font(0.95), style.MUTED, shrink=True)
        self._paint_ready(p, QRectF(right.x(), y + 10, right.width(), right.bottom() - y - 10))
        # Now: the whole width, up to two lines.
        bottom = QRectF(body.x(), body.bottom() - 64 * self._s + 8, body.width(), 64 * self._s)
        p.setPen(QPen(QColor(style.GRID), 1))
        p.drawLine(QPointF(bottom.x(), bottom.y() - 4), QPointF(bottom.right(), bottom.y() - 4))
        self._text(p, QRectF(bottom.x(), bottom.y() + 4, bottom.width(), 0), self.now_text,
                   self._font(1.3, True), wrap=True)

    def _paint_interest_chips(self, p: QPainter, area: QRectF, cw: float, ch: float, cols: int,
                              rows: int) -> None:
        for k, item in enumerate(self.interest):
            r = QRectF(area.x() + (k % cols) * (cw + 10), area.y() + (k // cols) * (ch + 10),
                       cw, ch)
            now = item.fd == self.now_fd
            label = self.tr("listen") if item.role == "listen" else \
                self.tr("wake") if item.role == "wake" else ""
            border = style.DATA if now else style.SERVER if "OUT" in item.mask else style.GREY
            self._chip(p, r, str(item.fd), item.mask, fill=style.BACKGROUND, border=border,
                       border_width=4 if now else 2 if "OUT" in item.mask else 1.5,
                       selected=item.conn is not None and item.conn == self.selected,
                       text_colour=style.MUTED if item.role == "wake" else style.FOREGROUND,
                       caption=label)
            if item.conn:
                self._hits.append((r, item.conn))

    def _paint_interest_squares(self, p: QPainter, area: QRectF) -> None:
        masks: dict[str, int] = {}
        for item in self.interest:
            masks[item.mask] = masks.get(item.mask, 0) + 1
        summary = "   ".join(f"{mask} × {n:,}" for mask, n in
                             sorted(masks.items(), key=lambda kv: -kv[1]))
        y = self._text(p, area, summary, self._font(1.15, True, mono=True), wrap=True)
        y = self._text(p, QRectF(area.x(), y + 2, area.width(), 0), self.tr(
            "one square per fd: grey = IN, red = also OUT (a send is waiting), "
            "green = handled now"), self._font(0.85), style.MUTED, wrap=True)
        grid = QRectF(area.x(), y + 8, area.width(), area.bottom() - y - 8)
        cw, ch, cols, rows = self._grid(len(self.interest), grid, (24.0 * self._s, 24.0 * self._s), 3.0)
        p.setPen(Qt.PenStyle.NoPen)
        for k, item in enumerate(self.interest[:cols * rows]):
            r = QRectF(grid.x() + (k % cols) * (cw + 3), grid.y() + (k // cols) * (ch + 3),
                       cw, ch)
            colour = style.DATA if item.fd == self.now_fd else \
                style.SERVER if "OUT" in item.mask else style.GREY
            if item.conn is not None and item.conn == self.selected:
                p.fillRect(r.adjusted(-2, -2, 2, 2), QColor(style.FOREGROUND))
            p.setBrush(QColor(colour))
            p.drawRect(r)
            if item.conn:
                self._hits.append((r, item.conn))

    def _again_badge(self, p: QPainter, rect: QRectF) -> None:
        rect = QRectF(rect.x(), rect.center().y() - rect.height() * self._s / 2,
                      rect.width() * self._s, rect.height() * self._s)
        p.setPen(QPen(QColor(style.FOREGROUND), 1))
        p.setBrush(QColor(style.AGAIN))
        p.drawRoundedRect(rect, 5, 5)
        p.setFont(self._font(0.85, True))
        p.setPen(QColor(style.INK_DARK))  # on the highlighter, in any theme
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.tr("again"))

    def _paint_ready(self, p: QPainter, area: QRectF) -> None:
        items = self.ready
        row_h = min(60.0 * self._s, max(26.0, (area.height() - 50) / max(1, len(items)) - 6))
        fits = max(1, int((area.height() - 44) // (row_h + 6)))
        start = 0
        if len(items) > fits:  # keep the one being handled in view
            now = next((k for k, it in enumerate(items) if it.status == "now"), 0)
            start = max(0, min(now - fits // 3, len(items) - fits + 1))
            fits -= 1  # room for the "more" line
        shown = items[start:start + fits]
        big = row_h >= 40 * self._s
        for k, item in enumerate(shown):
            r = QRectF(area.x(), area.y() + k * (row_h + 6), area.width(), row_h)
            if item.conn is not None and item.conn == self.selected:
                p.fillRect(r.adjusted(-4, -3, 4, 3), QColor(style.SELECTED))
            if item.conn:
                self._hits.append((r, item.conn))
            # position in the list
            p.setFont(self._font(1.0 if big else 0.8, mono=True))
            p.setPen(QColor(style.MUTED))
            p.drawText(QRectF(r.x(), r.y(), 36 * self._s, r.height()),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                       f"{start + k + 1}.")
            chip = QRectF(r.x() + 42 * self._s, r.y(), (86 if big else 70) * self._s, r.height())
            now, done = item.status == "now", item.status == "done"
            fill = style.DATA if now else style.GRID if done else style.BACKGROUND
            self._chip(p, chip, str(item.fd), "", fill=fill,
                       border=style.DATA if now else style.GREY, border_width=2,
                       top_scale=1.3 if big else 0.9,
                       text_colour=style.INK_LIGHT if now else style.FOREGROUND)
            x = chip.right() + 12
            f = self._font(1.05 if big else 0.85, mono=True)
            p.setFont(f)
            p.setPen(QColor(style.FOREGROUND))
            mask_w = QFontMetricsF(f).horizontalAdvance("IN|OUT|HUP") * (0.6 if big else 0.55)
            p.drawText(QRectF(x, r.y(), mask_w, r.height()), Qt.AlignmentFlag.AlignVCenter,
                       item.mask)
            x += mask_w + 8
            if item.again:
                self._again_badge(p, QRectF(x, r.center().y() - 13, 60, 26))
            x += 70 * self._s
            # what happened to it first (the point of the picture), then whose it is
            who = self._fd_words(item.fd, item.conn)
            status = {"now": self.tr("◀ now"), "done": self.tr("✓ done"),
                      "next": self.tr("next")}[item.status]
            text = status + (f":  {item.action}" if item.action else "")
            f = self._font(1.05 if big else 0.85, now)
            fm = QFontMetricsF(f)
            width = r.right() - x
            text_w = min(fm.horizontalAdvance(text), width)
            colour = style.FOREGROUND if not done else style.MUTED
            ty = r.center().y() - fm.height() / 2
            self._text(p, QRectF(x, ty, width, 0), text, f, colour)
            if width - text_w > 80 * self._s:
                self._text(p, QRectF(x + text_w + 16 * self._s, ty, width - text_w - 16 * self._s,
                                     0), who, self._font(1.05 if big else 0.85, mono=False),
                           style.MUTED)
        y = area.y() + len(shown) * (row_h + 6)
        if len(items) > len(shown):
            hidden = len(items) - len(shown)
            y = self._text(p, QRectF(area.x() + 42, y, area.width() - 42, 0),
                           self.tr("… {0} more in this ready list").format(hidden),
                           self._font(0.95), style.MUTED)
        if self.wait_number > 1 and y + 40 < area.bottom():
            fds = ", ".join(map(str, self.previous_ready[:12])) + \
                (" …" if len(self.previous_ready) > 12 else "")
            y = self._text(p, QRectF(area.x() + 42, y + 14, area.width() - 42, 0),
                           self.tr("the wait before reported: {0}").format(
                               fds or self.tr("nothing")), self._font(1.0), style.MUTED)
        if any(item.again for item in items) and y + 36 * self._s < area.bottom():
            badge = QRectF(area.x() + 42, y + 10 * self._s, 60, 26)
            self._again_badge(p, badge)
            legend = self.tr("= reported by the wait before too") if self.trigger != "edge" \
                else self.tr("= reported by the wait before too: new data came")
            self._text(p, QRectF(area.x() + 42 + 68 * self._s, y + 10 * self._s + 13 * self._s
                                 - QFontMetricsF(self._font(0.9)).height() / 2,
                                 area.width() - 110, 0), legend, self._font(0.9), style.MUTED)

    def _paint_single(self, p: QPainter, body: QRectF) -> None:
        if self.queue is not None:
            length, backlog = self.queue
            head = self.tr("Accept queue: {0} waiting (backlog {1}), as last observed").format(
                length, backlog)
        else:
            head = self.tr("Accept queue: not observed (the kernel observer is off)")
        y = self._text(p, body, head, self._font(1.3, True), shrink=True)
        area = QRectF(body.x(), y + 10, body.width(), body.bottom() - y - 10)
        if self.lanes:
            self._paint_lanes(p, self.lanes, area, min(64.0 * self._s, area.height()))

    def _paint_threads(self, p: QPainter, body: QRectF) -> None:
        lanes = self.lanes
        if self.picture == "processes":
            n = len(lanes) - 1
            y = self._text(p, body, (self.tr("1 child process") if n == 1 else
                                     self.tr("{0} child processes").format(n))
                           if lanes else self.tr("No process yet"), self._font(1.3, True))
        elif self.picture == "coroutines":
            count = self.tr("{0} greenlets on one OS thread") if self.mode == "gevent" else \
                self.tr("{0} tasks on one OS thread")
            y = self._text(p, body, count.format(len(lanes) - 1) if lanes else
                           self.tr("No loop yet"), self._font(1.3, True))
        else:  # threads
            y = self._text(p, body, self.tr("{0} threads").format(len(lanes)) if lanes else
                           self.tr("No thread yet"), self._font(1.3, True))
        area = QRectF(body.x(), y + 10, body.width(), body.bottom() - y - 10)
        if not lanes:
            return
        lane_h = min(64.0 * self._s, max(40.0 * self._s, area.height() / len(lanes) - 8))
        fits = int((area.height() + 8) // (lane_h + 8))
        if len(lanes) <= fits:
            self._paint_lanes(p, lanes, area, lane_h)
            return
        # Many threads: the main thread and the selected one as lanes, the rest as a grid.
        keep = [ln for ln in lanes if ln.role == "accept" or (ln.conn and ln.conn == self.selected)
                or ln.current]
        keep = keep[:max(1, fits - 3)]
        self.hidden_lanes = len(lanes) - len(keep)
        lanes_h = len(keep) * (lane_h + 8)
        self._paint_lanes(p, keep, QRectF(area.x(), area.y(), area.width(), lanes_h), lane_h)
        rest = [ln for ln in lanes if ln not in keep]
        grid = QRectF(area.x(), area.y() + lanes_h + 8, area.width(),
                      area.bottom() - area.y() - lanes_h - 8)
        counts: dict[str, int] = {}
        for ln in rest:
            counts[ln.activity] = counts.get(ln.activity, 0) + 1
        words = {"recv_blocked": self.tr("blocked in recv()"), "working": self.tr("answering"),
                 "sending": self.tr("sending"), "closing": self.tr("closing"),
                 "held": self.tr("held"), "error": self.tr("error"),
                 "started": self.tr("starting"), "accepting": self.tr("accepting"),
                 "parked": self.tr("parked")}
        # "299 more threads:" then a swatch and a count per activity (the grid's legend)
        f = self._font(1.05, True)
        fm = QFontMetricsF(f)
        head = (self.tr("{0} more threads:") if self.picture == "threads" else
                self.tr("{0} more children:") if self.picture == "processes" else
                self.tr("{0} more greenlets:") if self.mode == "gevent" else
                self.tr("{0} more tasks:")).format(len(rest))
        self._text(p, grid, head, f)
        x = grid.x() + fm.horizontalAdvance(head) + 16
        for activity, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            label = f"{n} {words.get(activity, activity)}"
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(ACTIVITY_COLOURS.get(activity, style.GREY)))
            side = fm.height() * 0.7
            p.drawRoundedRect(QRectF(x, grid.y() + (fm.height() - side) / 2, side, side), 3, 3)
            self._text(p, QRectF(x + side + 6, grid.y(), grid.right() - x, 0), label, f)
            x += side + 6 + fm.horizontalAdvance(label) + 22
        y = grid.y() + fm.height()
        cells = QRectF(grid.x(), y + 8, grid.width(), grid.bottom() - y - 8)
        cw, ch, cols, rows = self._grid(len(rest), cells, (40.0 * self._s, 26.0 * self._s), 4.0)
        for k, ln in enumerate(rest[:cols * rows]):
            r = QRectF(cells.x() + (k % cols) * (cw + 4), cells.y() + (k // cols) * (ch + 4),
                       cw, ch)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(ACTIVITY_COLOURS.get(ln.activity, style.GREY)))
            p.drawRoundedRect(r, 3, 3)
            if ln.conn:
                self._hits.append((r, ln.conn))

    def _paint_lanes(self, p: QPainter, lanes: list[Lane], area: QRectF, lane_h: float) -> None:
        label_w = 250.0 * self._s
        conn_w = 230.0 * self._s
        tall = lane_h >= 52 * self._s  # room for a second line (the type scales alike)
        for k, ln in enumerate(lanes):
            r = QRectF(area.x(), area.y() + k * (lane_h + 8), area.width(), lane_h)
            if ln.conn is not None and ln.conn == self.selected:
                p.fillRect(r.adjusted(-4, -3, 4, 3), QColor(style.SELECTED))
            if ln.conn:
                self._hits.append((r, ln.conn))
            name = ln.name or (self.tr("main thread") if ln.role == "accept" else
                               self.tr("thread {0}").format(ln.thread))
            sub = ln.sub or (self.tr("accept loop") if ln.role == "accept" else
                             self.tr("fd {0}").format(ln.fd) if ln.fd >= 0 else "")
            f1, f2 = self._font(1.15, True), self._font(0.9)
            h1, h2 = QFontMetricsF(f1).height(), QFontMetricsF(f2).height()
            top = r.center().y() - (h1 + (h2 if tall else 0)) / 2
            self._text(p, QRectF(r.x(), top, label_w - 10, 0), name, f1)
            if tall:
                self._text(p, QRectF(r.x(), top + h1, label_w - 10, 0), sub, f2, style.MUTED)
            box = QRectF(r.x() + label_w, r.y(), r.width() - label_w - conn_w, lane_h)
            colour = QColor(ACTIVITY_COLOURS.get(ln.activity, style.GREY))
            waiting = ln.activity in ("recv_blocked", "accepting", "started", "parked")
            p.setPen(QPen(colour, style.pen(4 if ln.current else 2)))
            fill = QColor(colour)
            fill.setAlpha(40 if waiting else 70)
            p.setBrush(fill)
            p.drawRoundedRect(box, 8, 8)
            f = self._font(1.2 if tall else 1.0, bold=not waiting)
            fm = QFontMetricsF(f)
            main_h = fm.height()
            last_f = self._font(0.85)
            show_last = bool(ln.last) and lane_h >= 56 * self._s
            text_top = box.center().y() - (main_h + (QFontMetricsF(last_f).height()
                                                     if show_last else 0)) / 2
            self._text(p, QRectF(box.x() + 14, text_top, box.width() - 28, 0), ln.text, f)
            if show_last:
                self._text(p, QRectF(box.x() + 14, text_top + main_h, box.width() - 28, 0),
                           self.tr("last: {0}").format(ln.last), last_f, style.MUTED)
            conn_text = short_conn(ln.conn) if ln.conn else ""
            self._text(p, QRectF(box.right() + 14, r.center().y() - h1 / 2, conn_w - 14, 0),
                       conn_text, self._font(1.1, mono=True))

    def _paint_sweep(self, p: QPainter, body: QRectF) -> None:
        # Totals on the right, in large type; the sweep on the left.
        side_w = min(420.0 * self._s, body.width() * 0.36)
        side = QRectF(body.right() - side_w, body.y(), side_w, body.height())
        left = QRectF(body.x(), body.y(), body.width() - side_w - 30, body.height())
        t = self.totals
        y = self._text(p, side, self.tr("So far ({0:,} sweeps)").format(t["sweeps"]),
                       self._font(1.2, True))
        if self.wasted_percent is not None:
            y = self._text(p, QRectF(side.x(), y + 6, side.width(), 0),
                           _percent(self.wasted_percent), self._font(4.0, True), style.WASTE)
            y = self._text(p, QRectF(side.x(), y, side.width(), 0),
                           self.tr("of the tries were wasted (EAGAIN)"), self._font(1.1))
            y += 16
            rows = ((self.tr("wasted (EAGAIN)"), t["eagain"], style.WASTE),
                    (self.tr("useful"), t["useful"], style.DATA))
            f = self._font(1.4, True, mono=True)
            fm = QFontMetricsF(f)
            num_w = max(fm.horizontalAdvance(f"{n:,}") for _, n, _ in rows) + 8
            for label, n, colour in rows:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(colour))
                p.drawRoundedRect(QRectF(side.x(), y + 6, 22, fm.height() - 12), 3, 3)
                p.setFont(f)
                p.setPen(QColor(style.FOREGROUND))
                p.drawText(QRectF(side.x() + 32, y, num_w, fm.height()),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{n:,}")
                lx = side.x() + 32 + num_w + 12
                self._text(p, QRectF(lx, y + (fm.height() - QFontMetricsF(
                    self._font(1.1)).height()) / 2, side.right() - lx, 0), label,
                    self._font(1.1))
                y += fm.height() + 4
            y = self._text(p, QRectF(side.x(), y + 10, side.width(), 0), self.ratio_text,
                           self._font(1.1, True), wrap=True)
        else:
            y = self._text(p, QRectF(side.x(), y + 6, side.width(), 0),
                           self.tr("no sweep yet"), self._font(1.4), style.MUTED)
        if self.note:
            self._text(p, QRectF(side.x(), y + 8, side.width(), 0), self.note, self._font(0.9),
                       style.MUTED, wrap=True)
        # The sweep.
        cells = self.sweep
        tried = sum(1 for c in cells if c.outcome != "untried")
        useful = sum(1 for c in cells if c.outcome == "useful")
        if self.idle_run:
            n, ms = self.idle_run
            head = self.tr("Sweeps #{0:,}–#{1:,}: {2:,} idle sweeps in {3} ms, every try "
                           "EAGAIN").format(self.sweep_number - n + 1, self.sweep_number, n,
                                            f"{ms:,.1f}" if ms < 10 else f"{ms:,.0f}")
        elif self.sweep_number:
            head = self.tr("Sweep #{0}: tried {1} of {2} sockets").format(
                self.sweep_number, tried, len(cells)) if not self.sweep_complete else \
                self.tr("Sweep #{0}: tried {1} sockets, {2} useful").format(
                    self.sweep_number, tried, useful)
        else:
            head = self.tr("No sweep yet")
        y = self._text(p, left, head, self._font(1.3, True))
        # legend
        ly = y + 6
        x = left.x()
        for label, colour in ((self.tr("useful: data moved or accepted"), style.DATA),
                              (self.tr("EAGAIN: nothing there"), style.WASTE),
                              (self.tr("not tried yet"), style.GRID)):
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(colour))
            p.drawRoundedRect(QRectF(x, ly + 4, 18, 18), 3, 3)
            f = self._font(0.95)
            self._text(p, QRectF(x + 24, ly, 400, 0), label, f)
            x += 24 + QFontMetricsF(f).horizontalAdvance(label) + 26
        y = ly + 34
        chart_h = min(190.0 * self._s, max(0.0, (left.bottom() - y) * 0.45)) if self.history else 0.0
        area = QRectF(left.x(), y, left.width(), left.bottom() - y - chart_h)
        if chart_h >= 90:
            self._paint_history(p, QRectF(left.x(), left.bottom() - chart_h + 16, left.width(),
                                          chart_h - 16))
        cw, ch, cols, rows = self._grid(len(cells), area, (104.0 * self._s, 76.0 * self._s), 10.0)
        for k, cell in enumerate(cells[:cols * rows]):
            r = QRectF(area.x() + (k % cols) * (cw + 10), area.y() + (k // cols) * (ch + 10),
                       cw, ch)
            colour = OUTCOME_COLOURS[cell.outcome]
            label = "EAGAIN" if cell.outcome == "eagain" else \
                self.tr("useful") if cell.outcome == "useful" else ""
            self._chip(p, r, str(cell.fd), label, fill=colour, border=colour,
                       caption=self.tr("listen") if cell.role == "listen" else "",
                       selected=cell.conn is not None and cell.conn == self.selected,
                       text_colour=style.INK_LIGHT if cell.outcome == "useful"
                       else style.text_on(colour).name())
            if cell.conn:
                self._hits.append((r, cell.conn))

    def _paint_history(self, p: QPainter, area: QRectF) -> None:
        """The latest sweeps as stacked bars: EAGAIN tries on top of useful ones. Idle
        sweeps in a row (one event) are one pale bar, a sweep's tries high, marked ×N."""
        history = self.history
        folded = any(n > 1 for _, _, n in history)
        title = self.tr("The last {0:,} sweeps: tries per sweep").format(
            sum(n for _, _, n in history))
        if folded:
            title += self.tr(" (a pale bar ×N: N idle sweeps in a row)")
        y = self._text(p, area, title, self._font(1.05, True), wrap=True)
        top = max(1.0, max(e + u for e, u, _ in history))
        y = self._text(p, QRectF(area.x(), y, area.width(), 0),
                       self.tr("tallest: {0} tries · newest on the right").format(round(top)),
                       self._font(0.9), style.MUTED)
        chart = QRectF(area.x(), y + 6, area.width(), area.bottom() - y - 6)
        if folded:  # room for the ×N above the tallest bar
            chart.setTop(min(chart.bottom(), chart.top() + 18 * self._s))
        slot = chart.width() / HISTORY
        bar_w = max(2.0, slot * 0.75)
        p.setPen(QPen(QColor(style.GRID), 1))
        p.drawLine(QPointF(chart.x(), chart.bottom()), QPointF(chart.right(), chart.bottom()))
        p.setPen(Qt.PenStyle.NoPen)
        small = self._font(0.7)
        for k, (eagain, useful, n) in enumerate(history):
            x = chart.x() + (HISTORY - len(history) + k) * slot
            hu = chart.height() * useful / top
            he = chart.height() * eagain / top
            p.setBrush(QColor(style.DATA))
            p.drawRect(QRectF(x, chart.bottom() - hu, bar_w, hu))
            waste = QColor(style.WASTE)
            if n > 1:
                waste.setAlphaF(0.45)
                label = f"×{n:,}"
                if QFontMetricsF(small).horizontalAdvance(label) <= slot - 2:
                    p.setFont(small)
                    p.setPen(QColor(style.MUTED))
                    p.drawText(QRectF(x - (slot - bar_w) / 2, chart.bottom() - hu - he
                                      - 18 * self._s, slot, 18 * self._s),
                               Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, label)
                    p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(waste)
            p.drawRect(QRectF(x, chart.bottom() - hu - he, bar_w, he))
