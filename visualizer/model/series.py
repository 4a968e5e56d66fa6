"""Values read from the events of some kinds, kept by log index (``EventSeries``),
and the column scans the views share (``kind_codes``, ``last_index``).

Plain Python and numpy, no Qt: the I/O view and the plots read them.
"""
from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


# ---------------------------------------------------------------- log helpers
def kind_codes(log: Any, kinds: Iterable[str]) -> list[int]:
    codes = log.kinds.codes
    return [codes[k] for k in kinds if k in codes]


def last_index(log: Any, kinds: Iterable[str], stop: int, *, src: str | None = "server",
               thread: int | None = None, before: int = 0, no_conn: bool = False,
               conn: str | None = None) -> int:
    """Index of the last event of ``kinds`` in ``[before, stop)`` (-1: none); of one
    ``thread``, of one ``conn``, or of none (``no_conn``) if asked.

    Scans back from ``stop`` through the columns in growing windows, so that
    the usual answer (a recent event) costs microseconds even in a huge log.
    """
    codes = kind_codes(log, kinds)
    if not codes or stop <= before:
        return -1
    kind = log.column("kind")
    src_col = log.column("src") if src is not None else None
    src_code = log.sources.codes.get(src) if src is not None else None
    if src is not None and src_code is None:
        return -1
    thread_col = log.column("thread") if thread is not None else None
    conn_col = log.column("conn") if no_conn or conn is not None else None
    none_code = log.conns.codes.get(None if no_conn else conn)
    if (no_conn or conn is not None) and none_code is None:
        return -1
    hi, window = stop, 512
    while hi > before:
        lo = max(before, hi - window)
        part = kind[lo:hi]
        mask = part == codes[0] if len(codes) == 1 else np.isin(part, codes)
        if src_col is not None:
            mask &= src_col[lo:hi] == src_code
        if thread_col is not None:
            mask &= thread_col[lo:hi] == thread
        if conn_col is not None:
            mask &= conn_col[lo:hi] == none_code
        hits = np.flatnonzero(mask)
        if len(hits):
            return lo + int(hits[-1])
        hi, window = lo, window * 4
    return -1


class EventSeries:
    """Values taken from the events of some kinds, read once and kept by log index.

    ``update(log, stop)`` reads the matching events in ``[0, stop)`` that it has
    not read yet (decoding them only when ``value`` needs their data) and keeps
    per entry: the log index, t_ns, fd, kind code and value(s). ``count(cursor)``
    is how many entries lie at or before the cursor: the view slices its arrays
    there, so stepping back shrinks what is drawn without reading anything.

    The cache survives late events merged into the log: it remembers the key
    (t_ns, seq) of what it read and rereads from where the log changed.
    Decoding is bounded per call by ``budget_s``: ``complete`` says whether
    everything up to ``stop`` has been read (a huge log takes a few calls).
    """

    def __init__(self, kinds: Iterable[str], *, src: str | None = "server",
                 value: Callable[[Any], float | tuple[float, ...]] | None = None,
                 width: int = 1, budget_s: float = 0.008) -> None:
        self.kinds = tuple(kinds)
        self.src = src
        self.value = value
        self.width = width
        self.budget_s = budget_s
        self._log_ref: Callable[[], Any] | None = None
        self.complete = True
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.upto = 0  # log indices below this have been read
        self._upto_key: tuple[int, int] | None = None
        self._idx = np.empty(256, np.int64)
        self._t = np.empty(256, np.int64)
        self._seq = np.empty(256, np.int64)
        self._fd = np.empty(256, np.int32)
        self._kind = np.empty(256, np.int16)
        self._v = np.empty((256, self.width), np.float64)
        # matches found but not read yet: (from, scanned up to, key of scanned-1, indices)
        self._pending: tuple[int, int, Any, np.ndarray] | None = None

    # the filled parts
    @property
    def idx(self) -> np.ndarray:
        return self._idx[:self.n]

    @property
    def t(self) -> np.ndarray:
        return self._t[:self.n]

    @property
    def seq(self) -> np.ndarray:
        return self._seq[:self.n]

    @property
    def fd(self) -> np.ndarray:
        return self._fd[:self.n]

    @property
    def kind(self) -> np.ndarray:
        return self._kind[:self.n]

    @property
    def v(self) -> np.ndarray:
        return self._v[:self.n]

    def count(self, cursor: int) -> int:
        """Entries at or before log index ``cursor``."""
        return int(np.searchsorted(self._idx[:self.n], cursor, side="right"))

    def _truncate(self, n: int, upto: int, log: Any) -> None:
        self.n = n
        self.upto = upto
        self._pending = None
        self._upto_key = self._key(log, upto - 1) if upto > 0 else None

    @staticmethod
    def _key(log: Any, i: int) -> tuple[int, int]:
        return int(log.column("t_ns")[i]), int(log.column("seq")[i])

    def _check(self, log: Any) -> None:
        """Forget what a merge into the log made stale."""
        owner = self._log_ref() if self._log_ref is not None else None
        if owner is not log or len(log) < self.upto:
            self._log_ref = weakref.ref(log)
            self._reset()
            return
        if self.upto == 0 or self._key(log, self.upto - 1) == self._upto_key:
            return  # nothing was inserted at or before what we read
        # Something was inserted before ``upto``: entries before the insertion
        # point still sit at their index; find the first that moved (bisect).
        times, seqs = log.column("t_ns"), log.column("seq")
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi) // 2
            i = int(self._idx[mid])
            if int(times[i]) == int(self._t[mid]) and int(seqs[i]) == int(self._seq[mid]):
                lo = mid + 1
            else:
                hi = mid
        upto = int(self._idx[lo - 1]) + 1 if lo > 0 else 0
        self._truncate(lo, upto, log)

    def _grow(self, need: int) -> None:
        if need <= len(self._idx):
            return
        size = max(need, 2 * len(self._idx))
        for name in ("_idx", "_t", "_seq", "_fd", "_kind"):
            old = getattr(self, name)
            new = np.empty(size, old.dtype)
            new[:self.n] = old[:self.n]
            setattr(self, name, new)
        v = np.empty((size, self.width), np.float64)
        v[:self.n] = self._v[:self.n]
        self._v = v

    def _matches(self, log: Any, codes: list[int], start: int, stop: int) -> np.ndarray:
        kind = log.column("kind")[start:stop]
        mask = kind == codes[0] if len(codes) == 1 else np.isin(kind, codes)
        if self.src is not None:
            code = log.sources.codes.get(self.src)
            mask &= (log.column("src")[start:stop] == code) if code is not None else False
        return np.flatnonzero(mask) + start

    def update(self, log: Any, stop: int, deadline: float | None = None) -> EventSeries:
        """Read the matching events in ``[upto, stop)``, decoding until ``deadline``
        (``time.perf_counter()``; default: ``budget_s`` from now)."""
        self._check(log)
        stop = min(stop, len(log))
        if stop <= self.upto:
            self.complete = True
            return self
        codes = kind_codes(log, self.kinds)
        if not codes:
            self._truncate(self.n, stop, log)
            self.complete = True
            return self
        # The matches not read yet are kept between calls (a huge log takes a few):
        # finding them again would cost more than the budget for reading them.
        pending = self._pending
        if pending is None or pending[0] != self.upto or \
                self._key(log, pending[1] - 1) != pending[2]:
            pending = (self.upto, self.upto, None, np.empty(0, np.int64))
        _, scanned, _, found = pending
        if stop > scanned:
            found = np.concatenate([found, self._matches(log, codes, scanned, stop)])
            scanned = stop
        now = found[:int(np.searchsorted(found, stop))]
        values = None
        complete = True
        if self.value is not None and len(now):
            if deadline is None:
                deadline = time.perf_counter() + self.budget_s
            value = self.value
            parts: list[list[Any]] = []
            k = 0
            while k < len(now):  # slices of 128, the clock read between them
                part = now[k:k + 128].tolist()
                parts.append([value(log[i]) for i in part])
                k += len(part)
                if k < len(now) and time.perf_counter() > deadline:
                    complete = False
                    break
            now = now[:k]
            values = np.array([v for part in parts for v in part], np.float64).reshape(
                k, self.width)
        read_to = int(now[-1]) + 1 if not complete else stop
        m, n0 = len(now), self.n
        self._grow(n0 + m)
        self._idx[n0:n0 + m] = now
        self._t[n0:n0 + m] = log.column("t_ns")[now]
        self._seq[n0:n0 + m] = log.column("seq")[now]
        self._fd[n0:n0 + m] = log.column("fd")[now]
        self._kind[n0:n0 + m] = log.column("kind")[now]
        if values is not None:
            self._v[n0:n0 + m] = values
        else:
            self._v[n0:n0 + m] = 1.0
        self._truncate(n0 + m, read_to, log)
        rest = found[m:]
        self._pending = (read_to, scanned, self._key(log, scanned - 1), rest) \
            if scanned > read_to else None
        self.complete = complete
        return self
