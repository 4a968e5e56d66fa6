"""Built-in clients: well-behaved and misbehaving traffic with its own events.

Each client is a thread with a blocking socket, which keeps the behaviours
(think time, pacing, dribbling a request byte by byte) as plain as the lecture's
code. Client events carry the same connection id as the server's, computed from
the 4-tuple on this side.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

from .events import Probe
from .server import connection_id

BEHAVIOURS = ("normal", "abort", "half-close", "slow")


@dataclass
class LoadConfig:
    url: str
    clients: int = 1
    requests: int = 1  # per client
    keep_alive: bool = True
    pipeline: int = 1  # requests sent back to back before reading (keep-alive)
    rate: float = 0.0  # total requests per second across clients; 0 = as fast as possible
    think: float = 0.0  # seconds a client waits between requests
    linger_after_connect: float = 0.0  # seconds between connecting and the first send
    behaviour: str = "normal"
    slow_interval: float = 0.05  # "slow": seconds between the bytes of a request
    timeout: float = 10.0
    together: bool = False  # all clients connect before any sends, and close after all are done
    paths: list[str] = field(default_factory=list)  # default: the URL's path

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {self.url!r}")
        if self.clients < 1 or self.requests < 1 or self.pipeline < 1:
            raise ValueError("clients, requests and pipeline must be at least 1")
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.behaviour!r}")
        if self.rate < 0 or self.think < 0:
            raise ValueError("rate and think time cannot be negative")


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    expected_failures: int = 0  # aborted on purpose, or cut off as the behaviour intends
    connections: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> str:
        lines = [f"requests: {self.ok} ok, {self.failed} failed"
                 + (f", {self.expected_failures} cut off on purpose" if self.expected_failures else ""),
                 f"connections opened: {self.connections}",
                 f"elapsed: {self.elapsed:.3f} s, {self.rate:.0f} req/s",
                 f"latency: p50 {self.percentile(0.5) * 1e3:.2f} ms, "
                 f"p99 {self.percentile(0.99) * 1e3:.2f} ms"]
        if self.statuses:
            lines.append("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())))
        if self.errors:
            lines.append("errors: " + ", ".join(f"{k}: {v}" for k, v in self.errors.most_common()))
        return "\n".join(lines)


class _ResponseReader:
    """Counts complete responses in a byte stream (httptools, Content-Length aware)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, bool]] = []  # (status, keep_alive)

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self.parser.should_keep_alive()))

    def feed(self, data: bytes) -> None:
        self.parser.feed_data(data)


class _Client:
    def __init__(self, index: int, config: LoadConfig, probe: Probe, result: LoadResult,
                 lock: threading.Lock, barrier: threading.Barrier | None, t0: float) -> None:
        self.index = index
        self.config = config
        self.probe = probe
        self.result = result
        self.lock = lock
        self.barrier = barrier
        self.t0 = t0
        parts = urlsplit(config.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = parts.netloc
        self.paths = config.paths or [parts.path or "/"]
        self.sock: socket.socket | None = None
        self.conn_id: str | None = None
        self.tid = 0
        self.sent = 0

    # --------------------------------------------------------------- events
    def emit(self, kind: str, **data: object) -> None:
        if self.probe.active:
            self.probe.emit(kind, self.conn_id, self.sock.fileno() if self.sock else -1,
                            self.tid, **data)

    def count(self, ok: int = 0, failed: int = 0, expected: int = 0, error: str | None = None,
              latencies: list[float] | None = None, statuses: list[int] | None = None) -> None:
        with self.lock:
            r = self.result
            r.ok += ok
            r.failed += failed
            r.expected_failures += expected
            if error:
                r.errors[error] += 1
            if latencies:
                r.latencies.extend(latencies)
            for s in statuses or ():
                r.statuses[s] += 1

    # --------------------------------------------------------------- steps
    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.config.timeout)
        self.sock = sock
        self.conn_id = connection_id(sock.getsockname(), sock.getpeername())
        with self.lock:
            self.result.connections += 1
        self.emit("connect", peer=self.conn_id.split(">")[1])
        return sock

    def close(self, reason: str) -> None:
        if self.sock is not None:
            self.emit("close", reason=reason)
            self.sock.close()
            self.sock = None

    def request_bytes(self, n: int, last_closes: bool) -> bytes:
        out = []
        for i in range(n):
            path = self.paths[(self.sent + i) % len(self.paths)]
            close = not self.config.keep_alive or (last_closes and i == n - 1)
            out.append(f"GET {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                       f"User-Agent: sockscope-load\r\n"
                       f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode())
        self.sent += n
        return b"".join(out)

    def send(self, data: bytes) -> None:
        assert self.sock is not None
        if self.config.behaviour == "slow":
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
                self.emit("send", bytes=1, wanted=1)
                time.sleep(self.config.slow_interval)
            return
        self.sock.sendall(data)
        self.emit("send", bytes=len(data), wanted=len(data))

    def read_responses(self, n: int, until_eof: bool = False) -> tuple[list[tuple[int, bool]], bool]:
        """Read until ``n`` responses are complete; returns them and whether EOF came."""
        assert self.sock is not None
        reader = _ResponseReader()
        eof = False
        while len(reader.done) < n or until_eof:
            data = self.sock.recv(256 * 1024)
            self.emit("recv", bytes=len(data))
            if not data:
                eof = True
                break
            reader.feed(data)
        return reader.done, eof

    # --------------------------------------------------------------- run
    def run(self) -> None:
        self.tid = threading.get_native_id()
        config = self.config
        try:
            if config.together:
                self.connect()
                assert self.barrier is not None
                self.barrier.wait(config.timeout)
            if config.behaviour == "abort":
                self.run_abort()
            elif config.behaviour == "half-close":
                self.run_half_close()
            else:
                self.run_requests()
            if config.together:  # hold the connection until every client is done
                assert self.barrier is not None
                self.barrier.wait(config.timeout * max(1, config.requests))
        except threading.BrokenBarrierError:
            self.count(failed=1, error="not all clients connected in time")
        except Exception as exc:  # a client's bug is a failed request, not a silent thread death
            self.count(failed=1, error=f"client error: {exc!r}")
        finally:
            self.close("done")

    def pace(self, done: int) -> None:
        config = self.config
        if config.think:
            time.sleep(config.think)
        if config.rate:
            # Client i sends its k-th request at t0 + (i + k * clients) / rate.
            due = self.t0 + (self.index + done * config.clients) / config.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def run_requests(self) -> None:
        config = self.config
        left = config.requests
        done = 0
        while left > 0:
            self.pace(done)
            batch = min(left, config.pipeline if config.keep_alive else 1)
            start = time.monotonic()
            try:
                if self.sock is None:
                    self.connect()
                    if config.linger_after_connect:
                        time.sleep(config.linger_after_connect)
                # Keep-alive clients never ask the server to close: they close
                # themselves after the last answer (so the TIME_WAIT is theirs).
                self.send(self.request_bytes(batch, last_closes=False))
                answers, eof = self.read_responses(batch)
            except (OSError, httptools.HttpParserError) as exc:
                self.count(failed=left, error=_describe(exc))
                self.close("error")
                return
            took = time.monotonic() - start
            statuses = [status for status, _ in answers]
            good = sum(1 for s in statuses if s < 400)
            self.count(ok=good, failed=batch - good, latencies=[took] * len(answers),
                       statuses=statuses, error=None if good == batch else "HTTP error status")
            left -= batch
            done += batch
            server_closes = eof or any(not keep for _, keep in answers)
            if server_closes and not eof:
                # The server said it closes: read to its end-of-file, as an HTTP/1.0
                # client does, so that its FIN is first (and the TIME_WAIT its own),
                # not a race with our close.
                try:
                    self.read_responses(0, until_eof=True)
                except (OSError, httptools.HttpParserError):
                    pass  # it did not close in time, or reset: we close anyway
            if not config.keep_alive or server_closes:
                self.close("short" if not config.keep_alive else "server closed")
            elif left == 0 and not config.together:
                self.close("done")

    def run_abort(self) -> None:
        """Send requests, then reset the connection (SO_LINGER 0) without reading."""
        for _ in range(self.config.requests):
            try:
                if self.sock is None:
                    self.connect()
                self.send(self.request_bytes(1, last_closes=False))
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,  # type: ignore[union-attr]
                                     struct.pack("ii", 1, 0))
                self.close("abort (RST)")
                self.count(expected=1)
            except OSError as exc:
                self.count(failed=1, error=_describe(exc))
                self.close("error")

    def run_half_close(self) -> None:
        """Send the requests, shut down our sending side, read answers until EOF."""
        config = self.config
        start = time.monotonic()
        try:
            if self.sock is None:
                self.connect()
            self.send(self.request_bytes(config.requests, last_closes=False))
            # Reported before the call, as close() is: the FIN it sends follows the event.
            self.emit("shutdown", how="SHUT_WR")
            self.sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
            answers, _ = self.read_responses(config.requests, until_eof=True)
        except (OSError, httptools.HttpParserError) as exc:
            self.count(failed=config.requests, error=_describe(exc))
            return
        statuses = [s for s, _ in answers]
        good = sum(1 for s in statuses if s < 400)
        self.count(ok=good, failed=config.requests - good, statuses=statuses,
                   latencies=[time.monotonic() - start] * len(answers),
                   error=None if good == config.requests else "missing or failed answers")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def run_load(config: LoadConfig, probe: Probe | None = None) -> LoadResult:
    """Run the clients to completion (each bounded by ``config.timeout`` per step)."""
    config.check()
    probe = probe if probe is not None else Probe("client")
    result = LoadResult()
    lock = threading.Lock()
    barrier = threading.Barrier(config.clients) if config.together else None
    old_stack = threading.stack_size()
    if config.clients > 64:
        threading.stack_size(256 * 1024)
    t0 = time.monotonic()
    threads = [threading.Thread(target=_Client(i, config, probe, result, lock, barrier, t0).run,
                                name=f"client-{i}", daemon=True)
               for i in range(config.clients)]
    try:
        for t in threads:  # the stack size applies when a thread starts
            t.start()
    finally:
        threading.stack_size(old_stack)
    for t in threads:
        t.join()
    result.elapsed = time.monotonic() - t0
    return result
