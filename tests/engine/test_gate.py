"""Stepping the live server: N steps release exactly N probed actions."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.conftest import ALL_MODES, MODE_IDS, read_to_eof, running_server

REQUEST = b"GET /robots.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def client(address: tuple, out: dict, key: str = "answer") -> threading.Thread:
    def run() -> None:
        with socket.create_connection(address[:2], timeout=10) as sock:
            sock.sendall(REQUEST)
            out[key] = read_to_eof(sock)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_n_steps_release_exactly_n_actions(mode: str, trigger: str) -> None:
    with running_server(mode, trigger, sweep_pause=0.001) as (server, sink):
        gate = server.gate
        gate.enable()
        out: dict = {}
        thread = client(server.address, out)
        actions = []
        # A request needs at least accept, recv, send and close: three steps
        # cannot finish it, whatever the mode.
        for n in range(1, 4):
            assert gate.wait_until_held(1, 5), f"nothing held before step {n}"
            actions.append(gate.held[0].action)
            gate.step()
            deadline = time.monotonic() + 5
            while gate.released < n and time.monotonic() < deadline:
                time.sleep(0.001)
            assert gate.released == n
        time.sleep(0.3)  # the server must now be held again, not running on
        assert gate.released == 3 and gate.wait_until_held(1, 5)
        assert "answer" not in out
        released = [e for e in sink.of_kind("gate") if e.data["state"] == "released"]
        assert [e.data["action"] for e in released] == actions
        gate.disable()  # run freely: the request completes
        thread.join(10)
    assert out["answer"].startswith(b"HTTP/1.1 200 OK")
    assert set(actions) <= {"accept", "recv", "send", "close", "epoll_wait", "select", "poll"}


def test_threaded_gate_lets_one_thread_through_per_step() -> None:
    with running_server("threaded") as (server, sink):
        gate = server.gate
        out: dict = {}
        # Two connections, each with its own thread blocked before recv.
        socks = [socket.create_connection(server.address[:2], timeout=5) for _ in range(2)]
        assert sink.wait_for(lambda evs: sum(e.kind == "thread_start" for e in evs) >= 3, 5)
        gate.enable()
        for s in socks:
            s.sendall(REQUEST)
        # Both threads reach the gate (before recv, or before send if they were
        # already blocked in recv when stepping began).
        assert gate.wait_until_held(2, 5)
        held = gate.held
        assert len({h.thread for h in held}) == 2  # one held action per connection thread
        gate.step()
        deadline = time.monotonic() + 5
        while gate.released < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.1)
        first = held[0]
        assert gate.released == 1
        still = gate.held
        assert held[1] in still, "the other thread must still be held"
        assert all(h.thread != first.thread or h.action != first.action for h in still)
        gate.disable()
        answers = []
        for s in socks:
            answers.append(read_to_eof(s))
            s.close()
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    del out


def test_gevent_gate_holds_the_one_thread_all_greenlets_share() -> None:
    """Two greenlets, one OS thread: while one action is held, no other greenlet runs
    to reach the gate (threads would each be held), and a step lets exactly one go."""
    with running_server("gevent") as (server, sink):
        gate = server.gate
        socks = [socket.create_connection(server.address[:2], timeout=5) for _ in range(2)]
        assert sink.wait_for(lambda evs: sum(e.kind == "task_start" for e in evs) >= 2, 5)
        gate.enable()
        for s in socks:
            s.sendall(REQUEST)
        assert gate.wait_until_held(1, 5)
        time.sleep(0.3)  # the other greenlet's data is there: it would be held by now
        held = gate.held
        assert len(held) == 1, held
        loop_tid = next(e.thread for e in sink.events if e.kind == "thread_start")
        assert held[0].thread == loop_tid  # a greenlet's action, on the loop's OS thread
        gate.step()
        deadline = time.monotonic() + 5
        while gate.released < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert gate.released == 1 and gate.wait_until_held(1, 5) and len(gate.held) == 1
        gate.disable()
        answers = []
        for s in socks:
            answers.append(read_to_eof(s))
            s.close()
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    starts = [e for e in sink.events if e.kind == "task_start"]
    assert len({e.data["greenlet"] for e in starts}) == 2
    assert {e.thread for e in starts} == {loop_tid}


def test_processes_a_child_s_actions_are_held_and_stepped_by_the_parent_s_gate() -> None:
    """Stepping across processes: the child's recv, send and close wait in the gate the
    window steps (the parent's), each held with the child's thread, one per step."""
    with running_server("processes", policy="close") as (server, sink):
        gate = server.gate
        gate.enable()
        out: dict = {}
        thread = client(server.address, out)
        held: list = []
        for _ in range(8):  # accept, the parent's close of its copy, then the child's
            assert gate.wait_until_held(1, 5)
            held.append(gate.held[0])
            released = gate.released
            gate.step()
            deadline = time.monotonic() + 5
            while gate.released == released and time.monotonic() < deadline:
                time.sleep(0.001)  # (the step taken before the next look)
            if held[-1].action == "close" and len([h for h in held if h.action == "close"]) == 2:
                break
        thread.join(10)
        (fork,) = sink.of_kind("fork")
    child = fork.data["child"]
    assert [(h.action, h.thread == child) for h in held] == [
        ("accept", False), ("close", False), ("recv", True), ("send", True), ("close", True)]
    assert out["answer"].startswith(b"HTTP/1.1 200 OK")
    held_events = [e for e in sink.of_kind("gate") if e.data["state"] == "held"]
    assert [e.thread == child for e in held_events] == [False, False, True, True, True]


def test_stop_releases_a_held_server() -> None:
    with running_server("epoll") as (server, sink):
        server.gate.enable()
        sock = socket.create_connection(server.address[:2], timeout=5)
        assert server.gate.wait_until_held(1, 5)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        sock.close()
