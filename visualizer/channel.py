"""The one channel from child processes (engine, clients) to the window.

A child writes its trace on stdout (``--trace -``) and its messages on
stderr. A reader thread per stream parses lines into events and appends them
to a deque; the window's timer takes them out in batches (``drain``) in the
GUI thread. The child never waits for the window: if the window falls
behind, the child's own trace writer drops and counts (a ``dropped`` event).
No Qt here, so the channel is tested on its own.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

import orjson

from engine.events import Event
from engine.lifetime import die_with_parent
from engine.trace import FORMAT

REPO = Path(__file__).resolve().parents[1]


def take(events: deque[Event], limit: int) -> list[Event]:
    """Up to ``limit`` events from the left of ``events`` (a reader thread appends on the
    right meanwhile: only what is there now is taken)."""
    pop = events.popleft
    return [pop() for _ in range(min(limit, len(events)))]


class ProcessChannel:
    """A child process whose stdout is a live trace."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.args = args
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env,
                                     preexec_fn=die_with_parent if os.name == "posix"
                                     else None)  # the window killed: its engine ends too
        self.events: deque[Event] = deque()
        self.messages: deque[str] = deque(maxlen=200)
        self.header: dict | None = None
        self.bad_lines = 0
        self._threads = [threading.Thread(target=self._read_events, daemon=True,
                                          name=f"channel-{name}"),
                         threading.Thread(target=self._read_messages, daemon=True,
                                          name=f"channel-{name}-stderr")]
        for t in self._threads:
            t.start()

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        loads, make, append = orjson.loads, Event.from_dict, self.events.append
        for line in self.proc.stdout:
            try:
                row = loads(line)
                if self.header is None and row.get("format") == FORMAT:
                    self.header = row
                    continue
                append(make(row))
            except (ValueError, KeyError, TypeError, AttributeError):
                self.bad_lines += 1

    def _read_messages(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.messages.append(raw.decode("utf-8", "replace").rstrip())

    def drain(self, limit: int = 200_000) -> list[Event]:
        """The events received since the last call (at most ``limit``)."""
        return take(self.events, limit)

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
        self.events: deque[Event] = deque()
        self.messages: deque[str] = deque(maxlen=200)
        self.header: dict | None = None
        self.bad_lines = 0
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
        loads, make, append = orjson.loads, Event.from_dict, self.events.append
        while True:
            *lines, data = data.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                try:
                    row = loads(line)
                    if self.header is None and row.get("format") == FORMAT:
                        self.header = row
                        url = row.get("url")
                        # The line host.py reads the engine's address from.
                        self.messages.append(f"SockScope serving at {url} (attached to "
                                             f"{self.address})" if url else
                                             f"attached to {self.address}")
                        continue
                    append(make(row))
                except (ValueError, KeyError, TypeError, AttributeError):
                    self.bad_lines += 1
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

    def drain(self, limit: int = 200_000) -> list[Event]:
        """The events received since the last call (at most ``limit``)."""
        return take(self.events, limit)

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
