"""The kernel's own word on every TCP state change of one port (tracefs, as root).

``KernelTracer`` asks the kernel to report, through the tracepoints it fires
itself, each state transition of the port's sockets
(``sock:inet_sock_set_state``), each retransmission
(``tcp:tcp_retransmit_skb``, ``tcp:tcp_retransmit_synack``) and each reset
(``tcp:tcp_send_reset``, ``tcp:tcp_receive_reset``), and emits them as
``state_check``, ``retransmit`` and ``reset`` events, with ``source="traced"``.
Polling (``observer.py``) sees states; this sees transitions, at the moment the
kernel made them: a loopback handshake's SYN_SENT and SYN_RECV last about
20 µs, and are all here.

How, and why this way:

* Its own tracefs instance (``instances/sockscope-<pid>-<n>``): a ring buffer
  and event switches nobody else touches, and nobody else's settings (the
  top-level trace, another tool's instance) are touched. It is removed on
  ``stop()``, also when starting fails half-way. Instances left by a killed
  process (their pid is gone) are removed when a tracer starts; a live one is
  safe, the kernel refuses to remove an instance whose files are open.
* ``trace_clock`` = ``mono``: the ring buffer's stamps are CLOCK_MONOTONIC,
  the clock of ``time.monotonic_ns()`` that stamps every other event, so
  traced transitions and syscalls interleave on one time line.
* A filter on each event (``sport == P || dport == P``, and TCP only for
  ``inet_sock_set_state``) runs in the kernel: other ports cost nothing in
  Python. Where an event has no port fields (``tcp_send_reset`` on Linux 6.10
  and later keeps the addresses as ``struct sockaddr``), it is filtered here.
* The binary ring buffer (``per_cpu/cpuN/trace_pipe_raw``), not the text
  ``trace_pipe``: the text has microseconds and no socket address, and the
  client's CLOSE -> SYN_SENT is reported before the socket has a port
  (sport 0): only the socket's address (``skaddr``) ties it to its next
  transition, SYN_SENT -> ESTABLISHED, which has the port. Pages are decoded
  from ``events/header_page`` and each event's ``format`` file (field offsets
  differ between kernel versions), with precompiled ``struct`` objects.
* A daemon thread reads every ``interval`` (default 20 ms) without blocking;
  ``stop()`` wakes it at once, it reads what is left, and it is gone. So a
  transition is emitted up to ``interval`` after it happened, carrying its
  own (earlier) time: events from different sources arrive out of time order,
  and readers order them by ``t_ns``. Within one read, the CPUs' buffers are
  merged in time order.

Linux reports FIN_WAIT2 -> CLOSE and CLOSING -> CLOSE when the socket is
replaced by a time-wait socket (which has no tracepoint of its own): those are
emitted as state TIME_WAIT, with ``kernel="TCP_CLOSE"`` keeping the kernel's
own word, unless the socket sent or received a reset right then (a real
close). One more exception: an orphaned socket (closed by its application)
whose FIN is acknowledged by a bare ACK becomes a time-wait socket still in
its FIN_WAIT2 sub-state (sock_diag lists it as FIN-WAIT-2), waiting for the
peer's FIN, and the kernel reports nothing more when that FIN comes. Where
the peer is ours (traced too) and has sent no FIN yet (ESTABLISHED or
CLOSE_WAIT), that transition is emitted as state FIN_WAIT_2; a remote peer
cannot be asked, and its end's transition is taken as TIME_WAIT. The listening socket's own CLOSE -> LISTEN / LISTEN -> CLOSE
are counted (``listen_transitions``), not emitted.
"""
from __future__ import annotations

import ctypes
import errno
import itertools
import operator
import os
import re
import socket
import struct
import sys
import threading
import time
from typing import Any, Callable, Iterable

from ..events import Probe
from ..server import connection_id

TRACEFS_PATHS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
INSTANCE_PREFIX = "sockscope-"
STATE_EVENT = ("sock", "inet_sock_set_state")
OTHER_EVENTS = (("tcp", "tcp_retransmit_skb"), ("tcp", "tcp_retransmit_synack"),
                ("tcp", "tcp_send_reset"), ("tcp", "tcp_receive_reset"))
IPPROTO_TCP = 6
AF_INET, AF_INET6 = 2, 10  # Linux's numbers, as the kernel records them
TCP_CLOSE, TCP_LISTEN = 7, 10
# The kernel's TCP states (include/net/tcp_states.h) in SockScope's names.
STATE_NAMES: dict[int, str] = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
    6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
    11: "CLOSING", 12: "SYN_RECV", 13: "BOUND_INACTIVE",
}
KERNEL_STATE_NAMES: dict[int, str] = {
    1: "TCP_ESTABLISHED", 2: "TCP_SYN_SENT", 3: "TCP_SYN_RECV", 4: "TCP_FIN_WAIT1",
    5: "TCP_FIN_WAIT2", 6: "TCP_TIME_WAIT", 7: "TCP_CLOSE", 8: "TCP_CLOSE_WAIT",
    9: "TCP_LAST_ACK", 10: "TCP_LISTEN", 11: "TCP_CLOSING", 12: "TCP_NEW_SYN_RECV",
    13: "TCP_BOUND_INACTIVE",
}
# -> CLOSE from these states means "became a time-wait socket" (tcp_time_wait()).
_TO_TIME_WAIT = frozenset({5, 11})  # FIN_WAIT2, CLOSING
_FIN_WAIT2 = 5
_NO_FIN_YET = frozenset({1, 8})  # ESTABLISHED, CLOSE_WAIT: an end that has sent no FIN
_RESET_NEAR_NS = 1_000_000  # a reset this close to a -> CLOSE makes it a real close
_MAX_PENDING = 4096  # sockets waiting for their port (SYN_SENT before the bind)
_PAGE_READS_PER_ROUND = 256  # pages read per CPU per wakeup, before looking at stop
_FINAL_DRAIN_S = 0.25
_BUFFER_KB = 2048  # ring buffer per CPU: about 20,000 transitions


class TracepointError(RuntimeError):
    """Tracing cannot start (not root, no tracefs, events missing, instance refused)."""


# ------------------------------------------------------------------ tracefs
def _mounted_tracefs() -> str | None:
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    points = {m[1].replace("\\040", " ") for m in mounts if len(m) > 2 and m[2] == "tracefs"}
    for path in TRACEFS_PATHS:
        if path in points:
            return path
    return next(iter(sorted(points)), None)


def _mount_tracefs(path: str = TRACEFS_PATHS[0]) -> str | None:
    """Mount tracefs at ``path`` (root only); returns why not, or None when mounted."""
    if not os.path.isdir(path):
        return f"{path} does not exist (no tracefs in this kernel?)"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b"nodev", path.encode(), b"tracefs", ctypes.c_ulong(0), None) == 0:
            return None
        err = ctypes.get_errno()
    except (OSError, AttributeError) as exc:
        return f"cannot call mount(2): {exc}"
    name = errno.errorcode.get(err, str(err))
    return f"mounting tracefs at {path} failed: {os.strerror(err)} ({name})"


def find_tracefs(mount: bool = True) -> tuple[str | None, str]:
    """The tracefs mount point (mounting it if allowed and needed), and a sentence."""
    path = _mounted_tracefs()
    if path:
        return path, f"tracefs mounted at {path}"
    if not mount:
        return None, "tracefs is not mounted"
    problem = _mount_tracefs()
    if problem is None:
        return TRACEFS_PATHS[0], f"tracefs mounted at {TRACEFS_PATHS[0]} (mounted by SockScope)"
    return None, f"tracefs is not mounted and {problem}"


# ------------------------------------------------------------------ formats
class Field:
    __slots__ = ("name", "type", "offset", "size", "signed")

    def __init__(self, name: str, ftype: str, offset: int, size: int, signed: bool) -> None:
        self.name, self.type, self.offset = name, ftype, offset
        self.size, self.signed = size, signed

    @property
    def is_array(self) -> bool:
        return "[" in self.type or self.type.startswith("__data_loc")


_FIELD_RE = re.compile(r"^\s*field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*"
                       r"size:(?P<size>\d+);\s*(?:signed:(?P<signed>-?\d+);)?")
_SYMBOL_RE = re.compile(r'\s*\{\s*(-?\w+)\s*,\s*"([^"]*)"\s*\}\s*,?')


class EventFormat:
    """One event's ``format`` file: its id, its fields, its symbolic tables."""

    def __init__(self, system: str, name: str, text: str) -> None:
        self.system, self.name = system, name
        match = re.search(r"^ID:\s*(\d+)", text, re.M)
        if not match:
            raise ValueError(f"{system}/{name}: no ID in the format file")
        self.id = int(match.group(1))
        self.fields: dict[str, Field] = {}
        for line in text.splitlines():
            m = _FIELD_RE.match(line)
            if not m:
                continue
            decl = m.group("decl").strip()
            ident = re.match(r"^(?P<type>.*?)\s*(?P<name>\w+)\s*(?P<arr>\[[^\]]*\])?$", decl)
            if not ident:
                continue
            ftype = ident.group("type") + (ident.group("arr") or "")
            self.fields[ident.group("name")] = Field(
                ident.group("name"), ftype, int(m.group("offset")), int(m.group("size")),
                m.group("signed") == "1")
        fmt = text.split("print fmt:", 1)
        self.print_fmt = fmt[1].strip() if len(fmt) > 1 else ""

    def symbols(self, field: str) -> dict[int, str]:
        """``__print_symbolic(REC->field, {1, "A"}, ...)`` as {1: "A"} (numeric keys only)."""
        key = f"__print_symbolic(REC->{field},"
        start = self.print_fmt.find(key)
        table: dict[int, str] = {}
        if start < 0:
            return table
        pos = start + len(key)
        while True:
            m = _SYMBOL_RE.match(self.print_fmt, pos)
            if not m:
                return table
            pos = m.end()
            try:
                table[int(m.group(1), 0)] = m.group(2)
            except ValueError:  # a kernel constant's name: not resolvable here
                continue

    def reader(self, names: Iterable[str]) -> tuple[struct.Struct, tuple[str, ...]]:
        """A Struct reading the named fields that exist (in this order) from the record."""
        present = [self.fields[n] for n in names if n in self.fields]
        codes = []
        for f in present:
            if f.is_array:
                codes.append(f"{f.size}s")
            else:
                code = {1: "b", 2: "h", 4: "i", 8: "q"}.get(f.size)
                if code is None:
                    codes.append(f"{f.size}s")
                else:
                    codes.append(code if f.signed else code.upper())
        # One Struct per event, fields in offset order with pad bytes between.
        order = sorted(range(len(present)), key=lambda i: present[i].offset)
        fmt, at = "=", 0
        for i in order:
            f = present[i]
            if f.offset < at:
                raise ValueError(f"{self.name}: overlapping fields at {f.name}")
            fmt += (f"{f.offset - at}x" if f.offset > at else "") + codes[i]
            at = f.offset + f.size
        reader = struct.Struct(fmt)
        return reader, tuple(present[i].name for i in order)


def read_format(tracefs: str, system: str, name: str) -> EventFormat:
    with open(f"{tracefs}/events/{system}/{name}/format", encoding="utf-8",
              errors="replace") as f:
        return EventFormat(system, name, f.read())


# ------------------------------------------------------------------ pages
class PageLayout:
    """Where a ring-buffer page keeps its time stamp, its length and its events,
    and how an event header is laid out (``events/header_page``, ``header_event``)."""

    def __init__(self, header_page: str = "", header_event: str = "",
                 byteorder: str = sys.byteorder) -> None:
        fields = {}
        for line in header_page.splitlines():
            m = re.match(r"^\s*field:\s*(?P<decl>[^;]*);\s*offset:(?P<off>\d+);\s*"
                         r"size:(?P<size>\d+);", line)
            if m:
                fields[m.group("decl").split()[-1]] = (int(m.group("off")), int(m.group("size")))
        ts_off, ts_size = fields.get("timestamp", (0, 8))
        commit_off, commit_size = fields.get("commit", (8, 8))
        self.data_offset = fields.get("data", (16, 0))[0]
        e = "<" if byteorder == "little" else ">"
        self.timestamp = struct.Struct(f"{e}{ts_off}x" + ("Q" if ts_size == 8 else "I"))
        self.commit = struct.Struct(f"{e}{commit_off}x" + ("Q" if commit_size == 8 else "I"))
        self.long = struct.Struct(e + ("Q" if commit_size == 8 else "I"))  # missed-event count
        self.u32 = struct.Struct(e + "I")
        self.little = byteorder == "little"
        consts = dict(re.findall(r"(padding|time_extend|time_stamp)\s*:\s*type\s*==\s*(\d+)",
                                 header_event))
        self.padding = int(consts.get("padding", 29))
        self.time_extend = int(consts.get("time_extend", 30))
        self.time_stamp = int(consts.get("time_stamp", 31))

    @classmethod
    def from_tracefs(cls, tracefs: str) -> "PageLayout":
        texts = []
        for name in ("header_page", "header_event"):
            try:
                with open(f"{tracefs}/events/{name}", encoding="utf-8", errors="replace") as f:
                    texts.append(f.read())
            except OSError:
                texts.append("")
        return cls(*texts)


# The commit word: low 27 bits the data length, then flags (kernel/trace/ring_buffer.c).
_COMMIT_MASK = (1 << 27) - 1
_MISSED_EVENTS = 1 << 31
_MISSED_STORED = 1 << 30
_TS_SHIFT = 27
_TS_MSB = 0x1F << 59  # an absolute stamp keeps 59 bits; the top ones come from the reader's


class PageParser:
    """Decodes ``trace_pipe_raw`` pages into ``(t_ns, event id, record offset, length)``.

    Never raises: a page that does not add up (short, a length running past
    its end, an event header that makes no sense) is counted in
    ``bad_pages`` and what was decoded before the fault is kept.
    """

    def __init__(self, layout: PageLayout) -> None:
        self.layout = layout
        self.pages = 0
        self.bad_pages = 0
        self.missed_events = 0  # the kernel overwrote or dropped this many (page flags)
        self.missed_unknown = 0  # pages saying events were lost without saying how many
        self.last_error: str | None = None

    def parse(self, page: bytes) -> list[tuple[int, int, int, int]]:
        self.pages += 1
        out: list[tuple[int, int, int, int]] = []
        try:
            self._parse(page, out)
        except (struct.error, ValueError, IndexError) as exc:
            self.bad_pages += 1
            self.last_error = str(exc)
        return out

    def _parse(self, page: bytes, out: list[tuple[int, int, int, int]]) -> None:
        lay = self.layout
        start = lay.data_offset
        if len(page) < start:
            raise ValueError(f"short page: {len(page)} bytes, the header alone is {start}")
        ts = lay.timestamp.unpack_from(page)[0]
        commit = lay.commit.unpack_from(page)[0]
        length = commit & _COMMIT_MASK
        end = start + length
        if end > len(page):
            raise ValueError(f"page says {length} bytes of events, has {len(page) - start}")
        if commit & _MISSED_EVENTS:
            if commit & _MISSED_STORED and end + lay.long.size <= len(page):
                self.missed_events += lay.long.unpack_from(page, end)[0]
            else:
                self.missed_unknown += 1
        u32 = lay.u32.unpack_from
        little = lay.little
        padding, extend, absolute = lay.padding, lay.time_extend, lay.time_stamp
        pos = start
        while pos + 4 <= end:
            word = u32(page, pos)[0]
            if little:
                type_len, delta = word & 0x1F, word >> 5
            else:
                type_len, delta = word >> 27, word & 0x7FFFFFF
            if type_len == padding:
                if delta == 0:
                    return  # the rest of the page is empty
                if pos + 8 > end:
                    raise ValueError(f"padding header cut at {pos}")
                size = u32(page, pos + 4)[0]  # a discarded event: skip it
                if size < 4 or pos + 4 + size > end:
                    raise ValueError(f"padding of {size} bytes at {pos} runs past the page")
                pos += 4 + size
            elif type_len == extend:
                if pos + 8 > end:
                    raise ValueError(f"time extend cut at {pos}")
                ts += (u32(page, pos + 4)[0] << _TS_SHIFT) + delta
                pos += 8
            elif type_len == absolute:
                if pos + 8 > end:
                    raise ValueError(f"absolute time stamp cut at {pos}")
                stamp = (u32(page, pos + 4)[0] << _TS_SHIFT) + delta
                if ts & _TS_MSB:
                    stamp |= ts & _TS_MSB
                    if stamp < ts:
                        stamp += 1 << 59
                ts = stamp
                pos += 8
            else:
                if type_len == 0:  # a long event: the length is the next word
                    if pos + 8 > end:
                        raise ValueError(f"event length cut at {pos}")
                    size = u32(page, pos + 4)[0] - 4
                    data = pos + 8
                else:
                    size = type_len * 4
                    data = pos + 4
                if size < 2 or data + size > end:
                    raise ValueError(f"event of {size} bytes at {pos} runs past the page")
                ts += delta
                out.append((ts, int.from_bytes(page[data:data + 2], sys.byteorder), data, size))
                pos = data + ((size + 3) & ~3)
        if pos != end and pos < end:
            raise ValueError(f"{end - pos} stray bytes at the end of the page")


# ------------------------------------------------------------------ decoding
def _ip(family: int, v4: bytes, v6: bytes) -> str | None:
    if family == AF_INET:
        return socket.inet_ntop(socket.AF_INET, v4)
    if family == AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, v6)
    return None


def _sockaddr(raw: bytes) -> tuple[str | None, int]:
    """A ``struct sockaddr_in`` / ``sockaddr_in6`` as the kernel stored it: (ip, port)."""
    if len(raw) < 8:
        return None, 0
    family = int.from_bytes(raw[:2], sys.byteorder)
    port = int.from_bytes(raw[2:4], "big")
    if family == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return None, 0


def _plain(ip: str) -> str:
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


_ADDRESS_FIELDS = ("skaddr", "family", "sport", "dport", "saddr", "daddr", "saddr_v6",
                   "daddr_v6")
# inet_sock_set_state's fields, in the order _on_state takes them (all there since 4.16).
STATE_FIELDS = ("skaddr", "oldstate", "newstate", "sport", "dport", "family", "protocol",
                "saddr", "daddr", "saddr_v6", "daddr_v6")


class _Decoder:
    """One enabled event: its id, its Struct, and what to do with a record.

    ``positional`` names fields the handler takes as arguments, in its order:
    when the format has them all, a record costs one ``unpack_from`` and one
    ``itemgetter`` call (both C); otherwise it becomes a dict of what exists.
    """

    def __init__(self, fmt: EventFormat, names: tuple[str, ...],
                 handler: Callable[..., None], positional: tuple[str, ...] = ()) -> None:
        self.format = fmt
        self.handler = handler
        self.positional = bool(positional) and all(n in fmt.fields for n in positional)
        self.struct, self.names = fmt.reader(positional if self.positional else names)
        self.unpack_from = self.struct.unpack_from
        self.reorder = (operator.itemgetter(*(self.names.index(n) for n in positional))
                        if self.positional else None)

    def decode(self, page: bytes, offset: int) -> dict[str, Any]:
        return dict(zip(self.names, self.unpack_from(page, offset)))


# ------------------------------------------------------------------ the tracer
_INSTANCES = itertools.count(1)


class KernelTracer:
    """Emit the kernel's own TCP transitions, retransmissions and resets for ``port``.

    ``probe`` should have src "kernel". ``host`` (the server's bind address)
    narrows the connections to those of that server address. Needs root (or
    write access to tracefs); ``available()`` says whether it can run and why
    not. Events, all with ``fd`` -1, ``source="traced"`` and the kernel's
    CLOCK_MONOTONIC time of the transition as ``t_ns``:

    * ``state_check``: side ("server" for the socket that owns ``port``),
      state, previous (SockScope's names: ESTABLISHED, SYN_SENT, SYN_RECV,
      FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT, CLOSED, CLOSE_WAIT, LAST_ACK, LISTEN,
      CLOSING), source; ``kernel`` (the kernel's raw name of the new state)
      when it differs in meaning: "TCP_CLOSE" on the time-wait transitions.
    * ``retransmit``: side, state (the socket's, when the kernel says), what
      ("segment" or "synack"), source.
    * ``reset``: side (whose socket sent or received it), direction ("sent" /
      "received"), state (None when unknown), reason (the kernel's name for
      why it sent one, when it says; None for received ones), source.

    ``stop()`` returns the counts (see there).
    """

    def __init__(self, probe: Probe, port: int, *, host: str | None = None,
                 interval: float = 0.02, buffer_kb: int = _BUFFER_KB) -> None:
        self.probe = probe
        self.port = int(port)
        self.host = None if host in (None, "", "0.0.0.0", "::") else _plain(str(host))
        self.interval = interval
        self.buffer_kb = buffer_kb
        self.tracefs: str | None = None
        self.instance: str | None = None
        self.error: str | None = None
        self.crashed: BaseException | None = None
        self.thread_id: int | None = None
        self.cpu_seconds = 0.0  # the reader thread's CPU time (user + system)
        self.stats: dict[str, Any] = {
            "records": 0, "pages": 0, "bad_pages": 0, "bad_records": 0, "missed_events": 0,
            "overrun": 0, "dropped_events": 0, "read_errors": 0, "unknown_records": 0,
            "not_ours": 0, "listen_transitions": 0, "unattributed": 0,
            "state_check": 0, "retransmit": 0, "reset": 0,
        }
        self.filters: dict[str, str | None] = {}  # event -> the kernel filter set (None: none)
        self.missing_events: list[str] = []
        self._fds: list[int] = []
        self._cpus: list[str] = []
        self._parser: PageParser | None = None
        self._page_size = 4096
        self._decoders: dict[int, _Decoder] = {}
        self._conns: dict[tuple[Any, ...], str | None] = {}  # raw 4-tuple -> conn id
        self._reasons: dict[int, str] = {}
        # skaddr -> [conn, side, last raw state]; skaddr -> [(t, old, new)] before the port
        self._sockets: dict[int, list[Any]] = {}
        self._pending: dict[int, list[tuple[int, int, int, str]]] = {}
        self._resets_near: dict[int, list[int]] = {}
        self._last: dict[tuple[str, str], int] = {}  # (conn, side) -> its latest state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: dict[str, Any] | None = None
        self._tid = 0
        self.emitted_states = 0  # a plain attribute: counted per transition (hot)

    # ------------------------------------------------------------ availability
    @staticmethod
    def available() -> tuple[bool, str]:
        """Whether a tracer can run here, and a sentence saying why (not)."""
        if not sys.platform.startswith("linux"):
            return False, f"kernel tracepoints come from Linux tracefs; this is {sys.platform}"
        if os.geteuid() != 0:
            return False, (f"tracing the kernel's TCP transitions needs root (tracefs); this "
                           f"process runs as euid {os.geteuid()}")
        path, how = find_tracefs(mount=True)
        if path is None:
            return False, how
        missing = [f"{s}:{n}" for s, n in (STATE_EVENT,)
                   if not os.path.exists(f"{path}/events/{s}/{n}/format")]
        if missing:
            return False, (f"{how}, but this kernel has no {', '.join(missing)} tracepoint "
                           f"(Linux 4.16 or later has it)")
        if not os.path.isdir(f"{path}/instances") or not os.access(f"{path}/instances", os.W_OK):
            return False, f"{how}, but {path}/instances is missing or not writable"
        return True, f"{how}; sock:inet_sock_set_state available"

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "KernelTracer":
        """Create and configure the instance, start the reader. Raises ``TracepointError``."""
        if self._thread is not None:
            raise TracepointError("this tracer was already started")
        ok, reason = self.available()
        if not ok:
            raise TracepointError(reason)
        self.tracefs = _mounted_tracefs() or TRACEFS_PATHS[0]
        _reap_stale_instances(self.tracefs)
        try:
            self._make_instance()
            self._configure()
        except BaseException as exc:
            self._release()
            if isinstance(exc, TracepointError):
                raise
            if isinstance(exc, (OSError, ValueError)):
                raise TracepointError(f"cannot set up kernel tracing: {exc}") from exc
            raise
        self._thread = threading.Thread(target=self._run, name="sockscope-tracepoint",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop (within a fraction of a second), remove the instance, return the counts.

        Keys: ``records`` (events decoded), ``state_check`` / ``retransmit`` /
        ``reset`` (events emitted), ``listen_transitions`` (the listening
        socket's own), ``not_ours`` (decoded but another port or address),
        ``unattributed`` (transitions of a socket that never showed its port),
        ``pages``, ``bad_pages`` (undecodable, skipped), ``bad_records``
        (decoded but not understood, skipped), ``missed_events`` /
        ``overrun`` / ``dropped_events`` (lost in the kernel: the ring buffer
        was full), ``read_errors``, ``unknown_records``, ``cpu_seconds`` (the
        reader thread's), ``filters``, ``missing_events``, ``instance``,
        ``instance_removed``, ``error``, ``thread_alive``.
        """
        if self._result is not None:
            return self._result
        if self._thread is None:
            raise TracepointError("this tracer was not started")
        self._write("tracing_on", "0", quiet=True)  # what is in the buffer now is all
        self._stop.set()
        self._thread.join(timeout=1.0)
        alive = self._thread.is_alive()
        if not alive:
            self._read_cpu_stats()
            removed = self._release()
            # What the kernel's ring lost (overwritten or refused), said like every
            # other loss: a ``dropped`` event. The pages' own count and the ring's
            # statistics see the same losses, from two sides: the larger is said.
            lost = max(self.stats["missed_events"],
                       self.stats["overrun"] + self.stats["dropped_events"])
            if lost and self.probe.active:
                self.probe.emit("dropped", None, -1, threading.get_native_id(), count=lost,
                                sink="tracepoint")
        else:  # the thread still reads its fds: leave the instance for the reaper
            removed = False
        self.stats["state_check"] = self.emitted_states
        self._result = {**self.stats, "cpu_seconds": self.cpu_seconds,
                        "filters": dict(self.filters), "missing_events": list(self.missing_events),
                        "instance": self.instance, "instance_removed": removed,
                        "error": self.error, "thread_alive": alive}
        return self._result

    def __enter__(self) -> "KernelTracer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ set-up
    def _make_instance(self) -> None:
        base = f"{self.tracefs}/instances"
        for _ in range(100):
            name = f"{INSTANCE_PREFIX}{os.getpid()}-{next(_INSTANCES)}"
            path = f"{base}/{name}"
            try:
                os.mkdir(path)
            except FileExistsError:
                # Our pid, a number we never used: left by an earlier process that had
                # this pid and was killed. Take it away if nobody holds it, move on.
                _remove_instance(path)
                continue
            except OSError as exc:
                raise TracepointError(f"cannot create the tracefs instance {path}: "
                                      f"{exc.strerror or exc}") from exc
            self.instance = path
            return
        raise TracepointError(f"cannot create a tracefs instance under {base}")

    def _write(self, rel: str, value: str, quiet: bool = False) -> bool:
        if self.instance is None:
            return False
        try:
            with open(f"{self.instance}/{rel}", "w", encoding="ascii") as f:
                f.write(value)
            return True
        except OSError:
            if quiet:
                return False
            raise

    def _configure(self) -> None:
        assert self.instance is not None and self.tracefs is not None
        self._write("tracing_on", "0")
        try:
            self._write("trace_clock", "mono")
        except OSError as exc:
            raise TracepointError(f"this kernel has no 'mono' trace clock ({exc}): the "
                                  f"kernel's times could not be put on the events' clock") \
                from exc
        self._write("buffer_size_kb", str(self.buffer_kb), quiet=True)
        self._parser = PageParser(PageLayout.from_tracefs(self.tracefs))
        try:
            with open(f"{self.instance}/buffer_subbuf_size_kb", encoding="ascii") as f:
                self._page_size = max(4096, int(f.read().split()[0]) * 1024)
        except (OSError, ValueError, IndexError):
            self._page_size = 4096
        port = self.port
        handlers: dict[str, tuple[tuple[str, ...], Callable[..., None]]] = {
            "inet_sock_set_state": (STATE_FIELDS, self._on_state_record),
            "tcp_retransmit_skb": (_ADDRESS_FIELDS + ("state",), self._on_retransmit),
            "tcp_retransmit_synack": (_ADDRESS_FIELDS, self._on_retransmit_synack),
            "tcp_send_reset": (_ADDRESS_FIELDS + ("state", "reason"), self._on_send_reset),
            "tcp_receive_reset": (_ADDRESS_FIELDS + ("state",), self._on_receive_reset),
        }
        for system, name in (STATE_EVENT,) + OTHER_EVENTS:
            try:
                fmt = read_format(self.tracefs, system, name)
            except OSError:
                if (system, name) == STATE_EVENT:
                    raise TracepointError(f"no {system}:{name} tracepoint in this kernel")
                self.missing_events.append(f"{system}:{name}")
                continue
            names, handler = handlers[name]
            self._decoders[fmt.id] = _Decoder(
                fmt, names, handler, STATE_FIELDS if name == "inet_sock_set_state" else ())
            if name == "tcp_send_reset":
                self._reasons = fmt.symbols("reason")
            rel = f"events/{system}/{name}"
            expr = None
            if "sport" in fmt.fields and "dport" in fmt.fields:
                expr = f"sport == {port} || dport == {port}"
                if "protocol" in fmt.fields:
                    expr = f"({expr}) && protocol == {IPPROTO_TCP}"
            if expr is not None and not self._write(f"{rel}/filter", expr, quiet=True):
                expr = None  # the kernel refused it: filtered in Python only
            self.filters[f"{system}:{name}"] = expr
            self._write(f"{rel}/enable", "1")
        cpus = sorted((d for d in os.listdir(f"{self.instance}/per_cpu") if d.startswith("cpu")),
                      key=lambda d: int(d[3:]))
        for cpu in cpus:
            try:
                fd = os.open(f"{self.instance}/per_cpu/{cpu}/trace_pipe_raw",
                             os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno == errno.ENODEV:  # a possible CPU that is not online
                    continue
                raise
            self._fds.append(fd)
            self._cpus.append(cpu)
        self._write("tracing_on", "1")

    def _release(self) -> bool:
        """Close the readers and remove the instance; returns whether it is gone."""
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        if self.instance is None:
            return True
        self._write("tracing_on", "0", quiet=True)
        return _remove_instance(self.instance)

    def _read_cpu_stats(self) -> None:
        """Add the kernel's own loss counts (``per_cpu/cpuN/stats``)."""
        for cpu in self._cpus:
            try:
                with open(f"{self.instance}/per_cpu/{cpu}/stats", encoding="ascii") as f:
                    text = f.read()
            except OSError:
                continue
            for key, stat in (("overrun", "overrun"), ("dropped events", "dropped_events")):
                m = re.search(rf"^{key}:\s*(\d+)", text, re.M)
                if m:
                    self.stats[stat] += int(m.group(1))

    # ------------------------------------------------------------ the thread
    def _run(self) -> None:
        self._tid = self.thread_id = threading.get_native_id()
        try:
            while not self._stop.is_set():
                self._drain()
                self.cpu_seconds = time.thread_time()
                self._stop.wait(self.interval)
            deadline = time.monotonic() + _FINAL_DRAIN_S
            while self._drain() and time.monotonic() < deadline:
                pass
            self._flush_pending()
        except Exception as exc:  # never into the caller's thread: counted and told
            self.crashed = exc
            self.error = f"kernel tracer stopped: {exc!r}"
            if self.probe.active:
                self.probe.emit("error", None, -1, self._tid, what="kernel_tracer_crashed",
                                detail=repr(exc))
        finally:
            self.cpu_seconds = time.thread_time()

    def _drain(self) -> int:
        """Read every CPU's buffer once, decode, and handle in time order; returns records."""
        parser = self._parser
        assert parser is not None
        size = self._page_size
        batch: list[tuple[int, int, int, int, bytes]] = []
        for fd in self._fds:
            for _ in range(_PAGE_READS_PER_ROUND):
                try:
                    page = os.read(fd, size)
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                except OSError as exc:
                    self.stats["read_errors"] += 1
                    self.error = f"reading the ring buffer: {exc}"
                    break
                if not page:
                    break
                for ts, event_id, offset, length in parser.parse(page):
                    batch.append((ts, event_id, offset, length, page))
        self.stats["pages"], self.stats["bad_pages"] = parser.pages, parser.bad_pages
        self.stats["missed_events"] = parser.missed_events
        if not batch:
            return 0
        batch.sort(key=lambda r: r[0])  # CPUs' buffers merged in time order
        self.stats["records"] += len(batch)
        decoders = self._decoders
        work = []
        resets: dict[int, list[int]] = {}
        for ts, event_id, offset, length, page in batch:
            decoder = decoders.get(event_id)
            if decoder is None or decoder.struct.size > length:
                self.stats["unknown_records"] += 1
                continue
            if decoder.positional:
                work.append((ts, decoder, decoder.reorder(decoder.unpack_from(page, offset))))
            else:
                rec = decoder.decode(page, offset)
                work.append((ts, decoder, rec))
                if decoder.handler in (self._on_send_reset, self._on_receive_reset) \
                        and rec.get("skaddr"):
                    resets.setdefault(rec["skaddr"], []).append(ts)
        # Resets next to a -> CLOSE tell a real close from a time-wait socket.
        self._resets_near = resets
        on_state = self._on_state
        for ts, decoder, values in work:
            try:
                if decoder.positional:
                    on_state(ts, *values)
                else:
                    decoder.handler(ts, values)
            except Exception as exc:  # a record this code did not foresee: skip it, go on
                self.stats["bad_records"] += 1
                self.error = f"a {decoder.format.name} record was not understood: {exc!r}"
        return len(batch)

    # ------------------------------------------------------------ records
    def _side(self, sport: int, dport: int) -> str | None:
        port = self.port
        if sport == port and dport != port:
            return "server"
        if dport == port and sport != port:
            return "client"
        return None

    def _conn(self, rec: dict[str, Any], side: str) -> str | None:
        """The connection id from a record's own addresses (see ``_conn_of``)."""
        return self._conn_of(side, rec.get("family", 0), rec.get("sport", 0),
                             rec.get("dport", 0), rec.get("saddr", b""), rec.get("daddr", b""),
                             rec.get("saddr_v6", b""), rec.get("daddr_v6", b""))

    def _conn_of(self, side: str, family: int, sport: int, dport: int, saddr: bytes,
                 daddr: bytes, saddr6: bytes, daddr6: bytes) -> str | None:
        """The connection id, None when the record lacks a port or an address, "" when
        it is a connection of another server address than ``host``. Cached: each
        connection's transitions repeat the same raw 4-tuple."""
        key = (sport, dport, saddr, daddr) if family == AF_INET else (sport, dport, saddr6, daddr6)
        conns = self._conns
        conn = conns.get(key, False)
        if conn is not False:
            return conn  # type: ignore[return-value]
        src, dst = _ip(family, saddr, saddr6), _ip(family, daddr, daddr6)
        if not sport or not dport or src is None or dst is None:
            return None
        if side == "server":
            server, client = (src, sport), (dst, dport)
        else:
            server, client = (dst, dport), (src, sport)
        if _plain(client[0]) in ("0.0.0.0", "::"):
            return None
        if self.host is not None and _plain(server[0]) != self.host:
            conn = ""  # a connection, but of another address on this port
        else:
            conn = connection_id(client, server)
        if len(conns) >= 65536:
            conns.clear()
        conns[key] = conn
        return conn

    def _emit_state(self, t: int, conn: str, side: str, old: int, new: int, skaddr: int) -> None:
        self.emitted_states += 1
        last = self._last
        peer_state = last.get((conn, "client" if side == "server" else "server"))
        if len(last) >= 65536:
            last.clear()
        last[(conn, side)] = new
        if not self.probe.active:
            return
        previous = STATE_NAMES.get(old) or f"STATE_{old}"
        if new == TCP_CLOSE and old == _FIN_WAIT2 and peer_state in _NO_FIN_YET:
            # A closed program's socket whose FIN was acknowledged becomes a time-wait
            # socket in its FIN_WAIT2 sub-state (sock_diag lists it as FIN-WAIT-2): the
            # peer, ours and traced, has sent no FIN, so this is no TIME_WAIT yet.
            self.probe.emit_at(t, "state_check", conn, -1, self._tid, side=side,
                               state="FIN_WAIT_2", previous=previous, source="traced",
                               kernel="TCP_CLOSE")
        elif new == TCP_CLOSE and old in _TO_TIME_WAIT and not self._reset_near(skaddr, t):
            self.probe.emit_at(t, "state_check", conn, -1, self._tid, side=side,
                               state="TIME_WAIT", previous=previous, source="traced",
                               kernel="TCP_CLOSE")
        else:
            self.probe.emit_at(t, "state_check", conn, -1, self._tid, side=side,
                               state=STATE_NAMES.get(new) or f"STATE_{new}",
                               previous=previous, source="traced")

    def _reset_near(self, skaddr: int, t: int) -> bool:
        return any(abs(t - r) <= _RESET_NEAR_NS for r in self._resets_near.get(skaddr, ()))

    def _on_state_record(self, t: int, rec: dict[str, Any]) -> None:
        """``_on_state`` for a kernel whose format lacks some of STATE_FIELDS."""
        self._on_state(t, rec.get("skaddr", 0), rec.get("oldstate", 0), rec.get("newstate", 0),
                       rec.get("sport", 0), rec.get("dport", 0), rec.get("family", 0),
                       rec.get("protocol", IPPROTO_TCP), rec.get("saddr", b""),
                       rec.get("daddr", b""), rec.get("saddr_v6", b""), rec.get("daddr_v6", b""))

    def _on_state(self, t: int, skaddr: int, old: int, new: int, sport: int, dport: int,
                  family: int, protocol: int, saddr: bytes, daddr: bytes, saddr6: bytes,
                  daddr6: bytes) -> None:
        port = self.port
        if sport == port and dport != port:
            side = "server"
        elif dport == port and sport != port:
            side = "client"
        else:
            self.stats["not_ours"] += 1
            return
        if protocol != IPPROTO_TCP:
            self.stats["not_ours"] += 1
            return
        if side == "server" and (new == TCP_LISTEN or (old == TCP_LISTEN and new == TCP_CLOSE)):
            self.stats["listen_transitions"] += 1
            return
        conn = self._conn_of(side, family, sport, dport, saddr, daddr, saddr6, daddr6)
        known = self._sockets.get(skaddr)
        if conn == "":
            self.stats["not_ours"] += 1
            self._pending.pop(skaddr, None)
            return
        if conn is None and known is not None:
            conn = known[0]
        if conn is None:  # no port yet (connect() before the bind): wait for its next one
            if skaddr and len(self._pending) < _MAX_PENDING or skaddr in self._pending:
                self._pending.setdefault(skaddr, []).append((t, old, new, side))
            else:
                self.stats["unattributed"] += 1
            if new == TCP_CLOSE:  # gone without ever showing its port
                self.stats["unattributed"] += len(self._pending.pop(skaddr, ()))
            return
        for pt, pold, pnew, pside in self._pending.pop(skaddr, ()):
            self._emit_state(pt, conn, pside, pold, pnew, skaddr)
        self._emit_state(t, conn, side, old, new, skaddr)
        if new == TCP_CLOSE:
            self._sockets.pop(skaddr, None)  # its memory may be a new socket's next
        elif known is not None and known[0] == conn:
            known[2] = new
        else:
            self._sockets[skaddr] = [conn, side, new]

    def _flush_pending(self) -> None:
        for transitions in self._pending.values():
            self.stats["unattributed"] += len(transitions)
        self._pending.clear()

    def _located(self, rec: dict[str, Any], sport: int, dport: int
                 ) -> tuple[str, str] | None:
        side = self._side(sport, dport)
        if side is None:
            self.stats["not_ours"] += 1
            return None
        conn = self._conn(rec, side)
        if not conn:
            known = self._sockets.get(rec.get("skaddr", 0))
            if conn is None and known is not None:
                return known[0], known[1]
            self.stats["not_ours" if conn == "" else "unattributed"] += 1
            return None
        return conn, side

    def _state_of(self, rec: dict[str, Any]) -> str | None:
        if "state" in rec:
            return STATE_NAMES.get(rec["state"]) if rec["state"] else None
        known = self._sockets.get(rec.get("skaddr", 0))
        return STATE_NAMES.get(known[2]) if known is not None else None

    def _adopt(self, skaddr: int, conn: str, side: str) -> None:
        """A record with the port came for a socket whose transitions wait for it (a
        SYN retransmitted while SYN_SENT): emit them now, not at ESTABLISHED."""
        pending = self._pending.pop(skaddr, None)
        if pending:
            for pt, pold, pnew, pside in pending:
                self._emit_state(pt, conn, pside, pold, pnew, skaddr)
            self._sockets[skaddr] = [conn, side, pending[-1][2]]

    def _on_retransmit(self, t: int, rec: dict[str, Any], what: str = "segment") -> None:
        where = self._located(rec, rec.get("sport", 0), rec.get("dport", 0))
        if where is None:
            return
        conn, side = where
        if what == "segment" and rec.get("skaddr") in self._pending:
            self._adopt(rec["skaddr"], conn, side)
        state = "SYN_RECV" if what == "synack" else self._state_of(rec)
        self.stats["retransmit"] += 1
        if self.probe.active:
            self.probe.emit_at(t, "retransmit", conn, -1, self._tid, side=side, state=state,
                               what=what, source="traced")

    def _on_retransmit_synack(self, t: int, rec: dict[str, Any]) -> None:
        self._on_retransmit(t, rec, "synack")

    def _on_send_reset(self, t: int, rec: dict[str, Any]) -> None:
        if "sport" not in rec and len(rec.get("saddr", b"")) >= 8:
            # Linux 6.10+: the addresses as struct sockaddr, the sender first.
            (src, sport), (dst, dport) = _sockaddr(rec["saddr"]), _sockaddr(rec["daddr"])
            if src is None or dst is None:
                self.stats["not_ours"] += 1
                return
            family = AF_INET6 if ":" in src else AF_INET
            pack = socket.inet_pton
            rec = {**rec, "family": family, "sport": sport, "dport": dport,
                   "saddr": pack(socket.AF_INET, src) if family == AF_INET else b"",
                   "daddr": pack(socket.AF_INET, dst) if family == AF_INET else b"",
                   "saddr_v6": pack(socket.AF_INET6, src) if family == AF_INET6 else b"",
                   "daddr_v6": pack(socket.AF_INET6, dst) if family == AF_INET6 else b""}
        self._reset(t, rec, "sent")

    def _on_receive_reset(self, t: int, rec: dict[str, Any]) -> None:
        self._reset(t, rec, "received")

    def _reset(self, t: int, rec: dict[str, Any], direction: str) -> None:
        where = self._located(rec, rec.get("sport", 0), rec.get("dport", 0))
        if where is None:
            return
        conn, side = where
        reason = None
        if direction == "sent" and "reason" in rec:
            reason = self._reasons.get(rec["reason"], rec["reason"])
        self.stats["reset"] += 1
        if self.probe.active:
            self.probe.emit_at(t, "reset", conn, -1, self._tid, side=side, direction=direction,
                               state=self._state_of(rec), reason=reason, source="traced")


# ------------------------------------------------------------------ instances
def _remove_instance(path: str) -> bool:
    """rmdir a tracefs instance; False when the kernel keeps it (its files are open)."""
    for attempt in range(5):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or attempt == 4:
                return False
            time.sleep(0.02)
    return False


def _reap_stale_instances(tracefs: str) -> list[str]:
    """Remove instances of ours whose process is gone; returns their names."""
    reaped = []
    try:
        names = os.listdir(f"{tracefs}/instances")
    except OSError:
        return reaped
    for name in names:
        m = re.fullmatch(rf"{INSTANCE_PREFIX}(\d+)-(\d+)", name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # alive (here): not ours to take
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        if _remove_instance(f"{tracefs}/instances/{name}"):
            reaped.append(name)
    return reaped
