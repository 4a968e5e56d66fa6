#!/usr/bin/env python3
"""What tracing the kernel's TCP transitions costs: the same load with and without it.

    sudo python3 bench/bench_tracepoint.py           # 2,000 short connections, keep-alive, 5 rounds
    sudo python3 bench/bench_tracepoint.py --quick   # 500 short connections, 2 rounds (smoke run)

A SockScope server (``engine.create_server`` in-process, epoll) and the
built-in clients (``engine.clients.run_load``, in-process threads, as the
app's load panel runs them) do the same work with tracing off and on,
alternating, R rounds each:

* short: N connections, one request each ("Connection: close": the server
  closes first), C clients;
* keep-alive: C connections, K requests each.

With tracing on, a ``KernelTracer`` (root: tracefs) on the server's port
feeds a counting sink, so decoding and emitting every event is paid for.
Reported: the median requests/s of each, the ratio on/off, and the tracer
thread's CPU time (``time.thread_time`` in the thread: user + system, so the
kernel's side of reading the ring buffer counts), per run and per traced
transition. The kernel's own cost (the tracepoints firing, filtering and
writing the ring buffer) lands on the threads that make the transitions and
is inside the requests/s difference.

The Markdown report goes to stdout (it starts with the command line), progress
to stderr. Needs root; says so and exits 2 otherwise.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import Probe, ServerConfig, create_server  # noqa: E402
from engine.clients import LoadConfig, run_load  # noqa: E402
from engine.events import Event  # noqa: E402
from engine.kernel.tracepoint import KernelTracer  # noqa: E402
from engine.limits import raise_open_files  # noqa: E402

HOST = "127.0.0.1"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Counter:
    """A sink that counts events by kind (the cheapest sink that still receives them)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.counts[event.kind] = self.counts.get(event.kind, 0) + 1


def one_run(load: str, traced: bool, args: argparse.Namespace) -> dict:
    config = ServerConfig(mode="epoll", host=HOST, port=0, max_connections=args.clients + 100)
    server = create_server(config, Probe("server")).start()
    try:
        port = server.address[1]
        url = f"http://{HOST}:{port}/"
        if load == "short":
            lc = LoadConfig(url=url, clients=args.clients, keep_alive=False,
                            requests=max(1, args.connections // args.clients), timeout=10)
        else:
            lc = LoadConfig(url=url, clients=args.clients, keep_alive=True,
                            requests=args.requests, timeout=10)
        counter = Counter()
        tracer = None
        if traced:
            probe = Probe("kernel")
            probe.add_sink(counter)
            tracer = KernelTracer(probe, port, host=HOST).start()
        try:
            result = run_load(lc)
            time.sleep(0.1)  # the server's last closes (after the clients' own) land
        finally:
            stats = tracer.stop() if tracer is not None else {}
    finally:
        server.stop()
    if result.failed:
        log(f"  {result.failed} requests failed: {dict(result.errors)}")
    return {"rate": result.rate, "elapsed": result.elapsed, "ok": result.ok,
            "connections": result.connections, "cpu": stats.get("cpu_seconds", 0.0),
            "events": sum(counter.counts.values()), "state_check": stats.get("state_check", 0),
            "lost": stats.get("missed_events", 0) + stats.get("overrun", 0)
            + stats.get("dropped_events", 0), "bad_pages": stats.get("bad_pages", 0),
            "unattributed": stats.get("unattributed", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=None,
                        help="short connections per run, default 2000 (--quick 500)")
    parser.add_argument("--clients", type=int, default=4, help="client threads, default 4")
    parser.add_argument("--requests", type=int, default=None,
                        help="keep-alive requests per client, default 1000 (--quick 250)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (--quick 2)")
    parser.add_argument("--loads", default="short,keep-alive")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    args.connections = args.connections or (500 if args.quick else 2000)
    args.requests = args.requests or (250 if args.quick else 1000)
    args.rounds = args.rounds or (2 if args.quick else 5)
    ok, reason = KernelTracer.available()
    if not ok:
        log(f"cannot trace: {reason}")
        return 2
    raise_open_files(65536)
    loads = [x.strip() for x in args.loads.split(",") if x.strip()]
    runs: dict[tuple[str, bool], list[dict]] = {(load, t): [] for load in loads
                                                 for t in (False, True)}
    for r in range(args.rounds):
        for load in loads:
            # Alternate which goes first, so a drift (CPU frequency, page cache) is shared.
            for traced in ((False, True) if r % 2 == 0 else (True, False)):
                run = one_run(load, traced, args)
                runs[(load, traced)].append(run)
                log(f"round {r + 1} {load:10s} {'traced' if traced else 'plain ':6s} "
                    f"{run['rate']:8.0f} req/s, tracer CPU {run['cpu'] * 1e3:7.1f} ms, "
                    f"{run['events']} events")

    def med(load: str, traced: bool, key: str) -> float:
        return statistics.median(x[key] for x in runs[(load, traced)])

    out = ["# KernelTracer cost", "",
           f"`{shlex.join(['python3', 'bench/bench_tracepoint.py', *sys.argv[1:]])}`", "",
           f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, Python "
           f"{platform.python_version()}; SockScope epoll server and {args.clients} built-in "
           f"client threads in one process; {args.rounds} rounds, alternating; medians.", "",
           "| load | req/s plain | req/s traced | ratio | tracer CPU per run | "
           "tracer CPU % of the run | events per run | tracer CPU per event |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for load in loads:
        plain, traced = med(load, False, "rate"), med(load, True, "rate")
        cpu, wall = med(load, True, "cpu"), med(load, True, "elapsed")
        events = med(load, True, "events")
        what = (f"short: {args.connections} connections" if load == "short"
                else f"keep-alive: {args.clients} x {args.requests} requests")
        out.append(f"| {what} | {plain:.0f} | {traced:.0f} | {traced / plain:.3f} | "
                   f"{cpu * 1e3:.1f} ms | {100 * cpu / wall:.1f} | {events:.0f} | "
                   + (f"{cpu / events * 1e6:.1f} µs |" if events else "- |"))
    lost = sum(x["lost"] for (_, t), xs in runs.items() if t for x in xs)
    bad = sum(x["bad_pages"] for (_, t), xs in runs.items() if t for x in xs)
    unattributed = sum(x["unattributed"] for (_, t), xs in runs.items() if t for x in xs)
    out += ["", f"Traced runs: {lost} events lost in the kernel, {bad} undecodable pages, "
                f"{unattributed} transitions not tied to a connection."]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
