"""An append-only log of events from every source, merged by time.

Events arrive in batches from several producers (the engine, the clients,
the kernel observer, derived packets dated in the past), each batch in its
own order. The log keeps one order, by ``(t_ns, seq)``. A batch that starts
after the last event is appended; one that reaches back is merged into the
tail, and ``changed_from`` tells the timeline which snapshots to redo.

Storage is columnar: numpy columns (time, seq, source, kind, connection, fd,
thread) in log order, about 60 bytes an event, and each event's ``data`` as
compact JSON that the columns point into. ``log[i]`` rebuilds the ``Event``
(about a microsecond) and keeps the most recent ones decoded. The columns
answer the views' questions ("every packet of this connection up to the
cursor") without decoding.

Where the JSON lies (``_Store``): in memory (small logs, tests); for an opened
trace, in the trace file itself, read back where each line lies (the file is
never copied into memory); for a live session, in a spill file that the log
writes as events arrive (unnamed, gone when the log is). The JSON is most of
an event's size (about 240 of 300 bytes), so a long session or a big trace
holds the columns in memory, not the text.
"""
from __future__ import annotations

import os
import tempfile
import threading
from operator import itemgetter
from typing import Iterable, Sequence

import numpy as np
import orjson

from engine.events import Event

_CACHE = 1 << 16  # decoded events kept (the newest batches, what the fold just read)
_new_tuple = tuple.__new__  # (skips NamedTuple's Python-level __new__: per event)


class _Column:
    """A numpy array that grows by doubling; ``view()`` is the filled part.

    With ``spill`` (a folder, or "" for the temporary folder) the array is a map of
    an unnamed file there, its space reserved before it is used (``posix_fallocate``:
    a full disk is a clean error, never a SIGBUS when a page is first written); the
    pages are the system's to write out and drop, so a long session's columns do not
    stay in this process's own memory. If the disk refuses, the column goes on in
    memory and ``failed`` says why."""

    __slots__ = ("a", "n", "_file", "failed")

    def __init__(self, dtype: type, spill: str | None = None) -> None:
        self.n = 0
        self.failed: OSError | None = None
        self._file = None
        if spill is not None and _HAS_FALLOCATE:
            try:
                self._file = tempfile.TemporaryFile(prefix="sockscope-column-",
                                                    dir=spill or None)
            except OSError as exc:
                self.failed = exc
        self.a = self._grown(np.dtype(dtype), 1024)

    def _grown(self, dtype: np.dtype, size: int) -> np.ndarray:
        if self._file is not None:
            try:
                os.posix_fallocate(self._file.fileno(), 0, size * dtype.itemsize)
                return np.memmap(self._file, dtype, "r+", shape=(size,))
            except (OSError, ValueError) as exc:  # the disk is full (or the map refused)
                self.failed = exc if isinstance(exc, OSError) else OSError(str(exc))
                self._file.close()
                self._file = None
        bigger = np.empty(size, dtype)
        if self.n:
            bigger[:self.n] = self.a[:self.n]
        return bigger

    def put(self, start: int, values: object, count: int) -> None:
        """Write ``count`` values at ``start`` and cut the column there."""
        need = start + count
        if need > len(self.a):
            self.n = start  # what the bigger array keeps
            self.a = self._grown(self.a.dtype, max(need, 2 * len(self.a)))
        self.a[start:need] = values
        self.n = need

    def close(self) -> None:
        if self._file is not None:
            self.a = np.empty(0, self.a.dtype)
            self.n = 0
            self._file.close()
            self._file = None

    def view(self) -> np.ndarray:
        return self.a[:self.n]


class DataChanged(OSError):
    """An opened trace's file no longer holds the line an event was read from (it
    was rewritten while open): refused, never shown as some other event's data."""


def _pread(fd: int, length: int, position: int, lock: threading.Lock) -> bytes:
    """``length`` bytes of the file open as ``fd`` at ``position``; where ``os.pread`` is
    missing (Windows) a seek and reads on the descriptor itself (no buffer to go stale),
    under ``lock``, which writers to the same descriptor hold too."""
    if _HAS_PREAD:
        return os.pread(fd, length, position)
    with lock:
        os.lseek(fd, position, os.SEEK_SET)
        parts = []
        while length > 0:
            part = os.read(fd, length)
            if not part:
                break
            parts.append(part)
            length -= len(part)
        return b"".join(parts)


_HAS_PREAD = hasattr(os, "pread")
_HAS_FALLOCATE = hasattr(os, "posix_fallocate")  # (not macOS nor Windows: columns in memory)


class _MemoryStore:
    """Every event's JSON in one buffer."""

    where = "memory"

    def __init__(self) -> None:
        self._buf = bytearray()

    def append(self, chunk: bytes) -> int:
        """Add ``chunk``; returns where it starts."""
        start = len(self._buf)
        self._buf += chunk
        return start

    def read(self, position: int, length: int) -> bytes:
        return bytes(self._buf[position:position + length])

    @property
    def in_memory(self) -> int:
        return len(self._buf)

    def close(self) -> None:
        pass


class _SpillStore:
    """Every event's JSON appended to an unnamed file in ``folder`` (deleted by the
    system when closed, or when the process ends however it ends). If the disk
    refuses a write (full, gone), that chunk and every later one stay in memory
    and ``failed`` says why: events are never lost to a disk."""

    where = "spill"

    def __init__(self, folder: str | None) -> None:
        self._file = tempfile.TemporaryFile(prefix="sockscope-session-", dir=folder)
        self._end = 0  # bytes on disk
        self._tail = bytearray()  # bytes after _end, once the disk failed
        self._lock = threading.Lock()
        self.failed: OSError | None = None

    def append(self, chunk: bytes) -> int:
        start = self._end + len(self._tail)
        if self.failed is None:
            try:
                view, fd = memoryview(chunk), self._file.fileno()
                with self._lock:  # (where reads move the descriptor: see _pread)
                    os.lseek(fd, self._end, os.SEEK_SET)
                    while view:
                        view = view[os.write(fd, view):]
                self._end += len(chunk)
                return start
            except OSError as exc:
                self.failed = exc
                # (whatever part reached the file lies past _end: never read)
        self._tail += chunk
        return start

    def read(self, position: int, length: int) -> bytes:
        if position >= self._end:
            k = position - self._end
            return bytes(self._tail[k:k + length])
        return _pread(self._file.fileno(), length, position, self._lock)

    @property
    def in_memory(self) -> int:
        return len(self._tail)

    def close(self) -> None:
        self._file.close()


class _FileStore:
    """An opened trace's lines, read where they lie in its file. The file stays
    open: renamed or replaced, it is still the one read; a line no longer there
    (the file rewritten in place) raises ``DataChanged``."""

    where = "file"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file = open(self.path, "rb")
        self._lock = threading.Lock()

    def append(self, chunk: bytes) -> int:
        raise TypeError("an opened trace's events come with their place in the file")

    def read(self, position: int, length: int) -> bytes:
        return _pread(self._file.fileno(), length, position, self._lock)

    @property
    def in_memory(self) -> int:
        return 0

    def close(self) -> None:
        self._file.close()


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
    def __init__(self, events: Iterable[Event] = (), *, spill: bool | str = False,
                 backing: str | os.PathLike[str] | None = None) -> None:
        """``spill``: keep the events' JSON, and the columns, in unnamed files (in this
        folder when a string, else the system's temporary folder) instead of memory.
        ``backing``: the trace file the events are read from (``extend`` gets each
        line's place)."""
        folder = (spill if isinstance(spill, str) else "") if spill else None
        if backing is not None:
            self._store: _MemoryStore | _SpillStore | _FileStore = _FileStore(backing)
        elif folder is not None:
            self._store = _SpillStore(folder or None)
        else:
            self._store = _MemoryStore()
        self._t = _Column(np.int64, folder)
        self._seq = _Column(np.int64, folder)
        self._src = _Column(np.int16, folder)
        self._kind = _Column(np.int16, folder)
        self._conn = _Column(np.int32, folder)
        self._fd = _Column(np.int32, folder)
        self._thread = _Column(np.int64, folder)
        self._slot = _Column(np.int64, folder)  # the event's slot: its data's place in the store
        self._at = _Column(np.int64, folder)  # per slot (arrival order): where its JSON starts
        self._len = _Column(np.int32, folder)  # and how long it is
        self.sources, self.kinds, self.conns = _Names(), _Names(), _Names()
        self._threads: dict[int, int] = {}
        self._decoded: dict[int, Event] = {}  # slot -> event, oldest first
        self.changed_from: int | None = None  # lowest index rewritten by the last merge
        self._older: frozenset[str] = frozenset()  # older_sockets(), for a log this long
        self._older_for = -1
        self._gaps: list[tuple[int, int, int, int]] = []  # capture_gaps(), with their indices
        self._gaps_for = -1
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
        slots = self._slot.a[start:stop].tolist()
        out = [get(slot) for slot in slots]
        if None in out:
            missing = [k for k, e in enumerate(out) if e is None]
            for k, e in zip(missing, self._decode_at(start, stop, slots, missing)):
                out[k] = e
        return out  # type: ignore[return-value]

    def _lines(self, slots: list[int]) -> list[bytes] | list[None]:
        """The JSON of these slots, read in one go where they lie close together (a
        trace's lines folded in order: one read, not one per event), else None each
        (read one by one)."""
        if len(slots) < 8:
            return [None] * len(slots)
        at = self._at.a[slots]
        ends = at + self._len.a[slots]
        lo, hi = int(at.min()), int(ends.max())
        if hi - lo > max(1 << 16, 2 * int(ends.sum() - at.sum())) or hi - lo > 1 << 24:
            return [None] * len(slots)
        raw = self._store.read(lo, hi - lo)
        if len(raw) != hi - lo:  # (a spill file's failed tail: read one by one)
            return [None] * len(slots)
        return [raw[a:e] for a, e in zip((at - lo).tolist(), (ends - lo).tolist())]

    def line(self, index: int) -> bytes:
        """Event ``index``'s JSON as it lies in the store (an opened trace's: its line)."""
        slot = int(self._slot.a[index])
        return self._store.read(int(self._at.a[slot]), int(self._len.a[slot]))

    def _decode(self, index: int, slot: int) -> Event:
        return self._decode_at(index, index + 1, [slot], [0])[0]

    def _changed(self, index: int, seq: int) -> DataChanged:
        return DataChanged(f"{getattr(self._store, 'path', 'the log')} changed on disk since "
                           f"it was opened: event {index} (seq {seq}) is no longer where it "
                           f"was read; open it again")

    def _decode_at(self, start: int, stop: int, slots: list[int], missing: list[int]
                   ) -> list[Event]:
        """The events at ``start + k`` for each ``k`` in ``missing`` (``slots``: the range's),
        rebuilt from their JSON and the columns (read as lists once, not a numpy scalar
        per field), and kept decoded."""
        lines = self._lines([slots[k] for k in missing])
        t, seq = self._t.a[start:stop].tolist(), self._seq.a[start:stop].tolist()
        src, kind = self._src.a[start:stop].tolist(), self._kind.a[start:stop].tolist()
        conn, fd = self._conn.a[start:stop].tolist(), self._fd.a[start:stop].tolist()
        thread = self._thread.a[start:stop].tolist()
        sources, kinds, conns = self.sources.names, self.kinds.names, self.conns.names
        threads, cache, loads, read = self._threads, self._decoded, orjson.loads, self._store.read
        out = []
        for k, raw in zip(missing, lines):
            slot = slots[k]
            if raw is None:
                raw = read(int(self._at.a[slot]), int(self._len.a[slot]))
            try:
                data = loads(raw)
            except orjson.JSONDecodeError:
                data = None
            if type(data) is not dict:
                raise self._changed(start + k, seq[k])
            if "t_ns" in data:  # a whole trace line: the common fields are in the columns
                pop = data.pop
                if pop("t_ns") != t[k] or pop("seq", None) != seq[k]:
                    raise self._changed(start + k, seq[k])
                pop("src", None), pop("kind", None), pop("conn", None), pop("fd", None)
                pop("thread", None)
            ready = data.get("ready")
            if ready is not None:
                data["ready"] = [tuple(pair) for pair in ready]
            e = _new_tuple(Event, (seq[k], t[k], sources[src[k]], kinds[kind[k]],
                                   conns[conn[k]], fd[k], threads.setdefault(thread[k], thread[k]),
                                   data))
            cache[slot] = e
            out.append(e)
        self._trim_cache()
        return out

    def _trim_cache(self) -> None:
        """Past ``_CACHE`` decoded events, the oldest go, a quarter more at once (not one
        per event added)."""
        cache = self._decoded
        if len(cache) > _CACHE:
            for old in list(cache)[:len(cache) - _CACHE + _CACHE // 4]:
                del cache[old]

    # ------------------------------------------------------------ input
    def extend(self, batch: Iterable[Event], lines: Sequence[bytes] | None = None,
               offsets: Sequence[int] | None = None) -> int:
        """Add a batch; returns the index from which the log changed.

        ``lines``, when given, are the batch's trace lines as read: kept as they
        are instead of serializing each event's data again. ``offsets`` (a log
        backed by its trace file): where each line starts in that file.
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
                if offsets is not None:
                    offsets = [offsets[i] for i in order]
        if not new:
            self.changed_from = None
            return len(self)
        n = len(self)
        # Store each new event's data once, in arrival order.
        first_slot = self._at.n
        if lines is None:
            dumps = orjson.dumps
            lines = [dumps(e[7]) for e in new]
        lengths = np.fromiter(map(len, lines), np.int64, len(new))
        if offsets is None:
            starts = np.empty(len(new), np.int64)
            starts[0] = self._store.append(b"".join(lines))
            np.cumsum(lengths[:-1], out=starts[1:])
            starts[1:] += starts[0]
        else:
            starts = np.asarray(offsets, np.int64)
        self._at.put(first_slot, starts, len(new))
        self._len.put(first_slot, lengths, len(new))
        slots = np.arange(first_slot, first_slot + len(new), dtype=np.int64)
        self._decoded.update(zip(range(first_slot, first_slot + len(new)), new))
        self._trim_cache()
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

    def extend_columns(self, part: dict) -> int:  # type: ignore[type-arg]
        """Add a part of an opened trace, read elsewhere (``reader``): its columns in file
        order (``t``, ``seq``, ``fd``, ``thread``, ``at``, ``len``, and ``src``, ``kind``,
        ``conn`` as codes into ``src_names``...), no event. Ordered and merged into the
        tail as ``extend`` does; returns the index from which the log changed."""
        count = len(part["t"])
        if not count:
            self.changed_from = None
            return len(self)
        t, seq = part["t"], part["seq"]
        cols = {"t": t, "seq": seq, "fd": part["fd"], "thread": part["thread"]}
        for name, names in (("src", self.sources), ("kind", self.kinds), ("conn", self.conns)):
            cols[name] = np.array([names.code(n) for n in part[name + "_names"]],
                                  np.int32)[part[name]]
        first_slot = self._at.n
        self._at.put(first_slot, part["at"], count)
        self._len.put(first_slot, part["len"], count)
        cols["slot"] = np.arange(first_slot, first_slot + count, dtype=np.int64)
        if ((t[1:] < t[:-1]) | ((t[1:] == t[:-1]) & (seq[1:] < seq[:-1]))).any():
            order = np.lexsort((seq, t))  # (stable: equal keys keep the file's order)
            cols = {name: values[order] for name, values in cols.items()}
        n = len(self)
        start = n
        if n and (int(cols["t"][0]), int(cols["seq"][0])) < (int(self._t.a[n - 1]),
                                                             int(self._seq.a[n - 1])):
            # Merge into the tail: from the first logged event after the part's first.
            times, seqs = self._t.view(), self._seq.view()
            t0, s0 = int(cols["t"][0]), int(cols["seq"][0])
            start = int(np.searchsorted(times, t0, side="left"))
            while start < n and times[start] == t0 and seqs[start] < s0:
                start += 1
            old = {name: column.view()[start:] for name, column in self._named_columns()}
            cols = {name: np.concatenate([old[name], values]) for name, values in cols.items()}
            order = np.lexsort((cols["seq"], cols["t"]))  # (old before new on equal keys)
            cols = {name: values[order] for name, values in cols.items()}
        for name, column in self._named_columns():
            column.put(start, cols[name], len(cols[name]))
        self.changed_from = start
        return start

    def _named_columns(self) -> tuple[tuple[str, _Column], ...]:
        return (("t", self._t), ("seq", self._seq), ("src", self._src), ("kind", self._kind),
                ("conn", self._conn), ("fd", self._fd), ("thread", self._thread),
                ("slot", self._slot))

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
    def capture_gaps(self, stop: int | None = None) -> list[tuple[int, int, int]]:
        """Where the capture lost frames, by the events in ``[0, stop)``: its ``dropped``
        events that say when (``from_ns``, the last frame before, to ``until_ns``, the
        first after), as (from_ns, until_ns, frames), oldest first. Other sinks' losses
        have no span: not here."""
        if "dropped" not in self.kinds.codes:  # the usual case: no scan of the log
            return []
        if self._gaps_for != len(self):  # read once for a log this long (views ask per frame)
            gaps = []
            for i in self.indices(kinds=["dropped"]).tolist():
                d = self[i].data
                lo, hi = d.get("from_ns"), d.get("until_ns")
                if d.get("sink") == "capture" and type(lo) is int:
                    hi = hi if type(hi) is int and hi >= lo else lo
                    gaps.append((i, lo, hi, int(d.get("count") or 0)))
            self._gaps, self._gaps_for = gaps, len(self)
        end = len(self) if stop is None else stop
        return [(lo, hi, n) for i, lo, hi, n in self._gaps if i < end]

    def older_sockets(self) -> frozenset[str]:
        """Connections that are sockets older than the recording: the kernel observer
        found them on the port at its start (an earlier server's TIME_WAIT; its state
        says no previous one), and nothing of the recording opened them (no ``connect``,
        ``accept``, SYN or request of theirs)."""
        if self._older_for == len(self):
            return self._older
        older: set[str] = set()
        if "tcp_state" in self.kinds.codes:
            for i in self.indices(kinds=["tcp_state"]).tolist():
                e = self[i]
                if e.conn is not None and e.conn not in older and "previous" in e.data \
                        and e.data["previous"] is None and e.data.get("source") == "observed":
                    older.add(e.conn)
            for conn in list(older):  # (few: one look each at its own events)
                if len(self.indices(conn=conn, kinds=["connect", "accept", "request"])) or any(
                        "SYN" in str(self[i].data.get("flags"))
                        for i in self.indices(conn=conn, kinds=["packet"]).tolist()):
                    older.discard(conn)
        self._older, self._older_for = frozenset(older), len(self)
        return self._older

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

    def _columns(self) -> tuple[_Column, ...]:
        return (self._t, self._seq, self._src, self._kind, self._conn, self._fd, self._thread,
                self._slot, self._at, self._len)

    @property
    def nbytes(self) -> int:
        """Memory held by the columns and the data kept in memory (not the decoded cache):
        spilled columns are the system's file pages, not counted."""
        return sum(c.a.nbytes for c in self._columns() if c._file is None) + \
            self._store.in_memory

    @property
    def data_where(self) -> str:
        """Where the events' JSON lies: "memory", "spill" (a file of the session's) or
        "file" (the opened trace)."""
        return self._store.where

    @property
    def spill_failed(self) -> OSError | None:
        """Why a spill file stopped taking data (kept in memory since), or None."""
        failed = getattr(self._store, "failed", None)
        if failed is None and self._store.where == "spill":
            failed = next((c.failed for c in self._columns() if c.failed is not None), None)
        return failed

    def close(self) -> None:
        """Close the files the data lies in (spill files are deleted)."""
        self._store.close()
        for column in self._columns():
            column.close()
