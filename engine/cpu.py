"""CPU use of the serving process, sampled: what a busy-polling loop burns and
what an epoll loop saves.

``CpuSampler`` emits a ``cpu`` event every ``interval`` seconds from its own
thread, idle or not (a busy loop at 100 % with no traffic is the lesson):
``percent`` is the process's user+system time over the wall time of the
sample, 100 being one core.
"""
from __future__ import annotations

import os
import threading
import time

from .events import Probe


class CpuSampler:
    def __init__(self, probe: Probe, interval: float = 0.1) -> None:
        self.probe = probe
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "CpuSampler":
        self._thread = threading.Thread(target=self._run, name="sockscope-cpu", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        times = os.times()
        wall = time.monotonic()
        while not self._stop.wait(self.interval):
            now_times, now = os.times(), time.monotonic()
            span = now - wall
            if span <= 0:
                continue
            user, system = now_times.user - times.user, now_times.system - times.system
            self.probe.emit("cpu", percent=round(100.0 * (user + system) / span, 1),
                            user_s=round(now_times.user, 3), system_s=round(now_times.system, 3),
                            interval_s=round(span, 4))
            times, wall = now_times, now

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
