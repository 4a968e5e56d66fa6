"""``no_drain`` (``serve --no-drain``): lecture 3.9's epoll bug on purpose, for the
epoll lesson. One ``recv(1024)`` per readiness report: edge-triggered, what is
left in the socket waits for an edge that never comes; level-triggered, the
next wait reports the fd again and everything is answered."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

from engine import ServerConfig, create_server
from engine.modes.epoll import LECTURE_RECV
from tests.conftest import running_server

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(__import__("select"), "epoll"),
                                reason="epoll is Linux-only")


def pipelined(n: int) -> bytes:
    """``n`` keep-alive requests in one write, together longer than one recv(1024)."""
    one = b"GET /robots.txt HTTP/1.1\r\nHost: lesson\r\nUser-Agent: no-drain test\r\n\r\n"
    data = one * n
    assert len(data) > LECTURE_RECV + len(one)  # at least one whole request is left over
    return data


def read_responses(sock: socket.socket, n: int, timeout: float) -> int:
    """Count complete responses (``Content-Length`` bodies) until ``n`` or the timeout."""
    sock.settimeout(timeout)
    buf, count = b"", 0
    deadline = time.monotonic() + timeout
    while count < n and time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
        while True:  # cut whole responses off the front
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                break
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            if len(rest) < length:
                break
            buf, count = rest[length:], count + 1
    return count


def reports_of(events: list, fd: int) -> list[int]:
    return [i for i, e in enumerate(events) if e.kind == "epoll_wait"
            and any(f == fd for f, _ in e.data["ready"])]


def test_edge_without_draining_stalls_a_real_connection() -> None:
    n = 16
    with running_server("epoll", "edge", no_drain=True) as (server, sink):
        with socket.create_connection(server.address[:2], timeout=5) as sock:
            sock.sendall(pipelined(n))
            got = read_responses(sock, n, timeout=1.0)
            events = list(sink.events)  # before closing: the FIN would be a new edge
    assert 0 < got < n, f"{got} of {n} answered: expected a stall part way"
    accept = next(e for e in events if e.kind == "accept")
    recvs = [e for e in events if e.kind == "recv" and e.fd == accept.fd]
    assert [e.data["bytes"] for e in recvs] == [LECTURE_RECV]  # read once, never again
    assert not any(e.kind == "eagain" and e.data["op"] == "recv" for e in events)
    assert len(reports_of(events, accept.fd)) == 1  # reported once: no new edge came
    # Stalled: the loop waits on, until the connection's deadline (the nearest in its heap
    # of deadlines), not a tick: nothing wakes it in the second the client waited.
    waits = [e for e in events if e.kind == "epoll_wait"]
    assert not any(e.data["ready"] == [] for e in waits)
    assert waits[-1].data["timeout"] > 5
    assert sum(e.kind == "response" for e in events) == got
    mode = next(e for e in events if e.kind == "mode")
    assert mode.data["trigger"] == "edge" and mode.data["no_drain"] is True


def test_level_without_draining_reports_again_and_answers_all() -> None:
    n = 16
    with running_server("epoll", "level", no_drain=True) as (server, sink):
        with socket.create_connection(server.address[:2], timeout=5) as sock:
            sock.sendall(pipelined(n))
            got = read_responses(sock, n, timeout=5.0)
        assert sink.wait_for(lambda evs: any(e.kind == "close" for e in evs), 5)
    assert got == n
    events = list(sink.events)
    accept = next(e for e in events if e.kind == "accept")
    sizes = [e.data["bytes"] for e in events if e.kind == "recv" and e.fd == accept.fd]
    assert sizes[0] == LECTURE_RECV and all(s <= LECTURE_RECV for s in sizes)
    assert sum(s for s in sizes if s) == len(pipelined(n))
    reports = reports_of(events, accept.fd)
    waits = [i for i, e in enumerate(events) if e.kind == "epoll_wait"]
    # the same fd in two waits in a row: level-triggered reports unread data again
    assert any(waits[waits.index(a) + 1] == b for a, b in pairwise(reports))


def test_edge_with_draining_answers_everything() -> None:
    """The same bytes to the normal edge-triggered server: drained, all answered."""
    n = 16
    with running_server("epoll", "edge") as (server, sink):
        with socket.create_connection(server.address[:2], timeout=5) as sock:
            sock.sendall(pipelined(n))
            assert read_responses(sock, n, timeout=5.0) == n
    recvs = [e for e in sink.events if e.kind == "recv" and e.data["bytes"]]
    assert recvs[0].data["bytes"] == len(pipelined(n))  # one recv of the normal size took all


def test_no_drain_is_an_epoll_option() -> None:
    with pytest.raises(ValueError, match="epoll"):
        create_server(ServerConfig(mode="threaded", port=0, no_drain=True))
    assert ServerConfig().no_drain is False


def test_cli_no_drain_is_shown_and_recorded(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "engine", "serve", "--port", "0", "--mode", "epoll",
         "--trigger", "edge", "--no-drain", "--states", "off", "--packets", "off",
         "--trace", str(trace), "--load=--requests 12 --pipeline 12 --timeout 0.5",
         "--exit-after-load"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "edge-triggered, one recv(1024) per report (no drain)" in done.stdout
    assert "12 failed" in done.stdout  # the pipelined batch stalled: the client timed out
    bad = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode",
                          "threaded", "--no-drain"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "epoll" in bad.stderr
