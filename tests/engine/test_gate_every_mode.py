"""Stepping holds the server before each action of a connection, in every mode (the gate
applies to all of them): accept, then recv, then send, then close. Held before send,
no byte of the answer has left; held before close, the client has the whole answer
and no end-of-file. One step lets each go, and only then does the client see it."""
from __future__ import annotations

import select
import socket
import time

import pytest

from tests.conftest import ALL_MODES, MODE_IDS, running_server

REQUEST = b"GET /robots.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
MAX_STEPS = 200  # the nonblocking loop is held before each of its tries: many, but few


def readable(sock: socket.socket) -> bool:
    """A byte, or the end, has reached the client (asked without waiting)."""
    return bool(select.select([sock], [], [], 0)[0])


def step_once(gate, deadline: float) -> None:  # type: ignore[no-untyped-def]
    """Release the oldest held action and wait (bounded) until the gate counted it."""
    released = gate.released
    gate.step()
    while gate.released == released:
        assert time.monotonic() < deadline, "a step was never taken"
        time.sleep(0.001)


def step_until_held(gate, action: str, seen: list, deadline: float,  # type: ignore[no-untyped-def]
                    stop=lambda: None):
    """Step the oldest held action until ``action`` of a connection is the oldest held
    (not released); ``seen`` collects (action, conn) of everything held on the way.
    ``stop()`` is asked before each step: a reason to fail at once, or None."""
    for _ in range(MAX_STEPS):
        assert time.monotonic() < deadline, f"no {action} was held; held: {seen}"
        if not gate.wait_until_held(1, max(0.0, min(0.5, deadline - time.monotonic()))):
            continue
        oldest = gate.held[0]
        seen.append((oldest.action, oldest.conn))
        if oldest.action == action and oldest.conn is not None:
            return oldest
        problem = stop()
        assert problem is None, f"{problem} (held so far: {seen})"
        step_once(gate, deadline)
    raise AssertionError(f"no {action} was held within {MAX_STEPS} steps: {seen}")


def answer_length(data: bytes) -> int | None:
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return len(head) + len(sep) + length


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_each_action_waits_for_its_step(mode: str, trigger: str) -> None:
    with running_server(mode, trigger, policy="close") as (server, sink):
        gate = server.gate
        gate.enable()
        sock = socket.create_connection(server.address[:2], timeout=5)
        try:
            sock.sendall(REQUEST)
            deadline = time.monotonic() + 20
            seen: list[tuple[str, str | None]] = []

            # ---- held before send: nothing has left
            def answer_came() -> str | None:
                return "the answer arrived without a held send" if readable(sock) else None
            held = step_until_held(gate, "send", seen, deadline, stop=answer_came)
            conn = held.conn
            assert ("recv", conn) in seen, "the request was read (a held recv) before the send"
            assert ("accept", None) in seen[:seen.index(("recv", conn))], \
                f"the connection was accepted (a held accept) before its recv: {seen}"
            assert not [e for e in sink.of_kind("send") if e.conn == conn]
            assert not readable(sock), "the answer left while its send was held"
            assert [e for e in sink.of_kind("gate") if e.conn == conn and e.data["state"] == "held"
                    and e.data["action"] == "send"], "the hold is announced as a gate event"
            step_once(gate, deadline)  # one step: the send goes
            answer = b""
            while answer_length(answer) is None or len(answer) < answer_length(answer):
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                assert chunk, f"end of file inside the answer: {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 OK")
            assert [e for e in sink.of_kind("gate") if e.conn == conn
                    and e.data["state"] == "released" and e.data["action"] == "send"]

            # ---- held before close: the whole answer is there, the end is not
            def eof_came() -> str | None:
                return "the connection ended without a held close" if readable(sock) else None
            step_until_held(gate, "close", seen, deadline, stop=eof_came)
            assert not readable(sock), "the client saw the end while close was held"
            step_once(gate, deadline)  # one step: the server closes, its FIN arrives
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            assert sock.recv(100) == b""
        finally:
            gate.disable()
            sock.close()
