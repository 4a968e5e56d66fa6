"""What the file system does is one request's answer, never the server's end.

The server runs as an ordinary user (uid 65534, SockScope installed in the system
python's venv): as root, a mode-000 file would simply be read. Every mode is tried over
the wire; after each bad file, the next request is answered as usual.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine.trace import read_trace
from tests.conftest import (ALL_MODES, CONCURRENT_IDS, CONCURRENT_MODES, MODE_IDS, read_to_eof,
                            serving)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
          "--inh-caps=-all", "--bounding-set=-all"]
BIG = 300 * 1024  # over the small-file cache: opened at each request
# The nonblocking mode's busy loop would fill the trace with millions of sweeps.
SPARE_THE_CPU = ("--sweep-pause", "0.001")


def site(folder: Path) -> Path:
    root = folder / "site"
    root.mkdir()
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "404.html").write_text("<h1>lost</h1>\n")
    (root / "secret.txt").write_text("no\n")
    (root / "secret.txt").chmod(0o000)
    (root / "big.bin").write_bytes(b"x" * BIG)
    for name in ("日本", "café", "a b", "q?x"):
        (root / name).mkdir()
        (root / name / "index.html").write_text(f"{name}\n")
    (root / "d").mkdir()
    os.symlink("/etc/passwd", root / "d" / "index.html")
    for path in [root, *root.rglob("*")]:
        if path.name != "secret.txt" and not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture
def served(request, user_python: str, shared_dir: Path) -> Iterator[tuple[int, Path, Path]]:  # type: ignore[no-untyped-def]
    mode, trigger = request.param
    root = site(shared_dir)
    trace = shared_dir / "t.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with serving([*NOBODY, user_python, "-m", "engine", "serve", "--port", "0", "--mode", mode,
                  "--trigger", trigger, "--root", str(root), "--states", "off", "--packets",
                  "off", "--cpu-interval", "0", "--trace", str(trace), *SPARE_THE_CPU],
                 cwd="/", env=env) as (_, port):
        yield port, root, trace


def get(port: int, target: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  .encode("latin-1"))
        data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("served", ALL_MODES, ids=MODE_IDS, indirect=True)
def test_bad_files_get_their_answer_and_the_server_serves_on(served) -> None:  # type: ignore[no-untyped-def]
    port, root, trace = served
    assert get(port, "/")[0] == 200
    # Unreadable to this user: 403, and served on.
    status, _, body = get(port, "/secret.txt")
    assert status == 403 and b"no" not in body
    assert get(port, "/")[0] == 200
    # An unreadable 404 page: the plain 404 instead.
    (root / "404.html").chmod(0o000)
    status, _, body = get(port, "/nothing-here")
    assert status == 404 and b"lost" not in body
    # A large file deleted between the look at the disk and its opening: 404.
    assert get(port, "/big.bin")[0] == 200
    (root / "big.bin").unlink()
    status, _, _ = get(port, "/big.bin")
    assert status == 404
    # A symlinked index.html pointing out of the root: refused.
    status, _, body = get(port, "/d/")
    assert status == 403 and b"root:" not in body
    # Folders whose names need percent-encoding: the 301 leads back to the folder.
    for name, encoded in (("日本", "%E6%97%A5%E6%9C%AC"), ("café", "caf%C3%A9"),
                          ("a b", "a%20b"), ("q?x", "q%3Fx")):
        status, headers, _ = get(port, "/" + encoded)
        assert status == 301 and headers["location"] == f"/{encoded}/", (name, headers)
        status, _, body = get(port, headers["location"])
        assert status == 200 and body.decode() == f"{name}\n"
    assert get(port, "/")[0] == 200
    # Each file error recorded with its errno (the trace is flushed every 50 ms).
    deadline = time.monotonic() + 3
    errors: list = []
    while time.monotonic() < deadline:
        errors = [e.data for e in read_trace(trace).events
                  if e.kind == "error" and e.data.get("what") == "file"]
        if len(errors) >= 2:
            break
        time.sleep(0.1)
    # (big.bin's delete is a failure to open it, ENOENT, only when it falls inside the
    # site's one-second look at the disk, and in the memory of the process that looked;
    # otherwise it is a plain 404. test_attack_as_user's deleted-file case records it
    # every time, for a cached file.)
    assert ("EACCES", 403) in {(e["errno"], e["status"]) for e in errors}, errors


@contextlib.contextmanager
def limited_server(mode: str, trigger: str, folder: Path, limit: int
                   ) -> Iterator[tuple[int, Path, Callable[[], int]]]:
    """A server allowed ``limit`` file descriptors, serving a 16 MiB file; yields its port,
    its trace, and how many descriptors it holds now."""
    import resource
    import sys
    root = folder / "site"
    root.mkdir()
    (root / "index.html").write_text("home\n")
    (root / "big.bin").write_bytes(b"x" * (16 << 20))  # more than the socket buffers hold
    trace = folder / "t.jsonl"

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    with serving([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode", mode,
                  "--trigger", trigger, "--root", str(root), "--states", "off", "--packets",
                  "off", "--cpu-interval", "0", "--trace", str(trace), *SPARE_THE_CPU],
                 cwd=Path(__file__).resolve().parents[2], preexec_fn=low_limit) as (proc, port):
        fds = Path(f"/proc/{proc.pid}/fd")
        yield port, trace, lambda: len(os.listdir(fds))
        assert proc.poll() is None, "the server ended"


def hold(port: int, held: Callable[[], int], limit: int, leave: int) -> list[socket.socket]:
    """Slow readers (a download that does not drain: a socket and an open file each), then
    idle connections, until the server has exactly ``leave`` descriptors left."""
    slow: list[socket.socket] = []
    for _ in range(2 * limit):  # bounded
        left = limit - held()
        if left <= leave:
            break
        before = held()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        if left - leave >= 2:
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.append(s)
        want = before + (2 if left - leave >= 2 else 1)
        deadline = time.monotonic() + 5
        while held() < want and time.monotonic() < deadline:
            time.sleep(0.01)  # accepted (and its file opened)
    assert limit - held() == leave, held()
    return slow


# Clients hold connections to use the descriptors up: not single (it holds one at a time),
# nor processes (the parent keeps no descriptor of a connection; each child has its own
# table: its limit is fork's: test_limits.py).
FD_MODES = [(m, t) for m, t in CONCURRENT_MODES if m != "processes"]
FD_IDS = [i for i, mt in zip(CONCURRENT_IDS, CONCURRENT_MODES) if mt in FD_MODES]


@pytest.mark.parametrize("mode,trigger", FD_MODES, ids=FD_IDS)
def test_out_of_file_descriptors_a_file_gets_503_and_the_server_serves_on(
        mode: str, trigger: str, tmp_path: Path) -> None:
    """Every descriptor but one is held: the next connection takes it, and its file cannot
    be opened (EMFILE)."""
    limit = 64
    with limited_server(mode, trigger, tmp_path, limit) as (port, trace, held):
        slow = hold(port, held, limit, leave=1)
        try:
            status, _, _ = get(port, "/big.bin")  # accepted with the last fd; none for the file
            assert status == 503
        finally:
            for s in slow:
                s.close()
        deadline = time.monotonic() + 5
        while held() > 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert get(port, "/")[0] == 200 and get(port, "/big.bin")[0] == 200
    errors = [e.data for e in read_trace(trace).events
              if e.kind == "error" and e.data.get("what") == "file"]
    assert ("EMFILE", 503) in {(e["errno"], e["status"]) for e in errors}


@pytest.mark.parametrize("mode,trigger", FD_MODES, ids=FD_IDS)
def test_connections_queued_while_out_of_descriptors_are_served_once_they_return(
        mode: str, trigger: str, tmp_path: Path) -> None:
    """Every descriptor is held: accept() fails (EMFILE) and new connections wait in the
    accept queue. Once descriptors return, every mode takes them, edge-triggered too
    (no new connection comes to make a new edge)."""
    limit = 64
    with limited_server(mode, trigger, tmp_path, limit) as (port, trace, held):
        # The page is cached first: answering it then needs no descriptor, so what is
        # tested is accept() alone (the first descriptor back takes the first in line).
        assert get(port, "/")[0] == 200
        slow = hold(port, held, limit, leave=0)
        waiting = []
        try:
            for _ in range(3):
                c = socket.create_connection(("127.0.0.1", port), timeout=10)
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                waiting.append(c)
            time.sleep(0.3)  # they wait: the server has no descriptor to accept them with
        finally:
            for s in slow:
                s.close()
        try:
            for c in waiting:
                answer = read_to_eof(c)
                assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
        finally:
            for c in waiting:
                c.close()
    failed = [e.data for e in read_trace(trace).events
              if e.kind == "error" and e.data.get("what") == "accept_failed"]
    assert failed, "accept() never ran out of descriptors: the test proved nothing"
