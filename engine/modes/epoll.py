"""epoll: one thread, the kernel keeps the interest list and hands back a ready list.

Level-triggered: an fd with unread data is reported on every ``epoll_wait``;
the loop reads once per report. Edge-triggered: an fd is reported when it
*becomes* ready, so the loop must drain it to EAGAIN, or the rest of the data
waits for a readiness change that never comes (lecture 3.9's bug). Write
interest is registered only while a send buffer waits.

``no_drain`` (a lesson's option) is that bug on purpose: every report gets
one ``recv(1024)``, as in the lecture's server, whatever the trigger.
"""
from __future__ import annotations

import select
import time

from ..connection import RECV_SIZE, Connection
from ..server import REFUSED, Server

EPOLLIN, EPOLLOUT, EPOLLET = select.EPOLLIN, select.EPOLLOUT, select.EPOLLET
EPOLLERR, EPOLLHUP = select.EPOLLERR, select.EPOLLHUP
READISH = EPOLLIN | EPOLLERR | EPOLLHUP
ACCEPT_BATCH = 128  # level-triggered: accepts per readiness report
TICK = 0.25  # seconds between time-out checks
LECTURE_RECV = 1024  # no_drain: the lecture's recv(1024), once per report


def mask_names(mask: int) -> str:
    names = [name for bit, name in ((EPOLLIN, "IN"), (EPOLLOUT, "OUT"), (EPOLLET, "ET"),
                                    (EPOLLERR, "ERR"), (EPOLLHUP, "HUP")) if mask & bit]
    return "|".join(names) or "0"


class EpollServer(Server):
    mode = "epoll"

    def multiplexer_name(self) -> str:
        return "epoll"

    def _run(self, tid: int) -> None:
        assert self.listener is not None
        edge = self.config.trigger == "edge"
        et = EPOLLET if edge else 0
        once = self.config.no_drain  # the lesson's bug: one recv per report
        size = LECTURE_RECV if once else RECV_SIZE
        self._ep = ep = select.epoll()
        self._tid = tid
        probe = self.probe
        lfd = self.listener.fileno()
        wfd = self._wake_r.fileno()
        self._ctl("ADD", lfd, EPOLLIN | et)
        self._ctl("ADD", wfd, EPOLLIN)
        conns = self.conns
        monotonic = time.monotonic
        next_tick = monotonic() + TICK
        try:
            while not self._stopping:
                timeout = TICK if conns or self.accept_starved else -1
                if edge and self.accept_starved:
                    # The queue's connections gave no new edge: accept them as fds free up.
                    self._accept(tid, et, edge)
                if self.gate.enabled:
                    self.gate.wait("epoll_wait", None, -1, tid)
                ready = ep.poll(timeout)
                if probe.active:
                    probe.emit("epoll_wait", None, -1, tid, timeout=timeout, ready=ready)
                for fd, ev in ready:
                    conn = conns.get(fd)
                    if conn is not None:
                        try:
                            if ev & READISH:
                                if once:
                                    conn.handle_read(False, size)
                                else:
                                    conn.handle_read(edge)
                            if ev & EPOLLOUT and not conn.closed:
                                conn.handle_write()
                                if edge and conn.read_paused and conn.wants_read():
                                    # no new edge will report it
                                    conn.handle_read(not once, size)
                            if not conn.closed:
                                want = et | (EPOLLIN if conn.wants_read() else 0) | \
                                    (EPOLLOUT if conn.wants_write() else 0)
                                if want != conn.mask:
                                    self._ctl("MOD", fd, want)
                                    conn.mask = want
                        except Exception as exc:  # this connection's failure, not the loop's
                            conn.crashed(exc)
                    elif fd == lfd:
                        self._accept(tid, et, edge)
                    elif fd == wfd:
                        self.drain_wakeup()
                if conns:
                    now = monotonic()
                    if now >= next_tick:
                        next_tick = now + TICK
                        self.expire(now)
        finally:
            ep.close()

    def _accept(self, tid: int, et: int, edge: bool) -> None:
        # Edge-triggered must drain the accept queue to EAGAIN; level-triggered
        # takes a bounded batch and is told again about the rest.
        for _ in range(1_000_000 if edge else ACCEPT_BATCH):
            conn = self.accept_one(tid)
            if conn is None:
                return
            if conn is REFUSED:
                continue
            conn.mask = EPOLLIN | et
            self._ctl("ADD", conn.fd, conn.mask, conn)

    def _ctl(self, op: str, fd: int, mask: int, conn: Connection | None = None) -> None:
        if op == "ADD":
            self._ep.register(fd, mask)
        elif op == "MOD":
            self._ep.modify(fd, mask)
        else:
            self._ep.unregister(fd)
        if self.probe.active:
            self.probe.emit("epoll_ctl", conn.id if conn else None, fd, self._tid, op=op,
                            mask=mask_names(mask))

    def _forget(self, conn: Connection) -> None:
        if self.conns.get(conn.fd) is conn and not self._stopping:
            try:
                self._ctl("DEL", conn.fd, 0, conn)
            except (OSError, ValueError):  # ValueError: the epoll object is closed
                pass
        super()._forget(conn)
