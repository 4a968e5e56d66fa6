"""Connection lifecycles, computed: every connection a bar on one time axis, short vs
keep-alive (``visualizer.views.lifecycle`` lays the bars out and paints them).

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

Plain Python and numpy, no Qt: tests read the bars and costs without a window.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from .index import Decoded, EventIndex
from .text import client_port

SHORT, KEEP_ALIVE = "short", "keep-alive"
GROUPS = (SHORT, KEEP_ALIVE)
HALF_CLOSED = ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK")
TIME_WAIT_S = 60  # Linux's TCP_TIMEWAIT_LEN: how long an inferred TIME_WAIT lasts
HANDSHAKE_PACKETS = 6  # a connection's handshake is among its first few segments
_INF = np.iinfo(np.int64).max


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
    # The half-closed states each end passed through, in order: (side, state, from,
    # until; None: still in it at the cursor). CLOSE_WAIT is the one a program causes.
    closing: list[tuple[str, str, int, int | None]] = field(default_factory=list)
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
                 break_w: float = 34.0, min_w: float = 110.0,
                 keep: list[tuple[int, int]] | None = None) -> None:
        """``keep``: spans never cut, however quiet (where the capture lost frames: that
        nothing was captured there is the loss itself)."""
        t_end = max(t_end, t_start + 1)
        keep = [(lo, hi) for lo, hi in keep or () if hi > t_start and lo < t_end]
        pts = sorted({min(max(t, t_start), t_end) for t in points} | {t_start, t_end} |
                     {min(max(t, t_start), t_end) for span in keep for t in span})
        gaps = sorted(((pts[k + 1] - pts[k], k) for k in range(len(pts) - 1)), reverse=True)
        cut: set[int] = set()
        span = t_end - t_start
        for gap, k in gaps:
            if len(cut) >= self.MAX_BREAKS or gap <= span * 0.1:
                break
            if any(lo < pts[k + 1] and hi > pts[k] for lo, hi in keep):
                continue
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
            "srv_close": _socket_closes(log, I, is_close & (S == sc.get("server", -2))),
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


def _socket_closes(log, idx: np.ndarray, mask: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``mask`` without the closes of one copy of a forked socket (``last: false``):
    the socket itself closed later, in the other process. (Read only in a log with
    forks, and only its close events.)"""
    if "fork" not in log.kinds.codes:
        return mask
    for k in np.flatnonzero(mask).tolist():
        if log[int(idx[k])].data.get("last") is False:
            mask[k] = False
    return mask


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


# ---------------------------------------------------------------- bars and costs at the cursor
class Lifecycles:
    """Every connection's bar and each band's costs at the cursor: what the lifecycle
    view draws (it lays the bars out and paints them). The indices and facts are
    kept between calls and brought up to date as the log grows."""

    KINDS = ("connect", "accept", "close", "request", "response", "tcp_state")
    MAX_ROWS = 40  # per band, at most

    def __init__(self) -> None:
        self._index = EventIndex(self.KINDS)
        self._packets = EventIndex(("packet",))
        self._facts = Facts()
        self._facts_key: tuple | None = None
        self._decoded = Decoded()
        self._flags = FirstFlags()
        self.bars: list[Bar] = []
        self.costs: dict[str, Costs] = {g: Costs() for g in GROUPS}
        self.groups: dict[str, list[str]] = {g: [] for g in GROUPS}  # every conn, by group
        self.cursor_ns: int | None = None
        self.trace_start_ns = 0
        self.gaps: list[tuple[int, int, int]] = []  # the capture's: (from_ns, until_ns, frames)

    def facts(self, log) -> Facts:  # type: ignore[no-untyped-def]
        key = (id(log), len(log))
        if self._facts_key != key:
            self._index.update(log)
            self._packets.update(log)
            self._facts.update(log, self._index, self._packets)
            self._facts_key = key
        return self._facts

    def compute(self, timeline, selected: str | None = None) -> None:  # type: ignore[no-untyped-def]
        """The bars, costs and groups at ``timeline``'s cursor (``selected``: the
        connection whose bar is marked selected)."""
        log, cursor = timeline.log, timeline.cursor
        self.bars = []
        self.costs = {g: Costs() for g in GROUPS}
        self.groups = {g: [] for g in GROUPS}
        self.cursor_ns = None
        self.gaps = []
        if cursor < 0 or len(log) == 0:
            return
        # Where the capture lost frames, known by the cursor: bars there may miss segments.
        self.gaps = log.capture_gaps(cursor + 1)
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
                bar.selected = conn_id == selected
                self.bars.append(bar)

    def _time_wait(self, bar: Bar, tcp: list[int], times, decode, now: int) -> None:  # type: ignore[no-untyped-def]
        """The bar's end and TIME_WAIT tail, from the connection's tcp_state events."""
        if not tcp:
            return
        states: dict[str, str] = {}
        closed: dict[str, int] = {}  # side -> its last CLOSED
        inferred: dict[str, bool] = {}
        expires = None
        half: dict[str, int] = {}  # side -> position in bar.closing of its open span
        for i in tcp:
            side, state, source, exp, *_ = decode(i, _tcp_state)
            t = int(times[i])
            states[side] = state
            if side in half:
                k = half.pop(side)
                s_side, s_state, s_from, _ = bar.closing[k]
                bar.closing[k] = (s_side, s_state, s_from, t)
            if state in HALF_CLOSED:
                half[side] = len(bar.closing)
                bar.closing.append((side, state, t, None))
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
