"""Connection lifecycles: every connection a bar on one time axis, short vs keep-alive.

Each connection is a bar from its first event (its first SYN; connect() or
accept() where no packet was recorded, or where the capture's timestamp came
later than the call) to the moment it was closed (the last of: the server's
close(), the client's close(), and the CLOSED of the end that did not wait
when that state was inferred from the calls; an observed state is polled
every few ms, so it dates the end only where a close() was not recorded),
then, drawn apart, the TIME_WAIT tail of the end that closed first (from the
bar's end: the poll sees it late), up to its CLOSED or, while it still waits
at the cursor, up to the cursor with the countdown (observed: the kernel's
timer; inferred: Linux's 60 s, marked "≈", and over after them). Requests are
marks on the bar; the client port labels the row. Only what happened up to the
cursor is drawn: a connection still open runs to the cursor. Sockets the
kernel observer found already there when it started (an earlier server's
TIME_WAIT on the same port) and nothing else are not connections of the trace.

Two bands compare the two ways of using connections, each with its costs:

* **keep-alive**: the connection served more than one request, or its one
  request asked to keep it (``keep_alive`` true) and the response did not
  refuse (``Connection: close``, the server's ``--policy close``);
* **short**: everything else: one request and closed because one side said
  ``Connection: close``, or closed without serving any request. A connection
  counts as short until a request shows it is kept alive (it has paid the
  handshake and served at most one request: that is the short pattern's cost).

Costs per band: connections opened; requests; handshake segments (counted
from the recorded packets, SYN, SYN|ACK and the ACK that completes the
handshake, retransmitted SYNs included; 3 per connection where no packet of
it was recorded, and the table says so); total time from the first open to
the last close() (to the cursor while one is still open); TIME_WAIT sockets
left behind at the cursor.

The time axis is shared by both bands. Loopback connections live for
microseconds to milliseconds while the lecture pauses for seconds between
runs, so quiet stretches (nothing begins, ends or is requested: only
TIME_WAIT tails or idle connections) are cut out and drawn as a break
labelled with the time skipped; a burst too short to see next to a long one
gets a minimum width and its own tick labels. With many connections each
band draws the latest rows that fit, under a "+M earlier" line; the costs
count every connection.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QT_TRANSLATE_NOOP, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QPainter,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QWidget

from . import style
from .base import View

SHORT, KEEP_ALIVE = "short", "keep-alive"
GROUPS = (SHORT, KEEP_ALIVE)
TIME_WAIT_S = 60  # Linux's TCP_TIMEWAIT_LEN: how long an inferred TIME_WAIT lasts
HANDSHAKE_PACKETS = 6  # a connection's handshake is among its first few segments
_INF = np.iinfo(np.int64).max


# ---------------------------------------------------------------- reading the log
class EventIndex:
    """The log indices of some kinds, with their columns, kept up to date as the log grows.

    Built once per log and extended as batches arrive: when a late batch was
    merged into the log's tail, the entries from the first one that moved are
    read again (an entry is unchanged while the same (t_ns, seq) sits at its index).
    """

    COLUMNS = (("idx", np.int64), ("kind", np.int16), ("conn", np.int32), ("t", np.int64),
               ("seq", np.int64), ("src", np.int16))

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.kinds = kinds
        self.log = None
        self.n = 0  # log length when last brought up to date
        self.first_new = 0  # entries before this one were kept by the last update
        self._last: tuple[int, int] | None = None  # (t_ns, seq) of event n - 1 then
        self._count = 0
        self._cols = {name: np.empty(256, dtype) for name, dtype in self.COLUMNS}

    # The entries' columns (views: read them, do not keep them across updates).
    idx = property(lambda self: self._cols["idx"][:self._count])
    kind = property(lambda self: self._cols["kind"][:self._count])
    conn = property(lambda self: self._cols["conn"][:self._count])
    t = property(lambda self: self._cols["t"][:self._count])
    seq = property(lambda self: self._cols["seq"][:self._count])
    src = property(lambda self: self._cols["src"][:self._count])

    def update(self, log) -> None:  # type: ignore[no-untyped-def]
        n = len(log)
        if log is not self.log:
            self.__init__(self.kinds)  # type: ignore[misc]
            self.log = log
        if n == self.n:
            self.first_new = self._count
            return
        times, seqs = log.column("t_ns"), log.column("seq")
        if self.n and self._last == (int(times[self.n - 1]), int(seqs[self.n - 1])):
            keep, start = self._count, self.n  # only appended
        else:
            keep = self._unchanged(times, seqs)
            start = int(self.idx[keep - 1]) + 1 if keep else 0
        self.first_new = keep  # entries from here on were (re)read
        new = log.indices(kinds=self.kinds, start=start)
        values = {"idx": new, "kind": log.column("kind")[new], "conn": log.column("conn")[new],
                  "t": times[new], "seq": seqs[new], "src": log.column("src")[new]}
        need = keep + len(new)
        for name, col in self._cols.items():
            if need > len(col):  # grow by doubling: appending stays cheap
                bigger = np.empty(max(need, 2 * len(col)), col.dtype)
                bigger[:keep] = col[:keep]
                self._cols[name] = col = bigger
            col[keep:need] = values[name]
        self._count = need
        self.n = n
        self._last = (int(times[n - 1]), int(seqs[n - 1]))

    def _unchanged(self, times: np.ndarray, seqs: np.ndarray) -> int:
        """How many cached entries still sit where they were (a prefix: merges shift the rest)."""
        lo, hi = 0, len(self.idx)
        while lo < hi:
            mid = (lo + hi) // 2
            i = int(self.idx[mid])
            if i < len(times) and times[i] == self.t[mid] and seqs[i] == self.seq[mid]:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def upto(self, cursor: int) -> int:
        """How many entries lie at or before the cursor."""
        return int(np.searchsorted(self.idx, cursor, side="right"))


class Decoded:
    """What the views need from decoded events, cached by (t_ns, seq): events never change."""

    def __init__(self) -> None:
        self.log = None
        self._cache: dict[tuple[int, int], object] = {}

    def get(self, log, index: int, t: int, seq: int, extract):  # type: ignore[no-untyped-def]
        if log is not self.log:
            self.log, self._cache = log, {}
        key = (t, seq)
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = extract(log[index].data)
        return value


def _tcp_state(data: dict) -> tuple:
    return (data.get("side"), str(data.get("state")), data.get("source"), data.get("expires_ms"),
            data.get("timer"), data.get("rqueue"), data.get("wqueue"))


def _predates(data: dict) -> bool:
    """A state the observer's first look found (no previous state): older than the trace."""
    return "previous" in data and data["previous"] is None and data.get("source") == "observed"


def _asks_keep_alive(data: dict) -> bool:
    return bool(data.get("keep_alive"))


def _refuses_keep_alive(data: dict) -> bool:
    head = str(data.get("head") or "").lower()
    return "connection: close" in head


def client_port(conn_id: str) -> str:
    client = conn_id.partition(">")[0]
    return client.rsplit(":", 1)[-1]


def fmt_duration(ns: float) -> str:
    s = ns / 1e9
    if s < 0.001:
        return f"{ns / 1e3:.0f} µs"
    if s < 0.01:
        return f"{s * 1e3:.2f} ms"
    if s < 1:
        return f"{s * 1e3:.1f} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60)} s"


# ---------------------------------------------------------------- what is drawn
@dataclass
class Bar:
    conn: str
    label: str  # the client port
    group: str
    start_ns: int
    end_ns: int | None  # closed at; None: still open at the cursor (drawn to it)
    requests: list[int] = field(default_factory=list)  # t_ns of each request
    tw_side: str | None = None  # the end that waited in TIME_WAIT
    tw_start_ns: int | None = None
    tw_end_ns: int | None = None  # None while still in TIME_WAIT at the cursor
    tw_left_s: float | None = None  # countdown at the cursor
    tw_source: str | None = None
    tw_both: bool = False  # both ends waited (a simultaneous close)
    selected: bool = False
    x0: float = 0.0
    x1: float = 0.0
    y: float = 0.0
    h: float = 0.0  # 0: not drawn (an earlier row that did not fit)

    @property
    def tail_start_ns(self) -> int | None:
        """Where the TIME_WAIT tail is drawn from: polled states are seen late, and the
        end entered TIME_WAIT once both had closed (the bar's end), not when seen."""
        if self.tw_start_ns is None:
            return None
        if self.end_ns is not None:
            return max(min(self.tw_start_ns, self.end_ns), self.start_ns)
        return self.tw_start_ns


@dataclass
class Costs:
    connections: int = 0
    requests: int = 0
    handshake_segments: int = 0
    handshake_counted: int = 0  # connections whose handshake came from packets
    handshake_assumed: int = 0  # connections with no packet recorded: 3 each
    handshake_origin: str = ""  # "captured" / "derived" / "" (none)
    first_open_ns: int | None = None
    last_close_ns: int | None = None
    still_open: int = 0
    total_ns: int = 0
    time_wait: int = 0  # sockets in TIME_WAIT at the cursor
    drawn: int = 0
    earlier: int = 0  # rows not drawn ("+M earlier")

    @property
    def per_request(self) -> float | None:
        return self.handshake_segments / self.requests if self.requests else None


@dataclass
class Run:
    """One piece of the time axis: drawn to scale, or a break standing for a gap."""
    t0: int
    t1: int
    x0: float
    x1: float
    is_break: bool = False

    def x(self, t: float) -> float:
        if self.t1 <= self.t0:  # one moment, between two breaks
            return (self.x0 + self.x1) / 2
        return self.x0 + (self.x1 - self.x0) * (t - self.t0) / (self.t1 - self.t0)


def _scale(run: Run) -> float:
    return (run.x1 - run.x0) / max(run.t1 - run.t0, 1)


class TimeAxis:
    """Time to x, with the stretches in which nothing happens cut out.

    ``points`` are the moments something is drawn (a bar begins or ends, a
    request, a TIME_WAIT begins). A quiet stretch between them is cut when it
    is long (a tenth of the whole) and ten times longer than what happens on
    one side of it: a burst of milliseconds seconds after another stays
    readable, steady traffic keeps one linear axis. Each cut is drawn as a
    break standing for its duration.
    A piece too narrow to read next to a long one gets a minimum width (and its
    own tick labels: each run is drawn to its own scale).
    """

    MAX_BREAKS = 6

    def __init__(self, points: list[int], t_start: int, t_end: int, x0: float, x1: float,
                 break_w: float = 34.0, min_w: float = 110.0) -> None:
        t_end = max(t_end, t_start + 1)
        pts = sorted({min(max(t, t_start), t_end) for t in points} | {t_start, t_end})
        gaps = sorted(((pts[k + 1] - pts[k], k) for k in range(len(pts) - 1)), reverse=True)
        cut: set[int] = set()
        span = t_end - t_start
        for gap, k in gaps:
            if len(cut) >= self.MAX_BREAKS or gap <= span * 0.1:
                break
            # What happens on either side of it, up to the cuts already made: the gap is
            # cut when it would squash one side (ten times longer than that side lasts).
            lo = max((j + 1 for j in cut if j < k), default=0)
            hi = min((j for j in cut if j > k), default=len(pts) - 1)
            if gap > 10 * min(pts[k] - pts[lo], pts[hi] - pts[k + 1]):
                cut.add(k)
        # Pieces: the kept stretches and the cut gaps, in time order.
        pieces: list[tuple[int, int, bool]] = []  # (t0, t1, is_cut)
        a = pts[0]
        for k in range(len(pts) - 1):
            if k in cut:
                if pts[k] > a or not pieces or pieces[-1][2]:
                    pieces.append((a, pts[k], False))
                pieces.append((pts[k], pts[k + 1], True))
                a = pts[k + 1]
        if a < pts[-1] or not pieces:
            pieces.append((a, pts[-1], False))
        width = x1 - x0
        # The last gap, up to the cursor, holds the TIME_WAIT tails and their countdowns:
        # a wider break, so that every tail is seen to wait.
        # (A single moment between two breaks gets a narrow piece of its own.)
        fixed = [(max(break_w, width * 0.12) if i == len(pieces) - 1 else break_w) if c
                 else 24.0 if b == a else 0.0 for i, (a, b, c) in enumerate(pieces)]
        avail = max(width - sum(fixed), 10.0)
        total = sum(b - a for a, b, c in pieces if not c) or 1
        widths = [fw if fw else avail * (b - a) / total for (a, b, c), fw in zip(pieces, fixed)]
        if cut:  # pieces too narrow to read get a minimum width, taken from the wide ones
            kept = [i for i, (a, b, c) in enumerate(pieces) if not c and b > a]
            floor = min(min_w, avail / max(len(kept), 1) * 0.8)
            small = [i for i in kept if widths[i] < floor]
            rest = [i for i in kept if i not in small]
            rest_w = sum(widths[i] for i in rest)
            extra = sum(floor - widths[i] for i in small)
            for i in small:
                widths[i] = floor
            if rest_w > 0:
                for i in rest:
                    widths[i] *= max(rest_w - extra, 1.0) / rest_w
        self.runs: list[Run] = []
        x = x0
        for (a, b, c), w in zip(pieces, widths):
            self.runs.append(Run(a, b, x, x + w, c))
            x += w
        self._starts = [r.t0 for r in self.runs]
        self.t_start, self.t_end = t_start, t_end

    def x(self, t: float) -> float:
        t = min(max(t, self.t_start), self.t_end)
        k = max(bisect_right(self._starts, t) - 1, 0)
        while k > 0 and self.runs[k].t0 == t and self.runs[k - 1].t1 == t \
                and self.runs[k].is_break:
            k -= 1  # a moment where a break begins belongs to the piece before it
        return self.runs[k].x(t)

    @property
    def breaks(self) -> list[Run]:
        return [r for r in self.runs if r.is_break]


# ---------------------------------------------------------------- per-connection facts
def _first_per_conn(conns: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Per connection code, the first of ``idx`` (log order) with that code; _INF: none."""
    out = np.full(n, _INF, np.int64)
    if len(conns):
        codes, at = np.unique(conns, return_index=True)  # first occurrences
        out[codes] = idx[at]
    return out


class Facts:
    """What the log says about each connection, wherever the cursor is.

    Every fact is the log index of an event (the first accept, the server's
    close, ...), so the cursor only has to compare: a fact at an index past
    the cursor has not happened yet. Brought up to date as the log grows, from
    the events the indices (re)read: a batch costs what it holds, not the log.
    """

    FIRSTS = ("first_open", "srv_close", "cli_close", "client_seen", "first_main", "first_req",
              "first_resp", "first_pkt")

    def __init__(self) -> None:
        self.log = None
        self.n_codes = 0
        for name in self.FIRSTS:
            setattr(self, name, np.empty(0, np.int64))
        self.req_idx = np.empty(0, np.int64)  # every request's log index (log order)
        self.req_conn = np.empty(0, np.int32)
        self.tcp_idx = np.empty(0, np.int64)  # every tcp_state's log index (log order)
        self.tcp_conn = np.empty(0, np.int32)
        self.handshakes = Handshakes()

    @property
    def first_any(self) -> np.ndarray:
        return np.minimum(self.first_main, self.first_pkt)  # type: ignore[attr-defined]

    def update(self, log, main: EventIndex, packets: EventIndex) -> None:  # type: ignore[no-untyped-def]
        if log is not self.log:
            self.__init__()  # type: ignore[misc]
            self.log = log
        n = len(log.conns.names)
        if n > self.n_codes:  # new connections: room for their facts
            for name in self.FIRSTS:
                old = getattr(self, name)
                setattr(self, name, np.concatenate((old, np.full(n - len(old), _INF, np.int64))))
            self.n_codes = n
        none = log.conns.codes.get(None, -1)
        kc, sc = log.kinds.codes, log.sources.codes
        # Main events: the entries from main.first_new on are new (or moved by a merge).
        k0 = main.first_new
        boundary = int(main.idx[k0 - 1]) + 1 if k0 else 0
        K, C, I, S = main.kind[k0:], main.conn[k0:], main.idx[k0:], main.src[k0:]
        valid = C != none
        is_close = valid & (K == kc.get("close", -2))
        client = sc.get("client", -2)
        masks = {
            "first_open": valid & ((K == kc.get("connect", -2)) | (K == kc.get("accept", -2))),
            "srv_close": is_close & (S == sc.get("server", -2)),
            "cli_close": is_close & (S == client),
            "client_seen": valid & (S == client),
            "first_main": valid,
            "first_req": valid & (K == kc.get("request", -2)),
            "first_resp": valid & (K == kc.get("response", -2)),
        }
        for name, mask in masks.items():
            self._merge(name, boundary, C[mask], I[mask])
        is_req, is_tcp = masks["first_req"], valid & (K == kc.get("tcp_state", -2))
        cut = int(np.searchsorted(self.req_idx, boundary))
        self.req_idx = np.concatenate((self.req_idx[:cut], I[is_req]))
        self.req_conn = np.concatenate((self.req_conn[:cut], C[is_req]))
        cut = int(np.searchsorted(self.tcp_idx, boundary))
        self.tcp_idx = np.concatenate((self.tcp_idx[:cut], I[is_tcp]))
        self.tcp_conn = np.concatenate((self.tcp_conn[:cut], C[is_tcp]))
        # Packets: their own index.
        p0 = packets.first_new
        pboundary = int(packets.idx[p0 - 1]) + 1 if p0 else 0
        pc = packets.conn[p0:]
        pvalid = pc != none
        self._merge("first_pkt", pboundary, pc[pvalid], packets.idx[p0:][pvalid])
        self.handshakes.update(log, packets, n)

    def _merge(self, name: str, boundary: int, conns: np.ndarray, idx: np.ndarray) -> None:
        """Facts read before the boundary stand; those after it are read again."""
        arr = getattr(self, name)
        arr[arr >= boundary] = _INF
        setattr(self, name, np.minimum(arr, _first_per_conn(conns, idx, len(arr))))

    @staticmethod
    def of(idx: np.ndarray, conn: np.ndarray, codes: np.ndarray, n_codes: int,
           cursor: int) -> dict[int, list[int]]:
        """The log indices (up to the cursor) of the events of each connection in ``codes``."""
        m = int(np.searchsorted(idx, cursor, "right"))
        wanted = np.zeros(n_codes, bool)
        wanted[codes] = True
        sel = np.flatnonzero(wanted[conn[:m]])
        out: dict[int, list[int]] = {int(c): [] for c in codes.tolist()}
        for c, i in zip(conn[sel].tolist(), idx[sel].tolist()):
            out[c].append(i)
        return out


class Handshakes:
    """The handshake segments of each connection: SYN and SYN|ACK (retransmissions
    too) and the client's ACK that completes the handshake, among its first few
    packets. Whether a packet is one depends only on the packets before it, so a
    connection is read once; kept by (t_ns, seq), which merges do not move."""

    def __init__(self) -> None:
        self.done = np.zeros(0, bool)  # per connection code: handshake settled
        self.done_t = np.zeros(0, np.int64)  # ... as of its packet at this time
        self.pending: dict[int, list[tuple]] = {}  # code -> its first packets so far
        self.found: dict[int, tuple[list[tuple[int, int]], str]] = {}  # code -> keys, origin
        self.keys_t = np.empty(0, np.int64)  # every handshake segment: time, seq, connection
        self.keys_seq = np.empty(0, np.int64)
        self.keys_conn = np.empty(0, np.int64)
        self.origin: dict[int, str] = {}

    def update(self, log, packets: EventIndex, n: int) -> None:  # type: ignore[no-untyped-def]
        if len(self.done) < n:
            self.done = np.concatenate((self.done, np.zeros(n - len(self.done), bool)))
            self.done_t = np.concatenate((self.done_t, np.full(n - len(self.done_t), _INF,
                                                               np.int64)))
        p0 = packets.first_new
        sc, st = packets.conn[p0:], packets.t[p0:]
        if not len(sc):
            return
        valid = sc != log.conns.codes.get(None, -1)
        # A packet merged in before a settled handshake's end: read that connection again.
        for c in set(sc[valid & self.done[sc] & (st <= self.done_t[sc])].tolist()):
            self.done[c], self.done_t[c] = False, _INF
            self.found.pop(c, None)
            first = np.flatnonzero(packets.conn == c)[:HANDSHAKE_PACKETS]
            self.pending[c] = [self._read(log, packets, int(i)) for i in first]
        # The first few new packets of each connection not settled yet.
        sel = np.flatnonzero(valid & ~self.done[sc]) + p0
        if len(sel):
            order = sel[np.argsort(packets.conn[sel], kind="stable")]
            codes = packets.conn[order]
            rank = np.arange(len(codes)) - np.searchsorted(codes, codes, "left")
            for pos in order[rank < HANDSHAKE_PACKETS].tolist():
                c = int(packets.conn[pos])
                self.pending.setdefault(c, []).append(self._read(log, packets, pos))
        names = log.conns.names
        for c in list(self.pending):
            seen = sorted(set(self.pending[c]))[:HANDSHAKE_PACKETS]  # by (t, seq)
            keys, origin, complete = self._classify(seen, client_port(names[c] or ""))
            self.found[c] = (keys, origin)
            if complete or len(seen) >= HANDSHAKE_PACKETS:
                self.done[c], self.done_t[c] = True, seen[-1][0]
                del self.pending[c]
            else:
                self.pending[c] = seen
        flat = [(t, q, c) for c, (keys, _) in self.found.items() for t, q in keys]
        self.keys_t = np.array([k[0] for k in flat], np.int64)
        self.keys_seq = np.array([k[1] for k in flat], np.int64)
        self.keys_conn = np.array([k[2] for k in flat], np.int64)
        self.origin = {c: o for c, (_, o) in self.found.items()}

    @staticmethod
    def _read(log, packets: EventIndex, pos: int) -> tuple:  # type: ignore[no-untyped-def]
        data = log[int(packets.idx[pos])].data
        return (int(packets.t[pos]), int(packets.seq[pos]), str(data.get("flags", "")),
                str(data.get("sport")), bool(data.get("len")), str(data.get("origin", "")))

    @staticmethod
    def _classify(packets: list[tuple], port: str) -> tuple[list[tuple[int, int]], str, bool]:
        keys: list[tuple[int, int]] = []
        synack, origin = False, ""
        for t, q, flags, sport, has_data, origin in packets:
            if "SYN" in flags:
                keys.append((t, q))
                synack = synack or "ACK" in flags
            elif synack and flags == "ACK" and not has_data and sport == port:
                keys.append((t, q))
                return keys, origin, True
        return keys, origin, False

    def count(self, t_cur: int, seq_cur: int, n: int) -> np.ndarray:
        """Handshake segments per connection code at or before the cursor's event."""
        at = (self.keys_t < t_cur) | ((self.keys_t == t_cur) & (self.keys_seq <= seq_cur))
        return np.bincount(self.keys_conn[at], minlength=n)


class FirstFlags:
    """A yes/no read from one event per connection (its first request, its first
    response), decoded once and kept per connection (the event does not change)."""

    def __init__(self) -> None:
        self.log = None
        self.values: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name -> (index, value)

    def get(self, log, name: str, first: np.ndarray, conns: np.ndarray, extract  # type: ignore[no-untyped-def]
            ) -> np.ndarray:
        if log is not self.log:
            self.log, self.values = log, {}
        n = len(first)
        index, value = self.values.get(name, (np.full(0, -1, np.int64), np.zeros(0, bool)))
        if len(index) < n:
            index = np.concatenate((index, np.full(n - len(index), -1, np.int64)))
            value = np.concatenate((value, np.zeros(n - len(value), bool)))
        stale = conns[index[conns] != first[conns]]  # never read, or the log moved it
        for c in stale.tolist():
            i = int(first[c])
            value[c] = bool(extract(log[i].data))
            index[c] = i
        self.values[name] = (index, value)
        return value[conns]


# ---------------------------------------------------------------- the view
class LifecycleView(View):
    name = "lifecycle"
    title = QT_TRANSLATE_NOOP("View", "Lifecycle")
    # Where the handshake counts come from (Costs.handshake_origin, joined by " + ").
    ORIGINS = (QT_TRANSLATE_NOOP("LifecycleView", "captured"),
               QT_TRANSLATE_NOOP("LifecycleView", "derived"))

    KINDS = ("connect", "accept", "close", "request", "response", "tcp_state")
    MAX_ROWS = 40  # per band, at most

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(640, 360)
        self._index = EventIndex(self.KINDS)
        self._packets = EventIndex(("packet",))
        self._facts = Facts()
        self._facts_key: tuple | None = None
        self._decoded = Decoded()
        self._flags = FirstFlags()
        self._key: tuple | None = None
        # What is drawn (plain data, for tests and for painting).
        self.bars: list[Bar] = []
        self.costs: dict[str, Costs] = {g: Costs() for g in GROUPS}
        self.groups: dict[str, list[str]] = {g: [] for g in GROUPS}  # every conn, by group
        self.cursor_ns: int | None = None
        self.trace_start_ns = 0
        self.axis: TimeAxis | None = None
        self._layout_key: tuple | None = None
        self._bands: list[tuple[str, QRectF]] = []
        self._hidden: dict[str, int] = {}
        self._header_h = self.HEADER_H
        self.compact = False  # laid out for a small window (costs on one line per band)

    # ------------------------------------------------------------ model
    def show_state(self, timeline) -> None:  # type: ignore[no-untyped-def]
        self.timeline = timeline
        log = timeline.log
        key = (id(log), len(log), timeline.cursor, self.selected)
        if key != self._key:
            self._key = key
            self._compute(timeline)
            self._layout_key = None
        self.update()

    def facts(self, log) -> Facts:  # type: ignore[no-untyped-def]
        key = (id(log), len(log))
        if self._facts_key != key:
            self._index.update(log)
            self._packets.update(log)
            self._facts.update(log, self._index, self._packets)
            self._facts_key = key
        return self._facts

    def _compute(self, timeline) -> None:  # type: ignore[no-untyped-def]
        log, cursor = timeline.log, timeline.cursor
        self.bars = []
        self.costs = {g: Costs() for g in GROUPS}
        self.groups = {g: [] for g in GROUPS}
        self.cursor_ns = None
        if cursor < 0 or len(log) == 0:
            return
        f = self.facts(log)
        times = log.column("t_ns")
        now = int(times[cursor])
        self.cursor_ns = now
        self.trace_start_ns = int(times[0])
        names = log.conns.names

        def at(idx: np.ndarray) -> np.ndarray:  # facts that have happened by the cursor
            return np.where(idx <= cursor, idx, _INF)

        first_any = f.first_any
        present = np.flatnonzero(first_any <= cursor)
        # Sockets the kernel observer found on the port when it started (previous state:
        # none), and nothing else: leftovers from before the trace (an earlier server's
        # TIME_WAIT on the same port). They were not opened here: not counted.
        quiet = (f.first_open[present] > cursor) & (f.first_pkt[present] > cursor) & \
            (f.first_req[present] > cursor)
        if quiet.any():
            tcp_code = log.kinds.codes.get("tcp_state", -2)
            cand = present[quiet]
            cand = cand[log.column("kind")[first_any[cand]] == tcp_code]
            if len(cand):
                old = self._flags.get(log, "predates", first_any, cand, _predates)
                present = np.setdiff1d(present, cand[old], assume_unique=True)
        if not len(present):
            return
        # The first event of the connection: its SYN, or connect()/accept(), or, when a
        # polled state or a late capture timestamp says it existed earlier, that.
        start_i = first_any[present]
        srv, cli = at(f.srv_close[present]), at(f.cli_close[present])
        client_seen = f.client_seen[present] <= cursor
        # Closed: by the server, and by the client too when its events are recorded.
        closed_i = np.where(client_seen, np.maximum(srv, cli), srv)
        closed_i = np.where((srv == _INF) | (client_seen & (cli == _INF)), _INF, closed_i)
        m_req = int(np.searchsorted(f.req_idx, cursor, "right"))
        n_req = np.bincount(f.req_conn[:m_req], minlength=f.n_codes)[present]
        seqs = log.column("seq")
        hs = f.handshakes.count(now, int(seqs[cursor]), f.n_codes)[present]
        has_pkt = f.first_pkt[present] <= cursor
        # Classify: keep-alive when reused, or asked to be and not refused.
        keep = n_req >= 2
        dec = self._decoded

        def decode(i: int, extract):  # type: ignore[no-untyped-def]
            return dec.get(log, i, int(times[i]), int(seqs[i]), extract)

        one = np.flatnonzero(n_req == 1)
        if len(one):
            conns = present[one]
            asks = self._flags.get(log, "asks", f.first_req, conns, _asks_keep_alive)
            resp = f.first_resp[conns]
            answered = resp <= cursor
            refuses = np.zeros(len(one), bool)
            if answered.any():
                refuses[answered] = self._flags.get(log, "refuses", f.first_resp,
                                                    conns[answered], _refuses_keep_alive)
            keep[one] = asks & ~refuses
        # TIME_WAIT sockets at the cursor: the state at the cursor says.
        # (An inferred TIME_WAIT never sees its end: it is over after the kernel's 60 s.)
        tw_now: dict[str, int] = {}
        inferred_tw: list[tuple[str, str]] = []
        for conn in timeline.state.connections.values():
            for side in ("client", "server"):
                if getattr(conn, side) != "TIME_WAIT":
                    continue
                if getattr(conn, f"{side}_source") == "inferred":
                    inferred_tw.append((conn.id, side))
                tw_now[conn.id] = tw_now.get(conn.id, 0) + 1
        if inferred_tw:  # since when? (from the log: the state keeps no times)
            codes = np.array([log.conns.codes.get(c, 0) for c, _ in inferred_tw], np.int64)
            events = Facts.of(f.tcp_idx, f.tcp_conn, codes, f.n_codes, cursor)
            for (conn_id, side), c in zip(inferred_tw, codes.tolist()):
                since = [int(times[i]) for i in events[c]
                         if decode(i, _tcp_state)[:2] == (side, "TIME_WAIT")]
                if since and now - since[-1] >= TIME_WAIT_S * 1e9:
                    tw_now[conn_id] -= 1
        start_t = times[start_i]
        closed_t = np.where(closed_i == _INF, _INF, times[np.minimum(closed_i, len(times) - 1)])
        for g, mask in ((SHORT, ~keep), (KEEP_ALIVE, keep)):
            sel = np.flatnonzero(mask)
            sel = sel[np.lexsort((present[sel], start_t[sel]))]  # by start
            costs = self.costs[g]
            costs.connections = len(sel)
            self.groups[g] = [names[int(c)] for c in present[sel]]  # type: ignore[misc]
            if not len(sel):
                continue
            costs.requests = int(n_req[sel].sum())
            counted = has_pkt[sel]
            costs.handshake_counted = int(counted.sum())
            costs.handshake_assumed = int((~counted).sum())
            costs.handshake_segments = int(hs[sel][counted].sum()) + 3 * costs.handshake_assumed
            origins = {f.handshakes.origin.get(int(c), "") for c in present[sel][counted]} - {""}
            costs.handshake_origin = " + ".join(sorted(origins))
            costs.first_open_ns = int(start_t[sel].min())
            ends = closed_t[sel]
            costs.still_open = int((ends == _INF).sum())
            costs.last_close_ns = int(ends[ends != _INF].max()) if costs.still_open < len(sel) \
                else None
            end = now if costs.still_open else (costs.last_close_ns or now)
            costs.total_ns = max(end - costs.first_open_ns, 0)
            costs.time_wait = sum(tw_now.get(self.groups[g][k], 0) for k in range(len(sel)))
            shown = sel[-self.MAX_ROWS:]
            costs.earlier = len(sel) - len(shown)
            drawn = present[shown]
            reqs = Facts.of(f.req_idx, f.req_conn, drawn, f.n_codes, cursor)
            tcps = Facts.of(f.tcp_idx, f.tcp_conn, drawn, f.n_codes, cursor)
            for k in shown.tolist():
                c = int(present[k])
                conn_id = names[c]
                bar = Bar(conn_id, client_port(conn_id), g, int(start_t[k]),  # type: ignore[arg-type]
                          None if closed_t[k] == _INF else int(closed_t[k]))
                bar.requests = times[reqs[c]].tolist()
                self._time_wait(bar, tcps[c], times, decode, now)
                bar.selected = conn_id == self.selected
                self.bars.append(bar)

    def _time_wait(self, bar: Bar, tcp: list[int], times, decode, now: int) -> None:  # type: ignore[no-untyped-def]
        """The bar's end and TIME_WAIT tail, from the connection's tcp_state events."""
        if not tcp:
            return
        states: dict[str, str] = {}
        closed: dict[str, int] = {}  # side -> its last CLOSED
        inferred: dict[str, bool] = {}
        expires = None
        for i in tcp:
            side, state, source, exp, *_ = decode(i, _tcp_state)
            t = int(times[i])
            states[side] = state
            if state == "TIME_WAIT" and bar.tw_start_ns is None:
                bar.tw_side, bar.tw_start_ns, bar.tw_source, expires = side, t, source, exp
            elif state == "TIME_WAIT" and side != bar.tw_side:
                bar.tw_both = True  # a simultaneous close: both FINs crossed
            elif state in ("CLOSED", "CLOSE"):
                closed[side] = t
                inferred[side] = source != "observed"
                if side == bar.tw_side and bar.tw_end_ns is None:
                    bar.tw_end_ns = t
        other = [t for s, t in closed.items() if s != bar.tw_side]
        gone = len(states) == 2 and all(v in ("CLOSED", "CLOSE", "TIME_WAIT")
                                        for v in states.values())
        if bar.end_ns is not None:
            # The other end's CLOSED (its last ACK) ends the bar when it is dated by the
            # calls it was inferred from; observed states are polled, seen a few ms late,
            # so where both close() calls are recorded those date the end.
            bar.end_ns = max([bar.end_ns] + [t for s, t in closed.items()
                                             if s != bar.tw_side and inferred[s]])
        elif gone:  # no close() recorded for an end (a peer not ours): the kernel says done
            bar.end_ns = max(other + ([bar.tw_start_ns] if bar.tw_start_ns is not None else []))
        if bar.tw_start_ns is None or bar.tw_end_ns is not None:
            return
        total = expires / 1000.0 if expires is not None else float(TIME_WAIT_S)
        left = total - (now - bar.tw_start_ns) / 1e9
        if left <= 0 and bar.tw_source != "observed":
            bar.tw_end_ns = bar.tw_start_ns + int(total * 1e9)  # the kernel's timer ran out
        else:
            bar.tw_left_s = max(left, 0.0)

    # ------------------------------------------------------------ layout
    LEGEND_H = 40
    AXIS_H = 50
    FOOTER_H = 40
    LABEL_W = 92
    TABLE_W = 372
    HEADER_H = 34
    COSTS_H = 26  # compact layout: the costs on one line under the band's title
    TABLE_LINE = 24
    TABLE_LINES = 6
    ROW_HEIGHTS = (44.0, 38.0, 32.0, 26.0, 22.0)
    _SIZED = ("LEGEND_H", "AXIS_H", "FOOTER_H", "LABEL_W", "TABLE_W", "HEADER_H", "COSTS_H",
              "TABLE_LINE")

    def apply_theme(self) -> None:
        """The zoom scales the type: the rows, margins and tables sized for it scale too."""
        z = style.ZOOM
        for name in self._SIZED:
            setattr(self, name, getattr(type(self), name) * z)
        self.ROW_HEIGHTS = tuple(h * z for h in type(self).ROW_HEIGHTS)
        self._header_h = self.HEADER_H
        self._layout_key = None
        super().apply_theme()

    @property
    def canvas_scale(self) -> float:
        """1, or less when zoomed in on a small screen: the whole picture is set smaller
        rather than bands with no room for a bar, never below 100 %'s type."""
        z = style.ZOOM
        if z <= 1.0:
            return 1.0
        need_h = self.LEGEND_H + self.AXIS_H + self.FOOTER_H \
            + 2 * (self.HEADER_H + self.COSTS_H + 2 * self.ROW_HEIGHTS[-1] + 6)
        need_w = 760.0 * z
        fit = min(1.0, max(self.height(), 1) / need_h, max(self.width(), 1) / need_w)
        return max(1.0 / z, fit)

    def _size(self) -> tuple[float, float]:
        """The picture's size in its own units (the widget's, over ``canvas_scale``)."""
        k = self.canvas_scale
        return self.width() / k, self.height() / k

    def _layout(self) -> None:
        key = (self._key, self.width(), self.height(), style.ZOOM)
        if key == self._layout_key:
            return
        self._layout_key = key
        w, h = self._size()
        m = 12.0
        top = self.LEGEND_H
        bottom = h - self.AXIS_H - self.FOOTER_H
        avail = bottom - top
        table_h = self.TABLE_LINES * self.TABLE_LINE + 14
        # Wide: a cost table beside each band. Compact (a small window): one line of
        # costs under each band's title, and the bars get the whole width.
        self.compact = w < 1000 * style.ZOOM or avail < 2 * table_h + 8
        plot_x0 = m + self.LABEL_W
        plot_x1 = w - m - 14 if self.compact else w - m - self.TABLE_W - 18
        header = self.HEADER_H + (self.COSTS_H if self.compact else 0)
        floor = 0.0 if self.compact else table_h
        by_group = {g: [b for b in self.bars if b.group == g] for g in GROUPS}
        need = {g: max(len(by_group[g]) + (1 if self.costs[g].earlier else 0), 1) for g in GROUPS}

        def band_heights(row_h: float) -> dict[str, float]:
            return {g: max(floor, header + need[g] * row_h + 6) for g in GROUPS}

        row_h = self.ROW_HEIGHTS[-1]
        for row_h in self.ROW_HEIGHTS:  # the largest rows that show every connection
            if sum(band_heights(row_h).values()) <= avail:
                break
        heights = band_heights(row_h)
        if sum(heights.values()) <= avail:  # room to spare: equal bands where possible
            half = avail / 2
            if all(v <= half for v in heights.values()):
                heights = {g: half for g in GROUPS}
            else:
                big = max(GROUPS, key=lambda g: heights[g])
                heights[big] = avail - sum(v for g, v in heights.items() if g != big)
        else:  # not all fit: each band its minimum, the rest shared by need
            least = max(floor, header + row_h + 6)
            spare = max(avail - 2 * least, 0)
            extra = {g: max(header + need[g] * row_h + 6 - least, 0) for g in GROUPS}
            total = sum(extra.values()) or 1
            heights = {g: least + spare * extra[g] / total for g in GROUPS}
        y = top
        self._bands = []
        self._hidden = {}
        self._header_h = header
        for b in self.bars:
            b.h = 0.0
        for g in GROUPS:
            rect = QRectF(m, y, w - 2 * m, heights[g])
            self._bands.append((g, rect))
            rows_fit = max(int((heights[g] - header - 6) // row_h), 1)
            bars = by_group[g]
            earlier = self.costs[g].earlier
            if len(bars) + (1 if earlier else 0) > rows_fit:
                keep = rows_fit - 1
                shown = bars[len(bars) - keep:] if keep > 0 else []
                earlier += len(bars) - len(shown)
            else:
                shown = bars
            self._hidden[g] = earlier
            ry = y + header + (row_h if earlier else 0)
            for b in shown:
                b.y, b.h = ry, row_h
                ry += row_h
            y += heights[g]
        # The shared time axis over the drawn bars.
        drawn = [b for b in self.bars if b.h > 0]
        now = self.cursor_ns or 0
        points: list[int] = []
        for b in drawn:
            points.append(b.start_ns)
            points.extend(b.requests)
            points.extend(t for t in (b.end_ns, b.tail_start_ns, b.tw_end_ns) if t is not None)
        t_start = min(points) if points else now - 1
        self.axis = TimeAxis(points, t_start, now, plot_x0, plot_x1)
        for b in drawn:
            b.x0 = self.axis.x(b.start_ns)
            b.x1 = self.axis.x(b.end_ns if b.end_ns is not None else now)
        self._plot = (plot_x0, plot_x1, top, bottom)

    @property
    def drawn_bars(self) -> list[Bar]:
        """The bars on screen, top to bottom (laid out for the current size)."""
        self._layout()
        return [b for b in self.bars if b.h > 0]

    def hidden(self, group: str) -> int:
        """Connections of ``group`` not drawn (the "+M earlier" line)."""
        self._layout()
        return self._hidden.get(group, 0)

    # ------------------------------------------------------------ input
    def mousePressEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        k = self.canvas_scale
        conn = self.conn_at(event.position().x() / k, event.position().y() / k)
        if conn is not None:
            self.connection_selected.emit(conn)
        super().mousePressEvent(event)

    def conn_at(self, x: float, y: float) -> str | None:
        """The connection whose row is at (x, y) (the picture's units), if any."""
        self._layout()
        if x > self._size()[0] - 12 - self.TABLE_W:
            return None
        for b in self.bars:
            if b.h > 0 and b.y <= y < b.y + b.h:
                return b.conn
        return None

    # ------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), style.colour(style.BACKGROUND))
        k = self.canvas_scale
        p.scale(k, k)
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        w, h = self._size()
        if self.cursor_ns is None or not any(c.connections for c in self.costs.values()):
            p.setPen(style.colour(style.MUTED))
            p.setFont(style.font(1.3))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter,
                       self.tr("No connection yet at this point of the timeline"))
            return
        self._layout()
        x0, x1, top, bottom = self._plot
        self._paint_legend(p, w)
        axis = self.axis
        assert axis is not None
        for r in axis.breaks:  # a pale stripe where time was cut out
            p.fillRect(QRectF(r.x0 + 6, top, r.x1 - r.x0 - 12, bottom - top),
                       style.blend(style.GRID, style.BACKGROUND, 0.65))
        for g, rect in self._bands:
            self._paint_band(p, g, rect, x0, x1)
        self._paint_axis(p, x0, x1, bottom, top)
        self._paint_footer(p, w, h)

    def _paint_legend(self, p: QPainter, w: float) -> None:
        p.setFont(style.font(1.0))
        fm = QFontMetricsF(p.font())
        y, hh = 6.0, self.LEGEND_H - 12
        p.setPen(style.colour(style.MUTED))
        p.drawText(QRectF(12, y, self.LABEL_W - 10, hh), Qt.AlignmentFlag.AlignRight
                   | Qt.AlignmentFlag.AlignVCenter, self.tr("port"))
        x = 12.0 + self.LABEL_W
        for kind, text in (("bar", self.tr("open")), ("tw", self.tr("TIME_WAIT")),
                           ("req", self.tr("request"))):
            if kind == "bar":
                self._draw_open(p, QRectF(x, y + 4, 36, hh - 8))
                x += 44
            elif kind == "tw":
                self._draw_tail(p, QRectF(x, y + 4, 36, hh - 8))
                x += 44
            else:
                self._draw_mark(p, x + 8, y + hh / 2, hh * 0.4)
                x += 22
            p.setPen(style.colour(style.FOREGROUND))
            p.drawText(QRectF(x, y, fm.horizontalAdvance(text) + 4, hh),
                       Qt.AlignmentFlag.AlignVCenter, text)
            x += fm.horizontalAdvance(text) + 30
        now = self.cursor_ns or 0
        p.setPen(style.colour(style.MUTED))
        for text in (self.tr("cursor: {0} after the first event"), self.tr("cursor: {0}")):
            text = text.format(fmt_duration(now - self.trace_start_ns))
            if x + fm.horizontalAdvance(text) < w - 12:
                p.drawText(QRectF(0, y, w - 12, hh), Qt.AlignmentFlag.AlignRight
                           | Qt.AlignmentFlag.AlignVCenter, text)
                break

    def _draw_open(self, p: QPainter, r: QRectF) -> None:
        green = style.colour(style.STATE_COLOURS["ESTABLISHED"])
        fill = QColor(green)
        fill.setAlpha(70)
        p.setPen(QPen(green, 2))
        p.setBrush(fill)
        p.drawRoundedRect(r, 3, 3)

    def _draw_tail(self, p: QPainter, r: QRectF) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(style.colour(style.STATE_COLOURS["TIME_WAIT"]))
        p.drawRect(QRectF(r.x(), r.center().y() - r.height() * 0.36, r.width(),
                          r.height() * 0.72))

    def _draw_mark(self, p: QPainter, x: float, y: float, size: float) -> None:
        poly = QPolygonF([QPointF(x, y - size), QPointF(x + size * 0.7, y),
                          QPointF(x, y + size), QPointF(x - size * 0.7, y)])
        p.setPen(QPen(style.colour(style.BACKGROUND), 1.2))
        p.setBrush(style.colour(style.CLIENT))
        p.drawPolygon(poly)

    def _paint_band(self, p: QPainter, g: str, rect: QRectF, x0: float, x1: float) -> None:
        p.setPen(QPen(style.colour(style.GRID), 1.5))
        p.drawLine(QPointF(rect.left(), rect.top()), QPointF(rect.right(), rect.top()))
        title = self.tr("Short connections") if g == SHORT else self.tr("Keep-alive connections")
        rule = (self.tr("one request each, then closed") if g == SHORT
                else self.tr("several requests on one connection"))
        p.setFont(style.font(1.15, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        fm = QFontMetricsF(p.font())
        title_w = fm.horizontalAdvance(title) + 4  # (not a fixed box: zoomed in, it grows)
        p.drawText(QRectF(rect.left(), rect.top() + 2, title_w, self.HEADER_H - 2),
                   Qt.AlignmentFlag.AlignVCenter, title)
        p.setFont(style.font(0.95))
        p.setPen(style.colour(style.MUTED))
        rule_x = rect.left() + title_w + 10
        p.drawText(QRectF(rule_x, rect.top() + 2, max(0.0, rect.right() - rule_x),
                          self.HEADER_H - 2), Qt.AlignmentFlag.AlignVCenter,
                   QFontMetricsF(p.font()).elidedText(rule, Qt.TextElideMode.ElideRight,
                                                      max(0.0, rect.right() - rule_x)))
        bars = [b for b in self.bars if b.group == g and b.h > 0]
        hidden = self._hidden.get(g, 0)
        row_h = bars[0].h if bars else 30.0
        top = rect.top() + self._header_h
        if self.compact:
            self._paint_cost_line(p, self.costs[g], QRectF(rect.left() + 12, rect.top()
                                                           + self.HEADER_H - 4, rect.width()
                                                           - 12, self.COSTS_H))
        p.setFont(style.font(0.95))
        p.setPen(style.colour(style.MUTED))
        if hidden:
            p.drawText(QRectF(rect.left() + 12, top, x1 - rect.left(), row_h),
                       Qt.AlignmentFlag.AlignVCenter,
                       self.tr("+{0} earlier connections, not drawn (counted in the costs)")
                       .format(hidden))
        elif not bars:
            p.drawText(QRectF(x0, top, x1 - x0, 34), Qt.AlignmentFlag.AlignVCenter,
                       self.tr("none yet"))
        for b in bars:
            self._paint_bar(p, b, rect.left(), x1)
        if not self.compact:
            self._paint_costs(p, self.costs[g], QRectF(
                rect.right() - self.TABLE_W, rect.top() + 6, self.TABLE_W,
                self.TABLE_LINES * self.TABLE_LINE + 10))

    def _paint_bar(self, p: QPainter, b: Bar, left: float, x1: float) -> None:
        axis = self.axis
        assert axis is not None
        if b.selected:
            p.fillRect(QRectF(left, b.y, x1 - left + 10, b.h), style.colour(style.SELECTED))
        p.setFont(style.font(1.0 if b.h >= 30 else 0.85, bold=b.selected, mono=True))
        p.setPen(style.colour(style.FOREGROUND))
        p.drawText(QRectF(left, b.y, self.LABEL_W - 12, b.h),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, b.label)
        pad = max(b.h * 0.14, 3.0)
        body = QRectF(b.x0, b.y + pad, max(b.x1 - b.x0, 3.0), b.h - 2 * pad)
        now = self.cursor_ns or 0
        if b.tw_start_ns is not None:
            tail = QRectF()
            t0 = b.tail_start_ns
            t1 = b.tw_end_ns if b.tw_end_ns is not None else now
            tx0, tx1 = axis.x(t0), axis.x(t1)
            tail = QRectF(tx0, body.y(), max(tx1 - tx0, 2.0), body.height())
            self._draw_tail(p, tail)
        self._draw_open(p, body)
        if b.end_ns is None:  # still open: a thick open end at the cursor
            p.setPen(QPen(style.colour(style.STATE_COLOURS["ESTABLISHED"]), style.pen(4)))
            p.drawLine(QPointF(body.right(), body.top() - 3), QPointF(body.right(), body.bottom() + 3))
        size = body.height() * 0.45
        last_x = -1e9
        for t in b.requests:
            x = axis.x(t)
            if x - last_x >= 2:
                self._draw_mark(p, x, body.center().y(), size)
                last_x = x
        if b.tw_start_ns is not None and b.tw_end_ns is None and b.tw_left_s is not None:
            self._paint_countdown(p, b, tail)

    def _paint_countdown(self, p: QPainter, b: Bar, tail: QRectF) -> None:
        approx = "" if b.tw_source == "observed" else "≈"
        side = self.tr("both ends") if b.tw_both else \
            self.tr("server") if b.tw_side == "server" else self.tr("client")
        left = f"{approx}{b.tw_left_s:.0f} s"
        p.setFont(style.font(0.85 if b.h >= 30 else 0.75, bold=True))
        fm = QFontMetricsF(p.font())
        inner = tail.adjusted(max(b.x1 - tail.left(), 0) + 6, 0, -6, 0)
        for text in (self.tr("{0} in TIME_WAIT, {1} left").format(side, left),
                     self.tr("{0}, {1} left").format(side, left), left):
            if fm.horizontalAdvance(text) <= inner.width():
                p.setPen(style.colour(style.INK_LIGHT))  # on the TIME_WAIT tail, any theme
                p.drawText(inner, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
                return

    def _handshake_how(self, c: Costs) -> str:
        if c.handshake_assumed and not c.handshake_counted:
            return self.tr("3 each, assumed")
        if c.handshake_assumed:
            return self.tr("partly assumed")
        return " + ".join(self.tr(o) for o in c.handshake_origin.split(" + ")) \
            if c.handshake_origin else ""

    def _cost_lines(self, c: Costs) -> list[tuple[str, str]]:
        how = self._handshake_how(c)
        total = "—" if not c.connections else fmt_duration(c.total_ns)
        per = c.per_request
        return [
            (self.tr("connections opened"), str(c.connections)),
            (self.tr("requests"), str(c.requests)),
            (self.tr("handshake segments") + (f" ({how})" if how else ""),
             str(c.handshake_segments)),
            (self.tr("  per request"), "—" if per is None else fmt_ratio(per)),
            (self.tr("first open → now (still open)") if c.still_open
             else self.tr("first open → last close"), total),
            (self.tr("TIME_WAIT sockets now"), str(c.time_wait)),
        ]

    def _paint_costs(self, p: QPainter, c: Costs, r: QRectF) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        bg = QColor(style.GRID)
        bg.setAlpha(70)
        p.setBrush(bg)
        p.drawRoundedRect(r, 6, 6)
        y = r.top() + 5
        for label, value in self._cost_lines(c):
            line = QRectF(r.left() + 12, y, r.width() - 24, self.TABLE_LINE)
            p.setFont(style.font(0.95))
            p.setPen(style.colour(style.FOREGROUND))
            p.drawText(line, Qt.AlignmentFlag.AlignVCenter, label)
            p.setFont(style.font(1.05, bold=True, mono=True))
            p.drawText(line, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, value)
            y += self.TABLE_LINE

    def _paint_cost_line(self, p: QPainter, c: Costs, r: QRectF) -> None:
        per = c.per_request
        how = self._handshake_how(c)
        ratio = "" if per is None else fmt_ratio(per)
        long = [self.tr("{0} connections").format(c.connections),
                self.tr("{0} requests").format(c.requests),
                self.tr("{0} handshake segments").format(c.handshake_segments)
                + (f" ({how})" if how else "")
                + (self.tr(", {0} per request").format(ratio) if ratio else ""),
                self.tr("{0} in TIME_WAIT").format(c.time_wait)]
        short = [self.tr("{0} conn.").format(c.connections),
                 self.tr("{0} req.").format(c.requests),
                 self.tr("{0} handshake segs").format(c.handshake_segments)
                 + (self.tr(" ({0}/req.)").format(ratio) if ratio else ""),
                 self.tr("{0} TIME_WAIT").format(c.time_wait)]
        p.setFont(style.font(0.9, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        fm = QFontMetricsF(p.font())
        text = "  ·  ".join(long)
        if fm.horizontalAdvance(text) > r.width():
            text = "  ·  ".join(short)
        p.drawText(r, Qt.AlignmentFlag.AlignVCenter, fm.elidedText(
            text, Qt.TextElideMode.ElideRight, r.width()))

    def _paint_axis(self, p: QPainter, x0: float, x1: float, y: float, top: float) -> None:
        axis = self.axis
        assert axis is not None
        y += 8
        fg = style.colour(style.FOREGROUND)
        p.setFont(style.font(0.85))
        fm = QFontMetricsF(p.font())
        taken: list[tuple[float, float]] = []  # label extents, so that none overlap

        def label(x: float, text: str, colour: str) -> None:
            tw = fm.horizontalAdvance(text)
            lx = min(max(x - tw / 2, 4.0), x1 + 40 - tw)
            if any(lx < b + 12 and lx + tw > a - 12 for a, b in taken):
                return
            taken.append((lx, lx + tw))
            p.setPen(style.colour(colour))
            p.drawText(QRectF(lx, y + 9, tw + 2, fm.height() + 2), Qt.AlignmentFlag.AlignLeft, text)

        for r in axis.runs:
            if r.is_break:
                mid = (r.x0 + r.x1) / 2
                p.setPen(QPen(fg, 1.6))
                for dx in (-4, 4):
                    p.drawLine(QPointF(mid + dx - 4, y + 8), QPointF(mid + dx + 4, y - 8))
                # (first, before the ticks; a break too close to another one goes unlabelled)
                label(mid, self.tr("+{0}").format(fmt_duration(r.t1 - r.t0)), style.MUTED)
            else:
                p.setPen(QPen(fg, 1.6))
                p.drawLine(QPointF(r.x0, y), QPointF(r.x1, y))
        for r in axis.runs:  # ticks, each run to its own scale
            if r.is_break or r.x1 - r.x0 < 30:
                continue
            step = _nice_step(100 / _scale(r))
            base = self.trace_start_ns
            t = base + math.ceil((r.t0 - base) / step) * step
            for _ in range(100):
                if t > r.t1:
                    break
                x = r.x(t)
                p.setPen(QPen(fg, 1.2))
                p.drawLine(QPointF(x, y), QPointF(x, y + 6))
                label(x, fmt_tick(t - base, step), style.MUTED)
                t += step
        xc = axis.x(self.cursor_ns or 0)  # the cursor: the right edge of what happened
        p.setPen(QPen(fg, 1.5, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(xc, top), QPointF(xc, y))

    def _paint_footer(self, p: QPainter, w: float, h: float) -> None:
        s, k = self.costs[SHORT], self.costs[KEEP_ALIVE]
        if s.per_request is not None and k.per_request is not None:
            text = self.tr("Handshake segments per request: short {0}, keep-alive {1}."
                           "  Keep-alive pays the handshake once.").format(
                               fmt_ratio(s.per_request), fmt_ratio(k.per_request))
        else:
            text = self.tr("Keep-alive pays the handshake once; short connections pay it "
                           "for every request.")
        p.setFont(style.font(1.0, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        fm = QFontMetricsF(p.font())
        if fm.horizontalAdvance(text) > w - 24:  # a narrow window: the lesson only
            text = self.tr("Keep-alive pays the handshake once.")
        p.drawText(QRectF(12, h - self.FOOTER_H, w - 24, self.FOOTER_H),
                   Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)


def fmt_ratio(x: float) -> str:
    """3.0, 0.6, 0.15: one decimal, two when one would round a small ratio away."""
    text = f"{x:.2f}"
    return text.removesuffix("0")


def fmt_tick(ns: int, step: int) -> str:
    """A tick's time since the first event, with as many decimals as the step needs."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale or unit == "µs":
            decimals = max(0, math.ceil(-math.log10(step / scale) - 1e-9))
            return f"{ns / scale:.{min(decimals, 6)}f} {unit}"
    return f"{ns} ns"


def _nice_step(ns: float) -> int:
    """The smallest 1-2-5 step of at least ``ns`` nanoseconds."""
    ns = max(ns, 1.0)
    exp = 10 ** math.floor(math.log10(ns))
    for mult in (1, 2, 5, 10):
        if mult * exp >= ns:
            return int(mult * exp)
    return int(10 * exp)
