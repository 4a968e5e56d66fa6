"""Derived packets: the TCP segments a connection must have exchanged, worked
out from the syscalls both ends made (and the kernel states observed), for
machines where real packets cannot be captured.

The aim is the sequence Linux puts on the wire, not a textbook's: on the
canonical exchanges (short connections, keep-alive, pipelining, small files)
the derived (sender, flags, length) list equals what a capture of the same run
shows, which tests/engine/test_derived.py checks against ``LoopbackCapture``.
Sequence numbers are relative (ISN = 0). What is derived, and why:

- the three-way handshake, when a connection is first seen (``connect`` or
  ``accept``): SYN, SYN|ACK, ACK;
- one PSH|ACK segment per write (``send``), dated at that send, or earlier
  when the receiver's ``recv`` reports the bytes first (a send event is
  emitted after the syscall returns, and on loopback the peer may already
  have read them). When the writer's events are seen, its writes set the
  segment boundaries, not the reader's reads (a read may join two segments or
  take part of one); a read that runs ahead of the writer's report waits for
  it (until the writer does something else, or 100 ms: then it was a write
  without a send event). The writer's bytes are known only from the reader's
  reads when its syscalls are not seen (a browser): one segment per read;
- the receiver's ACKs, as Linux decides them (net/ipv4/tcp_input.c,
  ``__tcp_ack_snd_check``): quick-ACK mode at the start of a connection and
  after a pause longer than the RTO (up to 16 ACKs sent at once), and
  ping-pong mode once an end answers within the ACK timeout (40 ms) of
  receiving: its ACKs are then delayed, and ride on the answer (or on its
  FIN) if that comes within 40 ms, else a pure ACK goes out when the
  delayed-ACK timer fires, which also ends ping-pong mode. More than one full
  segment unacknowledged is acknowledged at once. An ACK sent at once on
  receipt is dated 1 ns after the data;
- Nagle's algorithm where the writer did not turn it off (the built-in
  clients, and the server's blocking modes: the server sets TCP_NODELAY on
  non-blocking sockets only; the deriver learns the mode from the server's
  ``mode`` event, or ``server_nagle``): a small write waits while an earlier
  small segment is unacknowledged, and goes when the ACK arrives;
- the FINs: from the side that calls ``shutdown``/``close`` first (or whose
  peer reads end-of-file first), then the peer's answer. A FIN puts the
  receiver in ping-pong mode, so its ACK is delayed: if the receiver closes
  within 40 ms its FIN carries the ACK and the teardown is three segments
  (what the built-in short clients do), otherwise four. The first closer
  acknowledges the second FIN at once;
- an RST for a client that aborts (SO_LINGER 0) or a reset the server saw.

Where the kernel's choice cannot be known, one honest aggregate is drawn
instead of invented segments: a write too large to be sure it went as one
segment (over half the peer's initial window, 32 KiB, on loopback; over 536
bytes, the smallest MSS, on a path whose MSS is not known), and every write
that follows it before the peer answers, becomes one event with
``aggregate: True``: it stands for the segments the kernel chose (how it cuts
a write depends on the peer's window, the congestion window and TSO
autosizing), with their total length and consistent seq/ack. The receiver's
ACKs of it are one aggregate ACK event too.

Not derived, because nothing tells: window updates, retransmissions, the real
cut of an aggregate, and any segment of a side we have no evidence from (a
browser's FIN, unless the server read end-of-file or the kernel observer saw
the state change). The ACKs of a side whose syscalls we do not see (a
browser) follow the same Linux rules: right for a local peer, a model for a
remote one.
"""
from __future__ import annotations

import bisect
import heapq
import ipaddress
import itertools
import threading
import time
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Callable

from ..clock import Clock
from ..events import Event, Probe
from ..modes import REGISTRY

# processes mode: how long an event waits for a child's earlier ones, which come through
# the parent's pipe (milliseconds late on a loaded machine)
REORDER_NS = 30_000_000
REORDERED_MODES = ("processes",)
DELAYED_ACK_NS = 40_000_000  # TCP_DELACK_MIN = TCP_ATO_MIN: how long a delayed ACK waits
RTO_MIN_NS = 200_000_000  # TCP_RTO_MIN: a pause in the data longer than the RTO restarts quick-ACK
QUICK_ACKS = 16  # TCP_MAX_QUICKACKS: ACKs sent at once after the first data
RCV_MSS_GUESS = 536  # TCP_MSS_DEFAULT: the receiver's guess at the segment size before it sees one
# A write up to this many bytes goes out as one segment. Linux cuts a write at
# half the largest window the peer has advertised (tcp_bound_to_half_wnd): at
# the start of a loopback connection that is 64 KiB / 2 (measured: a 64 KiB
# write went as 32,768 + 32,768, later ones as 47,616 + ...). On another path
# the MSS is not known: 536 is the one every IPv4 host must accept.
LOCAL_ONE_SEGMENT = 32_768
PATH_ONE_SEGMENT = 536
AWAIT_NS = 100_000_000  # how long a read that ran ahead waits for the writer's report
CLOCK_GRACE_NS = 5_000_000  # the clock fires a timer only this long after it is due
# The server turns Nagle off (TCP_NODELAY) on non-blocking sockets only
# (Server.accept_one): in these modes its small writes wait for ACKs.
NAGLE_MODES = frozenset(m.name for m in REGISTRY.values() if m.blocking)
# close() and shutdown() are reported just before the call: a segment the call sends is
# dated this much after the report, so that the event, the sender's new state (1 ns before
# its segment) and the segment come in that order.
_INSIDE_CALL_NS = 2
_TIME = itemgetter(0)


def _pingpong_threshold() -> int:
    """Answers within the ACK timeout before an end counts as interactive (ping-pong):
    1 since Linux 6.5 (a sysctl since 6.10); 3 on 5.1 to 6.4, which have no sysctl."""
    try:
        with open("/proc/sys/net/ipv4/tcp_pingpong_thresh", "rb") as f:  # bytes: no codec needed
            return max(1, int(f.read()))
    except (OSError, ValueError):
        return 1


PINGPONG_THRESHOLD = _pingpong_threshold()  # read once, at import (before any privilege drop)


def _split_conn(conn: str) -> tuple[int, int]:
    client, _, server = conn.partition(">")
    return int(client.rsplit(":", 1)[1]), int(server.rsplit(":", 1)[1])


def _is_local(conn: str) -> bool:
    """Both ends on this host: the segments cross `lo` (loopback, or the host's own address)."""
    hosts = [end.rsplit(":", 1)[0].strip("[]") for end in conn.split(">", 1)]
    if len(hosts) != 2:
        return False
    if hosts[0] == hosts[1]:
        return True
    try:
        return all(ipaddress.ip_address(h).is_loopback for h in hosts)
    except ValueError:
        return False


@dataclass(eq=False)
class _Side:
    """One end: what it sent, and its kernel's state as a receiver (ACK decisions)."""
    name: str
    port: int
    seen: bool = False  # this end's own syscalls reach us (our server, our clients)
    nagle: bool = False
    # --- sending
    next_seq: int = 0  # relative: the SYN takes 0, data starts at 1
    sent: int = 0  # data bytes this end's send events reported
    delivered: int = 0  # data bytes of this end the peer's recv events reported
    drawn: int = 0  # data bytes drawn as segments
    held: int = 0  # data bytes Nagle holds back until the peer's ACK
    arrivals: list[tuple[int, int]] = field(default_factory=list)  # (delivered, t) of reads
    small_unacked: bool = False  # a sub-MSS segment still unacknowledged (Minshall's Nagle)
    streaming: bool = False  # its last data was an aggregate and the peer has not answered
    fin_sent_ns: int | None = None
    fin_acked: bool = False
    # --- receiving: this end's kernel acknowledging the peer
    got_data: bool = False
    quick: int = 0  # quick-ACK budget
    pingpong: int = 0
    last_data_ns: int = 0
    rcv_mss: int = RCV_MSS_GUESS
    unacked: int = 0  # sequence space received since this end last sent an ACK
    ack_due_ns: int | None = None  # the delayed-ACK timer
    peer: "_Side" = field(init=False, repr=False)  # the other end (set by its flow)


@dataclass(eq=False)
class _Flow:
    conn: str
    client: _Side
    server: _Side
    one_segment: int
    reset: bool = False
    done: bool = False
    last_t: int = 0  # when the flow's latest derived segment is dated
    awaiting: str | None = None  # the side whose send report a read ran ahead of
    await_since: int = 0
    queue: list[Event] = field(default_factory=list)  # events held while awaiting
    sides: dict[str, _Side] = field(init=False)

    def __post_init__(self) -> None:
        self.sides = {"client": self.client, "server": self.server}
        self.client.peer, self.server.peer = self.server, self.client

    def other(self, name: str) -> str:
        return "server" if name == "client" else "client"


def _before_read(flow: _Flow, t: int) -> int:
    """When a segment only a read reveals arrived: before the read that returned it (its
    event is reported after the call), and after the flow's latest segment."""
    return max(t - 2, flow.last_t + 1)


class PacketDeriver:
    """A probe sink: feed it server, client and kernel events; it emits
    ``packet`` events (origin "derived") through ``probe``.

    ``server_nagle``: whether the server's sockets use Nagle's algorithm; by
    default learnt from the server's ``mode`` event (none seen: no Nagle).
    """

    def __init__(self, probe: Probe | None = None, *, tick: float = 0.01,
                 server_nagle: bool | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.probe = probe if probe is not None else Probe("engine")
        # ``clock``: the time up to which every event has been given (the kernel side's
        # process, fed the engine's events in batches, a while after they happened):
        # events are then taken in time order up to it, and timers fire by it, never by
        # the wall clock (a delayed ACK is not drawn while the answer may be on its way).
        self._now: Callable[[], int] = clock if clock is not None else time.monotonic_ns
        self._fed = clock is not None
        self.pingpong_threshold = PINGPONG_THRESHOLD
        self._server_nagle = bool(server_nagle)
        self._nagle_given = server_nagle is not None
        self._flows: dict[str, _Flow] = {}
        self._finished: list[str] = []  # done flows, oldest first, forgotten in batches
        self._blocked: dict[str, _Flow] = {}
        self._timers: list[tuple[int, int, _Flow, str]] = []  # (due, n, flow, side): delayed ACKs
        self._order = itertools.count()
        self._lock = threading.Lock()
        # processes mode: a child's events reach the probe through its parent, late; they
        # wait here REORDER_NS, then go in time order with everyone else's
        self._reorder = False
        self._pending: list[tuple[int, int, Event]] = []
        self._unsorted = False  # fed: the pending list is out of time order
        self._clock = Clock("sockscope-derive", tick, self._on_tick, self.flush)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "PacketDeriver":
        """Run the clock, so a delayed ACK appears even when nothing else happens. Fed
        (``clock`` given), time moves only when the feed says so: whoever feeds calls
        ``tick`` then, and no thread of its own runs."""
        if not self._fed:
            self._clock.start()
        return self

    def stop(self) -> None:
        """Stop the clock, then draw what is still waiting (``flush``)."""
        if self._fed:
            self.flush()
        else:
            self._clock.stop()

    def tick(self) -> None:
        """Take what the time now allows: events in time order up to it (fed, or the
        processes mode), reads that waited too long, delayed ACKs due."""
        self._on_tick()

    def flush(self) -> None:
        """Draw what is still waiting: reads whose writer never reported, timers now due."""
        with self._lock:
            self._release_pending(1 << 62)
            for flow in list(self._blocked.values()):
                self._fall_back(flow)
            self._fire_timers(self._now())

    def _on_tick(self) -> None:
        now = self._now()
        with self._lock:
            if self._reorder:  # what is decided now is what the events released by now say
                now -= REORDER_NS
            if self._reorder or self._fed:
                self._release_pending(now)
            self._expire_waits(now)
            self._fire_timers(now - CLOCK_GRACE_NS)

    # ------------------------------------------------------------ input
    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind == "packet":
            return
        conn = event.conn
        if conn is None:
            if kind == "mode" and event.src == "server":
                if not self._nagle_given:
                    self._server_nagle = event.data.get("mode") in NAGLE_MODES
                self._reorder = event.data.get("mode") in REORDERED_MODES
            return
        with self._lock:
            if self._fed:  # in time order, once the feed says nothing earlier can come
                # Appended: a batch mostly comes in time order already (sorted once, at
                # its release, when it does not).
                item = (event.t_ns, event.seq, event)
                pending = self._pending
                if pending and item < pending[-1]:
                    self._unsorted = True
                pending.append(item)
            elif self._reorder:  # in time order, once nothing earlier can come
                heapq.heappush(self._pending, (event.t_ns, event.seq, event))
                self._release_pending(self._now() - REORDER_NS)
            else:
                self._take(event)

    def _release_pending(self, until: int) -> None:
        pending = self._pending
        if self._fed:  # a list, not a heap (``__call__``)
            if self._unsorted:
                pending.sort()
                self._unsorted = False
            n = bisect.bisect_right(pending, until, key=_TIME)
            if n:
                taken = pending[:n]
                del pending[:n]
                take = self._take
                for _, _, event in taken:
                    take(event)
            return
        while pending and pending[0][0] <= until:
            self._take(heapq.heappop(pending)[2])

    def _take(self, event: Event) -> None:
        """One event of a connection (the lock held)."""
        kind, conn = event.kind, event.conn
        t = event.t_ns
        # Other connections' timers lag a little: an event stamped earlier may
        # still be on its way here from another thread (the flow's own fire in _handle).
        timers = self._timers
        if timers and timers[0][0] <= t - CLOCK_GRACE_NS:
            self._fire_timers(t - CLOCK_GRACE_NS)
        if self._blocked:
            self._expire_waits(t)
        flow = self._flows.get(conn)
        if kind in ("connect", "accept"):
            # New, or the 4-tuple used again (this end already opened the old one).
            if flow is None or flow.sides["client" if kind == "connect" else "server"].seen:
                flow = self._open(conn, t)
        if flow is None or flow.done:
            return
        if flow.awaiting is not None:
            self._while_awaiting(flow, event)
        else:
            self._handle(flow, event)

    def _handle(self, flow: _Flow, event: Event) -> None:
        kind, src, t = event.kind, event.src, event.t_ns
        for side in (flow.client, flow.server):  # its delayed ACKs due by now went first
            if side.ack_due_ns is not None and side.ack_due_ns <= t and not flow.done:
                self._timer_ack(flow, side, side.ack_due_ns)
        if flow.done:
            return
        if src == "kernel":
            # The kernel's states, or its checks of states: evidence of FINs whose
            # sender is not ours.
            if kind in ("tcp_state", "state_check"):
                self._on_state(flow, event)
            return
        name = "client" if src == "client" else "server"
        me = flow.sides[name]
        peer = flow.sides[flow.other(name)]
        if kind in ("connect", "accept"):
            me.seen = True
            # The built-in clients never turn Nagle off; the server does in some modes.
            me.nagle = True if name == "client" else self._server_nagle
        elif kind == "send":
            n = event.data.get("bytes", 0)
            if n > 0:
                me.sent += n
                self._from_send(flow, me, t)
        elif kind == "recv":
            n = event.data.get("bytes", 0)
            if n > 0:
                self._from_recv(flow, peer, n, t)
            elif n == 0:  # end-of-file: the peer's FIN arrived, before this read returned
                self._fin(flow, peer, _before_read(flow, t))
        elif kind == "shutdown":
            # Reported just before the call: the FIN leaves inside it, after the event
            # (and after the state change it makes, dated 1 ns before its segment).
            if event.data.get("how", "SHUT_WR") in ("SHUT_WR", "SHUT_RDWR"):
                self._fin(flow, me, t + _INSIDE_CALL_NS)
        elif kind == "close":
            if event.data.get("last") is False:  # one copy of a forked socket: no segment
                return
            reason = str(event.data.get("reason", ""))
            if "RST" in reason or reason == "abort":
                self._rst(flow, me, t + _INSIDE_CALL_NS)
            elif reason in ("reset", "epipe"):
                self._rst(flow, peer, t)
            else:
                self._fin(flow, me, t + _INSIDE_CALL_NS)

    # ------------------------------------------------------------ reports of data
    def _from_send(self, flow: _Flow, me: _Side, t: int) -> None:
        new = me.sent - me.drawn - me.held
        if new <= 0:
            return  # already drawn from the peer's reads
        first = me.drawn + me.held
        read_at = next((at for end, at in me.arrivals if end > first), None)
        if read_at is None:
            self._data(flow, me, new, t)
        else:  # read already: dated at that read if earlier, and nothing held it back
            self._held_arrived(flow, me, read_at)
            self._data(flow, me, new, min(t, read_at), arrived=True)

    def _from_recv(self, flow: _Flow, sender: _Side, n: int, t: int) -> None:
        sender.delivered += n
        if sender.delivered <= sender.drawn:
            return  # bytes already drawn: nothing new
        sender.arrivals.append((sender.delivered, _before_read(flow, t)))
        if sender.seen and sender.delivered > sender.sent:
            # The writer's report is on its way (sent after its syscall returned):
            # its writes, not this read, say where the segments begin and end.
            flow.awaiting = sender.name
            flow.await_since = t
            self._blocked[flow.conn] = flow
            return
        self._draw_arrivals(flow, sender)

    def _draw_arrivals(self, flow: _Flow, sender: _Side) -> None:
        """Segments as the reads saw them (the writer's syscalls unseen or unreported)."""
        for end, at in list(sender.arrivals):
            if end > sender.drawn:
                self._held_arrived(flow, sender, at)
            if end > sender.drawn:
                self._data(flow, sender, end - sender.drawn, at, arrived=True)

    def _held_arrived(self, flow: _Flow, sender: _Side, at: int) -> None:
        """A read at ``at`` had bytes Nagle was holding, or later ones: they went before it."""
        if not sender.held:
            return
        receiver = sender.peer
        if receiver.ack_due_ns is not None:
            # The delayed ACK that let them go fired before our clock said
            # (which started from a send event reported late).
            due = receiver.ack_due_ns
            self._timer_ack(flow, receiver, max(min(due, at - 2), due - DELAYED_ACK_NS + 1))
        if sender.held:  # it went all the same: Nagle was off after all (TCP_NODELAY)
            n, sender.held = sender.held, 0
            self._transmit(flow, sender, n, at - 1, aggregate=n > flow.one_segment)

    def _while_awaiting(self, flow: _Flow, event: Event) -> None:
        waited = flow.sides[flow.awaiting or "client"]
        from_writer = event.src == waited.name
        if from_writer and event.kind == "send":
            self._handle(flow, event)
            if waited.sent < waited.delivered:
                return  # a read joined several writes: wait for the rest
        else:
            flow.queue.append(event)
            if not from_writer and event.t_ns - flow.await_since < AWAIT_NS:
                return
            # The writer did something else (or took too long): those bytes were
            # sent without a send event. The reads are all there is to go by.
            self._fall_back(flow)
            return
        self._resume(flow)

    def _fall_back(self, flow: _Flow) -> None:
        if flow.awaiting is not None:
            self._draw_arrivals(flow, flow.sides[flow.awaiting])
        self._resume(flow)

    def _resume(self, flow: _Flow) -> None:
        flow.awaiting = None
        self._blocked.pop(flow.conn, None)
        queue, flow.queue = flow.queue, []
        for i, event in enumerate(queue):
            if flow.awaiting is not None:  # waiting again: keep the rest in order
                flow.queue = queue[i:] + flow.queue
                return
            self._handle(flow, event)

    def _expire_waits(self, now: int) -> None:
        for flow in [f for f in self._blocked.values() if now - f.await_since >= AWAIT_NS]:
            self._fall_back(flow)

    # ------------------------------------------------------------ segments
    def _open(self, conn: str, t: int) -> _Flow:
        cport, sport = _split_conn(conn)
        one = LOCAL_ONE_SEGMENT if _is_local(conn) else PATH_ONE_SEGMENT
        flow = _Flow(conn, _Side("client", cport), _Side("server", sport), one)
        self._flows[conn] = flow
        c, s = flow.client, flow.server
        self._emit(flow, c, "SYN", 0, 0, t - 3)
        self._emit(flow, s, "SYN|ACK", 0, 1, t - 2)
        c.next_seq = s.next_seq = 1
        self._emit(flow, c, "ACK", 1, 1, t - 1)
        return flow

    def _data(self, flow: _Flow, me: _Side, n: int, t: int, arrived: bool = False) -> None:
        """``n`` new bytes written by ``me`` at ``t``: a segment, held by Nagle, or an aggregate."""
        if me.fin_sent_ns is not None or flow.reset:
            return
        exact = n <= flow.one_segment and not me.streaming
        if not arrived and (me.held or (exact and n < flow.one_segment and me.nagle
                                        and me.small_unacked)):
            me.held += n  # Nagle: sent when the peer acknowledges the earlier small segment
            return
        self._transmit(flow, me, n, t, aggregate=not exact)

    def _transmit(self, flow: _Flow, me: _Side, n: int, t: int, *, aggregate: bool = False,
                  fin: bool = False) -> None:
        peer = me.peer
        self._acks_all(flow, me)  # every segment after the handshake carries the ACK
        if n and me.got_data and t - me.last_data_ns < DELAYED_ACK_NS:
            me.pingpong += 1  # an answer within the ACK timeout: interactive (tcp_event_data_sent)
        flags = ("FIN|PSH|ACK" if n else "FIN|ACK") if fin else "PSH|ACK"
        self._emit(flow, me, flags, me.next_seq, peer.next_seq, t, n, aggregate)
        me.next_seq += n + (1 if fin else 0)
        me.drawn += n
        if me.arrivals:
            me.arrivals = [a for a in me.arrivals if a[0] > me.drawn]
        if n and not aggregate and n < flow.one_segment:
            me.small_unacked = True
        if n:
            me.streaming = aggregate
        if fin:
            me.fin_sent_ns = t
        # At the peer: its kernel takes the ACK (which lets bytes Nagle held go,
        # carrying the ACK of these), then decides whether to ACK what is left.
        if n:
            self._receive(peer, n, t, aggregate)
        if fin:
            if peer.fin_sent_ns is not None:
                # Both FINs are out: the first closer's kernel ACKs the second at
                # once, from FIN_WAIT_2 into TIME_WAIT.
                self._ack(flow, peer, t + 1)
                self._finish(flow)
                return
            # tcp_fin: CLOSE_WAIT, and ping-pong mode, so the ACK of a FIN is delayed:
            # if the peer closes within 40 ms its FIN carries the ACK (three segments).
            peer.pingpong = max(peer.pingpong, self.pingpong_threshold)
            peer.unacked += 1  # a FIN takes one sequence number
        self._release(flow, peer, t + 1)
        if n or fin:
            self._ack_check(flow, peer, t, aggregate)

    def _receive(self, me: _Side, n: int, t: int, aggregate: bool) -> None:
        """``n`` bytes reach ``me`` at ``t`` (tcp_event_data_recv, tcp_measure_rcv_mss)."""
        if not me.got_data:
            me.got_data = True
            me.quick = QUICK_ACKS  # first data: quick-ACK mode
        elif t - me.last_data_ns > RTO_MIN_NS:
            me.quick = max(me.quick, QUICK_ACKS)
        me.last_data_ns = t
        me.streaming = False  # its next write answers this
        if not aggregate and n >= me.rcv_mss:
            me.rcv_mss = n
        me.unacked += n

    def _ack_check(self, flow: _Flow, me: _Side, t: int, aggregate: bool) -> None:
        """Whether ``me`` ACKs at once what it received at ``t`` (__tcp_ack_snd_check)."""
        if flow.reset or flow.done or not me.unacked:
            return  # nothing left: an answer already carried the ACK
        if aggregate:
            # Whatever ACKs the kernel sent for segments it chose: one aggregate.
            self._ack(flow, me, t + 1, aggregate=True)
        elif (me.quick > 0 and me.pingpong < self.pingpong_threshold) \
                or me.unacked > me.rcv_mss:
            self._ack(flow, me, t + 1)  # at once: dated at the data's arrival
        else:
            self._schedule(flow, me, t)

    def _acks_all(self, flow: _Flow, me: _Side) -> None:
        """``me`` sends a segment that acknowledges all it has received."""
        if me.unacked or me.ack_due_ns is not None:
            me.quick = max(0, me.quick - 1)  # tcp_dec_quickack_mode
        me.unacked = 0
        me.ack_due_ns = None
        peer = me.peer
        peer.small_unacked = False
        if peer.fin_sent_ns is not None:
            peer.fin_acked = True

    def _ack(self, flow: _Flow, me: _Side, t: int, aggregate: bool = False) -> None:
        peer = me.peer
        self._acks_all(flow, me)
        self._emit(flow, me, "ACK", me.next_seq, peer.next_seq, t, 0, aggregate)
        self._release(flow, peer, t + 1)

    def _release(self, flow: _Flow, me: _Side, t: int) -> None:
        """The ACK of its small segment reached ``me``: Nagle lets the held bytes go."""
        if me.held and not me.small_unacked and me.fin_sent_ns is None and not flow.reset:
            n, me.held = me.held, 0
            self._transmit(flow, me, n, t, aggregate=n > flow.one_segment)

    def _schedule(self, flow: _Flow, me: _Side, t: int) -> None:
        if me.ack_due_ns is None:  # a running timer is not pushed back
            me.ack_due_ns = t + DELAYED_ACK_NS
            heapq.heappush(self._timers, (me.ack_due_ns, next(self._order), flow, me.name))

    def _fire_timers(self, now: int) -> None:
        timers = self._timers
        later = []
        while timers and timers[0][0] <= now:
            entry = heapq.heappop(timers)
            due, _, flow, name = entry
            me = flow.sides[name]
            if flow.done or flow.reset or me.ack_due_ns != due:
                continue
            if flow.awaiting is not None:  # its events are held back: so is its clock
                later.append(entry)
                continue
            self._timer_ack(flow, me, due)
        for entry in later:
            heapq.heappush(timers, entry)

    def _timer_ack(self, flow: _Flow, me: _Side, t: int) -> None:
        """The delayed-ACK timer fires (tcp_delack_timer_handler)."""
        if me.pingpong >= self.pingpong_threshold:
            me.pingpong = 0  # "delayed ACK missed: leave pingpong mode"
        self._ack(flow, me, t)

    def _fin(self, flow: _Flow, me: _Side, t: int) -> None:
        if me.fin_sent_ns is not None or flow.reset or flow.done:
            return
        # close() pushes what Nagle held, the FIN riding on its last segment.
        n, me.held = me.held, 0
        self._transmit(flow, me, n, t, fin=True)

    def _rst(self, flow: _Flow, me: _Side, t: int) -> None:
        if flow.reset or flow.done:
            return
        peer = me.peer
        self._emit(flow, me, "RST|ACK", me.next_seq, peer.next_seq, t)
        flow.reset = True
        self._finish(flow)

    def _finish(self, flow: _Flow) -> None:
        flow.done = True
        self._blocked.pop(flow.conn, None)
        self._finished.append(flow.conn)
        if len(self._finished) > 20_000:  # forget the oldest half (kept so late events stay quiet)
            old, self._finished = self._finished[:10_000], self._finished[10_000:]
            for conn in old:
                f = self._flows.get(conn)
                if f is not None and f.done:
                    del self._flows[conn]

    def _on_state(self, flow: _Flow, event: Event) -> None:
        """Observed states are evidence of FINs whose sender we do not see."""
        name, state, t = event.data.get("side"), event.data.get("state"), event.t_ns
        if name not in ("client", "server"):
            return
        me = flow.sides[name]
        peer = flow.sides[flow.other(name)]
        if state in ("CLOSE_WAIT", "LAST_ACK"):  # passive close: the peer's FIN came first
            if peer.fin_sent_ns is None:
                self._fin(flow, peer, t)
            if state == "LAST_ACK" and me.fin_sent_ns is None:
                self._fin(flow, me, t)
        elif state in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT"):  # active close
            if me.fin_sent_ns is None:
                self._fin(flow, me, t)
            if state == "FIN_WAIT_2" and not me.fin_acked and peer.fin_sent_ns is None \
                    and not flow.done:
                self._ack(flow, peer, t)  # the peer's kernel acknowledged our FIN by now
            if state == "TIME_WAIT" and peer.fin_sent_ns is None:
                self._fin(flow, peer, t)

    def _emit(self, flow: _Flow, me: _Side, flags: str, seq: int, ack: int, t: int,
              length: int = 0, aggregate: bool = False) -> None:
        probe = self.probe
        if not probe.active:
            return
        peer = me.peer
        if t > flow.last_t:
            flow.last_t = t
        data = {"sport": me.port, "dport": peer.port, "flags": flags, "tcp_seq": seq,
                "ack": ack if "ACK" in flags else 0, "len": length, "win": None,
                "origin": "derived", "relative": True, "sender": me.name}
        if aggregate:
            data["aggregate"] = True
        probe.emit_data_at(t, "packet", flow.conn, -1, 0, data)
