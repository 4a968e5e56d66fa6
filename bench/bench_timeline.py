"""The timeline under a big trace, and the window under a steady stream.

    python3 bench/bench_timeline.py [--events 1000000] [--stream-seconds 10]

1. Records a real trace of about N events (server and clients, keep-alive),
   then measures: reading it, building the log and timeline, the first seek
   to the end (folds everything once), and random seeks afterwards (median
   and worst), and the process's peak memory.
2. Feeds the window (offscreen) 50,000 events per second in 33 ms batches,
   as the channel does, and reports the frame interval (median, 95th
   percentile) and the events per second it kept up with.
"""
from __future__ import annotations

import argparse
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


def bench_trace(path: Path) -> dict[str, float]:
    from visualizer.model import open_trace
    t0 = time.perf_counter()
    timeline, _, _ = open_trace(path)  # reads, indexes and folds (every snapshot built)
    t1 = time.perf_counter()
    timeline.seek(0)
    t2 = time.perf_counter()
    timeline.seek(len(timeline.log) - 1)
    t3 = time.perf_counter()
    rng = random.Random(7)
    seeks = []
    for _ in range(50):
        target = rng.randrange(len(timeline.log))
        s = time.perf_counter()
        timeline.seek(target)
        seeks.append(time.perf_counter() - s)
    return {"events": len(timeline.log), "open_s": t1 - t0, "seek_start_ms": (t2 - t1) * 1e3,
            "seek_end_ms": (t3 - t2) * 1e3, "log_mb": timeline.log.nbytes / 2**20, "seek_median_ms": statistics.median(seeks) * 1e3,
            "seek_max_ms": max(seeks) * 1e3,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        record(args.events, path)
        result = bench_trace(path)
    print(f"`python3 bench/bench_timeline.py --events {args.events} "
          f"--stream-seconds {args.stream_seconds:g}`\n")
    print("| trace | value |\n|---|---|")
    for k, v in result.items():
        print(f"| {k} | {v:,.2f} |")
    stream = bench_stream(args.stream_seconds)
    print("\n| stream into the window | value |\n|---|---|")
    for k, v in stream.items():
        print(f"| {k} | {v:,.2f} |")


if __name__ == "__main__":
    main()
