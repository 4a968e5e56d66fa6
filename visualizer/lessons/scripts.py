"""Scripted clients a lesson file can name (``[[clients]] script = "NAME"``): what the
built-in ``sockscope load`` clients cannot do, such as holding a request half sent
while another client connects. Each runs against the lesson's engine (``served``:
its ``port`` and ``url``) and raises ``LessonError`` when the run went wrong."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .base import LessonError


@dataclass(frozen=True)
class Script:
    name: str
    says: str  # what it does, one line (the README and the errors list them)
    run: Callable[[Any, str], None]  # (the served engine, the lesson's name)


# -------------------------------------------------------------- slow-and-queued
HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # A's first part: no blank line yet
REST = b"Connection: close\r\n\r\n"
DRIBBLE_S = 0.6  # how long A holds its request back once B has connected


def _slow_and_queued(served: Any, lesson: str) -> None:
    from .basics import read_to_close
    address = ("127.0.0.1", served.port)
    answers: dict[str, bytes] = {}
    try:
        with socket.create_connection(address, timeout=10) as a:
            a.sendall(HEAD)  # A: half a request, then nothing for a while
            time.sleep(0.2)
            b = socket.create_connection(address, timeout=10)  # B: the kernel's handshake
            b.sendall(HEAD + REST)  # its whole request, at once
            reader = threading.Thread(target=lambda: answers.update(b=read_to_close(b)),
                                      name="lesson-slow-b", daemon=True)
            reader.start()
            time.sleep(DRIBBLE_S)
            a.sendall(REST)  # A finishes: only now can a one-at-a-time server answer it
            answers["a"] = read_to_close(a)
            reader.join(10)
            b.close()
    except OSError as exc:
        raise LessonError(f"{lesson}: a client failed: {exc}") from exc
    for who in ("a", "b"):
        if not answers.get(who, b"").startswith(b"HTTP/1.1 "):
            raise LessonError(f"{lesson}: client {who.upper()} got no answer")


SCRIPTS = {script.name: script for script in (
    Script("slow-and-queued",
           f"client A sends half a request ({len(HEAD)} bytes), client B connects 0.2 s later "
           f"and sends its whole request; A sends the rest {DRIBBLE_S} s after",
           _slow_and_queued),
)}
