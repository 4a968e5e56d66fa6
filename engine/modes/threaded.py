"""A thread per connection (lectures 3.4-3.5): blocking calls, one stack each.

The accept loop waits on the listening socket and the wakeup socket together,
so stopping is immediate; stopping shuts every connection down, which wakes
threads blocked in recv or send, and joins them all.
"""
from __future__ import annotations

import threading
import time

from ..connection import Connection
from ..server import Server


class ThreadedServer(Server):
    mode = "threaded"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._conns_lock = threading.Lock()

    def _run(self, tid: int) -> None:
        while not self._stopping:
            conn = self.accept_blocking(tid, self._conns_lock)
            if conn is None:
                continue
            thread = threading.Thread(target=self._serve_connection, args=(conn,),
                                      name=f"conn-{conn.fd}", daemon=True)
            with self._threads_lock:
                self.threads.add(thread)
            try:
                thread.start()
            except RuntimeError as exc:  # "can't start new thread": a process or memory limit
                with self._threads_lock:
                    self.threads.discard(thread)
                self.turn_away(conn, tid, "thread_failed", str(exc),
                               "no thread could be started for this connection")

    def _serve_connection(self, conn: Connection) -> None:
        conn.tid = tid = threading.get_native_id()
        probe = self.probe
        name = threading.current_thread().name
        if probe.active:
            probe.emit("thread_start", conn.id, conn.fd, tid, name=name)
        try:
            self.serve_to_the_end(conn)
        finally:
            if probe.active:
                probe.emit("thread_exit", conn.id, -1, tid, name=name)
            with self._threads_lock:
                self.threads.discard(threading.current_thread())

    def _forget(self, conn: Connection) -> None:
        with self._conns_lock:
            super()._forget(conn)

    def _shutdown(self) -> None:
        # Wake every thread blocked in recv/send, then join them all.
        with self._conns_lock:
            conns = list(self.conns.values())
        for conn in conns:
            try:
                conn.sock.shutdown(2)
            except OSError:
                pass
        with self._threads_lock:
            threads = list(self.threads)
        deadline = time.monotonic() + 10  # for them all: ten thousand threads take a while
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        super()._shutdown()
