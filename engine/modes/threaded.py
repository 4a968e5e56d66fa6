"""A thread per connection (lectures 3.4-3.5): blocking calls, one stack each.

The accept loop waits on the listening socket and the wakeup socket together,
so stopping is immediate; stopping shuts every connection down, which wakes
threads blocked in recv or send, and joins them all.
"""
from __future__ import annotations

import socket
import threading

from ..connection import Connection
from ..http import plain_answer
from ..server import Server


NO_THREAD_WAIT = 0.2  # seconds a connection without a thread is given to send its request


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
                self._no_thread(conn, tid, exc)

    def _no_thread(self, conn: Connection, tid: int, exc: RuntimeError) -> None:
        """No thread for this connection: a short 503 if it can go at once, then close;
        the server accepts on (a thread may be free for the next one)."""
        head, body = plain_answer(503, "no thread could be started for this connection",
                                  self.date.now())
        probe = self.probe
        if probe.active:
            probe.emit("error", conn.id, conn.fd, tid, what="thread_failed", detail=str(exc))
            probe.emit("response", conn.id, conn.fd, tid, status=503, length=len(body), path="",
                       head=head.decode("latin-1"), preview=body[:64].decode("latin-1"))
        sock = conn.sock
        try:
            # The request first (at most a moment's wait, on the accepting thread): closing
            # with it unread would reset the connection, and the answer with it.
            sock.settimeout(NO_THREAD_WAIT)
            try:
                sock.recv(65536)
            except OSError:
                pass
            sock.sendall(head + body)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close("no thread")

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
        for thread in threads:
            thread.join(5)
        super()._shutdown()
