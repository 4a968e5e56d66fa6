"""``sockscope compare``: the same built-in load against each I/O mode in turn.

Each mode gets a fresh engine (``sockscope serve`` in a process of its own,
recording its own events), ``idle`` keep-alive connections that made one request
and then stay open, and then the load. What a row says:

- ``req_s``, ``p50_ms``, ``p99_ms``: the load's answered requests, as its clients
  timed them;
- ``cpu_pct``: the engine's CPU time (its children's included) during the load,
  as a percentage of one core;
- ``threads``, ``processes``: the most OS threads and processes the engine had at
  once (sampled every 0.1 s from ``/proc``);
- ``rss_mb``: the most resident memory the engine and its children held at once,
  each shared page divided among the processes sharing it (PSS, so that a
  thousand forked children are not counted as a thousand copies);
- ``syscalls_per_request``: the engine's own syscall events (accept, recv, send,
  EAGAIN, close, the waits, the interest-list calls that are syscalls, fork) during
  the load, per answered request; ``fds_scanned_per_request``: the descriptors
  that select()/poll() handed the kernel to look at, per request;
- ``errors``: requests that failed, and idle connections that were refused or
  never answered; ``server_errors``: the engine's ``error`` events by what.

The engine records its events (that is how the syscalls are counted), so every
mode pays what recording costs; the numbers compare modes with each other, not
with an untraced server (``bench/`` does that).
"""
from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
import dataclasses
import errno
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import orjson

from .clients import LoadConfig, _ResponseReader, run_load
from .lifetime import die_with_parent
from .limits import SPARE_FDS, raise_open_files

# The event kinds that are one syscall each ("interest" only where the interest list
# lives in the kernel: epoll, kqueue; select and poll keep theirs in the process).
SYSCALL_KINDS = frozenset({"accept", "recv", "send", "eagain", "close", "shutdown",
                           "epoll_wait", "epoll_ctl", "wait", "fork", "listen"})
KERNEL_INTEREST = frozenset({"epoll", "EpollSelector", "KqueueSelector", "DevpollSelector"})
SAMPLE_EVERY = 0.1
# What a non-blocking connect() says while the handshake goes on (WSAEWOULDBLOCK: Windows)
_CONNECTING = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, 10035}


@dataclass
class CompareConfig:
    modes: list[str]
    clients: int = 10
    requests: int = 100  # per client
    keep_alive: bool = True
    idle: int = 0
    path: str = "/"
    timeout: float = 10.0  # per network step of a client, and for the idle connections
    host: str = "127.0.0.1"
    root: str | None = None
    extra: list[str] = field(default_factory=list)  # more ``serve`` options for every engine

    def check(self) -> None:
        from .server import MODES
        if not self.modes:
            raise ValueError("no modes to compare")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown mode{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(unknown)} (modes: {', '.join(MODES)})")
        if self.clients < 1 or self.requests < 1:
            raise ValueError("--clients and --requests must be at least 1")
        if self.idle < 0:
            raise ValueError("--idle cannot be negative")
        if self.timeout <= 0:
            raise ValueError("--timeout must be positive")


@dataclass
class Row:
    mode: str
    req_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_pct: float | None = None
    threads: int | None = None
    processes: int | None = None
    rss_mb: float | None = None
    syscalls_per_request: float | None = None
    fds_scanned_per_request: float | None = None
    errors: int = 0
    ok: int = 0
    failed: int = 0
    idle_asked: int = 0
    idle_held: int = 0
    idle_refused: int = 0
    idle_unanswered: int = 0
    elapsed_s: float = 0.0
    events: int = 0
    events_dropped: int = 0
    server_errors: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ the engine's cost
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (field 3 on), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out.extend(int(c) for c in f.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(_children(p))
    return pids


def _pss_kb(pid: int) -> int | None:
    """Proportional resident memory (kB) from smaps_rollup; RSS where that is missing."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE // 1024
    except (OSError, IndexError, ValueError):
        return None


class Usage:
    """Samples an engine's process tree: peak threads, processes and memory; CPU."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.available = os.path.exists(f"/proc/{pid}/stat")
        self.threads = 0
        self.processes = 0
        self.rss_kb = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def cpu_seconds(self) -> float | None:
        """CPU time of the engine, its live children and the children it reaped."""
        if not self.available:
            return None
        total = 0.0
        for i, p in enumerate(_tree(self.pid)):
            f = _stat(p)
            if f is None:
                continue
            ticks = int(f[11]) + int(f[12])  # utime, stime
            if i == 0:
                ticks += int(f[13]) + int(f[14])  # cutime, cstime: the reaped children
            total += ticks / _CLK_TCK
        return total

    def sample(self) -> None:
        pids = _tree(self.pid)
        threads = 0
        rss = 0
        for p in pids:
            f = _stat(p)
            if f is not None:
                threads += int(f[17])  # num_threads
            kb = _pss_kb(p)
            rss += kb or 0
        self.threads = max(self.threads, threads)
        self.processes = max(self.processes, len(pids))
        self.rss_kb = max(self.rss_kb, rss)

    def start(self) -> "Usage":
        if self.available:
            self.sample()
            self._thread = threading.Thread(target=self._run, name="compare-usage", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.sample()
            except (OSError, ValueError, IndexError):  # a process went while it was read
                pass
            # A big tree (a thousand children) takes a while to read: never spend
            # more than a third of the time reading.
            self._stop.wait(max(SAMPLE_EVERY, 2 * (time.monotonic() - began)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


# ------------------------------------------------------------------ idle connections
@dataclass
class IdleResult:
    held: int = 0
    refused: int = 0
    unanswered: int = 0
    reasons: Counter = field(default_factory=Counter)


class IdleConnections:
    """``count`` keep-alive connections that each make one request, read the answer,
    and then stay open, saying nothing, until ``close()``. One thread, non-blocking
    sockets: ten thousand of them cost ten thousand descriptors, not threads."""

    IN_FLIGHT = 256  # connects not yet answered at once (the backlog is the server's)

    def __init__(self, host: str, port: int, count: int, path: str = "/") -> None:
        self.host, self.port, self.count = host, port, count
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"User-Agent: sockscope-compare\r\nConnection: keep-alive\r\n\r\n").encode()
        self.socks: list[socket.socket] = []  # held: answered, open, silent
        self.waiting: list[socket.socket] = []  # not answered in time, kept open (queued)
        self.result = IdleResult()

    def open(self, timeout: float, progress: Callable[[int], None] | None = None) -> IdleResult:
        sel = selectors.DefaultSelector()
        pending: dict[socket.socket, _ResponseReader] = {}
        started = 0
        deadline = time.monotonic() + timeout
        last_said = time.monotonic()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        r = self.result
        try:
            while (started < self.count or pending) and time.monotonic() < deadline:
                while started < self.count and len(pending) < self.IN_FLIGHT:
                    try:
                        sock = socket.socket(family, socket.SOCK_STREAM)
                    except OSError as exc:  # out of descriptors (EMFILE): no more to open
                        r.reasons[exc.strerror or str(exc)] += self.count - started
                        r.refused += self.count - started
                        started = self.count
                        break
                    sock.setblocking(False)
                    started += 1
                    code = sock.connect_ex((self.host, self.port))
                    if code not in _CONNECTING:
                        r.refused += 1
                        r.reasons[os.strerror(code)] += 1
                        sock.close()
                        continue
                    pending[sock] = _ResponseReader()
                    sel.register(sock, selectors.EVENT_WRITE)
                for key, _ in sel.select(timeout=0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if key.events == selectors.EVENT_WRITE:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            self._drop(sel, pending, sock, os.strerror(err))
                            continue
                        try:
                            sock.send(self.request)  # a few dozen bytes: all of it fits
                        except OSError as exc:
                            self._drop(sel, pending, sock, exc.strerror or str(exc))
                            continue
                        sel.modify(sock, selectors.EVENT_READ)
                        continue
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        self._drop(sel, pending, sock, exc.strerror or str(exc))
                        continue
                    if not data:
                        self._drop(sel, pending, sock, "closed by the server")
                        continue
                    reader = pending[sock]
                    try:
                        reader.feed(data)
                    except Exception:  # noqa: BLE001 - httptools' parser errors
                        self._drop(sel, pending, sock, "a malformed answer")
                        continue
                    if reader.done:
                        status, keep = reader.done[0]
                        sel.unregister(sock)
                        del pending[sock]
                        if status >= 400 or not keep:
                            r.refused += 1
                            r.reasons[f"answered {status}" + ("" if keep else ", closing")] += 1
                            sock.close()
                        else:
                            r.held += 1
                            self.socks.append(sock)
                now = time.monotonic()
                if progress is not None and now - last_said > 1.0:
                    progress(r.held)
                    last_said = now
        finally:
            # Not answered in time: kept open (they wait in the server's queue), counted.
            for sock in list(pending):
                sel.unregister(sock)
                self.waiting.append(sock)
            r.unanswered += len(pending) + (self.count - started)
            if self.count - started:
                r.reasons["never connected (out of time)"] += self.count - started
            if pending:
                r.reasons["no answer in time"] += len(pending)
            sel.close()
        return r

    def _drop(self, sel: selectors.BaseSelector, pending: dict, sock: socket.socket,
              why: str) -> None:
        sel.unregister(sock)
        del pending[sock]
        sock.close()
        self.result.refused += 1
        self.result.reasons[why] += 1

    def still_open(self) -> int:
        """How many held connections the server has not closed (a peek, no data taken)."""
        alive = 0
        for sock in self.socks:
            try:
                alive += sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        return alive

    def close(self) -> None:
        for sock in self.socks + self.waiting:
            sock.close()
        self.socks, self.waiting = [], []


# ------------------------------------------------------------------ one mode
class EngineRun:
    """One engine in its own process, recording to a trace file."""

    def __init__(self, mode: str, config: CompareConfig, trace: Path) -> None:
        self.mode = mode
        self.trace = trace
        wanted = config.idle + config.clients + SPARE_FDS
        argv = [sys.executable, "-m", "engine", "serve", "--mode", mode, "--host", config.host,
                "--port", "0", "--trace", str(trace), "--states", "off", "--packets", "off",
                "--cpu-interval", "0", "--idle-timeout", "3600",
                "--max-connections", str(max(10_000, wanted))]
        if config.root:
            argv += ["--root", config.root]
        argv += config.extra
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env,
                                     preexec_fn=die_with_parent)
        self.lines: list[str] = []
        self.url: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, name=f"compare-{mode}", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"SockScope serving .* at (http://\S+/)", line)
            if m:
                self.url = m.group(1)
                self._ready.set()
        self._ready.set()  # it ended

    def wait_ready(self, timeout: float = 30.0) -> str:
        self._ready.wait(timeout)
        if self.url is None:
            self.stop()
            said = "; ".join(self.lines[-3:]) or "nothing"
            raise RuntimeError(f"the {self.mode} engine did not start (it said: {said})")
        return self.url

    def stop(self, patience: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(patience)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def count_events(trace: Path, start_ns: int, end_ns: int) -> dict:
    """What the engine's trace says happened between ``start_ns`` and ``end_ns``."""
    syscalls = scanned = events = dropped = 0
    errors: Counter = Counter()
    with open(trace, "rb") as f:
        next(f, None)  # the header
        for line in f:
            try:
                e = orjson.loads(line)
            except orjson.JSONDecodeError:  # a last line cut short by the stop
                continue
            kind = e.get("kind")
            if kind == "dropped":
                dropped += int(e.get("count", 0))
                continue
            if kind == "error":
                errors[str(e.get("what"))] += 1
            t = e.get("t_ns", 0)
            if not start_ns <= t <= end_ns:
                continue
            events += 1
            if kind in SYSCALL_KINDS or (kind == "interest" and e.get("call") in KERNEL_INTEREST):
                syscalls += 1
            if kind == "poll_sweep" and e.get("sweeps"):  # idle sweeps, their EAGAINs summed
                syscalls += int(e.get("eagain", 0))
            if kind == "wait" and e.get("call") in ("select", "poll") and e.get("fds"):
                scanned += int(e["fds"])
    return {"syscalls": syscalls, "scanned": scanned, "events": events, "dropped": dropped,
            "errors": dict(errors)}


def run_mode(mode: str, config: CompareConfig, workdir: Path,
             say: Callable[[str], None]) -> Row:
    row = Row(mode=mode, idle_asked=config.idle)
    trace = workdir / f"{mode}-{config.idle}-idle.jsonl"
    engine = EngineRun(mode, config, trace)
    idle: IdleConnections | None = None
    usage: Usage | None = None
    try:
        url = engine.wait_ready()
        say(f"{mode}: serving at {url}")
        usage = Usage(engine.proc.pid).start()
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        if config.idle:
            say(f"{mode}: opening {config.idle} idle keep-alive connections")
            idle = IdleConnections(config.host, port, config.idle, config.path)
            held = idle.open(config.timeout + config.idle / 200,
                             lambda n: say(f"{mode}: {n} idle connections held"))
            row.idle_held, row.idle_refused = held.held, held.refused
            row.idle_unanswered = held.unanswered
            if held.reasons:
                row.notes.append("idle: " + ", ".join(f"{n} {why}" for why, n in
                                                      held.reasons.most_common()))
            say(f"{mode}: {held.held} idle connections held"
                + (f", {held.refused} refused" if held.refused else "")
                + (f", {held.unanswered} unanswered" if held.unanswered else ""))
        say(f"{mode}: {config.clients} clients x {config.requests} requests, "
            f"{'keep-alive' if config.keep_alive else 'short connections'}")
        load = LoadConfig(url=url.rstrip("/") + config.path, clients=config.clients,
                          requests=config.requests, keep_alive=config.keep_alive,
                          timeout=config.timeout)
        cpu0 = usage.cpu_seconds()
        start_ns = time.monotonic_ns()
        result = run_load(load)
        end_ns = time.monotonic_ns()
        cpu1 = usage.cpu_seconds()
        usage.sample()
        if idle is not None:
            opened, still = len(idle.socks), idle.still_open()
            if still < opened:
                lost = opened - still
                row.notes.append(f"idle: {lost} closed by the server during the load")
                row.idle_refused += lost
                row.idle_held = max(0, row.idle_held - lost)
        row.ok, row.failed = result.ok, result.failed
        row.elapsed_s = round(result.elapsed, 3)
        row.req_s = round(result.rate, 1)
        if result.ok:  # (a failed request's time says nothing about serving one)
            row.p50_ms = round(result.percentile(0.5) * 1e3, 3)
            row.p99_ms = round(result.percentile(0.99) * 1e3, 3)
        if result.errors:
            row.notes.append("load: " + ", ".join(f"{n} {why}" for why, n in
                                                  result.errors.most_common()))
        wall = (end_ns - start_ns) / 1e9
        if cpu0 is not None and cpu1 is not None and wall > 0:
            row.cpu_pct = round(100 * (cpu1 - cpu0) / wall, 1)
        if usage.available:
            row.threads, row.processes = usage.threads, usage.processes
            row.rss_mb = round(usage.rss_kb / 1024, 1)
        else:
            row.notes.append("threads, memory and CPU: no /proc on this system")
    except RuntimeError as exc:
        row.notes.append(str(exc))
        row.errors = config.clients * config.requests + config.idle
        return row
    finally:
        if usage is not None:
            usage.stop()
        # The engine stops first, with the idle connections still open: it closes them, as
        # any server stopping does (closing them first would wake all of them at once).
        code = engine.stop(15 + config.idle / 1000)  # each connection is closed and recorded
        if idle is not None:
            idle.close()
    if code not in (0, None):
        row.notes.append(f"the engine exited with {code}")
    counted = count_events(trace, start_ns, end_ns)
    row.events, row.events_dropped = counted["events"], counted["dropped"]
    row.server_errors = counted["errors"]
    if row.ok:
        row.syscalls_per_request = round(counted["syscalls"] / row.ok, 2)
        if counted["scanned"]:
            row.fds_scanned_per_request = round(counted["scanned"] / row.ok, 1)
    if row.events_dropped:
        row.notes.append(f"the trace dropped {row.events_dropped} events: syscalls per "
                         f"request is a lower bound")
    row.errors = row.failed + row.idle_refused + row.idle_unanswered
    return row


def compare(config: CompareConfig, say: Callable[[str], None],
            workdir: Path | None = None) -> list[Row]:
    config.check()
    wanted = config.idle + config.clients + SPARE_FDS
    before, now, problem = raise_open_files(wanted)
    if now != before:
        say(f"open files: this process's soft limit raised from {before} to {now}")
    if problem:
        raise ValueError(problem)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sockscope-compare-") as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        for mode in config.modes:
            began = time.monotonic()
            row = run_mode(mode, config, where, say)
            say(f"{mode}: {row.req_s:,.0f} req/s, {row.errors} errors "
                f"({time.monotonic() - began:.1f} s)")
            rows.append(row)
            if workdir is None:
                (where / f"{mode}-{config.idle}-idle.jsonl").unlink(missing_ok=True)
    return rows


def compare_scale(config: CompareConfig, points: list[int], say: Callable[[str], None],
                  workdir: Path | None = None) -> list[Row]:
    """The same comparison at each number of idle connections in ``points``: rows of
    every mode at every point (``idle_asked`` says which), for a scaling chart."""
    if not points or any(n < 0 for n in points):
        raise ValueError("--scale takes idle connection counts, 0 or more (e.g. 10,100,1000)")
    _, _, problem = raise_open_files(max(points) + config.clients + SPARE_FDS)
    if problem:  # said before the first point, not after the others ran
        raise ValueError(problem)
    rows: list[Row] = []
    for n in sorted(set(points)):
        say(f"--- {n:,} idle connections")
        rows += compare(dataclasses.replace(config, idle=n), say, workdir)
    return rows


COLUMNS = [("mode", "mode", "{}"), ("req/s", "req_s", "{:,.0f}"), ("p50 ms", "p50_ms", "{:.2f}"),
           ("p99 ms", "p99_ms", "{:.2f}"), ("CPU %", "cpu_pct", "{:.0f}"),
           ("threads", "threads", "{:,}"), ("procs", "processes", "{:,}"),
           ("memory MB", "rss_mb", "{:,.1f}"), ("syscalls/req", "syscalls_per_request", "{:.1f}"),
           ("errors", "errors", "{:,}")]


def table(rows: list[Row], scale: bool = False) -> str:
    columns = COLUMNS[:1] + [("idle", "idle_asked", "{:,}")] + COLUMNS[1:] if scale else COLUMNS
    cells = [[title for title, _, _ in columns]]
    for row in rows:
        cells.append([("-" if getattr(row, key) is None else fmt.format(getattr(row, key)))
                      for _, key, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        who = f"{row.mode} ({row.idle_asked:,} idle)" if scale else row.mode
        for note in row.notes:
            lines.append(f"{who}: {note}")
        if row.server_errors:
            lines.append(f"{who}: the engine recorded errors: "
                         + ", ".join(f"{n} {what}" for what, n in sorted(row.server_errors.items())))
    return "\n".join(lines)


def describe(config: CompareConfig, lang: str = "en", scale: list[int] | None = None) -> str:
    """The load in words, for the table and a chart's title."""
    zh = lang.startswith("zh")
    if zh:
        text = (f"{config.clients} 个客户端 × 每个 {config.requests} 个请求，"
                f"{'长连接（keep-alive）' if config.keep_alive else '短连接'}")
    else:
        text = (f"{config.clients} clients x {config.requests} requests, "
                f"{'keep-alive' if config.keep_alive else 'short connections'}")
    if scale:
        points = ", ".join(f"{n:,}" for n in sorted(set(scale)))
        return text + (f"，同时打开 {points} 个空闲长连接" if zh
                       else f", with {points} idle keep-alive connections held open")
    if config.idle:
        text += (f"，另有 {config.idle:,} 个空闲的长连接一直打开" if zh
                 else f", {config.idle:,} idle keep-alive connections held open")
    return text


def write_json(rows: list[Row], config: CompareConfig, out: Path | TextIO,
               scale: list[int] | None = None) -> None:
    data = {"load": {"clients": config.clients, "requests": config.requests,
                     "keep_alive": config.keep_alive, "idle": config.idle,
                     "path": config.path},
            **({"scale": sorted(set(scale))} if scale else {}),
            "machine": {"system": sys.platform, "cpus": os.cpu_count(),
                        "python": sys.version.split()[0]},
            "modes": [r.as_json() for r in rows]}
    blob = orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
    if isinstance(out, Path):
        out.write_bytes(blob)
    else:
        out.write(blob.decode())


def check_writable(path: Path | None) -> str | None:
    """Why ``path`` cannot be written (its folder is missing or closed), or None."""
    if path is None:
        return None
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        return f"cannot write {path}: no folder {folder}"
    if not os.access(folder, os.W_OK):
        return f"cannot write {path}: {folder} is not writable"
    return None
