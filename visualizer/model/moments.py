"""Key moments a view should say out loud, found in the events near the cursor.

A caption can say "the restart fails with EADDRINUSE" while the view only draws
sockets; these are the moments the window puts in a banner over the view, at the
event where each happened and for as long as it holds:

- ``eaddrinuse``: an engine could not bind its port (an ``error`` event with
  EADDRINUSE), until an engine starts again (the next ``mode`` event);
- ``syn_resent``: a client's SYN was sent again with the same sequence number (captured
  packets), or the kernel said it retransmitted in SYN_SENT: the first SYN got no
  answer. Shown for ``HOLD_NS`` after the retransmission;
- ``unread``: under edge-triggered epoll, a ``recv`` left bytes in the socket and the
  server went back to its wait without reading them (no EAGAIN, no second recv): no new
  edge will report them. Shown from that recv until the connection is read again or
  closes.

Only a bounded stretch of the log around the cursor is read (``BACK`` events before it,
the server's next ``AHEAD`` after a recv to see what it did next), so the cost per frame does
not grow with the session, and late events merged into the log change nothing here.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

BACK = 20_000  # events looked at before the cursor
AHEAD = 50  # the server's events looked at after a recv, for its next move
HOLD_NS = 1_500_000_000  # a resent SYN is said this long
SYNS_LOOKED = 32  # SYNs before the cursor looked at for a first try, at most


@dataclass(frozen=True)
class Moment:
    kind: str  # "eaddrinuse", "syn_resent", "unread"
    index: int  # the log index where it happened
    conn: str | None = None
    source: str = ""  # where the fact comes from: "captured", "observed", "recorded"...
    numbers: dict[str, Any] = field(default_factory=dict)


def moment_at(log: Any, cursor: int) -> Moment | None:
    """The key moment in force at ``cursor`` (the latest one), or None."""
    if cursor < 0 or not len(log):
        return None
    cursor = min(cursor, len(log) - 1)
    start = max(0, cursor - BACK)
    found = [m for m in (_eaddrinuse(log, start, cursor), _syn_resent(log, start, cursor),
                         _unread(log, start, cursor)) if m is not None]
    return max(found, key=lambda m: m.index) if found else None


def _eaddrinuse(log: Any, start: int, cursor: int) -> Moment | None:
    errors = log.indices(kinds=["error"], start=start, stop=cursor + 1)
    for i in reversed(errors.tolist()):
        d = log[i].data
        if d.get("what") != "EADDRINUSE" and d.get("errno") != errno.EADDRINUSE and \
                "EADDRINUSE" not in str(d.get("detail") or ""):
            continue
        if len(log.indices(kinds=["mode"], src="server", start=i + 1, stop=cursor + 1)):
            return None  # an engine started since: the moment has passed
        return Moment("eaddrinuse", i, None, "recorded",
                      {"port": d.get("port"), "reuseaddr": d.get("reuseaddr")})
    return None


def _syn_resent(log: Any, start: int, cursor: int) -> Moment | None:
    times = log.column("t_ns")
    now = int(times[cursor])
    looked = 0
    for i in reversed(log.indices(kinds=["packet", "retransmit"], start=start,
                                  stop=cursor + 1).tolist()):
        if now - int(times[i]) > HOLD_NS:
            return None
        e = log[i]
        if e.kind == "retransmit":
            if e.data.get("side") == "client" and e.data.get("state") == "SYN_SENT":
                return Moment("syn_resent", i, e.conn, str(e.data.get("source") or "observed"),
                              {"after_s": None, "count": None})
            continue
        if e.data.get("flags") != "SYN" or e.data.get("origin") != "captured" or e.conn is None:
            continue
        looked += 1
        if looked > SYNS_LOOKED:  # a load test's thousands of SYNs: the newest are enough
            return None
        seq = e.data.get("tcp_seq")
        same = [k for k in log.indices(kinds=["packet"], conn=e.conn, start=max(0, i - BACK),
                                       stop=i).tolist()
                if log[k].data.get("flags") == "SYN" and log[k].data.get("tcp_seq") == seq]
        if same:
            return Moment("syn_resent", i, e.conn, "captured",
                          {"after_s": (int(times[i]) - int(times[same[-1]])) / 1e9,
                           "count": len(same) + 1})
    return None


def _arrived(log: Any, conn: str, stop: int) -> int | None:
    """Bytes the client had sent on ``conn`` before ``stop``: its own send events, else
    its data segments (each sequence number once); None when nothing says."""
    sends = log.indices(kinds=["send"], src="client", conn=conn, stop=stop)
    if len(sends):
        return sum(int(log[k].data.get("bytes", 0)) for k in sends.tolist())
    seen: set[int] = set()
    total = 0
    for k in log.indices(kinds=["packet"], conn=conn, stop=stop).tolist():
        d = log[k].data
        if d.get("sender") == "client" and int(d.get("len", 0)) > 0 and d.get("tcp_seq") not in seen:
            seen.add(d.get("tcp_seq"))
            total += int(d["len"])
    return total if seen else None


def _new_edge(log: Any, conn: str, recv: int, moved: int, cursor: int) -> bool:
    """Did something new reach ``conn``'s socket by the cursor (its client closed or
    shut down, a FIN, or data after the server moved on)? Then there is a new edge."""
    if cursor <= recv:
        return False
    if len(log.indices(kinds=["close", "shutdown"], src="client", conn=conn, start=recv + 1,
                       stop=cursor + 1)):
        return True
    for j in log.indices(kinds=["packet"], conn=conn, start=recv + 1, stop=cursor + 1).tolist():
        d = log[j].data
        if d.get("sender") == "client" and ("FIN" in str(d.get("flags")) or (
                j > moved and int(d.get("len", 0)) > 0)):
            return True
    return False


def _unread(log: Any, start: int, cursor: int) -> Moment | None:
    modes = log.indices(kinds=["mode"], src="server", stop=cursor + 1)
    if not len(modes) or log[int(modes[-1])].data.get("trigger") != "edge":
        return None  # only edge-triggered epoll leaves bytes no report will name
    start = max(start, int(modes[-1]))
    for i in reversed(log.indices(kinds=["recv"], src="server", start=start,
                                  stop=cursor + 1).tolist()):
        e = log[i]
        conn = e.conn
        if conn is None:
            continue
        # Read again, or closed, by the cursor: whatever this recv left is handled.
        if len(log.indices(kinds=["recv", "eagain", "close"], src="server", conn=conn,
                           start=i + 1, stop=cursor + 1)):
            return None
        # What the server did next: back to its wait (or to another socket) leaves the
        # bytes; another recv or an EAGAIN on this one means it was draining.
        nxt = log.indices(src="server", start=i + 1, stop=min(len(log), i + 1 + BACK))
        for k in nxt[:AHEAD].tolist():
            n = log[k]
            if n.conn == conn and n.kind in ("recv", "eagain"):
                return None
            if n.kind in ("epoll_wait", "wait") or (n.conn is not None and n.conn != conn):
                # What had arrived by then (a client's send is stamped when its call
                # returns, which may come after the server's recv took the bytes).
                arrived = _arrived(log, conn, k)
                if arrived is None:
                    return None
                read = sum(int(log[j].data.get("bytes", 0)) for j in log.indices(
                    kinds=["recv"], src="server", conn=conn, stop=i + 1).tolist())
                left = arrived - read
                if left <= 0:
                    return None
                if _new_edge(log, conn, i, k, cursor):
                    return None  # something new arrived: epoll reports the fd again
                sent = len(log.indices(kinds=["send"], src="client", conn=conn, stop=k))
                return Moment("unread", i, conn, "recorded" if sent else "captured",
                              {"bytes": left, "fd": e.fd, "read": read, "arrived": arrived})
        return None
    return None
