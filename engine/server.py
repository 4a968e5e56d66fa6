"""What every I/O mode shares: configuration, the listening socket, accepting,
time-outs, statistics and stopping. Each mode's own file holds only its loop.
"""
from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field

from .connection import Connection
from .limits import SPARE_FDS, raise_open_files
from .events import Probe
from .gate import Gate
from .http import DateCache, plain_answer
from .modes import REGISTRY
from .modes import mode as mode_spec
from .static import Site

MODES = tuple(REGISTRY)  # every mode this engine knows (engine/modes/__init__.py)
TRIGGERS = ("level", "edge")
POLICIES = ("keep-alive", "close")
DEFAULT_PORT = 7890


TURN_AWAY_WAIT = 0.2  # seconds a connection turned away is given to send its request
REFUSED: "Connection" = object()  # type: ignore[assignment]  # accepted, then turned away


def default_mode() -> str:
    import select
    return "epoll" if hasattr(select, "epoll") else "selectors"


@dataclass
class ServerConfig:
    mode: str = field(default_factory=default_mode)
    trigger: str = "level"  # epoll only
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    root: str | None = None
    policy: str = "keep-alive"
    backlog: int = 4096
    reuseaddr: bool = True
    sweep_pause: float = 0.0  # nonblocking mode: seconds between sweeps (0 = busy loop)
    every_sweep: bool = False  # nonblocking mode: idle sweeps recorded one by one, not coalesced
    header_timeout: float = 10.0
    idle_timeout: float = 15.0
    send_timeout: float = 60.0
    max_connections: int = 10_000
    # epoll only, for the lesson on lecture 3.9's bug: read once per readiness
    # report with recv(1024), like the lecture's server, never until EAGAIN.
    # Edge-triggered, the bytes left in the socket then wait for an edge that
    # never comes; level-triggered, the next wait reports the fd again.
    no_drain: bool = False
    # For the lesson on CLOSE_WAIT: when the peer closes, forget the socket
    # without close(); the kernel keeps it in CLOSE_WAIT until the server stops.
    never_close: bool = False
    # processes mode, for the lesson on the parent's copy (lecture 3.4's remark): the
    # parent never closes its descriptor of a connection it forked a child for, so the
    # child's close() is not the last one and sends no FIN.
    keep_parent_copy: bool = False

    def check(self) -> None:
        spec = mode_spec(self.mode)  # ValueError for an unknown one, naming them all
        if self.trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {self.trigger!r}: level or edge")
        if self.trigger not in spec.triggers:
            raise ValueError(f"{self.mode} mode is {' or '.join(spec.triggers)}-triggered only "
                             "(edge-triggered is epoll's)")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}: keep-alive or close")
        runs, why = spec.available()
        if not runs:
            raise ValueError(f"{self.mode} mode cannot run here: {why}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if self.backlog < 0:
            raise ValueError("backlog cannot be negative")
        for name in ("header_timeout", "idle_timeout", "send_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.replace('_', ' ')} must be a positive number of seconds")
        if self.sweep_pause < 0:
            raise ValueError("sweep pause cannot be negative")
        if self.no_drain and self.mode != "epoll":
            raise ValueError("no-drain is an epoll mode option (lecture 3.9's bug)")
        if self.keep_parent_copy and self.mode != "processes":
            raise ValueError("keep-parent-copy is a processes mode option (the parent's copy "
                             "of the socket)")


@dataclass
class Stats:
    accepted: int = 0
    responses: int = 0
    eagain: int = 0
    bad_requests: int = 0
    io_errors: int = 0
    refused: int = 0  # over max_connections


def connection_id(client: tuple, server: tuple) -> str:
    """The id of a connection, from its 4-tuple, as both ends compute it."""
    return f"{_endpoint(client)}>{_endpoint(server)}"


def _endpoint(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Server:
    """Base of every mode. ``start()`` runs the loop in a thread; ``serve()``
    runs it in the calling thread. ``stop()`` is immediate: it writes to a
    wakeup socket the loop always watches."""

    mode = "?"
    connection_class = Connection  # what a mode serves each client with
    # Fields every ``close`` event of this server's connections carries (processes
    # mode: which copy of the socket, and whether it was the last).
    close_fields: dict[str, object] = {}

    def __init__(self, config: ServerConfig, probe: Probe | None = None) -> None:
        config.check()
        self.config = config
        self.open_files: tuple[int, int, str | None] = (0, 0, None)  # set by bind()
        self.probe = probe if probe is not None else Probe("server")
        self.site = Site(config.root)
        self.date = DateCache()
        self.stats = Stats()
        self.gate = Gate(self.probe)
        self.keep_alive_policy = config.policy == "keep-alive"
        self.conns: dict[int, Connection] = {}
        self.listener: socket.socket | None = None
        self.address: tuple = ()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        # Out of file descriptors at the last accept(): connections wait in the queue,
        # and a loop told of the listener by edges only must try again by itself.
        self.accept_starved = False
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._loop_error: BaseException | None = None
        self._local_name: tuple | None = None
        self.leaked: list[Connection] = []  # never_close: sockets the peer closed, kept open

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host, port = self.address[0], self.address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def bind(self) -> None:
        """Create the listening socket. Raises OSError (EADDRINUSE...) as is."""
        config = self.config
        # Every connection is a descriptor: (soft limit before, after, what still does not fit)
        self.open_files = raise_open_files(config.max_connections + SPARE_FDS)
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if config.reuseaddr and os.name != "nt":
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((config.host, config.port))
            listener.listen(config.backlog)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)  # every mode waits for it to be readable first
        self.listener = listener
        self.address = listener.getsockname()
        if config.host not in ("0.0.0.0", "::", ""):
            self._local_name = self.address
        p = self.probe
        if p.active:
            p.emit("mode", None, -1, threading.get_native_id(), mode=self.mode,
                   picture=mode_spec(self.mode).picture,
                   trigger=config.trigger if self.mode == "epoll" else None,
                   policy=config.policy, multiplexer=self.multiplexer_name(),
                   **({"no_drain": True} if config.no_drain else {}),
                   **({"keep_parent_copy": True} if config.keep_parent_copy else {}),
                   **({"sweep_pause": config.sweep_pause} if self.mode == "nonblocking"
                      else {}))
            p.emit("listen", None, listener.fileno(), threading.get_native_id(),
                   host=self.address[0], port=self.address[1], backlog=config.backlog,
                   reuseaddr=config.reuseaddr)

    def multiplexer_name(self) -> str | None:
        return None

    def start(self) -> "Server":
        """Bind, then run the loop in a background thread; returns once accepting."""
        if self.listener is None:
            self.bind()
        self._thread = threading.Thread(target=self.serve, name=f"sockscope-{self.mode}",
                                        daemon=True)
        self._thread.start()
        self._started.wait(5)
        return self

    def serve(self) -> None:
        if self.listener is None:
            self.bind()
        tid = threading.get_native_id()
        if self.probe.active:
            self.probe.emit("thread_start", None, -1, tid, name="loop")
        self._started.set()
        try:
            self._run(tid)
        except BaseException as exc:
            self._loop_error = exc
            if self.probe.active:
                self.probe.emit("error", None, -1, tid, what="loop_crashed", detail=repr(exc))
            raise
        finally:
            self._shutdown()
            if self.probe.active:
                self.probe.emit("thread_exit", None, -1, tid, name="loop")

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self.gate.disable()  # anything held goes on, and sees the server stopping
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _shutdown(self) -> None:
        # Also after a crash of the loop: its multiplexer may be closed already, so no
        # connection tries to leave it (that error would hide the cause), and one
        # connection failing to close cannot keep the others or the listener open.
        self._stopping = True
        for conn in list(self.conns.values()):
            try:
                conn.close("server stopping")
            except Exception:  # noqa: BLE001
                try:
                    conn.sock.close()
                except OSError:
                    pass
        self.conns.clear()
        self._release_leaked()
        if self.listener is not None:
            self.listener.close()
        for s in (self._wake_r, self._wake_w):
            s.close()

    def _run(self, tid: int) -> None:
        raise NotImplementedError

    def _release_leaked(self) -> None:
        for conn in self.leaked:  # never_close: released only now, when the server stops
            if self.probe.active:
                self.probe.emit("close", conn.id, conn.fd, threading.get_native_id(),
                                reason="server stopping (never closed until now)",
                                **self.close_fields)
            conn.sock.close()
        self.leaked.clear()

    # ------------------------------------------------------------ shared steps
    def accept_one(self, tid: int, blocking: bool = False) -> Connection | None:
        """Accept one connection.

        Returns None when none is waiting (EAGAIN, or out of fds for now) and
        ``REFUSED`` when one was taken off the queue but not kept (over the
        connection limit, or it aborted while queued).
        """
        assert self.listener is not None
        if self.gate.enabled:
            self.gate.wait("accept", None, self.listener.fileno(), tid)
            if self._stopping:
                return None
        try:
            sock, peer = self.listener.accept()
            self.accept_starved = False
        except BlockingIOError:
            self.accept_starved = False
            self.stats.eagain += 1
            if self.probe.active:
                self.probe.emit("eagain", None, self.listener.fileno(), tid, op="accept")
            return None
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self.accept_starved = True
                if self.probe.active:
                    self.probe.emit("error", None, -1, tid, what="accept_failed",
                                    detail=exc.strerror or str(exc))
                time.sleep(0.01)  # out of fds: let closing connections free some
                return None
            if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                return REFUSED
            # Anything else (EPERM from a firewall, ENOSR...) is this attempt's, not the
            # server's: say so and go on accepting.
            if self.probe.active:
                self.probe.emit("error", None, -1, tid, what="accept_failed",
                                errno=errno.errorcode.get(exc.errno or 0, ""),
                                detail=exc.strerror or str(exc))
            return None
        return self.admit(sock, peer, tid, blocking)

    def admit(self, sock: socket.socket, peer: tuple, tid: int, blocking: bool = False
              ) -> Connection:
        """An accepted socket becomes a connection this server serves (recorded by an
        ``accept`` event), or ``REFUSED``: over the connection limit (503), or reset
        before it could be looked at."""
        try:
            local = self._local_name or sock.getsockname()
        except OSError:  # reset before we looked: nothing to serve
            sock.close()
            return REFUSED
        conn_id = connection_id(peer, local)
        self.stats.accepted += 1
        if self.busy() >= self.config.max_connections:
            self._refuse(sock, conn_id, tid)
            return REFUSED
        sock.setblocking(blocking)
        sock = self._adopt(sock)
        if not blocking and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # reset already: recv will say so
                pass
        conn = self.connection_class(self, sock, conn_id, _endpoint(peer), tid, blocking=blocking)
        self.conns[conn.fd] = conn
        if self.probe.active:
            self.probe.emit("accept", conn_id, conn.fd, tid, peer=conn.peer)
        return conn

    def _adopt(self, sock: socket.socket) -> socket.socket:
        """The accepted socket as the mode serves it (gevent's own class, for one)."""
        return sock

    def accept_blocking(self, tid: int, lock: threading.Lock | None = None
                        ) -> Connection | None:
        """The blocking modes' accept(): wait for the listener, or the wakeup socket (so
        that stopping is immediate, which the lecture's blocking accept() is not), then
        accept one connection with a blocking socket (holding ``lock`` for that alone).
        None when there is none to serve."""
        assert self.listener is not None
        readable, _, _ = select.select([self.listener, self._wake_r], [], [])
        if self._wake_r in readable:
            self.drain_wakeup()
            return None
        with lock or contextlib.nullcontext():
            conn = self.accept_one(tid, blocking=True)
        return None if conn is None or conn is REFUSED else conn

    def serve_to_the_end(self, conn: Connection) -> None:
        """Drive one blocking connection until it closes: recv blocks, then everything
        that can be answered is sent; a failure costs this connection only."""
        try:
            while not conn.closed and not self._stopping:
                if conn.wants_read():
                    conn.handle_read()  # blocks in recv, then sends all it can
                elif conn.wants_write() or conn.pending or conn.inbuf:
                    conn.handle_write()
                else:  # nothing to read or send: the peer is gone
                    conn.close("peer closed")
        except Exception as exc:  # one connection's bug must not take the server down
            conn.crashed(exc)

    def turn_away(self, conn: Connection, tid: int, what: str, detail: str, why: str) -> None:
        """No thread or process for this accepted connection (``what``: the error event's,
        ``detail``: the system's words): a short 503 saying ``why`` if it can go at once,
        then close; the server accepts on (there may be room for the next one)."""
        head, body = plain_answer(503, why, self.date.now())
        probe = self.probe
        if probe.active:
            probe.emit("error", conn.id, conn.fd, tid, what=what, detail=detail)
            probe.emit("response", conn.id, conn.fd, tid, status=503, length=len(body), path="",
                       head=head.decode("latin-1"), preview=body[:64].decode("latin-1"))
        sock = conn.sock
        try:
            # The request first (at most a moment's wait, on the accepting thread): closing
            # with it unread would reset the connection, and the answer with it.
            sock.settimeout(TURN_AWAY_WAIT)
            try:
                sock.recv(65536)
            except OSError:
                pass
            sock.sendall(head + body)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close(why)

    def _refuse(self, sock: socket.socket, conn_id: str, tid: int) -> None:
        """Over max connections: a short 503, then close. Never blocks the loop."""
        self.stats.refused += 1
        head, body = plain_answer(503, "the server is at its connection limit", self.date.now())
        p = self.probe
        if p.active:
            p.emit("accept", conn_id, sock.fileno(), tid, peer=conn_id.split(">")[0])
            p.emit("error", conn_id, sock.fileno(), tid, what="over_capacity",
                   detail=f"{self.busy()} connections open (max {self.config.max_connections})")
            p.emit("response", conn_id, sock.fileno(), tid, status=503, length=len(body), path="",
                   head=head.decode("latin-1"), preview=body[:64].decode("latin-1"))
        try:
            sock.setblocking(False)
            sock.send(head + body)
        except OSError:
            pass
        if p.active:
            p.emit("close", conn_id, sock.fileno(), tid, reason="over capacity")
        sock.close()

    def busy(self) -> int:
        """Connections being served now (what ``max_connections`` limits)."""
        return len(self.conns)

    def expire(self, now: float) -> None:
        for conn in [c for c in self.conns.values() if now >= c.deadline]:
            try:
                conn.expire_if_due(now)
            except Exception as exc:  # this connection's failure, not the loop's
                conn.crashed(exc)

    def _forget(self, conn: Connection) -> None:
        if self.conns.get(conn.fd) is conn:
            del self.conns[conn.fd]

    @property
    def wakeup_fd(self) -> int:
        """The fd whose readability wakes the loop (for ``signal.set_wakeup_fd``)."""
        return self._wake_w.fileno()

    def drain_wakeup(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass


def create_server(config: ServerConfig, probe: Probe | None = None) -> Server:
    config.check()
    return mode_spec(config.mode).load()(config, probe)

