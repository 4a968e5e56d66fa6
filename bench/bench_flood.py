#!/usr/bin/env python3
"""Memory under a pipelining flood: SockScope's server in every mode against nginx.

Many clients each send as many tiny pipelined requests as their socket takes
(``GET / HTTP/1.1``, 27 bytes each, up to ``--bytes`` per client) and never read
an answer. A server that parses ahead of its answers keeps thousands of parsed
requests per connection; one that stops reading once answers wait (nginx) keeps
a few. The script measures how much the server's resident memory grows (VmRSS
of its process tree: nginx's master + worker) until it stops growing, whether
it still answers a new client meanwhile, and how much it keeps after the
flooders are gone (reset). Every server is measured in the same run:

    python3 bench/bench_flood.py                         # 200 and 500 clients, 3 repeats
    python3 bench/bench_flood.py --clients 200 --modes epoll,nginx --repeats 5

Progress goes to stderr, the Markdown report (which starts with the command) to
stdout. Every server listens on 127.0.0.1 only, is stopped in a ``finally``
block (then its process group is killed if need be); every wait is bounded.
"""
from __future__ import annotations

import argparse
import errno
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# bench_http's process handling, also when imported by path (tests/engine/test_flood.py)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import (Env, Proc, find_tool, free_port, log, port_open,  # noqa: E402
                        proc_stats, tail, wait_until)

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
CLIENT_RCVBUF = 4096  # the flooders' receive buffer: the kernel soaks up few answers
PAGE_SIZE = 16 * 1024  # see --page-size
START_TIMEOUT = 15.0  # seconds for a server to start accepting
SAMPLE_EVERY = 0.2  # seconds between samples while the flood settles
SETTLE_FOR = 2.0  # settled: no I/O and RSS within SETTLE_RSS for this long
SETTLE_RSS = 512 * 1024  # bytes of RSS change still counted as "not growing"
PROBE_TIMEOUT = 10.0  # seconds a fresh GET may take during the flood

# name -> (label, extra ``sockscope serve`` arguments; None for nginx)
SERVERS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "nginx": ("nginx 1 worker", None),
    "threaded": ("SockScope threaded", ("--mode", "threaded")),
    # A sweep pause as in the tests: a busy loop over hundreds of sockets would
    # take the core the flooding client needs (memory, not speed, is measured).
    "nonblocking": ("SockScope nonblocking", ("--mode", "nonblocking", "--sweep-pause", "0.001")),
    "epoll": ("SockScope epoll level", ("--mode", "epoll", "--trigger", "level")),
    "epoll-edge": ("SockScope epoll edge", ("--mode", "epoll", "--trigger", "edge")),
    "selectors": ("SockScope selectors", ("--mode", "selectors")),
    "select": ("SockScope select", ("--mode", "select")),
    "poll": ("SockScope poll", ("--mode", "poll")),
    "single": ("SockScope single (one client at a time)", ("--mode", "single")),
}
ORDER = list(SERVERS)
ALIASES = {"epoll-level": "epoll", "edge": "epoll-edge"}

NGINX_CONF = """\
{user}worker_processes 1; daemon off; master_process on; pid nginx.pid; error_log nginx.err;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  server {{ listen {host}:{port}; root www; }} }}
"""


# ---------------------------------------------------------------------------- processes
def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (nginx: master and worker)."""
    children: dict[int, list[int]] = {}
    for p, rest in (proc_stats() or {}).items():
        if len(rest) > 1:
            children.setdefault(int(rest[1]), []).append(p)
    found, todo = [], [pid]
    while todo and len(found) < 1000:
        p = todo.pop()
        if p not in found:
            found.append(p)
            todo.extend(children.get(p, ()))
    return found


def rss_of(pid: int) -> int | None:
    """VmRSS in bytes of one process; None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return 0  # a zombie has no VmRSS line


def tree_rss(pid: int) -> int:
    return sum(rss_of(p) or 0 for p in tree_pids(pid))


def get(port: int, timeout: float = PROBE_TIMEOUT) -> tuple[bytes, float]:
    """One ``GET /`` on a new connection (Connection: close): the answer and its seconds."""
    t0 = time.monotonic()
    chunks = []
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for _ in range(10_000):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - t0


def answers_ok(port: int, body: bytes, timeout: float = PROBE_TIMEOUT) -> tuple[str, float | None]:
    """('' or what went wrong, seconds) of a fresh GET that must return the page."""
    try:
        data, took = get(port, timeout)
    except OSError as exc:
        return f"fresh GET failed: {exc!r}", None
    if not data.startswith(b"HTTP/1.1 200 ") or not data.endswith(body):
        return f"fresh GET answered {data[:60]!r}… ({len(data)} bytes)", took
    return "", took


# ---------------------------------------------------------------------------- servers
def page(size: int) -> bytes:
    """The ``size``-byte page every flooder's request asks for."""
    return (b"<!doctype html><title>flood</title><p>" + b"x" * size)[:size - 5] + b"</p>\n"


def start_server(key: str, env: Env) -> tuple[Proc, int]:
    """Start one server: (process, port); RuntimeError with the reason if it does not come up."""
    out, err = env.files(key)
    extra = SERVERS[key][1]
    if extra is not None:
        # Timeouts far beyond the measurement: the flood is measured, not timed out.
        argv = [sys.executable, "-m", "engine", "serve", *extra, "--host", HOST, "--port", "0",
                "--root", str(env.www), "--header-timeout", "600", "--idle-timeout", "600"]
        proc = Proc(argv, REPO, out, err, signal.SIGINT)
        found: list[int] = []

        def announced() -> bool:
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", out.read_text(errors="replace"))
            if m:
                found.append(int(m.group(1)))
            return bool(m)

        if not wait_until(announced, time.monotonic() + START_TIMEOUT, proc):
            proc.stop()
            raise RuntimeError(f"no URL line within {START_TIMEOUT:.0f}s (stderr: {tail(err)})")
        return proc, found[0]
    assert env.nginx
    last = ""
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = free_port()
        (env.dir / "tmp").mkdir(exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        (env.dir / "nginx.conf").write_text(NGINX_CONF.format(user=user, host=HOST, port=port))
        errlog = env.dir / "nginx.err"
        errlog.write_bytes(b"")
        proc = Proc([env.nginx, "-p", str(env.dir) + "/", "-c", "nginx.conf", "-e", str(errlog)],
                    env.dir, out, err, signal.SIGTERM)
        if wait_until(lambda: port_open(port), time.monotonic() + START_TIMEOUT, proc) \
                and proc.alive():
            # the worker is forked after the master binds: wait for it too
            wait_until(lambda: len(tree_pids(proc.pid)) >= 2, time.monotonic() + 5, proc)
            return proc, port
        last = f"not accepting on {port} (stderr: {tail(err)}; nginx.err: {tail(errlog)})"
        proc.stop()
    raise RuntimeError(last)


# ---------------------------------------------------------------------------- the flood
def tcp_queues(port: int) -> tuple[int, int, int]:
    """From /proc/net/tcp: the server's sockets' summed send and receive queues on
    ``port``, and the summed send queues of their peers. Unchanged while nobody
    reads or writes."""
    server_tx = server_rx = client_tx = 0
    me = f":{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f, None)
        for line in f:
            parts = line.split()
            if len(parts) < 5 or parts[3] != "01":  # established only
                continue
            tx, rx = (int(x, 16) for x in parts[4].split(":"))
            if parts[1].endswith(me):
                server_tx += tx
                server_rx += rx
            elif parts[2].endswith(me):
                client_tx += tx
    return server_tx, server_rx, client_tx


class Flood:
    """``clients`` sockets sending pipelined requests, never reading."""

    def __init__(self, port: int, cap: int) -> None:
        self.port, self.cap = port, cap
        self.socks: list[socket.socket] = []
        self.sent: list[int] = []
        self.reset = 0  # flooders the server closed or reset
        self.block = REQUEST * (65536 // len(REQUEST))

    def connect(self, clients: int) -> None:
        for _ in range(clients):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                # before connect, so the window the server sees is small from the start
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
                s.settimeout(5)
                s.connect((HOST, self.port))
                s.setblocking(False)
            except OSError:
                s.close()
                raise
            self.socks.append(s)
            self.sent.append(0)

    def pump(self) -> int:
        """One pass: every live socket sends until EAGAIN or its cap; bytes sent."""
        total = 0
        for i, s in enumerate(self.socks):
            if s.fileno() < 0:
                continue
            while self.sent[i] < self.cap:
                try:
                    n = s.send(self.block[:self.cap - self.sent[i]])
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
                        raise
                    self.reset += 1
                    s.close()
                    break
                self.sent[i] += n
                total += n
        return total

    def close(self) -> None:
        """Reset every flooder (SO_LINGER 0): no FIN handshake, no TIME_WAIT."""
        for s in self.socks:
            if s.fileno() >= 0:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                s.close()


def flood_until_settled(flood: Flood, rss: Callable[[], int], port: int, timeout: float,
                        settle_for: float = SETTLE_FOR, alive: Callable[[], bool] = lambda: True,
                        start_rss: int | None = None) -> tuple[int, float, bool]:
    """Keep the flooders sending until nothing moves: no bytes sent, the socket queues on
    ``port`` unchanged and ``rss()`` within SETTLE_RSS for ``settle_for`` seconds; or until
    ``timeout`` or the server is gone (``alive``). (The highest RSS seen, from ``start_rss``
    or a first sample; seconds taken; whether it settled.)"""
    t0 = time.monotonic()
    peak = last_rss = rss() if start_rss is None else start_rss
    last_change, last_queues = t0, None
    while time.monotonic() - t0 < timeout and alive():
        moved = flood.pump()
        now_rss = rss()
        peak = max(peak, now_rss)
        now_queues = tcp_queues(port)
        now = time.monotonic()
        if moved or now_queues != last_queues or abs(now_rss - last_rss) > SETTLE_RSS:
            last_change, last_queues, last_rss = now, now_queues, now_rss
        elif now - last_change >= settle_for:
            return peak, now - t0, True
        time.sleep(SAMPLE_EVERY)
    return peak, time.monotonic() - t0, False


@dataclass
class Run:
    """One flood against one server."""
    idle: int = 0  # RSS before, bytes
    peak: int = 0  # the highest RSS sampled during the flood
    settled: int = 0  # RSS once nothing moved for SETTLE_FOR
    after: int | None = None  # RSS after the flooders were reset
    settle_s: float = 0.0
    sent_mb: float = 0.0  # requests the flooders got into their sockets, MB
    reset: int = 0
    probe_s: float | None = None  # a fresh GET during the flood
    problem: str = ""

    @property
    def growth(self) -> int:
        return self.peak - self.idle


def flood_once(key: str, env: Env, clients: int, cap: int, settle_timeout: float) -> Run:
    proc, port = start_server(key, env)
    run = Run()
    flood: Flood | None = None
    try:
        problem, _ = answers_ok(port, env.body)  # warm: the page is cached, the code run
        if problem:
            run.problem = problem
            return run
        time.sleep(0.5)
        run.idle = tree_rss(proc.pid)
        flood = Flood(port, cap)
        flood.connect(clients)
        run.peak, run.settle_s, settled = flood_until_settled(
            flood, lambda: tree_rss(proc.pid), port, settle_timeout, alive=proc.alive,
            start_rss=run.idle)
        if not settled and proc.alive():
            run.problem = f"still moving after {settle_timeout:.0f}s"
        run.settled = tree_rss(proc.pid)
        run.sent_mb = sum(flood.sent) / 1e6
        if not proc.alive():
            run.problem = f"server died (code {proc.popen.returncode}): {tail(proc.err)}"
            return run
        problem, run.probe_s = answers_ok(port, env.body)
        if problem:
            run.problem = (run.problem + "; " if run.problem else "") + problem
        run.reset = flood.reset
        flood.close()
        flood = None
        time.sleep(1.0)
        run.after = tree_rss(proc.pid)
        problem, _ = answers_ok(port, env.body)
        if problem:
            run.problem = (run.problem + "; " if run.problem else "") + "after: " + problem
        return run
    finally:
        if flood is not None:
            flood.close()
        code = proc.stop()
        if code != 0 and not (key == "nginx" and code == -signal.SIGTERM):
            run.problem = (run.problem + "; " if run.problem else "") + f"exit code {code}"


# ---------------------------------------------------------------------------- report
def mb(x: float | None) -> str:
    return "—" if x is None else f"{x / 1e6:,.1f}"


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    if b <= 1e6:  # growth under 1 MB: a ratio to it says nothing
        return "n/a (nginx < 1 MB)" if a > b else "≤ nginx"
    return f"{a / b:.1f}x"


@dataclass
class Results:
    runs: dict[tuple[str, int], list[Run]] = field(default_factory=dict)

    def add(self, key: str, clients: int, run: Run) -> None:
        self.runs.setdefault((key, clients), []).append(run)


def table(res: Results, servers: list[str], clients: int) -> list[str]:
    lines = ["| server | idle RSS MB | growth MB median [min–max] | vs nginx | after the flood "
             "left, above idle MB | settled in s | fresh GET during the flood, ms |",
             "|---|---|---|---|---|---|---|"]
    ng_growth = med([r.growth for r in res.runs.get(("nginx", clients), []) if r.peak])
    for key in servers:
        runs = [r for r in res.runs.get((key, clients), []) if r.peak]
        if not runs:
            continue
        growth = [r.growth for r in runs]
        spread = f" [{mb(min(growth))}–{mb(max(growth))}]" if len(growth) > 1 else ""
        after = [r.after - r.idle for r in runs if r.after is not None]
        probes = [r.probe_s * 1000 for r in runs if r.probe_s is not None]
        lines.append(
            f"| {SERVERS[key][0]} | {mb(med([r.idle for r in runs]))} "
            f"| {mb(med(growth))}{spread} "
            f"| {'—' if key == 'nginx' else ratio(med(growth), ng_growth)} "
            f"| {mb(med(after))} | {med([r.settle_s for r in runs]) or 0:.1f} "
            f"| {'—' if not probes else f'{med(probes):,.0f}'} |")
    return lines


def code_version() -> str:
    """The commit measured, and whether the engine had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "engine"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not a git checkout"
    if head.returncode != 0:
        return "not a git checkout"
    return f"git {head.stdout.strip()}" + (" + uncommitted changes in engine/"
                                           if dirty.stdout.strip() else "")


def report(args: argparse.Namespace, command: str, res: Results, servers: list[str],
           notes: list[str], interrupted: bool) -> None:
    nginx = find_tool("nginx", ("/usr/sbin/nginx", "/usr/local/sbin/nginx"))
    version = ""
    if nginx:
        p = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10)
        m = re.search(r"nginx/(\S+)", p.stdout + p.stderr)
        version = f", nginx {m.group(1) if m else '?'}"
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                   .splitlines() if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = ["## SockScope under a pipelining flood (memory)", "",
           f"Command: `{command}`  ", f"Code: {code_version()}  ",
           f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; machine: {os.cpu_count()} CPUs "
           f"({cpu}), {platform.system()} {platform.release()}; Python "
           f"{platform.python_version()}{version}  ",
           f"Flood: each client sends `GET / HTTP/1.1` ({len(REQUEST)} bytes) pipelined, up to "
           f"{args.bytes / 2**20:g} MiB, SO_RCVBUF {CLIENT_RCVBUF} set before connect, never "
           f"reads; page {args.page_size:,} bytes; "
           f"{args.repeats} repeat(s), order reversed every other repeat  "]
    if interrupted:
        out.append("**Interrupted: partial results.**  ")
    for clients in args.client_list:
        out += ["", f"### {clients} clients", ""]
        out += table(res, servers, clients)
    out += ["", "Growth: the highest VmRSS of the server's process tree (nginx: master + worker) "
                "sampled during the flood, minus its idle VmRSS after one GET. Settled: the "
                f"flooders' and the server's socket queues unchanged and RSS within "
                f"{SETTLE_RSS // 1024} KiB for {SETTLE_FOR:g} s. After: VmRSS 1 s after every "
                "flooder was reset (SO_LINGER 0), above idle: what is never given back."]
    problems = [f"- {key} {clients} clients repeat {i + 1}: {r.problem}"
                for (key, clients), runs in res.runs.items() for i, r in enumerate(runs)
                if r.problem]
    problems += [f"- {k} {c} clients: the server closed or reset {sum(r.reset for r in runs)} "
                 f"flooders" for (k, c), runs in res.runs.items() if any(r.reset for r in runs)]
    if problems or notes:
        out += ["", "### Notes", ""] + notes + problems
    print("\n".join(out), flush=True)


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SockScope's memory under a pipelining flood "
                                            "(clients that send and never read), against nginx.")
    p.add_argument("--clients", default="200,500",
                   help="comma-separated client counts (default: 200,500)")
    p.add_argument("--modes", "--mode", default="all",
                   help="comma-separated subset of: " + ", ".join(ORDER) + " (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="runs per server; medians (default 3)")
    p.add_argument("--bytes", type=int, default=1 << 20,
                   help="pipelined requests each client sends at most, bytes (default 1 MiB)")
    p.add_argument("--page-size", type=int, default=PAGE_SIZE,
                   help="bytes of the page every request asks for (default 16384: the "
                        "kernel's send buffer, up to 4 MiB on loopback, then fills after a few "
                        "hundred answers; with a tiny page it takes ~20,000 per connection)")
    p.add_argument("--settle-timeout", type=float, default=60.0,
                   help="seconds a flood may take to settle (default 60)")
    args = p.parse_args(argv)
    try:
        args.client_list = sorted({int(c) for c in args.clients.split(",") if c.strip()})
    except ValueError:
        p.error("--clients: comma-separated numbers")
    if not args.client_list or not all(1 <= c <= 5000 for c in args.client_list):
        p.error("--clients must be 1..5000")
    if not 1 <= args.repeats <= 50:
        p.error("--repeats must be 1..50")
    if not len(REQUEST) <= args.bytes <= 64 << 20:
        p.error("--bytes must be 27..64 MiB")
    if not 64 <= args.page_size <= 256 * 1024:
        p.error("--page-size must be 64..262144 (SockScope caches pages up to 256 KiB)")
    if not 5 <= args.settle_timeout <= 600:
        p.error("--settle-timeout must be 5..600 seconds")
    wanted = [ALIASES.get(s.strip().lower(), s.strip().lower())
              for s in args.modes.split(",") if s.strip()]
    if wanted in (["all"], []):
        wanted = list(ORDER)
    for s in wanted:
        if s not in SERVERS:
            p.error(f"unknown mode {s!r}: choose from {', '.join(ORDER)}")
    args.server_list = [s for s in ORDER if s in wanted]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python3", "bench/bench_flood.py", *(sys.argv[1:] if argv is None
                                                                 else argv)])

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    need = max(args.client_list) + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))  # children inherit it
        log(f"RLIMIT_NOFILE soft {soft} -> {new}")
    res = Results()
    notes: list[str] = []
    servers = list(args.server_list)
    workdir = Path(tempfile.mkdtemp(prefix="sockscope-flood-"))
    interrupted = False
    try:
        env = Env(workdir, page(args.page_size))
        if "nginx" in servers and env.nginx is None:
            notes.append("- nginx: not found (PATH, /usr/sbin): peer skipped, ratios n/a")
            servers.remove("nginx")
        total = args.repeats * len(args.client_list) * len(servers)
        n = 0
        for rep in range(args.repeats):
            order = servers if rep % 2 == 0 else list(reversed(servers))
            for clients in args.client_list:
                for key in order:
                    n += 1
                    log(f"[{n}/{total}] repeat {rep + 1}, {clients} clients: {SERVERS[key][0]}")
                    try:
                        run = flood_once(key, env, clients, args.bytes, args.settle_timeout)
                    except (RuntimeError, OSError) as exc:
                        log(f"  ! {exc!r}")
                        notes.append(f"- {key} {clients} clients repeat {rep + 1}: {exc!r}")
                        continue
                    res.add(key, clients, run)
                    log(f"  idle {mb(run.idle)} MB, growth {mb(run.growth)} MB (settled "
                        f"{mb(run.settled - run.idle)}, after the flood left "
                        f"{mb(None if run.after is None else run.after - run.idle)}) in "
                        f"{run.settle_s:.1f}s; {run.sent_mb:,.0f} MB sent; fresh GET "
                        + ("—" if run.probe_s is None else f"{run.probe_s * 1000:,.0f} ms")
                        + (f"; {run.reset} flooders reset" if run.reset else "")
                        + (f"; ! {run.problem}" if run.problem else ""))
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}): reporting what was measured")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, command, res, servers, notes, interrupted)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
