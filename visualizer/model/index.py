"""Reading the event log: the indices of some kinds kept up to date as the log grows,
and what the views decode from events, cached.

Plain Python and numpy, no Qt: shared by the views (lifecycle, sockets) and
by the lifecycle model (``visualizer.model.lifecycle``).
"""
from __future__ import annotations

import numpy as np


class EventIndex:
    """The log indices of some kinds, with their columns, kept up to date as the log grows.

    Built once per log and extended as batches arrive: when a late batch was
    merged into the log's tail, the entries from the first one that moved are
    read again (an entry is unchanged while the same (t_ns, seq) sits at its index).
    """

    COLUMNS = (("idx", np.int64), ("kind", np.int16), ("conn", np.int32), ("t", np.int64),
               ("seq", np.int64), ("src", np.int16))

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.kinds = kinds
        self.log = None
        self.n = 0  # log length when last brought up to date
        self.first_new = 0  # entries before this one were kept by the last update
        self._last: tuple[int, int] | None = None  # (t_ns, seq) of event n - 1 then
        self._count = 0
        self._cols = {name: np.empty(256, dtype) for name, dtype in self.COLUMNS}

    # The entries' columns (views: read them, do not keep them across updates).
    idx = property(lambda self: self._cols["idx"][:self._count])
    kind = property(lambda self: self._cols["kind"][:self._count])
    conn = property(lambda self: self._cols["conn"][:self._count])
    t = property(lambda self: self._cols["t"][:self._count])
    seq = property(lambda self: self._cols["seq"][:self._count])
    src = property(lambda self: self._cols["src"][:self._count])

    def update(self, log) -> None:  # type: ignore[no-untyped-def]
        n = len(log)
        if log is not self.log:
            self.__init__(self.kinds)  # type: ignore[misc]
            self.log = log
        if n == self.n:
            self.first_new = self._count
            return
        times, seqs = log.column("t_ns"), log.column("seq")
        if self.n and self._last == (int(times[self.n - 1]), int(seqs[self.n - 1])):
            keep, start = self._count, self.n  # only appended
        else:
            keep = self._unchanged(times, seqs)
            start = int(self.idx[keep - 1]) + 1 if keep else 0
        self.first_new = keep  # entries from here on were (re)read
        new = log.indices(kinds=self.kinds, start=start)
        values = {"idx": new, "kind": log.column("kind")[new], "conn": log.column("conn")[new],
                  "t": times[new], "seq": seqs[new], "src": log.column("src")[new]}
        need = keep + len(new)
        for name, col in self._cols.items():
            if need > len(col):  # grow by doubling: appending stays cheap
                bigger = np.empty(max(need, 2 * len(col)), col.dtype)
                bigger[:keep] = col[:keep]
                self._cols[name] = col = bigger
            col[keep:need] = values[name]
        self._count = need
        self.n = n
        self._last = (int(times[n - 1]), int(seqs[n - 1]))

    def _unchanged(self, times: np.ndarray, seqs: np.ndarray) -> int:
        """How many cached entries still sit where they were (a prefix: merges shift the rest)."""
        lo, hi = 0, len(self.idx)
        while lo < hi:
            mid = (lo + hi) // 2
            i = int(self.idx[mid])
            if i < len(times) and times[i] == self.t[mid] and seqs[i] == self.seq[mid]:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def upto(self, cursor: int) -> int:
        """How many entries lie at or before the cursor."""
        return int(np.searchsorted(self.idx, cursor, side="right"))


class Decoded:
    """What the views need from decoded events, cached by (t_ns, seq): events never change."""

    def __init__(self) -> None:
        self.log = None
        self._cache: dict[tuple[int, int], object] = {}

    def get(self, log, index: int, t: int, seq: int, extract):  # type: ignore[no-untyped-def]
        if log is not self.log:
            self.log, self._cache = log, {}
        key = (t, seq)
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = extract(log[index].data)
        return value
