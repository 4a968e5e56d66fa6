"""Both ends' TCP states, from the segments they exchange.

A TCP state changes when a segment is sent or received (or a timer fires).
So the segments of a connection, captured on the wire or derived from the
syscalls, tell each end's states and *where* each change happened: at the
segment that caused it. Polling the kernel cannot: on loopback SYN_SENT and
SYN_RECV last about 20 µs and LAST_ACK even less, far shorter than a poll,
and a state a poll does see is placed at the poll's time, up to a poll late.

``SegmentStates`` is a probe sink for ``packet`` events. It runs RFC 9293's
state machine (its Figure 5) for both ends as Linux applies it, and emits a
``tcp_state`` event for every change, ``source="inferred"``, with the
``trigger`` ("rcv FIN", "snd SYN"...) and the segment's ``origin``
("captured" or "derived"). A change caused by receiving a segment is dated at
that segment (after it in the log); one caused by sending (connect() sends a
SYN, close() a FIN) is dated 1 ns before the segment it sent: the state
changed first, then the segment left. The same segments always give the same
states, so a lesson shows the same picture on every run.

The machine is the table ``TRANSITIONS``, (state, trigger) -> next state, one
source for the machine and for any picture of it. A segment gives each end
its triggers in the order RFC 9293 processes a segment's parts (RST, SYN,
ACK, then FIN), so the ACK of our FIN riding on the peer's FIN takes
FIN_WAIT_1 to FIN_WAIT_2 and then the FIN takes it to TIME_WAIT, as Linux
reports it (``sock:inet_sock_set_state``: FIN_WAIT1 -> FIN_WAIT2 -> CLOSE
into a time-wait sock, within a microsecond).

What segments cannot tell, and is left to the kernel observer (sock_diag):
TIME_WAIT's end (a 60 s timer on Linux), timers and queues. A segment the
capture saw but a firewall rule dropped on its way in (the lab's faults,
marked ``dropped`` by the capture) changes its sender only: its receiver
never got it.
A connection whose SYN was not seen (capture started mid-connection) gets
no states from here, and the observer speaks for it (``checks.py``).
"""
from __future__ import annotations

import threading

from ..events import Event, Probe

# (state, trigger) -> next state. "snd X": this end sends a segment with X;
# "rcv X": this end receives one. "rcv ACK" means an ACK of what this end is
# waiting to see acknowledged (its SYN in SYN_RECV, its FIN after sending it).
TRANSITIONS: dict[tuple[str, str], str] = {
    ("CLOSED", "snd SYN"): "SYN_SENT",           # connect()
    # The SYN|ACK, not the SYN, proves the half-open connection exists: a SYN that
    # finds the accept queue full is dropped, and the listener stays as it was.
    ("LISTEN", "snd SYN|ACK"): "SYN_RECV",
    ("SYN_SENT", "rcv SYN|ACK"): "ESTABLISHED",  # and our ACK completes the handshake
    ("SYN_SENT", "rcv SYN"): "SYN_RECV",         # simultaneous open
    ("SYN_RECV", "rcv ACK"): "ESTABLISHED",
    ("SYN_RECV", "snd FIN"): "FIN_WAIT_1",
    ("ESTABLISHED", "snd FIN"): "FIN_WAIT_1",    # close() or shutdown(SHUT_WR) first
    ("ESTABLISHED", "rcv FIN"): "CLOSE_WAIT",    # the peer closed first
    ("FIN_WAIT_1", "rcv ACK"): "FIN_WAIT_2",
    ("FIN_WAIT_1", "rcv FIN"): "CLOSING",        # the FINs crossed: simultaneous close
    ("FIN_WAIT_2", "rcv FIN"): "TIME_WAIT",
    ("CLOSING", "rcv ACK"): "TIME_WAIT",
    ("CLOSE_WAIT", "snd FIN"): "LAST_ACK",
    ("LAST_ACK", "rcv ACK"): "CLOSED",
    **{(state, trigger): "CLOSED"
       for state in ("SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
                     "CLOSE_WAIT", "CLOSING", "LAST_ACK")
       for trigger in ("snd RST", "rcv RST")},
}

# What each trigger means, for captions and a diagram's arrow labels.
TRIGGERS: dict[str, str] = {
    "snd SYN": "connect(): send SYN",
    "snd SYN|ACK": "receive SYN, send SYN,ACK (a half-open connection)",
    "rcv SYN": "receive SYN (simultaneous open)",
    "rcv SYN|ACK": "receive SYN,ACK, send ACK",
    "rcv ACK": "receive the ACK of what this end sent (its SYN or its FIN)",
    "snd FIN": "close() or shutdown(): send FIN",
    "rcv FIN": "receive FIN, send ACK",
    "snd RST": "send RST (an abort)",
    "rcv RST": "receive RST",
}

_MOD = 1 << 32
_FINISHED = frozenset({"CLOSED", "TIME_WAIT"})
_REMEMBER = 100_000  # connections followed at once; the oldest unfinished one goes first


def _acks(ack: int, fin_end: int) -> bool:
    """Whether acknowledgment number ``ack`` covers ``fin_end`` (mod 2**32)."""
    return (ack - fin_end) % _MOD < (_MOD >> 1)


class _End:
    __slots__ = ("state", "fin_end", "isn")

    def __init__(self, state: str) -> None:
        self.state = state
        self.fin_end: int | None = None  # sequence number just after this end's FIN
        self.isn = 0  # the client's: its SYN's sequence number


class SegmentStates:
    """A probe sink: ``packet`` events in, ``tcp_state`` events (source "inferred") out.

    ``port`` is the server's port: a captured segment from it is the
    server's. Derived segments name their ``sender``. Thread-safe (the
    capture thread and the deriver's callers may both feed it).
    """

    def __init__(self, probe: Probe, port: int) -> None:
        self.probe = probe
        self.port = int(port)
        self._conns: dict[str, dict[str, _End]] = {}
        self._lock = threading.Lock()
        self.emitted = 0

    def __call__(self, event: Event) -> None:
        if event.kind != "packet" or event.conn is None:
            return
        d = event.data
        sender = d.get("sender")
        if sender not in ("client", "server"):
            sender = "server" if d.get("sport") == self.port else "client"
        flags = str(d.get("flags") or "")
        if flags == "ACK" or flags == "PSH|ACK":
            # Most segments, under load: data and ACKs of an open connection. Only an ACK
            # to a SYN_RECV end or of a FIN changes a state; anything else returns here,
            # as the whole path below would, without building its sets.
            ends = self._conns.get(event.conn)
            if ends is None:
                return
            peer = ends["server" if sender == "client" else "client"]
            if peer.state != "SYN_RECV" and peer.fin_end is None:
                return
        parts = set(flags.split("|"))
        with self._lock:
            conn = event.conn
            ends = self._conns.get(conn)
            seq = int(d.get("tcp_seq") or 0)
            opening = parts == {"SYN"} and sender == "client"
            if ends is not None and opening and ends["client"].state not in ("CLOSED", "SYN_SENT") \
                    and (d.get("relative") or seq != ends["client"].isn):
                # A new connection on the same port pair (another initial sequence number;
                # derived segments are never resent): the old one is over. The same SYN
                # again is a retransmission, and changes nothing.
                ends = None
            if ends is None:
                if not opening:
                    return  # not a connection's start: nothing to build on
                ends = self._conns[conn] = {"client": _End("CLOSED"), "server": _End("LISTEN")}
                ends["client"].isn = seq
                if len(self._conns) > _REMEMBER:  # never finished (a SYN that gave up...)
                    del self._conns[next(iter(self._conns))]
            receiver = "server" if sender == "client" else "client"
            me, peer = ends[sender], ends[receiver]
            t = event.t_ns
            origin = d.get("origin")
            length = int(d.get("len") or 0)
            # The sender first: its state changed before the segment left.
            if "RST" in parts:
                self._step(conn, sender, me, "snd RST", t - 1, flags, origin)
                self._step(conn, receiver, peer, "rcv RST", t, flags, origin)
            else:
                if parts == {"SYN"}:
                    self._step(conn, sender, me, "snd SYN", t - 1, flags, origin)
                elif parts == {"SYN", "ACK"}:
                    self._step(conn, sender, me, "snd SYN|ACK", t - 1, flags, origin)
                if "FIN" in parts:
                    me.fin_end = (seq + length + 1) % _MOD
                    self._step(conn, sender, me, "snd FIN", t - 1, flags, origin)
                # The receiver, in the order a segment's parts are processed: unless a
                # firewall rule dropped the segment on its way in (the lab's faults).
                if d.get("dropped"):
                    pass
                elif "SYN" in parts:
                    if "ACK" in parts:
                        self._step(conn, receiver, peer, "rcv SYN|ACK", t, flags, origin)
                    elif receiver == "client":  # the server's SYN: a simultaneous open
                        self._step(conn, receiver, peer, "rcv SYN", t, flags, origin)
                elif "ACK" in parts:
                    if peer.state == "SYN_RECV" or (
                            peer.fin_end is not None and _acks(int(d.get("ack") or 0),
                                                               peer.fin_end)):
                        self._step(conn, receiver, peer, "rcv ACK", t, flags, origin)
                if "FIN" in parts and not d.get("dropped"):
                    self._step(conn, receiver, peer, "rcv FIN", t, flags, origin)
            if me.state in _FINISHED and peer.state in _FINISHED:
                del self._conns[conn]

    def _step(self, conn: str, side: str, end: _End, trigger: str, t: int, flags: str,
              origin: object) -> None:
        target = TRANSITIONS.get((end.state, trigger))
        if target is None:
            return
        previous, end.state = end.state, target
        self.emitted += 1
        if self.probe.active:
            self.probe.emit_at(t, "tcp_state", conn, -1, 0, side=side, state=target,
                               previous=previous, source="inferred", trigger=trigger,
                               segment=flags, origin=origin)


__all__ = ["SegmentStates", "TRANSITIONS", "TRIGGERS"]
