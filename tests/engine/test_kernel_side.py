"""The kernel side (engine/kernelside.py): capture and the kernel's reports in a process of
their own, their events in the server's trace as if recorded in-process."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.capture.live import can_capture
from engine.kernelside import SEQ_BASE
from engine.trace import read_trace
from tests.conftest import child_pids, lines_until

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine"]
capture_ok, capture_why = can_capture()
needs_capture = pytest.mark.skipif(
    not capture_ok and not os.environ.get("CI"),
    reason=f"the kernel side runs where packets are captured (root or CAP_NET_RAW): "
           f"{capture_why}")

SHORT = "--clients 3 --requests 1 --short"


def serve_load(tmp_path: Path, name: str, *extra: str, load: str = SHORT
               ) -> tuple[subprocess.CompletedProcess[str], Path]:
    trace = tmp_path / f"{name}.jsonl"
    proc = subprocess.run([*CLI, "serve", "--port", "0", "--trace", str(trace),
                           f"--load={load}", "--exit-after-load", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, trace


def tasks_of(pid: int) -> set[int]:
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def serve_traced(trace: Path, *extra: str
                 ) -> tuple[subprocess.Popen, list[str], str, int]:  # type: ignore[type-arg]
    """``serve --trace``, once it records: the process, its first lines, its URL, and
    its one child (the kernel side)."""
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--trace", str(trace), *extra],
                            cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines, url = lines_until(proc, "recording events")
        (child,) = child_pids(proc.pid)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    return proc, lines, url, child


@needs_capture
def test_packets_and_states_are_recorded_by_another_process(tmp_path: Path) -> None:
    """While it serves, the server has one child; every captured packet was emitted by
    one of that child's threads, never the server's, and every packet and state is
    numbered apart from the server's events."""
    trace = tmp_path / "t.jsonl"
    proc, lines, url, child = serve_traced(trace)
    try:
        server_tasks, child_tasks = tasks_of(proc.pid), tasks_of(child)
        done = subprocess.run([*CLI, "load", url, *SHORT.split()], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                sum(1 for _ in open(trace, "rb")) < 40:  # the child's lines arrive
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert "packets: captured on lo (AF_PACKET)" in "".join(lines)
    events = read_trace(trace).events
    packets = [e for e in events if e.kind == "packet"]
    states = [e for e in events if e.kind == "tcp_state"]
    assert len(packets) == 3 * 10, collections.Counter(e.data["flags"] for e in packets)
    assert states
    for e in packets:  # states name no thread
        assert e.thread in child_tasks and e.thread not in server_tasks, e
    assert all(e.seq >= SEQ_BASE for e in packets + states)
    assert all(e.seq < SEQ_BASE for e in events if e.src in ("server", "client"))
    # The serving process's own samples go on (the lessons' CPU figures read them).
    cpu = [e for e in events if e.kind == "cpu"]
    assert cpu and all(e.seq < SEQ_BASE for e in cpu)
    assert not child_pids(proc.pid)  # gone with the server (which is gone too)


@needs_capture
def test_the_kernel_side_records_what_the_server_recorded_inline(tmp_path: Path) -> None:
    """The same load, recorded by the kernel side's process and inline: the same segments
    on the same connections (ten per short connection: the last ACK read before the end),
    the same states, from the same sources, and the kernel's tracepoint confirming each
    transition to the last."""
    def summary(trace: Path) -> tuple[list, collections.Counter]:
        events = read_trace(trace).events
        traced = [e for e in events if e.kind == "state_check" and e.data["source"] == "traced"]
        assert all(e.data["verdict"] == "confirms" for e in traced), traced
        ends: dict[str, set[str]] = {}
        for e in traced:
            ends.setdefault(e.conn or "", set()).add(e.data["state"])
        # Each connection traced to its end: the server's last ACK read (LAST_ACK -> CLOSED)
        # is the kernel side's last read, at its stop.
        assert len(ends) == 3 and all({"SYN_RECV", "TIME_WAIT", "CLOSED"} <= s
                                      for s in ends.values()), ends
        by_conn: dict[str, list[str]] = {}
        for e in sorted(events, key=lambda e: (e.t_ns, e.seq)):
            if e.kind == "packet":
                by_conn.setdefault(e.conn or "", []).append(e.data["flags"])
        # The run's own connections: not a socket of an earlier server on the same port,
        # still in TIME_WAIT, that the observer found in one run and not the other.
        own = {e.conn for e in events if e.kind in ("accept", "connect")}
        states = collections.Counter((e.kind, e.data["side"], e.data["state"], e.data["source"])
                                     for e in events if (e.kind == "tcp_state" or e in traced)
                                     and e.conn in own)
        return sorted(by_conn.values()), states

    (proc_out, away), (inline_out, here) = (serve_load(tmp_path, "away"),
                                            serve_load(tmp_path, "here", "--kernel-side",
                                                       "inline"))
    assert proc_out.stdout.splitlines()[1:5] == inline_out.stdout.splitlines()[1:5]
    (conns_away, states_away), (conns_here, states_here) = summary(away), summary(here)
    assert len(conns_away) == 3 and all(len(flags) == 10 for flags in conns_away), conns_away
    assert conns_away == conns_here
    assert states_away == states_here


@needs_capture
def test_a_killed_server_takes_its_kernel_side_with_it(tmp_path: Path) -> None:
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--trace", str(tmp_path / "t")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(20):
            if proc.stdout.readline().startswith("recording events"):  # type: ignore[union-attr]
                break
        (child,) = child_pids(proc.pid)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
            try:  # reaped by init, or a zombie of ours: either way it no longer runs
                if Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            except OSError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the kernel side (pid {child}) outlived its server by 10 s")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@needs_capture
def test_control_clients_see_the_kernel_sides_events(tmp_path: Path) -> None:
    """A window attached to the control port gets the captured packets too."""
    token = "k" * 24
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--control", "127.0.0.1:0",
                             "--token", token], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    record = None
    try:
        lines, url = lines_until(proc, "control:")
        address = next(line for line in lines if line.startswith("control:")).split()[1]
        trace = tmp_path / "attached.jsonl"
        record = subprocess.Popen([*CLI, "record", "--attach", address, "--token", token,
                                   "--trace", str(trace)], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (trace.exists() and trace.stat().st_size):
            time.sleep(0.05)
        done = subprocess.run([*CLI, "load", url, *SHORT.split()], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and \
                sum(b'"kind":"packet"' in line for line in open(trace, "rb")) < 30:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        if record is not None:
            record.communicate(timeout=30)
    packets = [e for e in read_trace(trace).events if e.kind == "packet"]
    assert len(packets) == 30 and all(e.seq >= SEQ_BASE for e in packets)


@pytest.mark.parametrize("packets", [
    pytest.param("captured", marks=needs_capture),
    # Derived: the kernel side is fed the server's events; the feed stops at the death
    # without ever blocking the server.
    pytest.param("derived", marks=pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="the kernel side's process is Linux's"))])
def test_a_kernel_side_that_dies_is_said_and_the_server_serves_on(tmp_path: Path,
                                                                   packets: str) -> None:
    """SIGKILL to the kernel side while it serves: the server says so (a line, and an
    ``error`` event in the trace: packets and the kernel's reports stop there), answers
    the next clients, and stops cleanly."""
    trace = tmp_path / "t.jsonl"
    proc, _, url, side = serve_traced(trace, "--packets", packets)
    try:
        os.kill(side, signal.SIGKILL)
        deadline = time.monotonic() + 10
        said = ""
        while time.monotonic() < deadline and "kernel side ended" not in said:
            said = proc.stdout.readline()  # type: ignore[union-attr]
        done = subprocess.run([*CLI, "load", url, *SHORT.split()], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert f"the kernel side ended (killed by SIGKILL): {packets} packets" in said, said
    events = read_trace(trace).events
    (ended,) = [e for e in events if e.kind == "error" and e.data["what"] == "kernel_side_ended"]
    assert ended.data["exit_code"] == -signal.SIGKILL and "serves on" in ended.data["detail"]
    assert sum(e.kind == "response" for e in events) == 3  # the clients after it were served
    assert not [e for e in events if e.kind == "packet" and e.t_ns > ended.t_ns]
