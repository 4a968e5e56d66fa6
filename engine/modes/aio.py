"""asyncio: a task per connection (``asyncio.start_server``), on one event loop.

The handler of each connection is the same HTTP session every mode uses
(``Connection.received`` / ``take_output`` / ``sent`` / ``all_sent``), fed by the
task's ``await reader.read()`` and answered with ``writer.write`` and
``await writer.drain()``. Underneath, asyncio's transports make the syscalls,
mostly from the event loop's own callbacks rather than from the task: the
recv() happens when the selector reports the fd readable, whether or not the
task is waiting for the bytes yet.

What the trace shows, as it happened:
- the selector's calls (``wait``, ``interest``: ``EpollSelector`` on Linux), made
  by the event loop;
- every recv, send and EAGAIN of the transports, and every accept, at the
  syscall (the sockets asyncio is given are this module's, which say so); each
  carries ``task``, the name of the task serving the connection, and ``by``:
  ``"loop"`` when the event loop made the call in a callback, ``"task"`` when the
  task's own ``writer.write`` did;
- ``task_start``/``task_end`` per task; request, response and close from the task.

Stepping holds the loop's one thread: while an action is held, nothing runs.
"""
from __future__ import annotations

import asyncio
import errno
import selectors
import socket
import time
from typing import Any

from ..connection import Connection
from ..events import TaggedProbe
from ..server import REFUSED, Server
from .readiness import READ, WRITE, mask_names

_STOP_WAIT = 5.0  # seconds the stop waits for the tasks to end
# What a stream buffers of a client that sends and never reads: the reader pauses
# the transport beyond twice this, the task reads this much at a time. asyncio's
# 64 KiB cost ~400 KB per connection of a pipelining flood (the other modes read
# 64 KiB into one buffer and stop).
STREAM_LIMIT = 16 * 1024


def _by() -> str:
    """Who makes a syscall now: a task's own code, or the event loop in a callback."""
    try:
        return "task" if asyncio.current_task() is not None else "loop"
    except RuntimeError:  # no running loop: the server is stopping
        return "loop"


class AsyncConnection(Connection):
    """A connection whose bytes go through an asyncio transport: sends, the shutdown
    and the close are asked of the writer, which makes the syscalls when it can."""

    __slots__ = ("writer",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer: asyncio.StreamWriter | None = None  # the task's, once it runs

    def _shutdown_write(self) -> None:
        if self.writer is None:
            super()._shutdown_write()
        else:  # after what the transport still holds
            self.writer.write_eof()

    def _send_now(self, data: bytes) -> None:
        if self.writer is None:
            super()._send_now(data)
        else:
            self.writer.write(data)

    def _release(self) -> None:
        if self.writer is None:
            super()._release()
        else:  # the transport closes the socket once its buffer is out
            self.writer.close()


class TracedSocket(socket.socket):
    """A connected socket as asyncio's transport uses it: each recv, send and EAGAIN
    is recorded at the syscall, and waits at the stepping gate first."""

    conn: AsyncConnection | None = None

    def _gate(self, action: str) -> None:
        conn = self.conn
        if conn is not None and conn.gate.enabled:
            conn.gate.wait(action, conn.id, conn.fd, conn.tid)

    def _syscall(self, op: str, call: Any, *args: Any) -> Any:
        """``call(*args)``, held at the gate first; an EAGAIN is recorded, then raised
        for asyncio to handle."""
        self._gate(op)
        try:
            return call(*args)
        except BlockingIOError:
            conn = self.conn
            if conn is not None:
                conn.server.stats.eagain += 1
                if conn.probe.active:
                    conn.probe.emit("eagain", conn.id, conn.fd, conn.tid, op=op, by=_by())
            raise

    def _done(self, kind: str, data: dict[str, Any]) -> None:
        conn = self.conn
        if conn is not None and conn.probe.active:
            data["by"] = _by()
            conn.probe.emit_data(kind, conn.id, conn.fd, conn.tid, data)

    def recv(self, size: int, flags: int = 0) -> bytes:  # type: ignore[override]
        data: bytes = self._syscall("recv", super().recv, size, flags)
        self._done("recv", {"bytes": len(data)})
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        count: int = self._syscall("recv", super().recv_into, buffer, nbytes, flags)
        self._done("recv", {"bytes": count})
        return count

    def send(self, data: Any, flags: int = 0) -> int:  # type: ignore[override]
        count: int = self._syscall("send", super().send, data, flags)
        self._done("send", {"bytes": count, "wanted": len(data)})
        return count

    def sendmsg(self, buffers: Any, *args: Any) -> int:  # type: ignore[override]
        buffers = list(buffers)  # asyncio's writev of what its buffer holds (3.12+)
        count: int = self._syscall("send", super().sendmsg, buffers, *args)
        self._done("send", {"bytes": count, "wanted": sum(len(b) for b in buffers)})
        return count


class TracedListener(socket.socket):
    """The listening socket given to ``asyncio.start_server``: its accept() is the
    server's ``accept_one`` (the gate, the event, the connection limit, out of fds),
    which hands asyncio a ``TracedSocket``."""

    server: AsyncioServer

    _inner = False  # accept() called by the server's own accept_one: the syscall itself

    def accept(self) -> tuple[socket.socket, Any]:  # type: ignore[override]
        if self._inner:
            return super().accept()
        server = self.server
        self._inner = True
        try:
            while True:
                conn = server.accept_one(server._tid)
                if conn is None:  # none waiting, or out of fds: asyncio stops this batch
                    raise BlockingIOError(errno.EAGAIN, "no connection waiting")
                if conn is not REFUSED:  # (refused: answered 503 and closed; take the next)
                    return conn.sock, conn.peer
        finally:
            self._inner = False


class TracedSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """The event loop's selector (epoll on Linux, kqueue on macOS), recording its
    calls with the same ``wait`` and ``interest`` events the selectors mode makes."""

    def __init__(self, server: AsyncioServer, tid: int) -> None:
        super().__init__()
        self.server = server
        self.tid = tid
        self.call = selectors.DefaultSelector.__name__
        self._inside = False  # a modify made of unregister + register reports once
        self._owners: dict[int, str | None] = {}  # fd -> its connection, while watched
        # a set handed in on every call (select, poll underneath) is counted
        self._handed = isinstance(self, (selectors.SelectSelector,
                                         getattr(selectors, "PollSelector", ())))

    @staticmethod
    def _mask(events: int) -> str:
        return mask_names((READ if events & selectors.EVENT_READ else 0)
                          | (WRITE if events & selectors.EVENT_WRITE else 0))

    def _report(self, op: str, fd: int, events: int) -> None:
        server = self.server
        if op == "ADD":  # whose fd it is, kept: the transport leaves after the close event
            conn = server.conns.get(fd)
            self._owners[fd] = conn.id if conn is not None else None
        owner = self._owners.pop(fd, None) if op == "DEL" else self._owners.get(fd)
        if server.probe.active and not self._inside:
            server.probe.emit("interest", owner, fd, self.tid, op=op, mask=self._mask(events),
                              call=self.call)

    def register(self, fileobj: Any, events: int, data: Any = None) -> Any:
        key = super().register(fileobj, events, data)
        self._report("ADD", key.fd, events)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> Any:
        inside, self._inside = self._inside, True
        try:
            key = super().modify(fileobj, events, data)
        finally:
            self._inside = inside
        self._report("MOD", key.fd, events)
        return key

    def unregister(self, fileobj: Any) -> Any:
        key = super().unregister(fileobj)
        self._report("DEL", key.fd, 0)
        return key

    def select(self, timeout: float | None = None) -> list[Any]:
        server = self.server
        if server.gate.enabled and timeout != 0:
            server.gate.wait("select", None, -1, self.tid)
        ready = super().select(timeout)
        if server.probe.active:
            server.probe.emit("wait", None, -1, self.tid, call=self.call,
                              timeout=-1 if timeout is None else timeout,
                              ready=[[key.fd, (READ if ev & selectors.EVENT_READ else 0)
                                      | (WRITE if ev & selectors.EVENT_WRITE else 0)]
                                     for key, ev in ready],
                              fds=len(self.get_map()) if self._handed else None)
        return ready


class AsyncioServer(Server):
    mode = "asyncio"
    connection_class = AsyncConnection

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.tasks: set[asyncio.Task[None]] = set()
        self._tid = 0
        self._crash: Exception | None = None
        self._stopped: asyncio.Event | None = None

    def multiplexer_name(self) -> str | None:
        return selectors.DefaultSelector.__name__

    def _adopt(self, sock: socket.socket) -> socket.socket:
        """An accepted socket becomes one that records its transport's syscalls."""
        return TracedSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())

    def admit(self, sock: socket.socket, peer: tuple, tid: int, blocking: bool = False
              ) -> Connection:
        conn = super().admit(sock, peer, tid, blocking)
        if conn is not REFUSED:
            conn.sock.conn = conn  # type: ignore[attr-defined]
        return conn

    def _run(self, tid: int) -> None:
        self._tid = tid
        loop = asyncio.SelectorEventLoop(TracedSelector(self, tid))
        loop.set_exception_handler(self._loop_trouble)
        try:
            loop.run_until_complete(self._main(loop))
        finally:
            loop.close()
        if self._crash is not None:
            raise self._crash

    def _loop_trouble(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """What asyncio would print on stderr (out of fds at accept, a transport's
        failed send) is recorded as an ``error`` event instead; the loop goes on."""
        exc = context.get("exception")
        if isinstance(exc, Exception) and not isinstance(exc, OSError):
            # A bug outside any connection's task (in accepting, in a callback): as in
            # every mode, the loop ends, keeping its cause, and closes everything.
            self._crash = exc
            self._stopping = True
            if self._stopped is not None:
                self._stopped.set()
            return
        if self.probe.active:
            self.probe.emit("error", None, -1, self._tid, what="asyncio",
                            errno=errno.errorcode.get(getattr(exc, "errno", None) or 0, ""),
                            detail=f"{context.get('message', '')}: {exc!r}"[:500])

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.listener is not None
        old = self.listener
        listener = TracedListener(old.family, old.type, old.proto, fileno=old.detach())
        listener.server = self
        listener.setblocking(False)
        self.listener = listener
        self._stopped = stopped = asyncio.Event()

        def woken() -> None:
            self.drain_wakeup()
            if self._stopping:
                stopped.set()

        loop.add_reader(self._wake_r.fileno(), woken)
        server = await asyncio.start_server(self._handle, sock=listener,
                                            backlog=self.config.backlog, limit=STREAM_LIMIT)
        try:
            await stopped.wait()
        finally:
            server.close()  # no more accepts (it closes the listening socket)
            for conn in list(self.conns.values()):
                conn.close("server stopping")
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=_STOP_WAIT)
            loop.remove_reader(self._wake_r.fileno())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        fd = writer.get_extra_info("socket").fileno()
        conn = self.conns.get(fd)
        if not isinstance(conn, AsyncConnection) or conn.closed:
            writer.close()  # closed while its task was being made (the server stops)
            return
        name = task.get_name()
        conn.writer = writer
        conn.probe = probe = TaggedProbe(self.probe, task=name)
        self.tasks.add(task)
        if probe.active:
            probe.emit("task_start", conn.id, conn.fd, conn.tid, name=name)
        try:
            await self._serve(conn, reader, writer)
        except asyncio.CancelledError:
            conn.close("server stopping")
        except Exception as exc:  # one connection's bug must not take the server down
            conn.crashed(exc)
        finally:
            if probe.active:
                probe.emit("task_end", conn.id, -1, conn.tid, name=name)
            self.tasks.discard(task)

    async def _serve(self, conn: AsyncConnection, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """The session, driven by the task: read (within the connection's deadline),
        answer, write what the answers hold and wait for the transport to take it."""
        send_timeout = self.config.send_timeout
        while not conn.closed and not self._stopping:
            if conn.wants_read():
                left = conn.deadline - time.monotonic()
                if left <= 0:
                    conn._time_out()
                    continue
                try:
                    data = await asyncio.wait_for(reader.read(STREAM_LIMIT), left)
                except asyncio.TimeoutError:
                    conn._time_out()
                    continue
                except OSError as exc:
                    conn._fail_io("recv", exc)
                    return
                conn.received(data)
                if conn.closed:
                    return
            elif not (conn.wants_write() or conn.pending or conn.inbuf):
                conn.close("peer closed")  # nothing to read or send: the peer is gone
                return
            while not conn.closed:
                out = conn.out or conn.take_output()
                if not out:
                    break
                writer.write(out)  # the transport sends what the kernel takes now
                conn.sent(len(out))
                if writer.transport.get_write_buffer_size():
                    try:  # the rest waits for the socket to be writable: the selector's OUT
                        await asyncio.wait_for(writer.drain(), send_timeout)
                    except asyncio.TimeoutError:
                        conn.deadline_why = "send_timeout"
                        conn._time_out()
                        return
                    except OSError as exc:
                        conn._fail_io("send", exc)
                        return
            if not conn.closed:
                conn.all_sent()
