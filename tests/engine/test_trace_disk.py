"""A trace on a disk that fills up or fails: the server never notices.

On ENOSPC, EIO, EFBIG (any OSError) the writer stops writing for good, cuts
the file back to its last whole line, ends it with one ``dropped`` event
counting what is missing, says so once on standard error, and only counts
later events: nothing piles up in memory, and ``serve`` exits 0 with its
summary. Real limits only: a file size limit (``prlimit --fsize``, any user;
Python ignores SIGXFSZ, so writes fail with EFBIG), ``/dev/full`` (ENOSPC),
and as root a tiny tmpfs (ENOSPC from a real file system).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from engine.clients import LoadConfig, run_load
from engine.events import Probe
from engine.trace import TraceWriter, read_trace

ROOT = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "engine", "serve", "--port", "0"]
SUMMARY = re.compile(r"stopped: (\d+) connections, (\d+) responses, .*, (\d+) events recorded "
                     r"\((\d+) dropped; the trace was cut short: ([^)]+)\)")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="file size limits, /dev/full and /proc are Linux's")


def check_cut_trace(path: Path, stdout: str, reason: str, limit: int | None = None
                    ) -> tuple[int, int]:
    """The file is whole, ends with one ``dropped`` line, and agrees with the summary.
    Returns (events recorded, events dropped) as the summary says."""
    found = SUMMARY.search(stdout)
    assert found, f"no summary saying the trace was cut short in:\n{stdout}"
    recorded, dropped = int(found.group(3)), int(found.group(4))
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "the last line was cut"
    if limit is not None:
        assert len(raw) <= limit
    trace = read_trace(path)
    assert trace.problems == []
    last = trace.events[-1]
    assert last.kind == "dropped" and last.src == "engine", last
    assert last.data["sink"] == "trace" and last.data["reason"] == reason
    assert last.data["count"] > 0
    markers = [e for e in trace.events if e.kind == "dropped" and e.src == "engine"
               and e.data.get("sink") == "trace"]
    assert sum(e.data["count"] for e in markers) == dropped > 0
    assert len(trace.events) - len(markers) == recorded > 0
    return recorded, dropped


@linux_only
@pytest.mark.skipif(not shutil.which("prlimit"), reason="needs prlimit (util-linux)")
def test_serve_with_a_file_size_limit_stops_recording_and_serves_on(tmp_path: Path) -> None:
    path, limit = tmp_path / "t.jsonl", 150_000  # 1,200 requests take megabytes
    done = subprocess.run(["prlimit", f"--fsize={limit}", *SERVE, "--trace", str(path),
                           "--load=--clients 4 --requests 300", "--exit-after-load"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "requests: 1200 ok, 0 failed" in done.stdout
    assert re.search(rf"sockscope: trace {re.escape(str(path))}: File too large after \d+ "
                     r"events; recording stopped, the server serves on", done.stderr), done.stderr
    assert done.stderr.count("recording stopped") == 1  # said once, when it happened
    check_cut_trace(path, done.stdout, "EFBIG", limit)
    assert SUMMARY.search(done.stdout).group(2) == "1200"  # type: ignore[union-attr]


# Emits events of many sizes to a TraceWriter under a file size limit, for many
# limits, and prints what each run left: the writer itself, with a real limit.
_SWEEP = r"""
import os, resource, sys, time
import orjson
from engine.events import Probe
from engine.trace import TraceWriter
folder, limits = sys.argv[1], [int(a) for a in sys.argv[2:]]
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
for limit in limits:
    path = os.path.join(folder, f"{limit}.jsonl")
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    writer = TraceWriter(path, flush_interval=0.005, batch=16)
    probe = Probe()
    probe.add_sink(writer)
    for i in range(300):
        probe.emit("recv", "c", 5, 1, bytes=i, pad="x" * (i * 7 % 150))
    deadline = time.monotonic() + 5
    while writer.failed is None and writer.written < 300 and time.monotonic() < deadline:
        time.sleep(0.005)
    for i in range(200):
        probe.emit("recv", "c", 5, 1, bytes=i, pad="y" * (i * 13 % 150))
    writer.close()
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    print(orjson.dumps({"limit": limit, "path": path, "written": writer.written,
                        "dropped": writer.dropped,
                        "errno": writer.failed.errno if writer.failed else None}).decode(),
          flush=True)
"""


@linux_only
def test_the_writer_keeps_whole_lines_and_one_true_count_at_any_limit(tmp_path: Path) -> None:
    """Whatever byte the limit falls on, the file is whole lines ending with the
    dropped count, and written + dropped is every event emitted."""
    limits = list(range(900, 12_000, 211))
    done = subprocess.run([sys.executable, "-c", _SWEEP, str(tmp_path), *map(str, limits)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [r["limit"] for r in runs] == limits
    for run in runs:
        assert run["errno"] == errno.EFBIG, run
        assert run["written"] + run["dropped"] == 500, run
        summary = (f"stopped: 0 connections, 0 responses, 0 bad requests, 0 EAGAIN, "
                   f"{run['written']} events recorded ({run['dropped']} dropped; "
                   f"the trace was cut short: File too large)")
        check_cut_trace(Path(run["path"]), summary, "EFBIG", run["limit"])
    assert done.stderr.count("recording stopped, the server serves on") == len(limits)


def _fd_of(path: Path) -> int:
    """The descriptor of this process that has ``path`` open (Linux /proc)."""
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                return int(name)
    raise AssertionError(f"{path} is not open")


@linux_only
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_at_the_start_is_refused_at_once() -> None:
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError) as caught:
        TraceWriter("/dev/full")
    assert caught.value.errno == errno.ENOSPC
    assert len(os.listdir("/proc/self/fd")) == before  # nothing left open


@linux_only
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_writer_whose_file_becomes_dev_full_only_counts(tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]
                                                          ) -> None:
    path = tmp_path / "t.jsonl"
    writer = TraceWriter(path, flush_interval=0.01, batch=10)
    probe = Probe()
    probe.add_sink(writer)
    try:
        for i in range(50):
            probe.emit("recv", "c", 5, 1, bytes=i)
        deadline = time.monotonic() + 10
        while writer.written < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.written == 50 and writer.failed is None
        # The disk is full from now on: the writer's descriptor now writes to /dev/full.
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            os.dup2(full, _fd_of(path))
        finally:
            os.close(full)
        for i in range(100):
            probe.emit("recv", "c", 5, 1, bytes=i)
        while writer.failed is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert isinstance(writer.failed, OSError) and writer.failed.errno == errno.ENOSPC
        assert (writer.written, writer.dropped) == (50, 100)
        assert writer._thread.is_alive()  # the writer lives on (and only counts)
        # Every later event is counted at once and kept nowhere, from any thread.
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]

            def emit_many() -> None:
                for i in range(50_000):
                    probe.emit("recv", "c", 5, 1, bytes=i)

            threads = [threading.Thread(target=emit_many) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            grown = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
        assert grown < 256 * 1024, f"{grown} bytes kept for events that were dropped"
        assert writer.dropped == 100 + 200_000
    finally:
        writer.close()  # does not raise
    assert (writer.written, writer.dropped) == (50, 200_100)
    err = capfd.readouterr().err
    assert err.count(f"sockscope: trace {path}: No space left on device after 50 events; "
                     "recording stopped, the server serves on") == 1
    trace = read_trace(path)  # the lines written before the disk filled, whole
    assert [e.data["bytes"] for e in trace.events] == list(range(50))
    # No room even for the line saying why: the reader says the trace did not end in order.
    assert len(trace.problems) == 1 and "its disk filled up" in trace.problems[0]


@contextlib.contextmanager
def tiny_tmpfs(size: str = "256k") -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="sockscope-full-"))
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(folder)], capture_output=True, text=True, timeout=30)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        try:
            yield folder
        finally:
            if subprocess.run(["umount", str(folder)], timeout=30).returncode != 0:
                subprocess.run(["umount", "-l", str(folder)], timeout=30)
    finally:
        folder.rmdir()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@linux_only
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="mounting a tiny tmpfs (a real full disk) needs root")
def test_serve_on_a_full_disk_serves_on_with_flat_memory() -> None:
    with tiny_tmpfs() as folder:
        path = folder / "t.jsonl"
        proc = subprocess.Popen([*SERVE, "--trace", str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # type: ignore[union-attr]
            url = re.search(r"http://127\.0\.0\.1:\d+/", first)
            assert url, first
            sent = 0

            def load(requests: int) -> None:
                nonlocal sent
                result = run_load(LoadConfig(url.group(0), clients=4, requests=requests))
                assert (result.ok, result.failed) == (4 * requests, 0)
                sent += 4 * requests

            load(500)  # megabytes of events: the 256 KiB disk is full
            deadline = time.monotonic() + 10
            size = -1
            while time.monotonic() < deadline:  # the writer has given up: the file stays put
                time.sleep(0.2)
                if path.stat().st_size == size and shutil.disk_usage(folder).free < 8192:
                    break
                size = path.stat().st_size
            else:
                raise AssertionError(f"the trace never filled the disk ({size} bytes)")
            load(500)  # warm: caches, connection tables
            before = _rss_kib(proc.pid)
            deadline = time.monotonic() + 3
            for _ in range(30):  # about 3 s of load, bounded
                load(250)
                if time.monotonic() > deadline:
                    break
            grown = _rss_kib(proc.pid) - before
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate(timeout=10)
        assert grown < 8 * 1024, f"the server grew {grown} KiB after the disk filled"
        assert proc.returncode == 0, err[-2000:]
        assert "Traceback" not in err
        assert re.search(rf"sockscope: trace {re.escape(str(path))}: No space left on device "
                         r"after \d+ events; recording stopped, the server serves on", err), err
        assert err.count("recording stopped") == 1
        check_cut_trace(path, out, "ENOSPC")
        assert SUMMARY.search(out).group(2) == str(sent)  # type: ignore[union-attr]


def test_a_lesson_recorded_on_a_full_disk_is_refused_not_shown_with_a_hole(
        tmp_path: Path) -> None:
    """A lesson records a run, then teaches from it: a recording the disk cut short
    would show half the story as if it were whole. `sockscope lesson` says what was
    lost and why, and exits 1 (no traceback, no picture)."""
    if shutil.which("prlimit") is None:
        pytest.skip("needs prlimit (util-linux)")
    shot = tmp_path / "step.png"
    done = subprocess.run(
        ["prlimit", "--fsize=4000", sys.executable, "-m", "visualizer.cli", "lesson",
         "first-request", "--step", "3", "--screenshot", str(shot)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(r"the recording lost \d+ events \(File too large\)", done.stderr), done.stderr
    assert not shot.exists()
