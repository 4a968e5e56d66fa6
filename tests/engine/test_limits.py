"""Process limits are one connection's answer: a thread that cannot start gets its
connection a 503, and the server accepts on.

The server runs as an ordinary user (uid 65534, from the system python's venv): the
limit on processes does not bind root.
"""
from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest

from engine.trace import read_trace
from tests.conftest import read_to_eof, serving

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
          "--inh-caps=-all", "--bounding-set=-all"]


def tasks_of_nobody() -> int:
    """Threads of every process of uid 65534: what RLIMIT_NPROC counts."""
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
            threads = re.search(r"^Threads:\s+(\d+)", status, re.M)
            if uid and threads and uid.group(1) == "65534":
                count += int(threads.group(1))
    return count


def answer(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_to_eof(s)


def limited(mode: str, user_python: str, trace: Path, nproc: int | None = None):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    limit = ["prlimit", f"--nproc={nproc}:{nproc}"] if nproc else []
    return serving([*NOBODY, *limit, user_python, "-m", "engine", "serve", "--port", "0",
                    "--mode", mode, "--states", "off", "--packets", "off",
                    "--cpu-interval", "0", "--trace", str(trace)], cwd="/", env=env)


@pytest.mark.parametrize("mode,what,words", [
    ("threaded", "thread_failed", b"no thread"), ("processes", "fork_failed", b"no process")])
def test_a_thread_or_process_that_cannot_start_costs_one_connection(
        user_python: str, shared_dir: Path, mode: str, what: str, words: bytes) -> None:
    """The limit of tasks (RLIMIT_NPROC) reached: the connection that finds no thread, or
    no child process, gets 503 and the server serves on."""
    # How many tasks the idle server has, run once without a limit.
    others = tasks_of_nobody()
    with limited(mode, user_python, shared_dir / "first.jsonl") as (_, port):
        assert answer(port).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.2)  # that connection's thread is gone
        idle = tasks_of_nobody() - others
    # Again, with room for one connection's thread and no second.
    trace = shared_dir / "t.jsonl"
    with limited(mode, user_python, trace, nproc=others + idle + 1) as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as held:
            held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: its thread stays
            assert held.recv(65536).startswith(b"HTTP/1.1 200 ")
            refused = answer(port)
            assert refused.startswith(b"HTTP/1.1 503 "), refused[:100]
            assert words in refused
        deadline = time.monotonic() + 5
        while tasks_of_nobody() > others + idle and time.monotonic() < deadline:
            time.sleep(0.05)  # the kept-alive connection's thread (or child) ends
        assert answer(port).startswith(b"HTTP/1.1 200 ")
        assert proc.poll() is None
    failed = [e for e in read_trace(trace).events
              if e.kind == "error" and e.data.get("what") == what]
    assert len(failed) == 1


def test_recording_under_any_limit_of_tasks_serves_or_says_why(user_python: str,
                                                               shared_dir: Path) -> None:
    """``serve --trace`` as an ordinary user (derived segments: the kernel side's process,
    its threads, the feed's) under every limit of tasks from one to fourteen more than
    the user has: it either refuses to record, saying so and why (no thread for the
    trace's writer), or serves a request and stops cleanly; never a traceback, never a
    server down. (Between the two, what could not start is said: at least one limit
    shows a "not started", "not recorded" or "not sampled" line.)"""
    import subprocess
    others = tasks_of_nobody()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    served = refused = said_missing = 0
    for extra in range(1, 15):
        nproc = others + extra
        trace = shared_dir / f"t{extra}.jsonl"
        proc = subprocess.Popen([*NOBODY, "prlimit", f"--nproc={nproc}:{nproc}", user_python,
                                 "-m", "engine", "serve", "--port", "0", "--trace", str(trace)],
                                cwd="/", env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # type: ignore[union-attr]
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
            if found is not None:
                assert answer(int(found.group(1))).startswith(b"HTTP/1.1 200 ")
                proc.terminate()
        finally:
            out, err = proc.communicate(timeout=30)
        said = first + out + err
        assert "Traceback" not in said, (nproc, said[-2000:])
        if found is None:
            assert proc.returncode == 2 and "cannot write trace" in said \
                and "ulimit -u" in said, (nproc, said[-1000:])
            refused += 1
        else:
            assert proc.returncode == 0, (nproc, said[-1000:])
            served += 1
            said_missing += any(f"{w} (" in said for w in ("not started", "not recorded",
                                                            "not sampled", "could not start"))
    assert refused and served  # both ends of the range were reached
    assert said_missing  # and some limit between them left something unstarted, said
