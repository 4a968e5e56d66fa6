"""The gate: step the live server one probed action at a time.

When stepping is on, every probe point (accept, recv, send, close, and each
epoll/selectors wait) blocks before its action until a step is released. The
kernel does not stop meanwhile: while the server is held before ``accept``,
clients keep completing handshakes and the accept queue fills; held before
``close``, the client sits in FIN_WAIT_2 and the server's socket in
CLOSE_WAIT. That is the point of stepping a real server.

Each step releases exactly one held action, whichever thread holds it (in
threaded mode, one connection thread per step). Turning stepping off releases
everyone and lets the server run freely; stopping the server does that first.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .events import Probe


@dataclass(frozen=True)
class Held:
    action: str
    conn: str | None
    fd: int
    thread: int
    since_ns: int = field(default_factory=time.monotonic_ns)


class Gate:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.enabled = False  # read without the lock at every probe point: keep it a plain bool
        self._cond = threading.Condition()
        self._credits = 0
        self._held: list[Held] = []
        self.released = 0
        # Told of every change of ``enabled`` (processes mode: its children read it
        # from memory they share with the parent).
        self.on_change: Callable[[bool], None] | None = None

    # ------------------------------------------------------------ control
    def enable(self) -> None:
        with self._cond:
            self.enabled = True
            self._credits = 0
        if self.on_change is not None:
            self.on_change(True)

    def disable(self) -> None:
        """Stepping off: everyone held goes on, and nothing holds any more."""
        with self._cond:
            self.enabled = False
            self._credits = 0
            self._cond.notify_all()
        if self.on_change is not None:
            self.on_change(False)

    def step(self, count: int = 1) -> None:
        """Release ``count`` actions: those held now, or the next ones to arrive."""
        if count < 1:
            raise ValueError("a step releases at least one action")
        with self._cond:
            self._credits += count
            self._cond.notify_all()

    @property
    def held(self) -> list[Held]:
        """The actions waiting for a step, oldest first."""
        with self._cond:
            return list(self._held)

    def wait_until_held(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait (bounded) until at least ``count`` actions are held."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._held) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # ------------------------------------------------------------ probe point
    def wait(self, action: str, conn: str | None, fd: int, thread: int) -> None:
        """Called before a probed action when ``enabled``; returns when it may go."""
        probe = self.probe
        with self._cond:
            if not self.enabled:
                return
            entry = Held(action, conn, fd, thread)
            self._held.append(entry)
            self._cond.notify_all()  # wake wait_until_held
            if probe.active:
                probe.emit("gate", conn, fd, thread, action=action, state="held")
            # Oldest first: a step goes to whoever has waited longest.
            while self.enabled and (self._credits == 0 or self._held[0] is not entry):
                self._cond.wait()
            self._held.remove(entry)
            if self.enabled:
                self._credits -= 1
                self.released += 1
                self._cond.notify_all()  # the next-oldest may now take a credit
            state = "released" if self.enabled else "running"
            held_ns = time.monotonic_ns() - entry.since_ns
        if probe.active:
            probe.emit("gate", conn, fd, thread, action=action, state=state, held_ns=held_ns)
