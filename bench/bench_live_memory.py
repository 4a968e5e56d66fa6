"""The live window's memory under a long load: what a lecturer's load demo costs.

    python3 bench/bench_live_memory.py [--seconds 300] [--stores spill,memory]
                                       [--connections 50] [--view io]

For each store, the window (offscreen) starts its own engine as a user's does (epoll,
level-triggered, the default truth for this user), shows ``--view``, and ``wrk -t1
-c50`` runs against it for ``--seconds``. Every second the window's own timer samples
the process's memory (``RssAnon``: what only this process holds and the system cannot
take back; ``RssFile``: file pages it has mapped, which the system can drop and read
again), the events in the window's log and the frame interval. Reported per store:
events taken, memory at 1 minute and at the end, what an event costs (the slope of
``RssAnon`` over the second half of the run, which leaves out what any window holds
at the start), the frame interval (median, 95th percentile), and what the window had not
taken at the end (it takes what it folds in 10 ms a tick): the events waiting, and the
disk their lines held in its channel's file.

The stores: ``spill`` (the window's: each event's text and its columns go to unnamed
files as they arrive) and ``memory`` (the text and the columns kept in memory, as
before 2026-12-06): the peer in the same run, on the same machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def memory_kb() -> dict[str, int]:
    """This process's RssAnon and RssFile, in kB (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of (events, kB): bytes per event."""
    if len(points) < 2:
        return float("nan")
    xs, ys = [p[0] for p in points], [p[1] * 1024 for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


def bench_store(store: str, seconds: float, connections: int, view: str) -> dict:
    from PySide6.QtCore import QTimer

    from bench_c10k_window import epoll_window
    from visualizer.model import Timeline
    app, window, url = epoll_window(view)
    if store == "memory":  # the peer: the same window, its log keeping it all in memory
        window.show_timeline(Timeline(), "")
        window.live_button.setChecked(True)
    samples: list[tuple[float, int, dict[str, int]]] = []
    frames: list[float] = []
    last = [time.perf_counter()]
    original = window._drain

    def timed() -> None:
        start = time.perf_counter()
        original()
        frames.append(start - last[0])
        last[0] = start

    window.drain_timer.timeout.disconnect()
    window.drain_timer.timeout.connect(timed)
    began = time.monotonic()
    wrk = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    behind = [0, 0.0]  # events waiting, MB of them on disk: sampled (quitting closes the window)

    def sample() -> None:
        samples.append((time.monotonic() - began, len(window.timeline.log), memory_kb()))
        if window.host is not None and window.host.channel is not None:
            behind[:] = [window.host.waiting(), window.host.channel.events._written / 2**20]
        if wrk.poll() is not None:
            app.quit()

    sampler = QTimer()
    sampler.timeout.connect(sample)
    sampler.start(1000)
    app.exec()
    sampler.stop()
    said = wrk.communicate()[0]
    events = len(window.timeline.log)
    where = window.timeline.log.data_where
    waiting, backlog_mb = behind
    window.close()
    app.processEvents()
    half = [(n, m["RssAnon"]) for t, n, m in samples if t >= seconds / 2]
    at_minute = next((m for t, _, m in samples if t >= 60), samples[-1][2])
    frames = sorted(frames[3:])  # the first frames: the window and its engine starting
    requests = next((line.split()[0] for line in said.splitlines()
                     if "requests in" in line), "?")
    for t, n, m in samples[9::10]:  # the course of it, on stderr
        print(f"  {store} {t:5.0f} s {n:>10,} events  anon {m['RssAnon'] / 1024:7.1f} MB  "
              f"file {m['RssFile'] / 1024:7.1f} MB", file=sys.stderr)
    return {"store": f"{store} ({where})", "events": events, "wrk requests": requests,
            "anon MB at 1 min": at_minute["RssAnon"] / 1024,
            "anon MB at end": samples[-1][2]["RssAnon"] / 1024,
            "file MB at end": samples[-1][2]["RssFile"] / 1024,
            "bytes/event (anon slope)": slope(half),
            "waiting at end": waiting, "backlog file MB": backlog_mb,
            "frame median ms": statistics.median(frames) * 1e3 if frames else float("nan"),
            "frame p95 ms": frames[round(0.95 * (len(frames) - 1))] * 1e3 if frames else
            float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--stores", default="spill,memory")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--view", default="io")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child's single store
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.one:
        print(json.dumps(bench_store(args.one, args.seconds, args.connections, args.view)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as config:
        env = dict(os.environ, XDG_CONFIG_HOME=config)
        for store in args.stores.split(","):  # each in a process of its own: clean memory
            done = subprocess.run([sys.executable, __file__, "--one", store, "--seconds",
                                   str(args.seconds), "--connections", str(args.connections),
                                   "--view", args.view], capture_output=True, text=True,
                                  env=env, cwd=ROOT)
            if done.returncode:
                raise SystemExit(done.stderr[-2000:])
            print("\n".join(line for line in done.stderr.splitlines()
                            if line.startswith("  ")), file=sys.stderr)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"`python3 bench/bench_live_memory.py --seconds {args.seconds:g} --stores "
          f"{args.stores} --connections {args.connections} --view {args.view}`\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{v:,.1f}" if isinstance(v, float) else
                                f"{v:,}" if isinstance(v, int) else str(v)
                                for v in row.values()) + " |")


if __name__ == "__main__":
    main()
