"""One client at a time (lectures 3.1 and 3.3): accept, serve that client to the
end, then accept the next. A second client's handshake completes in the kernel
(it waits in the accept queue, already ESTABLISHED, its request unread) while
the first one is served: nothing else runs. The server that motivates every
mode after it.

The loop waits for the listening socket together with the wakeup socket (the
lecture's blocking ``accept()`` could not be stopped); stopping shuts the
client being served down, which wakes the blocked ``recv()``.
"""
from __future__ import annotations

import socket

from ..connection import Connection
from ..server import Server


class SingleServer(Server):
    mode = "single"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.current: Connection | None = None  # the one client being served

    def _run(self, tid: int) -> None:
        while not self._stopping:
            conn = self.accept_blocking(tid)
            if conn is None:
                continue
            self.current = conn
            if self._stopping:  # stop() came between accept and here: it may not have seen us
                conn.close("server stopping")
                self.current = None
                continue
            try:
                self.serve_to_the_end(conn)
            finally:
                self.current = None

    def stop(self, timeout: float = 5.0) -> None:
        # Stopping first: a client accepted from now on is not served (the loop checks
        # before it serves), and the one being served is woken below.
        self._stopping = True
        conn = self.current
        if conn is not None:  # wake the recv() or send() it is blocked in
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        super().stop(timeout)
