"""A thread per connection (lectures 3.4-3.5): blocking calls, one stack each.

The accept loop waits on the listening socket and the wakeup socket together,
so stopping is immediate; stopping shuts every connection down, which wakes
threads blocked in recv or send, and joins them all.
"""
from __future__ import annotations

import select
import threading

from ..connection import Connection
from ..server import REFUSED, Server


class ThreadedServer(Server):
    mode = "threaded"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._conns_lock = threading.Lock()

    def _run(self, tid: int) -> None:
        assert self.listener is not None
        listener, wake = self.listener, self._wake_r
        listener.setblocking(False)
        while not self._stopping:
            readable, _, _ = select.select([listener, wake], [], [])
            if wake in readable:
                self.drain_wakeup()
                continue
            with self._conns_lock:
                conn = self.accept_one(tid, blocking=True)
            if conn is None or conn is REFUSED:
                continue
            thread = threading.Thread(target=self._serve_connection, args=(conn,),
                                      name=f"conn-{conn.fd}", daemon=True)
            with self._threads_lock:
                self.threads.add(thread)
            thread.start()

    def _serve_connection(self, conn: Connection) -> None:
        conn.tid = tid = threading.get_native_id()
        probe = self.probe
        name = threading.current_thread().name
        if probe.active:
            probe.emit("thread_start", conn.id, conn.fd, tid, name=name)
        try:
            while not conn.closed:
                if conn.wants_read():
                    conn.handle_read()  # blocks in recv, then sends all it can
                elif conn.wants_write() or conn.pending:
                    conn.handle_write()
                else:  # nothing to read or send: the peer is gone
                    conn.close("peer closed")
        except Exception as exc:  # one connection's bug must not take the server down
            if probe.active:
                probe.emit("error", conn.id, conn.fd, tid, what="thread_crashed", detail=repr(exc))
            conn.close("thread crashed")
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
        for thread in threads:
            thread.join(5)
        super()._shutdown()
