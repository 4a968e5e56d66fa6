"""Opening a big trace on every core (``visualizer.model.reader``): worker processes
read parts of the file and send back the log's columns. What they make must be what
reading the file in order makes, event for event, state for state; and what they
cannot read (a bad line, a blank one, a cut one, an end line too early) must get
the same error, naming the same line, or the same recovery.

The trace is a real recording (``sockscope serve --trace``, derived segments dated
in the past: the file is not in time order); the parts are made small (a few
kilobytes) so that a file of a few thousand lines is cut in many places.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import orjson
import pytest

from engine.trace import TraceError
from tests.conftest import record_derived
from tests.engine.test_as_a_user import NOBODY
from tests.engine.test_limits import tasks_of_nobody
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.model.reader import Reading, read_parallel
import visualizer.model.timeline as timeline_module
from visualizer.model.timeline import spacing_for

SMALL = {"workers": 2, "part": 3000, "parallel_from": 0, "fold": False}  # many parts, two workers


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_derived(tmp_path_factory.mktemp("reader") / "run.jsonl", requests=12)


def times_and_seqs(path: Path) -> list[tuple[int, int]]:
    return [(row["t_ns"], row["seq"]) for row in map(orjson.loads, path.read_bytes().splitlines()[1:])
            if "t_ns" in row]


def same_log(a, b) -> None:  # type: ignore[no-untyped-def]
    """Two logs hold the same events in the same order, and say so by their columns too."""
    assert len(a) == len(b)
    for name in ("t_ns", "seq", "fd", "thread"):
        assert np.array_equal(a.column(name), b.column(name)), name
    for codes, names in (("kind", "kinds"), ("conn", "conns"), ("src", "sources")):
        left = [getattr(a, names).names[c] for c in a.column(codes).tolist()]
        right = [getattr(b, names).names[c] for c in b.column(codes).tolist()]
        assert left == right, codes
    assert [e.to_dict() for e in a] == [e.to_dict() for e in b]


@pytest.mark.parametrize("part", [3000, 1 << 20], ids=["many parts", "one part"])
def test_the_parts_make_what_reading_in_order_makes(recorded: Path, part: int) -> None:
    keys = times_and_seqs(recorded)
    assert keys != sorted(keys), "the recording should reach back in time (derived segments)"
    serial, header, problems = open_trace(recorded, workers=1)
    parallel, header2, problems2 = open_trace(recorded, **{**SMALL, "part": part})
    assert type(parallel.log._store).__name__ == "_FileStore"
    assert not parallel.log._decoded  # (the workers' columns: no event made here)
    assert (header2, problems2) == (header, problems) and header["end"]["events"] == len(keys)
    same_log(parallel.log, serial.log)
    # Folded, the same state at every snapshot's place and at the end.
    for index in [0, 7, len(keys) // 3, len(keys) // 2, len(keys) - 1]:
        a, b = parallel.seek(index), serial.seek(index)
        assert a == b and a is not b
    assert len(parallel.state.connections) == 3


def test_it_is_many_parts(recorded: Path) -> None:
    """(The test above is about cuts: the file must be cut in many places.)"""
    seen: list[int] = []
    got = read_parallel(recorded, seen.append, workers=2, part=3000, parallel_from=0)
    assert got is not None
    assert len(seen) > 10 and seen == sorted(seen) and seen[-1] == len(got[0])


def test_not_folded_it_stays_before_the_first_event(recorded: Path) -> None:
    timeline, _, _ = open_trace(recorded, **SMALL)
    assert timeline.cursor == -1 and not timeline.state.connections
    assert len(timeline._snaps) == 1  # nothing folded yet
    timeline.seek(len(timeline.log) - 1)
    folded, _, _ = open_trace(recorded, workers=1)
    assert timeline.state.connections.keys() == folded.state.connections.keys()


def test_a_small_file_is_read_in_order(recorded: Path) -> None:
    """Below the threshold, no worker is started (they cost more than they save)."""
    assert read_parallel(recorded, workers=2) is None


def edited(recorded: Path, out: Path, number: int, line: bytes) -> Path:
    lines = recorded.read_bytes().splitlines(keepends=True)
    lines[number - 1] = line
    out.write_bytes(b"".join(lines))
    return out


@pytest.mark.parametrize("where", ["early", "middle", "last event"])
def test_a_bad_line_in_any_part_is_named_as_in_order(recorded: Path, tmp_path: Path,
                                                      where: str) -> None:
    lines = recorded.read_bytes().splitlines(keepends=True)
    number = {"early": 3, "middle": len(lines) // 2, "last event": len(lines) - 1}[where]
    row = orjson.loads(lines[number - 1])
    row["fd"] = "nine"
    bad = edited(recorded, tmp_path / "bad.jsonl", number, orjson.dumps(row) + b"\n")
    with pytest.raises(TraceError) as in_order:
        open_trace(bad, workers=1)
    with pytest.raises(TraceError) as in_parts:
        open_trace(bad, **SMALL)
    assert in_parts.value.line == in_order.value.line == number
    assert str(in_parts.value) == str(in_order.value)


@pytest.mark.parametrize("damage", ["blank line", "end line early", "cut short", "no end line",
                                    "end line miscounts", "garbage"])
def test_what_the_parts_cannot_read_gets_what_reading_in_order_gets(
        recorded: Path, tmp_path: Path, damage: str) -> None:
    lines = recorded.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    if damage == "blank line":
        lines.insert(middle, b"\n")
    elif damage == "end line early":
        lines.insert(middle, lines[-1])
    elif damage == "cut short":
        lines = lines[:-1]
        lines[-1] = lines[-1][:-30]
    elif damage == "no end line":
        lines = lines[:-1]
    elif damage == "end line miscounts":
        lines[-1] = orjson.dumps({"end": {**orjson.loads(lines[-1])["end"], "events": 5}}) + b"\n"
    else:
        lines[middle] = b"\x00\x01 not json \r\x7f\n"
    bad = tmp_path / "damaged.jsonl"
    bad.write_bytes(b"".join(lines))
    try:
        expected = open_trace(bad, workers=1)
    except TraceError as exc:
        with pytest.raises(TraceError) as caught:
            open_trace(bad, **SMALL)
        assert str(caught.value) == str(exc) and exc.line
        return
    got = open_trace(bad, **SMALL)
    assert got[1:] == expected[1:], "the same header and the same problems said"
    assert got[2] or damage == "blank line"  # (blank lines are skipped, unsaid)
    same_log(got[0].log, expected[0].log)


def test_folded_ahead_the_cursor_stays_and_seeks_find_the_same_states(recorded: Path) -> None:
    """``fold_ahead`` builds the snapshots a slice at a time, the cursor where it was;
    a seek then starts from them and finds what folding from the start finds."""
    timeline, _, _ = open_trace(recorded, **SMALL)
    timeline.every = 50  # (the recording is short: many snapshots)
    folded, _, _ = open_trace(recorded, workers=1)
    timeline.seek(120)
    slices = 0
    while timeline.fold_ahead(0.0):  # the smallest slice: one stretch a call
        slices += 1
        assert slices < 10_000
    n = len(timeline.log)
    assert slices >= n // 50 - 4 and timeline.cursor == 120
    assert timeline.folded == (n // 50) * 50 and timeline._snap_index[-1] == (n // 50) * 50 - 1
    assert timeline.seek(120) == folded.seek(120)
    assert timeline.seek(n - 1) == folded.seek(n - 1) and len(timeline.state.connections) == 3
    for index in ((n // 50) * 50 - 1, 260, 51, 49):
        assert timeline.seek(index) == folded.seek(index), index


def test_an_ordinary_users_installed_sockscope_reads_with_its_own_workers(
        user_python: str, recorded: Path, tmp_path: Path) -> None:
    """As uid 65534, SockScope installed (not editable) in a venv of the system's python3:
    the workers it starts are its own interpreter's and its own installed reader's, and
    read the file as this process does."""
    import os
    import subprocess
    folder = Path(tempfile.mkdtemp(prefix="sockscope-reader-"))
    try:
        folder.chmod(0o755)
        trace = folder / "run.jsonl"
        trace.write_bytes(recorded.read_bytes())
        trace.chmod(0o644)
        script = ("import sys, visualizer.model.reader as r; "
                  "got = r.read_parallel(sys.argv[1], workers=2, part=3000, parallel_from=0); "
                  "print(r.__file__, len(got[0]) if got else 'in order')")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run([*NOBODY, user_python, "-c", script, str(trace)], cwd="/",
                              capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        where, count = done.stdout.split()
        assert where.startswith(str(Path(user_python).parents[1])), where  # the venv's own
        expected = len(open_trace(recorded, workers=1)[0].log)
        assert int(count) == expected
        # No process nor thread to start (``ulimit -u`` reached): read in order, the same.
        # (numpy's OpenBLAS starts threads of its own as it is imported, unless told not to.)
        script = ("import sys, visualizer.model as m, visualizer.model.reader as r; "
                  "kw = dict(workers=2, part=3000, parallel_from=0); "
                  "print(r.read_parallel(sys.argv[1], **kw), "
                  "len(m.open_trace(sys.argv[1], fold=False, **kw)[0].log))")
        # (RLIMIT_NPROC counts every task of the user's: other tests' servers as uid 65534
        # too. One task more than those is this interpreter alone, whatever runs beside.)
        read_in_order = 0
        for extra in (1, 2, 3):
            nproc = tasks_of_nobody() + extra
            done = subprocess.run(["prlimit", f"--nproc={nproc}:{nproc}", *NOBODY, user_python,
                                   "-c", script, str(trace)], cwd="/", capture_output=True,
                                  text=True, timeout=120,
                                  env={**env, "OPENBLAS_NUM_THREADS": "1"})
            assert done.returncode == 0 and "Traceback" not in done.stderr, (nproc, done.stderr)
            got, count = done.stdout.split()[0], done.stdout.split()[-1]
            assert count == str(expected), done.stdout
            read_in_order += got == "None"
        assert read_in_order, "no limit left the reader without a worker: nothing tested"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_long_trace_s_snapshots_are_evenly_spaced_and_never_thinned() -> None:
    """Ten million events: snapshots every 6,000 (under the cap of 2,000 with room), where
    the live thinning would have left the start with one every few million."""
    assert spacing_for(1_000_000) == 1000 and spacing_for(50_000) == 1000
    for n in (1_800_001, 5_000_000, 10_101_264, 40_000_000):
        every = spacing_for(n)
        assert every % 1000 == 0 and n / every <= 0.9 * 2000 < n / (every - 1000), n
    assert spacing_for(10_101_264) == 6000


@pytest.mark.parametrize("slices", [1, 2, 3, 50])
def test_parts_that_reach_back_refold_what_was_folded_ahead(
        recorded: Path, monkeypatch: pytest.MonkeyPatch, slices: int) -> None:
    """Parts taken one at a time, folded ahead a few slices of 7 events between them (a
    stretch between snapshots is 20): a part whose first events are older than the log's
    end changes folded history, and what was folded from there (snapshots, the fold's own
    place mid-stretch) is folded again."""
    monkeypatch.setattr(timeline_module, "_SLICE", 7)
    reading = Reading.start(recorded, workers=2, part=1500, parallel_from=0)
    assert reading is not None
    timeline = Timeline(reading.log, every=20)
    timeline.live = False
    reached_back = 0
    while not reading.done:
        before = len(reading.log)
        changed = reading.take_into(timeline, wait=True)
        reached_back += changed is not None and changed < before
        for _ in range(slices):
            timeline.fold_ahead(0.0)  # (one slice a call)
    reading.close()
    assert not reading.failed and reached_back, "no part reached back: nothing tested"
    folded, _, _ = open_trace(recorded, workers=1)
    n = len(folded.log)
    for index in (n - 1, n // 2, n // 3, 20 * (n // 40) - 1, 7):
        assert timeline.seek(index) == folded.seek(index), index


def test_a_late_event_before_fold_aheads_place_is_folded_in(
        recorded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that comes late, into the stretch ``fold_ahead`` is in the middle of:
    its state is folded again from the last snapshot, so the request counts."""
    monkeypatch.setattr(timeline_module, "_SLICE", 7)
    events = list(open_trace(recorded, workers=1)[0].log)
    k = next(i for i, e in enumerate(events) if e.kind == "request" and i > 40)
    assert k < 190 < len(events) - 20
    timeline = Timeline(EventLog(events[:k] + events[k + 1:]), every=200)
    timeline.live = False
    while timeline._ahead is None or timeline._ahead[0] <= k:
        timeline.fold_ahead(0.0)  # (7 events a call: stops inside the first stretch)
    assert timeline._snap_index == [-1]
    timeline.add([events[k]])
    while timeline.fold_ahead(0.0):
        pass
    whole = Timeline(EventLog(events))
    assert timeline.seek(len(events) - 1) == whole.seek(len(events) - 1)
    assert sum(c.requests for c in timeline.state.connections.values()) == 36
