"""An append-only log of events from every source, merged by time.

Events arrive in batches from several producers (the engine, the clients,
the kernel observer, derived packets dated in the past), each batch in its
own order. The log keeps one order, by ``(t_ns, seq)``. A batch that starts
after the last event is appended; one that reaches back is merged into the
tail, and ``changed_from`` tells the timeline which snapshots to redo.

Storage is columnar, so a million events fit in about 100 MB: numpy columns
(time, seq, source, kind, connection, fd, thread) in log order, and each
event's ``data`` as compact JSON in an append-only buffer that the columns
point into. ``log[i]`` rebuilds the ``Event`` (about a microsecond) and keeps
the most recent ones decoded. The columns answer the views' questions
("every packet of this connection up to the cursor") without decoding.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Iterable, Sequence

import numpy as np
import orjson

from engine.events import Event

_CACHE = 1 << 16
_COMMON = ("seq", "t_ns", "src", "kind", "conn", "fd", "thread")  # decoded events kept (the newest batches, what the fold just read)


class _Column:
    """A numpy array that grows by doubling; ``view()`` is the filled part."""

    __slots__ = ("a", "n")

    def __init__(self, dtype: type) -> None:
        self.a = np.empty(1024, dtype)
        self.n = 0

    def put(self, start: int, values: object, count: int) -> None:
        """Write ``count`` values at ``start`` and cut the column there."""
        need = start + count
        if need > len(self.a):
            bigger = np.empty(max(need, 2 * len(self.a)), self.a.dtype)
            bigger[:start] = self.a[:start]
            self.a = bigger
        self.a[start:need] = values
        self.n = need

    def view(self) -> np.ndarray:
        return self.a[:self.n]


class _Names:
    """Strings (sources, kinds, connections) as small integer codes."""

    def __init__(self) -> None:
        self.names: list[str | None] = []
        self.codes: dict[str | None, int] = {}

    def code(self, name: str | None) -> int:
        c = self.codes.get(name)
        if c is None:
            c = self.codes[name] = len(self.names)
            self.names.append(name)
        return c

    def encode(self, names: list) -> list[int]:  # type: ignore[type-arg]
        codes = self.codes
        try:
            return [codes[n] for n in names]
        except KeyError:  # a new name: rarely
            return [self.code(n) for n in names]


_key = itemgetter(1, 0)  # (t_ns, seq): the log's order


class EventLog(Sequence[Event]):
    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._t = _Column(np.int64)
        self._seq = _Column(np.int64)
        self._src = _Column(np.int16)
        self._kind = _Column(np.int16)
        self._conn = _Column(np.int32)
        self._fd = _Column(np.int32)
        self._thread = _Column(np.int64)
        self._slot = _Column(np.int64)  # where the event's data lies in the payload
        self._payload = bytearray()
        self._offsets = _Column(np.int64)  # start of each slot's data; one more than slots
        self._offsets.put(0, 0, 1)
        self.sources, self.kinds, self.conns = _Names(), _Names(), _Names()
        self._threads: dict[int, int] = {}
        self._decoded: dict[int, Event] = {}  # slot -> event, oldest first
        self.changed_from: int | None = None  # lowest index rewritten by the last merge
        self.extend(events)

    def __len__(self) -> int:
        return self._t.n

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        n = self._t.n
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(n))]
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("event index out of range")
        slot = int(self._slot.a[index])
        e = self._decoded.get(slot)
        if e is None:
            e = self._decode(index, slot)
        return e

    def __iter__(self):  # type: ignore[no-untyped-def]
        for start in range(0, self._t.n, 4096):
            yield from self.events(start, start + 4096)

    def events(self, start: int, stop: int) -> list[Event]:
        """Events ``start`` to ``stop - 1`` (what folding reads, in one go)."""
        stop = min(stop, self._t.n)
        if start >= stop:
            return []
        get = self._decoded.get
        out = [get(slot) for slot in self._slot.a[start:stop].tolist()]
        if None in out:
            for k, e in enumerate(out):
                if e is None:
                    out[k] = self._decode(start + k, int(self._slot.a[start + k]))
        return out  # type: ignore[return-value]

    def _decode(self, index: int, slot: int) -> Event:
        off = self._offsets.a
        data = orjson.loads(self._payload[off[slot]:off[slot + 1]])
        if "t_ns" in data:  # a whole trace line: the common fields are in the columns
            for key in _COMMON:
                data.pop(key, None)
        ready = data.get("ready")
        if ready is not None:
            data["ready"] = [tuple(pair) for pair in ready]
        thread = int(self._thread.a[index])
        e = Event(int(self._seq.a[index]), int(self._t.a[index]),
                  self.sources.names[self._src.a[index]],  # type: ignore[arg-type]
                  self.kinds.names[self._kind.a[index]],  # type: ignore[arg-type]
                  self.conns.names[self._conn.a[index]], int(self._fd.a[index]),
                  self._threads.setdefault(thread, thread), data)
        self._remember(slot, e)
        return e

    def _remember(self, slot: int, e: Event) -> None:
        cache = self._decoded
        cache[slot] = e
        if len(cache) > _CACHE:
            for old in list(cache)[:_CACHE // 4]:  # drop the oldest quarter at once
                del cache[old]

    # ------------------------------------------------------------ input
    def extend(self, batch: Iterable[Event], lines: Sequence[bytes] | None = None) -> int:
        """Add a batch; returns the index from which the log changed.

        ``lines``, when given, are the batch's trace lines as read: kept as they
        are instead of serializing each event's data again.
        """
        if lines is None:
            new = sorted(batch, key=_key)
        else:
            new = list(batch)
            keys = [_key(e) for e in new]
            if any(a > b for a, b in zip(keys, keys[1:])):  # a file is mostly in order
                order = sorted(range(len(new)), key=keys.__getitem__)
                new = [new[i] for i in order]
                lines = [lines[i] for i in order]
        if not new:
            self.changed_from = None
            return len(self)
        n = len(self)
        # Store each new event's data once, in arrival order.
        first_slot = self._offsets.n - 1
        payload = self._payload
        ends = []
        if lines is None:
            dumps = orjson.dumps
            for e in new:
                payload += dumps(e[7])
                ends.append(len(payload))
        else:
            for line in lines:
                payload += line
                ends.append(len(payload))
        self._offsets.put(first_slot + 1, ends, len(new))
        slots = np.arange(first_slot, first_slot + len(new), dtype=np.int64)
        cache = self._decoded
        cache.update(zip(range(first_slot, first_slot + len(new)), new))
        if len(cache) > _CACHE:
            for old_slot in list(cache)[:len(cache) - _CACHE + _CACHE // 4]:
                del cache[old_slot]
        if n == 0 or _key(new[0]) >= (int(self._t.a[n - 1]), int(self._seq.a[n - 1])):
            start = n
            self._write(start, new, slots)
        else:
            # Merge into the tail: from the first logged event after the batch's first.
            times, seqs = self._t.view(), self._seq.view()
            t0, s0 = _key(new[0])
            start = int(np.searchsorted(times, t0, side="left"))
            while start < n and times[start] == t0 and seqs[start] < s0:
                start += 1
            old = [self[i] for i in range(start, n)]
            old_slots = self._slot.view()[start:].copy()
            merged = sorted(zip(old + new, list(old_slots) + list(slots)),
                            key=lambda pair: _key(pair[0]))
            self._write(start, [e for e, _ in merged],
                        np.fromiter((s for _, s in merged), np.int64, len(merged)))
        self.changed_from = start
        return start

    def _write(self, start: int, events: list[Event], slots: np.ndarray) -> None:
        count = len(events)
        seq, t, src, kind, conn, fd, thread, _ = zip(*events)
        self._t.put(start, t, count)
        self._seq.put(start, seq, count)
        self._src.put(start, self.sources.encode(src), count)  # type: ignore[arg-type]
        self._kind.put(start, self.kinds.encode(kind), count)  # type: ignore[arg-type]
        self._conn.put(start, self.conns.encode(conn), count)  # type: ignore[arg-type]
        self._fd.put(start, fd, count)
        self._thread.put(start, thread, count)
        self._slot.put(start, slots, count)

    # ------------------------------------------------------------ questions
    def index_at_time(self, t_ns: int) -> int:
        """Index of the last event at or before ``t_ns`` (-1 before the first)."""
        return int(np.searchsorted(self._t.view(), t_ns, side="right")) - 1

    @property
    def times(self) -> np.ndarray:
        """Every event's ``t_ns``, in log order (a view: read it, do not keep it)."""
        return self._t.view()

    def column(self, name: str) -> np.ndarray:
        """A column in log order: t_ns, seq, fd, thread, or the codes src, kind, conn."""
        col = {"t_ns": self._t, "seq": self._seq, "fd": self._fd, "thread": self._thread,
               "src": self._src, "kind": self._kind, "conn": self._conn}[name]
        return col.view()

    def indices(self, *, conn: str | None = None, kinds: Iterable[str] | None = None,
                src: str | None = None, fd: int | None = None, start: int = 0,
                stop: int | None = None) -> np.ndarray:
        """Log indices in ``[start, stop)`` of the events that match every criterion given."""
        stop = len(self) if stop is None else max(start, min(stop, len(self)))
        mask = np.ones(stop - start, bool)
        if conn is not None:
            code = self.conns.codes.get(conn)
            if code is None:
                return np.empty(0, np.int64)
            mask &= self._conn.a[start:stop] == code
        if kinds is not None:
            codes = [self.kinds.codes[k] for k in kinds if k in self.kinds.codes]
            mask &= np.isin(self._kind.a[start:stop], codes)
        if src is not None:
            code = self.sources.codes.get(src)
            if code is None:
                return np.empty(0, np.int64)
            mask &= self._src.a[start:stop] == code
        if fd is not None:
            mask &= self._fd.a[start:stop] == fd
        return np.flatnonzero(mask) + start

    def connection_ids(self) -> list[str]:
        """Every connection named so far, in order of first appearance."""
        return [c for c in self.conns.names if c is not None]

    @property
    def nbytes(self) -> int:
        """Memory held by the columns and the payload (not the decoded cache)."""
        cols = (self._t, self._seq, self._src, self._kind, self._conn, self._fd, self._thread,
                self._slot, self._offsets)
        return sum(c.a.nbytes for c in cols) + len(self._payload)
