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
from itertools import accumulate, islice
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import orjson

from .events import Event

_monotonic_ns = time.monotonic_ns

FORMAT = "sockscope-trace"
# 2: select, poll and selectors record wait/interest (selectors recorded epoll_wait and
# epoll_ctl in 1); the processes, gevent and asyncio modes' events (fork, process_exit,
# task_start/task_end, close's copy and last, pid, greenlet, task). Version 1 traces
# read as they are: every version-1 kind means what it meant.
# 3: a writer that closes in order ends the file with one end line (not an event):
# {"end": {"events": N, "lost": {source: count}, ...}}; versions 1 and 2 have none.
VERSION = 3
END_SINCE = 3  # the first version whose files end with an end line


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

    If a write fails (a full disk, an I/O error, a file size limit: any
    ``OSError``), writing stops for good and the server never notices: the
    file is cut back to its last whole line and ends with one ``dropped``
    line (count, ``reason`` such as ``ENOSPC``); every later event is only
    counted. ``failed`` is the error (None while all is well); ``written``
    and ``dropped`` count events. Standard output ("-") keeps counting what a
    closed pipe refuses and carries on.
    """

    def __init__(self, path: str | os.PathLike[str], *, header: dict[str, Any] | None = None,
                 flush_interval: float = 0.05, max_pending: int = 1_000_000,
                 batch: int = 1024, stream: IO[bytes] | None = None,
                 sink: str = "trace") -> None:
        self.path = Path(path)
        self.sink = sink  # what its own ``dropped`` lines name as the sink that lost events
        # "-" is standard output: the channel to a SockScope window is a live trace.
        # ``stream`` is another such stream (the kernel side's pipe to the engine).
        self._owns_file = str(path) != "-" and stream is None
        first = orjson.dumps(make_header(**(header or {}))) + b"\n"
        self.failed: OSError | None = None  # why writing stopped for good (a full disk...)
        if self._owns_file:
            # Unbuffered, written with os.write: what reached the file is known to the
            # byte, so a failed write can be cut back to the last whole line.
            self._file: IO[bytes] = open(self.path, "w+b", buffering=0)
            self._fd = self._file.fileno()
            done, exc = self._write_fd(first)
            if exc is not None:  # not even the header fits: refuse, before any server runs
                self._file.close()
                raise exc
        else:
            self._file = stream if stream is not None else sys.stdout.buffer
            self._file.write(first)
            self._file.flush()
        self._body = self._end = len(first)  # the file's events begin / its last whole line ends
        self._marker = b""  # the line after _end saying why writing stopped, and its count
        self._marker_count = -1
        self._why: dict[str, Any] = {}
        self._pending: list[Event] = []
        self._batch = batch
        self._chunks: deque[tuple[int, bytes]] = deque()  # (events, serialized)
        self._queued = 0  # events serialized and not yet written
        self._max_pending = max_pending
        self.written = 0
        self.dropped = 0
        # What other sinks lost before their events reached this trace, as their own
        # ``dropped`` events in it say: {sink: count} (the capture's kernel ring...).
        self.lost: dict[str, int] = {}
        self._dropped_reported = 0
        self._own_lines = 0  # our own ``dropped`` lines in the file (not counted in ``written``)
        # Only a trace of our own ends with an end line: the kernel side's stream is
        # copied into the engine's trace, which has its own.
        self._ends = stream is None
        self._last_seq = 0
        # Who else reads every event this writer serializes (the kernel side's process,
        # deriving the segments from them): called with each batch's bytes, and the
        # time before which every event it was given is in them.
        self.tap: Callable[[bytes, int], None] | None = None
        self._interval = flush_interval
        self._stop = threading.Event()
        self._take_lock = threading.Lock()  # taking a batch off the pending list
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sockscope-trace", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        if self.failed is not None:  # nothing reaches the file any more: count it, keep nothing
            with self._take_lock:
                self.dropped += 1
                self._last_seq = event[0]
            return
        pending = self._pending
        pending.append(event)
        if event[3] == "dropped":
            self._note_lost(event[7])
        if len(pending) >= self._batch:
            self._take_batch()

    def _note_lost(self, data: dict[str, Any]) -> None:
        sink = str(data.get("sink", "?"))
        if sink != self.sink:
            self.lost[sink] = self.lost.get(sink, 0) + int(data.get("count", 0) or 0)

    def raw(self, count: int, data: bytes) -> None:
        """``count`` events already serialized elsewhere, as whole lines (the kernel
        side's, from its own process): queued as they are, counted like the rest."""
        if b'"kind":"dropped"' in data:  # what they lost is said in the summary too
            for line in data.splitlines():
                if b'"kind":"dropped"' in line:
                    try:
                        self._note_lost(orjson.loads(line))
                    except (orjson.JSONDecodeError, TypeError, ValueError):
                        pass
        with self._take_lock:
            if self.failed is not None or self._queued + count > self._max_pending:
                self.dropped += count
                return
            self._queued += count
            self._chunks.append((count, data))

    def _take_batch(self) -> None:
        with self._take_lock:
            # Other threads may append meanwhile: take a prefix, never swap the list.
            tap = self.tap
            if tap is not None:
                # Every event appended before now is taken here (one stamped but not yet
                # appended, by a thread preempted in between, comes with the next batch).
                upto = _monotonic_ns()
            count = len(self._pending)
            if not count:
                if tap is not None:
                    tap(b"", upto)  # nothing new, but time went on
                return
            batch = self._pending[:count]
            del self._pending[:count]
            self._last_seq = batch[-1][0]
            if self.failed is not None or self._queued + count > self._max_pending:
                self.dropped += count  # the disk is this far behind (or gone): shed, and say so
                return
            data = serialize(batch)
            self._queued += count
            self._chunks.append((count, data))
            if tap is not None:
                tap(data, upto)

    def _drain(self) -> None:
        self._take_batch()  # a partial batch waits at most one flush interval
        with self._write_lock:
            if self._file.closed or self.failed is not None:
                return
            while self._chunks:
                count, data = self._chunks.popleft()
                with self._take_lock:
                    self._queued -= count
                if self._owns_file:
                    done, exc = self._write_fd(data)
                    if exc is not None:
                        # Keep the lines that reached the file whole; the rest is lost.
                        whole = data.rfind(b"\n", 0, done) + 1
                        lines = data.count(b"\n", 0, whole)
                        self._end += whole
                        self.written += lines
                        self._fail(exc, count - lines)
                        return
                    self._end += done
                    self.written += count
                    continue
                try:
                    written = self._write(data)
                except OSError as exc:  # standard output on a full disk...
                    self._fail(exc, count)
                    return
                if written:
                    self.written += count
                else:  # the reader went away (a closed pipe): count, carry on
                    with self._take_lock:
                        self.dropped += count
            if self.dropped != self._dropped_reported:
                count = self.dropped - self._dropped_reported
                line = serialize([self._dropped_event(count)])
                if self._owns_file:
                    done, exc = self._write_fd(line)
                    if exc is not None:
                        self._fail(exc, 0)
                        return
                    self._end += done
                    self._dropped_reported += count
                    self._own_lines += 1
                else:
                    self._dropped_reported += count
                    self._own_lines += 1
                    try:
                        self._write(line)
                    except OSError as exc:
                        self._fail(exc, 0)
                        return
            if not self._owns_file:
                try:
                    self._file.flush()
                except (BrokenPipeError, ValueError):
                    pass
                except OSError as exc:
                    self._fail(exc, 0)

    def _write(self, data: bytes) -> bool:
        """Standard output: False when its reader went away; other errors propagate."""
        try:
            self._file.write(data)
            return True
        except (BrokenPipeError, ValueError):
            return False

    def _write_fd(self, data: bytes) -> tuple[int, OSError | None]:
        """Write ``data`` at the file's offset: the bytes that reached it, and the error if any."""
        view = memoryview(data)
        done = 0
        while done < len(data):  # every pass writes at least one byte, or ends
            try:
                n = os.write(self._fd, view[done:])
            except OSError as exc:
                return done, exc
            if n <= 0:
                return done, OSError(28, os.strerror(28))  # ENOSPC: the file takes no more
            done += n
        return done, None

    def _dropped_event(self, count: int, **why: Any) -> Event:
        return Event(self._last_seq, time.monotonic_ns(), "engine", "dropped", None, -1, 0,
                     {"count": count, "sink": self.sink, **why})

    def _fail(self, exc: OSError, lost: int) -> None:
        """Writing failed (a full disk, an I/O error, a size limit): stop for good.

        Everything waiting is dropped and counted, and so is every later event,
        at once (nothing piles up). The file is cut back to its last whole line
        and, if there is room, one ``dropped`` line says how much was lost and why.
        Called with the write lock held."""
        import errno
        self.failed = exc  # from now on the emitting threads only count
        with self._take_lock:
            waiting = len(self._pending)
            del self._pending[:waiting]
            self._chunks.clear()
            self.dropped += lost + waiting + self._queued
            self._queued = 0
        reason = exc.strerror or str(exc)
        self._why = {"reason": errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                     "detail": reason}
        if self._owns_file:
            self._mark_failure()
        try:
            print(f"sockscope: trace {self.path}: {reason} after {self.written} events; "
                  f"recording stopped, the server serves on", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

    def _mark_failure(self) -> None:
        """Cut the file back to its last whole line, then append one ``dropped`` line
        counting what the file lacks (since the last such line) and why.

        Without room for it, the last few whole lines give way (they are counted
        as dropped too): a trace that says it is incomplete beats one more event.
        If even that fails, the file ends whole without it."""
        previous, previous_count = self._marker, self._marker_count
        self._marker, self._marker_count = b"", -1
        for _ in range(3):  # bounded: each pass frees what the last one lacked
            count = self.dropped - self._dropped_reported
            line = serialize([self._dropped_event(count, written=self.written, **self._why)])
            try:
                os.ftruncate(self._fd, self._end)
                os.lseek(self._fd, self._end, os.SEEK_SET)
            except OSError:
                return
            done, exc = self._write_fd(line)
            if exc is None:
                self._marker, self._marker_count = line, count
                return
            if not self._give_way(len(line) - done + 32):  # some slack: the count grows
                break
        try:  # the line that fitted before, back in the room it left
            os.ftruncate(self._fd, self._end)
            os.lseek(self._fd, self._end, os.SEEK_SET)
            if previous and self._write_fd(previous)[1] is None:
                self._marker, self._marker_count = previous, previous_count
            else:
                os.ftruncate(self._fd, self._end)
        except OSError:
            pass

    def _give_way(self, need: int) -> bool:
        """Give up the whole lines at the end of the file that hold ``need`` bytes."""
        low = max(self._body, self._end - need - 65536)
        try:
            os.lseek(self._fd, low, os.SEEK_SET)
            tail = b""
            for _ in range(64):  # bounded reads of at most 64 KiB more than needed
                piece = os.read(self._fd, self._end - low - len(tail))
                if not piece:
                    break
                tail += piece
        except OSError:
            return False
        if len(tail) != self._end - low:
            return False
        keep = tail.rfind(b"\n", 0, max(len(tail) - need, 0)) + 1
        if keep == 0 and low != self._body:
            return False  # lines longer than 64 KiB: give up the marker, not the trace
        events = 0
        for raw in tail[keep:].splitlines():
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return False
            if row.get("kind") == "dropped" and row.get("sink") == self.sink:  # ours
                self._dropped_reported -= int(row.get("count", 0))
            else:
                events += 1
        with self._take_lock:
            self.written -= events
            self.dropped += events
        self._end = low + keep
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        with self._write_lock:
            if self._file.closed:
                return
            if self.failed is not None:
                self._take_batch()  # events that slipped in as writing stopped: counted
                if self._owns_file and \
                        self.dropped - self._dropped_reported != self._marker_count:
                    self._mark_failure()  # the final count, in place of the first one
            elif self._ends:
                self._ends = False  # once, however often it is closed
                self._write_end()
            try:
                if self._owns_file:
                    self._file.close()
                else:
                    self._file.flush()
            except (BrokenPipeError, ValueError):
                pass
            except OSError as exc:  # a late write-back error: the server still ends well
                if self.failed is None:
                    self.failed = exc
                    try:
                        print(f"sockscope: trace {self.path}: {exc.strerror or exc}",
                              file=sys.stderr, flush=True)
                    except (OSError, ValueError):
                        pass

    def end_line(self) -> dict[str, Any]:
        """What the end line says: the event lines before it, and what every source
        lost (this writer's own drops under its sink's name)."""
        lost = dict(self.lost)
        if self.dropped:
            lost[self.sink] = lost.get(self.sink, 0) + self.dropped
        return {"events": self.written + self._own_lines, "lost": lost,
                "t_ns": time.monotonic_ns(), "closed": time.time()}

    def _write_end(self) -> None:
        """The file's last line, once every event is in: a reader then knows the
        recording ended in order, and what it lacks. Called with the write lock held."""
        line = orjson.dumps({"end": self.end_line()}) + b"\n"
        if not self._owns_file:
            try:
                self._write(line)
            except OSError:
                pass
            return
        done, exc = self._write_fd(line)
        if exc is None:
            self._end += done
            return
        try:  # no room: the file ends whole, on its last event
            os.ftruncate(self._fd, self._end)
        except OSError:
            pass
        try:
            print(f"sockscope: trace {self.path}: no room for its end line "
                  f"({exc.strerror or exc}); its events are whole", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

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


# The first four bytes of a capture file (what `sockscope import` reads), not a trace.
CAPTURE_MAGICS = {b"\x0a\x0d\x0d\x0a": "pcapng",
                  b"\xd4\xc3\xb2\xa1": "pcap", b"\xa1\xb2\xc3\xd4": "pcap",  # microseconds
                  b"\x4d\x3c\xb2\xa1": "pcap", b"\xa1\xb2\x3c\x4d": "pcap"}  # nanoseconds


def _capture_instead(path: str | os.PathLike[str], head: bytes) -> TraceError | None:
    """A capture given where a trace is expected: say so, and how to turn it into one."""
    fmt = CAPTURE_MAGICS.get(head[:4])
    if fmt is None:
        return None
    import shlex
    return TraceError(path, 0, f"this is a {fmt} capture, not a trace: turn it into one with "
                               f"`sockscope import {shlex.quote(str(path))} --trace OUT.jsonl`")


def _bad_line(path: str | os.PathLike[str], line_no: int, raw: bytes,
              exc: BaseException) -> TraceError:
    """The error for a line that is not a valid event (the reader's slow path)."""
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return TraceError(path, line_no, f"not a valid event: {exc}")
    if not isinstance(row, dict):
        return TraceError(path, line_no, "not a valid event: an event must be a JSON object")
    if isinstance(exc, KeyError):
        return TraceError(path, line_no, f"not a valid event: missing field {exc}")
    kind = row.get("kind")
    what = f"not a valid {kind!r} event" if isinstance(kind, str) else "not a valid event"
    error = TraceError(path, line_no, f"{what}: {exc}")
    error.field = getattr(exc, "field", None)  # type: ignore[attr-defined]
    return error


def iter_lines(path: str | os.PathLike[str], problems: list[str] | None = None
               ) -> Iterator[tuple[Event | dict[str, Any], bytes]]:
    """Like ``iter_trace``, with each event's line as read (``(header, b"")`` first)."""
    items = iter_batches(path, problems)
    yield next(items), b""  # type: ignore[misc]
    for events, lines in items:  # type: ignore[misc]
        yield from zip(events, lines)


def iter_batches(path: str | os.PathLike[str], problems: list[str] | None = None,
                 batch: int = 16384, offsets: bool = False) -> Iterator[Any]:
    """Yield the header dict, then ``(events, lines)``: lists of up to ``batch`` events
    and each one's line as read (with ``offsets``, ``(events, lines, starts)``: where
    each line starts in the file). Raises ``TraceError`` naming the line.

    Every event's fields are checked as it is read (``Event.from_dict``): a value
    of the wrong type or range is refused naming the line and the field. A pcap or
    pcapng capture is recognised and refused, pointing to ``sockscope import``. A
    last line that does not parse and has no newline is a write cut short by a
    crash: it is skipped, and ``problems`` says how many events came before it.
    """
    with open(path, "rb") as f:
        header, version, first = read_header(path, f)
        yield header
        line_no = 1  # lines read so far (the header is line 1)
        count = 0  # events so far
        position = first  # where the batch's first line starts
        loads, make = orjson.loads, Event.from_dict
        ended: dict[str, Any] | None = None  # the end line, once read
        last: Event | None = None
        while True:
            lines = list(islice(f, batch))
            if not lines:
                break
            read = len(lines)
            starts = None
            if offsets:
                starts = list(accumulate(map(len, lines), initial=position))
                position = starts.pop()
            try:  # the usual case: every line an event, no loop of ours per line
                if ended is not None:
                    raise ValueError("after the end line")
                events = [make(loads(raw)) for raw in lines]
            except (ValueError, KeyError, TypeError, AttributeError):
                events, kept, cut, ended = _line_by_line(path, lines, line_no, ended)
                lines = [lines[k] for k in kept]
                if starts is not None:
                    starts = [starts[k] for k in kept]
                if cut:  # the batch's last line is the file's, cut short
                    if problems is not None:
                        whole = count + len(events)
                        problems.append(f"recovered {whole} event{'' if whole == 1 else 's'}; "
                                        f"line {line_no + read} was cut short (a truncated "
                                        f"last line: the writer stopped mid-line), skipped")
                    if events:
                        yield (events, lines, starts) if offsets else (events, lines)
                    return
            line_no += read
            count += len(events)
            if events:
                last = events[-1]
                yield (events, lines, starts) if offsets else (events, lines)
        problem = end_problem(header, version, ended, count, stopped_writing(last))
        if problem is not None and problems is not None:
            problems.append(problem)


def read_header(path: str | os.PathLike[str], f: IO[bytes]) -> tuple[dict[str, Any], int, int]:
    """The header of the trace open as ``f`` (read from its start): ``(header, version,
    where the first event's line starts)``. Raises ``TraceError`` for a file that is
    not a trace this SockScope reads (a capture is named as one)."""
    wrong = _capture_instead(path, f.peek(4)[:4])  # type: ignore[attr-defined]
    if wrong is not None:
        raise wrong
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
    header.pop("end", None)  # what the end line says goes here, from the end line alone
    return header, version, len(first)


def end_problem(header: dict[str, Any], version: int, ended: dict[str, Any] | None,
                count: int, stopped: bool) -> str | None:
    """Once every event is read: put the end line's fields (``ended``) in the header, and
    say what the file's end tells of its events (``count`` read; ``stopped``: the last
    one is its writer's word on why it stopped), or None when it is whole."""
    if ended is not None:
        header["end"] = ended
        if ended["events"] != count:
            return (f"the trace's end line counts {ended['events']} events, but "
                    f"{count} were read: lines are missing or were added")
        return None
    if version >= END_SINCE and not stopped:
        return (f"the trace has no end line: the engine that wrote it did not "
                f"stop in order (it was killed or crashed, its disk filled up, "
                f"or it is still recording); the {count} event{'' if count == 1 else 's'} read "
                f"are whole")
    return None


def plain_events(path: str | os.PathLike[str], start: int, stop: int, last: bool
                 ) -> tuple[list[Event], list[bytes], dict[str, Any] | None] | None:
    """The events of bytes ``start`` to ``stop`` of a trace (both at a line's start;
    ``last``: the file's last part), every one checked as ``iter_batches`` checks it,
    with their lines and, in the last part, the end line's fields. None when the part
    holds anything else (a bad, blank or cut line, an end line before the last): the
    caller then reads the file in order with ``iter_batches``, which names the line."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(stop - start)
    if len(data) != stop - start:
        return None  # (the file shorter now)
    lines = data.splitlines(keepends=True) if b"\r" not in data else None
    if lines is None:  # (only a bad line holds a raw carriage return: JSON escapes it)
        return None
    ended = None
    if last and lines and lines[-1].startswith(b'{"end":'):
        try:
            ended = end_line_fields(orjson.loads(lines[-1]))
        except ValueError:
            return None
        lines.pop()
    loads, make = orjson.loads, Event.from_dict
    try:
        events = [make(loads(raw)) for raw in lines]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return events, lines, ended


def stopped_writing(last: Event | None) -> bool:
    """Whether the file ends with its writer's own word on why it stopped (a full disk:
    a ``dropped`` event with its reason), which stands in for the end line."""
    return last is not None and last.kind == "dropped" and "reason" in last.data


def end_line_fields(row: Any) -> dict[str, Any] | None:
    """The end line's fields, if ``row`` is a valid one; None if it is no end line.
    Raises ValueError for one whose fields are wrong."""
    if not isinstance(row, dict) or "end" not in row or "kind" in row:
        return None
    end = row["end"]
    if len(row) != 1 or not isinstance(end, dict):
        raise ValueError("not a valid end line: it must be {\"end\": {...}} alone")
    events, lost = end.get("events"), end.get("lost", {})
    if type(events) is not int or events < 0:
        raise ValueError(f"not a valid end line: events {events!r} (expected a count)")
    if not isinstance(lost, dict) or any(type(n) is not int or n < 0 for n in lost.values()):
        raise ValueError(f"not a valid end line: lost {lost!r} (expected counts by source)")
    return end


def _line_by_line(path: str | os.PathLike[str], lines: list[bytes], line_no: int,
                  ended: dict[str, Any] | None = None
                  ) -> tuple[list[Event], list[int], bool, dict[str, Any] | None]:
    """A batch that holds a line that is not an event, read again line by line: its
    events and the index of each one's line (blank lines skipped), whether the batch
    ends with the file's last line cut short, and the end line's fields if it was read
    (``ended``: read in an earlier batch). Any other bad line, and any line after the
    end line, raises ``TraceError`` naming it."""
    events, kept = [], []
    for k, raw in enumerate(lines):
        if ended is not None:
            if raw.strip():
                raise TraceError(path, line_no + 1 + k, "a line after the trace's end line "
                                                        "(two traces joined?)")
            continue
        try:
            event = Event.from_dict(orjson.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if not raw.strip():
                continue
            if isinstance(exc, orjson.JSONDecodeError):
                if not raw.endswith(b"\n"):
                    return events, kept, True, ended  # the last line (only it lacks a newline)
                raise _bad_line(path, line_no + 1 + k, raw, exc) from None
            try:
                ended = end_line_fields(orjson.loads(raw))
            except ValueError as bad:
                raise TraceError(path, line_no + 1 + k, str(bad)) from None
            if ended is None:
                raise _bad_line(path, line_no + 1 + k, raw, exc) from None
            continue
        events.append(event)
        kept.append(k)
    return events, kept, False, ended


def read_trace(path: str | os.PathLike[str]) -> Trace:
    problems: list[str] = []
    items = iter_batches(path, problems)
    header = next(items)
    events: list[Event] = []
    for batch, _ in items:
        events += batch
    return Trace(header, events, problems)
