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
    # Idle sweeps in a row (nothing but EAGAIN) are one event: sweeps (how many; absent:
    # one sweep, its EAGAIN events recorded one by one) and since_ns (the first one's
    # start); tries and eagain are their sums, the event is dated at the last one's end.
    "poll_sweep": ("sockets", "tries", "eagain", "useful"),
    "thread_start": ("name",),
    "thread_exit": ("name",),
    # A coroutine that serves one connection begins or ends: a greenlet (gevent;
    # greenlet: its id) or an asyncio task (task: its name). Every event of that
    # connection then carries the same greenlet or task, and thread: the OS thread
    # it ran on (one for them all).
    "task_start": ("name",),
    "task_end": ("name",),
    # processes: the server forked child (its pid) to serve the connection; the
    # connected socket now has two descriptors, the parent's and the child's. Every
    # event carries pid, the process that made it; a close says which copy it closed
    # ("parent" or "child") and whether it was the last (only the last one closes the
    # socket: FIN). process_exit: the parent reaped the child (status: its exit code,
    # or -N for signal N).
    "fork": ("child",),
    "process_exit": ("child", "status"),
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
    # select, poll and selectors: a change of the watched set (op ADD/MOD/DEL) and a
    # call (call "select"/"poll"/the selector's class; fds: how many it handed the
    # kernel to scan). epoll's own are epoll_ctl and epoll_wait. gevent's hub records a
    # wait per turn of its loop (call "libev epoll_wait", ready null: libev does not
    # say which fds) with blocked_ns: how long it slept in the kernel.
    "interest": ("op", "mask", "call"),
    "wait": ("call", "timeout", "ready", "fds"),
    # The serving process's CPU use over the last interval (100 = one core),
    # sampled by the engine with --trace; user_s/system_s are cumulative.
    "cpu": ("percent", "user_s", "system_s", "interval_s"),
    "error": ("what", "detail"),
    # A lesson's look at the served site when it recorded: whether the file the lecture's
    # server would open ("./html" + its regex's group(1)) exists there (src engine).
    "site_check": ("path", "exists"),
    "dropped": ("count", "sink"),
}

# A readiness call and a change of what it watches, whatever the multiplexer: epoll's
# own names, or the neutral ones of select, poll and selectors (read them alike).
WAIT_KINDS = ("epoll_wait", "wait")
INTEREST_KINDS = ("epoll_ctl", "interest")

# ---------------------------------------------------------------- reading: what a field may hold
# A trace line is checked once, as it is read (``Event.from_dict``): the model and
# every view then rely on these types and ranges, and a file that breaks them is
# refused naming the line and the field, never a traceback deep in a view.
_I64 = 2**63 - 1  # the log's int64 columns
_I32 = 2**31 - 1  # its int32 fd column
_U32 = 2**32 - 1  # TCP sequence numbers, epoll masks
_NONE = type(None)
_INT, _NINT = frozenset((int,)), frozenset((int, _NONE))
_NUM, _NNUM = frozenset((int, float)), frozenset((int, float, _NONE))
_STR, _NSTR = frozenset((str,)), frozenset((str, _NONE))
_BOOL, _NBOOL = frozenset((bool,)), frozenset((bool, _NONE))
_LIST = frozenset((list, _NONE))
_DICT = frozenset((dict, _NONE))


class FieldError(ValueError):
    """A field of a trace line that holds the wrong type or an impossible value."""

    def __init__(self, name: str, value: Any, expected: str) -> None:
        self.field = name
        shown = repr(value)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        super().__init__(f"field {name!r} is {shown}: expected {expected}")


def _text(types: frozenset, lo: Any = None, hi: Any = None) -> str:
    """How a field's expected type reads in a message."""
    if str in types and int in types:
        what = "a string or an integer"
    elif types & _NUM:
        what = "an integer" if float not in types else "a number"
        if lo is not None:
            what += f" from {lo} to {hi}"
    elif str in types:
        what = "a string"
    elif bool in types:
        what = "true or false"
    elif list in types:
        what = "a list of strings" if lo == _STR else "a list"
    else:
        what = "an object"
    return what + (" or null" if _NONE in types else "")


def _spec(**fields: tuple) -> tuple[tuple[str, frozenset, Any, Any, str], ...]:
    """Per field: (name, the types it may hold, lowest and highest (a number), or the
    types of its items (a list) and None, message)."""
    out = []
    for name, (types, *bounds) in fields.items():
        lo, hi = bounds if bounds else (None, None)
        out.append((name, types, lo, hi, _text(types, lo, hi)))
    return tuple(out)


_STATE_FIELDS = dict(side=(_STR,), state=(_NSTR,), previous=(_NSTR,), source=(_NSTR,),
                     verdict=(_NSTR,), trigger=(_NSTR,), segment=(_NSTR,), origin=(_NSTR,),
                     via=(_LIST, _STR, None), timer=(_NSTR,), expires_ms=(_NNUM, -_I64, _I64),
                     rqueue=(_NINT, 0, _I64), wqueue=(_NINT, 0, _I64),
                     seen_from_ns=(_NINT, 0, _I64), kernel=(_NSTR,), inferred=(_NSTR,))
# The fields the model and the views read (KINDS, and what some writers add);
# fields not named here are shown as they are and never computed with.
FIELD_TYPES: dict[str, tuple[tuple[str, frozenset, Any, Any, str], ...]] = {
    "listen": _spec(host=(_NSTR,), port=(_NINT, 0, 65535), backlog=(_INT, -_I32 - 1, _I32),
                    reuseaddr=(_NBOOL,)),
    "accept": _spec(peer=(_NSTR,)),
    "connect": _spec(peer=(_NSTR,)),
    "recv": _spec(bytes=(_INT, 0, _I64)),
    "send": _spec(bytes=(_INT, 0, _I64), wanted=(_INT, 0, _I64)),
    "eagain": _spec(op=(_NSTR,)),
    "shutdown": _spec(how=(_NSTR,)),
    "close": _spec(reason=(_NSTR,), copy=(_NSTR,), last=(_NBOOL,), pid=(_NINT, 0, _I64),
                   bytes_acked=(_NINT, 0, _I64),
                   bytes_received=(_NINT, 0, _I64), rtt_us=(_NINT, 0, _I64),
                   segs_in=(_NINT, 0, _I64), segs_out=(_NINT, 0, _I64),
                   total_retrans=(_NINT, 0, _I64)),
    "epoll_ctl": _spec(op=(_NSTR,), mask=(frozenset((str, int)),)),
    "epoll_wait": _spec(timeout=(_NNUM, -1, _I64)),  # ready: checked (and made pairs) apart
    "poll_sweep": _spec(sockets=(_INT, 0, _I64), tries=(_INT, 0, _I64),
                        eagain=(_INT, 0, _I64), useful=(_INT, 0, _I64),
                        sweeps=(_NINT, 1, _I64), since_ns=(_NINT, 0, _I64)),
    "thread_start": _spec(name=(_NSTR,)),
    "thread_exit": _spec(name=(_NSTR,)),
    "fork": _spec(child=(_INT, 0, _I64), pid=(_NINT, 0, _I64)),
    "process_exit": _spec(child=(_INT, 0, _I64), status=(_INT, -_I32 - 1, _I32),
                          pid=(_NINT, 0, _I64)),
    "task_start": _spec(name=(_NSTR,), greenlet=(_NINT, 0, _I64), task=(_NSTR,)),
    "task_end": _spec(name=(_NSTR,), greenlet=(_NINT, 0, _I64), task=(_NSTR,)),
    "request": _spec(method=(_NSTR,), path=(_NSTR,), version=(_NSTR,), keep_alive=(_BOOL,),
                     head=(_NSTR,), head_truncated=(_NBOOL,)),
    "response": _spec(status=(_INT, 0, 999), length=(_INT, 0, _I64), path=(_NSTR,),
                      head=(_NSTR,), preview=(_NSTR,)),
    "tcp_state": _spec(**_STATE_FIELDS),
    "state_check": _spec(**_STATE_FIELDS),
    "retransmit": _spec(side=(_STR,), state=(_NSTR,), what=(_NSTR,), source=(_NSTR,)),
    "reset": _spec(side=(_STR,), direction=(_NSTR,), state=(_NSTR,), reason=(_NSTR,),
                   source=(_NSTR,)),
    "accept_queue": _spec(length=(_INT, 0, _I64), backlog=(_INT, -_I32 - 1, _I64),
                          source=(_NSTR,), listener=(_NSTR,)),
    "packet": _spec(sport=(_INT, 0, 65535), dport=(_INT, 0, 65535), flags=(_STR,),
                    tcp_seq=(_INT, 0, _U32), ack=(_INT, 0, _U32), len=(_INT, 0, _I32),
                    win=(_NINT, 0, _U32), origin=(_NSTR,), src_ip=(_NSTR,), dst_ip=(_NSTR,),
                    sender=(_NSTR,), relative=(_NBOOL,), aggregate=(_NBOOL,),
                    dropped=(_NSTR,), options=(_DICT,), frame=(_NINT, 0, _I64)),
    "gate": _spec(action=(_NSTR,), state=(_NSTR,), held_ns=(_NINT, 0, _I64)),
    "mode": _spec(mode=(_STR,), trigger=(_NSTR,), policy=(_NSTR,), multiplexer=(_NSTR,),
                  no_drain=(_NBOOL,), picture=(_NSTR,), keep_parent_copy=(_NBOOL,),
                  sweep_pause=(_NNUM, 0, _I64)),
    "interest": _spec(op=(_NSTR,), mask=(frozenset((str, int)),), call=(_NSTR,)),
    "wait": _spec(call=(_NSTR,), timeout=(_NNUM, -1, _I64), fds=(_NINT, 0, _I64),
                  blocked_ns=(_NINT, 0, _I64)),
    "cpu": _spec(percent=(_NUM, 0, 1_000_000), user_s=(_NNUM, 0, 1e12),
                 system_s=(_NNUM, 0, 1e12), interval_s=(_NNUM, 0, 1e12),
                 threads=(_NINT, 0, _I64), rss_mb=(_NNUM, 0, 1e12),
                 switches=(_NINT, 0, _I64)),
    "site_check": _spec(path=(_NSTR,), exists=(_NBOOL,), target=(_NSTR,)),
    "error": _spec(what=(_NSTR,), detail=(_NSTR,), status=(_NINT, 0, 999), head=(_NSTR,),
                   head_truncated=(_NBOOL,), errno=(frozenset((str, int, _NONE)),),
                   port=(_NINT, 0, 65535), reuseaddr=(_NBOOL,), exit_code=(_NINT, -_I32 - 1,
                                                                          _I32)),
    "dropped": _spec(count=(_INT, 0, _I64), sink=(_NSTR,), reason=(_NSTR,), detail=(_NSTR,),
                     written=(_NINT, 0, _I64), from_ns=(_NINT, 0, _I64),
                     until_ns=(_NINT, 0, _I64)),
}


def _checker(kind: str, spec: tuple[tuple[str, frozenset, Any, Any, str], ...]
             ) -> Callable[[dict[str, Any]], None]:
    """The check of one kind's fields, as straight-line code made from its ``FIELD_TYPES``
    entry (a loop over the table costs half as much again, on every line read):
    each field present is tested for its types, then its range or its items."""
    code = [f"def check_{kind}(row):"]
    for name, types, lo, hi, _ in spec:
        named = sorted(t.__name__ for t in types if t is not _NONE)
        wrong = " and ".join(f"t is not {t}" for t in named)
        code += [f"    if {name!r} in row:", f"        v = row[{name!r}]", "        t = type(v)"]
        test = f"({wrong})" + (" and v is not None" if _NONE in types else "")
        if lo is not None and list in types:  # lo: the items' types
            items = " and ".join(f"type(x) is not {t.__name__}" for t in lo)
            test += f" or t is list and any({items} for x in v)"
        elif lo is not None:
            test += f" or t is not NoneType and not {lo!r} <= v <= {hi!r}"
        code += [f"        if {test}:", f"            raise bad({name!r}, v)"]
    if len(code) == 1:
        code.append("    pass")
    expected = {name: text for name, _, _, _, text in spec}
    scope = {"bad": lambda name, v: FieldError(name, v, expected[name]),
             "NoneType": _NONE, "str": str, "int": int, "float": float, "bool": bool,
             "list": list, "dict": dict}
    exec("\n".join(code), scope)  # noqa: S102 (code made from the table above, no input)
    return scope[f"check_{kind}"]  # type: ignore[no-any-return]


_CHECKS = {kind: _checker(kind, spec) for kind, spec in FIELD_TYPES.items()}


def _ready_pairs(value: Any) -> list[tuple[int, int]]:
    """An ``epoll_wait``'s ready list: [[fd, mask], ...] (or null) as (fd, mask) tuples."""
    if value is None:
        return []
    if type(value) is list:
        out = []
        for pair in value:
            if type(pair) is not list or len(pair) != 2:
                break
            fd, mask = pair
            if type(fd) is not int or type(mask) is not int or not -1 <= fd <= _I32 \
                    or not 0 <= mask <= _U32:
                break
            out.append((fd, mask))
        else:
            return out
    raise FieldError("ready", value, f"a list of [fd, mask] pairs (fd from -1 to {_I32}, "
                                     f"mask from 0 to {_U32})")


def _common_error(seq: Any, t_ns: Any, src: Any, kind: Any, conn: Any, fd: Any,
                  thread: Any) -> FieldError:
    """Which of the fields every event has is wrong (called once one is)."""
    for name, value, lo, hi in (("seq", seq, 0, _I64), ("t_ns", t_ns, 0, _I64),
                                ("fd", fd, -1, _I32), ("thread", thread, 0, _I64)):
        if type(value) is not int or not lo <= value <= hi:
            return FieldError(name, value, f"an integer from {lo} to {hi}")
    if type(src) is not str or src not in _SOURCES:
        return FieldError("src", src, f"one of {', '.join(SOURCES)}")
    if type(kind) is not str:
        return FieldError("kind", kind, "a string")
    return FieldError("conn", conn, "a string (a connection id) or null")


def closes_socket(event: "Event") -> bool:
    """Whether a ``close`` event closed the socket itself, not one of its copies: a
    forked server's close of a descriptor that another process still holds
    (``last: false``) sends no FIN and changes no TCP state."""
    return event.data.get("last") is not False


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
        # Every field is checked here, once per line read: the model and the views
        # compute with them (a FieldError names the field; the reader adds the line).
        # (The limits as literals, _I64 and _I32: constants cost less than names, per line.)
        if not (type(seq) is int and type(t_ns) is int and type(fd) is int
                and type(thread) is int and type(kind) is str and type(src) is str
                and src in {"server", "client", "kernel", "capture", "engine"}
                and (conn is None or type(conn) is str)
                and 0 <= seq <= 0x7FFFFFFFFFFFFFFF and 0 <= t_ns <= 0x7FFFFFFFFFFFFFFF
                and -1 <= fd <= 0x7FFFFFFF and 0 <= thread <= 0x7FFFFFFFFFFFFFFF):
            raise _common_error(seq, t_ns, src, kind, conn, fd, thread)
        check = _CHECKS_get(kind)
        if check is not None:
            check(row)
        if "ready" in row:
            row["ready"] = _ready_pairs(row["ready"])
        # A million events name a few kinds, connections and threads: one object each.
        return _new_tuple(cls, (seq, t_ns, _intern(src), _intern(kind),
                                _intern(conn) if type(conn) is str else conn, fd,
                                _THREADS.setdefault(thread, thread), row))


    @classmethod
    def from_own_dict(cls, row: dict[str, Any]) -> "Event":
        """``from_dict`` for a line this engine's own writer made (the kernel side reading
        the server's, fed through a pipe): no field to check; its names made one object
        each all the same."""
        pop = row.pop
        conn = pop("conn")
        return _new_tuple(cls, (pop("seq"), pop("t_ns"), _intern(pop("src")),
                                _intern(pop("kind")), _intern(conn) if conn is not None else None,
                                pop("fd"), pop("thread"), row))


_new_tuple = tuple.__new__
_CHECKS_get = _CHECKS.get
_SOURCES = frozenset(SOURCES)
_intern = sys.intern
_THREADS: dict[int, int] = {}
_SEQUENCE = itertools.count(1)


def restart_sequence(start: int) -> None:
    """Number the events of probes made from now on from ``start`` (the kernel side's
    process, whose events share a trace with the server's)."""
    global _SEQUENCE
    _SEQUENCE = itertools.count(start)
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

    def forward(self, event: Event) -> None:
        """Hand an event made elsewhere (another process's, read back) to this probe's
        sinks as it is: its own sequence number and time."""
        for sink in self._sinks:
            try:
                sink(event)
            except Exception as exc:
                self.failed_sinks.append((sink, exc))
                self.remove_sink(sink)

    def emit_at(self, t_ns: int, kind: str, conn: str | None = None, fd: int = -1,
                thread: int = 0, **data: Any) -> None:
        """Emit an event that happened at ``t_ns`` (derived after the fact)."""
        self.emit_data_at(t_ns, kind, conn, fd, thread, data)

    def emit_data_at(self, t_ns: int, kind: str, conn: str | None, fd: int, thread: int,
                     data: dict[str, Any]) -> None:
        """``emit_at`` with the fields as a ready dict (the caller's, never touched
        again): the capture's path, one event per segment."""
        self.forward(_new_tuple(Event, (next(self._seq), t_ns, self.src, kind, conn, fd,
                                        thread, data)))


class TaggedProbe:
    """A probe's events with fields of their own added: a connection served by a
    greenlet or an asyncio task says which in every event it makes
    (``greenlet=7``, ``task="conn-12"``). Its ``active`` is the probe's."""

    __slots__ = ("probe", "tags")

    def __init__(self, probe: Probe, **tags: Any) -> None:
        self.probe = probe
        self.tags = tags

    @property
    def active(self) -> bool:
        return self.probe.active

    @property
    def src(self) -> str:
        return self.probe.src

    def add_sink(self, sink: Sink) -> None:
        self.probe.add_sink(sink)

    def remove_sink(self, sink: Sink) -> None:
        self.probe.remove_sink(sink)

    def emit(self, kind: str, conn: str | None = None, fd: int = -1, thread: int = 0,
             **data: Any) -> None:
        self.probe.emit_data(kind, conn, fd, thread, {**data, **self.tags})

    def emit_data(self, kind: str, conn: str | None, fd: int, thread: int,
                  data: dict[str, Any]) -> None:
        self.probe.emit_data(kind, conn, fd, thread, {**data, **self.tags})


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
