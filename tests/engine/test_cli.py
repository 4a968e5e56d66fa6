"""The command-line contract other tools depend on, run as real processes."""
from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from engine.trace import read_trace
from tests.conftest import ALL_MODES

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine"]


class Served:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*CLI, "serve", "--port", "0", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.first_line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert "http://" in self.first_line, self.proc.stderr.read()  # type: ignore[union-attr]
        self.url = self.first_line[self.first_line.index("http://"):].split()[0]

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=10)
        return self.proc.returncode, out


@pytest.fixture
def served() -> Iterator[type[Served]]:
    made: list[Served] = []

    def make(*args: str) -> Served:
        s = Served(*args)
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        if s.proc.poll() is None:
            s.proc.kill()
        s.proc.communicate(timeout=10)


def load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "load", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("mode", sorted({m for m, _ in ALL_MODES}))  # every mode of the registry
def test_serve_prints_url_and_stops_cleanly_with_complete_trace(served, tmp_path: Path,
                                                                 mode: str, sig: int) -> None:
    trace = tmp_path / "t.jsonl"
    server = served("--mode", mode, "--sweep-pause", "0.001", "--trace", str(trace))
    assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/")
    done = load(server.url, "--clients", "3", "--requests", "4", "--trace", str(tmp_path / "c.jsonl"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "requests: 12 ok, 0 failed" in done.stdout
    code, out = server.stop(sig)
    assert code == 0 and "stopped: 3 connections, 12 responses" in out
    events = read_trace(trace).events
    server_events = [e for e in events if e.src == "server"]
    assert server_events[-1].kind == "thread_exit" and server_events[0].kind == "mode"
    assert sum(e.kind == "response" for e in events) == 12
    client = read_trace(tmp_path / "c.jsonl").events
    assert {e.conn for e in client if e.kind == "connect"} == \
        {e.conn for e in events if e.kind == "accept"}


def test_serve_port_in_use_says_so(served, tmp_path: Path) -> None:
    """It says so, exits 1, and its trace holds why: an error event named as the OS
    names it, with what it tried (the time-wait lesson's failed restart is this event)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        proc = subprocess.run([*CLI, "serve", "--port", str(port), "--no-reuseaddr",
                               "--trace", str(tmp_path / "t.jsonl")], cwd=ROOT,
                              capture_output=True, text=True, timeout=20)
    finally:
        holder.close()
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "EADDRINUSE" in proc.stderr
    (error,) = read_trace(tmp_path / "t.jsonl").events
    assert error.kind == "error" and error.src == "server"
    assert error.data["what"] == "EADDRINUSE"  # by its name, as file errors are named
    assert error.data["errno"] == errno.errorcode[errno.EADDRINUSE] == "EADDRINUSE"
    assert error.data["port"] == port and error.data["reuseaddr"] is False
    assert error.data["exit_code"] == proc.returncode
    assert error.data["detail"] in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--mode", "kqueue-ish"], "invalid choice"),
    (["--root", "/definitely/not/here"], "is not a directory"),
    (["--port", "70000"], "out of range")])
def test_serve_bad_arguments_get_a_clear_answer(args: list[str], message: str) -> None:
    proc = subprocess.run([*CLI, "serve", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode == 2 and message in proc.stderr


def test_serve_other_root_and_policy_close(served, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>elsewhere</p>")
    server = served("--root", str(tmp_path), "--policy", "close")
    assert str(tmp_path.resolve()) in server.first_line
    done = load(server.url, "--clients", "2", "--requests", "3")
    assert "requests: 6 ok" in done.stdout and "connections opened: 6" in done.stdout
    server.stop()


def test_load_reports_failures_with_nonzero_exit(served) -> None:
    server = served()
    ok = load(server.url + "robots.txt", "--short", "--clients", "2", "--requests", "5")
    assert ok.returncode == 0
    for needle in ("requests: 10 ok, 0 failed", "connections opened: 10", "req/s",
                   "latency: p50", "p99"):
        assert needle in ok.stdout
    missing = load(server.url + "no-such-page", "--requests", "2")
    assert missing.returncode == 1 and "requests: 0 ok, 2 failed" in missing.stdout
    assert "404: 2" in missing.stdout
    code, _ = server.stop()
    refused = load(server.url, "--timeout", "2")  # nobody listens any more
    assert refused.returncode == 1 and "Connection refused" in refused.stdout


def test_load_bad_url_is_refused() -> None:
    proc = load("ftp://example/")
    assert proc.returncode == 2 and "not an http:// URL" in proc.stderr


def test_serve_and_load_never_import_qt() -> None:
    code = ("import sys, engine.cli, engine.clients, engine.trace, engine.modes.epoll, "
            "engine.modes.threaded, engine.modes.nonblocking, engine.modes.selectors;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','visualizer')];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _first_lines(prefix: list[str], *args: str, count: int = 3) -> str:
    proc = subprocess.Popen([*prefix, *CLI, "serve", "--port", "0", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(count)]  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGINT)
        try:  # clean stopping is tested elsewhere: this test reads the first lines
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
    return "".join(lines)


def test_serve_says_where_packets_and_states_come_from() -> None:
    from engine.capture.live import can_capture
    assert "kernel states and packets: recorded with --trace" in _first_lines([], count=2)
    lines = _first_lines([], "--trace", os.devnull, count=5)
    assert "kernel states: checked via sockdiag" in lines
    if can_capture()[0]:
        assert "packets: captured on lo (AF_PACKET)" in lines
        assert "kernel states: from the captured segments" in lines
    else:
        assert "packets: derived from syscalls" in lines
        assert "kernel states: from the derived segments" in lines
    lines = _first_lines([], "--trace", os.devnull, "--states", "observed", count=4)
    assert "kernel states: observed via sockdiag" in lines and "segments" not in lines


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="dropping CAP_NET_RAW needs root and setpriv")
def test_serve_without_capture_rights_derives_packets() -> None:
    lines = _first_lines(["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw"],
                         "--trace", os.devnull, count=4)
    assert "packets: derived from syscalls and states, marked derived" in lines
    assert "CAP_NET_RAW" in lines
    assert "kernel states: from the derived segments" in lines


def test_serve_without_the_kernel_infers_states(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    proc = subprocess.run([*CLI, "serve", "--port", "0", "--states", "inferred", "--packets", "off",
                           "--load=--requests 2", "--exit-after-load", "--trace", str(trace)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "kernel states: inferred from syscalls, marked inferred" in proc.stdout
    states = [e for e in read_trace(trace).events if e.kind == "tcp_state"]
    assert states and all(e.data["source"] == "inferred" for e in states)
    assert {"ESTABLISHED"} <= {e.data["state"] for e in states}


def test_export_and_import_round_trip(tmp_path: Path) -> None:
    trace, pcap, back = tmp_path / "t.jsonl", tmp_path / "t.pcapng", tmp_path / "back.jsonl"
    served = subprocess.run([*CLI, "serve", "--port", "0", "--packets", "derived",
                             "--load=--clients 2 --requests 2", "--exit-after-load",
                             "--trace", str(trace)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert served.returncode == 0 and "requests: 4 ok" in served.stdout, served.stdout
    # In time order, as a capture file holds them (derived segments are dated where
    # they happened, some after the events that revealed them were written).
    packets = sorted((e for e in read_trace(trace).events if e.kind == "packet"),
                     key=lambda e: (e.t_ns, e.seq))
    assert packets and all(e.data["origin"] == "derived" for e in packets)
    exported = subprocess.run([*CLI, "export", str(trace), "--pcapng", str(pcap)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    assert f"wrote {len(packets)} derived segments" in exported.stdout
    if shutil.which("tshark"):
        shown = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "tcp.flags.str"],
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and len(shown.stdout.split("\n")) - 1 == len(packets)
    imported = subprocess.run([*CLI, "import", str(pcap), "--trace", str(back)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    assert f"wrote {len(packets)} segments of 2 connections" in imported.stdout
    again = [e for e in read_trace(back).events if e.kind == "packet"]
    assert [(e.conn, e.data["flags"], e.data["len"]) for e in again] == \
        [(e.conn, e.data["flags"], e.data["len"]) for e in packets]


def test_export_and_import_refuse_bad_files_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not a trace\n")
    proc = subprocess.run([*CLI, "export", str(bad), "--pcapng", str(tmp_path / "x")], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "line 1" in proc.stderr
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\x00" * 100)
    proc = subprocess.run([*CLI, "import", str(garbage), "--trace", str(tmp_path / "y")],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "garbage.pcap" in proc.stderr


def test_serve_step_is_driven_from_stdin() -> None:
    import threading
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--step", "--states", "off",
                             "--packets", "off"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        url = first[first.index("http://"):].split()[0]
        early = []  # the loop may be held before the "stepping:" line is read
        for _ in range(5):
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if line.startswith("stepping:"):
                break
            early.append(line)
        else:
            raise AssertionError(f"no stepping line: {early}")
        answer: dict = {}

        def fetch() -> None:
            import urllib.request
            with urllib.request.urlopen(url + "robots.txt", timeout=20) as r:
                answer["status"] = r.status

        client = threading.Thread(target=fetch)
        client.start()
        held = []
        pending = [line for line in early if line.startswith("held before ")]
        for _ in range(4):  # step through the first actions one at a time
            line = pending.pop(0) if pending else proc.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("held before "), line
            held.append(line.split()[2])
            proc.stdin.write("\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        assert "answer" not in answer and "status" not in answer
        proc.stdin.write("c\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        client.join(20)
        assert answer.get("status") == 200
        assert held[0] == "epoll_wait" and "accept" in held
        proc.stdin.write("q\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_a_signal_landing_on_a_helper_thread_still_stops_the_server() -> None:
    """The kernel may deliver SIGINT to any thread; the loop must still wake."""
    script = (
        "import signal, sys, threading, time\n"
        "from engine.cli import main\n"
        "def later():\n"
        "    time.sleep(1.0)\n"
        "    signal.pthread_kill(threading.get_ident(), signal.SIGINT)\n"
        "threading.Thread(target=later, daemon=True).start()\n"
        "sys.exit(main(['serve', '--port', '0', '--trace', '/dev/null']))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0 and "stopped:" in proc.stdout, proc.stderr


@pytest.mark.parametrize("lab", [False, True], ids=["loopback", "lab"])
def test_control_load_runs_clients_inside_the_server_process(tmp_path: Path, lab: bool) -> None:
    """``load OPTIONS`` on stdin: the way a window reaches a server in the lab."""
    if lab:
        from engine.lab import lab_available
        ok, reason = lab_available()
        if not ok:
            pytest.skip(f"the lab is not available here: {reason}")
    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--control", "--states", "off",
                             "--packets", "off", "--trace", str(trace), *(["--lab"] if lab else [])],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        lines = []
        for _ in range(10):
            lines.append(proc.stdout.readline())  # type: ignore[union-attr]
            if lines[-1].startswith("stepping:"):
                break
        assert "load OPTIONS" in lines[-1], lines
        proc.stdin.write("load --clients 2 --requests 3 --bogus\n")  # type: ignore[union-attr]
        proc.stdin.write("load --clients 2 --requests 3\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        said = []
        for _ in range(20):
            said.append(proc.stdout.readline())  # type: ignore[union-attr]
            if said[-1].startswith("requests:"):
                break
        assert any("is not valid for sockscope load" in s for s in said), said
        proc.stdin.write("q\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    events = read_trace(trace).events
    assert sum(e.kind == "response" and e.src == "server" for e in events) == 6
    assert sum(e.kind == "connect" and e.src == "client" for e in events) == 2


def test_cpu_samples_show_a_busy_sweep_burning_a_core_and_epoll_sleeping(tmp_path: Path) -> None:
    import statistics
    import time
    percents = {}
    for mode in ("nonblocking", "epoll"):
        trace = tmp_path / f"{mode}.jsonl"
        proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--mode", mode, "--sweep-pause",
                                 "0", "--states", "off", "--packets", "off", "--trace",
                                 str(trace)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:  # idle: no client at all; until a dozen samples are written (flushed every
            # 50 ms), however slowly a loaded machine gives them
            deadline = time.monotonic() + 60
            while (not trace.exists() or trace.read_bytes().count(b'"kind":"cpu"') < 12) \
                    and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=20)
        samples = [e for e in read_trace(trace).events if e.kind == "cpu"]
        assert len(samples) >= 12 and all(e.src == "engine" for e in samples)
        # Every --cpu-interval (0.1 s), give or take what a loaded machine delays a wake-up.
        assert all(0.05 < e.data["interval_s"] < 2.0 for e in samples)
        assert statistics.median(e.data["interval_s"] for e in samples) < 0.3
        percents[mode] = statistics.median(e.data["percent"] for e in samples[2:])
    # The sweep never sleeps: it burns what the machine gives it, most of a core when the
    # other core is busy elsewhere; epoll_wait sleeps until something happens (its share
    # is its own CPU time, which other processes' load does not raise).
    assert percents["nonblocking"] > 30 and percents["nonblocking"] > 5 * percents["epoll"], \
        percents
    assert percents["epoll"] < 10, percents
