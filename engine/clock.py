"""A background clock: one daemon thread that calls a function every so often."""
from __future__ import annotations

import threading
from typing import Callable


class Clock:
    """Calls ``tick()`` every ``period`` seconds, in a daemon thread named ``name``, from
    ``start()`` until ``stop()``; ``stop()`` returns at once (the thread waits on an
    Event, not a sleep), joins the thread (2 s at most), then calls ``last()`` once."""

    def __init__(self, name: str, period: float, tick: Callable[[], None],
                 last: Callable[[], None] | None = None) -> None:
        self.name, self.period, self.tick, self.last = name, period, tick, last
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self.last is not None:
            self.last()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.tick()
