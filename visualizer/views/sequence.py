"""The handshake and the teardown of one connection, as a sequence diagram.

Two lanes, the client on the left and the server on the right; every TCP
segment of the connection up to the cursor is an arrow from its sender's lane
to its receiver's, one row each, going down the page in the order they
happened (rows are spaced by order, not by time, which would squeeze a 60 µs
handshake into one line: the elapsed milliseconds stand in the left margin).
Each lane shows its end's TCP state as a coloured band that changes colour
where a ``tcp_state`` event put the change, with the state's name beside it.

Which connection: the selected one, or else the newest that has segments at
or before the cursor. Long connections (keep-alive, large files) keep the
handshake, every SYN/FIN/RST and the latest segments; runs in between fold
into one "… N more segments …" row so that the picture still fits.

The view keeps what it drew as plain data (``arrows``, ``marks``,
``elisions``, ``caption``, ``client_state``...) for tests, and animates a
segment that appears as the cursor moves forward: its arrow travels from the
sender to the receiver in 300 ms. Stepping back removes arrows at once.
"""
from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PySide6.QtCore import QT_TRANSLATE_NOOP, QEasingCurve, QPointF, QRectF, Qt, QVariantAnimation
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPen,
                           QPolygonF, QResizeEvent)
from PySide6.QtWidgets import QCheckBox, QWidget

from ..model import Timeline
from ..model.log import EventLog
from . import style
from .base import View

MOD32 = 1 << 32
# Words of the trace the badges translate (lupdate finds them here).
_WORDS = (QT_TRANSLATE_NOOP("SequenceView", "captured"),
          QT_TRANSLATE_NOOP("SequenceView", "derived"),
          QT_TRANSLATE_NOOP("SequenceView", "observed"),
          QT_TRANSLATE_NOOP("SequenceView", "inferred"),
          QT_TRANSLATE_NOOP("SequenceView", "traced"))
TIME_WAIT_MS = 60_000  # Linux's TIME_WAIT (2 MSL); observed states carry the real countdown
ANIMATION_MS = 300  # one segment's journey from sender to receiver
MAX_ANIMATED = 6  # more new segments at once (a seek) are drawn without travelling
# Live, a whole connection on loopback arrives within one batch: the view replays its
# newest segments one after another (states and caption keep pace with them), and holds
# that connection until they have arrived rather than flicking to each newer one.
MAX_ANIMATED_LIVE = 24
HOLD_S = 5.0  # Live: the longest the view holds a connection for its retelling
MS_RIGHT = 96  # the time column's right edge


class Segment(NamedTuple):
    """A ``packet`` event, decoded once."""

    t_ns: int
    sender: str  # "client" or "server"
    flags: tuple[str, ...]
    flags_text: str
    seq: int
    ack: int
    length: int
    origin: str
    relative: bool  # the numbers are relative already (derived packets: ISN 0)
    aggregate: bool = False  # derived: one write the kernel cut as it chose (not drawn as such)
    dropped: str = ""  # captured, then dropped by a firewall rule (the lab's fault) before TCP


def _confirm(mark: "LaneMark", check: "Check") -> None:
    """The kernel confirmed the mark's state: ✓ (the tracepoint's word over a poll's)."""
    if mark.check != "✓" or check.source == "traced":
        mark.check, mark.checked_by = "✓", check.source
        mark.text = f"{mark.state} ✓"


def _segment_at(log: EventLog, cursor: int) -> int:
    """The segment a cursor stands on: the event itself, or, on the states a segment
    caused (dated at the segment, just after it in the log), that segment."""
    if not 0 <= cursor < len(log):
        return cursor
    at = log[cursor]
    k = cursor
    while k >= 0 and k >= cursor - 8:
        e = log[k]
        if e.conn != at.conn:
            break
        if e.kind == "packet":
            return k if e.t_ns == at.t_ns else cursor
        if e.kind not in ("tcp_state", "state_check"):
            break
        k -= 1
    return cursor


class Check(NamedTuple):
    """A ``state_check`` event (the kernel's word on a state), decoded once."""

    t_ns: int
    side: str
    state: str
    source: str  # "traced" or "observed"
    verdict: str | None  # "confirms", "contradicts", None (the segments never showed it)
    expires_ms: int | None


class Change(NamedTuple):
    """A ``tcp_state`` event, decoded once."""

    t_ns: int
    side: str
    state: str
    previous: str | None
    source: str | None
    via: tuple[str, ...]
    expires_ms: int | None


@dataclass
class Arrow:
    """One segment as drawn."""

    index: int  # its event's index in the log
    key: tuple[int, int]  # (t_ns, seq): who it is, even if a merge moves its index
    sender: str  # "client" or "server"
    receiver: str
    flags: str  # as the packet said: "SYN|ACK"
    kind: str  # "control" (SYN, FIN), "data" (len > 0), "ack" (pure ACK), "reset" (RST)
    seq: int  # as shown: relative or absolute
    ack: int | None  # None when the ACK flag is off
    length: int
    origin: str  # "captured" or "derived"
    numbers: str  # "seq=1 ack=1 len=93"
    label: str  # flags and numbers
    elapsed_ms: float  # since the connection's first segment
    note: str = ""  # "piggyback": the FIN|ACK the caption explains
    retransmission: bool = False  # the same SYN, FIN or data again from its sender
    aggregate: bool = False  # derived: a write the kernel cut into segments of its choosing
    dropped: str = ""  # the lab's fault that dropped it on its way in: it never arrived
    row: int = -1
    y0: float = 0.0  # where it leaves the sender's lane
    y1: float = 0.0  # where it reaches the receiver's

    @property
    def direction(self) -> str:
        return f"{self.sender}→{self.receiver}"


@dataclass
class LaneMark:
    """A state change on one lane, where it happened between the rows."""

    index: int
    side: str  # "client" or "server"
    state: str
    previous: str | None
    source: str | None  # "observed" or "inferred"
    via: tuple[str, ...]  # states passed through on the way (inferred)
    text: str  # what the label says
    row: int = -1  # the row it follows (-1: before the first)
    y: float = 0.0
    check: str = ""  # the kernel's word on it: "✓" (confirmed), "✗ CLOSE_WAIT" (contradicted)
    checked_by: str = ""  # "traced" / "observed"


@dataclass
class Elision:
    """Segments folded into one row."""

    first: int  # positions in the connection's segment list
    last: int
    count: int
    data_segments: int
    data_bytes: int
    text: str
    row: int = -1
    y: float = 0.0


@dataclass
class _Geometry:
    client_x: float = 0.0
    server_x: float = 0.0
    lanes_top: float = 0.0
    lanes_bottom: float = 0.0
    row_h: float = 40.0
    ms_right: float = MS_RIGHT  # the time column's right edge, as wide as its type needs
    row_tops: list[float] = field(default_factory=list)
    end_y: float = 0.0  # where the lanes' known history ends (the cursor's moment)
    caption_rect: QRectF | None = None


def _split(conn: str) -> tuple[str, str]:
    client, _, server = conn.partition(">")
    return client, server


def _port(address: str) -> int:
    try:
        return int(address.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return -1


def _human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


def _elapsed_text(ms: float) -> str:
    if ms < 10:
        return f"{ms:.3f}"
    if ms < 100:
        return f"{ms:.2f}"
    if ms < 1000:
        return f"{ms:.1f}"
    return f"{ms:.0f}"


def _text_on(colour: QColor) -> QColor:
    """Dark text on light fills, white on dark ones (in any theme)."""
    return style.text_on(colour, 0.5)


class _Connection:
    """One connection's segments and state changes over the whole log, decoded once and
    extended as the log grows (decoded again only if a late batch moved them). The view
    takes the prefix up to the cursor; nothing past it is drawn."""

    def __init__(self, conn: str) -> None:
        self.conn = conn
        self.client_port = _port(_split(conn)[0])
        self.length = -1  # the log's length when last brought up to date
        self.indices = np.empty(0, np.int64)  # its packet and tcp_state events
        self.seg_index: list[int] = []  # log index of each segment
        self.segments: list[Segment] = []
        self.keys: list[tuple[int, int]] = []  # (t_ns, seq) of each segment
        self.change_index: list[int] = []
        self.changes: list[Change] = []
        self.check_index: list[int] = []
        self.checks: list[Check] = []
        self.resets: list[tuple[int, str, str, str | None]] = []  # traced: t, side, direction, reason
        self.repeats: list[bool] = []  # per segment: a retransmission
        self._sent: set[tuple] = set()  # (sender, flags, seq, length) of SYNs, FINs and data
        self._ended = False  # a FIN or RST seen: a client SYN after it opens anew
        self.control: list[int] = []  # positions of SYN, FIN and RST segments
        self.first_origin: dict[str, int] = {}  # origin -> position of its first segment
        self.first_relative: int | None = None  # position of the first relative segment
        self.isn: dict[str, int] = {}  # each side's initial sequence number: its first seq
        self.arrows: dict[bool, list[Arrow]] = {True: [], False: []}  # relative or not
        self.seg_array = np.empty(0, np.int64)
        self.change_array = np.empty(0, np.int64)
        self.check_array = np.empty(0, np.int64)
        self.lengths = np.empty(0, np.int64)

    def update(self, log: EventLog) -> None:
        if self.length == len(log):
            return
        indices = log.indices(conn=self.conn,
                              kinds=("packet", "tcp_state", "state_check", "reset"))
        old = self.indices
        if not (len(indices) >= len(old) and np.array_equal(indices[:len(old)], old)):
            self.__init__(self.conn)  # type: ignore[misc]  # a merge moved them: start over
            old = self.indices
        self.length, self.indices = len(log), indices
        new = indices[len(old):]
        if not len(new):
            return
        seqs = log.column("seq")
        for i, e in zip(new.tolist(), (log[i] for i in new.tolist())):
            d = e.data
            if e.kind == "packet":
                self._add_segment(i, e.t_ns, int(seqs[i]), d)
            elif e.kind == "tcp_state" and d.get("side") in ("client", "server"):
                expires = d.get("expires_ms")
                self.change_index.append(i)
                self.changes.append(Change(
                    e.t_ns, str(d["side"]), str(d.get("state") or "CLOSED"), d.get("previous"),
                    d.get("source"), tuple(d.get("via") or ()),
                    int(expires) if isinstance(expires, (int, float)) else None))
            elif e.kind == "reset" and d.get("side") in ("client", "server"):
                self.resets.append((e.t_ns, str(d["side"]), str(d.get("direction")),
                                    d.get("reason")))
            elif e.kind == "state_check" and d.get("side") in ("client", "server"):
                expires = d.get("expires_ms")
                self.check_index.append(i)
                self.checks.append(Check(
                    e.t_ns, str(d["side"]), str(d.get("state")), str(d.get("source")),
                    d.get("verdict"),
                    int(expires) if isinstance(expires, (int, float)) else None))
        self.seg_array = np.asarray(self.seg_index, np.int64)
        self.change_array = np.asarray(self.change_index, np.int64)
        self.check_array = np.asarray(self.check_index, np.int64)
        self.lengths = np.fromiter((s.length for s in self.segments), np.int64,
                                   len(self.segments))

    def _add_segment(self, index: int, t_ns: int, seq: int, d: dict) -> None:  # type: ignore[type-arg]
        sender = d.get("sender")
        if sender not in ("client", "server"):
            sport, dport = d.get("sport"), d.get("dport")
            sender = "server" if (sport != self.client_port and dport == self.client_port) \
                else "client"
        flags_text = str(d.get("flags") or "")
        flags = tuple(f for f in flags_text.split("|") if f)
        segment = Segment(t_ns, sender, flags, flags_text, int(d.get("tcp_seq") or 0),
                          int(d.get("ack") or 0), int(d.get("len") or 0),
                          str(d.get("origin") or "captured"), bool(d.get("relative")),
                          bool(d.get("aggregate")), str(d.get("dropped") or ""))
        position = len(self.segments)
        # A retransmission: the same SYN, FIN or data from the same sender again (what
        # the kernel resends after a timeout; the tracepoint says so as root too).
        key = (sender, flags_text, segment.seq, segment.length)
        if flags == ("SYN",) and sender == "client" and self._ended:
            self._sent.clear()  # the port pair used again: a new connection, not a resend
            self._ended = False
        if "FIN" in flags or "RST" in flags:
            self._ended = True
        carries = segment.length > 0 or "SYN" in flags or "FIN" in flags
        self.repeats.append(carries and "RST" not in flags and key in self._sent)
        if carries:
            self._sent.add(key)
        self.seg_index.append(index)
        self.segments.append(segment)
        self.keys.append((t_ns, seq))
        if "SYN" in flags or "FIN" in flags or "RST" in flags:
            self.control.append(position)
        self.first_origin.setdefault(segment.origin, position)
        if segment.relative and self.first_relative is None:
            self.first_relative = position
        # Derived numbers are relative already (ISN 0); else a side's first segment is
        # its SYN, whose seq is the ISN (or, captured mid-way, the first seen, as Wireshark).
        self.isn.setdefault(sender, 0 if segment.relative else segment.seq)

    def arrows_upto(self, relative: bool, count: int) -> list[Arrow]:
        """The first ``count`` segments as arrows (built once, then reused)."""
        built = self.arrows[relative]
        if len(built) < count:
            t0 = self.segments[0].t_ns
            for k in range(len(built), len(self.segments)):
                built.append(self._arrow(k, relative, t0))
        return built[:count]

    def _arrow(self, k: int, relative: bool, t0: int) -> Arrow:
        s = self.segments[k]
        receiver = "server" if s.sender == "client" else "client"
        has_ack = "ACK" in s.flags
        seq, ack = s.seq, s.ack
        if relative and not s.relative:
            seq = (seq - self.isn.get(s.sender, 0)) % MOD32
            ack = (ack - self.isn.get(receiver, 0)) % MOD32
        if "RST" in s.flags:
            kind = "reset"
        elif s.length > 0:
            kind = "data"
        elif "SYN" in s.flags or "FIN" in s.flags:
            kind = "control"
        else:
            kind = "ack"
        numbers = f"seq={seq}" + (f" ack={ack}" if has_ack else "") + f" len={s.length}"
        return Arrow(self.seg_index[k], self.keys[k], s.sender, receiver, s.flags_text, kind,
                     seq, ack if has_ack else None, s.length, s.origin, numbers,
                     f"{s.flags_text}  {numbers}", (s.t_ns - t0) / 1e6,
                     retransmission=self.repeats[k], aggregate=s.aggregate,
                     dropped=s.dropped)


class SequenceView(View):
    name = "sequence"
    title = QT_TRANSLATE_NOOP("View", "Handshake and teardown")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(480, 300)
        self.relative = True
        self.relative_box = QCheckBox(self)
        self.relative_box.setFont(style.font(0.95))
        self.relative_box.setChecked(True)
        self._set_words()
        self.relative_box.toggled.connect(self.set_relative)
        # What is drawn, as plain data (tests read it).
        self.conn: str | None = None
        self.conn_reason = ""  # "selected", "newest" or "held" (live, being retold)
        self.title_text = ""
        self.client_address = ""
        self.server_address = ""
        self.client_state = ""  # the lanes' states at the cursor
        self.server_state = ""
        self.client_state_text = ""  # with TIME_WAIT's countdown
        self.server_state_text = ""
        self.arrows: list[Arrow] = []
        self.marks: list[LaneMark] = []
        self.elisions: list[Elision] = []
        self.caption = ""
        # "three", "four", "half-close" (data after a FIN), "half-closed" (one FIN so far),
        # "simultaneous", "reset" or "" (no teardown yet)
        self.teardown = ""
        self.badges: list[str] = []
        self._badge_dashed: list[bool] = []  # per badge: derived or inferred (drawn dashed)
        self.message = ""
        self.highlighted: int | None = None  # the log index of the arrow at the cursor
        # Caches keyed by what they were read from (in this log).
        self._log_ref: weakref.ref[EventLog] | Callable[[], None] = lambda: None
        self._pick_key: tuple | None = None
        self._pick: tuple[str | None, str] = (None, "")
        self._connections: dict[str, _Connection] = {}
        self._built_key: tuple | None = None
        self._data: _Connection | None = None  # the connection drawn
        self._count = 0  # how many of its segments are at or before the cursor
        self._drawn: list[Arrow] = []  # the arrows with a row of their own (not folded)
        self._folded_rows: set[int] = set()
        self._noted: Arrow | None = None  # the arrow the caption points at
        self._row_starts = np.empty(0, np.int64)  # each row's first segment position
        self._geo = _Geometry()
        self._scale = 1.0  # a small widget draws everything smaller, alike
        # Animation: segments that appeared as the cursor moved forward travel in turn.
        self._last_seen: tuple[int, str | None, int] | None = None  # (log length, conn, cursor)
        self._queue: list[tuple[int, int]] = []  # keys waiting to travel
        self._flying: tuple[int, int] | None = None
        self._progress = 1.0
        self._busy = False  # Live: more segments came than a retelling holds: keep up instead
        self._held_since = 0.0  # Live: when the connection being retold was picked
        self._animation = QVariantAnimation(self)
        self._animation.setStartValue(0.0)
        self._animation.setEndValue(1.0)
        self._animation.setEasingCurve(QEasingCurve.Type.InOutQuad)
        self._animation.valueChanged.connect(self._animation_step)
        self._animation.finished.connect(self._animation_done)

    # ------------------------------------------------------------ public
    @property
    def animating(self) -> bool:
        """Whether a segment is travelling (or waiting to) right now."""
        return self._flying is not None or bool(self._queue)

    def progress_of(self, arrow: Arrow) -> float:
        """How far ``arrow`` has travelled: 1 drawn, 0 not yet left its sender."""
        if arrow.key == self._flying:
            return self._progress
        if arrow.key in self._queue:
            return 0.0
        return 1.0

    def lane_states(self, side: str) -> list[str]:
        """The states on ``side``'s lane, top to bottom, as drawn."""
        return [m.state for m in self.marks if m.side == side]

    def arrow_labels(self) -> list[str]:
        return [a.label for a in self.arrows]

    def set_relative(self, on: bool) -> None:
        """Relative (from each ISN) or absolute sequence numbers."""
        self.relative = bool(on)
        if self.relative_box.isChecked() != self.relative:
            self.relative_box.setChecked(self.relative)
        self._built_key = None
        if self.timeline is not None:
            self.show_state(self.timeline)

    def show_state(self, timeline: Timeline) -> None:
        self.timeline = timeline
        log, cursor = timeline.log, timeline.cursor
        if self._log_ref() is not log:  # another trace: nothing cached holds
            self._log_ref = weakref.ref(log)
            self._pick_key = self._built_key = None
            self._connections.clear()
            self._last_seen = None
            self._stop_animation()  # (nor does a journey of the other trace's segments)
        conn, reason = self._choose(log, cursor)
        self._animate_new(log, conn, cursor)
        shown_at = self._shown_at(log, conn, cursor)
        key = (len(log), cursor, shown_at, conn, reason, self.relative,
               tuple(self._queue), self._flying)
        if key != self._built_key:
            self._build(timeline, conn, reason, shown_at)
            self._layout()
            self._built_key = key
        self.update()

    # ------------------------------------------------------------ reading the log
    def _choose(self, log: EventLog, cursor: int) -> tuple[str | None, str]:
        """The selected connection, or the newest with segments at or before the cursor."""
        if self.selected:
            return self.selected, "selected"
        if self._live and self.conn is not None and self.animating and not self._busy \
                and time.monotonic() - self._held_since < HOLD_S:
            return self.conn, "held"  # live: its segments are still arriving on screen
        key = (len(log), cursor)
        if key == self._pick_key:
            return self._pick
        found: str | None = None
        code = log.kinds.codes.get("packet")
        if code is not None and cursor >= 0:
            kinds, conns = log.column("kind"), log.column("conn")
            stop, width = cursor + 1, 4096
            for _ in range(64):  # the window doubles: bounded
                start = max(0, stop - width)
                hits = np.flatnonzero(kinds[start:stop] == code)
                if len(hits):
                    # Connection codes follow first appearance: the largest is the newest.
                    found = log.conns.names[int(conns[start:stop][hits].max())]
                    if found is not None:
                        break
                if start == 0:
                    break
                width *= 2
        self._pick_key, self._pick = key, (found, "newest" if found else "")
        return self._pick

    def _connection(self, log: EventLog, conn: str) -> _Connection:
        data = self._connections.get(conn)
        if data is None:
            if len(self._connections) >= 64:
                self._connections.clear()
            data = self._connections[conn] = _Connection(conn)
        data.update(log)
        return data

    # ------------------------------------------------------------ the drawn model
    def _build(self, timeline: Timeline, conn: str | None, reason: str, cursor: int) -> None:
        """The picture at ``cursor``: the timeline's, or live, the segment on its way."""
        log = timeline.log
        self.conn, self.conn_reason = conn, reason
        self.arrows, self.marks, self.elisions = [], [], []
        if self._noted is not None:  # arrows are shared between builds: clear the mark
            self._noted.note = ""
            self._noted = None
        self.caption, self.teardown, self.badges, self.message = "", "", [], ""
        self._badge_dashed = []
        self._data, self._count = None, 0
        if conn is None:
            self.title_text = ""
            self.client_address = self.server_address = ""
            self.client_state = self.server_state = ""
            self.client_state_text = self.server_state_text = ""
            self.message = self.tr("No TCP segments yet. Run some traffic, or open a trace "
                                   "recorded with packets.")
            return
        self.client_address, self.server_address = _split(conn)
        client_port = _port(self.client_address)
        self.title_text = self.tr("Connection {0} → {1}").format(
            client_port, _port(self.server_address))
        data = self._data = self._connection(log, conn)
        count = self._count = int(np.searchsorted(data.seg_array, cursor, side="right"))
        changes = int(np.searchsorted(data.change_array, cursor, side="right"))
        checks = int(np.searchsorted(data.check_array, cursor, side="right"))
        now_ns = int(log.times[cursor]) if cursor >= 0 else 0
        self._build_states(timeline, conn, data, changes, now_ns, cursor == timeline.cursor,
                           checks)
        self.arrows = data.arrows_upto(self.relative, count)
        self._build_caption(data, count)
        origins = sorted(o for o, first in data.first_origin.items() if first < count)
        sources = sorted({c.source for c in data.changes[:changes] if c.source})
        if origins:
            text = " + ".join(self.tr(o) for o in origins)
            if not self.relative and data.first_relative is not None \
                    and data.first_relative < count:
                text += self.tr(" (numbers relative: ISN unknown)")
            self.badges.append(self.tr("packets: {0}").format(text))
            self._badge_dashed.append("derived" in origins)
        else:
            self.message = self.tr("No segments of this connection yet at this moment.")
        checkers = sorted({c.source for c in data.checks[:checks] if c.verdict})
        if sources:
            states = " + ".join(self.tr(s) for s in sources)
            if checkers:
                states += self.tr(", checked: {0}").format(
                    " + ".join(self.tr(s) for s in checkers))
        elif "tcp_state" in log.kinds.codes:  # the trace has states, none of this one yet
            states = self.tr("none yet")
        else:
            states = self.tr("not recorded")
        self.badges.append(self.tr("states: {0}").format(states))
        self._badge_dashed.append("inferred" in sources)

    def _build_states(self, timeline: Timeline, conn: str, data: _Connection, count: int,
                      now_ns: int, at_cursor: bool = True, checks: int = 0) -> None:
        last: dict[str, Change] = {}
        marks: dict[str, LaneMark] = {}
        # Changes and the kernel's checks in log order: a check speaks of the state its
        # end is in when it comes (the latest mark of that side).
        merged = sorted([(i, 0, k) for k, i in enumerate(data.change_index[:count])]
                        + [(i, 1, k) for k, i in enumerate(data.check_index[:checks])])
        tw_report: dict[str, Check] = {}
        # The kernel's tracepoint may report a change a few µs before the segment that
        # dates it (the state changes, then the segment leaves): such a confirmation
        # waits for its mark.
        early: dict[str, Check] = {}
        for i, is_check, k in merged:
            if not is_check:
                c = data.changes[k]
                mark = LaneMark(i, c.side, c.state, c.previous, c.source, c.via, c.state)
                self.marks.append(mark)
                marks[c.side] = mark
                last[c.side] = c
                waiting = early.pop(c.side, None)
                if waiting is not None and waiting.state == c.state:
                    _confirm(mark, waiting)
                continue
            check = data.checks[k]
            if check.state == "TIME_WAIT" and check.expires_ms is not None:
                tw_report[check.side] = check
            if check.verdict is None:
                continue
            mark = marks.get(check.side)
            if check.verdict == "confirms":
                # The current state, or one the segments passed within the same moment
                # (FIN_WAIT_2 on the way to TIME_WAIT; the full socket made in SYN_RECV
                # as the last ACK arrives): the kernel reports them a few µs later.
                recent = [m for m in self.marks[-4:] if m.side == check.side][-2:]
                match = next((m for m in reversed(recent) if m.state == check.state), None)
                if match is not None:
                    _confirm(match, check)
                else:
                    early[check.side] = check
            elif mark is not None and not mark.check:
                mark.check, mark.checked_by = f"✗ {check.state}", check.source
                mark.text = f"{mark.state} ✗ {check.state}"
        # The state at the cursor, for ends whose changes retired from our reading (not
        # when the picture stands behind the cursor: that would show the future).
        state = timeline.state.connections.get(conn) if at_cursor else None
        for side in ("client", "server"):
            change = last.get(side)
            if change is not None:
                name = change.state
            elif state is not None and getattr(state, f"{side}_source"):
                name = getattr(state, side)  # reported, but retired from our reading
            else:
                name = "—"  # never reported: the reducer's guess from accept() is no state
            text = name if name != "—" else self.tr("state not reported")
            if name == "TIME_WAIT" and change is not None:
                report = tw_report.get(side)
                if change.expires_ms:
                    expires, since, approx = change.expires_ms, change.t_ns, ""
                elif report is not None and report.t_ns >= change.t_ns:
                    expires, since, approx = report.expires_ms, report.t_ns, ""
                else:
                    expires, since, approx = TIME_WAIT_MS, change.t_ns, "≈"
                left = max(0.0, (expires or 0) - (now_ns - since) / 1e6) / 1000
                text = f"TIME_WAIT  {approx}{left:.1f} s"
            mark = marks.get(side)
            if mark is not None and mark.check and change is not None:
                text += f"  {mark.check}"
            setattr(self, f"{side}_state", name)
            setattr(self, f"{side}_state_text", text)

    def _build_caption(self, data: _Connection, count: int) -> None:
        """Say what kind of teardown this is (or was), once the segments show it."""
        names = {"client": self.tr("client"), "server": self.tr("server")}
        segments = data.segments
        control = [k for k in data.control if k < count]
        reset = next((segments[k] for k in control if "RST" in segments[k].flags), None)
        if reset is not None:
            self.teardown = "reset"
            self.caption = self.tr("RST: the {0} reset the connection. No FIN exchange: both "
                                   "ends drop it at once, and no TIME_WAIT follows.").format(
                names[reset.sender])
            why = next((reason for t, side, direction, reason in data.resets
                        if side == reset.sender and direction == "sent" and reason
                        and abs(t - reset.t_ns) < 5_000_000), None)
            if why:
                self.caption += " " + self.tr("The kernel's reason (traced): {0}.").format(why)
            return
        fins = [k for k in control if "FIN" in segments[k].flags]
        if not fins:
            return
        first = fins[0]
        fin = segments[first]
        a, b = fin.sender, ("server" if fin.sender == "client" else "client")
        fin_end = (fin.seq + fin.length + 1) % MOD32  # what acknowledges the FIN
        position = next((k for k in range(first + 1, count) if segments[k].sender == b), None)
        if position is None:
            return
        answer = segments[position]
        acks_fin = "ACK" in answer.flags and answer.ack == fin_end
        if "FIN" in answer.flags:
            if acks_fin and answer.length == 0:
                self.teardown = "three"
                self._noted = self.arrows[position]
                self._noted.note = "piggyback"
                self.caption = self.tr(
                    "Three segments, not four: the {1}'s FIN rode on the ACK of the {0}'s FIN. "
                    "Linux delays that ACK (delayed ACK); the {1} closed in the meantime, so "
                    "one FIN|ACK did both jobs.").format(names[a], names[b])
            elif not acks_fin:
                self.teardown = "simultaneous"
                self.caption = self.tr("Simultaneous close: both sides sent a FIN before "
                                       "receiving the other's.")
            return
        peer_fin = any(segments[k].sender == b for k in fins)
        if peer_fin and answer.length > 0:
            self.teardown = "half-close"
            self.caption = self.tr("Half-close: after the {0}'s FIN the {1} went on sending "
                                   "data (which acknowledged the FIN), and sent its own FIN "
                                   "when it closed.").format(names[a], names[b])
        elif peer_fin:
            self.teardown = "four"
            self.caption = self.tr("Four segments: the {1} acknowledged the {0}'s FIN at once, "
                                   "and sent its own FIN later, when it closed.").format(
                names[a], names[b])
        elif acks_fin:
            self.teardown = "half-closed"
            self.caption = self.tr("Half-closed: the {0} has sent its FIN and the {1} "
                                   "acknowledged it; the {1} may still send until it "
                                   "closes.").format(names[a], names[b])

    # ------------------------------------------------------------ layout
    def _fonts(self) -> dict[str, QFont]:
        italic = style.font(1.0)
        italic.setItalic(True)
        return {"title": style.font(1.25, bold=True), "badge": style.font(0.9),
                "lane": style.font(1.1, bold=True), "address": style.font(1.0, mono=True),
                "state": style.font(1.45, bold=True), "flags": style.font(1.15, bold=True),
                "numbers": style.font(1.0, mono=True), "pill": style.font(0.95, bold=True),
                "via": style.font(0.75), "ms": style.font(0.85, mono=True),
                "caption": style.font(1.05),
                "elided": italic, "message": style.font(1.2)}

    def _layout(self) -> None:
        """Rows, folded runs and y positions for the current size (in the logical size:
        below 1150 x 700 the painter scales the whole picture down, to 70 % at most).
        Zoomed in on a small screen, where even the fewest rows would not fit, it
        scales down further, never below 100 %'s type."""
        width, height = max(self.width(), 100), max(self.height(), 100)
        scale = max(0.7, min(1.0, height / 700, width / 1150))
        floor = min(scale, 1.0 / style.ZOOM)
        for _ in range(12):  # bounded: each try 10 % smaller
            if self._layout_at(scale, width, height) or scale <= floor:
                return
            scale = max(floor, scale * 0.9)

    def _layout_at(self, scale: float, width: int, height: int) -> bool:
        """The layout at ``scale``; whether its rows have the room their labels need."""
        self._scale = scale
        w, h = width / scale, height / scale
        fonts = self._fonts()
        line = QFontMetricsF(fonts["flags"]).height()
        pill_h = QFontMetricsF(fonts["pill"]).height() + 6
        geo = self._geo = _Geometry()
        widths = {"client": 0.0, "server": 0.0}
        for m in self.marks:
            widths[m.side] = max(widths[m.side], self._mark_size(m, fonts)[0])
        # Room for the time column and the state labels outside the lanes.
        geo.ms_right = max(MS_RIGHT, QFontMetricsF(fonts["ms"]).horizontalAdvance("0000.00") + 12)
        geo.client_x = max(round(w * 0.25), round(geo.ms_right + 8 + widths["client"] + 28))
        geo.server_x = min(round(w * 0.80), round(w - 10 - widths["server"] - 28))
        title_h = QFontMetricsF(fonts["title"]).height() + 16
        header_h = (QFontMetricsF(fonts["lane"]).height() + QFontMetricsF(fonts["state"]).height()
                    + 22)
        geo.lanes_top = title_h + header_h
        caption_h = 0.0
        if self.caption:
            metrics = QFontMetricsF(fonts["caption"])
            text_w = w - 2 * 24 - 24
            rect = metrics.boundingRect(QRectF(0, 0, text_w, 1000),
                                        int(Qt.TextFlag.TextWordWrap), self.caption)
            caption_h = rect.height() + 20
            geo.caption_rect = QRectF(24, h - caption_h - 10, w - 48, caption_h)
        geo.lanes_bottom = h - caption_h - (22 if caption_h else 12)
        area = geo.lanes_bottom - geo.lanes_top
        min_row = max(36.0, line * 1.75)
        max_row = max(min_row, line * 3.0)
        # At least the handshake, a fold, a FIN, a fold, the other FIN and the last ACK.
        capacity = max(8, int(area // min_row))
        for _ in range(8):  # fewer rows until the state labels fit too: bounded
            rows = self._fold(capacity)
            gap_heights = self._place_marks(fonts)
            extra = {g: max(0.0, need - pill_h) for g, need in gap_heights.items()}
            head = extra.get(-1, 0) + pill_h + 8 if -1 in gap_heights else 10
            tail_rows = 0.7
            fixed = head + sum(v for g, v in extra.items() if g >= 0)
            fit_h = (area - fixed) / max(1.0, len(rows) + tail_rows)
            if fit_h >= min_row * 0.85 or capacity <= 8:
                break
            capacity -= 1
        # Spaced for a typical connection (11 rows) from the start, so that rows do not
        # move as the first segments arrive; closer only when more come.
        stable_h = (area - fixed) / max(11.0, len(rows) + tail_rows)
        row_h = max(24.0, min(max_row, fit_h, max(stable_h, min_row)))
        geo.row_h = row_h
        y = geo.lanes_top + head
        tops = []
        for r in range(len(rows)):
            tops.append(y)
            y += row_h + extra.get(r, 0)
        geo.row_tops = tops
        drop = min(max(row_h * 0.3, 8.0), 20.0)
        for arrow in self._drawn:  # folded ones have no place of their own
            top = tops[arrow.row]
            mid = top + row_h * 0.62
            arrow.y0, arrow.y1 = mid - drop / 2, mid + drop / 2
        for elision in self.elisions:
            elision.y = tops[elision.row] + row_h * 0.5
        # State changes: spread evenly over the gap after the row they follow.
        def gap_bounds(g: int) -> tuple[float, float]:
            if g < 0:
                lo = geo.lanes_top + 4
            else:
                lo = tops[g] + row_h * 0.62 + drop / 2 + 3
            if g + 1 < len(tops):
                hi = tops[g + 1] + row_h * 0.62 - drop / 2 - 3
            else:
                hi = lo + max(row_h * 0.55, extra.get(g, 0) + pill_h * 0.8)
            return lo, max(hi, lo + 1)
        groups: dict[tuple[int, str], list[LaneMark]] = {}
        for m in self.marks:
            groups.setdefault((m.row, m.side), []).append(m)
        end = tops[-1] + row_h * 0.62 + drop / 2 + row_h * 0.4 if tops else geo.lanes_top + 20
        for (g, _), marks in groups.items():
            lo, hi = gap_bounds(g)
            for k, m in enumerate(marks):
                m.y = lo + (k + 1) * (hi - lo) / (len(marks) + 1)
                end = max(end, m.y + pill_h * 0.6)
        geo.end_y = min(end, geo.lanes_bottom)
        return fit_h >= min_row * 0.85

    def _fold(self, capacity: int) -> list[tuple[str, int, int]]:
        """Rows: ("seg", k, k) or ("fold", first, last); sets arrows' and elisions' rows."""
        n, data = self._count, self._data
        control = [k for k in data.control if k < n] if data is not None else []
        keep = list(range(n)) if n <= capacity else self._keep(n, control, capacity)
        rows: list[tuple[str, int, int]] = []
        previous = -1
        for k in keep:
            if k > previous + 1:
                rows.append(("fold", previous + 1, k - 1))
            rows.append(("seg", k, k))
            previous = k
        if previous < n - 1:
            rows.append(("fold", previous + 1, n - 1))
        self.elisions = []
        row_starts = []  # the first segment position of each row
        for r, (what, first, last) in enumerate(rows):
            row_starts.append(first)
            for arrow in self.arrows[first:last + 1]:
                arrow.row = r
            if what == "fold" and data is not None:
                lengths = data.lengths[first:last + 1]
                count, with_data = last - first + 1, int(np.count_nonzero(lengths))
                nbytes = int(lengths.sum())
                text = self.tr("… {0} more segments ({1} with data, {2}) …").format(
                    count, with_data, _human_bytes(nbytes))
                self.elisions.append(Elision(first, last, count, with_data, nbytes, text, r))
        self._row_starts = np.asarray(row_starts, np.int64)
        self._folded_rows = {e.row for e in self.elisions}
        self._drawn = [self.arrows[first] for what, first, _ in rows if what == "seg"]
        return rows

    @staticmethod
    def _keep(n: int, control: list[int], capacity: int) -> list[int]:
        """Which of ``n`` segments keep their own row (sorted): the handshake, every SYN,
        FIN and RST with the segment after it, and the latest ones; then as many more as
        fit in ``capacity`` rows, each run of the others folding into one row."""

        def rows(keep: set[int]) -> int:
            ks = sorted(keep)
            runs = (ks[0] > 0) + (ks[-1] < n - 1) + sum(b > a + 1 for a, b in zip(ks, ks[1:]))
            return len(ks) + runs

        # The handshake, every SYN, FIN and RST, the last segment, the answers to them
        # (a FIN's ACK; after a SYN, the next step), the one before the last, the first
        # request: in this order.
        wanted = [*range(min(3, n)), *control, n - 1, *(k + 1 for k in control), n - 2, 3, 4]
        keep: set[int] = set()
        for k in wanted:  # first what a lecture needs, in order, each if it still fits
            if 0 <= k < n and k not in keep and rows(keep | {k}) <= capacity:
                keep.add(k)
        for k in range(n - 1, -1, -1):  # then the latest segments, as many as fit
            if k in keep:
                continue
            if rows(keep | {k}) > capacity:
                break
            keep.add(k)
        return sorted(keep)

    def _place_marks(self, fonts: dict[str, QFont]) -> dict[int, float]:
        """Give each state change the row it follows; returns, per gap, the height the
        labels of the busiest lane need there."""
        seg_array = self._data.seg_array[:self._count] if self._data is not None else \
            np.empty(0, np.int64)
        per_gap: dict[tuple[int, str], float] = {}
        for m in self.marks:
            before = int(np.searchsorted(seg_array, m.index, side="left")) - 1
            m.row = int(np.searchsorted(self._row_starts, before, side="right")) - 1 \
                if before >= 0 else -1
            key = (m.row, m.side)
            per_gap[key] = per_gap.get(key, -4.0) + self._mark_size(m, fonts)[1] + 4
        out: dict[int, float] = {}
        for (g, _), need in per_gap.items():
            out[g] = max(out.get(g, 0.0), need)
        return out

    def _via_text(self, mark: LaneMark) -> str:
        return self.tr("via {0}").format(" → ".join(mark.via)) if mark.via else ""

    def _mark_size(self, mark: LaneMark, fonts: dict[str, QFont]) -> tuple[float, float]:
        """A state label's width and height: the state, and under it the states passed."""
        pm, vm = QFontMetricsF(fonts["pill"]), QFontMetricsF(fonts["via"])
        width = pm.horizontalAdvance(mark.text)
        height = pm.height() + 6
        if mark.via:
            width = max(width, vm.horizontalAdvance(self._via_text(mark)))
            height += vm.height()
        return width + 18, height

    # ------------------------------------------------------------ animation
    @property
    def _live(self) -> bool:
        return self.timeline is not None and self.timeline.live

    def _animate_new(self, log: EventLog, conn: str | None, cursor: int) -> None:
        last, self._last_seen = self._last_seen, (len(log), conn, cursor)
        live = self._live
        if last is None or cursor < last[2] or conn is None:
            self._stop_animation()
            return
        data = self._connection(log, conn)
        hi = int(np.searchsorted(data.seg_array, cursor, side="right"))
        if conn != last[1]:
            self._stop_animation()  # the other connection's journeys are over
            self._held_since = time.monotonic()
        if conn != last[1] and live:
            if hi > MAX_ANIMATED_LIVE:  # too long a story: drawn as it is
                return
            lo = 0  # live, a connection just picked: its story from the start
        elif cursor == last[2]:
            return
        else:
            lo = int(np.searchsorted(data.seg_array, last[2], side="right"))
            if hi - lo > (MAX_ANIMATED_LIVE if live else MAX_ANIMATED):
                self._stop_animation()  # a jump: draw them, no journey
                return
        self._queue.extend(data.keys[lo:hi])
        # Never lag far behind the cursor: a connection busier than a retelling can
        # hold is followed as stepping follows it, a few segments behind.
        if len(self._queue) > (MAX_ANIMATED_LIVE if live and not self._busy else 4):
            self._busy = live
            del self._queue[:-4]
            if live and self._flying is not None:  # the picture jumps to the newest few
                self._fly_next()
        if self._flying is None and self._queue:
            self._fly_next()

    def _shown_at(self, log: EventLog, conn: str | None, cursor: int) -> int:
        """Where the picture stands: the cursor, or live, the segment travelling now
        (later segments, and the states they bring, wait their turn)."""
        if not self._live or self._flying is None or conn is None:
            return cursor
        data = self._connection(log, conn)
        keys = data.keys
        for position in range(len(keys) - 1, max(-1, len(keys) - 4 * MAX_ANIMATED_LIVE), -1):
            if keys[position] == self._flying:
                # With the state changes it brought, up to the next segment.
                following = position + 1
                if following < len(keys) and data.seg_index[following] <= cursor:
                    return data.seg_index[following] - 1
                return cursor
        return cursor

    def _fly_next(self) -> None:
        self._flying = self._queue.pop(0)
        self._progress = 0.0
        self._animation.stop()
        self._animation.setDuration(ANIMATION_MS if not self._queue else ANIMATION_MS // 2)
        self._animation.start()

    def _animation_step(self, value: object) -> None:
        self._progress = float(value)  # type: ignore[arg-type]
        self.update()

    def _animation_done(self) -> None:
        self._progress = 1.0
        self._flying = None
        if self._queue:
            self._fly_next()
        if self._live and self.timeline is not None:
            if self.isVisible():
                self.show_state(self.timeline)  # the next segment, or the newest connection
                return
            self._stop_animation()  # hidden: it catches up when shown
        self.update()

    def settle(self) -> None:
        self._stop_animation()
        self.update()

    def select(self, conn: str | None) -> None:
        if conn != self.selected:
            self._stop_animation()  # the held connection is not the one to show any more
        super().select(conn)

    def _stop_animation(self) -> None:
        self._busy = False
        self._queue.clear()
        self._flying = None
        self._progress = 1.0
        self._animation.stop()

    # ------------------------------------------------------------ painting
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout()

    def apply_theme(self) -> None:
        self._built_key = None  # the fonts changed: rows and labels measure anew
        self._relayout()
        super().apply_theme()

    def _set_words(self) -> None:
        self.relative_box.setText(self.tr("Relative seq/ack"))
        self.relative_box.setToolTip(self.tr(
            "On: sequence and acknowledgement numbers counted from each side's initial "
            "sequence number (ISN), as Wireshark shows them. Off: the 32-bit numbers "
            "on the wire."))

    def retranslate(self) -> None:
        self._set_words()
        self._built_key = None  # the title, badges, caption and labels are words
        self._relayout()
        super().retranslate()

    def _relayout(self) -> None:
        self._layout()
        self.relative_box.setFont(style.font(0.95 * self._scale))
        hint = self.relative_box.sizeHint()
        self.relative_box.setGeometry(self.width() - hint.width() - 16, 10, hint.width(),
                                      hint.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            p.fillRect(self.rect(), QColor(style.BACKGROUND))
            p.scale(self._scale, self._scale)
            fonts = self._fonts()
            self._paint_title(p, fonts)
            if self.conn is None:
                self._paint_message(p, fonts)
                return
            self._paint_headers(p, fonts)
            self._paint_lanes(p, fonts)
            self._paint_elisions(p, fonts)
            self._paint_arrows(p, fonts)
            self._paint_marks(p, fonts)
            self._paint_caption(p, fonts)
            if self.message:
                self._paint_message(p, fonts)
        finally:
            p.end()

    def _paint_title(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        x = 16.0
        metrics = QFontMetricsF(fonts["title"])
        base = 10 + metrics.ascent()
        if self.title_text:
            p.setFont(fonts["title"])
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(QPointF(x, base), self.title_text)
            x += metrics.horizontalAdvance(self.title_text) + 12
            note = {"selected": self.tr("(selected)"),
                    "held": self.tr("(live: being retold)")}.get(self.conn_reason,
                                                                 self.tr("(newest)"))
            p.setFont(fonts["badge"])
            p.setPen(QColor(style.MUTED))
            p.drawText(QPointF(x, base), note)
            x += QFontMetricsF(fonts["badge"]).horizontalAdvance(note) + 24
        # Badges: solid when captured/observed, dashed when derived/inferred.
        bm = QFontMetricsF(fonts["badge"])
        p.setFont(fonts["badge"])
        right = self.relative_box.geometry().left() / self._scale - 16
        for text, reconstructed in zip(self.badges, self._badge_dashed):
            width = bm.horizontalAdvance(text) + 20
            if x + width > right:
                break
            rect = QRectF(x, 10, width, bm.height() + 8)
            pen = QPen(QColor(style.MUTED), 1.5)
            if reconstructed:
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect, 6, 6)
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
            x += width + 10

    def _paint_headers(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        geo = self._geo
        top = QFontMetricsF(fonts["title"]).height() + 18
        lm, sm = QFontMetricsF(fonts["lane"]), QFontMetricsF(fonts["state"])
        am = QFontMetricsF(fonts["address"])
        for side, x, colour, address, text, state in (
                ("client", geo.client_x, style.CLIENT, self.client_address,
                 self.client_state_text, self.client_state),
                ("server", geo.server_x, style.SERVER, self.server_address,
                 self.server_state_text, self.server_state)):
            name = self.tr("Client") if side == "client" else self.tr("Server")
            width = lm.horizontalAdvance(name) + 10 + am.horizontalAdvance(address)
            left = x - width / 2
            p.setFont(fonts["lane"])
            p.setPen(QColor(colour))
            p.drawText(QPointF(left, top + lm.ascent()), name)
            p.setFont(fonts["address"])
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(QPointF(left + lm.horizontalAdvance(name) + 10, top + lm.ascent()), address)
            rect = QRectF(0, 0, sm.horizontalAdvance(text) + 28, sm.height() + 6)
            rect.moveCenter(QPointF(x, top + lm.height() + 6 + rect.height() / 2))
            if state not in style.STATE_COLOURS:  # nobody reported it: say so, quietly
                p.setFont(fonts["pill"])
                p.setPen(QColor(style.MUTED))
                p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
                continue
            fill = style.state_colour(state)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(fill)
            p.drawRoundedRect(rect, 8, 8)
            p.setFont(fonts["state"])
            p.setPen(_text_on(fill))
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
        # The time column's heading.
        p.setFont(fonts["ms"])
        p.setPen(QColor(style.MUTED))
        ms_h = QFontMetricsF(fonts["ms"]).height()
        p.drawText(QRectF(4, geo.lanes_top - ms_h - 4, geo.ms_right - 4, ms_h),
                   int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                   self.tr("ms"))

    def _lane_x(self, side: str) -> float:
        return self._geo.client_x if side == "client" else self._geo.server_x

    def _paint_lanes(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        geo = self._geo
        band = 12.0
        for side in ("client", "server"):
            x = self._lane_x(side)
            p.setPen(QPen(QColor(style.MUTED), style.pen(2)))
            p.drawLine(QPointF(x, geo.lanes_top), QPointF(x, geo.lanes_bottom))
            marks = [m for m in self.marks if m.side == side]
            for k, m in enumerate(marks):
                y_end = marks[k + 1].y if k + 1 < len(marks) else geo.end_y
                if y_end <= m.y:
                    continue
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(style.state_colour(m.state))
                p.drawRect(QRectF(x - band / 2, m.y, band, y_end - m.y))
            # Folded runs break the lane: two short slanted strokes.
            for e in self.elisions:
                p.setPen(QPen(QColor(style.BACKGROUND), 8))
                p.drawLine(QPointF(x - 12, e.y + 2), QPointF(x + 12, e.y - 6))
                p.setPen(QPen(QColor(style.MUTED), 2))
                p.drawLine(QPointF(x - 12, e.y + 6), QPointF(x + 12, e.y - 2))
                p.drawLine(QPointF(x - 12, e.y - 2), QPointF(x + 12, e.y - 10))

    def _paint_elisions(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        geo = self._geo
        p.setFont(fonts["elided"])
        for e in self.elisions:
            rect = QRectF(geo.client_x + 20, e.y - geo.row_h / 2 + 4,
                          geo.server_x - geo.client_x - 40, geo.row_h - 8)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(style.GRID).lighter(112))
            p.drawRoundedRect(rect, 6, 6)
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), e.text)
            p.setFont(fonts["ms"])
            p.setPen(QColor(style.MUTED))
            p.drawText(QRectF(4, e.y - 12, self._geo.ms_right - 4, 24),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), "⋮")
            p.setFont(fonts["elided"])

    def _arrow_colour(self, kind: str) -> QColor:
        return QColor({"control": style.CONTROL, "data": style.DATA, "reset": style.WARNING,
                       "ack": style.FOREGROUND}[kind])

    def _paint_arrows(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        geo = self._geo
        fm, nm = QFontMetricsF(fonts["flags"]), QFontMetricsF(fonts["numbers"])
        msm = QFontMetricsF(fonts["ms"])
        band = 7.0
        tl = self.timeline
        cursor = _segment_at(tl.log, tl.cursor) if tl is not None and not tl.live else None
        self.highlighted = None
        for a in self._drawn:
            if a.row < 0 or a.row >= len(geo.row_tops):
                continue
            progress = self.progress_of(a)
            colour = self._arrow_colour(a.kind)
            xs = self._lane_x(a.sender) + (band if a.sender == "client" else -band)
            xr = self._lane_x(a.receiver) + (-band if a.sender == "client" else band)
            # The label: flags in the segment's colour, then the numbers.
            flags_w = fm.horizontalAdvance(a.flags)
            gap = 12.0
            note = self._note(a)  # said after the numbers, on the label's own line
            bm = QFontMetricsF(fonts["badge"])
            total = flags_w + gap + nm.horizontalAdvance(a.numbers) + \
                (gap + bm.horizontalAdvance(note[0]) if note else 0.0)
            mid_x = (xs + xr) / 2
            mid_y = (a.y0 + a.y1) / 2
            left = mid_x - total / 2
            # Above the line along the whole label, although the line slopes.
            rise = abs(a.y1 - a.y0) * (total / 2) / max(1.0, abs(xr - xs))
            baseline = mid_y - rise - max(fm.descent(), nm.descent()) - 3
            if a.index == cursor:  # the segment at the cursor (a lesson's step): marked
                self.highlighted = a.index
                top = baseline - fm.ascent() - 6
                p.setPen(QPen(QColor(style.FOREGROUND), style.pen(1.5)))
                p.setBrush(QColor(style.SELECTED))
                p.drawRoundedRect(QRectF(geo.client_x + 12, top, geo.server_x - geo.client_x - 24,
                                         max(a.y0, a.y1) + 10 - top), 8, 8)
            if progress <= 0.0:  # still waiting to leave its sender
                continue
            start = QPointF(xs, a.y0)
            end = QPointF(xr, a.y1)
            # A segment dropped on its way in goes two thirds of the way, and no further.
            reach = progress * (0.66 if a.dropped else 1.0)
            tip = QPointF(xs + (xr - xs) * reach, a.y0 + (a.y1 - a.y0) * reach)
            width = style.pen(2.0 if a.kind == "ack" else 3.5)
            pen = QPen(colour, width)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            # The line stops where the head begins.
            dx, dy = end.x() - start.x(), end.y() - start.y()
            length = max(1.0, (dx * dx + dy * dy) ** 0.5)
            ux, uy = dx / length, dy / length
            head = 16.0
            base = QPointF(tip.x() - ux * head, tip.y() - uy * head)
            if (tip.x() - start.x()) * ux + (tip.y() - start.y()) * uy > head:
                p.drawLine(start, base)
            nx, ny = -uy, ux
            if a.dropped:  # where it was lost: a cross, not an arrowhead
                p.drawLine(start, tip)
                cross = QPen(QColor(style.WASTE), style.pen(4))
                p.setPen(cross)
                for sx, sy in ((1, 1), (1, -1)):
                    p.drawLine(QPointF(tip.x() - 9 * sx, tip.y() - 9 * sy),
                               QPointF(tip.x() + 9 * sx, tip.y() + 9 * sy))
            else:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(colour)
                p.drawPolygon(QPolygonF([tip, QPointF(base.x() + nx * 7, base.y() + ny * 7),
                                         QPointF(base.x() - nx * 7, base.y() - ny * 7)]))
            if a.note == "piggyback":  # the segment the caption explains
                box = QRectF(left - 8, baseline - fm.ascent() - 3, total + 16,
                             fm.ascent() + fm.descent() + 6)
                p.setPen(QPen(QColor(style.CONTROL), 2))
                p.setBrush(QColor(style.BACKGROUND))
                p.drawRoundedRect(box, 6, 6)
            p.setFont(fonts["flags"])
            p.setPen(colour)
            p.drawText(QPointF(left, baseline), a.flags)
            p.setFont(fonts["numbers"])
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(QPointF(left + flags_w + gap, baseline), a.numbers)
            if note:
                p.setFont(fonts["badge"])
                p.setPen(QColor(note[1]))
                p.drawText(QPointF(left + flags_w + gap + nm.horizontalAdvance(a.numbers) + gap,
                                   baseline), note[0])
            # Elapsed time in the left margin, level with where the segment leaves.
            p.setFont(fonts["ms"])
            p.setPen(QColor(style.MUTED))
            text = _elapsed_text(a.elapsed_ms)
            p.drawText(QPointF(geo.ms_right - msm.horizontalAdvance(text),
                               a.y0 + msm.ascent() / 2 - 2),
                       text)

    def _note(self, a: Arrow) -> tuple[str, str] | None:
        """What a segment's label adds: lost on its way in, sent again, or an aggregate
        (text, colour)."""
        parts = []
        if a.retransmission:
            parts.append("↻ " + self.tr("retransmission"))
        if a.dropped:
            parts.append(self.tr("✗ dropped by the lab's rule ({0})").format(a.dropped))
        if parts:
            return "  ".join(parts), style.WASTE
        if a.aggregate:
            return (self.tr("⋯ {0} bytes, cut by the kernel as it chose").format(f"{a.length:,}")
                    if a.length else self.tr("⋯ ACKs as the kernel chose")), style.MUTED
        return None

    def _is_folded(self, arrow: Arrow) -> bool:
        return arrow.row in self._folded_rows

    def _paint_marks(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        pm = QFontMetricsF(fonts["pill"])
        pill_h = pm.height() + 6
        for side in ("client", "server"):
            x = self._lane_x(side)
            previous_bottom = -1e9
            for m in (m for m in self.marks if m.side == side):
                width, height = self._mark_size(m, fonts)
                top = max(m.y - height / 2, previous_bottom + 3)
                previous_bottom = top + height
                if m.via:  # the states passed through, small, above the label
                    p.setFont(fonts["via"])
                    p.setPen(QColor(style.MUTED))
                    via = QRectF(x - 22 - width if side == "client" else x + 22, top, width,
                                 height - pill_h)
                    p.drawText(via, int(Qt.AlignmentFlag.AlignCenter), self._via_text(m))
                    top += height - pill_h
                if side == "client":
                    rect = QRectF(x - 22 - width, top, width, pill_h)
                    tick_end = rect.right()
                else:
                    rect = QRectF(x + 22, top, width, pill_h)
                    tick_end = rect.left()
                fill = style.state_colour(m.state)
                p.setPen(QPen(fill.darker(130), 2))
                centre_y = rect.center().y()
                p.drawPolyline(QPolygonF([QPointF(x, m.y), QPointF((x + tick_end) / 2, m.y),
                                          QPointF((x + tick_end) / 2, centre_y),
                                          QPointF(tick_end, centre_y)]))
                pen = QPen(fill.darker(130), 1.5)
                if m.source == "inferred":
                    pen.setStyle(Qt.PenStyle.DashLine)
                p.setPen(pen)
                p.setBrush(fill)
                p.drawRoundedRect(rect, 6, 6)
                p.setFont(fonts["pill"])
                p.setPen(_text_on(fill))
                p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), m.text)

    def _paint_caption(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        rect = self._geo.caption_rect
        if not self.caption or rect is None:
            return
        p.setPen(QPen(QColor(style.CONTROL), 2))
        p.setBrush(QColor(style.BACKGROUND))
        p.drawRoundedRect(rect, 8, 8)
        p.setFont(fonts["caption"])
        p.setPen(QColor(style.FOREGROUND))
        p.drawText(rect.adjusted(12, 10, -12, -10),
                   int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignVCenter), self.caption)

    def _paint_message(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        p.setFont(fonts["message"])
        p.setPen(QColor(style.MUTED))
        rect = QRectF(0, 0, self.width() / self._scale, self.height() / self._scale)
        rect = rect.adjusted(60, 120, -60, -60)
        p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                   self.message)
