"""Non-blocking polling: one thread tries every socket in turn, every sweep.

This is lecture 3.6's server: nothing tells the loop which socket is ready,
so it asks them all and most answers are EAGAIN, wasted tries that the sweep
events count. With no pause between sweeps it burns a whole core even when
idle; the pause trades that CPU for latency.

An idle loop sweeps thousands of times a second, every try an EAGAIN: recorded one
by one, that is thousands of events a second that say the same thing and bury the
timeline. So a sweep's EAGAIN events are held back until the sweep does something
(then they go out first, at their own times, in order); a sweep that only met
EAGAIN is counted instead, and idle sweeps in a row become one ``poll_sweep`` event
with ``sweeps`` (how many), ``since_ns`` (when the first began) and their tries and
EAGAINs summed, dated at the last one's end, at least every ``IDLE_SPAN_NS``.
``--every-sweep`` records them all, and a stepped loop (the gate) is never coalesced.
"""
from __future__ import annotations

import select
import time
from typing import Any

from ..events import Probe, TaggedProbe
from ..server import Server

ACCEPT_BATCH = 64
TICK = 0.25
IDLE_SPAN_NS = 100_000_000  # an idle stretch is said at least this often


class SweepProbe(TaggedProbe):
    """The server's probe, holding a sweep's EAGAIN events back (see the module's
    docstring). Every other event first lets the held ones out, so the server's
    events keep their order. (A TaggedProbe with no tags: ``active`` and the sinks
    are the probe's.)"""

    __slots__ = ("holding", "held", "idle", "since_ns", "last_ns", "tries", "eagain",
                 "sockets", "tid")

    def __init__(self, probe: Probe | TaggedProbe) -> None:
        super().__init__(probe)  # type: ignore[arg-type]
        self.holding = False
        self.held: list[tuple[int, Any, int, int, dict]] = []
        self.idle = self.since_ns = self.last_ns = self.tries = self.eagain = 0
        self.sockets = self.tid = 0

    def emit(self, kind: str, conn: str | None = None, fd: int = -1, thread: int = 0,
             **data: Any) -> None:
        self.emit_data(kind, conn, fd, thread, data)

    def emit_data(self, kind: str, conn: str | None, fd: int, thread: int,
                  data: dict[str, Any]) -> None:
        if self.holding:
            if kind == "eagain":
                self.held.append((time.monotonic_ns(), conn, fd, thread, data))
                return
            self.release()
        self.probe.emit_data(kind, conn, fd, thread, data)

    def emit_at(self, t_ns: int, kind: str, conn: str | None = None, fd: int = -1,
                thread: int = 0, **data: Any) -> None:
        if self.holding:
            self.release()
        self.probe.emit_at(t_ns, kind, conn, fd, thread, **data)

    def release(self) -> None:
        """The sweep did something: the idle sweeps before it, then its held EAGAINs."""
        self.holding = False
        self.say_idle()
        probe = self.probe
        for t_ns, conn, fd, thread, data in self.held:
            probe.emit_at(t_ns, "eagain", conn, fd, thread, **data)
        self.held.clear()

    def idle_sweep(self, start_ns: int, tries: int, eagain: int, sockets: int,
                   tid: int) -> None:
        """A sweep that only met EAGAIN: counted, its held events let go."""
        self.holding = False
        self.held.clear()
        if not self.idle:
            self.since_ns = start_ns
        self.idle += 1
        self.tries += tries
        self.eagain += eagain
        self.sockets, self.tid = sockets, tid
        self.last_ns = time.monotonic_ns()
        if self.last_ns - self.since_ns >= IDLE_SPAN_NS:
            self.say_idle()

    def say_idle(self) -> None:
        """The idle sweeps counted so far, as one event."""
        if not self.idle:
            return
        self.probe.emit_at(self.last_ns, "poll_sweep", None, -1, self.tid,
                           sockets=self.sockets, tries=self.tries, eagain=self.eagain,
                           useful=0, sweeps=self.idle, since_ns=self.since_ns)
        self.idle = self.tries = self.eagain = 0


class NonBlockingServer(Server):
    mode = "nonblocking"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sweeps = SweepProbe(self.probe)
        if not self.config.every_sweep:
            self.probe = self.sweeps  # the connections' events pass through it

    def _run(self, tid: int) -> None:
        try:
            self._sweep_loop(tid)
        finally:
            if self.sweeps.probe.active:
                self.sweeps.say_idle()  # the last idle stretch before the stop

    def _sweep_loop(self, tid: int) -> None:
        probe = self.probe
        sweeps = self.sweeps
        coalesce = not self.config.every_sweep
        gate = self.gate
        stats = self.stats
        conns = self.conns
        pause = self.config.sweep_pause
        wake = self._wake_r
        monotonic = time.monotonic
        monotonic_ns = time.monotonic_ns
        next_tick = monotonic() + TICK
        while not self._stopping:
            tries = useful = 0
            before_eagain = stats.eagain
            holding = coalesce and probe.active and not gate.enabled
            if holding:
                start_ns = monotonic_ns()
                sweeps.holding = True
            elif sweeps.idle:
                sweeps.say_idle()  # stepping began, or nobody listens any more
            for _ in range(ACCEPT_BATCH):
                tries += 1
                conn = self.accept_one(tid)
                if conn is None:
                    break
                useful += 1
            # Copy: connections close (and leave the dict) during the sweep —
            # the lecture's "list changed while iterating" bug.
            for conn in list(conns.values()):
                if conn.closed:
                    continue
                tries += 1
                before = conn.bytes_in + conn.bytes_out
                try:
                    if conn.wants_write():
                        conn.handle_write()
                    if not conn.closed and conn.wants_read():
                        conn.handle_read()
                except Exception as exc:  # this connection's failure, not the loop's
                    conn.crashed(exc)
                if conn.closed or conn.bytes_in + conn.bytes_out != before:
                    useful += 1
            wasted = stats.eagain - before_eagain
            if holding and not useful and sweeps.holding:  # only EAGAIN, nothing said
                sweeps.idle_sweep(start_ns, tries, wasted, len(conns) + 1, tid)
            elif probe.active:
                if sweeps.holding:
                    sweeps.release()
                probe.emit("poll_sweep", None, -1, tid, sockets=len(conns) + 1, tries=tries,
                           eagain=wasted, useful=useful)
            else:
                sweeps.holding = False
                sweeps.held.clear()
            if conns:
                now = monotonic()
                if now >= next_tick:
                    next_tick = now + TICK
                    self.expire(now)
            if pause > 0:
                # Sleep on the wakeup socket, so that stop() is immediate.
                if select.select([wake], [], [], pause)[0]:
                    self.drain_wakeup()
