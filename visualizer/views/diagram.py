"""The TCP state diagram, lit by one connection: both ends walk the textbook's figure.

Every TCP lecture projects the same figure, RFC 9293's Figure 5 (RFC 793's Figure 6):
eleven states and the arrows between them, each labelled with what is received and
what is sent. This view draws it from ``engine.kernel.segments.TRANSITIONS``, the table
that turns every connection's segments into its ``tcp_state`` events: one source for
the machine and for the picture. The connection's two ends are two markers, the
client's and the server's (the sequence view's colours), on the states they are in at
the cursor; the arrow each took last is drawn strong, labelled with what it means and
with the segment that took it ("rcv FIN / snd ACK", "segment FIN|ACK, captured"); the
path each has walked is traced faintly behind it. Stepping moves a marker one
transition at a time, and a marker that moves travels along its arrow.

Drawn where Linux takes them, though the classic figure has none of them:

- FIN_WAIT_1 → TIME_WAIT in one segment, the peer's FIN riding on the ACK of ours
  (Linux passes FIN_WAIT_2 in the same microsecond: both changes are in the log, and
  the marker's last arrow is this one);
- a RST, from any state to CLOSED (dashed, from the state where it came);
- a segment sent again while its end waits (the SYN in SYN_SENT, the SYN|ACK in
  SYN_RECV when the handshake's last ACK was lost, a FIN): a loop on the state, with
  how many times;
- TIME_WAIT's end: Linux's 60 s timer, with the time left (the kernel's own countdown
  where the observer read it, "≈" where it is Linux's 60 s counted from the segment).

States the segments do not give (sock_diag's, where no SYN was seen; the syscalls'
on a machine with neither) walk the arrows through the states they name in ``via``;
a jump no arrow draws is a dashed line. A marker carries the kernel's word on its
state as the sequence view's lane does (``lane_marks``): ✓ confirmed by the
tracepoint or a poll, ✗ and the state the kernel reported.

The view keeps what it drew as plain data (``markers``, ``paths``, ``last_edges``,
``caption``...) for tests.
"""
from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QT_TRANSLATE_NOOP, QEasingCurve, QPointF, QRectF, Qt, QVariantAnimation
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QPainter, QPaintEvent,
                           QPen, QPolygonF)
from PySide6.QtWidgets import QWidget

from engine.kernel.segments import TRANSITIONS

from ..model import Timeline
from ..model.conn_states import (TIME_WAIT_MS, ConnectionStates, LaneMark, conn_port, lane_marks,
                                 newest_with, split_conn)
from ..model.log import EventLog
from . import style
from .base import View

END = "CLOSED/end"  # CLOSED again, where connections end (the RFC draws it twice too)
SIDES = ("client", "server")
START = {"client": "CLOSED", "server": "LISTEN"}  # where each end's walk begins
ANIMATION_MS = 450  # a marker's journey along its arrow
PRESENT_SIZE = (1280, 720)  # presenting, the type is the view's size against this one

# Where each state stands: (column, row), as the RFC lays the figure out.
NODE_AT: dict[str, tuple[float, float]] = {
    "CLOSED": (1, 0), "LISTEN": (1, 1), "SYN_RECV": (0, 2), "SYN_SENT": (2, 2),
    "ESTABLISHED": (1, 3), "FIN_WAIT_1": (0, 4), "CLOSE_WAIT": (2, 4),
    "FIN_WAIT_2": (0, 5), "CLOSING": (1, 5), "LAST_ACK": (2, 5),
    "TIME_WAIT": (1, 6), END: (2, 6),
}
GRID_X = (-0.62, 2.62)  # the columns' span, with room for the arrows around them
ROWS = 7.35  # the seven rows, and room under the last for TIME_WAIT's timer

# Arrows that bend, by (state, trigger): the corners they pass, in grid units.
ROUTES: dict[tuple[str, str], list[tuple[float, float]]] = {
    ("CLOSED", "snd SYN"): [(2, 0)],
    ("LISTEN", "snd SYN|ACK"): [(0, 1)],
    ("SYN_SENT", "rcv SYN|ACK"): [(2, 3)],
    ("SYN_RECV", "rcv ACK"): [(0, 3)],
    ("SYN_RECV", "snd FIN"): [(-0.5, 2), (-0.5, 4)],
    ("FIN_WAIT_2", "rcv FIN"): [(0, 6)],
    ("TIME_WAIT", "timeout"): [(1, 6.78), (2, 6.78)],  # under the markers that hang there
}

# What each arrow says: what the end receives / what it sends (QT_TRANSLATE_NOOP: the
# view translates them when it paints). State names stay as the RFC writes them.
LABELS: dict[tuple[str, str], str] = {
    ("CLOSED", "snd SYN"): QT_TRANSLATE_NOOP("DiagramView", "connect() / snd SYN"),
    ("LISTEN", "snd SYN|ACK"): QT_TRANSLATE_NOOP("DiagramView", "rcv SYN / snd SYN,ACK"),
    ("SYN_SENT", "rcv SYN|ACK"): QT_TRANSLATE_NOOP("DiagramView", "rcv SYN,ACK / snd ACK"),
    ("SYN_SENT", "rcv SYN"): QT_TRANSLATE_NOOP("DiagramView", "rcv SYN / snd SYN,ACK"),
    ("SYN_RECV", "rcv ACK"): QT_TRANSLATE_NOOP("DiagramView", "rcv ACK of SYN"),
    ("SYN_RECV", "snd FIN"): QT_TRANSLATE_NOOP("DiagramView", "close() / snd FIN"),
    ("ESTABLISHED", "snd FIN"): QT_TRANSLATE_NOOP("DiagramView", "close() / snd FIN"),
    ("ESTABLISHED", "rcv FIN"): QT_TRANSLATE_NOOP("DiagramView", "rcv FIN / snd ACK"),
    ("FIN_WAIT_1", "rcv ACK"): QT_TRANSLATE_NOOP("DiagramView", "rcv ACK of FIN"),
    ("FIN_WAIT_1", "rcv FIN"): QT_TRANSLATE_NOOP("DiagramView", "rcv FIN / snd ACK"),
    ("FIN_WAIT_2", "rcv FIN"): QT_TRANSLATE_NOOP("DiagramView", "rcv FIN / snd ACK"),
    ("CLOSING", "rcv ACK"): QT_TRANSLATE_NOOP("DiagramView", "rcv ACK of FIN"),
    ("CLOSE_WAIT", "snd FIN"): QT_TRANSLATE_NOOP("DiagramView", "close() / snd FIN"),
    ("LAST_ACK", "rcv ACK"): QT_TRANSLATE_NOOP("DiagramView", "rcv ACK of FIN"),
    ("TIME_WAIT", "timeout"): QT_TRANSLATE_NOOP("DiagramView", "2 MSL (Linux: 60 s)"),
    ("FIN_WAIT_1", "rcv FIN|ACK"): QT_TRANSLATE_NOOP("DiagramView", "rcv FIN,ACK / snd ACK"),
}
RESET_LABELS = {"snd RST": QT_TRANSLATE_NOOP("DiagramView", "abort / snd RST"),
                "rcv RST": QT_TRANSLATE_NOOP("DiagramView", "rcv RST")}
# A segment its end sent again while it waited in a state: the state's loop says so.
AGAIN = {"SYN": "SYN_SENT", "SYN|ACK": "SYN_RECV"}
AGAIN_LABEL = QT_TRANSLATE_NOOP("DiagramView", "snd {0} again ×{1}")
_WORDS = (QT_TRANSLATE_NOOP("DiagramView", "client"),
          QT_TRANSLATE_NOOP("DiagramView", "server"),
          QT_TRANSLATE_NOOP("DiagramView", "captured"),
          QT_TRANSLATE_NOOP("DiagramView", "derived"),
          QT_TRANSLATE_NOOP("DiagramView", "observed"),
          QT_TRANSLATE_NOOP("DiagramView", "inferred"),
          QT_TRANSLATE_NOOP("DiagramView", "traced"))


@dataclass(frozen=True)
class Edge:
    """One arrow of the figure."""

    source: str  # a node: a state, or END
    target: str
    trigger: str  # TRANSITIONS' ("rcv FIN"); "timeout"; the composite "rcv FIN|ACK"
    kind: str  # "rfc" (the classic figure's), "linux" (one Linux takes that it has not),
    # "timer" (TIME_WAIT's end), "reset" (any state to CLOSED), "jump" (states a poll
    # saw with no arrow between them)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.target, self.trigger)


def node_of(state: str) -> str:
    """The node a change *into* ``state`` lands on: CLOSED at the figure's end."""
    return END if state == "CLOSED" else state


def figure_edges() -> list[Edge]:
    """The figure's arrows: every transition of the table but the resets (drawn where one
    is taken), TIME_WAIT's timer, and the one-segment close Linux takes."""
    edges = [Edge(state, node_of(target), trigger, "rfc")
             for (state, trigger), target in TRANSITIONS.items() if "RST" not in trigger]
    edges.append(Edge("TIME_WAIT", END, "timeout", "timer"))
    edges.append(Edge("FIN_WAIT_1", "TIME_WAIT", "rcv FIN|ACK", "linux"))
    return edges


EDGES = figure_edges()


@dataclass
class Step:
    """One move of one end along the figure, as drawn."""

    edge: Edge
    index: int  # the log index of the tcp_state event that made it
    state: str  # where it arrived (a state name)
    trigger: str  # as the event said ("" for a poll's)
    segment: str  # the flags of the segment that caused it
    origin: str  # that segment's: "captured" / "derived"
    source: str  # the state's: "inferred" / "observed"
    t_ns: int


@dataclass
class Marker:
    """Where one end stands at the cursor."""

    side: str
    state: str  # as the trace says ("CLOSED", not END)
    node: str
    source: str  # "inferred", "observed", or "" (nothing reported yet: the walk's start)
    check: str = ""  # the kernel's word: "✓" or "✗ STATE"
    checked_by: str = ""
    countdown: str = ""  # TIME_WAIT's time left: "≈58.2 s" or "31.0 s"


@dataclass
class Loop:
    """Segments sent again while their end waited in ``state``."""

    side: str
    state: str
    flags: str
    count: int


@dataclass
class _Geometry:
    rects: dict[str, QRectF] = field(default_factory=dict)
    routes: dict[tuple[str, str, str], list[QPointF]] = field(default_factory=dict)
    labels: dict[tuple[str, str, str], QRectF] = field(default_factory=dict)
    top: float = 0.0  # the diagram's area
    bottom: float = 0.0


def _edge_for(source: str, target: str) -> Edge | None:
    return next((e for e in EDGES if e.source == source and e.target == target), None)


def _clip(rect: QRectF, inside: QPointF, outside: QPointF) -> QPointF:
    """Where the line from ``inside`` (the rect's centre) to ``outside`` leaves ``rect``."""
    dx, dy = outside.x() - inside.x(), outside.y() - inside.y()
    if dx == 0 and dy == 0:
        return inside
    tx = (rect.width() / 2) / abs(dx) if dx else math.inf
    ty = (rect.height() / 2) / abs(dy) if dy else math.inf
    t = min(tx, ty, 1.0)
    return QPointF(inside.x() + dx * t, inside.y() + dy * t)


class DiagramView(View):
    name = "diagram"
    title = QT_TRANSLATE_NOOP("View", "State diagram")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(480, 320)
        # What is drawn, as plain data (tests read it).
        self.conn: str | None = None
        self.title_text = ""
        self.markers: dict[str, Marker] = {}
        self.paths: dict[str, list[Step]] = {s: [] for s in SIDES}
        self.last_edges: dict[str, Edge | None] = {s: None for s in SIDES}
        self.loops: list[Loop] = []
        self.caption = ""
        self.badges: list[str] = []
        self.gap_frames = 0  # frames the capture lost while the connection shown lived
        self.badges_drawn = 0  # as painted: the first ones, those the title left room for
        self.message = ""
        self._log_ref: weakref.ref[EventLog] | Callable[[], None] = lambda: None
        self._connections: dict[str, ConnectionStates] = {}
        self._pick_key: tuple | None = None
        self._pick: str | None = None
        self._built_key: tuple | None = None
        self._geo = _Geometry()
        self._scale = 1.0
        self._laid_out_for: tuple | None = None
        # Animation: a marker that moved travels along its last arrow.
        self._shown: dict[str, tuple[str | None, int]] = {}  # side -> (conn, last step's index)
        self._moving: set[str] = set()
        self._progress = 1.0
        self._animation = QVariantAnimation(self)
        self._animation.setStartValue(0.0)
        self._animation.setEndValue(1.0)
        self._animation.setDuration(ANIMATION_MS)
        self._animation.setEasingCurve(QEasingCurve.Type.InOutQuad)
        self._animation.valueChanged.connect(self._animation_step)
        self._animation.finished.connect(self._animation_done)

    # ------------------------------------------------------------ public
    @property
    def animating(self) -> bool:
        return bool(self._moving) and self._progress < 1.0

    def settle(self) -> None:
        self._animation.stop()
        self._animation_done()

    def walked(self, side: str) -> list[str]:
        """The states ``side`` has been in, in order, from where its walk began."""
        path = self.paths[side]
        if not path:
            marker = self.markers.get(side)
            return [marker.state] if marker is not None else []
        return [path[0].edge.source.replace("/end", "")] + [s.state for s in path]

    def show_state(self, timeline: Timeline) -> None:
        self.timeline = timeline
        log, cursor = timeline.log, timeline.cursor
        if self._log_ref() is not log:
            self._log_ref = weakref.ref(log)
            self._connections.clear()
            self._pick_key = self._built_key = None
            self._shown.clear()
        conn = self.selected or self._newest(log, cursor)
        key = (len(log), cursor, conn)
        if key != self._built_key:
            self._build(timeline, conn)
            self._built_key = key
            self._animate()
        self.update()

    # ------------------------------------------------------------ reading the log
    def _newest(self, log: EventLog, cursor: int) -> str | None:
        """The newest connection with a state change at or before the cursor."""
        key = (len(log), cursor)
        if key == self._pick_key:
            return self._pick
        found = newest_with(log, cursor, "tcp_state")
        self._pick_key, self._pick = key, found
        return found

    def _connection(self, log: EventLog, conn: str) -> ConnectionStates:
        data = self._connections.get(conn)
        if data is None:
            if len(self._connections) >= 64:
                self._connections.clear()
            data = self._connections[conn] = ConnectionStates(conn)
        data.update(log)
        return data

    def _build(self, timeline: Timeline, conn: str | None) -> None:
        log, cursor = timeline.log, timeline.cursor
        self.conn = conn
        self.markers, self.loops, self.badges = {}, [], []
        self.paths = {s: [] for s in SIDES}
        self.last_edges = {s: None for s in SIDES}
        self.caption = self.message = self.title_text = ""
        if conn is None:
            self.message = self.tr("No TCP states yet. Run some traffic, or open a trace "
                                   "recorded with states (--states).")
            return
        client, server = split_conn(conn)
        self.title_text = self.tr("Connection {0} → {1}").format(conn_port(client),
                                                                   conn_port(server))
        data = self._connection(log, conn)
        changes = int(np.searchsorted(data.change_array, cursor, side="right"))
        checks = int(np.searchsorted(data.check_array, cursor, side="right"))
        count = int(np.searchsorted(data.seg_array, cursor, side="right"))
        marks, last, tw_report = lane_marks(data, changes, checks)
        latest = {m.side: m for m in marks}  # each side's newest mark: the sequence view's
        now_ns = int(log.times[cursor]) if cursor >= 0 else 0
        for k in range(changes):
            c = data.changes[k]
            if c.side in SIDES:
                self._walk(c.side, c, data.change_index[k])
        for side in SIDES:
            path = self.paths[side]
            change = last.get(side)
            if change is None:
                continue
            mark: LaneMark | None = latest.get(side)
            marker = Marker(side, change.state, node_of(change.state), str(change.source or ""))
            if mark is not None and mark.check:
                marker.check, marker.checked_by = mark.check, mark.checked_by
            if change.state == "TIME_WAIT":
                report = tw_report.get(side)
                if change.expires_ms:
                    expires, since, approx = change.expires_ms, change.t_ns, ""
                elif report is not None and report.t_ns >= change.t_ns:
                    expires, since, approx = report.expires_ms or 0, report.t_ns, ""
                else:
                    expires, since, approx = TIME_WAIT_MS, change.t_ns, "≈"
                left = max(0.0, expires - (now_ns - since) / 1e6) / 1000
                marker.countdown = f"{approx}{left:.1f} s"
            self.markers[side] = marker
            self.last_edges[side] = self._last_edge(path)
        self._count_loops(data, count)
        sources = sorted({c.source for c in data.changes[:changes] if c.source})
        origins = sorted({c.origin for c in data.changes[:changes] if c.origin})
        if sources:
            words = " + ".join(self.tr(s) for s in sources)
            if origins:
                words += self.tr(" (from segments {0})").format(
                    " + ".join(self.tr(o) for o in origins))
            self.badges.append(self.tr("states: {0}").format(words))
        checkers = sorted({m.checked_by for m in marks if m.checked_by})
        if checkers:
            self.badges.append(self.tr("checked: {0}").format(
                " + ".join(self.tr(c) for c in checkers)))
        self.gap_frames = self._frames_lost(log, cursor, conn)
        if self.gap_frames:  # states from segments the capture lost were not walked:
            self.badges.insert(0, self.tr(  # first, where the title leaves room
                "⚠ the capture lost {0} frames meanwhile").format(f"{self.gap_frames:,}"))
        if not changes:
            self.message = self.tr("No state of this connection yet at this moment.")
        self.caption = self._caption()

    @staticmethod
    def _frames_lost(log: EventLog, cursor: int, conn: str) -> int:
        """Frames the capture lost (its gaps known by the cursor) while ``conn`` lived:
        from its first event to its last so far."""
        gaps = log.capture_gaps(cursor + 1)
        if not gaps:
            return 0
        own = log.indices(conn=conn, stop=cursor + 1)
        if not len(own):
            return 0
        first_t, last_t = int(log.times[own[0]]), int(log.times[own[-1]])
        return sum(n for lo, hi, n in gaps if hi >= first_t and lo <= last_t)

    def _walk(self, side: str, c, index: int) -> None:  # type: ignore[no-untyped-def]
        """Add change ``c`` to ``side``'s path: the arrow its trigger names, or, for a
        poll's or the syscalls' change, the arrows through the states it passed."""
        path = self.paths[side]
        here = path[-1].edge.target if path else None
        previous = c.previous
        if path and previous == START[side] and here != START[side]:
            # The port pair used again: a new connection begins its walk (SYN anew).
            path.clear()
            here = None
        if here is None:
            if previous is None:  # the first look found it there: no arrow to it
                return
            # The server's socket is born of the listener; a client's of nothing.
            here = START[side] if previous in ("CLOSED", "LISTEN") else previous
        trigger, origin, source = c.trigger, c.origin, str(c.source or "")
        if node_of(c.state) == here:  # the same state again: no move
            last = path[-1] if path else None
            if last is not None and trigger and not last.trigger:
                # The kernel's tracepoint told the change first, the segment that made it
                # comes after: the arrow is the segment's (its word, its flags).
                edge = Edge(last.edge.source, here, trigger, "reset") if "RST" in trigger \
                    else next((e for e in EDGES if e.source == last.edge.source
                               and e.trigger == trigger and e.target == here), None)
                if edge is not None:
                    path[-1] = Step(edge, last.index, last.state, trigger, c.segment, origin,
                                    last.source, last.t_ns)
            return
        if "RST" in trigger:  # from any state: the reset arrow, drawn where it was taken
            path.append(Step(Edge(here, END, trigger, "reset"), index, c.state, trigger,
                             c.segment, origin, source, c.t_ns))
            return
        edge = next((e for e in EDGES if e.source == here and e.trigger == trigger
                     and e.kind == "rfc"), None) if trigger else None
        if edge is not None and edge.target == node_of(c.state):
            path.append(Step(edge, index, c.state, trigger, c.segment, origin, source, c.t_ns))
            return
        hops = [*c.via, c.state]
        for k, state in enumerate(hops):
            target = node_of(state)
            edge = _edge_for(here, target)
            if edge is None and target == END and (here, "rcv RST") in TRANSITIONS:
                edge = Edge(here, END, "", "reset")  # to CLOSED at once: only a reset does
            edge = edge or Edge(here, target, "", "jump")
            path.append(Step(edge, index, state, trigger if k == len(hops) - 1 else "",
                             c.segment, origin, source, c.t_ns))
            here = target

    @staticmethod
    def _last_edge(path: list[Step]) -> Edge | None:
        """The arrow a marker came by: its last step's, or, where its last two steps were
        one segment's (FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT on a FIN|ACK), the arrow Linux
        takes for both, where the figure has one."""
        if not path:
            return None
        last = path[-1]
        if len(path) >= 2:
            before = path[-2]
            if before.t_ns == last.t_ns and before.index != last.index and last.segment \
                    and before.segment == last.segment:
                composite = next((e for e in EDGES if e.kind == "linux"
                                  and e.source == before.edge.source
                                  and e.target == last.edge.target), None)
                if composite is not None:
                    return composite
        return last.edge

    def _count_loops(self, data: ConnectionStates, count: int) -> None:
        """Segments sent again while their end waited (retransmissions of a SYN, a
        SYN|ACK, a FIN), up to the cursor: a loop on the state each end was in."""
        loops: dict[tuple[str, str, str], int] = {}
        for position in range(count):
            if not data.repeats[position]:
                continue
            flags, sender = data.flags[position], data.senders[position]
            state = AGAIN.get(flags)
            if state is None and "FIN" in flags.split("|"):
                state = self._state_at(sender, data.seg_index[position])
                if state not in ("FIN_WAIT_1", "LAST_ACK", "CLOSING"):
                    continue
                flags = "FIN"
            if state is None:
                continue
            key = (sender, state, flags)
            loops[key] = loops.get(key, 0) + 1
        self.loops = [Loop(side, state, flags, n) for (side, state, flags), n in loops.items()]

    def _state_at(self, side: str, index: int) -> str | None:
        state = None
        for step in self.paths[side]:
            if step.index > index:
                break
            state = step.state
        return state

    def _caption(self) -> str:
        """What the ends did last, in words: the arrow, and the segment that took it."""
        names = {"client": self.tr("client"), "server": self.tr("server")}
        lines = []
        latest = sorted((p[-1].index, side) for side, p in self.paths.items() if p)
        for _, side in latest[-1:]:
            step = self.paths[side][-1]
            edge = self.last_edges[side]
            if edge is None:
                continue
            start = edge.source.replace("/end", "")
            said = self._edge_text(edge)
            line = self.tr("The {0} went from {1} to {2}").format(names[side], start, step.state)
            if said:
                line = self.tr("{0}: {1}").format(line, said)
            if step.segment:
                line += self.tr(" (segment {0}, {1})").format(
                    step.segment, self.tr(step.origin) if step.origin else self.tr(step.source))
            elif step.source == "observed":
                line += self.tr(" (the kernel's poll saw it)")
            lines.append(self.tr("{0}.").format(line))
            if edge.kind == "linux":
                lines.append(self.tr("One segment did both: the peer's FIN rode on the ACK of "
                                     "ours, and Linux passed FIN_WAIT_2 in the same "
                                     "microsecond (the classic figure has no such arrow)."))
            elif edge.kind == "reset":
                lines.append(self.tr("A reset ends the connection at once, from any state: "
                                     "no FIN exchange, no TIME_WAIT."))
        marker = next((m for m in self.markers.values() if m.state == "TIME_WAIT"), None)
        if marker is not None:
            lines.append(self.tr("The {0} waits in TIME_WAIT for 2 MSL (60 s on Linux): {1} "
                                 "left.").format(names[marker.side], marker.countdown))
        for loop in self.loops:
            if loop.flags == "SYN|ACK":
                lines.append(self.tr("The server sent its SYN,ACK again {0}× from SYN_RECV: "
                                     "the handshake's last ACK did not arrive.").format(loop.count))
            elif loop.flags == "SYN":
                lines.append(self.tr("The client sent its SYN again {0}× from SYN_SENT: no "
                                     "SYN,ACK came back in time.").format(loop.count))
        return " ".join(lines)

    def _edge_text(self, edge: Edge) -> str:
        if edge.kind == "reset":
            return self.tr(RESET_LABELS.get(edge.trigger, RESET_LABELS["rcv RST"]))
        label = LABELS.get((edge.source, edge.trigger))
        return self.tr(label) if label else ""

    # ------------------------------------------------------------ animation
    def _animate(self) -> None:
        """A marker whose last step is new, the cursor having moved forward by it,
        travels along its arrow; stepping back, or to another connection, jumps."""
        moved = set()
        for side in SIDES:
            path = self.paths[side]
            now = (self.conn, path[-1].index if path else -1)
            before = self._shown.get(side)
            self._shown[side] = now
            if before is not None and before[0] == now[0] and now[1] > before[1] >= -1 \
                    and path and self.last_edges[side] is not None \
                    and self.last_edges[side].kind != "jump":
                moved.add(side)
        if moved and self.isVisible():
            self._moving = moved
            self._progress = 0.0
            self._animation.stop()
            self._animation.start()
        else:
            self.settle()

    def _animation_step(self, value: object) -> None:
        self._progress = float(value)  # type: ignore[arg-type]
        self.update()

    def _animation_done(self) -> None:
        self._progress = 1.0
        self._moving = set()
        self.update()

    # ------------------------------------------------------------ layout
    def _presenting(self) -> bool:
        presentation = getattr(self.window(), "presentation", None)
        return bool(getattr(presentation, "active", False))

    def _fonts(self) -> dict[str, QFont]:
        return {"title": style.font(1.2, bold=True), "badge": style.font(0.85),
                "node": style.font(1.0, bold=True), "edge": style.font(0.78),
                "edge_strong": style.font(0.85, bold=True), "marker": style.font(0.8, bold=True),
                "caption": style.font(0.95), "message": style.font(1.15)}

    def _layout(self) -> None:
        """Node boxes, arrows' routes and their labels' places for the current size, in
        logical units: the painter scales the whole picture by ``_scale``. Presenting,
        that is the view's size against 1280 x 720; in the window, smaller below
        1100 x 680. Zoomed in (type at 200 %) where the seven rows, the title and the
        caption no longer fit, the picture gives way, 7 % at a time, until they do."""
        w, h = max(1, self.width()), max(1, self.height())
        if self._presenting():  # as large as the room allows (the fit below decides)
            base = max(0.6, min(3.0, 2.0 * min(w / PRESENT_SIZE[0], h / PRESENT_SIZE[1])))
        else:
            base = max(0.6, min(1.0, w / 1100, h / 680))
        fonts = self._fonts()
        fm_title, fm_node = QFontMetricsF(fonts["title"]), QFontMetricsF(fonts["node"])
        fm_edge = QFontMetricsF(fonts["edge_strong"])
        box_h = fm_node.height() * 1.4
        row_need = box_h + fm_edge.height() * 1.25  # a box, and an arrow's label beside it
        box_w = max(fm_node.horizontalAdvance(n.replace("/end", "")) for n in NODE_AT) + 24
        for k in range(16):  # bounded: at most about a third of the picture
            self._scale = base * 0.93 ** k
            width, height = w / self._scale, h / self._scale
            top = 12 + fm_title.height() * 1.45
            bottom = height - 8 - self._caption_height(fonts, width - 32)
            col_w = (width - 32) / (GRID_X[1] - GRID_X[0])
            if (bottom - top) / ROWS >= row_need and col_w >= box_w * 1.12:
                break
        geo = _Geometry()
        geo.top, geo.bottom = top, bottom
        row_h = (bottom - top) / ROWS
        left = 16.0

        def at(gx: float, gy: float) -> QPointF:
            return QPointF(left + (gx - GRID_X[0]) * col_w, top + (gy + 0.5) * row_h)

        box_w = min(box_w, col_w * 0.9)
        for node, (gx, gy) in NODE_AT.items():
            centre = at(gx, gy)
            geo.rects[node] = QRectF(centre.x() - box_w / 2, centre.y() - box_h / 2, box_w, box_h)
        for edge in EDGES:
            geo.routes[edge.key] = self._route(geo, edge, at)
        self._geo = geo
        self._place_labels(fonts)

    def _route(self, geo: _Geometry, edge: Edge, at) -> list[QPointF]:  # type: ignore[no-untyped-def]
        a, b = geo.rects[edge.source], geo.rects[edge.target]
        corners = [at(x, y) for x, y in ROUTES.get((edge.source, edge.trigger), [])]
        first = corners[0] if corners else b.center()
        last = corners[-1] if corners else a.center()
        return [_clip(a, a.center(), first), *corners, _clip(b, b.center(), last)]

    def _caption_lines(self) -> str:
        return self.message or self.caption

    def _caption_height(self, fonts: dict[str, QFont], width: float) -> float:
        """The caption's height wrapped at ``width`` (two lines at least: the picture
        does not jump as captions come and go)."""
        fm = QFontMetricsF(fonts["caption"])
        text = self._caption_lines()
        wrapped = fm.boundingRect(QRectF(0, 0, width, 10_000),
                                  int(Qt.TextFlag.TextWordWrap), text).height() if text else 0
        return max(wrapped, fm.height() * 2) + 6

    def _loop_geometry(self, loop: Loop, fonts: dict[str, QFont]) -> tuple[QRectF, QRectF, str]:
        """A loop's arc over its state's box (right of centre) and its label after it."""
        rect = self._geo.rects[loop.state]
        fm = QFontMetricsF(fonts["edge_strong"])
        r = rect.height() * 0.55
        arc = QRectF(rect.center().x() + rect.width() * 0.18, rect.top() - r * 1.05,
                     r * 1.6, r * 1.6)
        text = self.tr(AGAIN_LABEL).format(loop.flags.replace("|", ","), loop.count)
        box = QRectF(arc.right() + 4, arc.top() - fm.height() * 0.55,
                     fm.horizontalAdvance(text) + 6, fm.height())
        return arc, box, text

    def _place_labels(self, fonts: dict[str, QFont]) -> None:
        """Each arrow's label beside its longest stretch, where it covers no box and no
        other label: the arrows the ends took last first, then the rest; a label that
        finds no room is left out (its arrow's meaning is the same as a twin's)."""
        geo = self._geo
        taken = [r.adjusted(-4, -4, 4, 4) for r in geo.rects.values()]
        taken += [self._pill(side, m, fonts)[0].adjusted(-2, -2, 2, 2)
                  for side, m in self.markers.items() if m.node in geo.rects]
        taken += [self._loop_geometry(loop, fonts)[1].adjusted(-2, -2, 2, 2)
                  for loop in self.loops]
        page = QRectF(2, geo.top - 4, self.width() / self._scale - 4, geo.bottom - geo.top + 4)
        half = next(iter(geo.rects.values())).width() / 2
        order = sorted(EDGES, key=lambda e: (e not in self.last_edges.values(), e.kind != "rfc"))
        for edge in order:
            text = self._edge_text(edge)
            if not text:
                continue
            strong = edge in self.last_edges.values()
            fm = QFontMetricsF(fonts["edge_strong" if strong else "edge"])
            tw, th = fm.horizontalAdvance(text) + 8, fm.height() + 2
            route = geo.routes[edge.key]
            stretches = sorted(zip(route, route[1:]),
                               key=lambda ab: -math.hypot(ab[1].x() - ab[0].x(),
                                                          ab[1].y() - ab[0].y()))
            placed = None
            shares = (0.5, 0.35, 0.65, 0.22, 0.78) + ((0.1, 0.9, 0.45, 0.55) if strong else ())
            for a, b in stretches:
                for share in shares:
                    mid = QPointF(a.x() + (b.x() - a.x()) * share, a.y() + (b.y() - a.y()) * share)
                    horizontal = abs(b.x() - a.x()) > abs(b.y() - a.y())
                    above = [QRectF(mid.x() - tw / 2, mid.y() - th - 3, tw, th),
                             QRectF(mid.x() - tw / 2, mid.y() + 3, tw, th)]
                    beside = [QRectF(mid.x() + 6, mid.y() - th / 2, tw, th),
                              QRectF(mid.x() - 6 - tw, mid.y() - th / 2, tw, th),
                              # past the boxes' column, where two rows leave no room
                              QRectF(mid.x() + half + 6, mid.y() - th / 2, tw, th),
                              QRectF(mid.x() - half - 6 - tw, mid.y() - th / 2, tw, th)]
                    tries = above + beside if horizontal else beside + above
                    for r in tries:
                        if not page.contains(r):
                            continue
                        if not any(r.intersects(t) for t in taken):
                            placed = r
                            break
                    if placed is not None:
                        break
                if placed is not None:
                    break
            if placed is not None:
                geo.labels[edge.key] = placed
                taken.append(placed)

    # ------------------------------------------------------------ painting
    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        self._laid_out_for = None
        super().resizeEvent(event)

    def apply_theme(self) -> None:
        self._laid_out_for = None
        super().apply_theme()

    def retranslate(self) -> None:
        self._laid_out_for = None
        self._built_key = None
        super().retranslate()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        key = (self.width(), self.height(), self._presenting(), style.BASE_POINT_SIZE,
               tuple(self.last_edges.values()),
               tuple((m.node, m.check, m.countdown) for m in self.markers.values()),
               tuple((lp.state, lp.count) for lp in self.loops), self._caption_lines())
        if key != self._laid_out_for:
            self._layout()
            self._laid_out_for = key
        p = QPainter(self)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            p.fillRect(self.rect(), QColor(style.BACKGROUND))
            p.scale(self._scale, self._scale)
            fonts = self._fonts()
            self._paint_title(p, fonts)
            self._paint_paths(p)
            self._paint_edges(p, fonts)
            self._paint_nodes(p, fonts)
            self._paint_loops(p, fonts)
            self._paint_markers(p, fonts)
            self._paint_caption(p, fonts)
        finally:
            p.end()

    def _paint_title(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        fm = QFontMetricsF(fonts["title"])
        p.setFont(fonts["title"])
        p.setPen(QColor(style.FOREGROUND))
        title = self.title_text or self.tr("TCP state diagram")
        p.drawText(QPointF(16, 10 + fm.ascent()), title)
        x = 16 + fm.horizontalAdvance(title) + 24
        p.setFont(fonts["badge"])
        bm = QFontMetricsF(fonts["badge"])
        right = self.width() / self._scale - 8
        self.badges_drawn = 0
        for badge in self.badges:
            bw = bm.horizontalAdvance(badge) + 16
            box = QRectF(x, 10 + (fm.height() - bm.height() * 1.3) / 2, bw, bm.height() * 1.3)
            if box.right() > right:  # no room: "…" says that more was to say, if it fits
                box.setWidth(bm.horizontalAdvance("…") + 16)
                if box.right() <= right:
                    p.setPen(QPen(QColor(style.MUTED), style.pen(1)))
                    p.setBrush(Qt.BrushStyle.NoBrush)
                    p.drawRoundedRect(box, 6, 6)
                    p.drawText(box, Qt.AlignmentFlag.AlignCenter, "…")
                break
            colour = QColor(style.WARNING if badge.startswith("⚠") else style.MUTED)
            p.setPen(QPen(colour, style.pen(1.5 if badge.startswith("⚠") else 1)))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(box, 6, 6)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, badge)
            self.badges_drawn += 1
            x = box.right() + 10

    def _pen_for(self, edge: Edge, colour: str, width: float) -> QPen:
        pen = QPen(QColor(colour), style.pen(width))
        if edge.kind in ("linux", "reset", "jump", "timer"):
            pen.setStyle(Qt.PenStyle.DashLine)
        return pen

    def _route_of(self, edge: Edge) -> list[QPointF]:
        route = self._geo.routes.get(edge.key)
        if route is None:  # a reset, a jump: straight between the two boxes
            a, b = self._geo.rects[edge.source], self._geo.rects[edge.target]
            route = [_clip(a, a.center(), b.center()), _clip(b, b.center(), a.center())]
        return route

    def _paint_paths(self, p: QPainter) -> None:
        """The path each end walked, faint and wide, under the figure."""
        for side in SIDES:
            colour = QColor(style.CLIENT if side == "client" else style.SERVER)
            colour.setAlphaF(0.28)
            pen = QPen(colour, style.pen(9))
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            p.setPen(pen)
            offset = -3.0 if side == "client" else 3.0
            for step in self.paths[side]:
                route = self._route_of(step.edge)
                p.drawPolyline(QPolygonF([QPointF(q.x() + offset, q.y() + offset) for q in route]))

    def _paint_edges(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        strong = {side: e for side, e in self.last_edges.items() if e is not None}
        drawn = list(EDGES)
        drawn += [e for e in strong.values() if e not in EDGES]  # resets and jumps taken
        for edge in drawn:
            sides = [s for s, e in strong.items() if e == edge]
            if sides:
                colour = style.CLIENT if sides[-1] == "client" else style.SERVER
                pen = self._pen_for(edge, colour, 3.2)
            else:
                pen = self._pen_for(edge, style.MUTED if edge.kind == "rfc" else style.GREY, 1.3)
            route = self._route_of(edge)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPolyline(QPolygonF(route))
            self._arrow_head(p, route[-2], route[-1], pen.color(), 11 if sides else 8)
            rect = self._geo.labels.get(edge.key)
            text = self._edge_text(edge) if rect is not None else ""
            if edge.kind == "reset" and sides:  # placed here: taken, not laid out
                text = self._edge_text(edge)
                fm = QFontMetricsF(fonts["edge_strong"])
                mid = QPointF((route[0].x() + route[-1].x()) / 2, (route[0].y() + route[-1].y()) / 2)
                rect = QRectF(mid.x() + 6, mid.y() - fm.height() / 2,
                              fm.horizontalAdvance(text) + 8, fm.height() + 2)
            if rect is None or not text:
                continue
            p.setFont(fonts["edge_strong" if sides else "edge"])
            if sides:
                back = QColor(style.BACKGROUND)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(back)
                p.drawRoundedRect(rect, 4, 4)
            p.setPen(QColor(pen.color() if sides else style.MUTED))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    @staticmethod
    def _arrow_head(p: QPainter, a: QPointF, b: QPointF, colour: QColor, size: float) -> None:
        angle = math.atan2(b.y() - a.y(), b.x() - a.x())
        size = style.pen(size) if size > 9 else size
        left = QPointF(b.x() - size * math.cos(angle - 0.42), b.y() - size * math.sin(angle - 0.42))
        right = QPointF(b.x() - size * math.cos(angle + 0.42), b.y() - size * math.sin(angle + 0.42))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawPolygon(QPolygonF([b, left, right]))

    def _paint_nodes(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        here = {}
        for marker in self.markers.values():
            here.setdefault(marker.node, []).append(marker.side)
        p.setFont(fonts["node"])
        for node, rect in self._geo.rects.items():
            state = node.replace("/end", "")
            fill = style.state_colour(state)
            occupied = node in here
            if not occupied:
                fill = style.blend(fill.name(), style.BACKGROUND, 0.72)
            p.setPen(QPen(QColor(style.FOREGROUND if occupied else style.MUTED),
                          style.pen(2.4 if occupied else 1.0)))
            p.setBrush(fill)
            p.drawRoundedRect(rect, rect.height() / 2.6, rect.height() / 2.6)
            p.setPen(style.text_on(fill) if occupied else QColor(style.FOREGROUND))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, state)

    def _paint_loops(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        for loop in self.loops:
            arc, box, text = self._loop_geometry(loop, fonts)
            colour = QColor(style.CLIENT if loop.side == "client" else style.SERVER)
            pen = QPen(colour, style.pen(2.4))
            pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawArc(arc, 0, 180 * 16)
            self._arrow_head(p, QPointF(arc.right(), arc.center().y() - 4),
                             QPointF(arc.right(), arc.center().y() + 2), colour, 8)
            p.setFont(fonts["edge_strong"])
            p.setPen(colour)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _pill(self, side: str, marker: Marker, fonts: dict[str, QFont]) -> tuple[QRectF, str]:
        """The marker's pill where it rests: hanging under its box's corner (the client's
        left, the server's right), clear of the arrows that come in at the box's sides."""
        fm = QFontMetricsF(fonts["marker"])
        words = [self.tr(side)]
        if marker.check:
            words.append(marker.check)
        if marker.countdown:
            words.append(marker.countdown)
        text = " ".join(words)
        rect = self._geo.rects[marker.node]
        tw, th = fm.horizontalAdvance(text) + 14, fm.height() * 1.25
        y = rect.bottom() - th * 0.12  # under the box, its name left whole
        x = rect.left() - tw * 0.3 if side == "client" else rect.right() - tw * 0.7
        return QRectF(x, y, tw, th), text

    def _marker_at(self, side: str, marker: Marker, resting: QPointF) -> QPointF:
        """The marker's centre: where it rests, or on its way along its last arrow."""
        if side not in self._moving or self._progress >= 1.0:
            return resting
        edge = self.last_edges[side]
        if edge is None:
            return resting
        route = self._route_of(edge)
        lengths = [math.hypot(b.x() - a.x(), b.y() - a.y()) for a, b in zip(route, route[1:])]
        travelled = sum(lengths) * self._progress
        for (a, b), length in zip(zip(route, route[1:]), lengths):
            if travelled <= length and length > 0:
                share = travelled / length
                return QPointF(a.x() + (b.x() - a.x()) * share, a.y() + (b.y() - a.y()) * share)
            travelled -= length
        return resting

    def _paint_markers(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        for side in SIDES:
            marker = self.markers.get(side)
            if marker is None or marker.node not in self._geo.rects:
                continue
            pill, text = self._pill(side, marker, fonts)
            centre = self._marker_at(side, marker, pill.center())
            pill.moveCenter(centre)
            colour = QColor(style.CLIENT if side == "client" else style.SERVER)
            pen = QPen(QColor(style.FOREGROUND), style.pen(1.2))
            if marker.source == "inferred":  # as the sequence view's badges: dashed
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(colour)
            p.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
            p.setFont(fonts["marker"])
            p.setPen(style.text_on(colour))
            p.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_caption(self, p: QPainter, fonts: dict[str, QFont]) -> None:
        text = self._caption_lines()
        if not text:
            return
        width = self.width() / self._scale - 32
        box = QRectF(16, self._geo.bottom + 6, width, self.height() / self._scale - self._geo.bottom - 10)
        p.setFont(fonts["caption"])
        p.setPen(QColor(style.FOREGROUND))
        p.drawText(box, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
                            | Qt.TextFlag.TextWordWrap), text)


__all__ = ["DiagramView", "EDGES", "Edge", "Marker", "Step", "figure_edges"]
