"""Non-blocking polling: one thread tries every socket in turn, every sweep.

This is lecture 3.6's server: nothing tells the loop which socket is ready,
so it asks them all and most answers are EAGAIN, wasted tries that the sweep
events count. With no pause between sweeps it burns a whole core even when
idle; the pause trades that CPU for latency.
"""
from __future__ import annotations

import select
import time

from ..server import Server

ACCEPT_BATCH = 64
TICK = 0.25


class NonBlockingServer(Server):
    mode = "nonblocking"

    def _run(self, tid: int) -> None:
        probe = self.probe
        stats = self.stats
        conns = self.conns
        pause = self.config.sweep_pause
        wake = self._wake_r
        monotonic = time.monotonic
        next_tick = monotonic() + TICK
        while not self._stopping:
            tries = useful = 0
            before_eagain = stats.eagain
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
            if probe.active:
                probe.emit("poll_sweep", None, -1, tid, sockets=len(conns) + 1, tries=tries,
                           eagain=wasted, useful=useful)
            if conns:
                now = monotonic()
                if now >= next_tick:
                    next_tick = now + TICK
                    self.expire(now)
            if pause > 0:
                # Sleep on the wakeup socket, so that stop() is immediate.
                if select.select([wake], [], [], pause)[0]:
                    self.drain_wakeup()
