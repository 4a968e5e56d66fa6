#!/usr/bin/env python3
"""Benchmark SockScope's static web server against nginx and ``python3 -m http.server``.

Every server is measured in the same run, on the same 1 KiB file, with the same
load generators, and the report prints ratios of medians (see bench/README.md):

    python3 bench/bench_http.py            # 3 rounds, wrk 10 s, ab 20000 requests
    python3 bench/bench_http.py --quick    # smoke run: 1 round, wrk 2 s, ab 2000

Loads: keep-alive ``wrk -t1 -c50 -d{D}s`` and short connections
``ab -q -n {N} -c 50 -s 10``. Missing tools (nginx, wrk, ab) are reported and
their peer or load skipped. Every server listens on 127.0.0.1 only; every child
process is stopped (then killed if need be) in a ``finally`` block; every wait is
bounded. Progress goes to stderr, the Markdown report to stdout.
"""
from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CONCURRENCY = 50
AB_TIMEOUT = 10  # ab -s: seconds ab waits on a socket before giving up
FILE_SIZE = 1024
CPU_BOUND = 90.0  # % of one core above which a process counts as CPU-bound
TW_REUSE = "/proc/sys/net/ipv4/tcp_tw_reuse"
START_TIMEOUT = 15.0  # seconds for a server to start accepting
STOP_TIMEOUT = 5.0  # seconds for a server to stop after its signal, before SIGKILL

# name -> (label, kind, extra sockscope arguments)
SERVERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "http.server": ("python3 -m http.server", "http.server", ()),
    "nginx": ("nginx (1 worker)", "nginx", ()),
    "epoll": ("SockScope epoll level", "sockscope", ("--mode", "epoll", "--trigger", "level")),
    "epoll-trace": ("SockScope epoll level + --trace (server events)", "sockscope",
                    ("--mode", "epoll", "--trigger", "level", "--states", "off",
                     "--packets", "off")),
    "epoll-trace-all": ("SockScope epoll level + --trace, states and packets", "sockscope",
                        ("--mode", "epoll", "--trigger", "level")),
    # The same with capture and the kernel's reports in threads of the server's process
    # (as before the kernel side had a process of its own): what that process saves.
    "epoll-trace-inline": ("SockScope epoll level + --trace, states and packets, inline",
                           "sockscope", ("--mode", "epoll", "--trigger", "level",
                                         "--kernel-side", "inline")),
    # The same with the kernel's polls as the only source of states (no state machine
    # over the segments, no tracepoint, no checks): what placing states exactly costs.
    # What a user without capture rights records: segments derived from the syscalls,
    # states from those segments (in the kernel side's process, fed the server's events).
    "epoll-trace-derived": ("SockScope epoll level + --trace, derived packets and states",
                            "sockscope", ("--mode", "epoll", "--trigger", "level",
                                          "--packets", "derived")),
    # The same derived in the server's own process (as before the kernel side derived
    # them): what deriving in the kernel side's process saves.
    "epoll-trace-derived-inline": ("SockScope epoll level + --trace, derived packets and "
                                   "states, inline", "sockscope",
                                   ("--mode", "epoll", "--trigger", "level", "--packets",
                                    "derived", "--kernel-side", "inline")),
    # The same as an ordinary user records it (uid 65534, no capability; needs root to
    # become one): derived segments, states checked by sock_diag, no tracepoint. Served by
    # SockScope installed into a venv of the system's python3 (``--user-python``).
    "epoll-trace-user": ("SockScope epoll level + --trace, as an ordinary user (derived)",
                         "sockscope", ("--mode", "epoll", "--trigger", "level")),
    "epoll-trace-polled": ("SockScope epoll level + --trace, packets, polled states only",
                           "sockscope", ("--mode", "epoll", "--trigger", "level",
                                         "--states", "observed")),
    "epoll-edge": ("SockScope epoll edge", "sockscope", ("--mode", "epoll", "--trigger", "edge")),
    "selectors": ("SockScope selectors", "sockscope", ("--mode", "selectors")),
    "threaded": ("SockScope threaded", "sockscope", ("--mode", "threaded")),
    "nonblocking": ("SockScope nonblocking (busy loop)", "sockscope",
                    ("--mode", "nonblocking", "--sweep-pause", "0")),
    "single": ("SockScope single (one client at a time)", "sockscope", ("--mode", "single")),
    "select": ("SockScope select", "sockscope", ("--mode", "select")),
    "poll": ("SockScope poll", "sockscope", ("--mode", "poll")),
    "processes": ("SockScope processes (fork per connection)", "sockscope",
                  ("--mode", "processes")),
    "gevent": ("SockScope gevent", "sockscope", ("--mode", "gevent")),
    "asyncio": ("SockScope asyncio", "sockscope", ("--mode", "asyncio")),
}
# Run order inside a round: the peers first, each SockScope variant right after
# them; every other round runs in reverse so slow drift of a noisy machine
# does not always favour the same servers.
ORDER = ["http.server", "nginx", "epoll", "epoll-trace", "epoll-trace-polled", "epoll-trace-all",
         "epoll-trace-inline", "epoll-trace-derived", "epoll-trace-derived-inline",
         "epoll-trace-user",
         "epoll-edge",
         "selectors", "threaded", "nonblocking", "single", "select", "poll", "processes",
         "gevent", "asyncio"]
ALIASES = {"httpserver": "http.server", "http-server": "http.server", "http_server": "http.server",
           "epoll-level": "epoll", "trace": "epoll-trace", "edge": "epoll-edge"}
LOADS = ("wrk", "ab")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
          "--bounding-set=-all"]

NGINX_CONF = """\
{user}worker_processes 1; daemon off; pid nginx.pid; error_log nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  server {{ listen {host}:{port}; root www; }} }}
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- results
@dataclass
class Run:
    """One load against one server in one round."""
    rate: float | None = None  # requests per second (None: no usable number)
    errors: dict[str, int] = field(default_factory=dict)
    problem: str = ""  # stall, abort, crash... (reported, never hidden)
    server_cpu: float | None = None  # % of one core, server process tree
    own_cpu: float | None = None  # % of one core, the server's process alone (no children)
    client_cpu: float | None = None  # % of one core, wrk or ab
    rnd: int = 0  # round number, from 1

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())

    @property
    def failed(self) -> bool:
        return self.error_total > 0 or bool(self.problem)

    @property
    def stalled(self) -> bool:
        return "aborted" in self.problem or "killed" in self.problem


@dataclass
class Results:
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)  # (server, load)
    notes: dict[str, list[str]] = field(default_factory=dict)  # server -> notes
    skipped: list[str] = field(default_factory=list)

    def add(self, server: str, load: str, run: Run) -> None:
        self.runs.setdefault((server, load), []).append(run)

    def note(self, server: str, text: str) -> None:
        self.notes.setdefault(server, []).append(text)

    def median(self, server: str, load: str) -> float | None:
        rates = [r.rate for r in self.runs.get((server, load), []) if r.rate is not None]
        return statistics.median(rates) if rates else None


# ---------------------------------------------------------------------------- processes
def proc_stats() -> dict[int, list[bytes]] | None:
    """Every process's /proc/PID/stat fields after its name (state, ppid, ...), by pid;
    None if /proc cannot be listed."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    stats: dict[int, list[bytes]] = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        stats[int(entry)] = raw[raw.rfind(b")") + 2:].split()
    return stats


def cpu_ticks(pid: int) -> int | None:
    """utime + stime (clock ticks) of ``pid`` and all its descendants; None if gone."""
    both = cpu_ticks_split(pid)
    return None if both is None else both[0]


def cpu_ticks_split(pid: int) -> tuple[int, int] | None:
    """utime + stime (clock ticks) of ``pid`` and all its descendants, and of ``pid``
    alone; None if gone."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    stats = proc_stats()
    if stats is None:
        return None
    for p, rest in stats.items():
        if len(rest) < 13:
            continue
        children.setdefault(int(rest[1]), []).append(p)
        ticks[p] = int(rest[11]) + int(rest[12])
    if pid not in ticks:
        return None
    total, todo, seen = 0, [pid], set()
    while todo and len(seen) < 10_000:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += ticks.get(p, 0)
        todo.extend(children.get(p, ()))
    return total, ticks[pid]


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, limit: int = 600) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return re.sub(r"\s*\n\s*", " | ", re.sub(r"[ \t]+", " ", text))[-limit:]


class Proc:
    """A child in its own session (process group), always stopped by ``stop()``."""

    def __init__(self, argv: list[str], cwd: Path, out: Path, err: Path, stop_signal: int):
        self.argv = argv
        self.out, self.err = out, err
        self.stop_signal = stop_signal
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.popen = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fo,
                                          stderr=fe, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> int | None:
        """Signal the process, wait (bounded), then SIGKILL its group if anything is left."""
        p = self.popen
        if p.poll() is None:
            try:
                p.send_signal(self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"  ! pid {self.pid} did not stop within {STOP_TIMEOUT:.0f}s: SIGKILL")
        self._kill_group()
        try:
            p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"  ! pid {self.pid} still running after SIGKILL")
        return p.returncode

    def _kill_group(self) -> None:
        # The group id is this child's pid (start_new_session); it only holds
        # this child and what it spawned (nginx's worker).
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


SAMPLE_EVERY = 0.25  # seconds between CPU samples of the server during a load


def run_tool(argv: list[str], timeout: float, server_pid: int
             ) -> tuple[int | None, str, str, float, float, tuple[float | None, float | None]]:
    """Run wrk/ab while sampling the server's CPU.

    Returns (returncode, or None if killed at ``timeout``; stdout; stderr; wall
    seconds; CPU seconds of the tool; server CPU as % of one core, its whole process
    tree and its own process alone). The server's
    CPU is taken between the first and the last sample made while the tool ran
    (steady state, without the tool's start and exit), or over the whole window
    when the run was too short for two samples.
    """
    cpu0, t0 = children_cpu_seconds(), time.monotonic()
    first = (t0, cpu_ticks_split(server_pid))
    samples: list[tuple[float, tuple[int, int] | None]] = []
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    out_parts: list[bytes] = []
    err_parts: list[bytes] = []
    rc: int | None = None
    try:
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                p.kill()
                o, e = p.communicate(timeout=STOP_TIMEOUT)
                out_parts.append(o or b"")
                err_parts.append(e or b"")
                rc = None
                break
            try:
                o, e = p.communicate(timeout=min(SAMPLE_EVERY, left))
            except subprocess.TimeoutExpired:
                samples.append((time.monotonic(), cpu_ticks_split(server_pid)))
                continue
            out_parts.append(o or b"")
            err_parts.append(e or b"")
            rc = p.returncode
            break
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(STOP_TIMEOUT)
    end = (time.monotonic(), cpu_ticks_split(server_pid))
    wall = end[0] - t0
    samples = [s for s in samples if s[1] is not None]
    a, b = (samples[0], samples[-1]) if len(samples) >= 2 else (first, end)
    server_cpu: tuple[float | None, float | None] = (None, None)
    if a[1] is not None and b[1] is not None and b[0] > a[0]:
        server_cpu = tuple(100.0 * (y - x) / CLK_TCK / (b[0] - a[0])  # type: ignore[assignment]
                           for x, y in zip(a[1], b[1]))
    return (rc, b"".join(out_parts).decode("utf-8", "replace"),
            b"".join(err_parts).decode("utf-8", "replace"), wall,
            children_cpu_seconds() - cpu0, server_cpu)


# ---------------------------------------------------------------------------- servers
class Env:
    """The temporary folder (www/index.html, nginx prefix, logs) and the tools found."""

    def __init__(self, workdir: Path, body: bytes | None = None) -> None:
        self.dir = workdir
        self.www = workdir / "www"
        self.www.mkdir()
        self.body = make_page() if body is None else body  # bench_flood: a page of its size
        (self.www / "index.html").write_bytes(self.body)
        # nginx's worker drops to "nobody" when started as root: make the files
        # readable to it as well (and the config says "user root;" then anyway).
        for p in (workdir, self.www):
            p.chmod(0o755)
        (self.www / "index.html").chmod(0o644)
        self.nginx = find_tool("nginx", ("/usr/sbin/nginx", "/usr/local/sbin/nginx",
                                         "/usr/local/nginx/sbin/nginx"))
        self.wrk = find_tool("wrk")
        self.ab = find_tool("ab")
        self.seq = 0

    def user_python(self) -> str:
        """SockScope as an ordinary user runs it: installed (not editable) into a venv of
        the system's python3 in this folder (this interpreter may live in root's home,
        which uid 65534 cannot read). Made once per run."""
        venv = self.dir / "user-venv"
        python = venv / "bin" / "python"
        if not python.exists():
            if os.geteuid() != 0 or not shutil.which("setpriv"):
                raise RuntimeError("becoming an ordinary user needs root and setpriv")
            log("making the ordinary user's venv (system python3, SockScope installed)")
            pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            for step in (["/usr/bin/python3", "-m", "venv", str(venv)],
                         [*pip, "--no-deps", str(REPO)], [*pip, "httptools", "orjson", "dpkt"]):
                done = subprocess.run(step, capture_output=True, text=True, timeout=600,
                                      cwd="/")
                if done.returncode:
                    raise RuntimeError(f"could not make the user's venv: {done.stderr[-300:]}")
            subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True, timeout=60)
        return str(python)

    def files(self, name: str) -> tuple[Path, Path]:
        self.seq += 1
        stem = f"{self.seq:03d}-{name}"
        return self.dir / f"{stem}.out", self.dir / f"{stem}.err"


def make_page() -> bytes:
    head = b"<!doctype html>\n<html><head><title>bench</title></head><body>\n<p>"
    foot = b"</p>\n</body></html>\n"
    filler = (b"SockScope benchmark page. " * 64)[:FILE_SIZE - len(head) - len(foot)]
    page = head + filler + foot
    assert len(page) == FILE_SIZE
    return page


def find_tool(name: str, extra: tuple[str, ...] = ()) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for path in extra:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class Server:
    """A running server under test: ``url``, ``proc``; ``stop()`` returns its last words."""

    def __init__(self, key: str, proc: Proc, port: int, trace: Path | None = None) -> None:
        self.key, self.proc, self.port, self.trace = key, proc, port, trace
        self.url = f"http://{HOST}:{port}/index.html"

    def stop(self) -> str:
        rc = self.proc.stop()
        words = ""
        if SERVERS[self.key][1] == "sockscope":
            try:
                lines = self.proc.out.read_text(errors="replace").splitlines()
            except OSError:
                lines = []
            words = next((ln for ln in reversed(lines) if ln.startswith("stopped:")), "")
            if not words:
                words = f"no 'stopped:' line (exit code {rc}; stderr: {tail(self.proc.err)})"
        return words


def wait_until(pred, deadline: float, proc: Proc) -> bool:  # type: ignore[no-untyped-def]
    while time.monotonic() < deadline:
        if pred():
            return True
        if not proc.alive():
            return bool(pred())
        time.sleep(0.05)
    return False


def start_server(key: str, env: Env) -> Server:
    """Start one server; raises RuntimeError with the reason if it does not come up."""
    kind = SERVERS[key][1]
    out, err = env.files(key)
    if kind == "sockscope":
        python, cwd, become = sys.executable, REPO, []
        if key == "epoll-trace-user":
            python, cwd, become = env.user_python(), Path("/"), NOBODY
        argv = [*become, python, "-m", "engine", "serve", *SERVERS[key][2], "--host", HOST,
                "--port", "0", "--root", str(env.www), "--policy", "keep-alive"]
        trace = None
        if key.startswith("epoll-trace"):
            folder = env.dir
            if become:  # a folder the user may write
                folder = env.dir / "user"
                folder.mkdir(exist_ok=True)
                folder.chmod(0o777)
            trace = folder / f"{out.stem}.trace.jsonl"
            argv += ["--trace", str(trace)]
        proc = Proc(argv, cwd, out, err, signal.SIGINT)
        found: list[int] = []

        def announced() -> bool:
            try:
                m = re.search(r"http://127\.0\.0\.1:(\d+)/", out.read_text(errors="replace"))
            except OSError:
                return False
            if m:
                found.append(int(m.group(1)))
            return bool(m)

        try:
            if not wait_until(announced, time.monotonic() + START_TIMEOUT, proc):
                if proc.alive():
                    raise RuntimeError(f"no URL line within {START_TIMEOUT:.0f}s "
                                       f"(stderr: {tail(err)})")
                raise RuntimeError(f"exited with code {proc.popen.returncode} before printing "
                                   f"its URL (stderr: {tail(err, 300)})")
        except BaseException:
            proc.stop()
            raise
        return Server(key, proc, found[0], trace)

    last = ""
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = free_port()
        if kind == "nginx":
            assert env.nginx
            (env.dir / "tmp").mkdir(exist_ok=True)
            user = "user root;\n" if os.geteuid() == 0 else ""
            (env.dir / "nginx.conf").write_text(NGINX_CONF.format(user=user, host=HOST, port=port))
            errlog = env.dir / "nginx.err"
            errlog.write_bytes(b"")
            argv = [env.nginx, "-p", str(env.dir) + "/", "-c", "nginx.conf", "-e", str(errlog)]
            proc = Proc(argv, env.dir, out, err, signal.SIGTERM)
        else:
            argv = [sys.executable, "-m", "http.server", "--bind", HOST, str(port),
                    "--directory", str(env.www)]
            proc = Proc(argv, env.dir, out, err, signal.SIGINT)
        try:
            if wait_until(lambda: port_open(port), time.monotonic() + START_TIMEOUT, proc) \
                    and proc.alive():
                return Server(key, proc, port)
            last = (f"not accepting on port {port} within {START_TIMEOUT:.0f}s "
                    f"(alive={proc.alive()}; stderr: {tail(err)}"
                    + (f"; nginx.err: {tail(env.dir / 'nginx.err')}" if kind == "nginx" else "")
                    + ")")
        except BaseException:
            proc.stop()
            raise
        proc.stop()
    raise RuntimeError(last)


def check_page(server: Server, body: bytes) -> str:
    """One GET before the load: '' if the server returns the 1 KiB file exactly."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=5)
    try:
        conn.request("GET", "/index.html", headers={"Connection": "close"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            return f"GET /index.html answered {resp.status} {resp.reason}"
        if data != body:
            return f"GET /index.html returned {len(data)} bytes, not the {len(body)}-byte file"
        return ""
    except (OSError, http.client.HTTPException) as exc:
        return f"GET /index.html failed: {exc!r}"
    finally:
        conn.close()


# ---------------------------------------------------------------------------- loads
def run_wrk(env: Env, server: Server, duration: int) -> Run:
    assert env.wrk
    argv = [env.wrk, "-t1", f"-c{CONCURRENCY}", f"-d{duration}s", server.url]
    rc, out, err, wall, tool_cpu, (server_cpu, own_cpu) = run_tool(argv, duration + 30,
                                                                   server.proc.pid)
    run = Run(server_cpu=server_cpu, own_cpu=own_cpu,
              client_cpu=100.0 * tool_cpu / wall if wall else None)
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if m:
        run.rate = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        for name, value in zip(("connect", "read", "write", "timeout"), m.groups()):
            if int(value):
                run.errors[name] = int(value)
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if m and int(m.group(1)):
        run.errors["non-2xx"] = int(m.group(1))
    if rc is None:
        run.problem = f"wrk killed after {wall:.0f}s"
    elif rc != 0 or run.rate is None:
        run.problem = f"wrk exit {rc}: {(err or out).strip()[-300:]}"
    return run


def run_ab(env: Env, server: Server, requests: int) -> Run:
    assert env.ab
    argv = [env.ab, "-q", "-n", str(requests), "-c", str(CONCURRENCY), "-s", str(AB_TIMEOUT),
            server.url]
    rc, out, err, wall, tool_cpu, (server_cpu, own_cpu) = run_tool(argv, 60 + requests / 100,
                                                                   server.proc.pid)
    run = Run(server_cpu=server_cpu, own_cpu=own_cpu,
              client_cpu=100.0 * tool_cpu / wall if wall else None)
    m = re.search(r"Requests per second:\s*([\d.]+)", out)
    if m:
        run.rate = float(m.group(1))
    m = re.search(r"Failed requests:\s*(\d+)", out)
    if m and int(m.group(1)):
        run.errors["failed"] = int(m.group(1))
        detail = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)",
                           out)
        if detail:
            run.problem = "failed = " + ", ".join(
                f"{k} {v}" for k, v in zip(("connect", "receive", "length", "exceptions"),
                                           detail.groups()) if int(v))
    m = re.search(r"Non-2xx responses:\s*(\d+)", out)
    if m and int(m.group(1)):
        run.errors["non-2xx"] = int(m.group(1))
    if run.rate is None:
        # ab gave up (its -s timeout, a reset...) or was killed: report how far it got,
        # and the effective rate over the wall time it took, stall included.
        done = re.search(r"Total of (\d+) requests completed", out + err)
        completed = int(done.group(1)) if done else 0
        why = "killed at the time limit" if rc is None else (err.strip().splitlines() or ["?"])[-1]
        run.problem = (f"ab aborted after {completed}/{requests} requests in {wall:.1f}s: "
                       f"{why.strip()}")
        run.errors["not completed"] = requests - completed
        run.rate = completed / wall if wall > 0 and completed else None
    elif rc not in (0,):
        run.problem = f"ab exit {rc}: {err.strip()[-200:]}"
    return run


# ---------------------------------------------------------------------------- TIME_WAIT
class TimeWait:
    """ab leaves thousands of TIME_WAIT sockets per run: enable tcp_tw_reuse, or wait."""

    def __init__(self) -> None:
        self.old: str | None = None
        self.changed = False
        self.must_wait = False
        self.message = ""

    def setup(self) -> None:
        try:
            with open(TW_REUSE) as f:
                self.old = f.read().strip()
        except OSError as exc:
            self.must_wait = True
            self.message = f"cannot read {TW_REUSE} ({exc.strerror}): waiting for TIME_WAIT to drain"
            return
        if self.old == "1":
            self.message = "net.ipv4.tcp_tw_reuse was already 1: left as is"
            return
        try:
            with open(TW_REUSE, "w") as f:
                f.write("1")
            self.changed = True
            self.message = (f"set net.ipv4.tcp_tw_reuse {self.old} -> 1 via {TW_REUSE} "
                            f"(restored to {self.old} at exit)")
        except OSError as exc:
            # 2 means "loopback only", which covers 127.0.0.1 already.
            self.must_wait = self.old != "2"
            self.message = (f"{TW_REUSE} is not writable ({exc.strerror}); it is {self.old}"
                            + ("" if self.must_wait else " (loopback reuse on: no wait needed)")
                            + ("; ab runs wait for TIME_WAIT sockets to drain" if self.must_wait
                               else ""))

    def restore(self) -> None:
        if self.changed and self.old is not None:
            try:
                with open(TW_REUSE, "w") as f:
                    f.write(self.old)
                log(f"restored net.ipv4.tcp_tw_reuse to {self.old}")
            except OSError as exc:
                log(f"could not restore net.ipv4.tcp_tw_reuse to {self.old}: {exc.strerror}")
            self.changed = False

    def before_ab(self, requests: int) -> None:
        """Without reuse: wait (at most 65 s) until enough ephemeral ports are free."""
        if not self.must_wait:
            return
        try:
            low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        except (OSError, ValueError):
            low, high = 32768, 60999
        span = high - low + 1
        deadline = time.monotonic() + 65
        waited = 0.0
        while time.monotonic() < deadline:
            tw = count_time_wait()
            if span - tw > requests * 1.2 + 1000:
                break
            time.sleep(1.0)
            waited += 1.0
        if waited:
            log(f"  waited {waited:.0f}s for TIME_WAIT sockets to drain ({count_time_wait()} left)")


def count_time_wait() -> int:
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f, None)
                for line in f:
                    parts = line.split(None, 4)
                    if len(parts) > 3 and parts[3] == "06":
                        count += 1
        except OSError:
            pass
    return count


# ---------------------------------------------------------------------------- report
def fmt_rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x" if a / b < 10 else f"{a / b:.1f}x"


def fmt_pct(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    return "—" if not vals else f"{statistics.median(vals):.0f}%"


def fmt_cpu(runs: list[Run]) -> str:
    """The server's CPU; where its children took some (the kernel side, forked
    connections), the server's own process's share beside it."""
    tree, own = fmt_pct([r.server_cpu for r in runs]), fmt_pct([r.own_cpu for r in runs])
    children = [r.server_cpu - r.own_cpu for r in runs
                if r.server_cpu is not None and r.own_cpu is not None]
    return tree if not children or statistics.median(children) < 1 else f"{tree} (own {own})"


def bound_by(runs: list[Run], client: str) -> str:
    def med(vals: list[float | None]) -> float | None:
        v = [x for x in vals if x is not None]
        return statistics.median(v) if v else None
    s = med([r.server_cpu for r in runs])
    c = med([r.client_cpu for r in runs])
    tags = [name for name, v in (("server", s), (client, c)) if v is not None and v >= CPU_BOUND]
    return " + ".join(tags) if tags else "neither"


def errors_cell(runs: list[Run]) -> str:
    total: dict[str, int] = {}
    for r in runs:
        for k, v in r.errors.items():
            total[k] = total.get(k, 0) + v
    problems = sum(1 for r in runs if r.problem and not r.errors)
    parts = [f"{k} {v:,}" for k, v in total.items()]
    if problems:
        parts.append(f"{problems} run(s) with problems")
    stalls = sum(1 for r in runs if r.stalled)
    if stalls:
        parts.append(f"**{stalls} stalled run(s)**")
    return ", ".join(parts) if parts else "0"


def stalled(res: Results, key: str, load: str) -> bool:
    return any(r.stalled and r.rate is not None for r in res.runs.get((key, load), []))


def table(res: Results, load: str, servers: list[str], client: str) -> list[str]:
    lines = [f"| server | req/s median [min–max] | vs nginx | vs http.server | errors (all rounds) "
             f"| server CPU | {client} CPU | CPU-bound |",
             "|---|---|---|---|---|---|---|---|"]
    ng, hs = res.median("nginx", load), res.median("http.server", load)
    for key in servers:
        runs = res.runs.get((key, load), [])
        if not runs:
            continue
        rates = [r.rate for r in runs if r.rate is not None]
        med = res.median(key, load)
        spread = f" [{fmt_rate(min(rates))}–{fmt_rate(max(rates))}]" if len(rates) > 1 else ""
        n = f" ({len(rates)}/{len(runs)} runs)" if len(rates) != len(runs) else ""
        star = "\\*" if any(r.stalled and r.rate is not None for r in runs) else ""
        ng_star = "\\*" if star or stalled(res, "nginx", load) else ""
        hs_star = "\\*" if star or stalled(res, "http.server", load) else ""
        lines.append(f"| {SERVERS[key][0]} | {fmt_rate(med)}{star}{spread}{n} "
                     f"| {fmt_ratio(med, ng)}{ng_star if med and ng else ''} "
                     f"| {fmt_ratio(med, hs)}{hs_star if med and hs else ''} | {errors_cell(runs)} "
                     f"| {fmt_cpu(runs)} "
                     f"| {fmt_pct([r.client_cpu for r in runs])} | {bound_by(runs, client)} |")
    return lines


def targets(res: Results, servers: list[str], loads: list[str]) -> list[str]:
    rows = ["| target | measured | result |", "|---|---|---|"]

    def ratio_target(what: str, a: str, b: str, need: float) -> None:
        ma, mb = res.median(a, "wrk"), res.median(b, "wrk")
        if ma is None or mb is None:
            missing = " and ".join(s for s, m in ((a, ma), (b, mb)) if m is None)
            rows.append(f"| {what} | not measured ({missing} under wrk) | SKIP |")
            return
        r = ma / mb
        per_round = [x.rate / y.rate for x in res.runs[(a, "wrk")] for y in res.runs[(b, "wrk")]
                     if x.rnd == y.rnd and x.rate and y.rate]
        spread = (f"; per round {min(per_round):.2f}–{max(per_round):.2f}x"
                  if len(per_round) > 1 else "")
        rows.append(f"| {what} | {r:.2f}x ({ma:,.0f} / {mb:,.0f} req/s{spread}) "
                    f"| {'PASS' if r >= need else 'FAIL'} |")

    ratio_target("epoll (no trace) keep-alive ≥ 0.7x nginx", "epoll", "nginx", 0.7)
    ratio_target("epoll (no trace) keep-alive ≥ 20x http.server", "epoll", "http.server", 20.0)
    ratio_target("epoll with full trace keep-alive ≥ 0.4x nginx", "epoll-trace", "nginx", 0.4)
    ratio_target("epoll with trace, states and packets keep-alive ≥ 0.4x nginx",
                 "epoll-trace-all", "nginx", 0.4)
    ratio_target("epoll with trace, derived packets and states keep-alive ≥ 0.4x nginx",
                 "epoll-trace-derived", "nginx", 0.4)
    ratio_target("epoll with trace as an ordinary user keep-alive ≥ 0.4x nginx",
                 "epoll-trace-user", "nginx", 0.4)
    ours = [s for s in servers if SERVERS[s][1] == "sockscope"]
    measured = [(s, ld) for s in ours for ld in loads if res.runs.get((s, ld))]
    bad = []
    for s, ld in measured:
        runs = res.runs[(s, ld)]
        if any(r.failed for r in runs):
            bad.append(f"{s}/{ld}: {errors_cell(runs)}")
    for s in ours:
        for what in ("did not start", "check failed", "server died", "server exited"):
            count = sum(1 for text in res.notes.get(s, []) if text.startswith(what))
            if count:
                bad.append(f"{s}: {what} ({count} round(s), see Notes)")
    want = "zero failed requests in every SockScope mode under wrk and ab"
    complete = set(loads) == set(LOADS) and set(ours) == {k for k, v in SERVERS.items()
                                                           if v[1] == "sockscope"}
    if not measured:
        rows.append(f"| {want} | not measured | SKIP |")
    elif bad:
        rows.append(f"| {want} | {'; '.join(bad)} | FAIL |")
    else:
        scope = "" if complete else f" (only {len(measured)} mode/load pairs measured)"
        rows.append(f"| {want} | 0 errors in {len(measured)} mode/load pairs{scope} | "
                    f"{'PASS' if complete else 'PASS (partial)'} |")
    return rows


def tool_version(argv: list[str], pattern: str) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(pattern, (p.stdout + p.stderr).decode("utf-8", "replace"))
    return m.group(1) if m else "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark SockScope's web server against nginx and python3 -m http.server "
                    "in the same run (keep-alive with wrk, short connections with ab).")
    p.add_argument("--duration", type=int, default=None, metavar="D",
                   help="seconds of each wrk run (default 10; --quick: 2)")
    p.add_argument("--ab-requests", type=int, default=None, metavar="N",
                   help="requests of each ab run (default 20000; --quick: 2000)")
    p.add_argument("--rounds", type=int, default=None, metavar="R",
                   help="rounds over all servers; medians are over them (default 3; --quick: 1)")
    p.add_argument("--servers", default="all",
                   help="comma-separated subset of: " + ", ".join(ORDER) + " (default: all)")
    p.add_argument("--loads", default="wrk,ab", help="comma-separated subset of: wrk, ab")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 s wrk, 2000 ab requests, 1 round (explicit options win)")
    args = p.parse_args(argv)
    quick = args.quick
    args.duration = args.duration if args.duration is not None else (2 if quick else 10)
    args.ab_requests = args.ab_requests if args.ab_requests is not None else \
        (2000 if quick else 20000)
    args.rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    if not 1 <= args.duration <= 600:
        p.error("--duration must be 1..600 seconds")
    if not CONCURRENCY <= args.ab_requests <= 1_000_000:
        p.error(f"--ab-requests must be {CONCURRENCY}..1000000")
    if not 1 <= args.rounds <= 50:
        p.error("--rounds must be 1..50")
    wanted = [s.strip().lower() for s in args.servers.split(",") if s.strip()]
    if wanted in (["all"], []):
        servers = list(ORDER)
    else:
        servers = []
        for s in wanted:
            s = ALIASES.get(s, s)
            if s not in SERVERS:
                p.error(f"unknown server {s!r}: choose from {', '.join(ORDER)}")
            if s not in servers:
                servers.append(s)
        servers = [s for s in ORDER if s in servers]
    loads = []
    for ld in (x.strip().lower() for x in args.loads.split(",") if x.strip()):
        if ld not in LOADS:
            p.error(f"unknown load {ld!r}: choose from wrk, ab")
        if ld not in loads:
            loads.append(ld)
    if not loads:
        p.error("--loads is empty")
    args.server_list, args.load_list = servers, [ld for ld in LOADS if ld in loads]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python3", *sys.argv]) if argv is None else \
        shlex.join(["python3", "bench/bench_http.py", *argv])

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    res = Results()
    tw = TimeWait()
    workdir = Path(tempfile.mkdtemp(prefix="sockscope-bench-"))
    interrupted = False
    try:
        env = Env(workdir)
        servers, loads = list(args.server_list), list(args.load_list)
        if "nginx" in servers and env.nginx is None:
            res.skipped.append("nginx: not found (PATH, /usr/sbin): peer skipped, "
                               "ratios to nginx are n/a")
            servers.remove("nginx")
        if "wrk" in loads and env.wrk is None:
            res.skipped.append("wrk: not found: keep-alive load skipped")
            loads.remove("wrk")
        if "ab" in loads and env.ab is None:
            res.skipped.append("ab (apache2-utils): not found: short-connection load skipped")
            loads.remove("ab")
        for s in res.skipped:
            log(f"SKIP {s}")
        args.server_list, args.load_list = servers, loads  # what the report covers
        if "ab" in loads:
            tw.setup()
            log(tw.message)
        if not loads or not servers:
            log("nothing to run")
        total = args.rounds * len(servers) if loads else 0
        n = 0
        for rnd in range(args.rounds if loads else 0):
            order = servers if rnd % 2 == 0 else list(reversed(servers))
            for key in order:
                n += 1
                log(f"[round {rnd + 1}/{args.rounds}, {n}/{total}] {SERVERS[key][0]}")
                try:
                    bench_one(key, env, args, loads, res, tw, rnd + 1)
                except Exception as exc:  # a bug here must not lose the other results
                    log(f"  ! benchmark error: {exc!r}")
                    res.note(key, f"benchmark error (not the server's): {exc!r}")
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}): reporting what was measured")
    finally:
        tw.restore()
        shutil.rmtree(workdir, ignore_errors=True)

    report(args, command, res, tw, interrupted, env_tools(args))
    return 130 if interrupted else 0


def env_tools(args: argparse.Namespace) -> str:
    nginx = find_tool("nginx", ("/usr/sbin/nginx", "/usr/local/sbin/nginx"))
    wrk, ab = find_tool("wrk"), find_tool("ab")
    parts = [f"Python {platform.python_version()}"]
    if nginx:
        parts.append("nginx " + tool_version([nginx, "-v"], r"nginx/(\S+)"))
    if wrk:
        parts.append("wrk " + tool_version([wrk, "-v"], r"wrk (\S+)"))
    if ab:
        parts.append("ab " + tool_version([ab, "-V"], r"Version (\S+)"))
    return ", ".join(parts)


def bench_one(key: str, env: Env, args: argparse.Namespace, loads: list[str], res: Results,
              tw: TimeWait, rnd: int) -> None:
    try:
        server = start_server(key, env)
    except RuntimeError as exc:
        log(f"  ! did not start: {exc}")
        res.note(key, f"did not start: {exc}")
        return
    words = ""
    try:
        problem = check_page(server, env.body)
        if problem:
            log(f"  ! {problem}")
            res.note(key, f"check failed: {problem}")
            return
        for load in loads:
            if not server.proc.alive():
                res.note(key, f"server died before {load}: {tail(server.proc.err)}")
                log(f"  ! server died before {load}")
                break
            if load == "wrk":
                run = run_wrk(env, server, args.duration)
            else:
                tw.before_ab(args.ab_requests)
                run = run_ab(env, server, args.ab_requests)
            run.rnd = rnd
            res.add(key, load, run)
            log(f"  {load}: {fmt_rate(run.rate)} req/s, errors {run.errors or 0}"
                + (f", {run.problem}" if run.problem else "")
                + f", server CPU {fmt_cpu([run])}, {load} CPU "
                  f"{fmt_pct([run.client_cpu])}")
        if not server.proc.alive():
            res.note(key, f"server exited during the run (code {server.proc.popen.returncode}): "
                          f"{tail(server.proc.err)}")
    finally:
        words = server.stop()
        if server.trace is not None:
            lost = dropped_by_sink(server.trace)
            try:
                size = server.trace.stat().st_size
                server.trace.unlink()
            except OSError:
                size = -1
            words += f"; trace file {size / 1e6:,.0f} MB (deleted)"
            words += "; lost: " + (", ".join(f"{n:,} by {sink}" for sink, n in lost.items())
                                   if lost else "nothing")
        if words:
            res.note(key, words)
            log(f"  {words}")
        err_text = tail(server.proc.err, 300)
        if err_text and SERVERS[key][1] == "sockscope":
            res.note(key, f"stderr: {err_text}")


def dropped_by_sink(trace: Path) -> dict[str, int]:
    """What the trace's ``dropped`` events say was lost, by the sink that lost it (the
    trace writer, the capture's kernel ring, the kernel side's pipe...)."""
    import orjson
    lost: dict[str, int] = {}
    try:
        with open(trace, "rb") as f:
            for line in f:
                if b'"kind":"dropped"' in line:
                    try:
                        row = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    sink = str(row.get("sink", "?"))
                    lost[sink] = lost.get(sink, 0) + int(row.get("count", 0))
    except OSError:
        pass
    return lost


def report(args: argparse.Namespace, command: str, res: Results, tw: TimeWait,
           interrupted: bool, tools: str) -> None:
    out: list[str] = []
    out.append("## SockScope HTTP benchmark")
    out.append("")
    out.append(f"Command: `{command}`  ")
    out.append(f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; machine: {os.cpu_count()} CPUs "
               f"({cpu_model()}), {platform.system()} {platform.release()}; {tools}  ")
    out.append(f"File: `/index.html`, {FILE_SIZE} bytes; {args.rounds} round(s), order reversed "
               f"every other round; all servers on {HOST}  ")
    if tw.message:
        out.append(f"TIME_WAIT: {tw.message}  ")
    if interrupted:
        out.append("**Interrupted: partial results.**  ")
    servers = args.server_list
    if "wrk" in args.load_list:
        out += ["", f"### Keep-alive: `wrk -t1 -c{CONCURRENCY} -d{args.duration}s`", ""]
        out += table(res, "wrk", servers, "wrk")
    if "ab" in args.load_list:
        out += ["", f"### Short connections: `ab -q -n {args.ab_requests} -c {CONCURRENCY} "
                    f"-s {AB_TIMEOUT}`", ""]
        out += table(res, "ab", servers, "ab")
    out += ["", "Ratios are of medians. CPU is the server's process tree (utime+stime from "
                "/proc/PID/stat) and the load tool's, as % of one core over the run (median of "
                f"rounds); CPU-bound means ≥ {CPU_BOUND:.0f}%. `python3 -m http.server` answers "
                "HTTP/1.0 and closes every connection, so under wrk it gets no keep-alive."]
    if any(r.stalled and r.rate is not None for runs in res.runs.values() for r in runs):
        out += ["", "\\* includes a stalled run (ab gave up or was stopped): its rate is the "
                    "requests completed divided by the wall time, the stall included (see Notes)."]
    out += ["", "### Targets", ""]
    out += targets(res, servers, args.load_list)
    notes: list[str] = []
    for s in res.skipped:
        notes.append(f"- skipped {s}")
    for key in servers:
        for load in args.load_list:
            for r in res.runs.get((key, load), []):
                if r.problem:
                    notes.append(f"- {key} {load} round {r.rnd}: {r.problem}")
    for key in servers:
        seen: list[str] = []
        for text in res.notes.get(key, []):
            if text not in seen:
                seen.append(text)
        for text in seen:
            notes.append(f"- {key}: {text}")
    if notes:
        out += ["", "### Notes", ""] + notes
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
