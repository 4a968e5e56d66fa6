"""selectors: the portable multiplexer (kqueue on macOS/BSD, select on
Windows, epoll on Linux), level-triggered like the lecture's select() server.
The default mode where epoll does not exist.
"""
from __future__ import annotations

import selectors
import time

from ..connection import Connection
from ..server import REFUSED, Server

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
ACCEPT_BATCH = 128
TICK = 0.25


class SelectorsServer(Server):
    mode = "selectors"

    def multiplexer_name(self) -> str:
        return type(self._selector).__name__

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._selector = selectors.DefaultSelector()

    def _run(self, tid: int) -> None:
        assert self.listener is not None
        sel = self._selector
        self._tid = tid
        probe = self.probe
        listener, wake = self.listener, self._wake_r
        self._ctl("ADD", listener, READ)
        self._ctl("ADD", wake, READ)
        conns = self.conns
        monotonic = time.monotonic
        next_tick = monotonic() + TICK
        try:
            while not self._stopping:
                timeout = TICK if conns else None
                if self.gate.enabled:
                    self.gate.wait("select", None, -1, tid)
                ready = sel.select(timeout)
                if probe.active:
                    probe.emit("epoll_wait", None, -1, tid, timeout=timeout if timeout else -1,
                               ready=[(key.fd, mask) for key, mask in ready])
                for key, mask in ready:
                    conn = key.data
                    if conn is not None:
                        try:
                            if mask & READ:
                                conn.handle_read()
                            if mask & WRITE and not conn.closed:
                                conn.handle_write()
                            if not conn.closed:
                                want = (READ if conn.wants_read() else 0) | \
                                    (WRITE if conn.wants_write() else 0)
                                if want != conn.mask:
                                    self._ctl("MOD", conn.sock, want, conn)
                                    conn.mask = want
                        except Exception as exc:  # this connection's failure, not the loop's
                            conn.crashed(exc)
                    elif key.fileobj is listener:
                        for _ in range(ACCEPT_BATCH):
                            new = self.accept_one(tid)
                            if new is None:
                                break
                            if new is not REFUSED:
                                new.mask = READ
                                self._ctl("ADD", new.sock, READ, new)
                    else:
                        self.drain_wakeup()
                if conns:
                    now = monotonic()
                    if now >= next_tick:
                        next_tick = now + TICK
                        self.expire(now)
        finally:
            sel.close()

    def _ctl(self, op: str, sock, mask: int, conn: Connection | None = None) -> None:  # type: ignore[no-untyped-def]
        sel = self._selector
        if op == "ADD":
            sel.register(sock, mask, conn)
        elif op == "MOD":  # selectors cannot hold an fd with no interest: drop and re-add
            if not mask:
                sel.unregister(sock)
            elif conn is not None and conn.mask == 0:
                sel.register(sock, mask, conn)
            else:
                sel.modify(sock, mask, conn)
        elif op == "DEL":
            sel.unregister(sock)
        if self.probe.active:
            names = "|".join(n for bit, n in ((READ, "IN"), (WRITE, "OUT")) if mask & bit) or "0"
            self.probe.emit("epoll_ctl", conn.id if conn else None, sock.fileno(), self._tid,
                            op=op, mask=names)

    def _forget(self, conn: Connection) -> None:
        if self.conns.get(conn.fd) is conn and conn.mask and not self._stopping:
            try:
                self._ctl("DEL", conn.sock, 0, conn)
            except (KeyError, ValueError, OSError):
                pass
        super()._forget(conn)
