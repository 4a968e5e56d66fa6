"""The I/O, plots and sequence views under 1,000 connections and a million events.

    python3 bench/bench_views.py [--stream-seconds 10] [--rate 50000] [--events 1000000]

1. Feeds the window (offscreen) a synthetic epoll server's events for 1,000
   connections, in 33 ms batches as the channel does, with the plots view
   (then the I/O view, then the sequence view with each new connection's
   segments in the stream) shown, and reports the frame interval (median, 95th
   percentile) and the time the view's own ``show_state`` took; "window
   alone" is the same stream with the view drawing nothing (the window's
   own work: folding, snapshots, the tables).
2. Builds a synthetic log of N events (1,000 connections) and times one
   ``show_state`` of each view at the end of it: the first (cold: the view's
   caches read what they need, within their per-call budget), how many calls
   and how long until everything is read, then a warm one, one after a step
   back and one after a seek to the middle.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = "127.0.0.1:7890"


def synthetic(conns: int = 1000, t0: int = 10**12, start_seq: int = 1,
              gap_ns: int = 20_000, packets: bool = False) -> Iterator[object]:
    """An endless epoll (level) server's events: 1,000 keep-alive connections.

    Each round: one ``epoll_wait`` reporting 8 ready fds, then for each a recv
    and a send (and now and then a close and a new accept); an
    ``accept_queue`` sample every 500 events. With ``packets``, each new
    connection's segments too (handshake, a request, its answer, teardown),
    for the sequence view.
    """
    from engine.events import Event
    seq = start_seq
    t = t0
    tid = 1

    def ev(kind: str, conn: str | None = None, fd: int = -1, src: str = "server",
           **data: object) -> Event:
        nonlocal seq, t
        seq += 1
        t += gap_ns
        return Event(seq, t, src, kind, conn, fd, tid, data)

    def story(conn: str) -> Iterator[object]:
        """A short connection's ten segments, as a capture reports them."""
        client_port = int(conn.split(">")[0].rsplit(":", 1)[1])
        for sender, flags, sq, ack, length in (
                ("c", "SYN", 0, 0, 0), ("s", "SYN|ACK", 0, 1, 0), ("c", "ACK", 1, 1, 0),
                ("c", "PSH|ACK", 1, 1, 93), ("s", "ACK", 1, 94, 0),
                ("s", "PSH|ACK", 1, 94, 2012), ("c", "ACK", 94, 2013, 0),
                ("s", "FIN|ACK", 2013, 94, 0), ("c", "FIN|ACK", 94, 2014, 0),
                ("c", "ACK", 95, 2014, 0)):
            ports = (client_port, 7890) if sender == "c" else (7890, client_port)
            yield ev("packet", conn, src="capture", sport=ports[0], dport=ports[1],
                     flags=flags, tcp_seq=sq, ack=ack, len=length, win=512,
                     origin="captured")

    yield ev("mode", mode="epoll", trigger="level", policy="keep-alive", multiplexer="epoll")
    yield ev("listen", None, 6, host="127.0.0.1", port=7890, backlog=4096, reuseaddr=True)
    yield ev("thread_start", name="loop")
    yield ev("epoll_ctl", None, 6, op="ADD", mask="IN")
    fds = {}
    port = 40000
    for k in range(conns):
        conn = f"127.0.0.1:{port + k}>{SERVER}"
        fd = 10 + k
        fds[fd] = conn
        yield ev("accept", conn, fd, peer=f"127.0.0.1:{port + k}")
        yield ev("epoll_ctl", conn, fd, op="ADD", mask="IN")
    port += conns
    n = 0
    order = sorted(fds)
    while True:
        ready = [order[(n * 8 + j * 131) % len(order)] for j in range(8)]
        yield ev("epoll_wait", timeout=0.25, ready=[(fd, 1) for fd in ready])
        for fd in ready:
            conn = fds[fd]
            yield ev("recv", conn, fd, bytes=93)
            yield ev("send", conn, fd, bytes=2012, wanted=2012)
            n += 1
            if n % 97 == 0:  # a connection ends, a new one takes its fd
                yield ev("close", conn, fd, reason="peer closed")
                conn = f"127.0.0.1:{port}>{SERVER}"
                port += 1
                fds[fd] = conn
                if packets:
                    yield from story(conn)
                yield ev("accept", conn, fd, peer=conn.split(">")[0])
                yield ev("epoll_ctl", conn, fd, op="ADD", mask="IN")
            if n % 250 == 0:
                yield ev("accept_queue", src="kernel", length=n % 7, backlog=4096,
                         source="observed")


def bench_stream(view_name: str, seconds: float, rate: int, draw: bool = True,
                 packets: bool = False) -> dict[str, float]:
    """Stream into the window with ``view_name`` shown; ``draw=False``: the view's
    show_state does nothing (what the window costs by itself)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from visualizer.app import MainWindow
    app = QApplication.instance() or QApplication([])
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine=False, settings=settings)
    window.show()
    if not window.show_view(view_name):
        raise SystemExit(f"no view named {view_name}")
    view = window.views[view_name]
    window.live_button.setChecked(True)
    window.timeline.live = True
    source = synthetic(1000, t0=time.monotonic_ns(), packets=packets)
    frames: list[float] = []
    draws: list[float] = []
    start = time.perf_counter()
    last = [start]
    fed = [0]
    original = view.show_state

    def timed(timeline):  # type: ignore[no-untyped-def]
        s = time.perf_counter()
        if draw:
            original(timeline)
        draws.append(time.perf_counter() - s)

    view.show_state = timed  # type: ignore[method-assign]

    def feed() -> None:
        now = time.perf_counter()
        frames.append(now - last[0])
        last[0] = now
        due = int((now - start) * rate) - fed[0]
        batch = []
        stamp = time.monotonic_ns()
        for _ in range(due):
            e = next(source)
            batch.append(e._replace(t_ns=stamp))  # type: ignore[attr-defined]
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
    frames = sorted(frames[1:])
    draws = sorted(draws[1:])
    return {"events": fed[0], "events_per_s": fed[0] / elapsed,
            "open_connections": window.timeline.state.open_connections,
            "frame_median_ms": statistics.median(frames) * 1e3,
            "frame_p95_ms": frames[int(0.95 * len(frames))] * 1e3,
            "show_state_median_ms": statistics.median(draws) * 1e3,
            "show_state_p95_ms": draws[int(0.95 * len(draws))] * 1e3}


def big_timeline(events: int):  # type: ignore[no-untyped-def]
    from itertools import islice

    from visualizer.model import Timeline
    timeline = Timeline()
    timeline.live = False
    source = synthetic(1000)
    left = events
    while left > 0:
        batch = list(islice(source, min(65536, left)))
        timeline.log.extend(batch)
        left -= len(batch)
    timeline.seek(len(timeline.log) - 1)
    return timeline


def bench_big(timeline, view_name: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from visualizer.views import view_classes
    app = QApplication.instance() or QApplication([])
    cls = next(c for c in view_classes() if c.name == view_name)
    view = cls()
    view.resize(1280, 720)
    view.show()
    app.processEvents()
    end = len(timeline.log) - 1
    timeline.seek(end)

    def once() -> float:
        s = time.perf_counter()
        view.show_state(timeline)
        return (time.perf_counter() - s) * 1e3

    first = once()
    calls, total = 1, first
    while not getattr(view, "complete", True) and calls < 10_000:
        total += once()
        calls += 1
    app.processEvents()
    warm = statistics.median([once() for _ in range(5)])
    timeline.seek(end - 1)
    back = once()
    timeline.seek(end // 2)
    middle = once()
    timeline.seek(end)
    view.close()
    return {"first_ms": first, "calls_to_complete": calls, "until_complete_ms": total,
            "warm_ms": warm, "step_back_ms": back, "seek_middle_ms": middle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"`python3 bench/bench_views.py --stream-seconds {args.stream_seconds:g} "
          f"--rate {args.rate} --events {args.events}`\n")
    print("| stream, 1,000 connections | plots | io | sequence (with packets, "
          "segments travelling) | window alone |\n|---|---|---|---|---|")
    plots = bench_stream("plots", args.stream_seconds, args.rate)
    io = bench_stream("io", args.stream_seconds, args.rate)
    sequence = bench_stream("sequence", args.stream_seconds, args.rate, packets=True)
    alone = bench_stream("io", args.stream_seconds, args.rate, draw=False)
    for k in plots:
        print(f"| {k} | {plots[k]:,.1f} | {io[k]:,.1f} | {sequence[k]:,.1f} | "
              f"{alone[k]:,.1f} |")
    s = time.perf_counter()
    timeline = big_timeline(args.events)
    built = time.perf_counter() - s
    # A million events are millions of live objects: one full collection of them
    # takes about 0.4 s whenever it happens. Measure the views, not that.
    gc.collect()
    gc.freeze()
    print(f"\n| one show_state, {len(timeline.log):,} events (log built and folded in "
          f"{built:.1f} s) | plots | io |\n|---|---|---|")
    plots = bench_big(timeline, "plots")
    io = bench_big(timeline, "io")
    for k in plots:
        print(f"| {k} | {plots[k]:,.1f} | {io[k]:,.1f} |")


if __name__ == "__main__":
    main()
