"""The "Never down" list, over the wire, in every mode, with the server as an ordinary user.

The bad-input tests run the server in this (root) process, where a mode-000 file is read
anyway. Here SockScope is installed into the system python's venv and runs as uid 65534
with no capability (``user_python``, ``NOBODY``); one server per mode serves a site built
for the list, and each case talks to it with raw sockets: the exact status line, and after
each case a normal ``GET /`` is still answered. At the end of each mode the trace must
hold an ``error`` event for each file failure, and the server must still be running and
exit 0 on SIGTERM with nothing on its standard error.

The cases run in the order written, per mode: the trace checks and the SIGTERM check at
the end read what the cases before them did (run the whole module, not one case with -k).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from engine.server import connection_id
from engine.trace import read_trace
from tests.conftest import ALL_MODES, MODE_IDS, serving
from tests.engine.test_as_a_user import NOBODY

HOST = "127.0.0.1"
IO_TIMEOUT = 5.0  # each socket operation
RESPONSE_TIME = 10.0  # one whole response, however many reads it takes
MAX_READS = 100_000  # and however many reads: every loop is bounded in count and time

OK = "HTTP/1.1 200 OK"
PARTIAL = "HTTP/1.1 206 Partial Content"
MOVED = "HTTP/1.1 301 Moved Permanently"
NOT_MODIFIED = "HTTP/1.1 304 Not Modified"
BAD = "HTTP/1.1 400 Bad Request"
FORBIDDEN = "HTTP/1.1 403 Forbidden"
NOT_FOUND = "HTTP/1.1 404 Not Found"
UNSATISFIABLE = "HTTP/1.1 416 Range Not Satisfiable"  # RFC 9110's reason phrase

HOME = b"<h1>home</h1>\n"
LOST = b"<h1>lost</h1>\n"  # the site's 404 page: unreadable to the server's user
SECRET = b"top secret, root only\n"
DOTFILE = b"a dotfile's secret\n"
LEAK = b"outside the root: never served\n"
BIG = 8 * 1024 * 1024 + 123  # streamed (over the small-file cache), and over the socket buffers
SMALL = 1000  # cached in memory
FOLDERS = [("日本", "%E6%97%A5%E6%9C%AC"), ("café", "caf%C3%A9"), ("a b", "a%20b"),
           ("q?x", "q%3Fx")]


def pattern(size: int) -> bytes:
    """Bytes whose every offset is told apart from its neighbours (a prime cycle)."""
    cycle = bytes(range(251))
    return (cycle * (size // 251 + 1))[:size]


# ---------------------------------------------------------------- fixtures
@contextlib.contextmanager
def shared_folder(prefix: str) -> Iterator[Path]:
    """``shared_dir`` for a whole module: a folder uid 65534 may write its trace in."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def build_site(folder: Path) -> tuple[Path, Path]:
    """The site root and, beside it, a folder outside the root (readable by anyone)."""
    root = folder / "site"
    root.mkdir()
    outside = folder / "outside"
    outside.mkdir()
    (outside / "leak.html").write_bytes(LEAK)
    (root / "index.html").write_bytes(HOME)
    (root / "404.html").write_bytes(LOST)
    (root / "secret.txt").write_bytes(SECRET)  # owned by root, mode 000 below
    (root / ".secret").write_bytes(DOTFILE)
    (root / "gone.txt").write_text("soon gone\n")
    (root / "swap.txt").write_text("old version\n")
    (root / "locked.txt").write_text("readable, for now\n")
    (root / "small.bin").write_bytes(pattern(SMALL))
    (root / "big.bin").write_bytes(pattern(BIG))
    (root / "cond.txt").write_text("first version\n")
    for name, _ in FOLDERS:
        (root / name).mkdir()
        (root / name / "index.html").write_text(f"{name}\n")
    (root / "d").mkdir()
    os.symlink(outside / "leak.html", root / "d" / "index.html")
    for path in [root, outside, *root.rglob("*"), *outside.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    (root / "secret.txt").chmod(0o000)
    (root / "404.html").chmod(0o000)
    an_hour_ago = time.time() - 3600  # so that a change is a later Last-Modified
    os.utime(root / "cond.txt", (an_hour_ago, an_hour_ago))
    return root, outside


@dataclass
class Served:
    proc: subprocess.Popen  # type: ignore[type-arg]
    port: int
    root: Path
    trace: Path
    mode: str


def user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def serve_argv(user_python: str, mode: str, trigger: str, root: Path, trace: Path,
               *extra: str) -> list[str]:
    return [*NOBODY, user_python, "-m", "engine", "serve", "--port", "0", "--mode", mode,
            "--trigger", trigger, "--root", str(root), "--states", "off", "--packets", "off",
            "--cpu-interval", "0", "--trace", str(trace),
            "--sweep-pause", "0.001",  # nonblocking: no busy loop filling the trace
            *extra]


@pytest.fixture(scope="module", params=ALL_MODES, ids=MODE_IDS)
def served(request: pytest.FixtureRequest, user_python: str, long_lived_pids: set[int]
           ) -> Iterator[Served]:
    """One server per mode, as uid 65534, for all the cases of that mode (so a child of
    this process between tests: in ``long_lived_pids``, conftest's ``no_leftovers`` lets it be)."""
    mode, trigger = request.param
    with shared_folder("sockscope-attack-") as folder:
        root, _ = build_site(folder)
        trace = folder / "server.jsonl"
        with serving(serve_argv(user_python, mode, trigger, root, trace),
                     cwd="/", env=user_env()) as (proc, port):
            long_lived_pids.add(proc.pid)
            try:
                yield Served(proc, port, root, trace, f"{mode}-{trigger}")
            finally:
                long_lived_pids.discard(proc.pid)


@pytest.fixture
def server(served: Served) -> Iterator[Served]:
    """The mode's server for one case; afterwards it must still be up and serve ``GET /``."""
    yield served
    assert_serves_on(served)


# ---------------------------------------------------------------- the client side
@dataclass
class Response:
    status_line: str
    headers: dict[str, list[str]]  # lower-case name -> every value sent
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


class Wire:
    """One client connection: raw bytes out, responses read one at a time (by their
    Content-Length), whatever follows kept for the next."""

    def __init__(self, port: int, timeout: float = IO_TIMEOUT, rcvbuf: int | None = None
                 ) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.pending = bytearray()

    def __enter__(self) -> "Wire":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def more(self) -> int:
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        self.pending += chunk
        return len(chunk)

    def response(self, body: bool = True) -> Response:
        """The next response; ``body=False`` for the answer to HEAD, or a 304."""
        deadline = time.monotonic() + RESPONSE_TIME
        for _ in range(MAX_READS):
            end = self.pending.find(b"\r\n\r\n")
            if end >= 0:
                break
            if time.monotonic() > deadline or not self.more():
                raise AssertionError(f"no whole response head, got {bytes(self.pending[:300])!r}")
        else:
            raise AssertionError("no whole response head within the reads allowed")
        lines = self.pending[:end].decode("latin-1").split("\r\n")
        del self.pending[:end + 4]
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        length = int(headers.get("content-length", ["0"])[0]) if body else 0
        for _ in range(MAX_READS):
            if len(self.pending) >= length:
                break
            if time.monotonic() > deadline or not self.more():
                raise AssertionError(f"{lines[0]}: the body ended after {len(self.pending)} "
                                     f"of {length} bytes")
        content = bytes(self.pending[:length])
        del self.pending[:length]
        return Response(lines[0], headers, content)

    def rest(self) -> bytes:
        """Everything else the server sends, until it closes."""
        deadline = time.monotonic() + RESPONSE_TIME
        try:
            for _ in range(MAX_READS):
                if time.monotonic() > deadline or not self.more():
                    break
        except TimeoutError:
            raise AssertionError(f"the server did not close the connection; after the "
                                 f"answer came {bytes(self.pending[:200])!r}") from None
        rest = bytes(self.pending)
        self.pending.clear()
        return rest

    def quiet_for(self, seconds: float) -> bytes:
        """What arrives within ``seconds`` (nothing, on a quiet keep-alive connection)."""
        self.sock.settimeout(seconds)
        try:
            for _ in range(MAX_READS):
                if not self.more():
                    break
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        extra = bytes(self.pending)
        self.pending.clear()
        return extra


def request(target: str, method: str = "GET", close: bool = True,
            headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: sockscope.test", *headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def ask(port: int, data: bytes, body: bool = True) -> tuple[Response, bytes]:
    """Send ``data`` on a new connection: the answer, and what came after it until the
    server closed (the requests say Connection: close, or are refused)."""
    with Wire(port) as wire:
        wire.send(data)
        answer = wire.response(body)
        return answer, wire.rest()


def assert_serves_on(served: Served) -> None:
    assert served.proc.poll() is None, f"the server ended ({served.proc.returncode})"
    answer, _ = ask(served.port, request("/"))
    assert answer.status_line == OK and answer.body == HOME, (answer.status_line, answer.body)


def file_errors(trace: Path) -> list[dict]:  # type: ignore[type-arg]
    return [e.data for e in read_trace(trace).events
            if e.kind == "error" and e.data.get("what") == "file"]


# ---------------------------------------------------------------- 1-3: the file system
def test_a_file_this_user_cannot_read_is_403(server: Served) -> None:
    answer, _ = ask(server.port, request("/secret.txt"))
    assert answer.status_line == FORBIDDEN
    assert SECRET not in answer.body


def test_an_unreadable_404_page_gives_the_plain_404(server: Served) -> None:
    answer, _ = ask(server.port, request("/no-such-page"))
    assert answer.status_line == NOT_FOUND
    assert LOST not in answer.body
    assert answer.body.startswith(b"404 Not Found"), answer.body
    assert answer.header("content-type") == "text/plain; charset=utf-8"


def test_a_file_deleted_after_it_was_served_is_404(server: Served) -> None:
    answer, _ = ask(server.port, request("/gone.txt"))  # served, and cached (a small file)
    assert answer.status_line == OK and answer.body == b"soon gone\n"
    (server.root / "gone.txt").unlink()
    answer, _ = ask(server.port, request("/gone.txt"))
    assert answer.status_line == NOT_FOUND, "a deleted file was served (from the cache?)"
    assert b"soon gone" not in answer.body


def test_a_file_replaced_after_it_was_served_is_sent_anew(server: Served) -> None:
    answer, _ = ask(server.port, request("/swap.txt"))
    assert answer.status_line == OK and answer.body == b"old version\n"
    new = server.root / "swap.new"
    new.write_text("the new version, longer than the old\n")
    new.chmod(0o644)
    os.replace(new, server.root / "swap.txt")  # as editors and deploy tools do
    answer, _ = ask(server.port, request("/swap.txt"))
    assert answer.status_line == OK
    assert answer.body == b"the new version, longer than the old\n", "the old file was served"


def test_a_file_made_unreadable_after_it_was_served_is_403(server: Served) -> None:
    answer, _ = ask(server.port, request("/locked.txt"))  # served, and cached
    assert answer.status_line == OK and answer.body == b"readable, for now\n"
    (server.root / "locked.txt").chmod(0o000)  # neither its size nor its mtime changes
    answer, _ = ask(server.port, request("/locked.txt"))
    assert answer.status_line == FORBIDDEN, "a file this user may no longer read was served"
    assert b"readable" not in answer.body


# ---------------------------------------------------------------- 4-6: folders, symlinks, HEAD
@pytest.mark.parametrize("name,encoded", FOLDERS, ids=["nihon", "cafe", "a-b", "q-x"])
def test_a_folder_without_its_slash_redirects_to_itself(server: Served, name: str,
                                                         encoded: str) -> None:
    answer, _ = ask(server.port, request("/" + encoded))
    assert answer.status_line == MOVED
    assert answer.header("location") == f"/{encoded}/"
    answer, _ = ask(server.port, request(f"/{encoded}/"))
    assert answer.status_line == OK and answer.body == f"{name}\n".encode()


@pytest.mark.parametrize("target", ["/d/", "/d/index.html"], ids=["folder", "index"])
def test_a_symlinked_index_out_of_the_root_is_refused(server: Served, target: str) -> None:
    answer, rest = ask(server.port, request(target))
    assert answer.status_line in (FORBIDDEN, NOT_FOUND)
    assert LEAK not in answer.body + rest


def test_head_of_a_redirect_sends_no_body(server: Served) -> None:
    with Wire(server.port) as wire:
        wire.send(request("/" + FOLDERS[0][1], method="HEAD", close=False))
        answer = wire.response(body=False)
        assert answer.status_line == MOVED
        assert answer.header("location") == f"/{FOLDERS[0][1]}/"
        assert wire.quiet_for(0.3) == b"", "bytes after the head of a HEAD answer"
        wire.send(request("/", close=False))
        answer = wire.response()
        assert answer.status_line == OK and answer.body == HOME
        # Pipelined: the GET's answer must follow the HEAD's head at once.
        wire.send(request("/" + FOLDERS[1][1], method="HEAD", close=False) + request("/"))
        assert wire.response(body=False).status_line == MOVED
        answer = wire.response()
        assert answer.status_line == OK and answer.body == HOME
        assert wire.rest() == b""


# ---------------------------------------------------------------- 7-10: what a request may be
@pytest.mark.parametrize("data,expected", [
    (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", BAD),
    (b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n", BAD),
    (b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\nConnection: close\r\n\r\n", BAD),
    (b"GET / HTTP/1.0\r\n\r\n", OK),
], ids=["1.1-no-host", "1.1-two-hosts", "1.1-same-host-twice", "1.0-no-host"])
def test_the_host_header(server: Served, data: bytes, expected: str) -> None:
    answer, _ = ask(server.port, data)
    assert answer.status_line == expected
    if expected == OK:
        assert answer.body == HOME


def test_an_http_0_9_request_is_refused_at_once(server: Served) -> None:
    """``GET /`` and a line end: HTTP/0.9, whose request has no head to wait for. The
    header timeout (10 s) is no answer."""
    with Wire(server.port, timeout=2.0) as wire:
        start = time.monotonic()
        wire.send(b"GET /\r\n")
        try:
            answer = wire.response()
        except TimeoutError:
            pytest.fail("no answer to GET / (HTTP/0.9) within 2 s")
        took = time.monotonic() - start
    assert answer.status_line == BAD
    assert took < 1.0, f"answered after {took:.2f} s"


def test_a_file_path_with_a_trailing_slash_is_404(server: Served) -> None:
    answer, _ = ask(server.port, request("/index.html/"))
    assert answer.status_line == NOT_FOUND
    assert answer.body != HOME


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1 extra words\r\n\r\n",
    b"\x00\x01\x02\x03\xff\r\n\r\n",
    b"GET / HTTP/1.1\nHost: sockscope.test\n\n",  # bare LF: refused, as before
    b"GET / HTTP/1.1\r\nHost: sockscope.test\nConnection: close\r\n\r\n",
], ids=["garbage", "extra-words", "binary", "bare-lf", "one-bare-lf"])
def test_a_malformed_request_is_400_then_closed(server: Served, data: bytes) -> None:
    with Wire(server.port) as wire:
        wire.send(data)
        answer = wire.response()
        assert answer.status_line == BAD
        assert wire.rest() == b""  # and the server closes


def test_a_dotfile_is_404(server: Served) -> None:
    answer, rest = ask(server.port, request("/.secret"))
    assert answer.status_line == NOT_FOUND
    assert DOTFILE not in answer.body + rest


@pytest.mark.parametrize("target", ["/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                                    "/..%2f..%2fetc%2fpasswd"],
                         ids=["dotdot", "encoded", "encoded-slashes"])
def test_a_path_out_of_the_root_is_refused(server: Served, target: str) -> None:
    answer, rest = ask(server.port, request(target))
    assert answer.status_line in (FORBIDDEN, NOT_FOUND)
    assert b"root:" not in answer.body + rest


# ---------------------------------------------------------------- 11: a client that vanishes
def test_clients_vanishing_mid_download_cost_nobody_else(server: Served) -> None:
    for _ in range(3):
        with Wire(server.port, rcvbuf=4096) as wire:
            wire.send(request("/big.bin", close=False))
            for _read in range(1000):  # a little of the 8 MB, then gone
                if len(wire.pending) >= 64 * 1024 or not wire.more():
                    break
            assert wire.pending.startswith(OK.encode()), bytes(wire.pending[:100])
            wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # closed with SO_LINGER 0: an RST, most of the file unsent
    with Wire(server.port) as wire:
        wire.send(request("/big.bin"))
        answer = wire.response()
    assert answer.status_line == OK
    assert len(answer.body) == BIG and answer.body == pattern(BIG)


# ---------------------------------------------------------------- 12: ranges, conditional GET
@pytest.mark.parametrize("name,size", [("small.bin", SMALL), ("big.bin", BIG)],
                         ids=["cached", "streamed"])
def test_a_range_of_the_first_bytes_is_206(server: Served, name: str, size: int) -> None:
    answer, rest = ask(server.port, request("/" + name, headers=("Range: bytes=0-9",)))
    assert answer.status_line == PARTIAL
    assert answer.header("content-range") == f"bytes 0-9/{size}"
    assert answer.body == pattern(size)[:10] and rest == b""


@pytest.mark.parametrize("name,size", [("small.bin", SMALL), ("big.bin", BIG)],
                         ids=["cached", "streamed"])
def test_a_suffix_range_is_the_last_bytes(server: Served, name: str, size: int) -> None:
    answer, rest = ask(server.port, request("/" + name, headers=("Range: bytes=-5",)))
    assert answer.status_line == PARTIAL
    assert answer.header("content-range") == f"bytes {size - 5}-{size - 1}/{size}"
    assert answer.body == pattern(size)[-5:] and rest == b""


@pytest.mark.parametrize("name,size", [("small.bin", SMALL), ("big.bin", BIG)],
                         ids=["cached", "streamed"])
def test_a_range_past_the_end_is_416(server: Served, name: str, size: int) -> None:
    answer, _ = ask(server.port, request("/" + name, headers=(f"Range: bytes={size}-",)))
    assert answer.status_line == UNSATISFIABLE
    assert answer.header("content-range") == f"bytes */{size}"


def validators(port: int) -> tuple[str, str, bytes]:
    """cond.txt's ETag and Last-Modified, and its body."""
    answer, _ = ask(port, request("/cond.txt"))
    assert answer.status_line == OK
    etag, modified = answer.header("etag"), answer.header("last-modified")
    assert etag and modified, f"no ETag or Last-Modified: {answer.headers}"
    return etag, modified, answer.body


@pytest.mark.parametrize("condition", ["If-None-Match", "If-Modified-Since"])
def test_a_conditional_get_of_an_unchanged_file_is_304(server: Served, condition: str) -> None:
    etag, modified, _ = validators(server.port)
    value = etag if condition == "If-None-Match" else modified
    answer, rest = ask(server.port, request("/cond.txt", headers=(f"{condition}: {value}",)),
                       body=False)
    assert answer.status_line == NOT_MODIFIED
    assert rest == b"", "a 304 with a body"


def test_a_conditional_get_of_a_changed_file_is_200(server: Served) -> None:
    etag, modified, body = validators(server.port)
    assert body == b"first version\n"
    new = server.root / "cond.new"
    new.write_text("second version, longer\n")  # modified now: an hour after the first
    new.chmod(0o644)
    os.replace(new, server.root / "cond.txt")
    time.sleep(1.1)  # past the site's one-second look at the disk (the cases above test sooner)
    for condition in (f"If-None-Match: {etag}", f"If-Modified-Since: {modified}"):
        answer, _ = ask(server.port, request("/cond.txt", headers=(condition,)))
        assert answer.status_line == OK, condition
        assert answer.body == b"second version, longer\n", condition
        assert answer.header("etag") != etag, condition


# ---------------------------------------------------------------- the end of each mode
@pytest.mark.parametrize("errno_name,status,name", [
    ("EACCES", 403, "secret.txt"),
    ("EACCES", 404, "404.html"),
    ("ENOENT", 404, "gone.txt"),
    ("EACCES", 403, "locked.txt"),
], ids=["unreadable-file", "unreadable-404-page", "deleted-file", "made-unreadable"])
def test_the_trace_records_each_file_failure(served: Served, errno_name: str, status: int,
                                             name: str) -> None:
    """Recorded during the cases above (the trace is flushed every 50 ms)."""
    deadline = time.monotonic() + 1.0
    for _ in range(100):
        errors = file_errors(served.trace)
        found = [e for e in errors if e.get("errno") == errno_name and e.get("status") == status
                 and name in str(e.get("detail", ""))]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if served.mode.startswith("processes") and name == "gone.txt":
        # Each child caches in its own memory, gone with it: the child asked after the
        # delete never knew the file, so its 404 is a plain one, not a file's failure.
        assert not found, found
        return
    assert found, f"no error event (what: file) for {name}, {errno_name} {status}; " \
                  f"the file errors recorded: {errors}"


def test_after_every_case_the_server_is_alive_and_stops_cleanly(served: Served) -> None:
    assert served.proc.poll() is None, f"the server ended ({served.proc.returncode})"
    assert_serves_on(served)
    served.proc.send_signal(signal.SIGTERM)
    try:
        _, err = served.proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the server did not stop within 10 s of SIGTERM")
    assert served.proc.returncode == 0, f"SIGTERM: exit {served.proc.returncode}: {err[-1000:]}"
    assert "Traceback" not in err, err[-3000:]


# ---------------------------------------------------------------- 13: a slow, steady reader
SEND_TIMEOUT = 2.0
RATE = 4 * 1024 * 1024  # bytes per second the slow reader takes: steady, far below loopback's
CHUNK = 64 * 1024  # it reads once its rate allows this much (every 16 ms)
TICK = 0.005  # and looks again this often


@pytest.fixture(scope="module")
def slow_site() -> Iterator[tuple[Path, int, str]]:
    """A folder with one file larger than the kernel's buffers can take at once (the
    server's send buffer grows to tcp_wmem's maximum), so that the server keeps sending
    for more than twice the send timeout. Yields the folder, the size and its sha256."""
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        wmem_max = 4 << 20
    mib = 1 << 20
    size = -(-(wmem_max + int(RATE * (2 * SEND_TIMEOUT + 1.0))) // mib) * mib
    with shared_folder("sockscope-slow-") as folder:
        root = folder / "site"
        root.mkdir()
        data = os.urandom(size)
        (root / "slow.bin").write_bytes(data)
        root.chmod(0o755)
        (root / "slow.bin").chmod(0o644)
        yield folder, size, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_a_slow_steady_download_is_never_cut(mode: str, trigger: str, user_python: str,
                                             slow_site: tuple[Path, int, str]) -> None:
    """The send timeout counts from the last progress, not from the start: a client that
    keeps reading gets the whole file however long it takes. (A short header timeout too:
    a deadline counted from the connection's start would cut it after 1 + 2 s.)"""
    folder, size, digest = slow_site
    trace = folder / f"slow-{mode}-{trigger}.jsonl"
    argv = serve_argv(user_python, mode, trigger, folder / "site", trace,
                      "--send-timeout", f"{SEND_TIMEOUT:g}", "--header-timeout", "1")
    with serving(argv, cwd="/", env=user_env()) as (proc, port):
        with Wire(port, rcvbuf=64 * 1024) as wire:
            conn = connection_id(wire.sock.getsockname(), (HOST, port))
            wire.send(request("/slow.bin"))
            for _ in range(MAX_READS):
                if b"\r\n\r\n" in wire.pending or not wire.more():
                    break
            head, _, first = bytes(wire.pending).partition(b"\r\n\r\n")
            assert head.startswith(OK.encode()), head[:200]
            sha = hashlib.sha256(first)
            got = len(first)
            start = time.monotonic()
            deadline = start + size / RATE + 15
            for _ in range(int((deadline - start) / TICK) + 100_000):
                if got >= size:
                    break
                now = time.monotonic()
                assert now < deadline, f"only {got} of {size} bytes after {now - start:.1f} s"
                allowed = min(int(RATE * (now - start)) - got, size - got)
                if allowed < min(CHUNK, size - got):
                    time.sleep(TICK)
                    continue
                try:
                    chunk = wire.sock.recv(min(allowed, 4 * CHUNK))
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    pytest.fail(f"the server cut the download after {got} of {size} bytes, "
                                f"{now - start:.1f} s in (send timeout {SEND_TIMEOUT:g} s)")
                sha.update(chunk)
                got += len(chunk)
            took = time.monotonic() - start
        assert got == size and sha.hexdigest() == digest
        assert proc.poll() is None
    sends = [e.t_ns for e in read_trace(trace).events if e.kind == "send" and e.conn == conn]
    sending = (sends[-1] - sends[0]) / 1e9 if sends else 0.0
    assert sending > 2 * SEND_TIMEOUT, (
        f"the server's sends took {sending:.1f} s of the {took:.1f} s download (the kernel's "
        f"buffers took the rest): the test proved nothing")
