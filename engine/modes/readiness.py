"""The readiness loop of lecture 3.9: select, poll and epoll (and the portable
selectors): one thread asks the kernel which sockets are ready, then serves
those. Level-triggered: an fd with unread data is reported on every call.
Edge-triggered (epoll alone): an fd is reported when it *becomes* ready, so
the loop drains it, and the accept queue, to EAGAIN.

What the call costs is the point of the lesson: ``select()`` and ``poll()``
hand the kernel the *whole* set of watched fds on every call, and the kernel
scans them all (``fds`` in each ``wait`` event counts them), where epoll keeps
its interest list in the kernel and hands back the ready ones only. select()
also cannot watch an fd numbered FD_SETSIZE (1024) or above: a connection that
gets one is answered 503 and closed (an ``error`` event, ``what: fd_setsize``).

Events: ``interest`` (op ADD/MOD/DEL, mask) when the watched set changes, and
``wait`` (call, timeout, ready, fds) for each call; the masks use epoll's bits
(IN 1, OUT 4), so every picture reads them alike. epoll records its own calls
by their names: ``epoll_ctl`` and ``epoll_wait``.
"""
from __future__ import annotations

import heapq
import itertools
import os
import select
import selectors
import time
from math import ceil, inf as INF

from ..connection import RECV_SIZE, Connection
from ..server import REFUSED, Server

READ, WRITE = 1, 4  # = EPOLLIN, EPOLLOUT (and POLLIN, POLLOUT)
ERR, HUP = 8, 16  # = EPOLLERR, EPOLLHUP (and POLLERR, POLLHUP): read to learn which
ET = 1 << 31  # = EPOLLET
ACCEPT_BATCH = 128  # level-triggered: accepts per readiness report
TICK = 0.25  # seconds between accept() retries while out of file descriptors
LECTURE_RECV = 1024  # no_drain: the lecture's recv(1024), once per report
# What select() can watch: on POSIX, fds numbered below 1024 (glibc's FD_SETSIZE; Python's
# select.select refuses the others); on Windows, 512 sockets of any handle (Python's build).
FD_SETSIZE = 512 if os.name == "nt" else 1024


def mask_names(mask: int) -> str:
    names = [name for bit, name in ((READ, "IN"), (WRITE, "OUT"), (ET, "ET"), (ERR, "ERR"),
                                    (HUP, "HUP")) if mask & bit]
    return "|".join(names) or "0"


class Multiplexer:
    """What the loop asks of select, poll or a selector: the watched set, and a wait."""

    call = "?"  # what the wait events say it called
    action = "select"  # the call, as the stepping gate holds it ("held before select")
    forever: float | None = None  # the timeout that waits without end

    def __init__(self) -> None:
        self.masks: dict[int, int] = {}

    def fits(self, fd: int) -> bool:
        return True

    def register(self, fd: int, mask: int) -> None:
        self.masks[fd] = mask

    def modify(self, fd: int, mask: int) -> None:
        self.masks[fd] = mask

    def unregister(self, fd: int) -> None:
        self.masks.pop(fd, None)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        raise NotImplementedError

    @property
    def scanned(self) -> int | None:
        """How many fds one call hands the kernel to scan (None: none is handed in)."""
        return len(self.masks)

    def close(self) -> None:
        self.masks.clear()


class EpollMux(Multiplexer):
    """The kernel keeps the interest list; a wait hands back the ready ones only."""

    call, action = "epoll", "epoll_wait"
    forever = -1

    def __init__(self) -> None:
        super().__init__()
        self._ep = select.epoll()
        self.wait = self._ep.poll  # type: ignore[method-assign]  # (no frame of ours per call)

    def register(self, fd: int, mask: int) -> None:
        self._ep.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        self._ep.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        self._ep.unregister(fd)

    @property
    def scanned(self) -> int | None:
        return None  # the interest list stays in the kernel: nothing is handed in

    def close(self) -> None:
        self._ep.close()


def _select_fits(mux: Multiplexer, fd: int) -> bool:
    return len(mux.masks) < FD_SETSIZE if os.name == "nt" else fd < FD_SETSIZE


class SelectMux(Multiplexer):
    call = "select"

    def fits(self, fd: int) -> bool:
        return _select_fits(self, fd)

    @property
    def scanned(self) -> int:
        return sum(1 for m in self.masks.values() if m)  # what the call's lists hold

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        masks = self.masks
        r = [fd for fd, m in masks.items() if m & READ]
        w = [fd for fd, m in masks.items() if m & WRITE]
        readable, writable, _ = select.select(r, w, [], timeout)
        ready: dict[int, int] = {fd: READ for fd in readable}
        for fd in writable:
            ready[fd] = ready.get(fd, 0) | WRITE
        return list(ready.items())


class PollMux(Multiplexer):
    call = action = "poll"
    _IN = select.POLLIN | select.POLLERR | select.POLLHUP if hasattr(select, "poll") else 0

    def __init__(self) -> None:
        super().__init__()
        self._poll = select.poll()

    def register(self, fd: int, mask: int) -> None:
        super().register(fd, mask)
        self._poll.register(fd, mask)  # READ/WRITE are POLLIN/POLLOUT

    def modify(self, fd: int, mask: int) -> None:
        super().modify(fd, mask)
        self._poll.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        super().unregister(fd)
        self._poll.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        events = self._poll.poll(None if timeout is None else timeout * 1000)
        return [(fd, (READ if ev & self._IN else 0) | (WRITE if ev & select.POLLOUT else 0))
                for fd, ev in events]


class SelectorsMux(Multiplexer):
    """The portable selector (kqueue on macOS/BSD, select on Windows, epoll on Linux).
    It cannot hold an fd with no interest: such an fd leaves it until it wants again."""

    def __init__(self) -> None:
        super().__init__()
        self._sel = selectors.DefaultSelector()
        self.call = type(self._sel).__name__
        # select() underneath (Windows): the same limit as the select mode's
        self._limited = isinstance(self._sel, selectors.SelectSelector)
        # a set handed in on every call (select, poll underneath): counted; an epoll or
        # kqueue underneath keeps it in the kernel, and nothing is handed in to count
        self._handed = isinstance(self._sel, (selectors.SelectSelector,
                                              getattr(selectors, "PollSelector", ())))

    def fits(self, fd: int) -> bool:
        return not self._limited or _select_fits(self, fd)

    @staticmethod
    def _events(mask: int) -> int:
        return (selectors.EVENT_READ if mask & READ else 0) | \
            (selectors.EVENT_WRITE if mask & WRITE else 0)

    def register(self, fd: int, mask: int) -> None:
        super().register(fd, mask)
        self._sel.register(fd, self._events(mask))

    def modify(self, fd: int, mask: int) -> None:
        before = self.masks.get(fd, 0)
        super().modify(fd, mask)
        if not mask:
            if before:
                self._sel.unregister(fd)
        elif not before:
            self._sel.register(fd, self._events(mask))
        else:
            self._sel.modify(fd, self._events(mask))

    def unregister(self, fd: int) -> None:
        if self.masks.pop(fd, 0):
            self._sel.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        return [(key.fd, (READ if ev & selectors.EVENT_READ else 0)
                 | (WRITE if ev & selectors.EVENT_WRITE else 0))
                for key, ev in self._sel.select(timeout)]

    @property
    def scanned(self) -> int | None:  # type: ignore[override]
        return sum(1 for m in self.masks.values() if m) if self._handed else None

    def close(self) -> None:
        super().close()
        self._sel.close()


class ReadinessServer(Server):
    """The loop, whatever the multiplexer (``make_mux``)."""

    mode = "?"
    edge = False  # edge-triggered (epoll's --trigger edge)

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._mux = self.make_mux()
        # no_drain (a lesson's option, lecture 3.9's bug on purpose): one recv(1024)
        # per report, as the lecture's server does, whatever the trigger.
        self._once = self.config.no_drain
        self._size = LECTURE_RECV if self._once else RECV_SIZE
        # (deadline, order, connection): when each connection may time out next
        self._deadlines: list[tuple[float, int, Connection]] = []
        self._order = itertools.count()

    def make_mux(self) -> Multiplexer:
        raise NotImplementedError

    def multiplexer_name(self) -> str:
        return self._mux.call

    def _run(self, tid: int) -> None:
        assert self.listener is not None
        mux = self._mux
        self._tid = tid
        probe = self.probe
        edge, once, size = self.edge, self._once, self._size
        et = ET if edge else 0
        lfd, wfd = self.listener.fileno(), self._wake_r.fileno()
        self._ctl("ADD", lfd, READ | et)
        self._ctl("ADD", wfd, READ)
        conns = self.conns
        monotonic = time.monotonic
        deadlines = self._deadlines
        readish = READ | ERR | HUP
        wait, forever = mux.wait, mux.forever
        try:
            while not self._stopping:
                # The wait lasts until the nearest deadline (a heap of them), no longer.
                if deadlines:
                    timeout = max(0.0, ceil((deadlines[0][0] - monotonic()) * 1000) / 1000)
                    if self.accept_starved:
                        timeout = min(timeout, TICK)
                else:
                    timeout = TICK if self.accept_starved else forever
                if edge and self.accept_starved:
                    # The queue's connections gave no new edge: accept them as fds free up.
                    self._accept(tid)
                if self.gate.enabled:
                    self.gate.wait(mux.action, None, -1, tid)
                if probe.active:
                    scanned = mux.scanned
                    ready = wait(timeout)
                    self._report_wait(tid, timeout, ready, scanned)
                else:
                    ready = wait(timeout)
                for fd, ev in ready:
                    conn = conns.get(fd)
                    if conn is not None:
                        try:
                            if ev & readish:
                                if once:
                                    conn.handle_read(False, size)
                                else:
                                    conn.handle_read(edge)
                            if ev & WRITE and not conn.closed:
                                conn.handle_write()
                                if edge and conn.read_paused and conn.wants_read():
                                    # no new edge will report it
                                    conn.handle_read(not once, size)
                            if not conn.closed:
                                want = et | (READ if conn.wants_read() else 0) | \
                                    (WRITE if conn.wants_write() else 0)
                                if want != conn.mask:
                                    self._ctl("MOD", fd, want, conn)
                                    conn.mask = want
                                if conn.deadline < conn.queued_at:  # sooner than its entry
                                    self._queue(conn)
                        except Exception as exc:  # this connection's failure, not the loop's
                            conn.crashed(exc)
                    elif fd == lfd:
                        if not self._stopping:  # (closing ones leave the set unrecorded)
                            self._accept(tid)
                    elif fd == wfd:
                        self.drain_wakeup()
                if deadlines and deadlines[0][0] <= monotonic():
                    self._expire_due(monotonic())
        finally:
            mux.close()

    def _queue(self, conn: Connection) -> None:
        """Put ``conn`` in the deadline heap at its deadline. A connection has an entry
        at the earliest time it may expire (a later deadline is looked at when that
        entry comes up; a sooner one gets an entry of its own), so the heap holds about
        one entry per connection, not one per request."""
        conn.queued_at = conn.deadline
        heapq.heappush(self._deadlines, (conn.deadline, next(self._order), conn))

    def _expire_due(self, now: float) -> None:
        """Every entry due: its connection times out if its deadline has passed, or
        goes back in the heap at its later one."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            at, _, conn = heapq.heappop(deadlines)
            if conn.closed or at != conn.queued_at:
                continue  # gone, or a sooner entry of its own came first
            conn.queued_at = INF
            try:
                conn.expire_if_due(now)
            except Exception as exc:  # this connection's failure, not the loop's
                conn.crashed(exc)
            if not conn.closed and conn.fd in self.conns:
                self._queue(conn)

    def _report_wait(self, tid: int, timeout: float | None, ready: list[tuple[int, int]],
                     scanned: int | None) -> None:
        self.probe.emit("wait", None, -1, tid, call=self._mux.call,
                        timeout=-1 if timeout is None else timeout, ready=ready, fds=scanned)

    def _accept(self, tid: int) -> None:
        # Edge-triggered must drain the accept queue to EAGAIN; level-triggered takes a
        # bounded batch and is told again about the rest.
        et = ET if self.edge else 0
        for _ in range(1_000_000 if self.edge else ACCEPT_BATCH):
            conn = self.accept_one(tid)
            if conn is None:
                return
            if conn is REFUSED:
                continue
            if not self._mux.fits(conn.fd):
                self._too_high(conn, tid)
                continue
            conn.mask = READ | et
            self._ctl("ADD", conn.fd, conn.mask, conn)
            self._queue(conn)

    def _too_high(self, conn: Connection, tid: int) -> None:
        """select() cannot watch this fd: say so, answer 503 if it can go at once, close."""
        self.stats.refused += 1
        if self.probe.active:
            self.probe.emit("error", conn.id, conn.fd, tid, what="fd_setsize",
                            detail=f"fd {conn.fd} is beyond what {self._mux.call}() can watch "
                                   f"(FD_SETSIZE {FD_SETSIZE})")
        conn.refuse(503, f"{self._mux.call}() cannot watch fd {conn.fd} "
                         f"(FD_SETSIZE {FD_SETSIZE})")

    def _ctl(self, op: str, fd: int, mask: int, conn: Connection | None = None) -> None:
        mux = self._mux
        if op == "ADD":
            mux.register(fd, mask)
        elif op == "MOD":
            mux.modify(fd, mask)
        else:
            mux.unregister(fd)
        if self.probe.active:
            self._report_ctl(op, fd, mask, conn)

    def _report_ctl(self, op: str, fd: int, mask: int, conn: Connection | None) -> None:
        self.probe.emit("interest", conn.id if conn else None, fd, self._tid, op=op,
                        mask=mask_names(mask), call=self._mux.call)

    def _forget(self, conn: Connection) -> None:
        # (conn.mask 0: never added, as one refused for FD_SETSIZE: nothing to take out)
        if self.conns.get(conn.fd) is conn and conn.mask and not self._stopping:
            try:
                self._ctl("DEL", conn.fd, 0, conn)
            except (KeyError, ValueError, OSError):
                pass
        super()._forget(conn)


class SelectServer(ReadinessServer):
    mode = "select"

    def make_mux(self) -> Multiplexer:
        return SelectMux()


class PollServer(ReadinessServer):
    mode = "poll"

    def make_mux(self) -> Multiplexer:
        return PollMux()
