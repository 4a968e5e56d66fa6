"""Trace files: JSON Lines, one header line, then one event per line.

The writer is a probe sink that never blocks the emitting thread: events are
appended to a bounded buffer that a background thread serializes and flushes
every ``flush_interval`` seconds, so a crash loses at most that much and
leaves, at worst, one truncated last line, which the reader reports and skips.
"""
from __future__ import annotations

import os
import platform
import threading
import time
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


class TraceWriter:
    """Sink that writes a trace file as events happen."""

    def __init__(self, path: str | os.PathLike[str], *, header: dict[str, Any] | None = None,
                 flush_interval: float = 0.05, max_pending: int = 1_000_000) -> None:
        self.path = Path(path)
        self._file: IO[bytes] = open(self.path, "wb")
        self._file.write(orjson.dumps(make_header(**(header or {}))) + b"\n")
        self._file.flush()
        self._pending: list[Event] = []
        self._max_pending = max_pending
        self.written = 0
        self.dropped = 0
        self._dropped_reported = 0
        self._interval = flush_interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sockscope-trace", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
        else:
            self._pending.append(event)

    def _drain(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            # Emitters append concurrently: take a prefix, never swap the list.
            count = len(self._pending)
            batch = self._pending[:count]
            del self._pending[:count]
            if batch:
                dumps = orjson.dumps
                self._file.write(b"".join(dumps(e.to_dict()) + b"\n" for e in batch))
                self.written += len(batch)
            if self.dropped != self._dropped_reported:
                count = self.dropped - self._dropped_reported
                self._dropped_reported = self.dropped
                last = batch[-1] if batch else None
                marker = Event(last.seq if last else 0, time.monotonic_ns(), "engine", "dropped",
                               None, -1, 0, {"count": count, "sink": "trace"})
                self._file.write(orjson.dumps(marker.to_dict()) + b"\n")
            self._file.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        with self._lock:
            self._file.close()

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
        yield header
        line_no = 1
        for raw in f:
            line_no += 1
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
                if not isinstance(row, dict):
                    raise ValueError("an event must be a JSON object")
                event = Event.from_dict(row)
            except (ValueError, KeyError, TypeError) as exc:
                if not raw.endswith(b"\n") and f.read(1) == b"":
                    if problems is not None:
                        problems.append(f"line {line_no}: truncated last line skipped "
                                        f"(the writer stopped mid-line)")
                    return
                detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise TraceError(path, line_no, f"not a valid event: {detail}") from None
            yield event


def read_trace(path: str | os.PathLike[str]) -> Trace:
    problems: list[str] = []
    items = iter_trace(path, problems)
    header = next(items)
    assert isinstance(header, dict)
    events = [e for e in items if isinstance(e, Event)]
    return Trace(header, events, problems)
