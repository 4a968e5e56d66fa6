"""Derived packets: the TCP segments a connection must have exchanged, worked
out from the syscalls both ends made (and the kernel states observed), for
machines where real packets cannot be captured.

What can be derived, and how (sequence numbers are relative: ISN = 0):

- the three-way handshake, when a connection is first seen (``connect`` or
  ``accept``): SYN, SYN|ACK, ACK;
- data segments from ``send`` of the sending side or ``recv`` of the
  receiving side, whichever reports the bytes first (a browser's requests
  are known only from the server's recv), with seq and ack from the bytes
  each side has sent so far. TCP may split a large write into several
  segments or merge small ones; a derived segment is one report;
- a FIN from the side that calls ``shutdown``/``close`` first (or whose peer
  reads end-of-file first), then the peer's answer. Linux delays the ACK of a
  FIN up to 40 ms (delayed ACK, "ping-pong" mode): if the peer closes within
  that window its FIN carries the ACK and the teardown is three segments;
  otherwise a pure ACK goes out when the delayed-ACK timer fires (40 ms
  after the FIN), and the peer's FIN follows later: four segments. An
  observed CLOSE_WAIT lasting longer settles it as four;
- an RST for a client that aborts (SO_LINGER 0) or a reset the server saw.

Not derived, because nothing tells: pure ACKs of data (delayed, piggybacked
or coalesced), window updates, retransmissions, and any segment of a side we
have no evidence from (a browser's FIN, unless the server read end-of-file
or the kernel observer saw the state change).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..events import Event, Probe

DELAYED_ACK_NS = 40_000_000  # Linux TCP_DELACK_MIN: the ACK of a FIN waits this long


def _split_conn(conn: str) -> tuple[int, int]:
    client, _, server = conn.partition(">")
    return int(client.rsplit(":", 1)[1]), int(server.rsplit(":", 1)[1])


@dataclass
class _Side:
    port: int
    next_seq: int = 0  # relative: the SYN takes 0, data starts at 1
    fin_sent_ns: int | None = None
    fin_acked: bool = False
    sent: int = 0  # bytes this end's own send events account for
    delivered: int = 0  # bytes the peer's recv events account for


@dataclass
class _Flow:
    conn: str
    client: _Side
    server: _Side
    reset: bool = False
    done: bool = False
    sides: dict[str, _Side] = field(init=False)

    def __post_init__(self) -> None:
        self.sides = {"client": self.client, "server": self.server}

    def other(self, name: str) -> str:
        return "server" if name == "client" else "client"


class PacketDeriver:
    """A probe sink: feed it server, client and kernel events; it emits
    ``packet`` events (origin "derived") through ``probe``."""

    def __init__(self, probe: Probe | None = None, *, tick: float = 0.01) -> None:
        self.probe = probe if probe is not None else Probe("engine")
        self._flows: dict[str, _Flow] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tick = tick
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "PacketDeriver":
        """Run the delayed-ACK clock, so a lone ACK appears even when nothing else happens."""
        self._thread = threading.Thread(target=self._run, name="sockscope-derive", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            with self._lock:
                self._fire_delayed_acks(time.monotonic_ns())

    # ------------------------------------------------------------ input
    def __call__(self, event: Event) -> None:
        conn = event.conn
        if conn is None or event.kind == "packet":
            return
        with self._lock:
            self._fire_delayed_acks(event.t_ns)
            flow = self._flows.get(conn)
            kind, src, t = event.kind, event.src, event.t_ns
            if flow is None:
                if kind not in ("connect", "accept"):
                    return
                flow = self._open(conn, t)
            if flow.done:
                return
            side_name = "client" if src == "client" else "server"
            if src == "kernel" and kind == "tcp_state":
                self._on_state(flow, event)
            elif kind == "send" and event.data.get("bytes", 0) > 0:
                me = flow.sides[side_name]
                me.sent += event.data["bytes"]
                self._data(flow, side_name, t)
            elif kind == "recv":
                n = event.data.get("bytes", 0)
                other = flow.other(side_name)
                if n > 0:
                    # Whichever end reports the bytes first dates the segment:
                    # a send event is emitted after the syscall returns, and
                    # the receiver may already have reacted to the data.
                    flow.sides[other].delivered += n
                    self._data(flow, other, t)
                else:
                    self._fin(flow, other, t)  # end-of-file: the peer's FIN arrived
            elif kind == "shutdown":
                self._fin(flow, side_name, t)
            elif kind == "close":
                reason = str(event.data.get("reason", ""))
                if "RST" in reason or reason == "abort":
                    self._rst(flow, side_name, t)
                elif reason in ("reset", "epipe"):
                    self._rst(flow, flow.other(side_name), t)
                else:
                    self._fin(flow, side_name, t)

    # ------------------------------------------------------------ segments
    def _open(self, conn: str, t: int) -> _Flow:
        cport, sport = _split_conn(conn)
        flow = _Flow(conn, _Side(cport), _Side(sport))
        self._flows[conn] = flow
        c, s = flow.client, flow.server
        self._emit(flow, "client", "SYN", 0, 0, t - 3)
        self._emit(flow, "server", "SYN|ACK", 0, 1, t - 2)
        c.next_seq = s.next_seq = 1
        self._emit(flow, "client", "ACK", 1, 1, t - 1)
        return flow

    def _data(self, flow: _Flow, sender: str, t: int) -> None:
        me, peer = flow.sides[sender], flow.sides[flow.other(sender)]
        if me.fin_sent_ns is not None or flow.reset:
            return
        new_bytes = max(me.sent, me.delivered) - (me.next_seq - 1)
        if new_bytes > 0:
            self._emit(flow, sender, "PSH|ACK", me.next_seq, peer.next_seq, t, length=new_bytes)
            me.next_seq += new_bytes

    def _fin(self, flow: _Flow, sender: str, t: int) -> None:
        me, peer = flow.sides[sender], flow.sides[flow.other(sender)]
        if me.fin_sent_ns is not None or flow.reset:
            return
        peer_fin_waiting = peer.fin_sent_ns is not None and not peer.fin_acked
        if peer_fin_waiting and t - peer.fin_sent_ns > DELAYED_ACK_NS:
            self._ack_fin(flow, acker=sender, t=peer.fin_sent_ns + DELAYED_ACK_NS)
            peer_fin_waiting = False
        # Sequence numbers count a FIN as one byte: peer.next_seq already
        # includes the peer's FIN, so acking it is acking peer.next_seq.
        self._emit(flow, sender, "FIN|ACK", me.next_seq, peer.next_seq, t)
        me.next_seq += 1
        me.fin_sent_ns = t
        if peer_fin_waiting:
            peer.fin_acked = True  # three-segment close: this FIN carried the ACK
        if peer.fin_sent_ns is not None:
            # Both FINs are out: the first closer's kernel ACKs ours at once,
            # from FIN_WAIT_2 into TIME_WAIT.
            self._emit(flow, flow.other(sender), "ACK", peer.next_seq, me.next_seq, t + 1)
            me.fin_acked = True
            flow.done = True

    def _ack_fin(self, flow: _Flow, acker: str, t: int) -> None:
        me, peer = flow.sides[acker], flow.sides[flow.other(acker)]
        self._emit(flow, acker, "ACK", me.next_seq, peer.next_seq, t)
        peer.fin_acked = True

    def _rst(self, flow: _Flow, sender: str, t: int) -> None:
        if flow.reset or flow.done:
            return
        me, peer = flow.sides[sender], flow.sides[flow.other(sender)]
        self._emit(flow, sender, "RST|ACK", me.next_seq, peer.next_seq, t)
        flow.reset = flow.done = True

    def _on_state(self, flow: _Flow, event: Event) -> None:
        """Observed states are evidence of FINs whose sender we do not see."""
        name, state, t = event.data.get("side"), event.data.get("state"), event.t_ns
        if name not in ("client", "server"):
            return
        other = flow.other(name)
        me, peer = flow.sides[name], flow.sides[other]
        if state in ("CLOSE_WAIT", "LAST_ACK"):  # passive close: the peer's FIN came first
            if peer.fin_sent_ns is None:
                self._fin(flow, other, t)
            if state == "LAST_ACK" and me.fin_sent_ns is None:
                self._fin(flow, name, t)
        elif state in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT"):  # active close
            if me.fin_sent_ns is None:
                self._fin(flow, name, t)
            if state == "FIN_WAIT_2" and not me.fin_acked and peer.fin_sent_ns is None:
                self._ack_fin(flow, acker=other, t=t)
            if state == "TIME_WAIT" and peer.fin_sent_ns is None:
                self._fin(flow, other, t)

    def _fire_delayed_acks(self, now: int) -> None:
        for flow in self._flows.values():
            if flow.done or flow.reset:
                continue
            for name in ("client", "server"):
                side = flow.sides[name]
                if side.fin_sent_ns is not None and not side.fin_acked \
                        and now - side.fin_sent_ns >= DELAYED_ACK_NS \
                        and flow.sides[flow.other(name)].fin_sent_ns is None:
                    self._ack_fin(flow, acker=flow.other(name), t=side.fin_sent_ns + DELAYED_ACK_NS)

    def _emit(self, flow: _Flow, sender: str, flags: str, seq: int, ack: int, t: int,
              length: int = 0) -> None:
        probe = self.probe
        if not probe.active:
            return
        me, peer = flow.sides[sender], flow.sides[flow.other(sender)]
        probe.emit_at(t, "packet", flow.conn, -1, 0, sport=me.port, dport=peer.port,
                      flags=flags, tcp_seq=seq, ack=ack if "ACK" in flags else 0, len=length,
                      win=None, origin="derived", relative=True, sender=sender)
