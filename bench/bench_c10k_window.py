"""The live window with 10,000 concurrent connections on its epoll engine.

    python3 bench/bench_c10k_window.py [--idle 9998] [--seconds 8]
                                       [--views io,plots,sockets,sequence,lifecycle]
                                       [--screenshots DIR]

For each view: the window (offscreen) starts its own engine as a user's does
(epoll, level-triggered, the default truth for this user: as root captured
packets, the tracepoint and sock_diag), shows the view, and another process opens
``--idle`` keep-alive connections to it (each asks once, then stays open, silent)
and holds them while ``sockscope load`` asks at 200 requests a second on 2 more (9,998
and 2: the engine's default limit of 10,000 connections at once). Measured
from the window's own 33 ms drain timer, as it runs:

- the frame interval (how often the window got to take its events and redraw;
  30 frames a second is 33.3 ms), median and 95th percentile;
- the frame's work (draining the engine, folding the events, the view's redraw),
  median and 95th percentile;

each while the connections open ("opening", until the window's model has them all:
it may lag the engine) and while they are held under the load ("holding", steady);
how long after the last connection opened the window had them all, how many it held
at most, and how many events it took. ``--screenshots DIR`` keeps each view as drawn
at the end (to judge whether it stays readable with ten thousand of anything).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))



def _quantiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    ordered = sorted(values)
    return statistics.median(ordered) * 1e3, ordered[int(0.95 * (len(ordered) - 1))] * 1e3


def epoll_window(view: str):  # type: ignore[no-untyped-def]
    """The app, and its window (offscreen, 1280x800) with its own engine as a user's
    starts it on epoll, level-triggered, showing ``view``; and the engine's URL."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from visualizer.app import MODES, MainWindow
    app = QApplication.instance() or QApplication([])
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    settings.setValue("mode", next(label for label, mode, trigger in MODES
                                   if mode == "epoll" and trigger == "level"))
    window = MainWindow(engine=True, settings=settings)
    window.resize(1280, 800)
    window.show()
    window.show_view(view)
    url = window.host.url if window.host else None
    if not url:
        raise SystemExit("the window's engine did not start")
    return app, window, url


def bench_view(view: str, idle: int, seconds: float, shots: Path | None) -> dict:
    from PySide6.QtCore import QTimer

    app, window, url = epoll_window(view)
    phase = ["starting"]
    frames: dict[str, list[float]] = {"opening": [], "holding": []}
    work: dict[str, list[float]] = {"opening": [], "holding": []}
    last = [time.perf_counter()]
    original = window._drain

    most_open = [0]
    caught_up = [float("nan")]  # seconds from "all held" to the window having them all
    held_at = [0.0]

    def timed() -> None:
        start = time.perf_counter()
        original()
        end = time.perf_counter()
        bucket = "opening" if phase[0] == "caught up?" else phase[0]
        if bucket in frames:
            frames[bucket].append(start - last[0])
            work[bucket].append(end - start)
        if phase[0] == "caught up?" and window.timeline.state.open_connections >= idle:
            phase[0] = "holding"  # the window has taken every connection's events: steady
            caught_up[0] = time.monotonic() - held_at[0]
        if phase[0] == "holding":
            most_open[0] = max(most_open[0], window.timeline.state.open_connections)
        last[0] = start

    window.drain_timer.timeout.disconnect()
    window.drain_timer.timeout.connect(timed)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen([sys.executable, "-m", "engine", "idle", url, "--connections",
                               str(idle), "--seconds", str(seconds)], stdout=subprocess.PIPE,
                              text=True, env=env)
    phase[0] = "opening"
    said: list[str] = []
    load: subprocess.Popen | None = None
    load_out = ""
    deadline = time.monotonic() + 120 + seconds

    def watch() -> None:
        nonlocal load
        line = holder.stdout.readline() if phase[0] == "opening" else ""  # type: ignore[union-attr]
        if line:
            said.append(line.strip())
            phase[0] = "caught up?"  # every connection is open; the window may still be busy
            held_at[0] = time.monotonic()
            load = subprocess.Popen(
                [sys.executable, "-m", "engine", "load", url, "--clients", "2", "--requests",
                 str(int(100 * max(1.0, seconds - 1))), "--rate", "200"],  # done before
                stdout=subprocess.PIPE, text=True,  # the holder lets go (and the window ends)
                env=env)
        if holder.poll() is not None or time.monotonic() > deadline:
            app.quit()

    # The holder's first line comes when every connection is open: read it without
    # blocking the window (a thread would take the GIL from what is measured).
    os.set_blocking(holder.stdout.fileno(), False)  # type: ignore[union-attr]

    def poll_holder() -> None:
        try:
            watch()
        except (BlockingIOError, TypeError):
            pass

    ticker = QTimer()
    ticker.timeout.connect(poll_holder)
    ticker.start(50)
    app.exec()
    ticker.stop()
    os.set_blocking(holder.stdout.fileno(), True)  # type: ignore[union-attr]
    rest = holder.communicate(timeout=60)[0]
    said += [ln.strip() for ln in rest.splitlines() if ln.strip()]
    if load is not None:
        load_out = load.communicate(timeout=60)[0]
    model_open = most_open[0]
    events = window.recorded
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(shots / f"c10k-window-{view}.png"))
    window.close()
    out = {"view": view, "events": events, "open_connections_seen": model_open,
           "caught_up_s": round(caught_up[0], 2),
           "holder": "; ".join(said),
           "load": "; ".join(ln for ln in load_out.splitlines()
                             if ln.startswith(("requests:", "elapsed:", "latency:")))}
    for name in ("opening", "holding"):
        fm, fp = _quantiles(frames[name])
        wm, wp = _quantiles(work[name])
        span = sum(frames[name])
        out[name] = {"frames": len(frames[name]),
                     "fps": round(len(frames[name]) / span, 1) if span else 0.0,
                     "interval_median_ms": round(fm, 1),
                     "interval_p95_ms": round(fp, 1), "work_median_ms": round(wm, 1),
                     "work_p95_ms": round(wp, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 9,998 idle and the load's 2: 10,000 connections at once, the engine's default limit
    parser.add_argument("--idle", type=int, default=9_998)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--views", default="io,plots,sockets,sequence,lifecycle")
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp())  # never the user's settings
    from engine.limits import raise_open_files
    raise_open_files(args.idle + 256)
    print(f"{args.idle:,} idle connections, then {args.seconds:g} s held under 200 req/s")
    print("view       phase    frames  frames/s  interval p50/p95 ms  work p50/p95 ms")
    for view in args.views.split(","):
        r = bench_view(view, args.idle, args.seconds, args.screenshots)
        for name in ("opening", "holding"):
            p = r[name]
            print(f"{view:10} {name:8} {p['frames']:6}  {p['fps']:8.1f}  "
                  f"{p['interval_median_ms']:7.1f} / "
                  f"{p['interval_p95_ms']:7.1f}     {p['work_median_ms']:6.1f} / "
                  f"{p['work_p95_ms']:6.1f}")
        print(f"{'':10} the window had every connection {r['caught_up_s']:g} s after they "
              f"were all open; {r['events']:,} events; its model had at most "
              f"{r['open_connections_seen']:,} connections open while they were held; "
              f"holder: {r['holder']}; load: {r['load']}")


if __name__ == "__main__":
    main()
