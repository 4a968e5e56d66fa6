"""Memory stays bounded per connection whatever the client sends ("Never down").

200 clients each send as many tiny pipelined requests as their socket takes and
never read an answer. A server that parses a whole 64 KiB read ahead of its
answers keeps ~2,400 parsed requests per such connection (about 1 MB each);
nginx keeps a few. The server, in every mode, runs as ``sockscope serve`` (a
process of its own: its VmRSS is what is measured) and may grow by at most
64 MB, must answer a new client while the flood holds, and serve on (and exit
0) after the flooders reset their connections.

The page is 16 KiB, not a few bytes: a loopback socket's send buffer grows to
~3 MB, so with tiny answers the kernel takes ~17,000 of them per connection
before the server has to keep anything, which costs the server ~15 s of CPU
for 200 clients and hides most of what it parses ahead. With 16 KiB answers it
is full after ~170, within a second.
"""
from __future__ import annotations

import contextlib
import importlib.util
import resource
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from engine.modes import REGISTRY
from tests.conftest import ALL_MODES, MODE_IDS, read_to_eof, serving

REPO = Path(__file__).resolve().parents[2]


def _bench_flood():  # type: ignore[no-untyped-def]
    """bench/bench_flood.py, whose flooders (and their settling) this test uses."""
    spec = importlib.util.spec_from_file_location("bench_flood", REPO / "bench" / "bench_flood.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bench_flood"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


bench = _bench_flood()
HOST = bench.HOST
CLIENTS = 200
LIMIT = 64 * 2**20  # bytes the server's RSS may grow under the flood
PER_CLIENT = 1 << 20  # pipelined request bytes each flooder sends at most
PAGE = bench.page(16384)
SETTLE_FOR = 1.5  # settled: no socket queue moved and RSS within bench.SETTLE_RSS this long
SETTLE_DEADLINE = 30.0  # seconds the flood may take to settle
ANSWER_WITHIN = 5.0  # seconds a fresh GET may take while the flood holds


def rss(pid: int) -> int:
    found = bench.rss_of(pid)
    if not found:  # gone (None) or a zombie (0)
        raise AssertionError(f"no VmRSS for pid {pid}: has the server ended?")
    return found


def fetch(port: int, timeout: float = ANSWER_WITHIN) -> bytes:
    """A fresh ``GET /`` (Connection: close): the whole answer, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_to_eof(s, deadline=deadline)


@contextlib.contextmanager
def file_limit(need: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE at least ``need`` (as far as the hard one
    allows) for the block; the server, started inside, inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        yield
        return
    new = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if new < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("mode", "trigger"), ALL_MODES, ids=MODE_IDS)
def test_a_pipelining_flood_that_never_reads_costs_at_most_64_mb(
        mode: str, trigger: str, tmp_path: Path) -> None:
    site = tmp_path / "www"
    site.mkdir()
    (site / "index.html").write_bytes(PAGE)
    argv = [sys.executable, "-m", "engine", "serve", "--port", "0", "--mode", mode,
            "--trigger", trigger, "--root", str(site),
            # far beyond the measurement: the flood is measured, not timed out
            "--header-timeout", "300", "--idle-timeout", "300"]
    if mode == "nonblocking":
        argv += ["--sweep-pause", "0.001"]  # spare the CPU the flooders share
    with file_limit(CLIENTS + 256), serving(argv, cwd=REPO) as (proc, port):
        assert fetch(port).endswith(PAGE)  # the page cached, the code paths run once
        time.sleep(0.3)
        idle = rss(proc.pid)
        flood = bench.Flood(port, PER_CLIENT)
        try:
            flood.connect(CLIENTS)
            peak, took, settled_in_time = bench.flood_until_settled(
                flood, lambda: rss(proc.pid), port, SETTLE_DEADLINE, settle_for=SETTLE_FOR)
            settled = rss(proc.pid)
            t0 = time.monotonic()
            try:
                # while the flooders still hold their connections (one at a time, a new
                # client waits its turn behind them: nothing to fetch then)
                during = fetch(port) if REGISTRY[mode].concurrent else b"(waits its turn)"
            except OSError as exc:
                during = repr(exc).encode()
            answered_in = time.monotonic() - t0
            sent = sum(flood.sent)
        finally:
            flood.close()
        time.sleep(0.5)
        after = fetch(port)
        left = rss(proc.pid) - idle
        growth = peak - idle
        report = (f"{mode}/{trigger}: idle {idle / 1e6:.1f} MB, grew by {growth / 1e6:.1f} MB "
                  f"(settled +{(settled - idle) / 1e6:.1f} MB "
                  + (f"in {took:.1f} s" if settled_in_time
                     else f"still moving at {SETTLE_DEADLINE:.0f} s")
                  + f"; {left / 1e6:.1f} MB kept after the flooders left) under {CLIENTS} clients "
                  f"that sent {sent / 1e6:.0f} MB of pipelined requests and read nothing; "
                  f"{flood.reset} of them were reset by the server; a fresh GET took "
                  f"{answered_in * 1000:.0f} ms")
        print(report)
        if REGISTRY[mode].concurrent:
            assert during.startswith(b"HTTP/1.1 200 ") and during.endswith(PAGE), \
                f"no page for a new client during the flood: {during[:80]!r}; {report}"
        assert after.startswith(b"HTTP/1.1 200 ") and after.endswith(PAGE), after[:80]
        assert growth <= LIMIT, report
        assert proc.poll() is None
