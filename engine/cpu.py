"""CPU use of the serving process, sampled: what a busy-polling loop burns and
what an epoll loop saves.

``CpuSampler`` emits a ``cpu`` event every ``interval`` seconds from its own
thread, idle or not (a busy loop at 100 % with no traffic is the lesson):
``percent`` is the process's user+system time over the wall time of the
sample, 100 being one core. Each sample also says what holding connections costs
the process: ``threads`` (its OS threads now), ``rss_mb`` (its resident memory now,
None where the system does not say) and ``switches`` (the context switches of all
its threads so far, voluntary and not: the scheduler's work).
"""
from __future__ import annotations

import os
import threading
import time

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


def _cpu_times() -> tuple[float, float]:
    """The process's user and system seconds, as finely as the system counts them
    (getrusage: microseconds; os.times: 10 ms ticks, too coarse for 20 ms samples)."""
    if resource is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime, usage.ru_stime
    t = os.times()
    return t.user, t.system

from .events import Probe

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _footprint() -> tuple[int, float | None, int | None]:
    """(OS threads, resident MB, context switches so far) of this process."""
    threads, rss = threading.active_count(), None
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        threads = int(fields[17])  # num_threads: every OS thread, not only Python's
        with open("/proc/self/statm", "rb") as f:
            rss = round(int(f.read().split()[1]) * _PAGE / (1 << 20), 1)
    except (OSError, IndexError, ValueError):
        pass
    switches = None
    if resource is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of the process
        switches = usage.ru_nvcsw + usage.ru_nivcsw
    return threads, rss, switches


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
        (user0, system0), wall = _cpu_times(), time.monotonic()
        while not self._stop.wait(self.interval):
            (user, system), now = _cpu_times(), time.monotonic()
            span = now - wall
            if span <= 0:
                continue
            used = (user - user0) + (system - system0)
            threads, rss, switches = _footprint()
            self.probe.emit("cpu", percent=round(100.0 * used / span, 1),
                            user_s=round(user, 3), system_s=round(system, 3),
                            interval_s=round(span, 4), threads=threads, rss_mb=rss,
                            switches=switches)
            user0, system0, wall = user, system, now

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
