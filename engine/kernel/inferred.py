"""TCP states inferred from syscalls, where the kernel cannot be asked.

On macOS and Windows there is no sock_diag and no /proc/net/tcp, so the
observer cannot run. ``StateInference`` is a probe sink: feed it the server's
and the clients' own events (``connect``, ``accept``, ``recv`` with 0 bytes,
``shutdown``, ``close``, ``error``) and it emits, through its own probe (src
"kernel"), the ``tcp_state`` events those syscalls imply, each marked
``source="inferred"``. It follows the TCP state machine only as far as the
syscalls prove it; where they do not, it says nothing.

The machine is the table ``TRANSITIONS``: (state, trigger) -> ``Transition``.
A trigger is a fact the events establish (``TRIGGERS`` lists them). A missing
entry means the trigger leaves that end's state as it was, as far as anyone
can tell; an entry whose target is None means the state can no longer be
told apart: the end is marked unknown and gets no more events. ``via`` lists
states the kernel passed through that no syscall timed: they are named in
the event (``via``), never emitted as states of their own. The same table can
draw the lesson's diagram (``diagram_edges``).

Never inferred, and therefore never emitted:

- SYN_SENT and SYN_RECV: they last inside connect(), or before accept(), for
  about 20 µs on loopback; the events only prove they are over.
- FIN_WAIT_2: the peer's ACK of our FIN may leave at once, wait for the
  delayed-ACK timer (40 ms or more on Linux) or ride on the peer's own FIN.
  Nothing in the syscalls says which, so the first closer goes from
  FIN_WAIT_1 to TIME_WAIT with ``via=["FIN_WAIT_2"]``.
- CLOSING (a simultaneous close, both FINs crossing): it cannot be told from
  the ordinary close. An end that closes after its peer's FIN left but before
  it read end-of-file is in LAST_ACK or in CLOSING: it becomes unknown.
- CLOSE_WAIT at the moment the FIN arrives: it is reported when this end's
  recv() returns 0, which is later.
- TIME_WAIT -> CLOSED: a kernel timer (60 s on Linux, other values on macOS
  and Windows) with no syscall to show it.
- LAST_ACK -> CLOSED when the peer is not ours (a browser, curl): its ACK is
  not seen. With both ends ours, the peer in TIME_WAIT answers at once.
- Any state of an end whose own syscalls we do not see.
- The RST a close() sends when unread data is still in the receive buffer:
  the events do not show unread data, so such a close counts as a FIN.
- What follows a close after an unexplained error (client "error", server
  "oserror"): the end becomes unknown.

Order. A recv() that returns 0 proves the peer's FIN left: the peer's FIN is
taken from it when the peer's own ``close``/``shutdown`` event has not come
yet (a peer in another process or thread may report it late). Otherwise the order of events
is taken as the order of the syscalls. The engine emits ``close`` just before
calling close(), so two ends closing in the same instant, from different
threads, may be taken in the wrong order.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator

from ..events import Event, Probe

SIDES = ("client", "server")
UNKNOWN = "UNKNOWN"  # internal: the syscalls no longer tell this end's state (never emitted)


@dataclass(frozen=True, slots=True)
class Transition:
    target: str | None  # None: cannot be told; the end becomes unknown
    via: tuple[str, ...]  # states passed through untimed
    why: str


# The facts events establish, per end of a connection.
TRIGGERS: dict[str, str] = {
    "connect": "this end's connect() returned",
    "accept": "accept() returned this end",
    "fin": "this end called close() or shutdown(SHUT_WR): its FIN leaves",
    "fin_unread": "this end closed after its peer's FIN left, without having read end-of-file",
    "eof": "this end's recv() returned 0: the peer's FIN has arrived",
    "peer_fin": "the peer end closed or shut down writing: its FIN leaves",
    "peer_ack": "the peer end, in TIME_WAIT, acknowledges this end's FIN",
    "reset": "a reset ended this end (abort with SO_LINGER 0, ECONNRESET, EPIPE)",
    "unclear": "this end closed after an error the events do not explain",
}

_OPEN_STATES = ("ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT_1", "LAST_ACK")

TRANSITIONS: dict[tuple[str, str], Transition] = {
    ("CLOSED", "connect"): Transition(
        "ESTABLISHED", ("SYN_SENT",),
        "connect() returns once the handshake is complete; SYN_SENT lasted inside the call"),
    ("CLOSED", "accept"): Transition(
        "ESTABLISHED", ("SYN_RECV",),
        "accept() hands over connections whose handshake completed while queued"),
    ("ESTABLISHED", "fin"): Transition(
        "FIN_WAIT_1", (), "our FIN is sent; its ACK has not been seen"),
    ("ESTABLISHED", "eof"): Transition(
        "CLOSE_WAIT", (), "the peer's FIN arrived (recv returned 0); we have not closed"),
    ("ESTABLISHED", "fin_unread"): Transition(
        None, (), "LAST_ACK if the peer's FIN had arrived, FIN_WAIT_1 then CLOSING (a "
                  "simultaneous close) if not: nothing tells which"),
    ("CLOSE_WAIT", "fin"): Transition(
        "LAST_ACK", (), "we close after the peer: our FIN waits for the last ACK"),
    ("LAST_ACK", "peer_ack"): Transition(
        "CLOSED", (), "the peer, in TIME_WAIT, acknowledges our FIN"),
    ("FIN_WAIT_1", "peer_fin"): Transition(
        "TIME_WAIT", ("FIN_WAIT_2",),
        "both FINs are out: the peer acknowledged ours (at once, delayed, or on its FIN; "
        "CLOSING instead if the FINs crossed) and we acknowledge its FIN"),
    ("FIN_WAIT_1", "eof"): Transition(
        "TIME_WAIT", ("FIN_WAIT_2",),
        "after our shutdown the peer's FIN arrived: both FINs are out"),
    **{(state, "reset"): Transition("CLOSED", (), "a reset ends the connection at once")
       for state in _OPEN_STATES},
    **{(state, "unclear"): Transition(None, (), "closed after an unexplained error")
       for state in _OPEN_STATES},
}

# close() reasons the engine and the built-in clients give.
RESET_REASONS = frozenset({"abort (RST)", "reset", "epipe"})
UNCLEAR_REASONS = frozenset({"error", "oserror"})
_RELEVANT_KINDS = frozenset({"connect", "accept", "recv", "shutdown", "close", "error"})


def diagram_edges() -> Iterator[tuple[str, str, str, tuple[str, ...]]]:
    """(from, to, trigger, via) for every transition that emits: a diagram's arrows."""
    for (state, trigger), t in TRANSITIONS.items():
        if t.target is not None:
            yield state, t.target, trigger, t.via


class _End:
    __slots__ = ("state", "opened", "fin_sent", "released", "fd", "thread")

    def __init__(self) -> None:
        self.state = "CLOSED"
        self.opened = False  # its own connect/accept was seen: we speak for it
        self.fin_sent = False
        self.released = False  # its close was seen: no more events will come from it
        self.fd = -1
        self.thread = 0


class StateInference:
    """A probe sink that infers TCP states from both ends' syscall events.

    Add it to the server's probe and to the clients' probe; read its events
    from ``self.probe`` (src "kernel"). Thread-safe: the server loop and the
    client threads call it concurrently. Connections are forgotten once every
    end we speak for has closed its socket.
    """

    def __init__(self, probe: Probe | None = None) -> None:
        self.probe = probe if probe is not None else Probe("kernel")
        self._conns: dict[str, dict[str, _End]] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        side, kind, conn_id = event.src, event.kind, event.conn
        if conn_id is None or side not in SIDES or kind not in _RELEVANT_KINDS:
            return
        with self._lock:
            ends = self._conns.get(conn_id)
            if ends is None:
                if not ((kind == "connect" and side == "client")
                        or (kind == "accept" and side == "server")):
                    return  # a connection we did not see open: nothing to build on
                ends = self._conns[conn_id] = {"client": _End(), "server": _End()}
            me = ends[side]
            if event.fd >= 0:
                me.fd = event.fd
            me.thread = event.thread
            data = event.data
            if kind in ("connect", "accept"):
                if me.opened:
                    return
                me.opened = True
                self._step(conn_id, side, me, kind)
                return
            if not me.opened:
                return
            if kind == "recv":
                if data.get("bytes") == 0:
                    # End-of-file proves the peer's FIN left, even when the peer's
                    # own close/shutdown event has not come yet (another thread or
                    # process may report it late): take it first.
                    peer_side = "server" if side == "client" else "client"
                    if ends[peer_side].opened:
                        self._fin(conn_id, ends, peer_side)
                    self._step(conn_id, side, me, "eof")
            elif kind == "shutdown":
                if data.get("how") in ("SHUT_WR", "SHUT_RDWR"):
                    self._fin(conn_id, ends, side)
            elif kind == "error":
                if data.get("what") in ("reset", "epipe"):
                    self._step(conn_id, side, me, "reset")
            elif kind == "close" and data.get("last") is False:
                pass  # one copy of a forked socket closed: the socket itself is still open
            elif kind == "close":
                reason = str(data.get("reason", ""))
                if reason in RESET_REASONS or "RST" in reason:
                    self._step(conn_id, side, me, "reset")
                elif reason in UNCLEAR_REASONS:
                    self._step(conn_id, side, me, "unclear")
                else:
                    self._fin(conn_id, ends, side)
                me.released = True
            self._settle(conn_id, ends)
            if all(e.released or not e.opened for e in ends.values()):
                del self._conns[conn_id]

    # ------------------------------------------------------------ machine
    def _fin(self, conn_id: str, ends: dict[str, _End], side: str) -> None:
        me = ends[side]
        peer_side = "server" if side == "client" else "client"
        peer = ends[peer_side]
        if me.fin_sent or me.state not in ("ESTABLISHED", "CLOSE_WAIT"):
            return  # already sent, or no FIN can leave (reset, unknown)
        me.fin_sent = True
        unread = me.state == "ESTABLISHED" and peer.fin_sent
        self._step(conn_id, side, me, "fin_unread" if unread else "fin")
        if peer.opened:
            self._step(conn_id, peer_side, peer, "peer_fin")

    def _settle(self, conn_id: str, ends: dict[str, _End]) -> None:
        """An end in LAST_ACK is answered at once by a peer of ours in TIME_WAIT."""
        for side, other in (("client", "server"), ("server", "client")):
            me, peer = ends[side], ends[other]
            if me.state == "LAST_ACK" and peer.opened and peer.state == "TIME_WAIT":
                self._step(conn_id, side, me, "peer_ack")

    def _step(self, conn_id: str, side: str, end: _End, trigger: str) -> None:
        transition = TRANSITIONS.get((end.state, trigger))
        if transition is None:
            return
        previous = end.state
        if transition.target is None:
            end.state = UNKNOWN
            return
        end.state = transition.target
        if self.probe.active:
            self.probe.emit("tcp_state", conn_id, end.fd, end.thread, side=side,
                            state=transition.target, previous=previous, source="inferred",
                            trigger=trigger, via=list(transition.via))


__all__ = ["StateInference", "TRANSITIONS", "TRIGGERS", "Transition", "diagram_edges"]
