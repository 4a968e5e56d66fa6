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
from ..model.text import client_port, ready_mask_text, short_conn
from . import style
from .base import View


def _percent(value: float) -> str:
    """A share in percent, never rounded to a false 0 % or 100 %."""
    text = f"{value:.0f} %"
    if text in ("0 %", "100 %") and 0 < value < 100:
        text = f"{value:.1f} %" if 0.05 <= value <= 99.95 else f"{value:.2f} %"
    return text


# ---------------------------------------------------------------- unread bytes
# A connection's unread bytes (Recv-Q): what the server's kernel holds for it that the
# program has not read. Read from one connection's events, kept by log index:
UNREAD_KINDS = ("packet", "recv", "send", "tcp_state", "state_check", "close", "shutdown")
# what a row of the series is
_OTHER, _SYN, _DATA, _READ, _OBSERVED, _SENT, _FIN, _BYE = range(8)
_CAPTURED, _DERIVED = 0.0, 1.0  # a segment's origin (a row's fourth value)
# The server's end has received the client's FIN in these states: sock_diag's Recv-Q
# (rcv_nxt - copied_seq) counts it as one byte until a recv() returns 0 past it.
FIN_RECEIVED = ("CLOSE_WAIT", "LAST_ACK", "CLOSING")
UNREAD_CONNS = 32  # connections whose unread bytes one step works out, at most
UNREAD_BUDGET_S = 0.010  # decoding their events, per frame, all of them together
_MEMO = 512  # answers kept per connection (by how many of its rows lie before the cursor)


def _unread_row(e: Any) -> tuple[float, float, float, float]:
    """(what, a, b, c) of one event: the client's SYN (its seq; c its origin), a segment
    of the client's bytes (seq, length; c its origin), the client's FIN without data
    (seq; c its origin), a read by the server (bytes), the kernel's observation of the
    server's end (rqueue, or -1 when gone; when the dump that saw it began; c 1 when
    its state says a FIN was received), a send by the client (bytes), the client's
    close or shutdown (its FIN is on its way). A segment the lab's fault dropped never
    arrived: it is nothing here."""
    d, kind = e.data, e.kind
    if kind == "packet":
        if e.conn is None or str(d.get("sport")) != client_port(e.conn) or d.get("dropped"):
            return (_OTHER, 0.0, 0.0, 0.0)
        origin = _DERIVED if d.get("origin") == "derived" or d.get("relative") else _CAPTURED
        flags = str(d.get("flags") or "").split("|")
        seq = float(int(d.get("tcp_seq") or 0) % (1 << 32))
        if "SYN" in flags and "ACK" not in flags:
            return (_SYN, seq, 0.0, origin)
        n = int(d.get("len") or 0)
        if n > 0:
            return (_DATA, seq, float(n), origin)
        return (_FIN, seq, 0.0, origin) if "FIN" in flags else (_OTHER, 0.0, 0.0, 0.0)
    if kind == "recv" and e.src == "server":
        return (_READ, float(int(d.get("bytes") or 0)), 0.0, 0.0)
    if kind == "send" and e.src == "client":
        return (_SENT, float(int(d.get("bytes") or 0)), 0.0, 0.0)
    if kind in ("close", "shutdown") and e.src == "client":
        return (_BYE, 0.0, 0.0, 0.0)
    if kind in ("tcp_state", "state_check") and e.src == "kernel" \
            and d.get("side") == "server" and d.get("source") == "observed":
        rq = d.get("rqueue")
        return (_OBSERVED, -1.0 if rq is None else float(rq),
                float(d.get("seen_from_ns") or e.t_ns),
                1.0 if d.get("state") in FIN_RECEIVED else 0.0)
    return (_OTHER, 0.0, 0.0, 0.0)


class _ConnSeries(EventSeries):
    """The events of one connection (any source) that tell its unread bytes; and what
    was worked out from them, by how many rows lie at or before the cursor (``memo``)."""

    def __init__(self, conn: str) -> None:
        super().__init__(UNREAD_KINDS, src=None, value=_unread_row, width=4)
        self.conn = conn

    def _reset(self) -> None:
        super()._reset()
        self.memo: dict[int, Any] = {}

    def _truncate(self, n: int, upto: int, log: Any) -> None:
        if n < self.n:  # rows from n on are gone (a merge): so is what came of them
            self.memo = {k: v for k, v in self.memo.items() if k <= n}
        super()._truncate(n, upto, log)

    def _matches(self, log: Any, codes: list[int], start: int, stop: int) -> np.ndarray:
        code = log.conns.codes.get(self.conn)
        if code is None:
            return np.empty(0, np.int64)
        hit = np.flatnonzero(log.column("conn")[start:stop] == code) + start
        return hit[np.isin(log.column("kind")[hit], codes)]


def _segments(v: np.ndarray) -> tuple[float | None, int]:
    """The origin the segments are read from (captured if any captured SYN, else
    derived; None: no client SYN) and the row of the latest client SYN of that origin:
    the connection as it stands began there (a port pair used again begins anew)."""
    what, origin = v[:, 0], v[:, 3]
    syn = what == _SYN
    for which in (_CAPTURED, _DERIVED):
        rows = np.flatnonzero(syn & (origin == which))
        if len(rows):
            return which, int(rows[-1])
    return None, -1


def _work_out(v: np.ndarray, t: np.ndarray) -> tuple[int, str] | None:
    what = v[:, 0]
    which, syn = _segments(v)
    after = np.arange(len(v)) > syn  # this connection's rows (all of them without a SYN)
    seen = np.flatnonzero(after & (what == _OBSERVED))
    if len(seen):
        o = int(seen[-1])
        rqueue, since, fin = v[o, 1], v[o, 2], v[o, 3]
        moved = after & ((what == _DATA) | (what == _READ) | (what == _SENT))
        if rqueue >= 0 and not np.any(moved & (t >= since)):
            # A FIN received counts one in Recv-Q until a recv() returns 0 past it.
            if fin and not np.any(after & (what == _READ) & (v[:, 1] == 0) & (t < since)):
                rqueue -= 1
            return max(0, int(rqueue)), "observed"
    if which is None:
        return None
    isn = int(v[syn, 1])
    data = after & (what == _DATA) & (v[:, 3] == which)
    arrived = 0
    if data.any():  # the furthest byte the segments brought (a retransmission counts once)
        ends = (v[data, 1].astype(np.int64) + v[data, 2].astype(np.int64) - isn - 1) % (1 << 32)
        ends = ends[ends < (1 << 31)]  # (not one from before this SYN)
        arrived = int(ends.max()) if len(ends) else 0
    unread = arrived - int(v[after & (what == _READ), 1].sum())
    return (unread, "derived") if unread >= 0 else None


def unread_at(series: EventSeries, cursor: int) -> tuple[int, str] | None:
    """The unread bytes at ``cursor`` and where the number comes from: "observed" (the
    kernel's sock_diag report, while nothing since can have changed it; a FIN received
    is not a byte), "derived" (the client's bytes the segments of one origin brought
    since its latest SYN, captured if any, else derived, less the server's reads since),
    or None when neither tells (no report since the last change, no client SYN seen)."""
    k = series.count(cursor)
    if not k:
        return None
    memo = getattr(series, "memo", None)
    if memo is not None and k in memo:
        return memo[k]  # type: ignore[no-any-return]
    found = _work_out(series.v[:k], series.t[:k])
    if memo is not None:
        if len(memo) >= _MEMO:
            memo.clear()
        memo[k] = found
    return found


def arrived_between(series: EventSeries, after: int, cursor: int) -> bool:
    """Whether anything new reached the connection's socket after log index ``after``, up
    to ``cursor``: a client segment with data or a FIN (of the origin read), or, without
    segments, a send by the client; or the client closed or shut down (its FIN comes).
    An edge-triggered report comes for each."""
    a, k = series.count(after), series.count(cursor)
    if k <= a:
        return False
    v = series.v[:k]
    which, _ = _segments(v)
    rows, what = v[a:], v[a:, 0]
    if np.any(what == _BYE):
        return True
    if which is None:
        return bool(np.any(what == _SENT))
    return bool(np.any(((what == _DATA) | (what == _FIN)) & (rows[:, 3] == which)))


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
    actions: tuple[str, ...] = ()  # the same, one call (or the accepts' summary) each


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
            float(e.data.get("tries") or 0), float(e.data.get("eagain") or 0),
            float(e.data.get("useful") or 0), float(e.data.get("sweeps") or 1)), width=4)
        self._conn_series: dict[str, _ConnSeries] = {}  # newest used last
        self._conn_log: Any = None  # (a weak reference to) the log they were read from
        self._hits: list[tuple[QRectF, str]] = []
        self.elided: list[str] = []  # texts the latest paint had to cut short
        self._catch_up = QTimer(self)
        self._catch_up.setSingleShot(True)
        self._catch_up.timeout.connect(self._keep_counting)
        self._s = 1.0  # type scale: the view's size against 1280 x 720
        self._compact = False  # short for its type: the words give way to the picture
        # the picture says in a legend where the unread bytes come from: each number
        # may then leave out its "(observed)" or "(derived)"
        self._short_notes = False
        self.last_draw_ms = 0.0
        self.last_paint_ms = 0.0

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
        self.queue: tuple[int, int] | None = None  # (waiting, backlog), if observed
        self.queue_stale = False  # the server accepted since the queue was last observed
        # the observer reported the queue, but not since the server last started or
        # listened; and the backlog that listen() asked for
        self.queue_unseen = False
        self.queue_backlog = 0
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
        # conn -> (bytes the kernel holds that the server has not read, "observed"/"derived")
        self.unread: dict[str, tuple[int, str]] = {}
        self._unread_pending = False
        self._back_waiting = False  # the loop handled every ready fd and waits again

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
        self._unread_bytes(state, log, cursor)
        if self._back_waiting:  # ... with bytes it left unread: edge-triggered's stall
            self._stall(state, log, cursor)
        self.last_draw_ms = (time.perf_counter() - started) * 1e3
        # A far jump into a long run: the sweep totals (and a connection's events) are
        # read a slice per call; keep reading on a timer until they are whole, even if
        # the cursor rests.
        # At most a quarter of the time: a drawing and its paint of tens of ms (a load
        # test's stream, where the counting is never done) again every 40 ms took the
        # window's whole frame.
        behind = (mode == "nonblocking" and not self._sweeps.complete) or self._unread_pending
        if behind and not self._catch_up.isActive():
            self._catch_up.start(max(40, round(4 * (self.last_draw_ms + self.last_paint_ms))))
        self.update()

    def _unread_bytes(self, state: Any, log: Any, cursor: int) -> None:
        """The unread bytes of the connections drawn (the lanes acting or selected, the
        ready ones, the other lanes, the sweep, the interest list), up to UNREAD_CONNS.
        Their events are decoded within one budget for the frame, the first drawn first;
        the rest wait for the next frame (the catch-up timer) and show nothing till then."""
        wanted: list[str] = []
        if not kind_codes(log, ("packet", "tcp_state", "state_check")):
            return  # nothing can tell them
        current = [ln.conn for ln in self.lanes if ln.current or ln.conn == self.selected]
        for conn in [*current, *(r.conn for r in self.ready), *(ln.conn for ln in self.lanes),
                     *(c.conn for c in self.sweep), *(i.conn for i in self.interest)]:
            if conn and conn not in wanted:
                wanted.append(conn)
                if len(wanted) >= UNREAD_CONNS:
                    break
        cache = self._conn_series
        if self._conn_log is None or self._conn_log() is not log:  # another log: read anew
            cache.clear()
            self._conn_log = weakref.ref(log)
        stop = min(cursor + 1, len(log))
        deadline = time.perf_counter() + UNREAD_BUDGET_S
        read = False  # whether a series has read this frame (the first always may)
        for conn in wanted:
            c = state.connections.get(conn)
            if c is None or c.closed_ns is not None:  # closed: what it held is gone
                continue
            series = cache.pop(conn, None) or _ConnSeries(conn)
            cache[conn] = series  # the newest used last
            if series.upto < stop:
                if read and time.perf_counter() > deadline:
                    self._unread_pending = True  # its events wait for the next frame
                    continue
                read = True
            series.update(log, stop, deadline=deadline)
            if not series.complete:
                self._unread_pending = True
                continue
            found = unread_at(series, cursor)
            if found is not None and found[0] > 0:
                self.unread[conn] = found
        while len(cache) > 4 * UNREAD_CONNS:
            cache.pop(next(iter(cache)))

    def _stall(self, state: Any, log: Any, cursor: int) -> None:
        """Edge-triggered only: the loop handled every ready fd and waits again, though
        one of them still holds bytes that had arrived before the server's last call on
        it (its last recv, or an EAGAIN) and nothing has arrived since: no report will
        name them. (Bytes that arrived since are a new edge: the next wait reports it.)"""
        if state.mode.get("trigger") != "edge":
            return  # level-triggered: the next wait reports every fd that holds bytes
        for r in self.ready:
            if r.conn not in self.unread:
                continue
            series = self._conn_series.get(r.conn)
            last = last_index(log, ["recv", "eagain"], cursor + 1, conn=r.conn)
            if series is None or last <= self.wait_index:
                continue  # not handled since this wait reported it
            left = unread_at(series, last)
            if left is None or left[0] <= 0 or arrived_between(series, last, cursor):
                continue
            n, origin = self.unread[r.conn]
            if origin == "observed":
                text = self.tr("Every ready fd handled: the server is back in {0}, waiting, "
                               "though fd {1} still holds 1 unread byte (observed)") if n == 1 \
                    else self.tr("Every ready fd handled: the server is back in {0}, waiting, "
                                 "though fd {1} still holds {2} unread bytes (observed)")
            else:
                text = self.tr("Every ready fd handled: the server is back in {0}, waiting, "
                               "though fd {1} still holds 1 unread byte (derived)") if n == 1 \
                    else self.tr("Every ready fd handled: the server is back in {0}, waiting, "
                                 "though fd {1} still holds {2} unread bytes (derived)")
            self.now_text = text.format(self.call, r.fd, n)
            return

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
        self._observe_queue(state, log, cursor)
        call = self.call
        wait = last_index(log, list(WAIT_KINDS), cursor + 1)
        # Held by the gate (stepping) before its next wait: it makes no call until released.
        gate = last_index(log, ["gate"], cursor + 1, before=max(0, wait + 1))
        held = gate >= 0 and log[gate].data.get("state") == "held" and (
            wait < 0 or log[gate].data.get("action") in WAIT_KINDS)
        if wait < 0:
            self.now_text = self.tr("Held before {0} (stepping): the server makes no call until "
                                    "it is released.").format(call) if held else \
                self.tr("Not waiting yet: the server is registering its sockets.")
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
                                        fd in before, self._role(fd, conn), conn, text,
                                        tuple(done)))
        if held:
            self.now_text = self.tr("Held before {0} (stepping): the server makes no call until "
                                    "it is released.").format(call)
        elif waiting:
            self._back_waiting = True
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
            n = int(data.get("bytes") or 0)
            if n == 0:
                return self.tr("recv → 0: peer closed") if long else self.tr("recv 0")
            return self.tr("recv {0} bytes").format(n) if long else self.tr("recv {0} B").format(n)
        if kind == "send":
            n, wanted = int(data.get("bytes") or 0), int(data.get("wanted") or 0)
            if long and wanted > n:
                return self.tr("send {0} of {1} bytes (buffer full)").format(n, wanted)
            return self.tr("send {0} bytes").format(n) if long else self.tr("send {0} B").format(n)
        if kind == "eagain":
            op = data.get("op") or ""
            if long:
                return self.tr("{0} → EAGAIN: nothing more, drained").format(op)
            return self.tr("{0} EAGAIN").format(op)
        if kind == "accept":
            return self.tr("accept → new fd {0}").format(e.fd)
        if kind == "close":
            return self.tr("close ({0})").format(data.get("reason") or "") if long else \
                self.tr("close")
        if kind in INTEREST_KINDS:  # epoll's epoll_ctl, or select/poll's watched set
            op, mask = data.get("op") or "", data.get("mask") or ""
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
            return self.tr("answer {0}").format(data.get("status") or "")
        if kind == "gate":
            return self.tr("held before {0}").format(data.get("action") or "")
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
        self._observe_queue(state, log, cursor)
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

    def _observe_queue(self, state: Any, log: Any, cursor: int) -> None:
        """The accept queue as the kernel observer last reported it, from that report's
        own values (None: never, or not since the server last started or listened: a
        new listening socket's queue is not the old one's), and whether the server has
        accepted since (the length is then out of date: a report comes after its dump,
        so even one a little later than an accept may be)."""
        seen = last_index(log, ["accept_queue"], cursor + 1, src="kernel")
        if seen < 0:
            return
        self.queue_backlog = int(state.listen.get("backlog") or 0)  # as the server asked
        if last_index(log, ["mode", "listen"], cursor + 1, before=seen + 1) >= 0:
            self.queue_unseen = True  # reported before, not since the server (re)started
            return
        d = log[seen].data
        length, backlog = d.get("length"), d.get("backlog")
        if length is None:
            return
        self.queue = (int(length), int(backlog or 0))
        self.queue_stale = last_index(log, ["accept"], cursor + 1, before=seen) >= 0

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
            got = int(data.get("bytes") or 0)
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
                data.get("status") or "")
        elif kind == "send":
            if int(data.get("wanted") or 0) > int(data.get("bytes") or 0):
                lane.activity = "sending"
                lane.text = self.tr("blocked in send(): the client's window is full")
            elif current:
                lane.activity = "sending"
                lane.text = self.tr("send() {0} bytes").format(int(data.get("bytes") or 0))
            else:
                lane.text = self.tr("blocked in recv(): waiting for the next request")
        elif kind in ("close", "shutdown"):
            lane.activity, lane.text = "closing", self.tr("closing the connection")
        elif kind == "gate":
            lane.activity = "held"
            lane.text = self.tr("held before {0} (stepping)").format(data.get("action") or "")
        elif kind == "error":
            lane.activity = "error"
            lane.text = self.tr("error: {0}").format(data.get("what") or "")
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
                call = (str(e.data.get("call") or "").split() or [""])[-1]
                hub.text = self.tr("back from {0} (slept {1} ms): waking the ready "
                                   "ones").format(call, f"{blocked / 1e6:.1f}") \
                    if isinstance(blocked, int) else \
                    self.tr("back from {0}.select(): {1} fd(s) ready").format(
                        e.data.get("call"), len(ready))
            elif e.kind == "accept":
                hub.text = self.tr("accepted fd {0}: a new coroutine will serve it").format(e.fd)
            elif e.kind in INTEREST_KINDS:
                hub.text = self._action_text(e, long=True)
            elif e.kind == "recv":
                hub.text = self.tr("a callback read {0} bytes of fd {1} for its stream").format(
                    int(e.data.get("bytes") or 0), e.fd)
            elif e.kind == "send":
                hub.text = self.tr("a callback sent {0} more bytes of fd {1}").format(
                    int(e.data.get("bytes") or 0), e.fd)
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
                lane.last = self.tr("{0}() → EAGAIN").format(data.get("op") or "recv")
                lane.text = self.tr("parked: {0}() said EAGAIN; the loop's epoll watches "
                                    "fd {1}").format(data.get("op") or "recv", lane.fd)
            elif kind == "recv" and data.get("by") == "loop":
                got = int(data.get("bytes") or 0)
                lane.activity, lane.current = "parked", False  # (the loop's call, not its own)
                lane.text = self.tr("the loop read {0} bytes for it: it runs when its turn "
                                    "comes").format(got) if got else \
                    self.tr("the loop read the client's FIN: it runs when its turn comes")
            elif kind == "send" and int(data.get("wanted") or 0) > int(data.get("bytes") or 0):
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
            run = int(last.data.get("sweeps") or 0)
            if run:  # idle sweeps, folded: every socket tried, every try EAGAIN
                since = int(last.data.get("since_ns") or last.t_ns)
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
        started = time.perf_counter()
        p = QPainter(self)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            self._paint(p, QRectF(0, 0, self.width(), self.height()))
        finally:
            p.end()
            self.last_paint_ms = (time.perf_counter() - started) * 1e3

    def _font(self, scale: float = 1.0, bold: bool = False, mono: bool = False) -> Any:
        """style.font, scaled with the view: a small window shrinks the type, a
        full-screen projector enlarges it."""
        return style.font(scale * self._s / style.ZOOM, bold, mono)  # style's size has the zoom

    # ------------------------------------------------------------ fitting text
    @staticmethod
    def _scaled(font: QFont, factor: float) -> QFont:
        f = QFont(font)
        f.setPointSizeF(max(1.0, font.pointSizeF() * factor))
        return f

    @staticmethod
    def _line_h(font: QFont, text: str = "") -> float:
        fm = QFontMetricsF(font)
        if text and not text.isascii():  # Chinese comes from a fallback font, taller
            return max(fm.height(), fm.boundingRect(QRectF(0, 0, 1e6, 1e4), int(
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop), text).height())
        return fm.height()

    def _fit_line(self, text: str, font: QFont, width: float, floor: float = 0.75
                  ) -> QFont | None:
        """``font``, or smaller down to ``floor`` of its size, so that one line of
        ``text`` fits ``width``; None if not even then."""
        fm = QFontMetricsF(font)
        need = fm.horizontalAdvance(text)
        if need <= width:
            return font
        factor = width / need if need > 0 else 1.0
        for _ in range(6):  # widths do not scale exactly with the size (hinting)
            if factor < floor:
                return None
            f = self._scaled(font, factor)
            if QFontMetricsF(f).horizontalAdvance(text) <= width:
                return f
            factor *= 0.96
        return None

    @staticmethod
    def _wrapped(font: QFont, text: str, width: float) -> QRectF:
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
                    | Qt.TextFlag.TextWordWrap)
        return QFontMetricsF(font).boundingRect(QRectF(0, 0, max(1.0, width), 1e6), flags, text)

    def _fit_wrap(self, text: str, font: QFont, width: float, height: float,
                  floor: float = 0.7) -> QFont | None:
        """``font`` or smaller (down to ``floor``) so that ``text``, wrapped at ``width``,
        is at most ``height`` tall and no word is wider than ``width``."""
        factor = 1.0
        for _ in range(12):
            f = font if factor == 1.0 else self._scaled(font, factor)
            b = self._wrapped(f, text, width)
            if b.height() <= height and b.width() <= width + 0.5:
                return f
            factor *= 0.92
            if factor < floor:
                return None
        return None

    def _text(self, p: QPainter | None, rect: QRectF, text: str, font: Any,
              colour: str | None = None, wrap: bool = False,
              align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft, shrink: bool = False,
              floor: float = 0.75, or_wrap: bool = False) -> float:
        """Draw text at the top of ``rect`` (in ``colour``, else the theme's text colour);
        returns the y below it. With ``shrink``, one line that does not fit is set
        smaller, down to ``floor`` of its size, before it loses its end (which
        ``elided`` records), or with ``or_wrap`` goes on more lines. Wrapped text whose
        longest word is too wide is set smaller alike. ``p`` None: measure only."""
        if not text:
            return rect.y()
        if or_wrap and not wrap and self._fit_line(text, font, rect.width(), floor) is None:
            wrap, font = True, self._scaled(font, max(floor, 0.85))
        flags = align | Qt.AlignmentFlag.AlignTop
        if wrap:
            flags |= Qt.TextFlag.TextWordWrap
            bound = self._wrapped(font, text, rect.width())
            if bound.width() > rect.width() + 0.5:
                font = self._fit_wrap(text, font, rect.width(), 1e6, floor) or font
                bound = self._wrapped(font, text, rect.width())
                if bound.width() > rect.width() + 0.5:
                    flags |= Qt.TextFlag.TextWrapAnywhere
                    bound = QFontMetricsF(font).boundingRect(
                        QRectF(0, 0, rect.width(), 1e6), int(flags), text)
            height = bound.height()
        else:
            if shrink:
                font = self._fit_line(text, font, rect.width(), floor) or \
                    self._scaled(font, floor)
            fm = QFontMetricsF(font)
            shown = fm.elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
            if shown != text and p is not None:
                self.elided.append(text)
            text = shown
            height = self._line_h(font, text)
        if p is not None:
            p.setFont(font)
            p.setPen(QColor(colour or style.FOREGROUND))
            p.drawText(QRectF(rect.x(), rect.y(), rect.width(), height), int(flags), text)
        return rect.y() + height

    def _flow(self, p: QPainter | None, rect: QRectF, items: list[tuple[str, str]],
              font: QFont, gap: float = 22.0, indent: float = 0.0) -> float:
        """A legend: a swatch and a label per item, left to right (the first line from
        ``indent`` on), on as many lines as the width needs. Returns the y below it."""
        fm = QFontMetricsF(font)
        side = fm.height() * 0.7
        x, y = rect.x() + indent, rect.y()
        line_h = max(self._line_h(font, label) for label, _ in items) if items else 0.0
        for label, colour in items:
            w = side + 6 + fm.horizontalAdvance(label)
            if x > rect.x() and x + w > rect.right():
                x, y = rect.x(), y + line_h + 2
            if p is not None:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(colour))
                p.drawRoundedRect(QRectF(x, y + (line_h - side) / 2, side, side), 3, 3)
            self._text(p, QRectF(x + side + 6, y, max(1.0, rect.right() - x - side - 6), 0),
                       label, font, shrink=True)
            x += w + gap * self._s / 1.5
        return y + line_h

    # ------------------------------------------------------------ unread bytes
    def _unread_text(self, conn: str | None, origin: bool = True) -> str:
        if conn is None or conn not in self.unread:
            return ""
        n, source = self.unread[conn]
        if not origin:
            return self.tr("{0} B unread").format(n)
        return (self.tr("{0} B unread (observed)") if source == "observed" else
                self.tr("{0} B unread (derived)")).format(n)

    def _note(self, conn: str | None) -> str:
        """A connection's unread bytes on a chip: the number alone where the picture's
        legend says where it comes from, else with its origin."""
        return self._unread_text(conn, origin=not self._short_notes)

    def _origins(self, conns: list[str | None]) -> set[str]:
        return {self.unread[c][1] for c in conns if c in self.unread}  # type: ignore[index]

    def _unread_legend(self, conns: list[str | None]) -> str:
        """Where the unread bytes of ``conns`` (those drawn) come from, in words; "" when
        none of them shows any."""
        origins = self._origins(conns)
        if not origins:
            return ""
        if origins == {"observed"}:
            return self.tr("B unread: observed by the kernel (Recv-Q)")
        if origins == {"derived"}:
            return self.tr("B unread: derived from the segments and the reads")
        return self.tr("B unread: observed or derived, as each says")

    def _pill(self, p: QPainter | None, x: float, cy: float, text: str, font: QFont,
              fill: str = style.CLIENT) -> float:
        """A label on a coloured pill, its left at ``x``, centred on ``cy``; its width
        (``p`` None: only that)."""
        fm = QFontMetricsF(font)
        pad = 6 * self._s / 1.5
        r = QRectF(x, cy - fm.height() / 2 - 2, fm.horizontalAdvance(text) + 2 * pad,
                   fm.height() + 4)
        if p is None:
            return r.width()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(fill))
        p.drawRoundedRect(r, r.height() / 2, r.height() / 2)
        p.setFont(font)
        p.setPen(style.text_on(fill))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)
        return r.width()

    def _unread_pill(self, p: QPainter | None, x: float, cy: float, conn: str | None, font: QFont,
                     width: float) -> float:
        """The connection's unread bytes as a pill, with their origin if it fits in
        ``width``; 0 when there are none or no room."""
        pad = 12 * self._s / 1.5 + 4
        for origin in ((True, False) if self._short_notes else (True,)):
            text = self._unread_text(conn, origin)
            if not text:
                return 0.0
            f = self._fit_line(text, font, width - pad, 0.8)
            if f is not None:
                return self._pill(p, x, cy, text, f)
        return 0.0

    # ------------------------------------------------------------ the page
    def _paint(self, p: QPainter, area: QRectF) -> None:
        self._hits = []
        self.elided = []
        self._short_notes = False
        # The zoom enlarges the type and, alike, the chips and rows sized for it.
        self._s = max(0.75, min(1.6, area.width() / 1280, area.height() / 720)) * style.ZOOM
        # Short for its type (zoomed in, a presentation's slide): what is said in
        # words elsewhere (the explanation, the sub-headings) gives way to the picture.
        self._compact = area.height() / self._s < 450
        p.fillRect(area, QColor(style.BACKGROUND))
        margin = 18.0
        x, y, w = margin, margin, area.width() - 2 * margin
        compact = self._compact
        # Title, and the trigger in large type on the right.
        badge_w = 0.0
        if self.badge:
            f = self._font(1.6 if compact else 2.2, bold=True)
            badge_w = QFontMetricsF(f).horizontalAdvance(self.badge) + 36
            rect = QRectF(x + w - badge_w, y, badge_w, QFontMetricsF(f).height() + 12)
            p.setPen(QPen(QColor(style.FOREGROUND), style.pen(3)))
            p.setBrush(QColor(style.BACKGROUND))
            p.drawRoundedRect(rect, 8, 8)
            p.setFont(f)
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.badge)
        y = self._text(p, QRectF(x, y, w - badge_w - 12, 0), self.heading,
                       self._font(1.5 if compact else 2.0, True), shrink=True, floor=0.7)
        if not compact:
            y = self._text(p, QRectF(x, y + 2, w - badge_w - 12, 0), self.explanation,
                           self._font(1.1), style.MUTED, wrap=True)
        else:  # one line, if it fits as one
            f = self._fit_line(self.explanation, self._font(0.95), w - badge_w - 12, 0.85)
            if f is not None:
                y = self._text(p, QRectF(x, y + 2, w - badge_w - 12, 0), self.explanation, f,
                               style.MUTED)
        y += 10 if compact else 14
        body = QRectF(x, y, w, area.bottom() - margin - y)
        if self.picture == "readiness":
            self._paint_epoll(p, body)
        elif self.mode == "threaded" or self.picture in ("coroutines", "processes"):
            self._paint_threads(p, body)
        elif self.picture == "single":
            self._paint_single(p, body)
        elif self.mode == "nonblocking":
            self._paint_sweep(p, body)

    def _chip(self, p: QPainter, rect: QRectF, top: str, bottom: str, *, fill: str,
              border: str, border_width: float = 1.5, selected: bool = False,
              top_scale: float = 1.3, text_colour: str | None = None,
              caption: str = "", note: str = "", note_colour: str = style.CLIENT) -> None:
        """A rounded box: ``top`` (an fd) in large type, fitted to the box; under it
        ``note`` (unread bytes) and ``bottom`` (a mask, an outcome), above it ``caption``
        (listen, wake), each only where it fits whole."""
        if selected:
            p.fillRect(rect.adjusted(-4, -4, 4, 4), QColor(style.SELECTED))
        p.setPen(QPen(QColor(border), style.pen(border_width)))
        p.setBrush(QColor(fill))
        p.drawRoundedRect(rect, 6, 6)
        if rect.height() < 14 or rect.width() < 14:
            return
        inner_w, inner_h = rect.width() - 6, rect.height() - 4
        # every line, set a little smaller if that makes them all fit; else the lines
        # that fit, by priority: the fd, the note, the mask, the caption
        wanted = [(tag, text, scale, colour or style.FOREGROUND, bold, mono) for
                  tag, text, scale, colour, bold, mono in (
                      ("top", top, top_scale, text_colour, True, True),
                      ("note", note, 0.85, note_colour, True, False),
                      ("bottom", bottom, 0.85, text_colour, False, True),
                      ("caption", caption, 0.75, text_colour, False, False)) if text]
        lines: dict[str, tuple[str, QFont, str]] = {}
        for factor in (1.0, 0.9, 0.8, 0.7):
            fitted = {tag: (text, self._fit_line(text, self._font(scale * factor, bold, mono),
                                                 inner_w, 0.75 if tag != "top" else 0.5),
                            colour) for tag, text, scale, colour, bold, mono in wanted}
            if all(f is not None for _, f, _ in fitted.values()) and sum(
                    self._line_h(f, t) for t, f, _ in fitted.values()) <= inner_h:
                lines = fitted  # type: ignore[assignment]
                break
        else:
            room = inner_h
            for tag, text, scale, colour, bold, mono in wanted:
                f = self._fit_line(text, self._font(scale, bold, mono), inner_w,
                                   0.75 if tag != "top" else 0.5)
                if f is not None and tag == "top" and self._line_h(f) > room:
                    f = self._scaled(f, room / self._line_h(f))
                if f is None or self._line_h(f, text) > room + 0.5:
                    if tag == "top":
                        return  # not even the fd: the box alone
                    continue
                room -= self._line_h(f, text)
                lines[tag] = (text, f, colour)
        order = [lines[t] for t in ("caption", "top", "bottom", "note") if t in lines]
        y = rect.center().y() - sum(self._line_h(f, t) for t, f, _ in order) / 2
        for text, f, colour in order:
            h = self._line_h(f, text)
            p.setFont(f)
            p.setPen(QColor(colour))
            p.drawText(QRectF(rect.x(), y, rect.width(), h), Qt.AlignmentFlag.AlignCenter, text)
            y += h

    def _chip_readable(self, cw: float, ch: float, labels: list[str],
                       top_scale: float = 1.3) -> bool:
        """Whether the longest of ``labels`` can be read in a cw x ch chip: set no
        smaller than 3/4 of the view's body type."""
        if not labels:
            return True
        longest = max(labels, key=len)
        f = self._fit_line(longest, self._font(top_scale, True, mono=True), cw - 6, 0.5)
        if f is None:
            return False
        return f.pointSizeF() >= 0.75 * self._font(1.0).pointSizeF() and \
            self._line_h(f) <= ch - 4

    @staticmethod
    def _grid(count: int, area: QRectF, big: tuple[float, float], gap: float,
              smallest: float = 10.0) -> tuple[float, float, int, int]:
        """Cell size and columns for ``count`` cells in ``area``: as big as fits. Rows
        is 0 when not even one row of the smallest cells fits."""
        w, h = big
        while True:
            cols = max(1, int((area.width() + gap) // (w + gap)))
            rows = int((area.height() + gap) // (h + gap))
            if cols * rows >= count or w * 0.85 < smallest:
                return w, h, cols, rows
            w, h = w * 0.85, h * 0.85

    # ------------------------------------------------------------ readiness
    def _show_queue(self) -> bool:
        """The accept queue, where it tells something: observed (or not yet since the
        server listened), with a backlog small enough to fill (the lessons' listen(128)
        and more never do)."""
        if self.queue is not None:
            return 0 < self.queue[1] < 128
        return self.queue_unseen and 0 < self.queue_backlog < 128

    def _queue_text(self, last: bool = False) -> str:
        """The queue's length (``last``: "as last observed"), unless the server accepted
        since; and what the backlog admits: Linux queues backlog + 1 connections."""
        if self.queue is None:
            return self.tr("Accept queue: not observed yet since the server started "
                           "listening") if self.queue_unseen else \
                self.tr("Accept queue: not observed (the kernel observer is off)")
        length, backlog = self.queue
        if self.queue_stale:
            return self.tr("Accept queue: backlog {0}: Linux queues up to {1}; not observed "
                           "since the last accept()").format(backlog, backlog + 1) \
                if backlog > 0 else \
                self.tr("Accept queue: not observed since the last accept()")
        if backlog > 0:
            return (self.tr("Accept queue: {0} waiting, as last observed · backlog {1}: Linux "
                            "queues up to {2}") if last else
                    self.tr("Accept queue: {0} waiting · backlog {1}: Linux queues up to "
                            "{2}")).format(length, backlog, backlog + 1)
        return (self.tr("Accept queue: {0} waiting, as last observed") if last else
                self.tr("Accept queue: {0} waiting")).format(length)

    def _paint_epoll(self, p: QPainter, body: QRectF) -> None:
        compact = self._compact
        gap = 28.0
        # Now: the whole width at the bottom, up to two lines, fitted.
        foot_font = self._font(1.15 if compact else 1.3, True)
        two = 2 * self._line_h(foot_font, self.now_text) + 2
        foot_font = self._fit_wrap(self.now_text, foot_font, body.width(), two, 0.7) or \
            self._scaled(foot_font, 0.7)
        foot_h = self._wrapped(foot_font, self.now_text, body.width()).height() + 12
        top = body.y()
        if self._show_queue():  # the listening socket's queue, across the top
            top = self._text(p, QRectF(body.x(), top, body.width(), 0), self._queue_text(),
                             self._font(1.05, True), wrap=True) + 8
        height = body.bottom() - foot_h - top
        left = QRectF(body.x(), top, body.width() * 0.40 - gap / 2, height)
        right = QRectF(left.right() + gap, top, body.width() - left.width() - gap, height)
        sub_room = 140 * self._s  # a sub-heading only above this much picture
        # Interest list.
        if self.mode == "epoll":
            head = self.tr("Interest list: {0} fds registered").format(len(self.interest))
            sub = self.tr("added by epoll_ctl; the mask is what to watch")
        else:  # select, poll, a selector: the set lives in the program
            head = self.tr("Watched set: {0} fds").format(len(self.interest))
            sub = self.tr("kept by the program, handed to the kernel on every call") \
                if self.mode in ("select", "poll") else \
                self.tr("registered with the selector; the mask is what to watch")
        head_f = self._font(1.15 if compact else 1.3, True)
        y = self._text(p, left, head, head_f, shrink=True, floor=0.8, or_wrap=True)
        if left.bottom() - y > sub_room:
            y = self._text(p, QRectF(left.x(), y, left.width(), 0), sub,
                           self._font(0.95), style.MUTED, wrap=True)
        area = QRectF(left.x(), y + 8, left.width(), left.bottom() - y - 8)
        # Where the unread bytes come from, in a legend under the chips (or at the foot
        # of the list): a number on a chip is then the number alone, if the legend gives
        # one origin for all; without the legend each says its origin, or is left out.
        drawn = [i.conn for i in self.interest] + [r.conn for r in self.ready]
        legend = self._unread_legend(drawn)
        self._short_notes = bool(legend) and len(self._origins(drawn)) == 1
        count = len(self.interest)

        def layout() -> tuple[float, float, int, int, bool]:
            cw, ch, cols, rows = self._grid(count, area, (self._interest_chip_w(),
                                                          76.0 * self._s), 10.0)
            squares = bool(count) and (cols * rows < count or not self._chip_readable(
                cw, ch, [str(i.fd) for i in self.interest]))
            return cw, ch, cols, rows, squares

        cw, ch, cols, rows, squares = layout()
        if legend:
            lf = self._font(0.85)
            lh = self._text(None, QRectF(0, 0, area.width(), 0), legend, lf, wrap=True)
            used = -(-count // max(1, cols)) * (ch + 10) if count else 0.0
            if not squares and area.height() - used >= lh + 2:  # room below the chips
                self._text(p, QRectF(area.x(), area.y() + used, area.width(), 0), legend, lf,
                           style.MUTED, wrap=True)
            elif lh + 8 <= area.height() / 2:  # at the foot, the chips above it
                self._text(p, QRectF(area.x(), area.bottom() - lh, area.width(), 0), legend,
                           lf, style.MUTED, wrap=True)
                area.setHeight(area.height() - lh - 8)
                cw, ch, cols, rows, squares = layout()
            else:  # no room for it: each number says its origin
                self._short_notes = False
                cw, ch, cols, rows, squares = layout()
        if squares:
            self._paint_interest_squares(p, area)  # too many to label: a summary, squares
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
        y = self._text(p, right, head, head_f, shrink=True, floor=0.8, or_wrap=True)
        if right.bottom() - y > sub_room:
            y = self._text(p, QRectF(right.x(), y, right.width(), 0),
                           self.tr("the server handles them in order, then waits again"),
                           self._font(0.95), style.MUTED, wrap=True)
        self._paint_ready(p, QRectF(right.x(), y + 8, right.width(), right.bottom() - y - 8))
        bottom = QRectF(body.x(), body.bottom() - foot_h + 8, body.width(), foot_h - 8)
        p.setPen(QPen(QColor(style.GRID), 1))
        p.drawLine(QPointF(bottom.x(), bottom.y() - 4), QPointF(bottom.right(), bottom.y() - 4))
        self._text(p, QRectF(bottom.x(), bottom.y() + 2, bottom.width(), 0), self.now_text,
                   foot_font, wrap=True)

    def _interest_chip_w(self) -> float:
        """A chip as wide as its widest label needs (128 at most, at the view's scale)."""
        items = self.interest
        if not items or len(items) > 200:
            return 128.0 * self._s
        fd = max((str(i.fd) for i in items), key=len)
        mask = max((i.mask for i in items), key=len)
        notes = [self._note(i.conn) for i in items if i.conn in self.unread]
        need = max([QFontMetricsF(self._font(1.3, True, mono=True)).horizontalAdvance(fd),
                    QFontMetricsF(self._font(0.85, mono=True)).horizontalAdvance(mask),
                    QFontMetricsF(self._font(0.75)).horizontalAdvance(self.tr("listen"))] +
                   [QFontMetricsF(self._font(0.85, True)).horizontalAdvance(n) for n in notes])
        return min(128.0 * self._s, need + 24)

    def _paint_interest_chips(self, p: QPainter, area: QRectF, cw: float, ch: float, cols: int,
                              rows: int) -> None:
        for k, item in enumerate(self.interest[:cols * rows]):
            r = QRectF(area.x() + (k % cols) * (cw + 10), area.y() + (k // cols) * (ch + 10),
                       cw, ch)
            now = item.fd == self.now_fd
            label = self.tr("listen") if item.role == "listen" else \
                self.tr("wake") if item.role == "wake" else ""
            unread = item.conn in self.unread
            border = style.DATA if now else style.CLIENT if unread else \
                style.SERVER if "OUT" in item.mask else style.GREY
            self._chip(p, r, str(item.fd), item.mask, fill=style.BACKGROUND, border=border,
                       border_width=4 if now else 3 if unread else
                       2 if "OUT" in item.mask else 1.5,
                       selected=item.conn is not None and item.conn == self.selected,
                       text_colour=style.MUTED if item.role == "wake" else style.FOREGROUND,
                       caption=label, note=self._note(item.conn))
            if item.conn:
                self._hits.append((r, item.conn))

    def _paint_interest_squares(self, p: QPainter, area: QRectF) -> None:
        masks: dict[str, int] = {}
        for item in self.interest:
            masks[item.mask] = masks.get(item.mask, 0) + 1
        summary = "   ".join(f"{mask} × {n:,}" for mask, n in
                             sorted(masks.items(), key=lambda kv: -kv[1]))
        y = self._text(p, area, summary, self._font(1.15, True, mono=True), wrap=True)
        # the legend: only the colours the squares use
        count = len(self.interest)
        legend = [(self.tr("one square per fd"), style.GREY)]
        if any("OUT" in item.mask for item in self.interest):
            legend.append((self.tr("red: also OUT, a send waits"), style.SERVER))
        if any(item.fd == self.now_fd for item in self.interest):
            legend.append((self.tr("green: handled now"), style.DATA))
        if any(item.conn in self.unread for item in self.interest):
            legend.append((self.tr("blue: bytes unread"), style.CLIENT))
        f = self._font(0.85)

        def squares(top: float) -> tuple[QRectF, float, float, int, int, float]:
            grid = QRectF(area.x(), top + 6, area.width(), area.bottom() - top - 6)
            gap = 3.0
            cw, ch, cols, rows = self._grid(count, grid, (24.0 * self._s, 24.0 * self._s), gap,
                                            smallest=6.0)
            if cols * rows < count:  # smaller, closer
                gap = 1.0
                cw, ch, cols, rows = self._grid(count, grid, (cw, ch), gap, smallest=3.0)
            return grid, cw, ch, cols, rows, gap

        drawn = False
        for _ in range(3):  # the legend's first words depend on how many squares fit
            below = self._flow(None, QRectF(area.x(), y + 2, area.width(), 0), legend, f)
            if below >= area.bottom() - 12:
                break  # no room for a legend
            g = squares(below)
            shown = min(count, g[3] * g[4])
            label = self.tr("one square per fd") if shown >= count else \
                self.tr("one square per fd: the first {0:,} of {1:,}").format(shown, count)
            if label == legend[0][0]:
                drawn = True
                break
            legend[0] = (label, style.GREY)
        if drawn:
            y = self._flow(p, QRectF(area.x(), y + 2, area.width(), 0), legend, f)
        grid, cw, ch, cols, rows, gap = squares(y)
        p.setPen(Qt.PenStyle.NoPen)
        for k, item in enumerate(self.interest[:cols * rows]):
            r = QRectF(grid.x() + (k % cols) * (cw + gap), grid.y() + (k // cols) * (ch + gap),
                       cw, ch)
            colour = style.DATA if item.fd == self.now_fd else \
                style.CLIENT if item.conn in self.unread else \
                style.SERVER if "OUT" in item.mask else style.GREY
            if item.conn is not None and item.conn == self.selected:
                p.fillRect(r.adjusted(-2, -2, 2, 2), QColor(style.FOREGROUND))
            p.setBrush(QColor(colour))
            p.drawRect(r)
            if item.conn:
                self._hits.append((r, item.conn))

    def _again_badge(self, p: QPainter, x: float, cy: float, font: QFont) -> float:
        """The "again" mark, its left at ``x``, centred on ``cy``; its width."""
        return self._pill(p, x, cy, self.tr("again"), font, style.AGAIN)

    def _paint_ready(self, p: QPainter, area: QRectF) -> None:
        items = self.ready
        small = self._font(0.85, mono=True)
        min_row = self._line_h(small) + 6
        more_h = self._line_h(self._font(0.95)) + 4
        row_h = min(60.0 * self._s, max(min_row, (area.height() - 50) / max(1, len(items)) - 6))
        row_h = min(row_h, max(min_row, area.height()))
        fits = int((area.height() + 6) // (row_h + 6))
        start = 0
        if len(items) > fits:  # keep the one being handled in view, and say how many more
            fits = max(1 if area.height() >= row_h else 0,
                       int((area.height() - more_h + 6) // (row_h + 6)))
            now = next((k for k, it in enumerate(items) if it.status == "now"), 0)
            start = max(0, min(now - fits // 3, len(items) - fits))
        shown = items[start:start + fits]
        big = row_h >= 40 * self._s
        num_f = self._font(1.0 if big else 0.8, mono=True)
        num_w = QFontMetricsF(num_f).horizontalAdvance(f"{len(items)}.") + 4
        chip_f = self._font(1.3 if big else 0.9, True, mono=True)
        widest = max((str(it.fd) for it in shown), key=len, default="0")
        chip_w = max((86 if big else 70) * self._s,
                     QFontMetricsF(chip_f).horizontalAdvance(widest) + 16)
        mask_f = self._font(1.05 if big else 0.85, mono=True)
        mask_w = max((QFontMetricsF(mask_f).horizontalAdvance(it.mask) for it in shown),
                     default=0.0) + 10
        again_f = self._font(0.85, True)
        again_w = QFontMetricsF(again_f).horizontalAdvance(self.tr("again")) + 24 \
            if any(it.again for it in shown) else 0.0
        for k, item in enumerate(shown):
            r = QRectF(area.x(), area.y() + k * (row_h + 6), area.width(), row_h)
            cy = r.center().y()
            if item.conn is not None and item.conn == self.selected:
                p.fillRect(r.adjusted(-4, -3, 4, 3), QColor(style.SELECTED))
            if item.conn:
                self._hits.append((r, item.conn))
            # position in the list
            p.setFont(num_f)
            p.setPen(QColor(style.MUTED))
            p.drawText(QRectF(r.x(), r.y(), num_w, r.height()),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                       f"{start + k + 1}.")
            chip = QRectF(r.x() + num_w + 6, r.y(), chip_w, r.height())
            now, done = item.status == "now", item.status == "done"
            fill = style.DATA if now else style.GRID if done else style.BACKGROUND
            self._chip(p, chip, str(item.fd), "", fill=fill,
                       border=style.DATA if now else style.GREY, border_width=2,
                       top_scale=1.3 if big else 0.9,
                       text_colour=style.INK_LIGHT if now else style.FOREGROUND)
            x = chip.right() + 10
            p.setFont(mask_f)
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(QRectF(x, r.y(), mask_w, r.height()), Qt.AlignmentFlag.AlignVCenter,
                       item.mask)
            x += mask_w
            if item.again:
                self._again_badge(p, x, cy, again_f)
            x += again_w
            # what happened to it (the point of the picture) and its unread bytes, then
            # whose it is where there is room
            status = {"now": self.tr("◀ now"), "done": self.tr("✓ done"),
                      "next": self.tr("next")}[item.status]
            pill_f = self._font(0.85 if big else 0.75, True)
            f = self._font(1.05 if big else 0.85, now)
            # a tall row: the unread bytes (and their origin) on a line of their own
            below = big and item.conn in self.unread and \
                row_h >= self._line_h(f) + self._line_h(pill_f) + 8
            pill_w = self._unread_pill(None, 0, 0, item.conn, pill_f,
                                       r.right() - x if below else (r.right() - x) * 0.5)
            line_cy = cy
            if below:
                pill_h = self._line_h(pill_f) + 4
                line_cy = cy - pill_h / 2
                self._unread_pill(p, x, line_cy + self._line_h(f) / 2 + pill_h / 2, item.conn,
                                  pill_f, pill_w + 1)
                pill_w = 0.0
            cy = line_cy
            width = r.right() - x - (pill_w + 12 * self._s if pill_w else 0.0)
            acts = list(item.actions) or ([item.action] if item.action else [])
            text, font = status, None
            for n in range(len(acts) if len(acts) <= 3 else 2, -1, -1):  # its latest calls
                calls = ("…, " if n < len(acts) and n else "") + ", ".join(acts[len(acts) - n:])
                candidate = status + (f":  {calls}" if n else "")
                font = self._fit_line(candidate, f, width, 0.8)
                if font is not None:
                    text = candidate
                    break
            font = font or self._scaled(f, 0.8)
            text_w = min(QFontMetricsF(font).horizontalAdvance(text), width)
            colour = style.FOREGROUND if not done else style.MUTED
            self._text(p, QRectF(x, cy - self._line_h(font, text) / 2, width, 0), text, font,
                       colour)
            x += text_w + 12 * self._s
            if pill_w:
                x += self._unread_pill(p, x, cy, item.conn, pill_f, pill_w + 1)
            who = self._fd_words(item.fd, item.conn)
            wf = self._font(1.05 if big else 0.85)
            if r.right() - x - 12 * self._s >= QFontMetricsF(wf).horizontalAdvance(who):
                self._text(p, QRectF(x + 12 * self._s, cy - self._line_h(wf, who) / 2,
                                     r.right() - x - 12 * self._s, 0), who, wf, style.MUTED)
        y = area.y() + len(shown) * (row_h + 6)
        indent = num_w + 6
        if len(items) > len(shown) and y + more_h <= area.bottom() + 1:
            hidden = len(items) - len(shown)
            y = self._text(p, QRectF(area.x() + indent, y, area.width() - indent, 0),
                           self.tr("… {0} more in this ready list").format(hidden),
                           self._font(0.95), style.MUTED, shrink=True)
        f = self._font(1.0)
        if self.wait_number > 1 and y + 10 + self._line_h(f) <= area.bottom():
            width = area.width() - indent
            # as many of its fds as fit on the line
            for n in range(min(12, len(self.previous_ready)), -1, -1):
                fds = ", ".join(map(str, self.previous_ready[:n])) + \
                    (" …" if len(self.previous_ready) > n else "")
                text = self.tr("the wait before reported: {0}").format(
                    fds if self.previous_ready else self.tr("nothing"))
                fitted = self._fit_line(text, f, width, 0.85)
                if fitted is not None:
                    y = self._text(p, QRectF(area.x() + indent, y + 10, width, 0), text, fitted,
                                   style.MUTED)
                    break
        if any(item.again for item in items):
            legend = self.tr("= reported by the wait before too") if self.trigger != "edge" \
                else self.tr("= reported by the wait before too: new data came")
            lf = self._font(0.9)
            bh = self._line_h(again_f) + 4
            if y + 8 + max(bh, self._line_h(lf)) <= area.bottom():
                cy = y + 8 + bh / 2
                w = self._again_badge(p, area.x() + indent, cy, again_f)
                lx = area.x() + indent + w + 8
                fitted = self._fit_wrap(legend, lf, area.right() - lx, area.bottom() - y - 8,
                                        0.8)
                if fitted is not None:
                    self._text(p, QRectF(lx, cy - self._line_h(fitted) / 2, area.right() - lx,
                                         0), legend, fitted, style.MUTED, wrap=True)

    # ------------------------------------------------------------ lanes
    def _paint_single(self, p: QPainter, body: QRectF) -> None:
        head = self._queue_text(last=True)
        y = self._text(p, body, head, self._font(1.15 if self._compact else 1.3, True),
                       wrap=True)
        area = QRectF(body.x(), y + 10, body.width(), body.bottom() - y - 10)
        if self.lanes:
            self._paint_lanes(p, self.lanes, area, min(64.0 * self._s, area.height()))

    def _lane_min(self) -> float:
        """The least height of a lane: one line of its text, and a margin."""
        return self._line_h(self._font(1.0, True)) + 10

    def _paint_threads(self, p: QPainter, body: QRectF) -> None:
        lanes = self.lanes
        head_f = self._font(1.15 if self._compact else 1.3, True)
        if self.picture == "processes":
            n = len(lanes) - 1
            y = self._text(p, body, (self.tr("1 child process") if n == 1 else
                                     self.tr("{0} child processes").format(n))
                           if lanes else self.tr("No process yet"), head_f, shrink=True)
        elif self.picture == "coroutines":
            count = self.tr("{0} greenlets on one OS thread") if self.mode == "gevent" else \
                self.tr("{0} tasks on one OS thread")
            y = self._text(p, body, count.format(len(lanes) - 1) if lanes else
                           self.tr("No loop yet"), head_f, shrink=True)
        else:  # threads
            y = self._text(p, body, self.tr("{0} threads").format(len(lanes)) if lanes else
                           self.tr("No thread yet"), head_f, shrink=True)
        area = QRectF(body.x(), y + 8, body.width(), body.bottom() - y - 8)
        if not lanes:
            return
        lane_min = self._lane_min()
        lane_h = min(64.0 * self._s, max(lane_min, area.height() / len(lanes) - 8))
        fits = int((area.height() + 8) // (lane_h + 8))
        if len(lanes) <= fits:
            self._paint_lanes(p, lanes, area, lane_h)
            return
        # More than fit: as many lanes as fit, readable (the main thread, the selected
        # one and the one that acts now first), the rest counted by what they do.
        words = {"recv_blocked": self.tr("blocked in recv()"), "working": self.tr("answering"),
                 "sending": self.tr("sending"), "closing": self.tr("closing"),
                 "held": self.tr("held"), "error": self.tr("error"),
                 "started": self.tr("starting"), "accepting": self.tr("accepting"),
                 "parked": self.tr("parked")}
        head_text = (self.tr("{0} more threads:") if self.picture == "threads" else
                     self.tr("{0} more children:") if self.picture == "processes" else
                     self.tr("{0} more greenlets:") if self.mode == "gevent" else
                     self.tr("{0} more tasks:"))
        f = self._font(1.05, True)

        def summary(rest: list[Lane], painter: QPainter | None, top: float) -> float:
            counts: dict[str, int] = {}
            for ln in rest:
                counts[ln.activity] = counts.get(ln.activity, 0) + 1
            head = head_text.format(len(rest))
            items = [(f"{n} {words.get(a, a)}", ACTIVITY_COLOURS.get(a, style.GREY))
                     for a, n in sorted(counts.items(), key=lambda kv: -kv[1])]
            rect = QRectF(area.x(), top, area.width(), 0)
            self._text(painter, rect, head, f, shrink=True)
            indent = min(QFontMetricsF(f).horizontalAdvance(head) + 16, area.width() / 2)
            return self._flow(painter, rect, items, f, indent=indent)

        n = max(1, int((area.height() + 8) // (lane_h + 8)) - 1)
        for _ in range(len(lanes)):  # fewer lanes until the count below them fits
            keep = self._keep_lanes(lanes, n)
            kept = {id(ln) for ln in keep}
            rest = [ln for ln in lanes if id(ln) not in kept]
            lanes_h = len(keep) * (lane_h + 8)
            need = summary(rest, None, area.y() + lanes_h) - area.y()
            if need <= area.height() or n == 1:
                break
            n -= 1
        self.hidden_lanes = len(rest)
        self._paint_lanes(p, keep, QRectF(area.x(), area.y(), area.width(), lanes_h), lane_h)
        y = summary(rest, p, area.y() + lanes_h)
        cells = QRectF(area.x(), y + 8, area.width(), area.bottom() - y - 8)
        if cells.height() < 8:
            return
        cw, ch, cols, rows = self._grid(len(rest), cells, (40.0 * self._s, 26.0 * self._s), 4.0,
                                        smallest=6.0)
        for k, ln in enumerate(rest[:cols * rows]):
            r = QRectF(cells.x() + (k % cols) * (cw + 4), cells.y() + (k // cols) * (ch + 4),
                       cw, ch)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(ACTIVITY_COLOURS.get(ln.activity, style.GREY)))
            p.drawRoundedRect(r, 3, 3)
            if ln.conn:
                self._hits.append((r, ln.conn))

    def _keep_lanes(self, lanes: list[Lane], n: int) -> list[Lane]:
        """``n`` of the lanes, in their order: the main thread, the selected one and the
        one acting now first, then the first others."""
        first = [ln for ln in lanes if ln.role == "accept"
                 or (ln.conn is not None and ln.conn == self.selected) or ln.current]
        chosen = first[:n]
        ids = {id(ln) for ln in chosen}
        chosen += [ln for ln in lanes if id(ln) not in ids][:n - len(chosen)]
        ids = {id(ln) for ln in chosen}
        return [ln for ln in lanes if id(ln) in ids]

    def _paint_lanes(self, p: QPainter, lanes: list[Lane], area: QRectF, lane_h: float) -> None:
        f1, f2 = self._font(1.15, True), self._font(0.9)
        h1, h2 = self._line_h(f1), self._line_h(f2)
        tall = lane_h >= h1 + h2 + 6  # room for a second line (the type scales alike)
        names = [ln.name or (self.tr("main thread") if ln.role == "accept" else
                             self.tr("thread {0}").format(ln.thread)) for ln in lanes]
        subs = [ln.sub or (self.tr("accept loop") if ln.role == "accept" else
                           self.tr("fd {0}").format(ln.fd) if ln.fd >= 0 else "") for ln in lanes]
        fm1, fm2 = QFontMetricsF(f1), QFontMetricsF(f2)
        label_w = max([fm1.horizontalAdvance(t) for t in names] +
                      [fm2.horizontalAdvance(t) for t in subs if tall]) + 20
        label_w = min(label_w, area.width() * 0.3)
        conn_f = self._font(1.1, mono=True)
        conns = [short_conn(ln.conn) if ln.conn else "" for ln in lanes]
        conn_w = max((QFontMetricsF(conn_f).horizontalAdvance(t) for t in conns if t),
                     default=0.0)
        conn_w = min(conn_w + 16, area.width() * 0.25) if conn_w else 0.0
        for k, ln in enumerate(lanes):
            r = QRectF(area.x(), area.y() + k * (lane_h + 8), area.width(), lane_h)
            if ln.conn is not None and ln.conn == self.selected:
                p.fillRect(r.adjusted(-4, -3, 4, 3), QColor(style.SELECTED))
            if ln.conn:
                self._hits.append((r, ln.conn))
            top = r.center().y() - (h1 + (h2 if tall and subs[k] else 0)) / 2
            self._text(p, QRectF(r.x(), top, label_w - 10, 0), names[k], f1, shrink=True)
            if tall and subs[k]:
                self._text(p, QRectF(r.x(), top + h1, label_w - 10, 0), subs[k], f2,
                           style.MUTED, shrink=True)
            box = QRectF(r.x() + label_w, r.y(), r.width() - label_w - conn_w, lane_h)
            colour = QColor(ACTIVITY_COLOURS.get(ln.activity, style.GREY))
            waiting = ln.activity in ("recv_blocked", "accepting", "started", "parked")
            p.setPen(QPen(colour, style.pen(4 if ln.current else 2)))
            fill = QColor(colour)
            fill.setAlpha(40 if waiting else 70)
            p.setBrush(fill)
            p.drawRoundedRect(box, 8, 8)
            pad = 12.0
            inner = box.width() - 2 * pad
            # the connection's unread bytes, at the right end of its lane
            pill_f = self._font(0.85, True)
            pill = 0.0
            if ln.conn in self.unread:
                pill = self._unread_pill(None, 0, 0, ln.conn, pill_f, inner * 0.45)
                if pill:
                    self._unread_pill(p, box.right() - pad - pill, box.center().y(), ln.conn,
                                      pill_f, inner * 0.45)
                    inner -= pill + 10
            self._lane_text(p, QRectF(box.x() + pad, box.y() + 3, inner, box.height() - 6),
                            ln, tall, waiting)
            if conns[k]:
                self._text(p, QRectF(box.right() + 12, r.center().y() - self._line_h(conn_f) / 2,
                                     conn_w - 12, 0), conns[k], conn_f, shrink=True)

    def _lane_text(self, p: QPainter, box: QRectF, ln: Lane, tall: bool, waiting: bool) -> None:
        """What the lane's thread does, fitted to its box: one line set smaller, else two;
        then its last call under it where there is room."""
        f = self._font(1.2 if tall else 1.0, bold=not waiting)
        one = self._fit_line(ln.text, f, box.width(), 0.8)
        last_f = self._font(0.85)
        last = self.tr("last: {0}").format(ln.last) if ln.last else ""
        if one is not None:
            main_h = self._line_h(one, ln.text)
            show_last = bool(last) and box.height() >= main_h + self._line_h(last_f) + 6
            y = box.center().y() - (main_h + (self._line_h(last_f) if show_last else 0)) / 2
            self._text(p, QRectF(box.x(), y, box.width(), 0), ln.text, one)
            if show_last:
                self._text(p, QRectF(box.x(), y + main_h, box.width(), 0), last, last_f,
                           style.MUTED, shrink=True)
            return
        two = self._fit_wrap(ln.text, f, box.width(), box.height(), 0.6)
        if two is not None:
            h = self._wrapped(two, ln.text, box.width()).height()
            self._text(p, QRectF(box.x(), box.center().y() - h / 2, box.width(), 0), ln.text,
                       two, wrap=True)
            return
        small = self._scaled(f, 0.8)
        self._text(p, QRectF(box.x(), box.center().y() - self._line_h(small) / 2, box.width(), 0),
                   ln.text, small)  # (cut short, and recorded: a lane too narrow)

    # ------------------------------------------------------------ non-blocking
    def _paint_sweep(self, p: QPainter, body: QRectF) -> None:
        # Totals on the right, in large type; the sweep on the left.
        side_w = min(420.0 * self._s, body.width() * 0.36)
        side = QRectF(body.right() - side_w, body.y(), side_w, body.height())
        left = QRectF(body.x(), body.y(), body.width() - side_w - 30, body.height())
        # the largest type with which the totals fit, dropping the note, then the two
        # counts (the percentage and the ratio say it), if even the smallest does not
        chosen = (0.5, 2)
        for drop in range(3):
            k = next((k for k in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
                      if self._totals(None, side, k, drop) <= side.bottom()), None)
            if k is not None:
                chosen = (k, drop)
                break
        self._totals(p, side, *chosen)
        self._sweep_cells(p, left)

    def _totals(self, p: QPainter | None, side: QRectF, k: float, drop: int) -> float:
        """The running totals at type size ``k``, without the note (drop 1) and the two
        counts (drop 2); returns the y below them."""
        t = self.totals
        y = self._text(p, side, self.tr("So far ({0:,} sweeps)").format(t["sweeps"]),
                       self._font(1.2 * k, True), shrink=True)
        if self.wasted_percent is not None:
            y = self._text(p, QRectF(side.x(), y + 4 * k, side.width(), 0),
                           _percent(self.wasted_percent), self._font(4.0 * k, True), style.WASTE,
                           shrink=True, floor=0.4)
            y = self._text(p, QRectF(side.x(), y, side.width(), 0),
                           self.tr("of the tries were wasted (EAGAIN)"), self._font(1.1 * k),
                           wrap=True)
            y += 12 * k
            if drop < 2:
                rows = ((self.tr("wasted (EAGAIN)"), t["eagain"], style.WASTE),
                        (self.tr("useful"), t["useful"], style.DATA))
                f = self._font(1.4 * k, True, mono=True)
                fm = QFontMetricsF(f)
                num_w = max(fm.horizontalAdvance(f"{n:,}") for _, n, _ in rows) + 8
                lf = self._font(1.1 * k)
                for label, n, colour in rows:
                    if p is not None:
                        p.setPen(Qt.PenStyle.NoPen)
                        p.setBrush(QColor(colour))
                        p.drawRoundedRect(QRectF(side.x(), y + 6, 22, fm.height() - 12), 3, 3)
                        p.setFont(f)
                        p.setPen(QColor(style.FOREGROUND))
                        p.drawText(QRectF(side.x() + 32, y, num_w, fm.height()),
                                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                                   f"{n:,}")
                    lx = side.x() + 32 + num_w + 12
                    self._text(p, QRectF(lx, y + (fm.height() - self._line_h(lf, label)) / 2,
                                         side.right() - lx, 0), label, lf, shrink=True, floor=0.7)
                    y += fm.height() + 4
            y = self._text(p, QRectF(side.x(), y + 8 * k, side.width(), 0), self.ratio_text,
                           self._font(1.1 * k, True), wrap=True)
        else:
            y = self._text(p, QRectF(side.x(), y + 6, side.width(), 0),
                           self.tr("no sweep yet"), self._font(1.4 * k), style.MUTED)
        if self.note and drop < 1:
            y = self._text(p, QRectF(side.x(), y + 8, side.width(), 0), self.note,
                           self._font(0.9 * k), style.MUTED, wrap=True)
        return y

    def _sweep_cells(self, p: QPainter, left: QRectF) -> None:
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
        compact = self._compact
        y = self._text(p, left, head, self._font(1.15 if compact else 1.3, True), wrap=True)
        legend = [(self.tr("useful: data moved or accepted"), style.DATA),
                  (self.tr("EAGAIN: nothing there"), style.WASTE),
                  (self.tr("not tried yet"), style.GRID)]
        unread = self._unread_legend([c.conn for c in cells])
        if unread:  # where the numbers on the cells come from
            legend.append((unread, style.CLIENT))
            self._short_notes = len(self._origins([c.conn for c in cells])) == 1
        y = self._flow(p, QRectF(left.x(), y + 6, left.width(), 0), legend,
                       self._font(0.85 if compact else 0.95)) + 10
        rest = QRectF(left.x(), y, left.width(), left.bottom() - y)
        cw, ch, cols, rows = self._grid(len(cells), rest, (104.0 * self._s, 76.0 * self._s),
                                        10.0)
        used = -(-len(cells) // cols) * (ch + 10) if cells else 0.0
        # the latest sweeps as bars, below, where the chips leave room for them
        title_f = self._font(1.05, True)
        need = self._text(None, QRectF(0, 0, left.width(), 0), self._history_title(), title_f,
                          wrap=True) + self._line_h(self._font(0.9)) + 110 * self._s / 1.5 + 16
        if self.history and rest.height() - used >= need:
            chart_h = rest.height() - used  # all the room the chips leave
            self._paint_history(p, QRectF(left.x(), left.bottom() - chart_h + 16, left.width(),
                                          chart_h - 16))
            rest.setHeight(rest.height() - chart_h + 8)  # (8: the chart's own top gap)
            cw, ch, cols, rows = self._grid(len(cells), rest, (104.0 * self._s, 76.0 * self._s),
                                            10.0)
        for k, cell in enumerate(cells[:cols * rows]):
            r = QRectF(rest.x() + (k % cols) * (cw + 10), rest.y() + (k // cols) * (ch + 10),
                       cw, ch)
            colour = OUTCOME_COLOURS[cell.outcome]
            label = "EAGAIN" if cell.outcome == "eagain" else \
                self.tr("useful") if cell.outcome == "useful" else ""
            text_colour = style.INK_LIGHT if cell.outcome == "useful" \
                else style.text_on(colour).name()
            self._chip(p, r, str(cell.fd), label, fill=colour, border=colour,
                       caption=self.tr("listen") if cell.role == "listen" else "",
                       selected=cell.conn is not None and cell.conn == self.selected,
                       text_colour=text_colour, note=self._note(cell.conn),
                       note_colour=text_colour)
            if cell.conn:
                self._hits.append((r, cell.conn))

    def _history_title(self) -> str:
        title = self.tr("The last {0:,} sweeps: tries per sweep").format(
            sum(n for _, _, n in self.history))
        if any(n > 1 for _, _, n in self.history):
            title += self.tr(" (a pale bar ×N: N idle sweeps in a row)")
        return title

    def _paint_history(self, p: QPainter, area: QRectF) -> None:
        """The latest sweeps as stacked bars: EAGAIN tries on top of useful ones. Idle
        sweeps in a row (one event) are one pale bar, a sweep's tries high, marked ×N."""
        history = self.history
        folded = any(n > 1 for _, _, n in history)
        y = self._text(p, area, self._history_title(), self._font(1.05, True), wrap=True)
        top = max(1.0, max(e + u for e, u, _ in history))
        y = self._text(p, QRectF(area.x(), y, area.width(), 0),
                       self.tr("tallest: {0} tries · newest on the right").format(round(top)),
                       self._font(0.9), style.MUTED, shrink=True)
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
