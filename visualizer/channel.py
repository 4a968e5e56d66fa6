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
        out = []
        pop = self.events.popleft
        for _ in range(min(limit, len(self.events))):
            out.append(pop())
        return out

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
