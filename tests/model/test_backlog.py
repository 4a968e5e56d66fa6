"""What a child sent and the window has not taken yet: in order, none lost, and past a
memory budget waiting in a file, not in memory. Real threads, a real file, a real
child process writing as fast as it can."""
from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from engine.events import Event
from visualizer.channel import Backlog, ProcessChannel

ROOT = Path(__file__).resolve().parents[2]


def line(n: int) -> bytes:
    return orjson.dumps(Event(n, 1000 + n, "server", "recv", f"c{n % 5}", 7, 1,
                              {"bytes": n, "pad": "x" * (n % 50)}).to_dict()) + b"\n"


def test_a_line_longer_than_a_chunk_comes_back_whole(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(Backlog, "CHUNK", 64)
    backlog = Backlog(memory=10)
    sent = [line(n) for n in (1, 2, 3)] + [line(4)[:-2] + b"}"] + [line(60), line(7)]
    for raw in sent:
        backlog.put(raw)
    assert backlog.spilled_ever == 5  # (the first one waits in memory)
    assert [e.seq for e in backlog.take_events(100)] == [1, 2, 3, 4, 60, 7]


def put_lines(backlog: Backlog, numbers: range, many: bool, most: list[int]) -> None:
    """Put each line alone, or (``many``) in groups of 1 to 300 as the channel's reader
    does with what one read brought."""
    rng = random.Random(numbers.start)
    n = numbers.start
    while n < numbers.stop:
        group = [line(k) for k in range(n, min(numbers.stop, n + rng.randint(1, 300)))]
        if many:
            backlog.put_block(b"".join(group))
        else:
            for raw in group:
                backlog.put(raw)
        n += len(group)
        most[0] = max(most[0], backlog.in_memory)


@pytest.mark.parametrize("many", [False, True], ids=["line-by-line", "in-groups"])
def test_lines_wait_in_a_file_past_the_budget_and_come_back_in_order(many: bool) -> None:
    """A 4 kB budget; 10,000 lines put while nobody takes (all but the first few go to
    the file), then 10,000 more by a thread while the window takes batches of any size:
    every line comes back once, in order, parsed, and memory never held much more than
    the budget (put in groups: one group more)."""
    backlog = Backlog(memory=4096)
    total = 20_000
    most = [0]
    put_lines(backlog, range(1, 10_001), many, most)
    slack = 300 * len(line(49)) if many else len(line(1))
    assert backlog.in_memory <= 4096 + slack and backlog.spilled_ever > 9_000

    def writer() -> None:
        put_lines(backlog, range(10_001, total + 1), many, most)

    thread = threading.Thread(target=writer)
    thread.start()
    got: list[Event] = []
    rng = random.Random(3)
    deadline = time.monotonic() + 60
    while len(got) < total and time.monotonic() < deadline:
        got += backlog.take_events(rng.choice([1, 7, 100, 5000]))
        most[0] = max(most[0], backlog.in_memory)
    thread.join(10)
    assert [e.seq for e in got] == list(range(1, total + 1))
    assert got[-1].data == {"bytes": total, "pad": "x" * (total % 50)}
    assert backlog.bad_lines == 0
    assert most[0] <= 4096 + slack + Backlog.CHUNK  # the budget, and one chunk read back
    assert len(backlog) == 0 and backlog.take(10) == []
    assert backlog._written == 0  # all read back: the file started over (the disk given back)


LIMITED = """
import resource, sys
sys.path.insert(0, sys.argv[1])
from tests.model.test_backlog import line
from visualizer.channel import Backlog
# (Python ignores SIGXFSZ: a write past the limit fails with EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
backlog = Backlog(memory=2048)
seqs = []
for n in range(1, 3001, 5):
    group = [line(k) for k in range(n, n + 5)]
    if sys.argv[2] == "in-groups":
        backlog.put_block(b"".join(group))
    else:
        for raw in group:
            backlog.put(raw)
    if (n + 4) % 500 == 0:
        seqs += [e.seq for e in backlog.take_events(300)]
seqs += [e.seq for e in backlog.take_events(10**6)]
print(seqs)
print(len(backlog), backlog.spill_failed.errno)
"""


@pytest.mark.parametrize("how", ["line-by-line", "in-groups"])
def test_a_disk_that_refuses_the_backlog_loses_nothing(tmp_path, how: str) -> None:  # type: ignore[no-untyped-def]
    """A file-size limit (EFBIG past 50 kB, what a full disk does to a write): the
    lines after it wait in memory, after those in the file; every one comes back, in
    order (a group whose write the limit cut: whole, from memory)."""
    import errno
    done = subprocess.run([sys.executable, "-c", LIMITED, str(ROOT), how], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seqs, left = done.stdout.splitlines()
    assert orjson.loads(seqs) == list(range(1, 3001))
    assert left.split() == ["0", str(errno.EFBIG)]


def test_a_window_that_falls_behind_costs_disk_not_memory() -> None:
    """A real engine serves a load and records everything (``--trace -``) while nobody
    takes its events: the channel reads them all as they come (the engine never
    waits), holds at most its budget (here 1 MB) in memory, the rest in its file, and
    gives every one back when the window drains: the engine's sequence, whole."""
    channel = ProcessChannel(["serve", "--port", "0", "--states", "off", "--packets", "off",
                              "--cpu-interval", "0", "--load=--clients 4 --requests 1500",
                              "--exit-after-load", "--trace", "-"], "engine", memory=1 << 20)
    try:
        deadline = time.monotonic() + 120
        while channel.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert channel.proc.returncode == 0, list(channel.messages)
        channel._threads[0].join(10)  # the reader has put the last line
        assert channel.header is not None
        waiting = len(channel.events)
        assert waiting > 30_000
        assert channel.events.in_memory <= (1 << 20) + Backlog.CHUNK
        assert channel.events.spilled_ever > waiting // 2
        got: list[Event] = []
        while len(channel.events) and time.monotonic() < deadline:
            got += channel.drain(7_000)
        assert len(got) == waiting and channel.bad_lines == 0
        # The trace's end line is not an event: the channel keeps what it says.
        assert channel.end is not None and channel.end["events"] == waiting
        assert channel.end["lost"] == {}
        assert sorted(e.seq for e in got) == list(range(1, waiting + 1))
        assert sum(e.kind == "response" for e in got) == 4 * 1500
    finally:
        channel.stop()


def test_the_newest_time_is_read_from_the_raw_lines_put() -> None:
    """``newest_ns`` (how far ahead of the window its source is): the greatest ``t_ns``
    among the lines put, one by one or in blocks, read without parsing them; the kernel
    side's lines come late, with older times, and never move it back."""
    backlog = Backlog(memory=1 << 20)
    assert backlog.newest_ns is None
    backlog.put(line(1))
    first = orjson.loads(line(1))["t_ns"]
    assert backlog.newest_ns == first
    block = b"".join(line(n) for n in range(2, 12))
    backlog.put_block(block)
    assert backlog.newest_ns == orjson.loads(line(11))["t_ns"] > first
    late = orjson.loads(line(3))
    late["seq"], late["t_ns"] = 1 << 40, late["t_ns"] - 1
    backlog.put_block(orjson.dumps(late) + b"\n")
    assert backlog.newest_ns == orjson.loads(line(11))["t_ns"]
    backlog.put(b'{"seq": 99, "t_ns": 987654321987654321, "kind": "recv"}\n')  # spaced JSON too
    assert backlog.newest_ns == 987654321987654321
    backlog.put(b"not an event\n")  # counted as a bad line when taken; no time here
    assert backlog.newest_ns == 987654321987654321
