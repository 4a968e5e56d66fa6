"""Reading a big trace on every core.

Opening a trace reads every line once, checks its fields (``Event.from_dict``, as
``engine.trace.iter_batches`` does) and builds the log's columns: about 3 µs a line
in one process, most of it parsing. A file of more than ``PARALLEL_FROM`` bytes is
cut into parts at line starts, each part read in a worker process (a new
interpreter, not a fork of the window), which sends back its part's columns,
never its events; the log takes them in file order, and the events are read again
from the file, a range at a time, only where the cursor folds them.

A part that holds anything but whole events (a bad line, a blank one, a line cut
short, an end line before the file's end) makes its worker say so, and the file
is read again in order, in this process, by the reader that names the line: the
same error, or the same recovery, as a small file gets.
"""
from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import orjson

from engine.trace import end_problem, plain_events, read_header, stopped_writing

from .log import EventLog

PARALLEL_FROM = 16 << 20  # bytes of events: below, one process (a worker costs ~0.2 s to start)
PART = 8 << 20  # bytes a worker reads at a time
MAX_WORKERS = 8
SPILL_FROM = 512 << 20  # bytes of file: a longer trace's columns lie in unnamed files


def _part_columns(args: tuple[str, int, int, bool]) -> dict[str, Any] | None:
    """A worker's task: the columns of one part of the file (None: read it in order)."""
    path, start, stop, last = args
    got = plain_events(path, start, stop, last)
    if got is None:
        return None
    events, lines, ended = got
    part: dict[str, Any] = {"count": len(events), "ended": ended,
                            "stopped": stopped_writing(events[-1] if events else None)}
    if not events:
        return part
    seq, t, src, kind, conn, fd, thread, _ = zip(*events)
    lengths = np.fromiter(map(len, lines), np.int64, len(lines))
    starts = np.empty(len(lines), np.int64)
    starts[0] = start
    np.cumsum(lengths[:-1], out=starts[1:])
    starts[1:] += start
    part.update(t=np.array(t, np.int64), seq=np.array(seq, np.int64),
                fd=np.array(fd, np.int32), thread=np.array(thread, np.int64),
                at=starts, len=lengths.astype(np.int32))
    for name, values in (("src", src), ("kind", kind), ("conn", conn)):
        codes: dict[Any, int] = {}
        part[name] = np.fromiter((codes.setdefault(v, len(codes)) for v in values),
                                 np.int32, len(values))
        part[name + "_names"] = list(codes)
    return part


def _parts(path: str, f: Any, first: int, size: int, part: int) -> list[tuple[str, int, int, bool]]:
    """Byte ranges of about ``part`` bytes from ``first`` to ``size``, each starting at a
    line's start (the one after a cut, or the file's first event)."""
    bounds = [first]
    for target in range(first + part, size, part):
        f.seek(target - 1)  # (a cut right after a newline stays there)
        f.readline()
        where = f.tell()
        if bounds[-1] < where < size:
            bounds.append(where)
    bounds.append(size)
    return [(path, a, b, k == len(bounds) - 2) for k, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def read_parallel(path: str | os.PathLike[str], progress: Callable[[int], None] | None = None,
                  workers: int | None = None, part: int | None = None,
                  parallel_from: int | None = None
                  ) -> tuple[EventLog, dict[str, Any], list[str]] | None:
    """The log of a trace read by worker processes, with its header and problems; None
    when it should be read in order instead (a small file, one core, a part that is not
    plain events, or no worker could start or finish). Raises ``TraceError`` for a
    header that is not a trace's."""
    reading = Reading.start(path, workers, part, parallel_from)
    if reading is None:
        return None
    while not reading.done:
        reading.take(wait=True)
        if progress is not None and not reading.failed:
            progress(len(reading.log))
    if reading.failed:
        reading.log.close()
        return None
    return reading.log, reading.header, reading.problems


class Reading:
    """A trace being read by worker processes, in the background: a thread waits for
    their answers, and ``take`` (the window's timer, or ``read_parallel``) adds to the
    log what came, in file order. ``done`` once every part is in, or one could not be
    read (``failed``: the caller reads the file in order, which names the line)."""

    def __init__(self, path: str, header: dict[str, Any], version: int,
                 parts: list[tuple[str, int, int, bool]], pool: "_Workers", size: int) -> None:
        self.path, self.header, self._version = path, header, version
        self.size = size  # bytes of the file; ``position``: read up to there
        self.position = self._first = parts[0][1]
        # A file of millions of events: its columns in unnamed files too (the system's
        # pages, not this process's memory), as a live session's.
        self.log = EventLog(backing=path, spill=size > SPILL_FROM)
        self.problems: list[str] = []
        self.done = self.failed = False
        self._ended: dict[str, Any] | None = None
        self._stopped = False
        self._answers: queue.SimpleQueue[tuple[int, dict[str, Any] | None] | None] = \
            queue.SimpleQueue()
        self._pool = pool
        self._closing = False
        self._thread = threading.Thread(target=self._wait, args=(parts,),
                                        name="sockscope-trace-reader", daemon=True)

    @classmethod
    def start(cls, path: str | os.PathLike[str], workers: int | None = None,
              part: int | None = None, parallel_from: int | None = None) -> "Reading | None":
        """Start reading ``path`` by worker processes; None when it is better read in order
        (smaller than ``parallel_from`` bytes of events, or one core). Raises ``TraceError``
        for a header that is not a trace's."""
        path = os.fspath(path)
        with open(path, "rb") as f:
            header, version, first = read_header(path, f)
            size = os.fstat(f.fileno()).st_size
            workers = min(workers or os.cpu_count() or 1, MAX_WORKERS)
            if size - first < (PARALLEL_FROM if parallel_from is None else parallel_from) \
                    or workers < 2:
                return None
            parts = _parts(path, f, first, size, part or PART)
        pool = _Workers(min(workers, len(parts)))
        if not pool.procs:  # (none could start: a limit on processes, no memory)
            return None
        reading = cls(path, header, version, parts, pool, size)
        try:
            reading._thread.start()
        except RuntimeError:  # no thread to start (the same limit): read in order
            pool.close()
            reading.log.close()
            return None
        return reading

    def _wait(self, parts: list[tuple[str, int, int, bool]]) -> None:
        with self._pool as pool:
            for (_, _, stop, _), got in zip(parts, pool.results(parts)):
                self._answers.put((stop, got))
                if got is None or self._closing:
                    break
        self._answers.put(None)

    @property
    def estimated_events(self) -> int:
        """The file's events, estimated from what was read so far (bytes per event)."""
        done = self.position - self._first
        return len(self.log) if self.done or not done else \
            round(len(self.log) * (self.size - self._first) / done)

    def take(self, wait: bool = False) -> int | None:
        """Add what the workers answered since to the log (with ``wait``, waiting for one
        answer first); returns the lowest log index that changed, or None."""
        changed: int | None = None
        while not self.done:
            try:
                item = self._answers.get(block=wait and changed is None)
            except queue.Empty:
                break
            if item is None or item[1] is None:  # the end; or a part not plain events
                self.done, self.failed = True, item is not None or self._closing
                if not self.failed:
                    problem = end_problem(self.header, self._version, self._ended,
                                          len(self.log), self._stopped)
                    self.problems = [] if problem is None else [problem]
                break
            self.position, got = item
            if got["count"]:  # type: ignore[index]
                start = self.log.extend_columns(got)  # type: ignore[arg-type]
                changed = start if changed is None else min(changed, start)
                self._stopped = got["stopped"]  # type: ignore[index]
            self._ended = got["ended"]  # type: ignore[index]
        return changed

    def take_into(self, timeline: Any, wait: bool = False) -> int | None:
        """``take``, and the timeline over this log told what changed: what it had folded
        from there is folded again, its cursor where it was."""
        changed = self.take(wait)
        if changed is not None:
            cursor = timeline.cursor
            timeline.log_changed(changed)
            timeline.seek(cursor)
        return changed

    def close(self) -> None:
        """Stop reading (the window closed, another trace opened): the workers are killed,
        the thread ends. The log stays as read."""
        self._closing = True
        self._pool.kill()
        self._thread.join(10)


class _Workers:
    """Worker processes (``python -m visualizer.model.reader``), each given parts on its
    standard input, a line each, and answering each with a pickle on its standard output,
    in order. Plain processes and pipes: nothing of the window's is copied into them
    (no fork of its threads), and nothing outlives the reading (no helper process)."""

    def __init__(self, count: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.finished = False  # every part's answer read
        # The workers must run this very SockScope, not another one their interpreter
        # finds (an older one installed, the folder they start in): a source folder goes
        # first on their path, and a worker that finds itself elsewhere reads nothing.
        me = str(Path(__file__).resolve())
        here = str(Path(me).parents[2])
        env = dict(os.environ)
        if here not in {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}:
            env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
        try:
            for _ in range(count):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "visualizer.model.reader", me],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    bufsize=0, env=env))
        except OSError:  # no process to start (a limit on processes, no memory): fewer
            pass

    def results(self, parts: list[tuple[str, int, int, bool]]) -> Iterator[dict[str, Any] | None]:
        """Each part's columns, in order (None once a part cannot be had: the rest not read).
        (At least one worker: ``Reading.start`` reads in order where none could start.)"""
        owner: list[int] = []  # the worker each part went to, in order
        queued = 0

        def give(worker: int) -> bool:
            nonlocal queued
            if queued == len(parts):
                return True
            path, start, stop, last = parts[queued]
            try:
                self.procs[worker].stdin.write(  # type: ignore[union-attr]
                    orjson.dumps([path, start, stop, last]) + b"\n")
            except OSError:
                return False
            owner.append(worker)
            queued += 1
            return True

        for _ in range(2):  # two parts ahead each: a worker never waits for the next
            for worker in range(len(self.procs)):
                if not give(worker):
                    yield None
                    return
        for k in range(len(parts)):
            worker = owner[k]
            got = _receive(self.procs[worker].stdout)
            if got is None or not give(worker):
                yield None
                return
            if k == len(parts) - 1:
                self.finished = True
            yield got

    def kill(self) -> None:
        """Stop the workers now (from another thread: the one reading their answers gets
        the end of their output)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Every answer read, the workers end at the end of their input; stopped early (a
        part that is not plain events, an error), they are killed: one may be mid-part, or
        blocked writing an answer nobody will read."""
        for proc in self.procs:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            if not self.finished:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # (a worker that does not end at its input's end)
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]


def _receive(stream: Any) -> dict[str, Any] | None:
    """One answer: its length (8 bytes), then its pickle; None at the end of the stream
    (the worker gone) or for a part that is not plain events."""
    head = _read_exactly(stream, 8)
    if head is None:
        return None
    body = _read_exactly(stream, struct.unpack("<Q", head)[0])
    return None if body is None else pickle.loads(body)  # noqa: S301 (our own worker's)


def _read_exactly(stream: Any, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _serve() -> None:
    """A worker: a part per line on standard input, its columns (or None) on standard output;
    nothing at all if it is not the reader its parent runs (``sys.argv[1]``)."""
    if len(sys.argv) > 1 and sys.argv[1] != str(Path(__file__).resolve()):
        return
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        path, start, stop, last = orjson.loads(line)
        try:
            got = _part_columns((path, start, stop, last))
        except OSError:  # (the file gone or unreadable: the reader in order says why)
            got = None
        body = pickle.dumps(got, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(struct.pack("<Q", len(body)) + body)
        out.flush()


if __name__ == "__main__":
    _serve()
