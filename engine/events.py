"""The event vocabulary and the probe that emits it.

Every event is an immutable ``Event`` tuple. The common fields are the same
for every kind; kind-specific fields live in ``data`` (a dict nobody mutates
after emission). ``KINDS`` documents the vocabulary: the visualizer and the
trace reader rely on these names, so keep them stable once shipped.
"""
from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, NamedTuple

SOURCES = ("server", "client", "kernel", "capture", "engine")

# kind -> the kind-specific fields it carries (documentation and test oracle).
KINDS: dict[str, tuple[str, ...]] = {
    "listen": ("host", "port", "backlog", "reuseaddr"),
    "accept": ("peer",),
    "connect": ("peer",),
    "recv": ("bytes",),
    "send": ("bytes", "wanted"),
    "eagain": ("op",),
    "shutdown": ("how",),
    "close": ("reason",),
    "epoll_ctl": ("op", "mask"),
    "epoll_wait": ("timeout", "ready"),
    "poll_sweep": ("sockets", "tries", "eagain", "useful"),
    "thread_start": ("name",),
    "thread_exit": ("name",),
    # head: the request head as received (request line, headers, blank line;
    # latin-1), at most 2048 characters; longer ones also carry
    # head_truncated: true. Empty when where the request began is not known
    # (after a chunked request body spanning reads; recording began mid-request).
    "request": ("method", "path", "version", "keep_alive", "head"),
    # head: the response head as sent (status line, headers, blank line; latin-1);
    # preview: the first 64 bytes of the body sent (latin-1), "" when none is
    # (HEAD, an empty file).
    "response": ("status", "length", "path", "head", "preview"),
    # TCP state of one end of a connection. "source": "inferred" from the
    # segments (engine/kernel/segments.py: each change placed at its segment,
    # with the trigger, e.g. "rcv FIN", and the segment's origin), or from the
    # syscalls where there are no packets (with "via"); "observed" from
    # sock_diag or /proc where nothing else tells (sockets already there,
    # TIME_WAIT's end, a socket a timer closed; also timer, expires_ms, rqueue,
    # wqueue, and seen_from_ns: when the dump that saw it began), or "traced"
    # (the kernel's tracepoint, for a connection the segments never showed).
    "tcp_state": ("side", "state", "previous", "source"),
    # The kernel's word on a state the segments gave: source "traced"
    # (sock:inet_sock_set_state, as root: every transition at the kernel's
    # time) or "observed" (a sock_diag poll, with timer, expires_ms, rqueue,
    # wqueue); verdict "confirms" or "contradicts" (then "inferred": what the
    # segments said), none when the segments never showed the connection.
    "state_check": ("side", "state", "previous", "source"),
    # The kernel retransmitted a segment (what: "segment" or "synack"), or an
    # end sent or received a reset (direction "sent" / "received"): tracepoints.
    "retransmit": ("side", "state", "what", "source"),
    "reset": ("side", "direction", "state", "source"),
    # The listening socket's accept queue: connections waiting for accept()
    # (sock_diag's rqueue of the LISTEN socket) and the backlog (its wqueue).
    "accept_queue": ("length", "backlog", "source"),
    # A TCP segment. flags like "SYN|ACK"; origin "captured" or "derived".
    "packet": ("sport", "dport", "flags", "tcp_seq", "ack", "len", "win", "origin"),
    # Stepping: an action (accept, recv, send, close, wait) is "held" before it
    # runs, then "released" by a step (or "running" when stepping was turned off).
    "gate": ("action", "state"),
    "mode": ("mode", "trigger", "policy", "multiplexer"),
    # The serving process's CPU use over the last interval (100 = one core),
    # sampled by the engine with --trace; user_s/system_s are cumulative.
    "cpu": ("percent", "user_s", "system_s", "interval_s"),
    "error": ("what", "detail"),
    "dropped": ("count", "sink"),
}


class Event(NamedTuple):
    seq: int
    t_ns: int
    src: str
    kind: str
    conn: str | None
    fd: int
    thread: int
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self[0], "t_ns": self[1], "src": self[2], "kind": self[3],
                "conn": self[4], "fd": self[5], "thread": self[6], **self[7]}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Event":
        """Build an event from a parsed trace line; ``row`` becomes its data."""
        pop = row.pop
        seq, t_ns, src, kind = pop("seq"), pop("t_ns"), pop("src"), pop("kind")
        conn, fd, thread = pop("conn", None), pop("fd", -1), pop("thread", 0)
        if type(seq) is not int or type(t_ns) is not int or type(fd) is not int \
                or type(thread) is not int:
            seq, t_ns, fd, thread = int(seq), int(t_ns), int(fd), int(thread)
        if type(src) is not str or type(kind) is not str:
            raise TypeError("src and kind must be strings")
        if conn is not None and type(conn) is not str:
            raise TypeError("conn must be a string (a connection id) or null")
        if "ready" in row:
            row["ready"] = [tuple(pair) for pair in row["ready"] or ()]
        # A million events name a few kinds, connections and threads: one object each.
        return _new_tuple(cls, (seq, t_ns, _intern(src), _intern(kind),
                                _intern(conn) if type(conn) is str else conn, fd,
                                _THREADS.setdefault(thread, thread), row))


_new_tuple = tuple.__new__
_intern = sys.intern
_THREADS: dict[int, int] = {}
_SEQUENCE = itertools.count(1)
_monotonic_ns = time.monotonic_ns

Sink = Callable[[Event], None]


class Probe:
    """Where the engine reports what it does.

    Call sites guard with ``if probe.active:`` so that emitting costs one
    attribute read when nobody listens. Sinks must not block; a sink that
    raises is removed and the failure is counted, never propagated into the
    server's loop.
    """

    def __init__(self, src: str = "server") -> None:
        self.src = src
        self.active = False
        self._sinks: tuple[Sink, ...] = ()
        self._seq = _SEQUENCE  # one sequence for every probe of the process
        self._lock = threading.Lock()
        self.failed_sinks: list[tuple[Sink, BaseException]] = []

    def add_sink(self, sink: Sink) -> None:
        with self._lock:
            self._sinks = self._sinks + (sink,)
            self.active = True

    def remove_sink(self, sink: Sink) -> None:
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)
            self.active = bool(self._sinks)

    def emit(self, kind: str, conn: str | None = None, fd: int = -1, thread: int = 0,
             **data: Any) -> None:
        self.emit_data(kind, conn, fd, thread, data)

    def emit_data(self, kind: str, conn: str | None, fd: int, thread: int,
                  data: dict[str, Any]) -> None:
        """``emit`` with the kind's fields as a ready dict (the caller's literal,
        never touched again): no keyword packing, about 0.25 µs less per event
        on the per-request path."""
        # tuple.__new__ skips NamedTuple's Python-level __new__: this runs per event.
        event = _new_tuple(Event, (next(self._seq), _monotonic_ns(), self.src, kind, conn, fd,
                                   thread, data))
        for sink in self._sinks:
            try:
                sink(event)
            except Exception as exc:  # a broken sink must never break the server
                self.failed_sinks.append((sink, exc))
                self.remove_sink(sink)

    def emit_at(self, t_ns: int, kind: str, conn: str | None = None, fd: int = -1,
                thread: int = 0, **data: Any) -> None:
        """Emit an event that happened at ``t_ns`` (derived after the fact)."""
        event = _new_tuple(Event, (next(self._seq), t_ns, self.src, kind, conn, fd, thread, data))
        for sink in self._sinks:
            try:
                sink(event)
            except Exception as exc:
                self.failed_sinks.append((sink, exc))
                self.remove_sink(sink)


class MemorySink:
    """Keeps events in memory (tests, scripts). Bounded: counts what it drops."""

    def __init__(self, maxlen: int | None = None) -> None:
        self.events: deque[Event] = deque()
        self.maxlen = maxlen
        self.dropped = 0
        self._cond = threading.Condition()
        self._waiting = 0  # threads in wait_for: only then is appending followed by a notify

    def __call__(self, event: Event) -> None:
        if self.maxlen is not None and len(self.events) >= self.maxlen:
            self.dropped += 1
            return
        self.events.append(event)
        if self._waiting:
            with self._cond:
                self._cond.notify_all()

    def of_kind(self, *kinds: str) -> list[Event]:
        return [e for e in list(self.events) if e.kind in kinds]

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 5.0) -> bool:
        """Wait (bounded) until ``predicate(events)`` holds; returns whether it did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            try:
                while not predicate(list(self.events)):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, 0.05))
                return True
            finally:
                self._waiting -= 1
