"""The control port: ``sockscope serve --control HOST:PORT``.

A lecturer's engine runs on one machine (a VM, a lab server); a SockScope
window or ``sockscope record --attach`` on another attaches to it over TCP,
watches its live trace and steps it. ``--control`` with no value keeps the
old way: stepping commands on standard input.

Protocol (version 1), line-based, every line ends with ``\\n``:

1. The client connects and sends ``SOCKSCOPE 1 TOKEN``. TOKEN is the one
   the engine printed (``control: HOST:PORT  token: TOKEN``), or the one it
   was given (``--token``, or ``SOCKSCOPE_TOKEN`` in its environment).
2. The engine compares the token in constant time (``hmac.compare_digest``).
   On any failure (a wrong token, another version, a line that is not the
   greeting, no newline within 512 bytes, nothing within 5 seconds) it waits,
   1 s for an address's first failure, half a second more for each further one
   (at most 5 s; an address's failures are forgotten after 10 minutes of
   none), then answers ``REFUSED token`` (or ``REFUSED protocol``,
   ``REFUSED version``) and closes. Only the failing connection waits, in its
   own thread: the server and other clients go on. With too many greetings
   pending (64) or clients attached (16) it answers ``REFUSED busy``.
3. On success it answers ``OK``, then streams the live trace exactly as
   ``serve --trace -`` writes it: a header line (``"format":
   "sockscope-trace"``, with ``url`` and ``mode``), the server's ``mode`` and
   ``listen`` events (how it was started, so a late window can draw it), then
   every event from that moment on, one JSON object per line.
4. Meanwhile the client may send command lines, the ones standard input
   takes: Enter (an empty line) releases one held action, a number that many,
   ``c`` (``run``) runs freely, ``s`` (``step``) holds each action again (one
   per Enter), ``load OPTIONS`` runs the
   built-in clients inside the engine, ``q`` stops the engine. Lines longer
   than 4096 bytes are ignored.

The engine never waits for a client: each attached client is a sink with a
bounded buffer (``--control-buffer`` events). A client that reads too slowly
loses events, counted; once it catches up (or as the engine stops) a
``dropped`` event (``"sink": "control"``) says how many. A client that
vanishes costs only its own sink. Events are serialized once per batch,
whatever the number of clients.

What travels is not encrypted: request heads (which may hold cookies), the
trace's events, the token itself. The port binds 127.0.0.1 unless told
otherwise; reach it from elsewhere through an SSH tunnel
(``ssh -L 7891:127.0.0.1:7891 user@vm``).
"""
from __future__ import annotations

import hmac
import os
import secrets
import socket
import threading
import time
from collections import deque
from typing import Any, Callable

import orjson

from .events import Event
from .trace import make_header, serialize

PROTOCOL = "SOCKSCOPE"
VERSION = 1
DEFAULT_HOST = "127.0.0.1"
TOKEN_MIN = 16
GREETING_MAX = 512  # bytes: a greeting longer than this is not one
GREETING_TIMEOUT = 5.0  # seconds to send the greeting
COMMAND_MAX = 4096
FIRST_DELAY = 1.0  # seconds before answering an address's first failure
DELAY_STEP = 0.5  # more for each further failure from that address
DELAY_CAP = 5.0
FORGET_AFTER = 600.0  # an address's failures are forgotten after this long without one
MAX_GREETINGS = 64
MAX_CLIENTS = 16
DEFAULT_BUFFER = 100_000  # events a client may fall behind by before they are dropped
# The server's events that say how it was started: every client gets them first.
_CONTEXT = frozenset(("mode", "listen"))


class ControlError(ValueError):
    """A --control address or a token that cannot be used."""


def parse_address(text: str, default_host: str = DEFAULT_HOST) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (``[::1]:PORT`` for IPv6) as (host, port)."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise ControlError(f"{text!r} is not HOST:PORT (a port is a number)") from None
    if not 0 <= number <= 65535:
        raise ControlError(f"{text!r}: a port is from 0 to 65535")
    return host or default_host, number


def check_token(token: str) -> str:
    """A token given by a person: printable ASCII, no spaces, at least 16 characters."""
    if len(token) < TOKEN_MIN:
        raise ControlError(f"the token must be at least {TOKEN_MIN} characters")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise ControlError("the token must be printable ASCII without spaces")
    if token.startswith("-"):
        raise ControlError("the token must not begin with '-' (a command line would read "
                           "it as an option)")
    return token


def new_token() -> str:
    """32 random characters (URL-safe base64), never starting with "-": a command line
    (``record --token TOKEN``) would read that as an option."""
    for _ in range(1000):
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token
    return "t" + secrets.token_urlsafe(24)[1:]  # (1 in 64**1000: never)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with its ``--token``'s value hidden (headers carry argv)."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
        elif arg == "--token":
            out.append(arg)
            hide = True
        elif arg.startswith("--token="):
            out.append("--token=***")
        else:
            out.append(arg)
    return out


def greeting(token: str) -> bytes:
    return f"{PROTOCOL} {VERSION} {token}\n".encode()


class _Client:
    """One attached client: a bounded queue of serialized batches, a thread that
    sends them, a thread that reads its commands."""

    def __init__(self, owner: "ControlServer", sock: socket.socket, peer: str,
                 max_pending: int) -> None:
        self.owner = owner
        self.sock = sock
        self.peer = peer
        self.max_pending = max_pending
        self.sent = 0
        self.dropped = 0
        self._reported = 0
        self._last_seq = 0
        self._chunks: deque[tuple[int, bytes]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._finishing = False
        self._gone = False
        self._sender = threading.Thread(target=self._send_loop, daemon=True,
                                         name=f"sockscope-control-send-{peer}")
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"sockscope-control-read-{peer}")

    def start(self, first: bytes) -> None:
        with self._cond:
            self._chunks.append((0, first))
        self._sender.start()
        self._reader.start()

    def offer(self, count: int, data: bytes, last_seq: int) -> None:
        """From the emitting thread (or the pump): never blocks on the client."""
        with self._cond:
            self._last_seq = last_seq
            if self._gone or self._finishing:
                return
            if self._queued + count > self.max_pending:
                self.dropped += count  # it is this far behind: shed, and say so later
                return
            self._queued += count
            self._chunks.append((count, data))
            self._cond.notify()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._chunks and not self._finishing and not self._gone:
                    self._cond.wait()
                if self._gone:
                    return
                if not self._chunks:  # finishing, all sent
                    data, count = self._dropped_line(), 0
                    if not data:
                        return
                else:
                    count, data = self._chunks.popleft()
                    self._queued -= count
                    if not self._chunks:  # caught up: say what it missed
                        data += self._dropped_line()
            try:
                self.sock.sendall(data)  # blocks this thread only; the GIL is released
            except OSError:
                self._lost()
                return
            self.sent += count
            if count == 0 and self._finishing and not self._chunks:
                return

    def _dropped_line(self) -> bytes:
        """Called with the condition held."""
        missed = self.dropped - self._reported
        if not missed:
            return b""
        self._reported += missed
        return serialize([Event(self._last_seq, time.monotonic_ns(), "engine", "dropped", None,
                                -1, 0, {"count": missed, "sink": "control"})])

    def _read_loop(self) -> None:
        buffer = b""
        skipping = False  # inside a line longer than COMMAND_MAX: ignored to its end
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            buffer += data
            while True:
                line, sep, rest = buffer.partition(b"\n")
                if not sep:
                    if len(buffer) > COMMAND_MAX:
                        buffer, skipping = b"", True
                    break
                buffer = rest
                if skipping:
                    skipping = False
                    continue
                if len(line) <= COMMAND_MAX:
                    self.owner.command(line.decode("utf-8", "replace"), self.peer)

    def _lost(self) -> None:
        """The client went away (or broke): only its own sink is lost."""
        with self._cond:
            if self._gone:
                return
            self._gone = True
            self._chunks.clear()
            self._cond.notify_all()
        self.owner.detach(self)
        _shut(self.sock)

    def finish(self, deadline: float) -> None:
        """The engine stops: send what is queued (and a last ``dropped``) until the
        deadline, then close."""
        with self._cond:
            self._finishing = True
            self._cond.notify_all()
        self._sender.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._gone = True
            self._cond.notify_all()
        _shut(self.sock)
        self._sender.join(1.0)
        self._reader.join(1.0)
        try:
            self.sock.close()
        except OSError:
            pass


def _refuse_fast(sock: socket.socket) -> None:
    try:
        sock.setblocking(False)
        sock.send(b"REFUSED busy\n")
    except OSError:
        pass
    sock.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes this socket's threads (send, recv)
    except OSError:
        pass


class ControlServer:
    """The control port: a sink that fans the engine's events out to attached
    clients, and the threads that accept them.

    Add it as a sink of every probe whose events a client should see (it is
    free while nobody is attached: one lookup per event)."""

    def __init__(self, host: str, port: int, token: str, *,
                 header: dict[str, Any] | None = None, max_pending: int = DEFAULT_BUFFER,
                 batch: int = 256, interval: float = 0.05,
                 say: Callable[[str], None] = print) -> None:
        self.token = token.encode()
        self.header = header or {}
        self.max_pending = max_pending
        self.say = say
        self.on_command: Callable[[str], str | None] | None = None
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name == "posix":
                self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(address)
            self._listener.listen(64)
        except OSError:
            self._listener.close()
            raise
        bound = self._listener.getsockname()
        self.host, self.port = bound[0], bound[1]
        self._clients: tuple[_Client, ...] = ()
        self._pending: list[Event] = []
        self._batch = batch
        self._interval = interval
        self._context: dict[str, Event] = {}
        self._lock = threading.Lock()  # the clients, the pending batch
        self._failures: dict[str, tuple[int, float]] = {}  # address: (failures, last)
        self._greeting = threading.BoundedSemaphore(MAX_GREETINGS)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.attached = 0  # clients that ever attached
        self.refused = 0

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    # ------------------------------------------------------------ the sink
    def __call__(self, event: Event) -> None:
        if event[3] in _CONTEXT and event[2] == "server":
            self._context[event[3]] = event
        if not self._clients:
            return
        pending = self._pending
        pending.append(event)
        if len(pending) >= self._batch:
            self._take()

    def _take(self) -> None:
        with self._lock:
            count = len(self._pending)
            if not count or not self._clients:
                del self._pending[:count]
                return
            batch = self._pending[:count]  # others may append meanwhile: a prefix
            del self._pending[:count]
            data = serialize(batch)  # once, whatever the number of clients
            for client in self._clients:
                client.offer(count, data, batch[-1][0])

    def raw(self, count: int, data: bytes) -> None:
        """``count`` events serialized elsewhere, whole lines (the kernel side's): to every
        attached client as they are."""
        if not self._clients:
            return
        with self._lock:
            for client in self._clients:
                client.offer(count, data, client._last_seq)

    def _pump(self) -> None:
        while not self._stop.wait(self._interval):  # a partial batch waits one interval
            self._take()

    # ------------------------------------------------------------ clients
    def start(self, on_command: Callable[[str], str | None] | None = None) -> "ControlServer":
        self.on_command = on_command
        for target, name in ((self._accept_loop, "sockscope-control"),
                             (self._pump, "sockscope-control-pump")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.5)  # wakes to see a stop; no busy loop
        while not self._stop.is_set():
            try:
                sock, address = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.1)  # EMFILE...: let it pass, never spin
                continue
            sock.settimeout(None)
            peer = f"{address[0]}:{address[1]}"
            if not self._greeting.acquire(blocking=False):
                _refuse_fast(sock)  # no thread, no wait: the accept loop goes on
                continue
            threading.Thread(target=self._greet, args=(sock, address[0], peer), daemon=True,
                             name=f"sockscope-control-greet-{peer}").start()

    def _greet(self, sock: socket.socket, ip: str, peer: str) -> None:
        try:
            why = self._check_greeting(sock)
            if why is None and len(self._clients) >= MAX_CLIENTS:
                self._refuse_now(sock, b"busy")
                return
            if why is not None:
                self.refused += 1
                time.sleep(self._failed(ip))  # this connection only waits
                self._refuse_now(sock, why)
                return
            self._attach(sock, peer)
        except Exception:  # noqa: BLE001 - whatever a client sends, the engine serves on
            _shut(sock)
            sock.close()
        finally:
            self._greeting.release()

    def _check_greeting(self, sock: socket.socket) -> bytes | None:
        """None when the greeting holds the token, else what to refuse it for."""
        sock.settimeout(GREETING_TIMEOUT)
        deadline = time.monotonic() + GREETING_TIMEOUT
        data = b""
        try:
            while b"\n" not in data and len(data) <= GREETING_MAX:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                piece = sock.recv(GREETING_MAX + 1 - len(data))
                if not piece:
                    return b"protocol"
                data += piece
        except OSError:  # too slow (a timeout), or reset
            return b"protocol"
        line, sep, _ = data.partition(b"\n")
        if not sep:
            return b"protocol"
        words = line.rstrip(b"\r").split(b" ")
        if len(words) != 3 or words[0] != PROTOCOL.encode():
            return b"protocol"
        if words[1] != str(VERSION).encode():
            return b"version"
        if not hmac.compare_digest(words[2], self.token):
            return b"token"
        return None

    def _failed(self, ip: str) -> float:
        """The wait before answering a failure from ``ip``: it grows with its failures."""
        now = time.monotonic()
        with self._lock:
            count, last = self._failures.get(ip, (0, now))
            if now - last > FORGET_AFTER:
                count = 0
            count += 1
            self._failures[ip] = (count, now)
            if len(self._failures) > 4096:  # many addresses: forget the oldest
                oldest = min(self._failures, key=lambda k: self._failures[k][1])
                del self._failures[oldest]
        return min(FIRST_DELAY + DELAY_STEP * (count - 1), DELAY_CAP)

    def _refuse_now(self, sock: socket.socket, why: bytes) -> None:
        """Answer REFUSED, then read what the client still sends (bounded) before the
        close, so that the answer is not lost to a reset."""
        try:
            sock.settimeout(2.0)
            sock.sendall(b"REFUSED " + why + b"\n")
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 2.0
            taken = 0
            while taken < 8 << 20 and time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                piece = sock.recv(65536)
                if not piece:
                    break
                taken += len(piece)
        except OSError:
            pass
        finally:
            sock.close()

    def _attach(self, sock: socket.socket, peer: str) -> None:
        sock.settimeout(None)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        client = _Client(self, sock, peer, self.max_pending)
        header = make_header(**self.header)
        first = b"OK\n" + orjson.dumps(header) + b"\n"
        with self._lock:
            # What was emitted before this moment goes to the others only.
            count = len(self._pending)
            if count and self._clients:
                batch = self._pending[:count]
                del self._pending[:count]
                data = serialize(batch)
                for other in self._clients:
                    other.offer(count, data, batch[-1][0])
            elif count:
                del self._pending[:count]
            context = [self._context[k] for k in ("mode", "listen") if k in self._context]
            if context:
                first += serialize(context)
            if self._stop.is_set():
                raise OSError("stopping")
            self._clients = self._clients + (client,)
            self.attached += 1
        # Said before the client is told OK: its threads may see it leave (and say
        # "detached") before this thread would get to it.
        self.say(f"control: {peer} attached")
        client.start(first)

    def detach(self, client: _Client) -> None:
        with self._lock:
            if client not in self._clients:
                return
            self._clients = tuple(c for c in self._clients if c is not client)
        # Said even while the engine stops: a client that left as it stopped is no longer
        # among those ``close`` returns (and whose counts ``serve`` prints), and its counts
        # were said nowhere (seen under load: the stalled-client test found no count).
        self.say(f"control: {client.peer} detached ({client.sent} events sent, "
                 f"{client.dropped} dropped)")

    def command(self, line: str, peer: str) -> None:
        if self.on_command is None:
            return
        problem = self.on_command(line)
        if problem:
            self.say(f"control: {peer}: ? {problem}")

    # ------------------------------------------------------------ the end
    def close(self, timeout: float = 2.0) -> list[_Client]:
        """Stop accepting; send every client what is queued (until ``timeout``), then
        close them. Returns the clients that were attached."""
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        for thread in self._threads:
            thread.join(2.0)
        self._take()
        with self._lock:
            clients, self._clients = self._clients, ()
        deadline = time.monotonic() + timeout
        for client in clients:
            client.finish(deadline)
        return list(clients)


# ---------------------------------------------------------------- the command line
def open_control(args: Any, config: Any) -> "ControlServer | int":
    """``serve --control HOST:PORT``: the bound control port (not yet accepting),
    or the exit code after saying why not."""
    import sys

    def fail(text: str, code: int) -> int:
        print(f"sockscope: --control {args.control}: {text}", file=sys.stderr)
        return code

    if args.lab:
        return fail("the lab's network is private: nothing outside could reach the port "
                    "(use --control alone there)", 2)
    try:
        host, port = parse_address(args.control)
        token = args.token or os.environ.get("SOCKSCOPE_TOKEN") or new_token()
        check_token(token)
    except ControlError as exc:
        return fail(str(exc), 2)
    if args.control_buffer < 1:
        return fail("--control-buffer must be 1 or more", 2)
    header = {"role": "server", "argv": redact_argv(sys.argv[1:]),
              "mode": config.mode, "trigger": config.trigger, "policy": config.policy,
              "attached": True}
    try:
        return ControlServer(host, port, token, header=header, max_pending=args.control_buffer,
                             say=lambda text: print(text, flush=True))
    except OSError as exc:
        return fail(f"cannot listen: {exc.strerror or exc}", 1)


class Refused(Exception):
    """The engine answered REFUSED (``why``: token, protocol, version, busy)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def attach(host: str, port: int, token: str, timeout: float = 5.0) -> tuple[socket.socket, bytes]:
    """Connect and greet: the socket (blocking) and what already followed ``OK``.
    Raises ``Refused`` or ``OSError``."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(greeting(token))
        sock.settimeout(DELAY_CAP + timeout)  # a failure is answered only after its wait
        data = b""
        while b"\n" not in data:
            piece = sock.recv(4096)
            if not piece:
                raise Refused("closed")
            data += piece
            if b"\n" not in data and len(data) > GREETING_MAX:
                raise Refused("protocol")
        answer, _, rest = data.partition(b"\n")
        if answer.strip() != b"OK":
            words = answer.split()
            if not words or words[0] != b"REFUSED":  # something else answers on that port
                said = answer.strip()[:60].decode("ascii", "replace")
                raise Refused(f"not a SockScope control port (it answered {said!r})")
            raise Refused(words[1].decode("ascii", "replace") if len(words) > 1 else "closed")
        sock.settimeout(None)
        return sock, rest
    except BaseException:
        sock.close()
        raise


def cmd_record(args: Any) -> int:
    """``sockscope record --attach HOST:PORT --token TOKEN --seconds S --trace OUT``."""
    import signal
    import sys

    def fail(text: str, code: int = 1) -> int:
        print(f"sockscope record: {text}", file=sys.stderr)
        return code

    try:
        host, port = parse_address(args.attach)
    except ControlError as exc:
        return fail(str(exc), 2)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    token = args.token or os.environ.get("SOCKSCOPE_TOKEN")
    if not token:
        return fail("--token is needed (or SOCKSCOPE_TOKEN): the engine printed it on its "
                    "'control:' line", 2)
    if args.seconds < 0:
        return fail("--seconds must be 0 or more", 2)
    try:
        sock, data = attach(host, port, token)
    except Refused as exc:
        if exc.why == "token":
            return fail(f"the engine at {where} refused the token")
        if exc.why.startswith("not a SockScope"):
            return fail(f"{where} is {exc.why}")
        return fail(f"the engine at {where} refused to attach ({exc.why})")
    except OSError as exc:
        return fail(f"cannot attach to {where}: {exc.strerror or exc} (is "
                    f"'sockscope serve --control {where}' running there?)")
    try:
        out = open(args.trace, "wb")
    except OSError as exc:
        sock.close()
        return fail(f"cannot write {args.trace}: {exc.strerror}", 2)
    try:

        def stopped(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stopped)
        events, header = 0, None
        deadline = time.monotonic() + args.seconds if args.seconds else float("inf")
        try:
            with sock:
                while True:
                    *lines, data = data.split(b"\n")  # data: the unfinished last line
                    for line in lines:
                        if not line.strip():
                            continue
                        if header is None:
                            try:
                                header = orjson.loads(line)
                            except orjson.JSONDecodeError:
                                header = {}
                            if not isinstance(header, dict) or header.get("format") != "sockscope-trace":
                                return fail(f"the engine at {where} sent no trace header")
                            header["recorded_from"] = where
                            out.write(orjson.dumps(header) + b"\n")
                            continue
                        out.write(line + b"\n")
                        events += 1
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    sock.settimeout(min(left, 0.5))
                    try:
                        piece = sock.recv(1 << 16)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    if not piece:
                        break  # the engine stopped
                    data += piece
        except KeyboardInterrupt:
            pass
        if header is None:
            return fail(f"the engine at {where} closed before sending its trace header")
    finally:
        out.close()
    print(f"recorded {events} events from {where} to {args.trace}", flush=True)
    return 0
