"""Shared fixtures. Qt needs a platform: tests run offscreen, never on a display."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never the user's settings: this process and every child it starts (the window's
# renders, `sockscope lesson --screenshot`...) keep theirs in a folder of the run's own.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

_CONFIG = tempfile.mkdtemp(prefix="sockscope-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG
atexit.register(shutil.rmtree, _CONFIG, ignore_errors=True)
# The children's temporary files, in a folder the run removes: what a child killed by a
# test leaves (a lesson's recording folder) goes with it. (`replay`/`lesson --screenshot`
# once wrote their throwaway settings after their folder was gone, which left 70 folders
# in /tmp: fixed in the product, tests/qt/test_replay_cli.py checks it with a TMPDIR of its
# own.) This process keeps /tmp (tempfile has already chosen it above): its pytest
# tmp_path, and the folders an unprivileged child must read (shared_dir).
_TMP = tempfile.mkdtemp(prefix="sockscope-test-tmp-")
os.chmod(_TMP, 0o1777)  # children run as uid 65534 too, as /tmp lets them
os.environ["TMPDIR"] = _TMP
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

import pytest

from engine import MemorySink, Probe, ServerConfig, create_server
from engine.events import closes_socket
from engine.modes import REGISTRY, variants
from engine.server import Server

# Every mode the registry has that runs here, and both triggers of epoll.
class Oversleep:
    """How late this machine wakes a sleeping thread of this process: a thread sleeps
    5 ms at a time and keeps, for each wake-up, how much later than asked it came."""

    STEP = 0.005

    def __enter__(self) -> "Oversleep":
        self._done = threading.Event()
        self.wakes: list[tuple[int, float]] = []  # (monotonic ns at the wake-up, late s)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.is_set():
            asked = time.monotonic_ns()
            time.sleep(self.STEP)
            woke = time.monotonic_ns()
            self.wakes.append((woke, (woke - asked) / 1e9 - self.STEP))

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)

    def worst(self, start_ns: int, end_ns: int) -> float:
        """The latest wake-up between the two moments (and the one just after them)."""
        late = [w for t, w in self.wakes if start_ns <= t <= end_ns]
        after = [w for t, w in self.wakes if t > end_ns][:1]
        return max(late + after, default=0.0)


def socket_close(event) -> bool:  # type: ignore[no-untyped-def]
    """A ``close`` event that closed the socket (not a forked server's close of one of its
    copies, which another process still holds: ``last: false``)."""
    return event.kind == "close" and closes_socket(event)


def socket_closes(sink) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [e for e in sink.of_kind("close") if closes_socket(e)]


ALL_MODES = [(m, t) for m, t in variants() if REGISTRY[m].available()[0]]
MODE_IDS = [m if len(REGISTRY[m].triggers) == 1 else f"{m}-{t}" for m, t in ALL_MODES]
# Those that serve many clients at once (single serves one at a time, on purpose: tests
# that hold many connections open check it apart).
CONCURRENT_MODES = [(m, t) for m, t in ALL_MODES if REGISTRY[m].concurrent]
CONCURRENT_IDS = [i for i, (m, _) in zip(MODE_IDS, ALL_MODES) if REGISTRY[m].concurrent]


@contextlib.contextmanager
def running_server(mode: str = "epoll", trigger: str = "level", **options: object
                   ) -> Iterator[tuple[Server, MemorySink]]:
    """A real server on 127.0.0.1 (free port) recording into a memory sink."""
    if mode == "nonblocking":
        options.setdefault("sweep_pause", 0.001)  # spare the CPU other tests share
    config = ServerConfig(mode=mode, trigger=trigger, port=0, **options)  # type: ignore[arg-type]
    sink = MemorySink()
    probe = Probe("server")
    probe.add_sink(sink)
    server = create_server(config, probe).start()
    try:
        yield server, sink
    finally:
        server.stop()


def record_derived(path: Path, requests: int, clients: int = 3) -> Path:
    """A real recording (``sockscope serve --trace``): epoll, keep-alive clients, segments
    derived from the syscalls and dated in the past (the file is not in time order),
    states inferred from them."""
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode", "epoll",
                    "--packets", "derived", "--states", "inferred",
                    f"--load=--clients {clients} --requests {requests}", "--exit-after-load",
                    "--trace", str(path)], cwd=Path(__file__).resolve().parents[1], check=True,
                   capture_output=True, timeout=120)
    return path


@contextlib.contextmanager
def serving(argv: list[str], **popen: object) -> Iterator[tuple[subprocess.Popen, int]]:  # type: ignore[type-arg]
    """``sockscope serve`` as a process (``argv``, with ``--port 0``): yields it and the port
    it says it serves on; at the end it is stopped (SIGTERM, then SIGKILL), and it must have
    ended cleanly."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)  # type: ignore[call-overload]
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        if found is None:
            proc.kill()
            raise AssertionError(first + proc.communicate(timeout=10)[1])
        yield proc, int(found.group(1))
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, f"the server ended with {proc.returncode}: {err[-500:]}"


def read_to_eof(sock, max_reads: int = 10_000,  # type: ignore[no-untyped-def]
                deadline: float | None = None) -> bytes:
    """Everything the peer sends until it closes (bounded by reads and the socket timeout;
    with a ``deadline``, a ``time.monotonic()``, each read's timeout is what is left of it)."""
    chunks = []
    for _ in range(max_reads):
        if deadline is not None:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder an unprivileged user (uid 65534) may write: pytest's own is private to root."""
    import shutil
    import tempfile
    path = Path(tempfile.mkdtemp(prefix="sockscope-shared-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    """A window made in Chinese installs the translation for the whole application:
    take it away after the test, so that the next one reads English again."""
    yield
    i18n = sys.modules.get("visualizer.i18n")
    if i18n is not None and i18n.current() != i18n.SOURCE:
        i18n.install(None, i18n.SOURCE)


@pytest.fixture(scope="session")
def long_lived_pids() -> set[int]:
    """Pids of child processes meant to outlive a test (a module's server, kept for all
    its cases): the fixture that starts one adds its pid and removes it once it stopped
    it. A fixture, not a module global: pytest loads this file as ``conftest`` and the
    tests import it again as ``tests.conftest``, a second copy with globals of its own."""
    return set()


@pytest.fixture(autouse=True)
def no_leftovers(long_lived_pids: set[int]) -> Iterator[None]:
    """Fail a test that leaves threads (Python's or Qt's) or child processes behind
    (but those in ``long_lived_pids``)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"test left threads running: {[t.name for t in extra]}")
    children = [pid for pid in child_pids() if pid not in long_lived_pids]
    if children:
        pytest.fail(f"test left child processes running: {children}")
    qt_core = sys.modules.get("PySide6.QtCore")
    if qt_core is not None:  # Qt's own threads: work left running in its pool
        pool = qt_core.QThreadPool.globalInstance()
        if not pool.waitForDone(5000):
            pytest.fail(f"test left {pool.activeThreadCount()} Qt pool threads working")


def child_pids(parent: int | None = None) -> list[int]:
    """Live (non-zombie) children of ``parent`` (this process by default); Linux /proc,
    elsewhere none known."""
    me = os.getpid() if parent is None else parent
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def lines_until(proc: subprocess.Popen, prefix: str, most: int = 20) -> tuple[list[str], str]:  # type: ignore[type-arg]
    """``serve``'s first lines up to the one starting with ``prefix`` (bounded), and the
    URL it serves at."""
    lines: list[str] = []
    while not any(line.startswith(prefix) for line in lines):
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line and len(lines) < most, (lines, proc.stderr.read())  # type: ignore[union-attr]
        lines.append(line)
    return lines, lines[0][lines[0].index("http://"):].split()[0]


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="session")
def user_python() -> Iterator[str]:
    """SockScope's engine as an ordinary user runs it: installed (not editable) into a
    venv of the system's python3, in a folder anyone may read, with the engine's
    dependencies and numpy (what reading a trace needs), not the window's. (This interpreter may
    live in root's home, which uid 65534 cannot read.) Needs root to become that user."""
    import shutil
    import subprocess
    import tempfile
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("becoming an ordinary user needs root and setpriv (util-linux)")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"no system python at {SYSTEM_PYTHON}")
    root = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="sockscope-user-"))
    try:
        folder.chmod(0o755)
        venv = folder / "venv"
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for step in ([SYSTEM_PYTHON, "-m", "venv", str(venv)], [*pip, "--no-deps", str(root)],
                     [*pip, "httptools", "orjson", "dpkt", "gevent", "numpy"]):
            done = subprocess.run(step, capture_output=True, text=True, timeout=300, cwd="/")
            if done.returncode != 0:
                why = (f"could not make the user's venv ({' '.join(step[:4])}…): "
                       f"{done.stderr.strip()[-300:]}")
                if os.environ.get("CI") == "true":  # CI reaches the registries: it must run
                    pytest.fail(why)
                pytest.skip(why)
        subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True, timeout=60)
        yield python
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def port_with_a_time_wait() -> int:
    """A free port on 127.0.0.1 where an earlier server's connection waits in TIME_WAIT
    (its end closed first): what a server started on it finds there, as a test run's
    servers find their predecessors' on the ports they are given."""
    import socket
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        accepted, _ = listener.accept()
        accepted.close()  # the server's end closes first: TIME_WAIT on the port
        assert client.recv(1) == b""
    listener.close()
    return port
