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
into one "… N more segments …" row so that the picture still fits, with the
bytes they carried (each once, however many of them carried it: a retransmission
carries its segment's again). Only what does not fit folds, and never one
segment alone (drawn, it takes the same row). Where even that is too many rows (a zoomed-in projector),
the segments up to the cursor stay whole and everything before them folds; the
fold names any SYN, FIN or RST it holds, and the state changes that came while
its segments went touch the lane beside it, in one label that names them all.

Presenting (the window's presentation mode), the type is the view's size
against a 1280 x 720 one (as the I/O view's) times the zoom, all of it, and the
rows, lanes and margins are measured from it. Short of room, the words around
the diagram (title, badges, times, caption) grow less with the zoom, never
below 100 %'s, where that shows more segments; then more segments fold; only
then does the type give way.

The view keeps what it drew as plain data (``arrows``, ``marks``,
``elisions``, ``caption``, ``client_state``...) for tests, and animates a
segment that appears as the cursor moves forward: its arrow travels from the
sender to the receiver in 300 ms. Stepping back removes arrows at once.
"""
from __future__ import annotations

import bisect
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
from ..model.conn_states import (TIME_WAIT_MS, Change, Check, LaneMark, conn_port, decode_change,
                                 decode_check, lane_marks, newest_with, split_conn)
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
ANIMATION_MS = 300  # one segment's journey from sender to receiver
MAX_ANIMATED = 6  # more new segments at once (a seek) are drawn without travelling
# Live, a whole connection on loopback arrives within one batch: the view replays its
# newest segments one after another (states and caption keep pace with them), and holds
# that connection until they have arrived rather than flicking to each newer one.
MAX_ANIMATED_LIVE = 24
HOLD_S = 5.0  # Live: the longest the view holds a connection for its retelling
MS_RIGHT = 96  # the time column's right edge
MIN_ROWS = 8  # the handshake, a fold, a FIN, a fold, the other FIN and the last ACK
RISE = 0.4  # under a label, an arrow rises or falls at most this share of its drop
# Presenting, the type is the view's size times the zoom, whatever the rows: short of
# room, the words around the diagram (title, badges, times, caption) grow less with the
# zoom, then more segments fold (down to this many rows, the segment at the cursor first),
# and only then does the type itself give way.
PRESENT_MIN_ROWS = 4
PRESENT_SIZE = (1280, 720)  # the view's size at which presenting sets 100 %'s type


# A capture gap's ``from_ns`` is the last frame before it, give or take the clock
# offset's re-measuring: a segment this much later comes after the gap.
GAP_SLACK_NS = 500


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
    row: int = -1  # its row when drawn; -1 when folded (SequenceView.row_of: its fold's)
    y0: float = 0.0  # where it leaves the sender's lane
    y1: float = 0.0  # where it reaches the receiver's

    @property
    def direction(self) -> str:
        return f"{self.sender}→{self.receiver}"


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
    controls: tuple[str, ...] = ()  # the SYN, FIN and RST flags among them (named in text)


@dataclass
class _StateLabel:
    """A state label as drawn: one change, or the changes a fold hid (the last named
    large, the ones before it in ``via``)."""

    side: str
    marks: list[LaneMark]
    text: str
    via: str
    state: str
    source: str | None
    row: int
    inside: bool  # the change came while the row's folded segments went (not after them)
    y: float = 0.0  # where its tick touches the lane
    top: float = 0.0
    width: float = 0.0
    height: float = 0.0


@dataclass
class _Geometry:
    client_x: float = 0.0
    server_x: float = 0.0
    lanes_top: float = 0.0
    lanes_bottom: float = 0.0
    row_h: float = 40.0
    ms_right: float = MS_RIGHT  # the time column's right edge, as wide as its type needs
    row_tops: list[float] = field(default_factory=list)
    mids: list[float] = field(default_factory=list)  # each row's arrow, at its middle
    row_bottoms: list[float] = field(default_factory=list)  # a row and the room after it
    drop: float = 10.0  # how much lower an arrow arrives than it leaves
    header_top: float = 0.0  # the lanes' names
    badges: list[QRectF] = field(default_factory=list)  # where each badge stands
    headers: dict[str, tuple[QRectF, QRectF]] = field(default_factory=dict)  # name, state
    end_y: float = 0.0  # where the lanes' known history ends (the cursor's moment)
    caption_rect: QRectF | None = None


_split, _port = split_conn, conn_port


def _elision_flags(em: QFontMetricsF, text: str, width: float) -> int:
    """How a fold's words wrap in a box ``width`` wide: at words; where a run that cannot
    break there is wider than the box (Chinese words around a joined "SYN|ACK）……" at
    200 % on a narrow lane), anywhere, so that no word is cut at the box's edges."""
    flags = int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter)
    if em.boundingRect(QRectF(0, 0, width, 1e6), flags, text).width() > width:
        flags = int(Qt.TextFlag.TextWrapAnywhere | Qt.AlignmentFlag.AlignCenter)
    return flags


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
        # Bytes counted once however many segments carried them (a retransmission carries
        # bytes sent before: the same seq range). Each sender's stream (from its ISN,
        # unwrapped) as the segment that carried each stretch last: sorted, apart.
        self._carried: dict[str, tuple[list[int], list[int], list[int]]] = {}
        # Carried again: (the segment that carried them before, the one now, how many
        # bytes), for each stretch; a run of segments counts such bytes once per pair in it.
        self._again: tuple[list[int], list[int], list[int]] = ([], [], [])
        self.again = np.empty((3, 0), np.int64)
        self.cum_bytes = np.zeros(1, np.int64)  # prefix sums: bytes, segments with data
        self.cum_data = np.zeros(1, np.int64)

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
                self.change_index.append(i)
                self.changes.append(decode_change(e))
            elif e.kind == "reset" and d.get("side") in ("client", "server"):
                self.resets.append((e.t_ns, str(d["side"]), str(d.get("direction")),
                                    d.get("reason")))
            elif e.kind == "state_check" and d.get("side") in ("client", "server"):
                self.check_index.append(i)
                self.checks.append(decode_check(e))
        self.seg_array = np.asarray(self.seg_index, np.int64)
        self.change_array = np.asarray(self.change_index, np.int64)
        self.check_array = np.asarray(self.check_index, np.int64)
        self.lengths = np.fromiter((s.length for s in self.segments), np.int64,
                                   len(self.segments))
        self.cum_bytes = np.concatenate(([0], np.cumsum(self.lengths)))
        self.cum_data = np.concatenate(([0], np.cumsum(self.lengths > 0)))
        self.again = np.asarray(self._again, np.int64).reshape(3, -1)

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
        if segment.length > 0:
            at = segment.seq if segment.relative else (segment.seq - self.isn[sender]) % MOD32
            self._carry(sender, at, segment.length, position)

    def _carry(self, sender: str, at: int, length: int, position: int) -> None:
        """Segment ``position`` carried ``length`` bytes from ``at`` (relative, 32 bits)
        of ``sender``'s stream: note the stretches of it carried before."""
        starts, ends, carriers = self._carried.setdefault(sender, ([], [], []))
        if ends:  # unwrapped: the nearest to where the stream has got to
            at = ends[-1] + (at - ends[-1] + MOD32 // 2) % MOD32 - MOD32 // 2
        end = at + length
        if not ends or at >= ends[-1]:  # past everything before it (as most are)
            starts.append(at)
            ends.append(end)
            carriers.append(position)
            return
        i = bisect.bisect_right(ends, at)  # the stretches it meets: i to j - 1
        j = bisect.bisect_left(starts, end)
        before, now, count = self._again
        for k in range(i, j):
            before.append(carriers[k])
            now.append(position)
            count.append(min(ends[k], end) - max(starts[k], at))
        pieces = [(at, end, position)]  # and what is left of the first and the last met
        if i < j and starts[i] < at:
            pieces.insert(0, (starts[i], at, carriers[i]))
        if i < j and ends[j - 1] > end:
            pieces.append((end, ends[j - 1], carriers[j - 1]))
        starts[i:j] = [piece[0] for piece in pieces]
        ends[i:j] = [piece[1] for piece in pieces]
        carriers[i:j] = [piece[2] for piece in pieces]

    def bytes_once(self, first: int, last: int) -> int:
        """The bytes segments ``first`` to ``last`` carried, each byte of a sender's stream
        counted once however many of them carried it (a retransmission carries the bytes
        of the segment it repeats: the same seq range)."""
        total = int(self.cum_bytes[last + 1] - self.cum_bytes[first])
        before, now, count = self.again
        if len(count):
            total -= int(count[(before >= first) & (now <= last)].sum())
        return total

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
        self.after_gap: set[tuple[int, int]] = set()  # keys of the segments drawn after a gap
        self.gap_frames = 0  # frames the capture lost while the shown connection was open
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
        self._minor = 1.0  # the words around the diagram: their share of the zoom (presenting)
        self._presented = False  # laid out for presentation mode
        self._labels: list[_StateLabel] = []  # the state labels, where they stand
        self._margins: dict[str, float] = {}  # the room beside each lane for its labels
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
               tuple(self._queue), self._flying, self._presenting())
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
        found = newest_with(log, cursor, "packet")
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
        self.after_gap, self.gap_frames = set(), 0
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
        elif changes and data.changes[0].previous is None \
                and data.changes[0].source == "observed" and not len(log.indices(
                    conn=conn, kinds=["connect", "accept"], stop=cursor + 1)):
            # The observer's first look found it (no previous state): an earlier
            # server's socket on the port, older than the trace. No segment will come.
            self.message = self.tr("This socket was on the server's port before the "
                                   "recording began (an earlier connection): its segments "
                                   "came before the trace.")
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
        self._mark_capture_gaps(log, cursor, data, count)

    def _mark_capture_gaps(self, log: EventLog, cursor: int, data: "_Connection",
                           count: int) -> None:
        """Where the capture lost frames (its ``dropped`` events say when: ``from_ns`` to
        ``until_ns``) while this connection was open, it is not drawn as if whole: a
        badge says so, and the first segment drawn after each gap says it comes after one."""
        self.after_gap = set()
        self.gap_frames = 0
        spans: list[tuple[float, float]] = []
        before: list[float] = []  # gaps that ended at its first segment: how long before
        if not count or "dropped" not in log.kinds.codes:
            return
        # Open from its first segment to its last event so far (its server's close...: a
        # connection whose FIN the capture lost has no last segment to go by).
        first_t = data.segments[0].t_ns
        own = log.indices(conn=self.conn, stop=cursor + 1)
        last_t = max(data.segments[count - 1].t_ns, int(log.times[own[-1]]) if len(own) else 0)
        for lo, hi, frames in log.capture_gaps(cursor + 1):
            if hi < first_t or lo > last_t:
                continue  # before this connection's first segment, or after its last
            self.gap_frames += frames
            after = next((a for a in self.arrows if a.key[0] > lo + GAP_SLACK_NS), None)
            if after is not None:
                self.after_gap.add(after.key)
            if hi <= first_t + GAP_SLACK_NS:  # its first segment is the gap's first after:
                before.append((first_t - lo) / 1e6)  # an earlier try may have been lost
            else:
                spans.append((max(0.0, (lo - first_t) / 1e6), (hi - first_t) / 1e6))
        if self.gap_frames:
            self.badges.append(self.tr("⚠ the capture lost {0} frames meanwhile: this "
                                       "connection may miss some").format(f"{self.gap_frames:,}"))
            self._badge_dashed.append(True)
        if spans:  # where, in the connection's own times (the left column's)
            said = "; ".join(f"{_elapsed_text(a)}–{_elapsed_text(b)} ms" for a, b in spans)
            gap = self.tr("The capture lost frames at {0}: what this connection did then "
                          "is not drawn.").format(said)
            self.caption = f"{self.caption} {gap}".strip()
        if before:
            gap = self.tr("The capture lost frames for {0} ms up to this connection's first "
                          "segment drawn: an earlier try of it (a SYN sent again) may be "
                          "missing.").format(_elapsed_text(max(before)))
            self.caption = f"{self.caption} {gap}".strip()

    def _build_states(self, timeline: Timeline, conn: str, data: _Connection, count: int,
                      now_ns: int, at_cursor: bool = True, checks: int = 0) -> None:
        self.marks, last, tw_report = lane_marks(data, count, checks)
        marks = {m.side: m for m in self.marks}
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
        """The type: the diagram's own (segments, states, lanes, folds) at the zoom; the
        words around it (title, badges, addresses, times, caption) times ``_minor``."""
        m = self._minor
        italic = style.font(1.0)
        italic.setItalic(True)
        return {"title": style.font(1.25 * m, bold=True), "badge": style.font(0.9 * m),
                "lane": style.font(1.1, bold=True), "address": style.font(1.0 * m, mono=True),
                # the state now, over each lane: large, but never smaller than the lane's name
                "state": style.font(max(1.1, 1.45 * m), bold=True),
                "flags": style.font(1.15, bold=True), "numbers": style.font(1.0, mono=True),
                "note": style.font(0.9), "pill": style.font(0.95, bold=True),
                "via": style.font(0.75), "ms": style.font(0.85 * m, mono=True),
                "caption": style.font(1.05 * m), "elided": italic, "message": style.font(1.2)}

    def _presenting(self) -> bool:
        """Whether the window shows this view in presentation mode (a lecture's layout)."""
        presentation = getattr(self.window(), "presentation", None)
        return bool(getattr(presentation, "active", False))

    def _layout(self) -> None:
        """Rows, folded runs and y positions for the current size (in the logical size:
        the painter scales the whole picture by ``_scale``).

        In the window, below 1150 x 700 the picture is scaled down, to 70 % at most;
        zoomed in on a small screen, where even the fewest rows would not fit, it scales
        down further, never below 100 %'s type. Presenting, the type follows the view's
        size and the zoom, all of it (see ``_layout_presented``)."""
        width, height = max(self.width(), 100), max(self.height(), 100)
        self._presented = self._presenting()
        if self._presented:
            self._layout_presented(width, height)
            return
        self._minor = 1.0
        scale = max(0.7, min(1.0, height / 700, width / 1150))
        floor = min(scale, 1.0 / style.ZOOM)
        for k in range(12):  # bounded: each try 10 % smaller
            final = scale <= floor or k == 11
            if self._layout_at(scale, width, height, MIN_ROWS, final) or final:
                return
            scale = max(floor, scale * 0.9)

    def _layout_presented(self, width: int, height: int) -> None:
        """Presenting: the view's size against a 1280 x 720 one (as the I/O view sizes its
        type), times the zoom, for the segments' labels, the states and the lanes. Short of
        room, the words around the diagram grow less with the zoom (never below 100 %'s)
        where that shows more segments; then more segments fold (down to
        PRESENT_MIN_ROWS rows, the cursor's end whole); only then does the type give way."""
        size = max(0.7, min(1.6, width / PRESENT_SIZE[0], height / PRESENT_SIZE[1]))
        lowest = 1.0 / style.ZOOM
        minors = [1.0 - (1.0 - lowest) * k / 4 for k in range(5)] if lowest < 1.0 else [1.0]
        best: tuple[int, float] | None = None  # the most rows, with the largest words
        for minor in minors:  # bounded: five tries
            self._minor = minor
            if not self._layout_at(size, width, height, PRESENT_MIN_ROWS, final=False):
                continue
            rows = len(self._geo.row_tops)
            if best is None or rows > best[0]:
                best = (rows, minor)
            if not self.elisions:  # every segment shown: no smaller words needed
                break
        if best is not None:
            if self._minor != best[1]:
                self._minor = best[1]
                self._layout_at(size, width, height, PRESENT_MIN_ROWS)
            return
        self._minor = minors[-1]
        scale = size
        for k in range(14):  # bounded: each try 5 % smaller, at most to half
            scale *= 0.95
            if self._layout_at(scale, width, height, PRESENT_MIN_ROWS, final=k == 13):
                return

    def _pill_h(self, fonts: dict[str, QFont]) -> float:
        """A state label's height: its line and a third of it around."""
        return QFontMetricsF(fonts["pill"]).height() * 1.35

    def _tick(self, fonts: dict[str, QFont]) -> float:
        """The room between a lane and its state labels (the tick that joins them)."""
        return QFontMetricsF(fonts["pill"]).height() * 1.25

    def _label_width(self, a: Arrow, fonts: dict[str, QFont]) -> float:
        """A segment's label: flags, numbers and its note, on one line."""
        fm, nm = QFontMetricsF(fonts["flags"]), QFontMetricsF(fonts["numbers"])
        gap = fm.height() * 0.5
        note = self._note(a)
        return fm.horizontalAdvance(a.flags) + gap + nm.horizontalAdvance(a.numbers) + \
            (gap + QFontMetricsF(fonts["note"]).horizontalAdvance(note[0]) if note else 0.0)

    def _layout_title(self, fonts: dict[str, QFont], w: float) -> float:
        """Where the title, its note and the badges stand (a badge that does not fit on
        the line goes to the next, never away); returns the height they take."""
        geo = self._geo
        tm, bm = QFontMetricsF(fonts["title"]), QFontMetricsF(fonts["badge"])
        pad = bm.height() * 0.55
        badge_h = bm.height() * 1.45
        line_h = max(tm.height(), badge_h)
        top = 10.0
        x = 16.0
        if self.title_text:
            x += tm.horizontalAdvance(self.title_text) + 12
            x += bm.horizontalAdvance(self._conn_note()) + 24
        right = w - self._box_width() - 16
        y = top + (line_h - badge_h) / 2
        geo.badges = []
        for text in self.badges:
            width = bm.horizontalAdvance(text) + 2 * pad
            if x + width > right and x > 16.0:
                x, y = 16.0, y + badge_h + 6
            geo.badges.append(QRectF(x, y, width, badge_h))
            x += width + 10
        bottom = max(top + line_h, max((r.bottom() for r in geo.badges), default=0.0))
        return bottom + 6

    def _box_width(self) -> float:
        """The relative-numbers box's width, in the picture's units."""
        return self.relative_box.sizeHint().width() / self._scale

    def _conn_note(self) -> str:
        """Why this connection: selected, being retold (live), or the newest."""
        return {"selected": self.tr("(selected)"),
                "held": self.tr("(live: being retold)")}.get(self.conn_reason,
                                                             self.tr("(newest)"))

    def _layout_at(self, scale: float, width: int, height: int, min_rows: int,
                   final: bool = True) -> bool:
        """The layout at ``scale``; whether it holds at least ``min_rows`` rows (or all
        of them), each with the room its label needs, and labels that fit between the
        lanes. Folds what does not fit, never more. Not ``final``: a try the caller drops
        if it does not hold (then it may stop short of the fewest rows)."""
        self._scale = scale
        w, h = width / scale, height / scale
        box_font = style.font(0.95 * scale * self._minor)
        if self.relative_box.font() != box_font:
            self.relative_box.setFont(box_font)
            self._place_box()  # its box grows with its type (Chinese at 200 %: cut else)
        fonts = self._fonts()
        u = style.ZOOM  # lines and marks beside the type grow with it
        fm, nm = QFontMetricsF(fonts["flags"]), QFontMetricsF(fonts["numbers"])
        line = max(fm.height(), nm.height())
        geo = self._geo = _Geometry()
        margins = {"client": 0.0, "server": 0.0}
        for m in self.marks:
            margins[m.side] = max(margins[m.side], self._pill_width(m.text, fonts))
        # Room for the time column and the state labels outside the lanes.
        tick = self._tick(fonts)
        geo.ms_right = max(MS_RIGHT, QFontMetricsF(fonts["ms"]).horizontalAdvance("0000.00") + 12)
        geo.client_x = max(round(w * 0.25), round(geo.ms_right + 8 + margins["client"] + tick))
        geo.server_x = min(round(w * 0.80), round(w - 10 - margins["server"] - tick))
        self._margins = {"client": geo.client_x - tick - geo.ms_right - 8,
                         "server": w - 10 - geo.server_x - tick}
        fits = geo.server_x - geo.client_x > 0
        # The title and badges, then the lanes' names and their states now.
        title_h = self._layout_title(fonts, w)
        geo.header_top = title_h
        apart, header_h = self._layout_headers(fonts, w)
        fits = fits and apart
        geo.lanes_top = title_h + header_h
        caption_h = 0.0
        if self.caption:
            metrics = QFontMetricsF(fonts["caption"])
            pad = metrics.height() * 0.5
            text_w = w - 48 - 2 * pad
            rect = metrics.boundingRect(QRectF(0, 0, text_w, 10 * h),
                                        int(Qt.TextFlag.TextWordWrap), self.caption)
            caption_h = rect.height() + 2 * pad
            geo.caption_rect = QRectF(24, h - caption_h - 10, w - 48, caption_h)
        geo.lanes_bottom = h - caption_h - (22 if caption_h else 12)
        area = geo.lanes_bottom - geo.lanes_top
        # A row: a little room, its label, a little room, the arrow, which arrives lower
        # than it leaves (the drop). The label stands above the arrow along all its width:
        # under its middle, the arrow rises or falls at most RISE of the drop (a label is
        # narrower than the lanes are apart), as does the arrow of the row above.
        pad, gap, stroke = 1.0 * u, 2.0 * u, style.pen(3.5) * u ** 0.5
        drop_min = max(6.0, line * 0.22)
        min_row = pad + line + gap + 2 * RISE * drop_min + stroke / 2
        max_row = max(min_row, line * 3.0)
        n = self._count

        def attempt(capacity: int) -> tuple[list[tuple[str, int, int]], dict[int, float], float]:
            rows = self._fold(capacity)
            self._place_marks(fonts)
            own = {e.row: max(0.0, self._elision_height(e.text, fonts) + 2 * pad - min_row)
                   for e in self.elisions}  # a fold's words, wrapped if one line is too long
            return rows, own, self._stack(rows, min_row, own, line, drop_min, pad, gap, stroke)

        # The most rows that fit, they and the state labels: at most one row's least
        # height each. Fewer, tried a row, two, four, eight... fewer, then halving between
        # (a frame lays out a few times over, each try folding and placing anew; never
        # below the rows the layout needs, unless it is the last try, drawn whatever).
        least = 1 if final else max(1, min(min_rows, n))
        most = max(1, min(n, int(area // min_row) + 1))
        tried = {most: attempt(most)}
        capacity = most
        if tried[most][2] > area and most > least:
            fits_at, short_at = 0, most
            while not fits_at and capacity > least:
                capacity = max(least, most - max(1, 2 * (most - capacity)))
                tried[capacity] = attempt(capacity)
                if tried[capacity][2] <= area:
                    fits_at = capacity
                else:
                    short_at = capacity
            while fits_at and short_at - fits_at > 1:
                capacity = (fits_at + short_at) // 2
                tried[capacity] = attempt(capacity)
                if tried[capacity][2] <= area:
                    fits_at = capacity
                else:
                    short_at = capacity
            most = fits_at or capacity
            if capacity != most:  # (the last try set the rows: set them for the best)
                tried[most] = attempt(most)
        rows, own, total = tried[most]
        fits = fits and total <= area and len(rows) >= min(min_rows, n)
        # Spaced for a typical connection (11 rows) from the start, so that rows do not
        # move as the first segments arrive; closer only when more come.
        fixed = total - len(rows) * min_row
        fit_h = (area - fixed) / max(1, len(rows))
        stable_h = (area - fixed) / max(11.0, len(rows))
        row_h = min(max_row, fit_h, max(stable_h, min_row))
        if row_h > min_row and self._stack(rows, row_h, own, line, drop_min, pad, gap,
                                           stroke) > area + 0.5:
            self._stack(rows, min_row, own, line, drop_min, pad, gap, stroke)
        drop = geo.drop
        for arrow in self._drawn:  # folded ones have no place of their own
            mid = geo.mids[arrow.row]
            arrow.y0, arrow.y1 = mid - drop / 2, mid + drop / 2
        for elision in self.elisions:
            elision.y = (geo.row_tops[elision.row] + geo.row_bottoms[elision.row]) / 2
        # The labels fit between the lanes (with the arrows' ends beside them).
        room = geo.server_x - geo.client_x - 4 * 7.0 * u
        widest = max((self._label_width(a, fonts) for a in self._drawn), default=0.0)
        fits = fits and widest <= room
        return fits

    def _stack(self, rows: list[tuple[str, int, int]], row_h: float, own: dict[int, float],
               line: float, drop_min: float, pad: float, gap: float, stroke: float) -> float:
        """Lays the rows out ``row_h`` apart from the lanes' top, top to bottom, with the
        state labels: a row moves down where the labels before it need the room (a
        lane's labels never stand on each other). Sets where everything is; returns the
        height it all takes."""
        geo = self._geo
        u = style.ZOOM
        fixed = pad + line + gap + stroke / 2  # (and 2 RISE of the drop)
        drop = geo.drop = max(drop_min, min(row_h * 0.3, 20.0 * u,
                                            (row_h - fixed) / (2 * RISE)))
        geo.row_h = row_h
        slack = max(0.0, row_h - fixed - 2 * RISE * drop)
        mid_at = pad + slack / 2 + line + gap + RISE * drop  # an arrow's middle in its row
        groups: dict[tuple[int, bool, str], list[_StateLabel]] = {}
        for label in self._labels:
            groups.setdefault((label.row, label.inside, label.side), []).append(label)
        sides = ("client", "server")
        bottoms = {s: geo.lanes_top - 2 for s in sides}  # each lane's lowest label so far

        def need(key: tuple[int, bool, str]) -> float:
            return sum(lb.height + 4 for lb in groups.get(key, ())) - 4

        def place(key: tuple[int, bool, str], top: float, lo: float, hi: float) -> None:
            labels = groups[key]
            hi = max(hi, lo + 1)
            for k, label in enumerate(labels):
                label.y = lo + (k + 1) * (hi - lo) / (len(labels) + 1)
                for m in label.marks:
                    m.y = label.y
                label.top = top
                top += label.height + 4
            bottoms[key[2]] = top - 4

        def start_of(r: int, top: float) -> float:  # where a row's story begins
            return top + pad if rows[r][0] == "fold" else top + mid_at - drop / 2

        def end_of(r: int, top: float) -> float:
            return top + row_h + own.get(r, 0.0) - pad if rows[r][0] == "fold" \
                else top + mid_at + drop / 2

        tops: list[float] = []
        mids: list[float] = []
        y = geo.lanes_top + 4
        if rows:  # before the first row: half its labels above the first arrow, at least
            first = max((need((-1, False, s)) for s in sides if (-1, False, s) in groups),
                        default=0.0)
            if first:
                y = max(y, geo.lanes_top + 2 + first / 2 + 3 - (start_of(0, 0.0)))
        for s in sides:
            if (-1, False, s) in groups:
                lo = geo.lanes_top + 2
                hi = start_of(0, y) - 3 if rows else lo + need((-1, False, s))
                place((-1, False, s), lo, lo, hi)
        story_end = geo.lanes_top + 20
        for r in range(len(rows)):
            height = row_h + own.get(r, 0.0)
            # The changes a fold hid: beside it, under the lane's labels above.
            inside = [s for s in sides if (r, True, s) in groups]
            for s in inside:
                centre = (start_of(r, y) + end_of(r, y)) / 2
                y += max(0.0, bottoms[s] + 4 - (centre - need((r, True, s)) / 2))
            for s in inside:
                lo, hi = start_of(r, y) + 2, end_of(r, y) - 2
                place((r, True, s), (lo + hi) / 2 - need((r, True, s)) / 2, lo, hi)
            tops.append(y)
            mids.append(y + mid_at)
            nxt = y + height
            if r + 1 < len(rows):  # the changes between this row and the next
                after = [s for s in sides if (r, False, s) in groups]
                e = 0.0
                for s in after:
                    low = end_of(r, y) + start_of(r + 1, nxt)
                    e = max(e, 2 * (bottoms[s] + 4 + need((r, False, s)) / 2) - low)
                nxt += e
                for s in after:
                    lo, hi = end_of(r, y) + 3, start_of(r + 1, nxt) - 3
                    place((r, False, s), (lo + hi) / 2 - need((r, False, s)) / 2, lo, hi)
            else:  # after the last: under it
                story_end = max(story_end, end_of(r, y) + line * 0.3)
                for s in sides:
                    if (r, False, s) in groups:
                        lo = end_of(r, y) + 3
                        place((r, False, s), max(lo, bottoms[s] + 4), lo,
                              lo + need((r, False, s)))
                        story_end = max(story_end, groups[(r, False, s)][-1].y + line * 0.3)
            y = nxt
        geo.row_tops, geo.mids = tops, mids
        geo.row_bottoms = [t + row_h + own.get(r, 0.0) for r, t in enumerate(tops)]
        geo.end_y = min(story_end, geo.lanes_bottom)
        bottom = max([y, story_end, *(b + 4 for b in bottoms.values())])
        return bottom - geo.lanes_top

    def _layout_headers(self, fonts: dict[str, QFont], w: float) -> tuple[bool, float]:
        """Each lane's name and address over it, and its state now under them (presenting
        short of room, beside them, if the two lanes' headers stay apart so); kept inside
        the view. Returns whether the headers stay apart, and their height."""
        geo = self._geo
        lm, sm = QFontMetricsF(fonts["lane"]), QFontMetricsF(fonts["state"])
        am = QFontMetricsF(fonts["address"])
        state_h = sm.height() * 1.3
        least = geo.ms_right + 8  # (the time column's heading stands left of that)
        one_line = self._presented and self._minor < 1.0
        for compact in ((True, False) if one_line else (False,)):
            top = geo.header_top
            geo.headers = {}
            for side, x, address, text in (
                    ("client", geo.client_x, self.client_address, self.client_state_text),
                    ("server", geo.server_x, self.server_address, self.server_state_text)):
                names_w = lm.horizontalAdvance(self._lane_name(side)) + 10 + \
                    am.horizontalAdvance(address)
                state_w = sm.horizontalAdvance(text) + sm.height() * 1.2
                if compact:
                    line_h = max(lm.height(), state_h)
                    width = names_w + 12 + state_w
                    left = min(max(least, x - width / 2), w - 4 - width)
                    names = QRectF(left, top + (line_h - lm.height()) / 2, names_w, lm.height())
                    state = QRectF(left + names_w + 12, top + (line_h - state_h) / 2, state_w,
                                   state_h)
                else:
                    left = min(max(4.0, x - names_w / 2), w - 4 - names_w)
                    names = QRectF(left, top, names_w, lm.height())
                    state = QRectF(0, 0, state_w, state_h)
                    state.moveCenter(QPointF(x, top + lm.height() + 6 + state_h / 2))
                    state.moveLeft(min(max(least, state.left()), w - 4 - state.width()))
                geo.headers[side] = (names, state)
            client, server = geo.headers["client"], geo.headers["server"]
            # Too close: the server's header moves right, then the client's left, as far as
            # the view allows (on one line, both parts alike; on two, line by line).
            lines = [(client, server)] if compact else [((c,), (s,)) for c, s in zip(client,
                                                                                    server)]
            space = lm.height() * 1.5 if compact else 8.0  # (one line: clearly two)
            for cs, ss in lines:
                short = max(r.right() for r in cs) + space - min(r.left() for r in ss)
                right = max(0.0, min(short, w - 4 - max(r.right() for r in ss)))
                left = max(0.0, min(short - right, min(r.left() for r in cs) - least))
                for r in ss:
                    r.translate(right, 0)
                for r in cs:
                    r.translate(-left, 0)
            apart = all(max(r.right() for r in cs) + space <= min(r.left() for r in ss) + 0.01
                        for cs, ss in lines)
            height = (max(lm.height(), state_h) if compact else lm.height() + 6 + state_h) + 10
            if apart or not compact:
                return apart, height
        return False, 0.0  # (not reached: the last try is never compact)

    def _lane_name(self, side: str) -> str:
        return self.tr("Client") if side == "client" else self.tr("Server")

    def _elision_inset(self) -> float:
        """A fold's box keeps this far from the lanes (their breaks stand there)."""
        return 8.0 + 12.0 * style.ZOOM

    def _elision_height(self, text: str, fonts: dict[str, QFont]) -> float:
        """The height a fold's words take in its box, wrapped if one line is too long."""
        geo = self._geo
        em = QFontMetricsF(fonts["elided"])
        width = max(10.0, geo.server_x - geo.client_x - 2 * self._elision_inset() - em.height())
        rect = em.boundingRect(QRectF(0, 0, width, 100 * em.height()),
                               _elision_flags(em, text, width), text)
        return rect.height() + em.height() * 0.3


    def _fold(self, capacity: int) -> list[tuple[str, int, int]]:
        """Rows: ("seg", k, k) or ("fold", first, last) of two segments or more; sets the
        drawn arrows' rows and the elisions'. A folded arrow's row is not written (a frame
        folds a few times over, and a long connection has many): ``row_of`` finds it from
        the rows' first segments."""
        n, data = self._count, self._data
        control = [k for k in data.control if k < n] if data is not None else []
        keep = list(range(n)) if n <= capacity else self._keep(n, control, capacity)
        rows: list[tuple[str, int, int]] = []
        previous = -1
        for k in [*keep, n]:
            if k == previous + 2:  # one segment takes a row either way: it is drawn
                rows.append(("seg", previous + 1, previous + 1))
            elif k > previous + 2:
                rows.append(("fold", previous + 1, k - 1))
            if k < n:
                rows.append(("seg", k, k))
            previous = k
        for arrow in self._drawn:  # the last picture's rows (of this connection or another)
            arrow.row = -1
        self.elisions, self._drawn = [], []
        for r, (what, first, last) in enumerate(rows):
            if what == "seg":
                arrow = self.arrows[first]
                arrow.row = r
                self._drawn.append(arrow)
            elif data is not None:
                count = last - first + 1
                with_data = int(data.cum_data[last + 1] - data.cum_data[first])
                nbytes = data.bytes_once(first, last)
                # A SYN, FIN or RST folded away (only when even the fewest rows are too
                # many, or there are many of them) is named: the fold hides no control.
                folded = tuple(dict.fromkeys(data.segments[k].flags_text for k in control
                                             if first <= k <= last))
                if folded:  # (a word joiner keeps "SYN|ACK" on one line)
                    text = self.tr("… {0} more segments ({1} with data, {2}; among them "
                                   "{3}) …").format(count, with_data, _human_bytes(nbytes),
                                                    ", ".join(f.replace("|", "|\u2060")
                                                              for f in folded))
                else:
                    text = self.tr("… {0} more segments ({1} with data, {2}) …").format(
                        count, with_data, _human_bytes(nbytes))
                self.elisions.append(Elision(first, last, count, with_data, nbytes, text, r,
                                             controls=folded))
        self._row_starts = np.asarray([first for _, first, _ in rows], np.int64)
        self._folded_rows = {e.row for e in self.elisions}
        return rows

    def row_of(self, arrow: Arrow) -> int:
        """The row ``arrow`` stands in: its own, or the fold it is in (-1: not drawn)."""
        data = self._data
        if data is None:
            return -1
        k = int(np.searchsorted(data.seg_array[:self._count], arrow.index))
        if k >= self._count or data.seg_index[k] != arrow.index:
            return -1
        return int(np.searchsorted(self._row_starts, k, side="right")) - 1

    @staticmethod
    def _keep(n: int, control: list[int], capacity: int) -> list[int]:
        """Which of ``n`` segments keep their own row (sorted): the handshake, every SYN,
        FIN and RST with the segment after it, and the latest ones; then as many more as
        fit in ``capacity`` rows, each run of the others folding into one row. Fewer than
        MIN_ROWS rows: the latest segments (the cursor's), all before them folded. A run
        of one segment is kept: it takes a row either way (no fold hides fewer than two)."""

        def rows(keep: set[int]) -> int:
            ks = sorted(keep)
            runs = (ks[0] > 0) + (ks[-1] < n - 1) + sum(b > a + 1 for a, b in zip(ks, ks[1:]))
            return len(ks) + runs

        if n <= capacity:
            return list(range(n))
        if capacity < MIN_ROWS:  # too few rows for both ends: the cursor's end, whole
            return SequenceView._no_single_folds(
                n, list(range(max(0, n - max(1, capacity - 1)), n)))

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
                break  # (past it, only a segment alone between kept ones fits: kept below)
            keep.add(k)
        return SequenceView._no_single_folds(n, sorted(keep))

    @staticmethod
    def _no_single_folds(n: int, keep: list[int]) -> list[int]:
        """``keep`` (sorted) and every segment that would fold alone: a fold of one takes
        the row its segment would, and hides it ("… 1 more segments …")."""
        if not keep:
            return keep
        bounds = [-1, *keep, n]
        singles = [a + 1 for a, b in zip(bounds, bounds[1:]) if b == a + 2]
        return sorted(keep + singles) if singles else keep

    def _place_marks(self, fonts: dict[str, QFont]) -> None:
        """Give each state change the row it follows (or the fold it came during), and a
        label: one each, but the changes during one fold share one, which names them
        all (the last large, those before it in ``via``)."""
        seg_array = self._data.seg_array[:self._count] if self._data is not None else \
            np.empty(0, np.int64)
        folds = {e.row: e for e in self.elisions}
        groups: dict[tuple[int, bool, str], list[LaneMark]] = {}
        for m in self.marks:
            before = int(np.searchsorted(seg_array, m.index, side="left")) - 1
            m.row = int(np.searchsorted(self._row_starts, before, side="right")) - 1 \
                if before >= 0 else -1
            fold = folds.get(m.row)
            inside = fold is not None and before < fold.last
            groups.setdefault((m.row, inside, m.side), []).append(m)
        self._labels = []
        for (g, inside, side), marks in groups.items():
            if inside and len(marks) > 1:
                last = marks[-1]
                passed = [m.text for m in marks[:-1]] + list(last.via)
                source = "inferred" if any(m.source == "inferred" for m in marks) \
                    else last.source
                parts = [(marks, last.text, self.tr("via {0}").format(" → ".join(passed)),
                          last.state, source)]
            else:
                parts = [([m], m.text, self._via_text(m), m.state, m.source) for m in marks]
            for group, text, via, state, source in parts:
                width, height = self._label_size(side, text, via, fonts)
                self._labels.append(_StateLabel(side, group, text, via, state, source, g,
                                                inside, width=width, height=height))

    def _via_text(self, mark: LaneMark) -> str:
        return self.tr("via {0}").format(" → ".join(mark.via)) if mark.via else ""

    def _pill_width(self, text: str, fonts: dict[str, QFont]) -> float:
        pm = QFontMetricsF(fonts["pill"])
        return pm.horizontalAdvance(text) + pm.height()

    def _label_size(self, side: str, text: str, via: str,
                    fonts: dict[str, QFont]) -> tuple[float, float]:
        """A state label's width and height: the state, and over it the states passed
        (wrapped to the lane's margin if they are many)."""
        width, height = self._pill_width(text, fonts), self._pill_h(fonts)
        if via:
            vm = QFontMetricsF(fonts["via"])
            room = max(width, self._margins.get(side, width))
            rect = vm.boundingRect(QRectF(0, 0, room, 50 * vm.height()),
                                   int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter),
                                   via)
            width = max(width, min(room, rect.width() + 4))
            height += rect.height()
        return width, height


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
        self._layout()  # (sets the box's font: the title's line makes room for it)
        self._place_box()

    def _place_box(self) -> None:
        hint = self.relative_box.sizeHint()
        self.relative_box.setGeometry(self.width() - hint.width() - 16, round(10 * self._scale),
                                      hint.width(), hint.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if self._presented != self._presenting():  # presentation mode came or went
            self._relayout()
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
            self._paint_highlight(p, fonts)
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
        metrics, bm = QFontMetricsF(fonts["title"]), QFontMetricsF(fonts["badge"])
        line_h = max(metrics.height(), bm.height() * 1.45)
        base = 10 + (line_h - metrics.height()) / 2 + metrics.ascent()
        if self.title_text:
            p.setFont(fonts["title"])
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(QPointF(x, base), self.title_text)
            x += metrics.horizontalAdvance(self.title_text) + 12
            p.setFont(fonts["badge"])
            p.setPen(QColor(style.MUTED))
            p.drawText(QPointF(x, base), self._conn_note())
        # Badges: solid when captured/observed, dashed when derived/inferred (each where
        # the layout put it: on the title's line, or under it when the line is full).
        p.setFont(fonts["badge"])
        for text, reconstructed, rect in zip(self.badges, self._badge_dashed, self._geo.badges):
            pen = QPen(QColor(style.MUTED), style.pen(1.5))
            if reconstructed:
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect, rect.height() / 4, rect.height() / 4)
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)

    def _paint_headers(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        geo = self._geo
        lm = QFontMetricsF(fonts["lane"])
        for side, colour, address, text, state in (
                ("client", style.CLIENT, self.client_address, self.client_state_text,
                 self.client_state),
                ("server", style.SERVER, self.server_address, self.server_state_text,
                 self.server_state)):
            if side not in geo.headers:
                continue
            names, rect = geo.headers[side]
            name = self._lane_name(side)
            base = names.top() + lm.ascent()
            p.setFont(fonts["lane"])
            p.setPen(QColor(colour))
            p.drawText(QPointF(names.left(), base), name)
            p.setFont(fonts["address"])
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(QPointF(names.left() + lm.horizontalAdvance(name) + 10, base), address)
            if state not in style.STATE_COLOURS:  # nobody reported it: say so, quietly
                p.setFont(fonts["pill"])
                p.setPen(QColor(style.MUTED))
                p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
                continue
            fill = style.state_colour(state)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(fill)
            p.drawRoundedRect(rect, rect.height() / 4, rect.height() / 4)
            p.setFont(fonts["state"])
            p.setPen(style.text_on(fill))
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
        u = style.ZOOM
        band = 12.0 * u
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
                a, b = 12.0 * u, 4.0 * u
                p.setPen(QPen(QColor(style.BACKGROUND), 8 * u))
                p.drawLine(QPointF(x - a, e.y + b / 2), QPointF(x + a, e.y - 1.5 * b))
                p.setPen(QPen(QColor(style.MUTED), style.pen(2)))
                p.drawLine(QPointF(x - a, e.y + 1.5 * b), QPointF(x + a, e.y - b / 2))
                p.drawLine(QPointF(x - a, e.y - b / 2), QPointF(x + a, e.y - 2.5 * b))

    def _paint_elisions(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        geo = self._geo
        em, msm = QFontMetricsF(fonts["elided"]), QFontMetricsF(fonts["ms"])
        inset = self._elision_inset()
        pad = 1.0 * style.ZOOM  # (as the layout gave the row)
        for e in self.elisions:
            if not 0 <= e.row < len(geo.row_tops):
                continue
            top, bottom = geo.row_tops[e.row], geo.row_bottoms[e.row]
            rect = QRectF(geo.client_x + inset, top + pad,
                          geo.server_x - geo.client_x - 2 * inset, bottom - top - 2 * pad)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(style.GRID).lighter(112))
            p.drawRoundedRect(rect, em.height() / 4, em.height() / 4)
            p.setFont(fonts["elided"])
            p.setPen(QColor(style.FOREGROUND))
            inner = rect.adjusted(em.height() / 2, 0, -em.height() / 2, 0)
            p.drawText(inner, _elision_flags(em, e.text, inner.width()), e.text)
            # The time column: the folded segments' times are not told, only that they are.
            p.setFont(fonts["ms"])
            p.setPen(QColor(style.MUTED))
            h = msm.height()
            p.drawText(QRectF(4, e.y - h / 2, geo.ms_right - 4, h),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), "⋮")

    def _arrow_colour(self, kind: str) -> QColor:
        return QColor({"control": style.CONTROL, "data": style.DATA, "reset": style.WARNING,
                       "ack": style.FOREGROUND}[kind])

    def _paint_highlight(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        """The segment at the cursor (a lesson's step): its row marked, under everything."""
        geo = self._geo
        tl = self.timeline
        cursor = _segment_at(tl.log, tl.cursor) if tl is not None and not tl.live else None
        self.highlighted = None
        for a in self._drawn:
            if a.index != cursor or not 0 <= a.row < len(geo.row_tops):
                continue
            self.highlighted = a.index
            inset = 12.0 * style.ZOOM
            # (below the end of the arrow above, which reaches a little into this row)
            top = geo.row_tops[a.row] + (0.5 - RISE) * geo.drop + 1
            p.setPen(QPen(QColor(style.FOREGROUND), style.pen(1.5)))
            p.setBrush(QColor(style.SELECTED))
            p.drawRoundedRect(QRectF(geo.client_x + inset, top,
                                     geo.server_x - geo.client_x - 2 * inset,
                                     geo.row_tops[a.row] + geo.row_h - 1 - top), 8, 8)

    def _paint_arrows(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        geo = self._geo
        fm, nm = QFontMetricsF(fonts["flags"]), QFontMetricsF(fonts["numbers"])
        msm = QFontMetricsF(fonts["ms"])
        u = style.ZOOM
        band = 7.0 * u
        gap = fm.height() * 0.5  # between flags, numbers and note
        for a in self._drawn:
            if a.row < 0 or a.row >= len(geo.row_tops):
                continue
            progress = self.progress_of(a)
            colour = self._arrow_colour(a.kind)
            xs = self._lane_x(a.sender) + (band if a.sender == "client" else -band)
            xr = self._lane_x(a.receiver) + (-band if a.sender == "client" else band)
            # The label: flags in the segment's colour, then the numbers.
            flags_w = fm.horizontalAdvance(a.flags)
            note = self._note(a)  # said after the numbers, on the label's own line
            total = self._label_width(a, fonts)
            mid_x = (xs + xr) / 2
            mid_y = (a.y0 + a.y1) / 2
            left = mid_x - total / 2
            # Above the line along the whole label, although the line slopes (the row
            # has room for RISE of the drop).
            rise = min(RISE * abs(a.y1 - a.y0),
                       abs(a.y1 - a.y0) * (total / 2) / max(1.0, abs(xr - xs)))
            baseline = mid_y - rise - max(fm.descent(), nm.descent()) - 2 * u
            if progress <= 0.0:  # still waiting to leave its sender
                continue
            start = QPointF(xs, a.y0)
            end = QPointF(xr, a.y1)
            # A segment dropped on its way in goes two thirds of the way, and no further.
            reach = progress * (0.66 if a.dropped else 1.0)
            tip = QPointF(xs + (xr - xs) * reach, a.y0 + (a.y1 - a.y0) * reach)
            width = style.pen(2.0 if a.kind == "ack" else 3.5) * u ** 0.5
            pen = QPen(colour, width)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            # The line stops where the head begins.
            dx, dy = end.x() - start.x(), end.y() - start.y()
            length = max(1.0, (dx * dx + dy * dy) ** 0.5)
            ux, uy = dx / length, dy / length
            head, half = 16.0 * u ** 0.5, 7.0 * u ** 0.5
            base = QPointF(tip.x() - ux * head, tip.y() - uy * head)
            if (tip.x() - start.x()) * ux + (tip.y() - start.y()) * uy > head:
                p.drawLine(start, base)
            nx, ny = -uy, ux
            if a.dropped:  # where it was lost: a cross, not an arrowhead
                p.drawLine(start, tip)
                cross = QPen(QColor(style.WASTE), style.pen(4) * u ** 0.5)
                p.setPen(cross)
                arm = 9.0 * u ** 0.5
                for sx, sy in ((1, 1), (1, -1)):
                    p.drawLine(QPointF(tip.x() - arm * sx, tip.y() - arm * sy),
                               QPointF(tip.x() + arm * sx, tip.y() + arm * sy))
            else:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(colour)
                p.drawPolygon(QPolygonF([tip,
                                         QPointF(base.x() + nx * half, base.y() + ny * half),
                                         QPointF(base.x() - nx * half, base.y() - ny * half)]))
            if a.note == "piggyback":  # the segment the caption explains
                box = QRectF(left - 8, baseline - fm.ascent() - 1, total + 16,
                             fm.ascent() + fm.descent() + 2)
                p.setPen(QPen(QColor(style.CONTROL), style.pen(2)))
                p.setBrush(QColor(style.BACKGROUND))
                p.drawRoundedRect(box, 6, 6)
            p.setFont(fonts["flags"])
            p.setPen(colour)
            p.drawText(QPointF(left, baseline), a.flags)
            p.setFont(fonts["numbers"])
            p.setPen(QColor(style.FOREGROUND))
            p.drawText(QPointF(left + flags_w + gap, baseline), a.numbers)
            if note:
                p.setFont(fonts["note"])
                p.setPen(QColor(note[1]))
                p.drawText(QPointF(left + flags_w + gap + nm.horizontalAdvance(a.numbers) + gap,
                                   baseline), note[0])
            # Elapsed time in the left margin, level with where the segment leaves.
            p.setFont(fonts["ms"])
            p.setPen(QColor(style.MUTED))
            text = _elapsed_text(a.elapsed_ms)
            p.drawText(QPointF(geo.ms_right - msm.horizontalAdvance(text),
                               a.y0 + (msm.ascent() - msm.descent()) / 2),
                       text)

    def _note(self, a: Arrow) -> tuple[str, str] | None:
        """What a segment's label adds: lost on its way in, sent again, or an aggregate
        (text, colour)."""
        parts = []
        if a.retransmission:
            parts.append("↻ " + self.tr("retransmission"))
        if a.dropped:
            parts.append(self.tr("✗ dropped by the lab's rule ({0})").format(a.dropped))
        if a.key in self.after_gap:
            parts.append(self.tr("⚠ after frames the capture lost"))
        if parts:
            return "  ".join(parts), style.WASTE
        if a.aggregate:
            return (self.tr("⋯ {0} bytes, cut by the kernel as it chose").format(f"{a.length:,}")
                    if a.length else self.tr("⋯ ACKs as the kernel chose")), style.MUTED
        return None

    def _is_folded(self, arrow: Arrow) -> bool:
        return self.row_of(arrow) in self._folded_rows

    def _paint_marks(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        pill_h = self._pill_h(fonts)
        tick = self._tick(fonts)
        for label in self._labels:
            x = self._lane_x(label.side)
            width, top = label.width, label.top
            left = x - tick - width if label.side == "client" else x + tick
            if label.via:  # the states passed through, small, above the label
                p.setFont(fonts["via"])
                p.setPen(QColor(style.MUTED))
                p.drawText(QRectF(left, top, width, label.height - pill_h),
                           int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                           label.via)
                top += label.height - pill_h
            rect = QRectF(left, top, width, pill_h)
            tick_end = rect.right() if label.side == "client" else rect.left()
            fill = style.state_colour(label.state)
            p.setPen(QPen(fill.darker(130), style.pen(2)))
            centre_y = rect.center().y()
            p.drawPolyline(QPolygonF([QPointF(x, label.y), QPointF((x + tick_end) / 2, label.y),
                                      QPointF((x + tick_end) / 2, centre_y),
                                      QPointF(tick_end, centre_y)]))
            pen = QPen(fill.darker(130), style.pen(1.5))
            if label.source == "inferred":
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(fill)
            p.drawRoundedRect(rect, pill_h / 4, pill_h / 4)
            p.setFont(fonts["pill"])
            p.setPen(style.text_on(fill))
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), label.text)

    def _paint_caption(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        rect = self._geo.caption_rect
        if not self.caption or rect is None:
            return
        pad = QFontMetricsF(fonts["caption"]).height() * 0.5
        p.setPen(QPen(QColor(style.CONTROL), style.pen(2)))
        p.setBrush(QColor(style.BACKGROUND))
        p.drawRoundedRect(rect, pad, pad)
        p.setFont(fonts["caption"])
        p.setPen(QColor(style.FOREGROUND))
        p.drawText(rect.adjusted(pad, pad, -pad, -pad),
                   int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignVCenter), self.caption)

    def _paint_message(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        p.setFont(fonts["message"])
        p.setPen(QColor(style.MUTED))
        rect = QRectF(0, 0, self.width() / self._scale, self.height() / self._scale)
        rect = rect.adjusted(60, 120, -60, -60)
        p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                   self.message)
