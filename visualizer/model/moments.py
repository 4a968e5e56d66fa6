"""Key moments a view should say out loud, found in the events near the cursor.

A caption can say "the restart fails with EADDRINUSE" while the view only draws
sockets; these are the moments the window puts in a banner over the view, at the
event where each happened and for as long as it holds:

- ``eaddrinuse``: an engine could not bind its port (an ``error`` event with
  EADDRINUSE), until an engine starts again (the next ``mode`` event);
- ``syn_resent``: a client's SYN was sent again with the same sequence number (captured
  packets), or the kernel said it retransmitted in SYN_SENT: the first SYN got no
  answer. Shown for ``HOLD_NS`` after the retransmission;
- ``unread``: under edge-triggered epoll, a ``recv`` left bytes that had arrived before
  it, and the server does not read that fd again before something new arrives: no
  report will name them. Shown from that recv until the fd is read again or something
  new reaches it (a segment, a FIN, a report of the fd).

Only a bounded stretch of the log around the cursor is read (``BACK`` events before it,
and after a recv as many, to see whether the server drains what it left), so the cost per frame does
not grow with the session, and late events merged into the log change nothing here.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

BACK = 20_000  # events looked at before the cursor
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
        if d.get("what") != "EADDRINUSE" and d.get("errno") not in (errno.EADDRINUSE,
                                                                     "EADDRINUSE") and \
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


def _from_client(d: dict, conn: str) -> bool:
    """Whether a packet event's segment went client to server: its ``sender`` where a
    writer says it, else its destination port (the server's, after the id's ">")."""
    if d.get("sender") is not None:
        return d.get("sender") == "client"
    try:
        return int(d.get("dport") or -1) == int(conn.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return False


def _arrived(log: Any, conn: str, before: int) -> tuple[int, str] | None:
    """Bytes known to have reached ``conn``'s socket before the event ``before`` happened
    (by time: a trace keeps events in the order they were written, and a capture thread
    writes a segment after the server's recv may have been), and from where: the
    captured client data segments (stamped by the kernel as they went; each sequence
    number once, dropped ones not), else the client's own send events. A send is stamped
    when its call returns, which may come after the server's recv took the bytes: then
    they are not counted (a moment missed, never one made up). None when nothing says."""
    times = log.column("t_ns")
    limit = int(times[before])
    seen: set[Any] = set()
    total = 0
    for k in log.indices(kinds=["packet"], conn=conn).tolist():
        if int(times[k]) >= limit:
            continue
        d = log[k].data
        if not _from_client(d, conn) or d.get("origin") != "captured" or d.get("dropped"):
            continue
        size = int(d.get("len") or 0)
        if size > 0 and d.get("tcp_seq") not in seen:
            seen.add(d.get("tcp_seq"))
            total += size
    if seen:
        return total, "captured"
    sends = [k for k in log.indices(kinds=["send"], src="client", conn=conn).tolist()
             if int(times[k]) < limit]
    if sends:
        return sum(int(log[k].data.get("bytes") or 0) for k in sends), "recorded"
    return None


def _edges(log: Any, conn: str, fd: int, start: int, stop: int, arrived: int) -> list[int]:
    """Where something new reached ``conn``'s socket in ``[start, stop)``: its client
    sent bytes past the ``arrived`` ones, shut down or closed, a client segment with data
    or a FIN, or a wait reported the fd (an edge-triggered report is an edge: whatever
    was there is said again). A send is stamped when its call returns, which may be after
    the recv that took its bytes (a CI rehearsal under load): such a send brings nothing
    new, so sends count by their bytes, not by where they sit."""
    found = log.indices(kinds=["close", "shutdown"], src="client", conn=conn,
                        start=start, stop=stop).tolist()
    sent = 0
    for j in log.indices(kinds=["send"], src="client", conn=conn, stop=stop).tolist():
        sent += int(log[j].data.get("bytes") or 0)
        if j >= start and sent > arrived:
            found.append(j)
            break
    for j in log.indices(kinds=["packet"], conn=conn, start=start, stop=stop).tolist():
        d = log[j].data
        if _from_client(d, conn) and ("FIN" in str(d.get("flags")) or
                                      int(d.get("len") or 0) > 0):
            found.append(j)
    for j in log.indices(kinds=["epoll_wait", "wait"], src="server", start=start,
                         stop=stop).tolist():
        if any(pair and pair[0] == fd for pair in log[j].data.get("ready") or ()):
            found.append(j)
            break
    return sorted(found)


def _unread(log: Any, start: int, cursor: int) -> Moment | None:
    """The latest recv at or before the cursor left bytes that had arrived before it, the
    server has not read that fd since, and nothing new has reached it (no new edge):
    under edge-triggered epoll no report will name them. A server that drains (its next
    call on the fd is another recv, before anything new arrives) is not shown."""
    modes = log.indices(kinds=["mode"], src="server", stop=cursor + 1)
    if not len(modes) or log[int(modes[-1])].data.get("trigger") != "edge":
        return None  # only edge-triggered epoll leaves bytes no report will name
    start = max(start, int(modes[-1]))
    recvs = log.indices(kinds=["recv"], src="server", start=start, stop=cursor + 1)
    if not len(recvs):
        return None
    i = int(recvs[-1])
    e = log[i]
    conn, fd = e.conn, e.fd
    if conn is None:
        return None
    if len(log.indices(kinds=["recv", "eagain", "close"], src="server", conn=conn,
                       start=i + 1, stop=cursor + 1)):
        return None  # read again, or closed, by the cursor
    known = _arrived(log, conn, i)
    if known is None:
        return None
    arrived, source = known
    read = sum(int(log[j].data.get("bytes") or 0) for j in
               log.indices(kinds=["recv"], src="server", conn=conn, stop=i + 1).tolist())
    left = arrived - read
    if left <= 0 or _edges(log, conn, fd, i + 1, cursor + 1, arrived):
        return None
    # Draining: the server's next call on this fd comes before anything new arrives.
    ahead = min(len(log), i + 1 + BACK)
    calls = log.indices(kinds=["recv", "eagain"], src="server", conn=conn, start=i + 1,
                        stop=ahead)
    if len(calls):
        edges = _edges(log, conn, fd, i + 1, int(calls[0]), arrived)
        if not edges:
            return None
    return Moment("unread", i, conn, source,
                  {"bytes": left, "fd": fd, "read": read, "arrived": arrived})
