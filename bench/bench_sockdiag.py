#!/usr/bin/env python3
"""What watching the kernel costs: KernelObserver with 1,000 connections on the port.

    python3 bench/bench_sockdiag.py                     # 1,000 connections, 10 s
    python3 bench/bench_sockdiag.py --quick             # 200 connections, 2 s (smoke run)
    python3 bench/bench_sockdiag.py --target bare       # a bare listening socket instead

Opens N keep-alive connections to a SockScope server (``engine.create_server``
in-process, epoll; each connection has made one request and is idle) or to a
bare listening socket, then in the same run:

1. runs ``KernelObserver`` at its default interval for D seconds and reports
   the CPU time of its thread (``pthread_getcpuclockid``: user + system, so the
   kernel's side of every dump counts) as % of one core, polls per second, and
   how many connection dumps ran and why (see observer.py: "counters" when
   the namespace's TCP counters moved, "settle" one poll later, "resync"
   once a second);
2. the same with ``skip_idle_scans=False`` (a dump at every poll), the naive
   design, for comparison;
3. the cost of one look, median of R repetitions: a sock_diag dump of the
   port's connections (with and without the kernel-side port filter, raw and
   decoded), of an empty family, of the listening sockets only; one observer
   scan when nothing changed; ``/proc/net/tcp``; one read of the TCP counters;
4. whether a CLOSE_WAIT held for 10 ms (and 5 ms) is seen, T times each,
   while the holding thread sleeps, and while it spins holding the GIL.

The Markdown report goes to stdout (it starts with the command line), progress
to stderr. Every socket is closed and every thread stopped before it exits.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import Probe, ServerConfig, create_server  # noqa: E402
from engine.events import Event  # noqa: E402
from engine.kernel.observer import KernelObserver, _ActivityCounters  # noqa: E402
from engine.kernel.sockdiag import (CONNECTION_STATES, LISTEN_ONLY, SockDiag,  # noqa: E402
                                    iter_messages, proc_listeners, proc_net_tcp)
from engine.limits import raise_open_files  # noqa: E402
from engine.server import connection_id  # noqa: E402

HOST = "127.0.0.1"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class EventCounter:
    """A probe sink that counts events and remembers which (conn, side, state) it saw."""

    def __init__(self) -> None:
        self.count = 0
        self.states: set[tuple[str | None, str, str]] = set()
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        self.count += 1
        if event.kind == "tcp_state":
            with self.lock:
                self.states.add((event.conn, event.data["side"], event.data["state"]))


# ----------------------------------------------------------------- targets
class Target:
    """N idle keep-alive connections on one port, closed on ``close()``."""

    def __init__(self, kind: str, connections: int) -> None:
        raise_open_files(65536)
        self.kind = kind
        self.server = None
        self.listener: socket.socket | None = None
        self.accepted: list[socket.socket] = []
        self.clients: list[socket.socket] = []
        if kind == "engine":
            config = ServerConfig(mode="epoll", host=HOST, port=0, header_timeout=3600,
                                  idle_timeout=3600, max_connections=connections + 100)
            self.server = create_server(config, Probe("server")).start()
            self.port = self.server.address[1]
        else:
            self.listener = socket.socket()
            self.listener.bind((HOST, 0))
            self.listener.listen(4096)
            self.port = self.listener.getsockname()[1]
        try:
            self._connect(connections)
        except BaseException:
            self.close()
            raise

    def _connect(self, n: int) -> None:
        request = (f"GET / HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                   "Connection: keep-alive\r\n\r\n").encode()
        for _ in range(n):
            client = socket.create_connection((HOST, self.port), timeout=10)
            self.clients.append(client)
            if self.listener is not None:
                self.accepted.append(self.listener.accept()[0])
            else:  # one real request: the connection is a served, idle keep-alive one
                client.sendall(request)
                self._read_response(client)

    @staticmethod
    def _read_response(client: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed a keep-alive connection")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += client.recv(65536)

    def close(self) -> None:
        for s in self.clients + self.accepted:
            s.close()
        if self.listener is not None:
            self.listener.close()
        if self.server is not None:
            self.server.stop()


# ----------------------------------------------------------------- measurements
def observe(port: int, duration: float, **options: object) -> dict:
    """Run an observer for ``duration`` s; its thread's CPU time, polls and dumps."""
    counter = EventCounter()
    probe = Probe("kernel")
    probe.add_sink(counter)
    observer = KernelObserver(probe, port, host=HOST, **options)  # type: ignore[arg-type]
    observer.start()
    try:
        assert observer._thread is not None and observer._thread.ident is not None
        clock = time.pthread_getcpuclockid(observer._thread.ident)
        cpu0, wall0, polls0 = time.clock_gettime(clock), time.monotonic(), observer.polls
        scans0 = dict(observer.scans)
        time.sleep(duration)
        cpu1, wall1, polls1 = time.clock_gettime(clock), time.monotonic(), observer.polls
        scans = {k: v - scans0.get(k, 0) for k, v in observer.scans.items()}
    finally:
        observer.stop()
    wall = wall1 - wall0
    return {"cpu_pct": 100 * (cpu1 - cpu0) / wall, "polls_per_s": (polls1 - polls0) / wall,
            "scans": {k: v for k, v in scans.items() if v}, "events": counter.count,
            "backend": observer.backend, "wall": wall}


def median_cost(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median wall µs, median thread-CPU µs) of ``action``."""
    walls, cpus = [], []
    for _ in range(repeat):
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        action()
        walls.append(time.perf_counter_ns() - w0)
        cpus.append(time.thread_time_ns() - c0)
    return statistics.median(walls) / 1e3, statistics.median(cpus) / 1e3


def dump_costs(port: int, repeat: int) -> list[tuple[str, float, float, int]]:
    """(what, median wall µs, median CPU µs, sockets) for each way of looking."""
    rows = []
    filtered, unfiltered = SockDiag(), SockDiag()
    unfiltered.kernel_filter = False  # as on a kernel that refuses the bytecode
    try:
        count = sum(1 for _ in iter_messages(filtered.dump_raw(socket.AF_INET, port,
                                                               CONNECTION_STATES)))
        everything = sum(1 for _ in iter_messages(unfiltered.dump_raw(socket.AF_INET, port,
                                                                      CONNECTION_STATES)))
        rows.append(("sock_diag dump, kernel-side port filter (kernel + recv only)",
                     *median_cost(lambda: filtered.dump_raw(socket.AF_INET, port,
                                                            CONNECTION_STATES), repeat), count))
        rows.append(("sock_diag dump, no kernel filter (kernel + recv only)",
                     *median_cost(lambda: unfiltered.dump_raw(socket.AF_INET, port,
                                                              CONNECTION_STATES), repeat),
                     everything))
        rows.append(("sock_diag dump, IPv6, nothing matches (the hash walk alone)",
                     *median_cost(lambda: filtered.dump_raw(socket.AF_INET6, port,
                                                            CONNECTION_STATES), repeat), 0))
        rows.append(("sock_diag dump, decoded to TcpSocket records",
                     *median_cost(lambda: filtered.dump(port, (socket.AF_INET,),
                                                        CONNECTION_STATES), repeat), count))
        rows.append(("sock_diag dump, listening sockets only",
                     *median_cost(lambda: filtered.dump_raw(socket.AF_INET, port, LISTEN_ONLY),
                                  repeat), 1))
    finally:
        filtered.close()
        unfiltered.close()
    # What a triggered scan costs the observer when nothing changed: dump + raw diff.
    observer = KernelObserver(Probe("kernel"), port, host=HOST)
    try:
        observer._scan(0, "initial")
        rows.append(("observer: one connection scan, nothing changed (dump + diff)",
                     *median_cost(lambda: observer._scan(0, "bench"), repeat), count))
    finally:
        observer.stop()
    proc_rows = len(proc_net_tcp(port, (socket.AF_INET,)))
    rows.append(("/proc/net/tcp, port's connections, decoded",
                 *median_cost(lambda: proc_net_tcp(port, (socket.AF_INET,)), max(5, repeat // 5)),
                 proc_rows))
    rows.append(("/proc/net/tcp, listening sockets only (file head)",
                 *median_cost(lambda: proc_listeners(port, (socket.AF_INET,)), repeat), 1))
    counters = _ActivityCounters()
    try:
        rows.append(("TCP counters (/proc/net/snmp + /proc/net/sockstat)",
                     *median_cost(counters.read, repeat), 0))
    finally:
        counters.close()
    return rows


def catch_rate(target: Target, hold: float, trials: int, spin: bool) -> tuple[int, int]:
    """How often a connection end held in CLOSE_WAIT for ``hold`` s is observed.

    The server closes first (the engine answers a "Connection: close" request;
    the bare target closes the accepted socket), the client reads end-of-file
    (its end is now CLOSE_WAIT), waits ``hold`` and closes. Same port as the
    N idle connections, so every dump carries them all.

    ``spin=False`` waits in ``time.sleep`` (the GIL is free: what the observer
    can do on its own). ``spin=True`` waits in a Python loop that keeps the
    GIL, as a CPU-bound server thread in the same process would: the observer
    then gets the GIL back only every ``sys.getswitchinterval()`` (5 ms) after
    each blocking syscall of a dump.
    """
    counter = EventCounter()
    probe = Probe("kernel")
    probe.add_sink(counter)
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    caught = 0
    with KernelObserver(probe, target.port, host=HOST):
        for _ in range(trials):
            client = socket.create_connection((HOST, target.port), timeout=5)
            try:
                conn = connection_id(client.getsockname(), client.getpeername())
                if target.listener is not None:
                    target.listener.accept()[0].close()
                else:
                    client.sendall(request)
                while client.recv(65536):
                    pass  # until end-of-file: the server's FIN is in, CLOSE_WAIT begins
                start = time.perf_counter()
                if spin:
                    while time.perf_counter() - start < hold:
                        pass
                else:
                    time.sleep(hold)
            finally:
                client.close()
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline and (conn, "client", "CLOSED") not in counter.states:
                time.sleep(0.005)
            caught += (conn, "client", "CLOSE_WAIT") in counter.states
    return caught, trials


# ----------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=None, help="default 1000 (--quick 200)")
    parser.add_argument("--duration", type=float, default=None, help="seconds, default 10 (--quick 2)")
    parser.add_argument("--target", choices=("engine", "bare"), default="engine")
    parser.add_argument("--repeat", type=int, default=50, help="repetitions of each dump cost")
    parser.add_argument("--trials", type=int, default=20, help="held-state trials per hold")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    connections = args.connections or (200 if args.quick else 1000)
    duration = args.duration or (2.0 if args.quick else 10.0)

    log(f"opening {connections} keep-alive connections ({args.target})...")
    target = Target(args.target, connections)
    try:
        port = target.port
        log(f"observer, default interval, {duration:g} s...")
        smart = observe(port, duration)
        log(f"observer dumping at every poll, {duration / 2:g} s...")
        naive = observe(port, duration / 2, skip_idle_scans=False)
        log("dump costs...")
        costs = dump_costs(port, args.repeat)
        log("held states...")
        catches = {(hold, spin): catch_rate(target, hold, args.trials, spin)
                   for spin in (False, True) for hold in (0.010, 0.005)}
    finally:
        target.close()

    out = ["# KernelObserver cost", "",
           f"`{shlex.join(['python3', 'bench/bench_sockdiag.py', *sys.argv[1:]])}`", "",
           f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, Python "
           f"{platform.python_version()}; {connections} keep-alive connections "
           f"({2 * connections} sockets on the port) to "
           + ("a SockScope epoll server in-process." if args.target == "engine"
              else "a bare listening socket."),
           "", "| observer | CPU (% of one core) | polls/s | connection dumps (why) |",
           "|---|---:|---:|---|"]
    for label, r in (("default: skip idle dumps, interval 5 ms", smart),
                     ("dump at every poll, interval 5 ms", naive)):
        why = ", ".join(f"{k} {v}" for k, v in sorted(r["scans"].items()))
        out.append(f"| {label} ({r['wall']:.1f} s) | {r['cpu_pct']:.2f} | {r['polls_per_s']:.0f} | {why} |")
    out += ["", "| one look (median of %d) | wall µs | thread CPU µs | sockets returned |" % args.repeat,
            "|---|---:|---:|---:|"]
    for label, wall, cpu, n in costs:
        out.append(f"| {label} | {wall:.0f} | {cpu:.0f} | {n} |")
    out += ["", "| CLOSE_WAIT held | while the holding thread | seen by the observer |",
            "|---|---|---:|"]
    for (hold, spin), (caught, trials) in catches.items():
        how = "spins in Python (holds the GIL)" if spin else "sleeps (GIL free)"
        out.append(f"| {hold * 1000:.0f} ms | {how} | {caught}/{trials} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
