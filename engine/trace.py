"""Trace files: JSON Lines, one header line, then one event per line.

The writer is a probe sink that never blocks the emitting thread: events are
appended to a bounded buffer that a background thread serializes and flushes
every ``flush_interval`` seconds, so a crash loses at most that much and
leaves, at worst, one truncated last line, which the reader reports and skips.
"""
from __future__ import annotations

import os
import platform
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

import orjson

from .events import Event

FORMAT = "sockscope-trace"
VERSION = 1


class TraceError(ValueError):
    """A trace that cannot be read. ``line`` is 1-based (0 when not about one line)."""

    def __init__(self, path: str | os.PathLike[str], line: int, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line else self.path
        super().__init__(f"{where}: {problem}")


def make_header(**extra: Any) -> dict[str, Any]:
    header = {"format": FORMAT, "version": VERSION, "created": time.time(),
              "clock": "monotonic_ns", "host": platform.node(), "system": platform.system(),
              "pid": os.getpid()}
    header.update(extra)
    return header


def serialize(batch: list[Event]) -> bytes:
    """Events as JSON Lines (one object per line, kind fields beside the common ones)."""
    # Appending each line at once lets the allocator reuse one buffer: keeping
    # a thousand small results alive for a join costs twice the serializing.
    out = bytearray()
    extend = out.extend
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    for e in batch:
        extend(dumps({"seq": e[0], "t_ns": e[1], "src": e[2], "kind": e[3], "conn": e[4],
                      "fd": e[5], "thread": e[6], **e[7]}, option=newline))
    return bytes(out)


class TraceWriter:
    """Sink that writes a trace file as events happen.

    The emitting thread appends each event to a list and, every ``batch``
    events, turns the batch into bytes itself. A background thread only
    writes those bytes and flushes every ``flush_interval`` seconds (it also
    serializes a partial batch left waiting that long). Keeping the CPU work
    in the emitting thread matters: a second CPU-bound thread would hold the
    GIL for a whole switch interval every time the server released it for a
    syscall. If the disk falls behind by ``max_pending`` events, batches are
    dropped and counted, and a ``dropped`` event says so in the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, header: dict[str, Any] | None = None,
                 flush_interval: float = 0.05, max_pending: int = 1_000_000,
                 batch: int = 1024) -> None:
        self.path = Path(path)
        # "-" is standard output: the channel to a SockScope window is a live trace.
        self._owns_file = str(path) != "-"
        self._file: IO[bytes] = open(self.path, "wb") if self._owns_file else sys.stdout.buffer
        self._file.write(orjson.dumps(make_header(**(header or {}))) + b"\n")
        self._file.flush()
        self._pending: list[Event] = []
        self._batch = batch
        self._chunks: deque[tuple[int, bytes]] = deque()  # (events, serialized)
        self._queued = 0  # events serialized and not yet written
        self._max_pending = max_pending
        self.written = 0
        self.dropped = 0
        self._dropped_reported = 0
        self._last_seq = 0
        self._interval = flush_interval
        self._stop = threading.Event()
        self._take_lock = threading.Lock()  # taking a batch off the pending list
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sockscope-trace", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        pending = self._pending
        pending.append(event)
        if len(pending) >= self._batch:
            self._take_batch()

    def _take_batch(self) -> None:
        with self._take_lock:
            # Other threads may append meanwhile: take a prefix, never swap the list.
            count = len(self._pending)
            if not count:
                return
            batch = self._pending[:count]
            del self._pending[:count]
            self._last_seq = batch[-1][0]
            if self._queued + count > self._max_pending:
                self.dropped += count  # the disk is this far behind: shed, and say so
                return
            self._queued += count
            self._chunks.append((count, serialize(batch)))

    def _drain(self) -> None:
        self._take_batch()  # a partial batch waits at most one flush interval
        with self._write_lock:
            if self._file.closed:
                return
            while self._chunks:
                count, data = self._chunks.popleft()
                self._queued -= count
                if self._write(data):
                    self.written += count
                else:  # the reader went away (a closed pipe): count, carry on
                    self.dropped += count
            if self.dropped != self._dropped_reported:
                count = self.dropped - self._dropped_reported
                self._dropped_reported = self.dropped
                marker = Event(self._last_seq, time.monotonic_ns(), "engine", "dropped",
                               None, -1, 0, {"count": count, "sink": "trace"})
                self._write(serialize([marker]))
            try:
                self._file.flush()
            except (BrokenPipeError, ValueError):
                pass

    def _write(self, data: bytes) -> bool:
        try:
            self._file.write(data)
            return True
        except (BrokenPipeError, ValueError):
            return False

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        with self._write_lock:
            if self._owns_file:
                self._file.close()
            else:
                self._file.flush()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Trace:
    header: dict[str, Any]
    events: list[Event]
    problems: list[str] = field(default_factory=list)


def iter_trace(path: str | os.PathLike[str], problems: list[str] | None = None
               ) -> Iterator[Event | dict[str, Any]]:
    """Yield the header dict, then each event. Raises ``TraceError`` naming the line.

    A last line that does not parse and has no newline is a write cut short by a
    crash: it is reported in ``problems`` and skipped.
    """
    items = iter_lines(path, problems)
    yield next(items)[0]  # type: ignore[misc]
    for event, _ in items:
        yield event


def iter_lines(path: str | os.PathLike[str], problems: list[str] | None = None
               ) -> Iterator[tuple[Event | dict[str, Any], bytes]]:
    """Like ``iter_trace``, with each event's line as read (``(header, b"")`` first)."""
    with open(path, "rb") as f:
        first = f.readline()
        if not first.strip():
            raise TraceError(path, 1, "empty file: not a SockScope trace")
        try:
            header = orjson.loads(first)
        except orjson.JSONDecodeError as exc:
            raise TraceError(path, 1, f"header is not JSON ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise TraceError(path, 1, f"not a SockScope trace (expected format {FORMAT!r})")
        version = header.get("version")
        if not isinstance(version, int) or version > VERSION or version < 1:
            raise TraceError(path, 1, f"trace version {version} is not supported: this SockScope "
                                      f"reads versions 1 to {VERSION}; a newer SockScope wrote it")
        yield header, b""
        line_no = 1
        loads, make = orjson.loads, Event.from_dict
        for raw in f:
            line_no += 1
            try:
                event = make(loads(raw))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n") and f.read(1) == b"":
                    if problems is not None:
                        problems.append(f"line {line_no}: truncated last line skipped "
                                        f"(the writer stopped mid-line)")
                    return
                if isinstance(exc, AttributeError):  # not an object: no .pop
                    detail = "an event must be a JSON object"
                elif isinstance(exc, KeyError):
                    detail = f"missing field {exc}"
                else:
                    detail = str(exc)
                raise TraceError(path, line_no, f"not a valid event: {detail}") from None
            yield event, raw


def read_trace(path: str | os.PathLike[str]) -> Trace:
    problems: list[str] = []
    items = iter_trace(path, problems)
    header = next(items)
    assert isinstance(header, dict)
    events = [e for e in items if isinstance(e, Event)]
    return Trace(header, events, problems)
