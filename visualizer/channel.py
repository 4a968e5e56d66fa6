"""The one channel from child processes (engine, clients) to the window.

A child writes its trace on stdout (``--trace -``) and its messages on
stderr. A reader thread per stream puts the lines, as they came, in a
``Backlog``; the window's timer takes them out in batches (``drain``) in the
GUI thread, as events. The child never waits for the window: the reader
reads as fast as the child writes. If the window falls behind, the lines
waiting beyond a memory budget wait in a file, not in memory: a long load
demo costs disk, and no event is lost. No Qt here, so the channel is tested
on its own.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Iterator

import orjson

from engine.events import Event
from engine.lifetime import die_with_parent
from engine.trace import FORMAT, end_line_fields

REPO = Path(__file__).resolve().parents[1]


def _parse(lines: list[bytes]) -> tuple[list[Event], int]:
    """The events of ``lines``, and how many lines were no event (blank ones skipped)."""
    loads, make = orjson.loads, Event.from_dict
    try:
        return [make(loads(line)) for line in lines], 0
    except (ValueError, KeyError, TypeError, AttributeError):
        out, bad = [], 0
        for line in lines:
            try:
                out.append(make(loads(line)))
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += bool(line.strip())
        return out, bad


def _is_header(line: bytes) -> dict | None:
    """The trace header, if ``line`` is one."""
    if b'"format"' not in line[:40]:
        return None
    try:
        row = orjson.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and row.get("format") == FORMAT else None


def _end_of(line: bytes) -> dict | None:
    """What a trace's end line says (events, what each source lost), if it is a valid one."""
    try:
        return end_line_fields(orjson.loads(line))
    except ValueError:  # (not JSON, or an end line with wrong fields)
        return None


class Backlog:
    """The lines a child sent that the window has not taken yet, in order.

    A reader thread ``put``s raw lines (no parsing on its side); the window
    ``take``s them as events. Up to ``memory`` bytes of lines wait in memory; past
    that, lines wait in an unnamed file in the temporary folder, and are read
    back in order as the window takes them. If the disk refuses (full, a size
    limit), the lines wait in memory after all and ``spill_failed`` says why:
    nothing is lost either way. ``bad_lines`` counts lines that were no event.
    """

    CHUNK = 4 << 20  # read back from the file at most this much at a time

    def __init__(self, memory: int = 64 << 20) -> None:
        self.memory = memory
        self._lock = threading.Lock()
        self._head: deque[bytes] = deque()  # first in order, in memory
        self._head_bytes = 0
        self._file = None  # then these, in the file (from _read to _written)
        self._read = self._written = 0
        self._spilled = 0  # lines in the file not read back
        self._tail: deque[bytes] = deque()  # last: lines the disk refused
        self.spill_failed: OSError | None = None
        self.bad_lines = 0
        self.spilled_ever = 0  # lines that went through the file
        # The time of the newest line put (its ``t_ns``, read from the raw line, never
        # parsed): how far the source is ahead of what the window took.
        self.newest_ns: int | None = None

    def _note_time(self, data: bytes) -> None:
        """``newest_ns`` from the last line of ``data`` that says its ``t_ns``."""
        at = data.rfind(b'"t_ns":')
        if at < 0:
            return
        at += 7
        while at < len(data) and data[at] == 32:  # (a space: JSON written by another hand)
            at += 1
        end = at
        while end < len(data) and 48 <= data[end] <= 57:
            end += 1
        if end > at:
            t = int(data[at:end])
            if self.newest_ns is None or t > self.newest_ns:
                self.newest_ns = t

    def put_block(self, data: bytes) -> None:
        """Whole lines at once, each ending with its newline, as one ``put`` each would:
        in memory, or past ``memory`` in one write to the file, never cut into lines
        (behind a fast engine, most of what comes goes there)."""
        self._note_time(data)
        with self._lock:
            if not self._spilled and not self._tail and self._head_bytes < self.memory:
                self._head.extend(data.splitlines(keepends=True))
                self._head_bytes += len(data)
                return
            if self.spill_failed is None and not self._tail:
                try:
                    self._spill(data)
                    count = data.count(b"\n")
                    self._spilled += count
                    self.spilled_ever += count
                    return
                except OSError as exc:  # (what part of it reached the file stays unread)
                    self.spill_failed = exc
            self._tail.extend(data.splitlines(keepends=True))

    def _spill(self, data: bytes) -> None:
        """Write whole lines after the file's last one (under the lock); raises OSError."""
        if self._file is None:  # unbuffered: a refused write leaves nothing pending in a buffer
            self._file = tempfile.TemporaryFile(prefix="sockscope-backlog-", buffering=0)
        self._file.seek(self._written)
        view = memoryview(data)
        while view:
            view = view[self._file.write(view):]
        self._written += len(data)

    def put(self, line: bytes) -> None:
        self._note_time(line)
        with self._lock:
            if not self._spilled and not self._tail and self._head_bytes < self.memory:
                self._head.append(line)
                self._head_bytes += len(line)
            elif self.spill_failed is None and not self._tail:
                try:
                    self._spill(line if line.endswith(b"\n") else line + b"\n")
                    self._spilled += 1
                    self.spilled_ever += 1
                except OSError as exc:
                    self.spill_failed = exc
                    self._tail.append(line)
            else:
                self._tail.append(line)

    def _refill(self) -> None:
        """Read the file's next lines back into memory (under the lock)."""
        assert self._file is not None
        self._file.seek(self._read)
        chunk = self._file.read(min(self.CHUNK, self._written - self._read))
        if b"\n" not in chunk:  # a line longer than CHUNK: the rest of it too
            chunk += self._file.read(self._written - self._read - len(chunk))
            end = chunk.index(b"\n") + 1  # (every line in the file ends with one)
        else:
            end = chunk.rfind(b"\n") + 1
        lines = chunk[:end].splitlines(keepends=True)
        self._head.extend(lines)
        self._head_bytes += end
        self._read += end
        self._spilled -= len(lines)
        if not self._spilled:  # all read back: the file starts over
            self._file.truncate(0)
            self._read = self._written = 0

    def take(self, limit: int) -> list[bytes]:
        """Up to ``limit`` lines, the oldest first."""
        out: list[bytes] = []
        with self._lock:
            while len(out) < limit:
                if not self._head:
                    if self._spilled:
                        self._refill()
                    elif self._tail:
                        self._head, self._tail = self._tail, deque()
                        self._head_bytes = sum(map(len, self._head))
                    else:
                        break
                pop = self._head.popleft
                taken = [pop() for _ in range(min(limit - len(out), len(self._head)))]
                self._head_bytes -= sum(map(len, taken))
                out += taken
        return out

    def take_events(self, limit: int) -> list[Event]:
        """Up to ``limit`` events: the oldest lines, parsed (a line that is no event is
        counted in ``bad_lines``, never raised)."""
        events, bad = _parse(self.take(limit))
        self.bad_lines += bad
        return events

    def __iter__(self) -> Iterator[Event]:
        """The events waiting in memory, not taken (a look at the first ones)."""
        with self._lock:
            lines = list(self._head)
        return iter(_parse(lines)[0])

    def __len__(self) -> int:
        with self._lock:
            return len(self._head) + self._spilled + len(self._tail)

    @property
    def in_memory(self) -> int:
        """Bytes of lines waiting in memory."""
        with self._lock:
            return self._head_bytes + sum(map(len, self._tail))

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class ProcessChannel:
    """A child process whose stdout is a live trace."""

    def __init__(self, args: list[str], name: str, memory: int = 64 << 20) -> None:
        self.name = name
        self.args = args
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env,
                                     preexec_fn=die_with_parent if os.name == "posix"
                                     else None)  # the window killed: its engine ends too
        self.events = Backlog(memory)  # lines past ``memory`` bytes wait in a file
        self.messages: deque[str] = deque(maxlen=200)
        self.header: dict | None = None
        self.end: dict | None = None  # the trace's end line, once the engine stopped in order
        self._threads = [threading.Thread(target=self._read_events, daemon=True,
                                          name=f"channel-{name}"),
                         threading.Thread(target=self._read_messages, daemon=True,
                                          name=f"channel-{name}-stderr")]
        for t in self._threads:
            t.start()

    @property
    def bad_lines(self) -> int:
        return self.events.bad_lines

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        put = self.events.put
        stream = self.proc.stdout
        for line in iter(stream.readline, b""):  # until the header: the trace's first line
            self.header = _is_header(line)
            if self.header is not None:
                break
            put(line)
        # Then as they come, whole lines a block at a time (an engine under load sends
        # 100,000 lines a second: a Python step per line here took a third of the
        # window's process, and the GIL its drawing needs). The window parses what it takes.
        put_block, read = self.events.put_block, stream.read1
        pending = b""
        while block := read(1 << 20):
            cut = block.rfind(b"\n") + 1
            if not cut:
                pending += block
                continue
            data, pending = pending + block[:cut], block[cut:]
            at = data.find(b'{"end":')
            if at >= 0 and (at == 0 or data[at - 1] == 0x0A):  # the trace's end line:
                end = data.index(b"\n", at) + 1          # the engine stopped in order
                self.end = _end_of(data[at:end])
                data = data[:at] + data[end:]
                if not data:
                    continue
            put_block(data)
        if pending:  # a last line without its newline (the engine killed mid-line)
            put(pending)

    def _read_messages(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.messages.append(raw.decode("utf-8", "replace").rstrip())

    def drain(self, limit: int = 200_000) -> list[Event]:
        """The events received since the last call (at most ``limit``)."""
        return self.events.take_events(limit)

    def send(self, line: str) -> None:
        """A command on the child's stdin (``serve --control``)."""
        if self.proc.stdin is None or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()

    @property
    def reading(self) -> bool:
        """Does a reader thread still put lines (the child's pipes not yet at their end)?"""
        return any(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.send("q")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout)
        for t in self._threads:
            t.join(timeout)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class SocketChannel:
    """An engine elsewhere (``sockscope serve --control HOST:PORT``), attached to over
    TCP: the same interface as ``ProcessChannel`` (events, messages, header,
    bad_lines, drain, send, exit_code, stop), so the window drives it the same way.

    Connecting and the greeting happen in the reader thread (a refused token is
    answered only after the engine's wait): the constructor never blocks.
    ``exit_code`` is None while attaching or attached, 0 once the engine ended the
    stream, 1 when it could not be reached or refused (``refused`` says why:
    "token", "busy"...). ``stop`` only detaches: the engine is someone else's and
    runs on. Commands sent before the engine accepted wait and follow at once."""

    def __init__(self, host: str, port: int, token: str, name: str = "engine",
                 timeout: float = 5.0) -> None:
        self.name = name
        self.host, self.port = host, port
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.events = Backlog()
        self.messages: deque[str] = deque(maxlen=200)
        self.header: dict | None = None
        self.refused: str | None = None
        self.attached = threading.Event()  # set once the engine said OK
        self._token = token
        self._timeout = timeout
        self._sock = None
        self._exit: int | None = None
        self._closing = False
        self._lock = threading.Lock()  # the socket, commands waiting for it
        self._early: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"channel-{name}")
        self._thread.start()

    def _run(self) -> None:
        from engine.control import Refused, attach
        try:
            sock, data = attach(self.host, self.port, self._token, self._timeout)
        except Refused as exc:
            self.refused = exc.why
            self.messages.append(f"the engine at {self.address} refused to attach ({exc.why})")
            self._exit = 1
            return
        except OSError as exc:
            self.messages.append(f"cannot attach to {self.address}: {exc.strerror or exc}")
            self._exit = 1
            return
        with self._lock:
            if self._closing:
                sock.close()
                self._exit = 0
                return
            self._sock = sock
            early, self._early = self._early, []
            for line in early:
                self._send_now(line)
        self.attached.set()
        put = self.events.put
        while True:
            *lines, data = data.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                if self.header is None:
                    self.header = row = _is_header(line)
                    if row is not None:
                        url = row.get("url")
                        # The line host.py reads the engine's address from.
                        self.messages.append(f"SockScope serving at {url} (attached to "
                                             f"{self.address})" if url else
                                             f"attached to {self.address}")
                        continue
                put(line)
            try:
                piece = sock.recv(1 << 16)
            except OSError:
                piece = b""
            if not piece:
                break
            data += piece
        if not self._closing:
            self.messages.append(f"the engine at {self.address} ended the stream")
        self._exit = 0

    def _send_now(self, line: str) -> None:
        try:
            self._sock.sendall((line + "\n").encode())  # type: ignore[union-attr]
        except OSError:
            pass

    @property
    def bad_lines(self) -> int:
        return self.events.bad_lines

    def drain(self, limit: int = 200_000) -> list[Event]:
        """The events received since the last call (at most ``limit``)."""
        return self.events.take_events(limit)

    def send(self, line: str) -> None:
        """A command over the control port (Enter/N/c/s/q, ``load OPTIONS``)."""
        with self._lock:
            if self._closing or self._exit is not None:
                return
            if self._sock is None:
                self._early.append(line)
                return
            self._send_now(line)

    @property
    def reading(self) -> bool:
        """Does its thread still put lines (the connection not yet at its end)?"""
        return self._thread.is_alive()

    @property
    def exit_code(self) -> int | None:
        return self._exit

    def stop(self, timeout: float = 5.0) -> None:
        """Detach (the engine runs on)."""
        import socket
        with self._lock:
            self._closing = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout)
        if sock is not None:
            sock.close()
