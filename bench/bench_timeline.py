"""The timeline under a big trace, and the window under a steady stream.

    python3 bench/bench_timeline.py [--events 1000000] [--stream-seconds 10]

1. Records a real trace of about N events (server and clients, keep-alive), or
   takes one (--trace), then opens it both ways, alternating, each in a fresh
   process: as the window opens a long trace (worker processes read it; the
   first part shown, all read, then the first seek to the end folds every
   event) and in order (one pass that reads and folds, the peer); then random
   seeks (median and worst), and peak memory (the process, its workers).
2. Feeds the window (offscreen) 50,000 events per second in 33 ms batches,
   as the channel does, and reports the frame interval (median, 95th
   percentile) and the events per second it kept up with.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def record(events: int, path: Path) -> None:
    requests = max(1, events // 6)  # about six server+client events per request
    clients = 20
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--states", "off",
                    "--packets", "off",
                    f"--load=--clients {clients} --requests {requests // clients}",
                    "--exit-after-load", "--trace", str(path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=1800)


def bench_trace(path: Path, how: str) -> dict[str, float]:
    """Open ``path`` as ``how`` says, in this (fresh) process, and measure it.

    "in-order": ``open_trace(path, workers=1)``, one pass that reads, checks and folds
    (every snapshot built), the way every trace opened before 2026-12-07.
    "window": as the window opens a long trace (``Reading``: worker processes read parts
    and send back the log's columns): the first part shown, everything read, then the
    first seek to the end, which folds every event once.
    Then random seeks, and the peak memory of this process and of its workers."""
    from visualizer.model import Timeline, open_trace
    from visualizer.model.reader import Reading
    from visualizer.model.timeline import spacing_for
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    if how == "in-order":
        timeline, _, _ = open_trace(path, workers=1)
        out["first_view_s"] = out["end_shown_s"] = time.perf_counter() - t0  # (nothing before)
    else:
        reading = Reading.start(path)
        assert reading is not None, "not big enough to be read by workers"
        reading.take(wait=True)
        out["first_view_s"] = time.perf_counter() - t0  # the first part: shown at its start
        while not reading.done:
            reading.take(wait=True)
        assert not reading.failed
        reading.close()
        out["read_s"] = time.perf_counter() - t0
        timeline = Timeline(reading.log, every=spacing_for(reading.estimated_events))
        timeline.live = False
        t1 = time.perf_counter()
        timeline.seek(len(timeline.log) - 1)
        out["first_seek_to_end_s"] = time.perf_counter() - t1
        out["end_shown_s"] = time.perf_counter() - t0
    t2 = time.perf_counter()
    timeline.seek(0)
    out["seek_start_ms"] = (time.perf_counter() - t2) * 1e3
    rng = random.Random(7)
    seeks = []
    for _ in range(50):
        target = rng.randrange(len(timeline.log))
        s = time.perf_counter()
        timeline.seek(target)
        seeks.append(time.perf_counter() - s)
    out.update(events=len(timeline.log), log_mb=timeline.log.nbytes / 2**20,
               seek_median_ms=statistics.median(seeks) * 1e3, seek_max_ms=max(seeks) * 1e3,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               rss_anon_mb_at_end=_rss_anon_mb(), every=timeline.every,
               workers_peak_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return out


def _rss_anon_mb() -> float:
    """This process's own memory now (``RssAnon``: not the file pages of its maps, which
    the system drops when it needs the room), or -1 where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return -1.0


def bench_trace_apart(path: Path, how: str) -> dict[str, float]:
    """``bench_trace`` in a fresh interpreter (its peak memory its own)."""
    got = subprocess.run([sys.executable, __file__, "--open", str(path), "--how", how],
                         cwd=ROOT, check=True, capture_output=True, text=True, timeout=3600)
    return json.loads(got.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_stream(seconds: float, rate: int = 50_000) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.events import Event
    from visualizer.app import MainWindow
    app = QApplication.instance() or QApplication([])
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine=False, settings=settings)
    window.show()
    window.live_button.setChecked(True)
    window.timeline.live = True
    seq = iter(range(1, 10**9))
    frames: list[float] = []
    start = time.perf_counter()
    last = [start]
    fed = [0]

    def feed() -> None:
        now = time.perf_counter()
        frames.append(now - last[0])
        last[0] = now
        due = int((now - start) * rate) - fed[0]
        batch = []
        for _ in range(due):
            n = next(seq)
            conn = f"127.0.0.1:{40000 + n % 500}>127.0.0.1:7890"
            batch.append(Event(n, time.monotonic_ns(), "server", "recv", conn, 10 + n % 500,
                               1, {"bytes": 93}))
        fed[0] += due
        window.add_events(batch)
        if now - start > seconds:
            app.quit()

    timer = QTimer()
    timer.timeout.connect(feed)
    timer.start(33)
    app.exec()
    timer.stop()
    window.close()
    elapsed = time.perf_counter() - start
    frames = frames[1:]
    frames.sort()
    return {"seconds": elapsed, "events_per_s": fed[0] / elapsed,
            "frame_median_ms": statistics.median(frames) * 1e3,
            "frame_p95_ms": frames[int(0.95 * len(frames))] * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    parser.add_argument("--trace", type=Path, help="open this recorded trace instead of "
                        "recording one (a 10M-event one takes minutes to record)")
    parser.add_argument("--rounds", type=int, default=3, help="opens of each way, alternating")
    parser.add_argument("--open", type=Path, help=argparse.SUPPRESS)  # (one measurement)
    parser.add_argument("--how", default="window", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.open:
        print(json.dumps(bench_trace(args.open, args.how)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.trace or Path(tmp) / "big.jsonl"
        if not args.trace:
            record(args.events, path)
        runs: dict[str, list[dict[str, float]]] = {"window": [], "in-order": []}
        for _ in range(args.rounds):
            for how in runs:
                runs[how].append(bench_trace_apart(path, how))
        size = path.stat().st_size / 2**20
    print(f"`python3 bench/bench_timeline.py --events {args.events} "
          f"--stream-seconds {args.stream_seconds:g} --rounds {args.rounds}`"
          f"{f' (--trace {args.trace})' if args.trace else ''}\n")
    print(f"{runs['window'][0]['events']:,.0f} events, {size:,.0f} MB; medians [min–max] of "
          f"{args.rounds} opens each way, alternating, each in a fresh process\n")
    names = sorted({k for how in runs for r in runs[how] for k in r})
    print("| measure | window (workers, then the first seek to the end) | in order (the peer) |")
    print("|---|---|---|")
    for k in names:
        cells = []
        for how in runs:
            values = [r[k] for r in runs[how] if k in r]
            cells.append(f"{statistics.median(values):,.2f} [{min(values):,.2f}–{max(values):,.2f}]"
                         if values else "–")
        print(f"| {k} | {cells[0]} | {cells[1]} |")
    if args.stream_seconds > 0:
        stream = bench_stream(args.stream_seconds)
        print("\n| stream into the window | value |\n|---|---|")
        for k, v in stream.items():
            print(f"| {k} | {v:,.2f} |")


if __name__ == "__main__":
    main()
