"""What emitting costs when nobody listens, against what a request costs.

Every probe point in the engine is guarded by ``if probe.active:``. This
measures that guard, counts the guards a keep-alive request passes (from a
recorded run: every event emitted is one guard passed), and measures a
request's cost on the same machine with the built-in clients, so the share
is computed from numbers taken in one run.

    python3 bench/bench_probe.py [--requests N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import MemorySink, Probe, ServerConfig, create_server  # noqa: E402
from engine.clients import LoadConfig, run_load  # noqa: E402


def guard_ns(repeat: int = 7) -> float:
    probe = Probe("server")  # no sink: inactive
    loops = 2_000_000
    timer = timeit.Timer("if probe.active:\n    probe.emit('recv')", globals={"probe": probe})
    empty = timeit.Timer("pass")
    guarded = min(timer.repeat(repeat, loops)) / loops
    baseline = min(empty.repeat(repeat, loops)) / loops
    return (guarded - baseline) * 1e9


def events_per_request(requests: int) -> float:
    sink = MemorySink()
    probe = Probe("server")
    probe.add_sink(sink)
    server = create_server(ServerConfig(mode="epoll", port=0), probe).start()
    try:
        run_load(LoadConfig(server.url, clients=10, requests=requests // 10))
    finally:
        server.stop()
    return len(sink.events) / requests


def request_us(requests: int, repeat: int = 5) -> float:
    server = create_server(ServerConfig(mode="epoll", port=0)).start()
    times = []
    try:
        for _ in range(repeat):
            result = run_load(LoadConfig(server.url, clients=10, requests=requests // 10))
            times.append(result.elapsed / result.ok * 1e6)
    finally:
        server.stop()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    guard = guard_ns()
    per_request = events_per_request(args.requests)
    request = request_us(args.requests)
    share = guard * per_request / (request * 1e3)
    print("| measure | value |\n|---|---|")
    print(f"| one `if probe.active:` with no sink | {guard:.1f} ns |")
    print(f"| probe points passed per keep-alive request (epoll) | {per_request:.1f} |")
    print(f"| one request, server and built-in clients in one process (median) | {request:.1f} µs |")
    print(f"| share of a request spent on idle probes | {share:.2%} |")
    print(f"\n`python3 bench/bench_probe.py --requests {args.requests}`")


if __name__ == "__main__":
    main()
