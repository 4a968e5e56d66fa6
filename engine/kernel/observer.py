"""Watch the kernel's TCP states for one port and emit every change as events.

``KernelObserver`` polls the kernel (sock_diag netlink, or /proc/net/tcp) in a
daemon thread and turns differences between two looks into ``tcp_state`` and
``accept_queue`` events, carrying the same connection ids as the server's and
the clients' own events.

Why it polls in two tiers. A dump of the port's connections costs about
1.6 ms per address family even when nothing matches (the kernel walks its
whole established hash), so dumping every 5 ms would take a third of a core.
But a TCP state only changes when a segment is sent or received, when a socket
is created or freed, or when a TCP timer fires. So every poll reads the
network namespace's TCP counters (the ``Tcp:`` line of /proc/net/snmp:
segments in and out, resets, opens; the ``TCP:`` line of /proc/net/sockstat:
sockets allocated, orphans, TIME_WAIT count), about 8 µs, and dumps the
connections only when those counters moved in this poll or the one before
(the second look catches a segment counted before its socket's state was
updated, e.g. one waiting on the backlog of a socket the application holds),
when a timer seen in the last dump is due (a retransmission or keepalive that
gives up changes the state without sending anything), and once per
``resync`` seconds regardless. Counters are namespace-wide: traffic on other
ports causes extra dumps, never missed ones. Where the counters cannot be
read, every poll dumps.

The accept queue changes without any segment when the application accepts,
so the listening sockets are dumped (about 15 µs: the kernel skips the hash
walk for them) whenever the counters moved or a queue was not empty. An empty
queue can only grow by a handshake's last ACK, which moves the counters.

What an idle poll costs is mostly waking up: on the 2-core VM this was
measured on, sleeping 5 ms and waking costs 30-55 µs of CPU by itself.

Polls are scheduled on a fixed grid (``interval``), not "interval after the
last one", so a state held for two intervals (10 ms by default) is seen even
when a dump takes a couple of milliseconds.

Honesty: every event says ``source="observed"``. Polling sees states, not
transitions: a state that lasts less than one poll (SYN_SENT and SYN_RECV on
loopback last about 20 µs; LAST_ACK about as long) is usually skipped, and
``previous`` is the last state *seen*, not necessarily the kernel's.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections import Counter
from typing import Any, Iterable

from ..events import Probe
from ..server import _endpoint as endpoint_text
from ..server import connection_id
from .sockdiag import (CONNECTION_STATES, LISTEN_ONLY, OFF_COOKIE, OFF_KEY_END,
                       OFF_SPORT, OFF_STATE, OFF_TAIL, OFF_TIMER, STATE_NAMES, SockDiag,
                       SockDiagError, TcpSocket, iter_messages, parse_message, proc_available,
                       proc_listeners, proc_net_tcp, sockdiag_available)

BACKENDS = ("auto", "sockdiag", "proc")
CLOSED = "CLOSED"  # the end has no socket any more (it left the dump)
# Raw state numbers of a half-open connection: its request socket is replaced
# by a full socket (new cookie) when the handshake completes; same end.
_HANDSHAKE_STATES = frozenset({3, 12})
# A closing socket (FIN_WAIT_1, FIN_WAIT_2, CLOSING) is replaced by a time-wait sock
# (reported in FIN_WAIT_2 or TIME_WAIT) that copies its cookie, unless the cookie was
# still being made (it is made lazily, by the first dump that asks) while the copy was
# taken: then the same end comes back with a new cookie. Same end, not a reused pair.
_CLOSING_STATES = frozenset({4, 5, 11})
_TIME_WAIT_SOCK_STATES = frozenset({5, 6})
_TIMER_TIME_WAIT = 3
_TIMER_SLACK = 0.002  # look this long after a timer is due, so its effect is visible


class _Entry:
    """What the observer remembers of one socket: only what decides "changed"."""
    __slots__ = ("state", "identity", "side", "conn", "name")

    def __init__(self, state: object, identity: object, side: str | None, conn: str | None,
                 name: str) -> None:
        self.state = state  # raw state (sock_diag number, /proc name): compared every scan
        self.identity = identity  # sock_diag cookie bytes; None from /proc
        self.side = side  # "server", "client", or None for a socket that is not ours
        self.conn = conn
        self.name = name  # the state's display name, for "previous"


class _ActivityCounters:
    """The namespace's TCP counters as raw bytes: equal bytes, no TCP activity.

    Files stay open and are re-read with ``pread`` at offset 0, which makes
    the kernel regenerate them (about 5 µs for snmp, 1 µs for sockstat).
    """

    # sockstat6 is not needed: sockstat's "alloc", "orphan" and "tw" count
    # IPv6 TCP sockets too.
    FILES = ("/proc/net/snmp", "/proc/net/sockstat")

    def __init__(self) -> None:
        self._fds: list[int] = []
        try:
            for path in self.FILES:
                self._fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            self.close()
            raise

    def read(self) -> bytes:
        snmp = os.pread(self._fds[0], 16384, 0)
        start = snmp.rfind(b"\nTcp: ")  # the second Tcp line holds the values
        sockstat = os.pread(self._fds[1], 4096, 0)
        tcp = sockstat.find(b"TCP")
        return snmp[start:snmp.find(b"\n", start + 1)] + sockstat[tcp:sockstat.find(b"\n", tcp)]

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def _families_for(host: str | None) -> tuple[int, ...]:
    """The address families whose sockets can belong to a server bound to ``host``.

    Each family costs one walk of the kernel's hash per dump, so ask only for
    the ones that can exist: an IPv4 server has only IPv4 peers; a dual-stack
    server ("::") has IPv6 sockets on its side and IPv4 ones on a v4 client's.
    """
    if host is None or host == "":
        return (socket.AF_INET, socket.AF_INET6)
    if host == "::":
        return (socket.AF_INET6, socket.AF_INET)
    if ":" in host:
        return (socket.AF_INET6,)
    return (socket.AF_INET,)


def _plain_ip(ip: str) -> str:
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


# Each syscall of a poll gives up the GIL, and getting it back from a thread that holds
# it (a server's loop under load, a capture's decoder) waits the interpreter's switch
# interval, 5 ms by default: beside such a thread a poll and its dump took 27 ms
# (median, 53 ms at worst) and a CLOSE_WAIT held 40 ms went unseen. At 1 ms a poll takes
# about 2 ms. Only a thread that waits for the GIL makes the holder give it up, so the
# others lose nothing while the observer sleeps. Lowered while an observer runs, and
# given back when the last one stops.
SWITCH_INTERVAL = 0.001
_switching = {"running": 0, "before": 0.0}
_switching_lock = threading.Lock()


def _quicker_switches() -> None:
    with _switching_lock:
        if _switching["running"] == 0:
            _switching["before"] = sys.getswitchinterval()
            if _switching["before"] > SWITCH_INTERVAL:
                sys.setswitchinterval(SWITCH_INTERVAL)
        _switching["running"] += 1


def _usual_switches() -> None:
    with _switching_lock:
        _switching["running"] -= 1
        if _switching["running"] == 0 and sys.getswitchinterval() == SWITCH_INTERVAL:
            sys.setswitchinterval(max(_switching["before"], SWITCH_INTERVAL))


class KernelObserver:
    """Polls the kernel for the TCP sockets of ``port`` and emits their changes.

    ``probe`` should have src "kernel". ``host`` (the server's bind address)
    narrows the sockets to those of that address and picks the address
    families to dump; ``families`` overrides that choice. ``backend``:
    "sockdiag", "proc", or "auto" (sock_diag, else /proc, with the reason in
    ``backend_reason``). ``resync``: seconds between unconditional dumps.
    ``skip_idle_scans=False`` dumps at every poll, for comparison: measured
    with 2,000 sockets on the port, 74 % of a core instead of about 2.5 %.

    Events (through ``probe``): ``tcp_state`` for each end of each connection
    on the port (the LISTEN socket is not a connection) with side, state,
    previous (None for a socket already there at start, "CLOSED" for one that
    appeared), source "observed", timer, expires_ms, rqueue, wqueue (None
    once the socket is gone), seen_from_ns (when the dump that saw it began: the
    kernel held the state at some moment between that and the event's time); ``accept_queue`` from each listening socket when
    its queue length changes, with length, backlog (None from /proc), source
    and ``listener`` ("ip:port").
    """

    def __init__(self, probe: Probe, port: int, *, interval: float = 0.005,
                 backend: str = "auto", host: str | None = None,
                 families: Iterable[int] | None = None, resync: float = 1.0,
                 skip_idle_scans: bool = True, max_busy: float = 0.1) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.probe = probe
        self.port = port
        self.interval = interval
        self.resync = resync
        self.max_busy = max_busy  # at most this share of a core's CPU time spent dumping
        self.throttled = 0
        self._scan_allowed_at = 0.0
        self._deferred: str | None = None
        self.host = None if host in (None, "", "0.0.0.0", "::") else _plain_ip(host)
        self.families = tuple(families) if families is not None else _families_for(host)
        self._port_bytes = port.to_bytes(2, "big")
        self._diag: SockDiag | None = None
        self.backend, self.backend_reason = self._choose_backend(backend)
        self._counters: _ActivityCounters | None = None
        if skip_idle_scans:
            try:
                self._counters = _ActivityCounters()
            except OSError as exc:
                self.backend_reason += f"; TCP counters unreadable ({exc}): dumping every poll"
        # family -> raw 4-tuple key -> entry (sock_diag); family -> (local, remote) (proc)
        self._known: dict[int, dict[Any, _Entry]] = {f: {} for f in self.families}
        self._queues: dict[tuple[int, tuple[str, int]], int] = {}  # listener -> accept queue length
        self._queue_waiting = False  # some accept queue is not empty: it may shrink any time
        self._last_counters: bytes | None = None
        self._quiet_polls = 0
        self._timer_due = float("inf")
        self._scan_ns = 0  # when the current dump began (monotonic ns)
        self._resync_due = 0.0
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        # Figures for benchmarks and the UI's "how much does watching cost".
        self.polls = 0
        self.scans: Counter[str] = Counter()  # why each connection dump ran
        self.scan_seconds = 0.0  # wall time spent in connection dumps
        self.cpu_seconds = 0.0  # the observer thread's CPU time (user + system)
        self.thread_id: int | None = None
        self.crashed: BaseException | None = None

    # ------------------------------------------------------------ backends
    @staticmethod
    def available(backend: str = "auto") -> tuple[bool, str]:
        """Whether an observer can run here, and why not when it cannot."""
        if not sys.platform.startswith("linux"):
            return False, (f"TCP states come from sock_diag or /proc/net/tcp, Linux interfaces; "
                           f"on {sys.platform} use engine.kernel.inferred.StateInference")
        if backend in ("auto", "sockdiag"):
            ok, reason = sockdiag_available()
            if ok or backend == "sockdiag":
                return ok, reason
            ok2, reason2 = proc_available()
            return ok2, f"{reason}; {reason2}"
        return proc_available()

    def _choose_backend(self, wanted: str) -> tuple[str, str]:
        problems = []
        if wanted in ("auto", "sockdiag"):
            ok, reason = sockdiag_available()
            if ok:
                self._diag = SockDiag()
                return "sockdiag", reason
            if wanted == "sockdiag":
                raise OSError(reason)
            problems.append(reason)
        ok, reason = proc_available()
        if not ok:
            raise OSError("; ".join(problems + [reason]))
        if problems:
            return "proc", f"{problems[0]}: reading /proc/net/tcp instead"
        return "proc", reason

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "KernelObserver":
        """Start polling; returns once the first look at the port is done and emitted."""
        if self._thread is not None:
            raise RuntimeError("observer already started")
        self._thread = threading.Thread(target=self._run, name="sockscope-kernel", daemon=True)
        _quicker_switches()
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop at once: the poll loop waits on an Event, so no sleep delays this."""
        self._stop.set()
        if self._thread is None:
            self._release()  # never started: nothing else will close them
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> "KernelObserver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return {"backend": self.backend, "polls": self.polls, "scans": dict(self.scans),
                "scan_seconds": self.scan_seconds, "cpu_seconds": self.cpu_seconds,
                "throttled": self.throttled}

    # ------------------------------------------------------------ the loop
    def _run(self) -> None:
        tid = self.thread_id = threading.get_native_id()
        interval = self.interval
        try:
            self._guarded(self._poll_listeners, tid)
            self._guarded(self._scan, tid, "initial")
            if self._counters is not None:
                self._last_counters = self._guarded(self._counters.read)
            self._ready.set()
            next_poll = time.monotonic() + interval
            wait = self._stop.wait
            while not wait(max(0.0, next_poll - time.monotonic())):
                now = time.monotonic()
                next_poll += interval
                if next_poll < now:  # fell behind (a slow dump, a busy GIL): no burst of polls
                    next_poll = now + interval
                self.polls += 1
                self._guarded(self._poll, tid, now)
                self.cpu_seconds = time.thread_time()
            # One last look as it stops: what the server's exit did to its sockets
            # (closed, TIME_WAIT...) is the end of the story, not a stale state.
            self._guarded(self._scan, tid, "final")
        except BaseException as exc:  # a bug, not a kernel refusal: say so, then stop
            self.crashed = exc
            if self.probe.active:
                self.probe.emit("error", None, -1, tid, what="kernel_observer_crashed",
                                detail=repr(exc))
            raise
        finally:
            self._ready.set()
            self._release()
            _usual_switches()

    def _release(self) -> None:
        """Close the netlink socket and the counter files (once)."""
        if self._diag is not None:
            self._diag.close()
            self._diag = None
        if self._counters is not None:
            self._counters.close()
            self._counters = None

    def _poll(self, tid: int, now: float) -> None:
        reason = None
        if self._counters is None:
            reason = "every poll"
        else:
            counters = self._counters.read()
            if counters != self._last_counters:
                self._last_counters = counters
                self._quiet_polls = 0
                reason = "counters"
            else:
                self._quiet_polls += 1
                if self._quiet_polls == 1:
                    reason = "settle"
        if reason is None:
            if now >= self._timer_due:
                reason = "timer"
            elif now >= self._resync_due:
                reason = "resync"
        # Under constant traffic the counters move at every poll; a dump of a
        # big table costs milliseconds, so dumps are spaced to keep this
        # thread under ``max_busy`` of a core. A deferred trigger is kept.
        if reason is not None and now < self._scan_allowed_at:
            self._deferred = self._deferred or reason
            self.throttled += 1
            reason = None
        elif reason is None and self._deferred is not None and now >= self._scan_allowed_at:
            reason, self._deferred = self._deferred, None
        if reason is not None or self._queue_waiting:
            self._poll_listeners(tid)
        if reason is not None:
            # The dump's cost is this thread's CPU time, not the wall time it took:
            # on a loaded machine a dump of a few connections can wait tens of ms
            # for a core (or the GIL), and spacing dumps by that wait would blind
            # the observer to short states exactly when the machine is busiest.
            cpu = time.thread_time()
            self._scan(tid, reason)
            self._scan_allowed_at = now + (time.thread_time() - cpu) / self.max_busy

    def _guarded(self, step: Any, *args: Any) -> Any:
        """Run one step; report a failure once (as an ``error`` event) and carry on."""
        try:
            return step(*args)
        except (OSError, SockDiagError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if detail != self._last_error and self.probe.active:
                self.probe.emit("error", None, -1, threading.get_native_id(),
                                what="kernel_observer", detail=detail)
            self._last_error = detail
            return None

    # ------------------------------------------------------------ listeners
    def _poll_listeners(self, tid: int) -> None:
        if self._diag is not None:
            listeners = []
            for family in self.families:
                chunks = self._diag.dump_raw(family, self.port, LISTEN_ONLY)
                listeners.extend(parse_message(c, o) for c, o in iter_messages(chunks))
        else:
            listeners = proc_listeners(self.port, self.families)
        probe = self.probe
        for sock in listeners:
            if sock.state != "LISTEN" or sock.local[1] != self.port:
                continue
            wildcard_or_host = (self.host, "0.0.0.0", "::")
            if self.host is not None and _plain_ip(sock.local[0]) not in wildcard_or_host:
                continue
            key = (sock.family, sock.local)
            if self._queues.get(key) != sock.rqueue:
                self._queues[key] = sock.rqueue
                self._queue_waiting = any(self._queues.values())
                if probe.active:
                    # (a backend that cannot say the backlog leaves it out: a trace
                    # refuses a null there)
                    probe.emit("accept_queue", None, -1, tid, length=sock.rqueue,
                               **({"backlog": sock.wqueue} if sock.wqueue is not None
                                  else {}),
                               source="observed", listener=endpoint_text(sock.local))

    # ------------------------------------------------------------ connections
    def _scan(self, tid: int, reason: str) -> None:
        started = time.monotonic()
        # What a dump reports, the kernel held at some moment between this and the
        # report's own time: a check of the report needs that window (seen_from_ns).
        self._scan_ns = time.monotonic_ns()
        self.scans[reason] += 1
        self._timer_due = float("inf")
        initial = reason == "initial"
        for family in self.families:
            if self._diag is not None:
                self._scan_sockdiag(family, tid, initial, started)
            else:
                self._scan_proc(family, tid, initial, started)
        self._resync_due = started + self.resync
        self.scan_seconds += time.monotonic() - started

    def _scan_sockdiag(self, family: int, tid: int, initial: bool, started: float) -> None:
        """Diff one family's dump against the last one, touching raw bytes only.

        Unchanged sockets (same state byte, same cookie) cost a slice, a dict
        lookup and two comparisons; only new or changed ones are decoded.
        """
        assert self._diag is not None
        chunks = self._diag.dump_raw(family, self.port, CONNECTION_STATES)
        old = self._known[family]
        new: dict[bytes, _Entry] = {}
        added = 0
        python_filter = not self._diag.kernel_filter
        port_bytes = self._port_bytes
        timer_due = self._timer_due
        for chunk, off in iter_messages(chunks):
            key = chunk[off + OFF_SPORT:off + OFF_KEY_END]
            if python_filter and key[0:2] != port_bytes and key[2:4] != port_bytes:
                continue
            state = chunk[off + OFF_STATE]
            cookie = chunk[off + OFF_COOKIE:off + OFF_TAIL]
            timer = chunk[off + OFF_TIMER]
            if timer and timer != _TIMER_TIME_WAIT:
                # A pending retransmit/keepalive/probe timer may change the state
                # without a segment (giving up): look again when it is due.
                expires = int.from_bytes(chunk[off + OFF_TAIL:off + OFF_TAIL + 4], sys.byteorder)
                timer_due = min(timer_due, started + expires / 1000 + _TIMER_SLACK)
            entry = old.get(key)
            if entry is not None and entry.state == state and entry.identity == cookie:
                new[key] = entry
                continue
            if entry is None:
                added += 1
            new[key] = self._changed(entry, state, cookie, parse_message(chunk, off), tid, initial)
        self._timer_due = timer_due
        self._forget_vanished(old, new, added, tid)
        self._known[family] = new

    def _scan_proc(self, family: int, tid: int, initial: bool, started: float) -> None:
        """The same diff from /proc/net/tcp text (no cookies: identity is the state)."""
        old = self._known[family]
        new: dict[tuple, _Entry] = {}
        added = 0
        timer_due = self._timer_due
        for sock in proc_net_tcp(self.port, (family,)):
            if sock.state == "LISTEN":
                continue
            if sock.timer not in ("off", "time_wait"):
                timer_due = min(timer_due, started + sock.expires_ms / 1000 + _TIMER_SLACK)
            key = (sock.local, sock.remote)
            entry = old.get(key)
            if entry is not None and entry.state == sock.state:
                new[key] = entry
                continue
            if entry is None:
                added += 1
            new[key] = self._changed(entry, sock.state, None, sock, tid, initial)
        self._timer_due = timer_due
        self._forget_vanished(old, new, added, tid)
        self._known[family] = new

    def _changed(self, entry: _Entry | None, state: object, identity: object, sock: TcpSocket,
                 tid: int, initial: bool) -> _Entry:
        """Emit what a new or changed socket means; returns what to remember of it."""
        if entry is not None and entry.identity != identity \
                and entry.state not in _HANDSHAKE_STATES and entry.side is not None \
                and not (entry.state in _CLOSING_STATES and state in _TIME_WAIT_SOCK_STATES):
            # Same 4-tuple, another socket (the port pair was reused): the old one ended.
            self._emit_closed(entry, tid)
            entry = _Entry(None, None, entry.side, entry.conn, CLOSED)
        if entry is not None:
            side, conn = entry.side, entry.conn
        else:
            side, conn = self._orient(sock)
        fresh = _Entry(state, identity, side, conn, sock.state)
        if side is not None and (entry is None or entry.name != sock.state) and self.probe.active:
            previous = entry.name if entry is not None else (None if initial else CLOSED)
            self.probe.emit("tcp_state", conn, -1, tid, side=side, state=sock.state,
                            previous=previous, source="observed", timer=sock.timer,
                            expires_ms=sock.expires_ms, rqueue=sock.rqueue, wqueue=sock.wqueue,
                            seen_from_ns=self._scan_ns)
        return fresh

    def _forget_vanished(self, old: dict, new: dict, added: int, tid: int) -> None:
        if len(old) - (len(new) - added) <= 0:
            return  # every old key is still there
        for key in old.keys() - new.keys():
            entry = old[key]
            if entry.side is not None:
                self._emit_closed(entry, tid)

    def _emit_closed(self, entry: _Entry, tid: int) -> None:
        if self.probe.active:
            self.probe.emit("tcp_state", entry.conn, -1, tid, side=entry.side, state=CLOSED,
                            previous=entry.name, source="observed", timer=None,
                            expires_ms=None, rqueue=None, wqueue=None,
                            seen_from_ns=self._scan_ns)

    def _orient(self, sock: TcpSocket) -> tuple[str | None, str | None]:
        """(side, connection id client>server) of a socket, or (None, None) if not ours.

        The end whose local port is the server's port is the server's; the id
        is always written client first, as the engine and the clients write it.
        """
        host = self.host
        if sock.local[1] == self.port:
            if host is not None and _plain_ip(sock.local[0]) != host:
                return None, None
            return "server", connection_id(sock.remote, sock.local)
        if sock.remote[1] == self.port:
            if host is not None and _plain_ip(sock.remote[0]) != host:
                return None, None
            return "client", connection_id(sock.local, sock.remote)
        return None, None


__all__ = ["KernelObserver", "BACKENDS", "CLOSED", "STATE_NAMES"]
