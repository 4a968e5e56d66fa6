"""epoll: one thread, the kernel keeps the interest list and hands back a ready list.

Level-triggered: an fd with unread data is reported on every ``epoll_wait``;
the loop reads once per report. Edge-triggered: an fd is reported when it
*becomes* ready, so the loop must drain it to EAGAIN, or the rest of the data
waits for a readiness change that never comes (lecture 3.9's bug). Write
interest is registered only while a send buffer waits.

``no_drain`` (a lesson's option) is that bug on purpose: every report gets
one ``recv(1024)``, as in the lecture's server, whatever the trigger.

The loop is select's and poll's (``engine.modes.readiness``); epoll records
its calls by their own names, ``epoll_ctl`` and ``epoll_wait``.
"""
from __future__ import annotations

from ..connection import Connection
from .readiness import LECTURE_RECV, EpollMux, Multiplexer, ReadinessServer, mask_names

__all__ = ["EpollServer", "LECTURE_RECV", "mask_names"]


class EpollServer(ReadinessServer):
    mode = "epoll"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.edge = self.config.trigger == "edge"

    def make_mux(self) -> Multiplexer:
        return EpollMux()

    def _report_wait(self, tid: int, timeout: float | None, ready: list[tuple[int, int]],
                     scanned: int | None) -> None:
        self.probe.emit("epoll_wait", None, -1, tid, timeout=-1 if timeout is None else timeout,
                        ready=ready)

    def _report_ctl(self, op: str, fd: int, mask: int, conn: Connection | None) -> None:
        self.probe.emit("epoll_ctl", conn.id if conn else None, fd, self._tid, op=op,
                        mask=mask_names(mask))
