"""``sockscope compare``: real engines, real idle connections, real /proc numbers.

Every run here is the command a lecturer types, in a process of its own; the
numbers asserted are the lessons the command exists to show (a thread per
idle connection, a busy loop's syscalls, select's FD_SETSIZE, the first server's
one client), not the exact figures, which depend on the machine.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.compare import IdleConnections, Row

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the engine's threads, processes and memory come from "
                                       "Linux's /proc")

REQUIRED = {"mode", "req_s", "p50_ms", "p99_ms", "cpu_pct", "threads", "rss_mb",
            "syscalls_per_request", "errors"}


def compare(tmp_path: Path, *args: str, limits: tuple[int, int] | None = None,
            timeout: float = 240) -> tuple[subprocess.CompletedProcess, dict | None]:
    out = tmp_path / "compare.json"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))

    def limit() -> None:
        if limits:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)

    # As a user runs it: the sockscope command (the picture is drawn by the window's package).
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "compare", *args,
                           "--json", str(out)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=limit)
    return done, (json.loads(out.read_text()) if out.exists() else None)


def rows_of(data: dict | None) -> dict[str, dict]:
    assert data is not None
    for row in data["modes"]:
        assert REQUIRED <= row.keys()
    return {row["mode"]: row for row in data["modes"]}


def test_idle_connections_cost_threads_and_processes_but_not_epoll(tmp_path: Path) -> None:
    png = tmp_path / "compare.png"
    done, data = compare(tmp_path, "--modes", "threaded,nonblocking,epoll,processes",
                         "--clients", "2", "--requests", "50", "--idle", "300", "--png", str(png))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = rows_of(data)
    assert list(rows) == ["threaded", "nonblocking", "epoll", "processes"]
    for mode, row in rows.items():
        assert row["errors"] == 0 and row["ok"] == 100, (mode, row)
        assert row["idle_held"] == 300, (mode, row)
        assert row["req_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"], (mode, row)
        assert row["events_dropped"] == 0, (mode, row)
        assert f"compare: {mode}: 300 idle connections held" in done.stderr
    # A thread per connection: one per idle connection, and their memory.
    assert rows["threaded"]["threads"] >= 300
    assert rows["epoll"]["threads"] <= 4 and rows["nonblocking"]["threads"] <= 4
    assert rows["threaded"]["rss_mb"] > rows["epoll"]["rss_mb"]
    # A process per connection: the engine's children are counted, each once.
    assert rows["processes"]["processes"] >= 301
    assert rows["processes"]["rss_mb"] > rows["threaded"]["rss_mb"]
    # The busy loop tries every idle socket on every sweep: recv() calls that say EAGAIN.
    epoll_calls = rows["epoll"]["syscalls_per_request"]
    assert 2 <= epoll_calls < 10  # a recv and a send each, and the waits
    assert rows["nonblocking"]["syscalls_per_request"] > 5 * epoll_calls

    def cpu_per_request(row: dict) -> float:
        return row["cpu_pct"] / 100 * row["elapsed_s"] / row["ok"]
    assert cpu_per_request(rows["nonblocking"]) > cpu_per_request(rows["epoll"])
    # The table a person reads says the same.
    table = done.stdout
    assert "2 clients x 50 requests, keep-alive, 300 idle keep-alive connections" in table
    line = next(ln for ln in table.splitlines() if ln.startswith("threaded "))
    assert f"{rows['threaded']['threads']:,}" in line.split()
    # The slide: 1920x1080, every mode's colour drawn.
    from PySide6.QtGui import QColor, QImage

    from visualizer.compare_chart import PALETTE
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1920, 1080)
    seen = {image.pixelColor(x, y).name() for x in range(0, 1920, 3) for y in range(150, 1040, 3)}
    assert {QColor(c).name() for c in PALETTE[:4]} <= seen


def test_select_cannot_watch_past_fd_setsize_and_poll_can(tmp_path: Path) -> None:
    done, data = compare(tmp_path, "--modes", "select,poll", "--clients", "1", "--requests",
                         "5", "--idle", "1100")
    assert done.returncode == 1, done.stdout + done.stderr  # errors: said in the exit code
    rows = rows_of(data)
    select, poll = rows["select"], rows["poll"]
    # The descriptors past 1023 are refused with 503, each an fd_setsize error event.
    assert select["idle_refused"] >= 1100 - 1024
    assert select["idle_held"] + select["idle_refused"] == 1100
    assert select["server_errors"].get("fd_setsize", 0) >= select["idle_refused"]
    assert select["errors"] > 0 and "fd_setsize" in done.stdout
    # poll() takes any descriptor, and hands the kernel all of them on every call.
    assert poll["errors"] == 0 and poll["idle_held"] == 1100
    assert poll["fds_scanned_per_request"] > 1100


def test_the_first_server_serves_one_idle_client_and_no_one_else(tmp_path: Path) -> None:
    started = time.monotonic()
    done, data = compare(tmp_path, "--modes", "single", "--clients", "1", "--requests", "2",
                         "--idle", "3", "--timeout", "1")
    assert done.returncode == 1
    row = rows_of(data)["single"]
    assert row["idle_held"] == 1 and row["idle_unanswered"] == 2
    assert row["ok"] == 0 and row["failed"] == 2 and row["p50_ms"] is None
    assert row["errors"] == row["failed"] + row["idle_unanswered"]
    assert "timed out" in done.stdout
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("args, says", [
    (["--modes", "epoll,carrier-pigeon"], "unknown mode carrier-pigeon (modes: "),
    (["--idle", "-1"], "--idle cannot be negative"),
    (["--clients", "0"], "--clients and --requests must be at least 1"),
])
def test_bad_arguments_are_refused_before_any_engine_starts(tmp_path: Path, args: list[str],
                                                             says: str) -> None:
    done, data = compare(tmp_path, *args, timeout=30)
    assert done.returncode == 2 and says in done.stderr and data is None
    assert "serving at" not in done.stderr and "Traceback" not in done.stderr


def test_an_output_it_cannot_write_is_refused_first(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "compare", "--png",
                           str(tmp_path / "missing" / "c.png")], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "no folder" in done.stderr
    assert "serving at" not in done.stderr


def test_the_engine_alone_says_who_draws_the_picture(tmp_path: Path) -> None:
    """The engine never imports Qt: its own entry point sends --png to `sockscope`."""
    done = subprocess.run([sys.executable, "-m", "engine", "compare", "--png",
                           str(tmp_path / "c.png")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "run it as 'sockscope compare'" in done.stderr
    assert "serving at" not in done.stderr and not (tmp_path / "c.png").exists()


def test_a_scale_series_runs_every_mode_at_every_point(tmp_path: Path) -> None:
    png = tmp_path / "scale.png"
    done, data = compare(tmp_path, "--modes", "threaded,epoll", "--clients", "1",
                         "--requests", "20", "--scale", "10,200", "--png", str(png))
    assert done.returncode == 0, done.stdout + done.stderr
    assert data is not None and data["scale"] == [10, 200]
    got = {(r["mode"], r["idle_asked"]): r for r in data["modes"]}
    assert set(got) == {(m, n) for m in ("threaded", "epoll") for n in (10, 200)}
    assert all(r["errors"] == 0 and r["idle_held"] == r["idle_asked"] for r in got.values())
    # Threads grow with the idle connections in one mode, not in the other.
    # (190 more idle clients: 190 more threads; a short-lived thread alive at one sample
    # and not the other moves it by one or two)
    assert got["threaded", 200]["threads"] - got["threaded", 10]["threads"] >= 185
    assert got["epoll", 200]["threads"] == got["epoll", 10]["threads"]
    assert any(line.split()[:2] == ["mode", "idle"] for line in done.stdout.splitlines())
    from PySide6.QtGui import QImage
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1920, 1080)


def test_scale_is_refused_with_idle_or_garbage(tmp_path: Path) -> None:
    for args, says in ((["--scale", "10,lots"], "a list of numbers"),
                       (["--scale", "10", "--idle", "5"], "--scale replaces --idle"),
                       (["--scale", "-5"], "0 or more")):
        done, data = compare(tmp_path, *args, timeout=30)
        assert done.returncode == 2 and says in done.stderr and data is None, done.stderr


def test_too_few_descriptors_for_the_idle_connections_is_said_not_crashed(tmp_path: Path) -> None:
    done, data = compare(tmp_path, "--modes", "epoll", "--idle", "1000", limits=(256, 512),
                         timeout=30)
    assert done.returncode == 2 and data is None
    assert "the open-files limit is 512 (hard 512)" in done.stderr


def _serve(*args: str, limits: tuple[int, int]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limits))


def _until_serving(proc: subprocess.Popen, open_files: bool = True) -> tuple[list[str], int]:
    """What it said up to its open-files line (when one is due), and its port (from its
    first line, where whoever starts it reads it)."""
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("SockScope serving"), first
    said = [first.strip()]
    for _ in range(20 if open_files else 0):
        said.append(proc.stdout.readline().strip())
        if said[-1].startswith("open files:"):
            break
    return said, int(first.split(" at ")[1].split(":")[2].split("/")[0])


def test_the_engine_raises_its_open_files_limit_and_holds_past_the_old_one() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"this machine's hard open-files limit is {hard}, below the test's 4096")
    proc = _serve("--mode", "epoll", "--max-connections", "1000", limits=(256, 4096))
    held = None
    try:
        said, port = _until_serving(proc)
        assert "open files: soft limit raised from 256 to 4096 (--max-connections 1000)" in said
        # 400 connections at once: more than the 256 descriptors it started with.
        held = IdleConnections("127.0.0.1", port, 400)
        result = held.open(30)
        assert result.held == 400, result.reasons
        assert held.still_open() == 400
    finally:
        if held is not None:
            held.close()
        proc.terminate()
        proc.wait(15)


def test_a_hard_limit_below_max_connections_is_said_at_start() -> None:
    proc = _serve("--mode", "epoll", limits=(256, 512))
    try:
        said, _ = _until_serving(proc)
        assert any(line.startswith("open files: the limit is 512") and "about 448 connections"
                   in line and "--max-connections 10000" in line for line in said), said
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_row_reads_back_from_its_json() -> None:
    row = Row(mode="epoll", req_s=1.0, threads=2, notes=["x"])
    assert Row(**json.loads(json.dumps(row.as_json()))) == row


def test_idle_holds_its_connections_and_lets_go(tmp_path: Path) -> None:
    proc = _serve("--mode", "epoll", limits=resource.getrlimit(resource.RLIMIT_NOFILE))
    try:
        _, port = _until_serving(proc, open_files=False)  # (its limit is already what it is)
        done = subprocess.run([sys.executable, "-m", "engine", "idle",
                               f"http://127.0.0.1:{port}/", "--connections", "50",
                               "--seconds", "0.5"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "idle: 50 held, 0 refused, 0 unanswered" in done.stdout
        assert "idle: 50 still open at the end" in done.stdout
        bad = subprocess.run([sys.executable, "-m", "engine", "idle", "ftp://x/",
                              "--connections", "0"], capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2 and "an http:// URL" in bad.stderr
    finally:
        proc.terminate()
        proc.wait(15)


def test_connections_never_answered_are_counted_once() -> None:
    """A server that accepts nothing: the kernel completes the handshakes (its accept
    queue), nobody answers. Each connection is unanswered, once: never also "held", nor
    "closed by the server" when it goes."""
    import socket
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        idle = IdleConnections("127.0.0.1", listener.getsockname()[1], 5)
        try:
            result = idle.open(0.5)
            assert (result.held, result.refused, result.unanswered) == (0, 0, 5)
            assert result.reasons == {"no answer in time": 5}
            assert len(idle.waiting) == 5 and not idle.socks
            assert idle.still_open() == 0
        finally:
            idle.close()
        assert not idle.waiting
