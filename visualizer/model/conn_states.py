"""One connection's TCP states as the views read them, Qt-free: ``tcp_state`` and
``state_check`` events decoded once, and the kernel's word (✓, ✗) put on the state it
speaks of. The sequence view's lanes and the state diagram's markers both stand on
``lane_marks``, so the two pictures badge a state alike."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from engine.events import Event

from .log import EventLog

TIME_WAIT_MS = 60_000  # Linux's TIME_WAIT (2 MSL); observed states carry the real countdown


def split_conn(conn: str) -> tuple[str, str]:
    """A connection id's client and server addresses."""
    client, _, server = conn.partition(">")
    return client, server


def conn_port(address: str) -> int:
    """An address's port (-1 if it has none)."""
    try:
        return int(address.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return -1


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
    trigger: str = ""  # what caused it: "rcv FIN", "snd SYN" (segments), "eof" (syscalls)
    segment: str = ""  # the flags of the segment that caused it ("FIN|ACK")
    origin: str = ""  # that segment's: "captured" or "derived"


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


def newest_with(log: EventLog, cursor: int, kind: str) -> str | None:
    """The newest connection with a ``kind`` event at or before ``cursor`` (connection
    codes follow first appearance: the largest is the newest). It reads back from the
    cursor in a window that doubles, so a busy log answers without a scan of it all."""
    code = log.kinds.codes.get(kind)
    if code is None or cursor < 0:
        return None
    kinds, conns = log.column("kind"), log.column("conn")
    stop, width = cursor + 1, 4096
    for _ in range(64):  # the window doubles: bounded
        start = max(0, stop - width)
        hits = np.flatnonzero(kinds[start:stop] == code)
        if len(hits):
            found = log.conns.names[int(conns[start:stop][hits].max())]
            if found is not None:
                return found
        if start == 0:
            return None
        width *= 2
    return None


class ConnectionData(Protocol):
    """What ``lane_marks`` reads: a connection's changes and checks, with their log
    indices, in log order."""

    change_index: list[int]
    changes: list[Change]
    check_index: list[int]
    checks: list[Check]


def decode_change(e: Event) -> Change:
    """A ``tcp_state`` event of a side ("client" or "server")."""
    d = e.data
    expires = d.get("expires_ms")
    return Change(e.t_ns, str(d["side"]), str(d.get("state") or "CLOSED"), d.get("previous"),
                  d.get("source"), tuple(d.get("via") or ()),
                  int(expires) if isinstance(expires, (int, float)) else None,
                  str(d.get("trigger") or ""), str(d.get("segment") or ""),
                  str(d.get("origin") or ""))


def decode_check(e: Event) -> Check:
    """A ``state_check`` event of a side."""
    d = e.data
    expires = d.get("expires_ms")
    return Check(e.t_ns, str(d["side"]), str(d.get("state")), str(d.get("source")),
                 d.get("verdict"), int(expires) if isinstance(expires, (int, float)) else None)


def confirm(mark: "LaneMark", check: "Check") -> None:
    """The kernel confirmed the mark's state: ✓ (the tracepoint's word over a poll's)."""
    if mark.check != "✓" or check.source == "traced":
        mark.check, mark.checked_by = "✓", check.source
        mark.text = f"{mark.state} ✓"


def lane_marks(data: "ConnectionData", count: int, checks: int
               ) -> tuple[list[LaneMark], dict[str, "Change"], dict[str, "Check"]]:
    """The first ``count`` state changes of a connection as marks, each with the kernel's
    word on it from its first ``checks`` checks (✓ confirmed, ✗ contradicted); with each
    side's latest change and its latest TIME_WAIT report. The sequence view's lanes and
    the state diagram's markers both stand on these, so they badge a state alike."""
    all_marks: list[LaneMark] = []
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
            all_marks.append(mark)
            marks[c.side] = mark
            last[c.side] = c
            waiting = early.pop(c.side, None)
            if waiting is not None and waiting.state == c.state:
                confirm(mark, waiting)
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
            recent = [m for m in all_marks[-4:] if m.side == check.side][-2:]
            match = next((m for m in reversed(recent) if m.state == check.state), None)
            if match is not None:
                confirm(match, check)
            else:
                early[check.side] = check
        elif mark is not None and not mark.check:
            mark.check, mark.checked_by = f"✗ {check.state}", check.source
            mark.text = f"{mark.state} ✗ {check.state}"
    return all_marks, last, tw_report


class ConnectionStates:
    """One connection's state changes, the kernel's checks and its segments' flags, read
    from the whole log once and extended as it grows (read again if a late batch moved
    them). A view takes the prefix up to the cursor (``np.searchsorted`` on the arrays).

    A segment is ``repeats`` when its sender sent the same SYN, FIN or data (same flags,
    sequence number and length) before: the kernel's retransmission. A client SYN after
    a FIN or RST opens the port pair anew, and is no repeat."""

    def __init__(self, conn: str) -> None:
        self.conn = conn
        self.client_port = conn_port(split_conn(conn)[0])
        self.length = -1
        self.indices = np.empty(0, np.int64)
        self.change_index: list[int] = []
        self.changes: list[Change] = []
        self.check_index: list[int] = []
        self.checks: list[Check] = []
        self.seg_index: list[int] = []
        self.senders: list[str] = []
        self.flags: list[str] = []
        self.repeats: list[bool] = []
        self._sent: set[tuple] = set()
        self._ended = False
        self.change_array = self.check_array = self.seg_array = np.empty(0, np.int64)

    def update(self, log: EventLog) -> None:
        if self.length == len(log):
            return
        indices = log.indices(conn=self.conn, kinds=("packet", "tcp_state", "state_check"))
        old = self.indices
        if not (len(indices) >= len(old) and np.array_equal(indices[:len(old)], old)):
            self.__init__(self.conn)  # type: ignore[misc]  # a merge moved them: start over
            old = self.indices
        self.length, self.indices = len(log), indices
        for i in indices[len(old):].tolist():
            e = log[i]
            d = e.data
            if e.kind == "packet":
                self._add_segment(i, d)
            elif d.get("side") not in ("client", "server"):
                continue
            elif e.kind == "tcp_state":
                self.change_index.append(i)
                self.changes.append(decode_change(e))
            else:
                self.check_index.append(i)
                self.checks.append(decode_check(e))
        self.change_array = np.asarray(self.change_index, np.int64)
        self.check_array = np.asarray(self.check_index, np.int64)
        self.seg_array = np.asarray(self.seg_index, np.int64)

    def _add_segment(self, index: int, d: dict) -> None:  # type: ignore[type-arg]
        sender = d.get("sender")
        if sender not in ("client", "server"):
            sender = "server" if d.get("sport") != self.client_port \
                and d.get("dport") == self.client_port else "client"
        flags = str(d.get("flags") or "")
        parts = flags.split("|")
        length = int(d.get("len") or 0)
        if parts == ["SYN"] and sender == "client" and self._ended:
            self._sent.clear()  # the port pair used again: a new connection, not a resend
            self._ended = False
        if "FIN" in parts or "RST" in parts:
            self._ended = True
        key = (sender, flags, int(d.get("tcp_seq") or 0), length)
        carries = length > 0 or "SYN" in parts or "FIN" in parts
        self.repeats.append(carries and "RST" not in parts and key in self._sent)
        if carries:
            self._sent.add(key)
        self.seg_index.append(index)
        self.senders.append(str(sender))
        self.flags.append(flags)
