"""gevent: a greenlet per connection, all on one OS thread (lecture 3.5).

Each connection is served exactly as the threaded mode serves it, with blocking
calls (``serve_to_the_end``), but its socket is gevent's: a ``recv()`` that would
block gets EAGAIN from the kernel, and the greenlet then parks in the hub, whose
loop (libev over epoll on Linux) wakes it when the fd is ready. The lecture's
``monkey.patch_all()`` puts this same socket class in place of ``socket.socket``;
here the engine makes gevent's sockets itself and patches nothing, so no other
thread of the process (the trace writer, the kernel observer) is turned into a
greenlet.

What the trace shows: ``task_start``/``task_end`` per greenlet; every event of a
connection carries ``greenlet`` (its id) and ``thread`` (the OS thread, the same
for all); an ``eagain`` where a greenlet parks; and a ``wait`` (call
``libev epoll_wait``) each time the hub's loop comes back from the kernel with
how long it slept there: coroutines are epoll in disguise.

Stepping holds the one OS thread: while an action is held, no greenlet runs.
"""
from __future__ import annotations

import itertools
import socket
import time
from typing import Any

from ..connection import Connection
from ..events import TaggedProbe
from ..server import REFUSED, Server

try:
    import gevent
    import gevent.select
    import gevent.socket
except Exception:  # (ImportError; an AttributeError where socket lacks what it expects)
    gevent = None  # type: ignore[assignment]  # the registry says why the mode is unavailable


# what the hub's loop calls to wait, by its backend (libev's names)
_WAITS = {"epoll": "libev epoll_wait", "kqueue": "libev kevent", "poll": "libev poll",
          "select": "libev select", "linux_aio": "libev io_getevents",
          "linux_iouring": "libev io_uring_enter"}


def available() -> tuple[bool, str]:
    if gevent is None:
        return False, "the gevent package is not installed (or cannot load here): pip install gevent"
    return True, ""


if gevent is not None:
    class GreenSocket(gevent.socket.socket):  # type: ignore[misc, name-defined]
        """gevent's socket, saying when its greenlet parks: the kernel answered EAGAIN
        and the greenlet now waits for the hub to report the fd ready."""

        def _wait(self, watcher: Any, timeout_exc: Any = None) -> None:
            conn = getattr(self, "conn", None)
            if conn is not None and conn.probe.active:
                conn.server.stats.eagain += 1
                op = "recv" if watcher is self._read_event else "send"
                conn.probe.emit("eagain", conn.id, conn.fd, conn.tid, op=op)
            super()._wait(watcher, timeout_exc)


class GeventServer(Server):
    mode = "gevent"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.greenlets: set[Any] = set()
        self._ids = itertools.count(1)  # gevent's own idents are reused once a greenlet dies

    def multiplexer_name(self) -> str | None:
        """The hub's loop and what it waits with: "libev (epoll)" on Linux. Read off
        the loop class gevent is configured with (no hub is made in this thread)."""
        if gevent is None:
            return None
        try:
            loop = gevent.config.loop
            library = loop.__module__.split(".")[1]  # gevent.libev.corecext -> libev
            backend = "?"
            if library == "libev":
                probe_loop = loop(default=False)
                backend = probe_loop.backend
                probe_loop.destroy()
        except Exception:  # noqa: BLE001 - only a name
            return "gevent hub"
        return f"{library} ({backend})"

    def _adopt(self, sock: socket.socket) -> socket.socket:
        """The accepted socket becomes gevent's (same fd, same kernel socket)."""
        green = GreenSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        return green

    def _run(self, tid: int) -> None:
        hub = gevent.get_hub()  # this thread's hub (gevent has one per OS thread)
        watchers = self._watch_the_hub(hub, tid)
        assert self.listener is not None
        try:
            while not self._stopping:
                # The accept loop is this thread's main greenlet; select() parks it too.
                readable, _, _ = gevent.select.select([self.listener, self._wake_r], [], [])
                if self._wake_r in readable:
                    self.drain_wakeup()
                    continue
                conn = self.accept_one(tid, blocking=True)
                if conn is None or conn is REFUSED:
                    continue
                green = gevent.Greenlet(self._serve_connection, conn)
                conn.probe = TaggedProbe(self.probe, greenlet=next(self._ids))
                conn.sock.conn = conn  # type: ignore[attr-defined]
                self.greenlets.add(green)
                green.start()
        finally:
            self._shutdown_greenlets()
            for w in watchers:
                w.stop()

    def _watch_the_hub(self, hub: Any, tid: int) -> list[Any]:
        """Record each return of the hub's loop from the kernel: a libev prepare
        watcher runs right before each iteration's epoll_wait, a check watcher right
        after it; the event says how long the call blocked. (Which fds it returned
        libev does not tell: the greenlets it wakes say it next.)"""
        probe = self.probe
        loop = hub.loop
        backend = str(getattr(loop, "backend", "") or "")
        call = _WAITS.get(backend, f"{backend or 'the loop'}'s wait")
        since = [0]

        def before() -> None:
            since[0] = time.monotonic_ns()

        def after() -> None:
            if probe.active:
                probe.emit("wait", None, -1, tid, call=call,
                           timeout=None, ready=None, fds=None,
                           blocked_ns=time.monotonic_ns() - since[0])

        prepare = loop.prepare(ref=False)
        prepare.start(before)
        check = loop.check(ref=False)
        check.start(after)
        return [prepare, check]

    def _serve_connection(self, conn: Connection) -> None:
        probe = conn.probe
        name = f"greenlet-{probe.tags['greenlet']}"  # type: ignore[union-attr]
        if probe.active:
            probe.emit("task_start", conn.id, conn.fd, conn.tid, name=name)
        try:
            self.serve_to_the_end(conn)
        finally:
            if probe.active:
                probe.emit("task_end", conn.id, -1, conn.tid, name=name)
            self.greenlets.discard(gevent.getcurrent())

    def _shutdown_greenlets(self) -> None:
        """Stopping: wake every greenlet parked in recv or send, then wait for them."""
        for conn in list(self.conns.values()):
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        greenlets = list(self.greenlets)
        if greenlets:
            gevent.joinall(greenlets, timeout=5)
            for green in greenlets:  # one stuck past the wait is killed, not waited for
                if not green.dead:
                    green.kill(block=False)
