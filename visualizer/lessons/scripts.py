"""Scripted clients a lesson file can name (``[[clients]] script = "NAME"``): what the
built-in ``sockscope load`` clients cannot do, such as holding a request half sent
while another client connects. Each runs against the lesson's engine (``served``:
its ``port`` and ``url``) and raises ``LessonError`` when the run went wrong."""
from __future__ import annotations

import re
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
    # (the served engine, the lesson's name) -> events of its own to add to the
    # recording (none: None)
    run: Callable[[Any, str], Any]
    # what it needs of this machine: (True, "") or (False, why not)
    needs: Callable[[], tuple[bool, str]] = lambda: (True, "")


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


# -------------------------------------------------------------- lecture-targets
LECTURE_RE = re.compile(r"^[^/]+(/[^\s]*)")  # the lecture's expression (3.3)
QUERY_TARGET = "/index.html?lang=zh"
# The lecture runs web_server.py beside ./html: "./html" + this opens its own source.
TRAVERSAL_TARGET = "/../web_server.py"


def lecture_targets(port: int) -> list[str]:
    """The request targets the regex lesson sends: the lecture's cases and two it misreads."""
    return ["/", "/index.html", f"http://127.0.0.1:{port}/index.html", QUERY_TARGET,
            TRAVERSAL_TARGET]


def _raw_get(port: int, target: str, timeout: float = 5.0) -> bytes:
    """Send one request line as written (a browser or the built-in clients would not
    send an absolute-form target to a server), read the answer to the server's close."""
    from .basics import read_to_close
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     "User-Agent: sockscope-lesson\r\nConnection: close\r\n\r\n".encode())
        return read_to_close(sock)


def _site_checks(port: int) -> list:
    """The lecture's server opens "./html" + group(1): whether each such file exists on
    the site served (the demo site), looked at before the requests: the evidence the http
    view gives for the lecture's status ("/" is its index.html; a name that climbs out of
    ./html is not looked at)."""
    from engine.events import Event
    from engine.static import default_root
    root = default_root()
    out = []
    for target in lecture_targets(port):
        m = LECTURE_RE.match(f"GET {target} HTTP/1.1")
        if m is None:
            continue
        name = "/index.html" if m.group(1) == "/" else m.group(1)
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            continue
        exists = (root.joinpath(*parts)).is_file() if parts else False
        out.append(Event(0, time.monotonic_ns(), "engine", "site_check", None, -1, 0,
                         {"path": "./html" + name, "exists": exists, "target": target}))
    return out


def _lecture_targets(served: Any, lesson: str) -> list:
    checks = _site_checks(served.port)
    for target in lecture_targets(served.port):
        try:
            answer = _raw_get(served.port, target)
        except OSError as exc:
            raise LessonError(f"{lesson}: GET {target} failed: {exc}") from exc
        if not answer.startswith(b"HTTP/1.1 "):
            raise LessonError(f"{lesson}: GET {target} got no answer")
        time.sleep(0.05)
    return checks


# -------------------------------------------------------------- idle-10k
IDLE = 10_000  # the C10K lesson's idle clients


def _idle_needs() -> tuple[bool, str]:
    """The clients' ends are this process's: it raises its own limit on open files (the
    engine, a process of its own, raises its limit the same way)."""
    from engine.limits import SPARE_FDS, raise_open_files
    _, _, problem = raise_open_files(IDLE + 2 * SPARE_FDS)
    if problem:
        return False, f"{IDLE:,} connections need {IDLE:,} descriptors at each end: {problem}"
    return True, ""


def _idle_10k(served: Any, lesson: str) -> None:
    """Ten thousand clients connect, ask once, read the answer and say nothing more,
    holding their connections until the engine has stopped; then two clients make five
    requests each while all of them are held. The engine samples itself meanwhile."""
    from engine.clients import LoadConfig, run_load
    from engine.compare import IdleConnections
    ok, why = _idle_needs()
    if not ok:
        raise LessonError(f"{lesson} cannot run here: {why}")
    options = list(served.options)
    mode = options[options.index("--mode") + 1] if "--mode" in options else ""
    served.stop_timeout = 60.0  # a thread per client: 10,000 of them to end
    time.sleep(0.6)  # samples of the server at rest
    idle = IdleConnections("127.0.0.1", served.port, IDLE)
    served.after_stop.append(idle.close)
    held = idle.open(30 + IDLE / 200)
    # select() cannot watch the fds past FD_SETSIZE: it refuses those clients (503)
    if mode != "select" and held.held != IDLE:
        raise LessonError(f"{lesson}: {mode} held {held.held:,} of {IDLE:,} idle "
                          f"connections ({dict(held.reasons)})")
    time.sleep(0.8)  # samples with every client held
    result = run_load(LoadConfig(url=served.url, clients=2, requests=5, keep_alive=True,
                                 timeout=10))
    if mode != "select" and result.failed:
        raise LessonError(f"{lesson}: {mode}: {result.failed} requests failed while the "
                          f"idle clients were held ({dict(result.errors)})")
    time.sleep(0.3)


# -------------------------------------------------------------- held-accept-queue
HOLD_S = 1.35  # the server held this long: the first SYN retransmission comes after 1 s


def _held_accept_queue(served: Any, lesson: str) -> None:
    """The engine runs with stepping on (engine step = true): held before its first
    epoll_wait, it does not accept. Five clients connect at once; the accept queue fills,
    the SYNs beyond it are dropped and sent again. Then one step releases the epoll_wait
    (it reports the listening socket), one more an accept() (the queue shrinks by one),
    and the server runs freely: the queue drains and the dropped clients get in."""
    served.wait_for("held before epoll_wait", timeout=15)
    served.command("load --clients 5 --requests 1")
    time.sleep(HOLD_S)
    served.command("")  # release the epoll_wait
    served.command("")  # and one accept()
    time.sleep(0.15)
    served.command("c")  # then run freely
    served.wait_loads(1, timeout=60)  # the clients are done (the last after a resent SYN)
    time.sleep(0.1)  # the kernel observer reports how they ended


SCRIPTS = {script.name: script for script in (
    Script("slow-and-queued",
           f"client A sends half a request ({len(HEAD)} bytes), client B connects 0.2 s later "
           f"and sends its whole request; A sends the rest {DRIBBLE_S} s after",
           _slow_and_queued),
    Script("lecture-targets",
           "five requests, each its own connection, their request lines written by hand: "
           "GET /, /index.html, the absolute URL http://127.0.0.1:PORT/index.html, "
           f"{QUERY_TARGET} and {TRAVERSAL_TARGET}; and, before them, whether each file the "
           "lecture's expression would open is on the site (site_check events)",
           _lecture_targets),
    Script("idle-10k",
           f"{IDLE:,} clients connect, ask for / once, read the answer and then say nothing, "
           "holding their connections open until the engine stops; then two keep-alive "
           "clients make five requests each (0.6 s before them and 0.8 s after, for the "
           "engine's CPU samples at rest and with every client held)",
           _idle_10k, _idle_needs),
    Script("held-accept-queue",
           f"with the engine held before its first epoll_wait (step = true), five clients "
           f"connect at once; {HOLD_S} s later one step releases the epoll_wait, one more an "
           "accept(), and 0.15 s later the engine runs freely until the clients are done",
           _held_accept_queue),
)}
