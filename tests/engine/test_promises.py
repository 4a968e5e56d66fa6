"""The README's HTTP promises, over the wire, against ``sockscope serve`` as it runs.

Each test here was written against a break of one product line (a mutation) and
seen to fail with it: the answers to bad input byte for byte (status line, the
fields, a Content-Length that is the body's, ``Connection: close``, then the
server's FIN) in every I/O mode; the 408 after the header timeout; the 503
beyond ``--max-connections``; the small-file cache that looks at the disk at
every request; the four-requests-at-a-time bound on a pipelined read; and the
everyday promises (keep-alive, HEAD without a body, ranges, 304).

The servers are real processes (``python3 -m engine serve --port 0``), one per
mode for the whole module (another, traced and with a small connection limit,
for the tests that need those), serving a site made in a temporary folder.
Every wait is bounded by a deadline and polls for its condition.
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import ALL_MODES, CONCURRENT_IDS, CONCURRENT_MODES, MODE_IDS

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
IO_TIMEOUT = 5.0  # the longest any one exchange may take
# The longest a wait on the trace file may take: it is flushed in batches and read whole
# on every look (a busy machine slows both; the wait ends as soon as the event is there).
TRACE_TIMEOUT = 30.0
START_TIMEOUT = 15.0  # a server process saying where it serves
HEADER_TIMEOUT = 0.8  # --header-timeout of the servers here
BIG_SIZE = 300 * 1024  # over the 256 KiB of a cached small file: streamed
MAX_CONNECTIONS = 2  # --max-connections of the traced server
PARSE_AHEAD = 4  # README: "of pipelined requests only the next four of a read are parsed"

INDEX = b"<!doctype html><title>promises</title><h1>index</h1>\n"
NOT_FOUND_PAGE = b"<!doctype html><title>404</title><p>No such page here.</p>\n"
SMALL = bytes(range(256)) * 4 + b"the end\n"  # 1031 bytes, cached
BIG = bytes((i * 7 + i // 251) & 0xFF for i in range(BIG_SIZE))
SECRET = b"TOP SECRET, outside the root\n"

DATE = re.compile(rb"^Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")


# ---------------------------------------------------------------- the site
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("promises")
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "root"
    root.mkdir()
    (root / "index.html").write_bytes(INDEX)
    (root / "404.html").write_bytes(NOT_FOUND_PAGE)
    (root / "small.txt").write_bytes(SMALL)
    (root / "big.bin").write_bytes(BIG)
    (root / ".hidden").write_bytes(SECRET)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    (root / "out.txt").symlink_to(base / "secret.txt")  # leads out of the root
    (root / "edits").mkdir()  # the cache tests' files, one per mode
    return root


# ---------------------------------------------------------------- the servers
@dataclass
class Serving:
    proc: subprocess.Popen  # type: ignore[type-arg]
    port: int
    mode: str
    trigger: str
    mode_id: str
    trace: Path | None = None


def _start(argv: list[str], deadline: float) -> tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    proc = subprocess.Popen([sys.executable, "-m", "engine", *argv], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = b""
        assert proc.stdout is not None
        while b"\n" not in line:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
            if not ready:
                raise AssertionError(f"the server said nothing within {START_TIMEOUT:.0f} s")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"the server ended at once: {proc.stderr.read()[-800:]!r}")  # type: ignore[union-attr]
            line += chunk
        found = re.search(rb"http://127\.0\.0\.1:(\d+)/", line)
        assert found is not None, line
        return proc, int(found.group(1))
    except BaseException:
        proc.kill()
        proc.wait(timeout=10)
        raise


def _stop(proc: subprocess.Popen) -> int:  # type: ignore[type-arg]
    """SIGTERM, then SIGKILL if it has not ended within 10 s; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise AssertionError("the server did not stop on SIGTERM within 10 s")
    return proc.returncode



def _serve(site: Path, mode: str, trigger: str, mode_id: str, long_lived_pids: set[int],
           *extra: str, trace: Path | None = None) -> Iterator[Serving]:
    argv = ["serve", "--port", "0", "--mode", mode, "--trigger", trigger, "--root", str(site),
            "--header-timeout", str(HEADER_TIMEOUT), "--idle-timeout", "10",
            "--send-timeout", "10", "--states", "off", "--packets", "off",
            "--cpu-interval", "0", *extra]
    if mode == "nonblocking":
        argv += ["--sweep-pause", "0.001"]  # spare the CPU other tests share
    if trace is not None:
        argv += ["--trace", str(trace)]
    proc, port = _start(argv, time.monotonic() + START_TIMEOUT)
    long_lived_pids.add(proc.pid)
    try:
        yield Serving(proc, port, mode, trigger, mode_id, trace)
        assert proc.poll() is None, f"the server ended while serving ({proc.returncode})"
    finally:
        code = _stop(proc)
        long_lived_pids.discard(proc.pid)
    assert code == 0, f"the server exited {code}"


@pytest.fixture(scope="module", params=ALL_MODES, ids=MODE_IDS)
def server(request: pytest.FixtureRequest, site: Path, long_lived_pids: set[int]
           ) -> Iterator[Serving]:
    """One server per mode for the module (default limits, the header timeout short)."""
    mode, trigger = request.param
    yield from _serve(site, mode, trigger, f"{mode}-{trigger}", long_lived_pids)


@pytest.fixture(scope="module", params=CONCURRENT_MODES, ids=CONCURRENT_IDS)
def traced(request: pytest.FixtureRequest, site: Path, long_lived_pids: set[int],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    """One server per concurrent mode, recording a trace, at most ``MAX_CONNECTIONS``."""
    mode, trigger = request.param
    trace = tmp_path_factory.mktemp("trace") / "server.jsonl"
    yield from _serve(site, mode, trigger, f"{mode}-{trigger}", long_lived_pids,
                      "--max-connections", str(MAX_CONNECTIONS), trace=trace)


# ---------------------------------------------------------------- the client side
def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(IO_TIMEOUT)
    try:
        sock.connect((HOST, port))
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class Answer:
    lines: list[bytes]  # the head's lines, the status line first
    body: bytes

    @property
    def status_line(self) -> bytes:
        return self.lines[0]

    @property
    def status(self) -> int:
        return int(self.lines[0].split(b" ")[1])

    def header(self, name: str) -> str | None:
        want = name.lower().encode("latin-1")
        found = [line.partition(b":")[2].strip().decode("latin-1") for line in self.lines[1:]
                 if line.partition(b":")[0].strip().lower() == want]
        assert len(found) <= 1, f"{name} twice in {self.lines!r}"
        return found[0] if found else None


class Reader:
    """The answers on one connection, read by their Content-Length, nothing skipped:
    what follows an answer must be the next answer's status line (or the end)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        assert left > 0, f"nothing more within {IO_TIMEOUT} s; have {self.buf[:300]!r}"
        self.sock.settimeout(left)
        return self.sock.recv(65536)

    def answer(self, head_only: bool = False, timeout: float = IO_TIMEOUT) -> Answer:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            assert len(self.buf) < 65536, f"no end of head: {self.buf[:300]!r}"
            chunk = self._more(deadline)
            assert chunk, f"closed before a whole head: {self.buf[:300]!r}"
            self.buf += chunk
        end = self.buf.index(b"\r\n\r\n")
        lines = self.buf[:end].split(b"\r\n")
        self.buf = self.buf[end + 4:]
        assert re.match(rb"^HTTP/1\.1 \d{3} [A-Za-z -]+$", lines[0]), lines[0][:200]
        answer = Answer(lines, b"")
        length_text = answer.header("Content-Length")
        length = 0 if head_only or length_text is None else int(length_text)
        while len(self.buf) < length:
            chunk = self._more(deadline)
            assert chunk, f"closed {length - len(self.buf)} bytes short of Content-Length"
            self.buf += chunk
        answer.body, self.buf = self.buf[:length], self.buf[length:]
        return answer

    def end(self, timeout: float = IO_TIMEOUT) -> str:
        """Nothing more, then the server's close: "eof" (a FIN; recv gives b"") or
        "reset". Fails if more bytes come, or the connection is still open at the end."""
        assert self.buf == b"", f"bytes after the last answer: {self.buf[:300]!r}"
        deadline = time.monotonic() + timeout
        try:
            chunk = self._more(deadline)
        except (socket.timeout, TimeoutError):
            raise AssertionError(f"the server left the connection open for {timeout} s") from None
        except ConnectionResetError:
            return "reset"
        assert chunk == b"", f"bytes after the last answer: {chunk[:300]!r}"
        return "eof"


def request(path: str, *extra: str, method: str = "GET", close: bool = False,
            version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    if close:
        lines.append("Connection: close")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def assert_head(answer: Answer, status_line: bytes, ctype: str | None, length: int | None,
                connection: str, *extra: bytes) -> None:
    """The head exactly (the Date's value only by its form): the status line, Server,
    Date, Content-Type, Content-Length, Connection, then ``extra`` in order."""
    lines = answer.lines
    assert lines[0] == status_line, lines[0]
    assert lines[1] == b"Server: SockScope", lines
    assert DATE.match(lines[2]), lines
    want = []
    if ctype is not None:
        want.append(b"Content-Type: " + ctype.encode("latin-1"))
    if length is not None:
        want.append(b"Content-Length: %d" % length)
    want.append(b"Connection: " + connection.encode("latin-1"))
    want.extend(extra)
    assert lines[3:] == want, lines


def wait_for(predicate, what: str, timeout: float = IO_TIMEOUT):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it gives something true (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.01)


def still_serving(serving: Serving) -> None:
    """The server answers a new connection 200, and runs on. A 503 (at its
    --max-connections) is asked again until IO_TIMEOUT: the test's own connections may
    have closed before the server saw them go (a thread still in its blocked send)."""
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        with connect(serving.port) as sock:
            sock.sendall(request("/", close=True))
            reader = Reader(sock)
            answer = reader.answer()
            if answer.status == 503 and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            assert answer.status_line == b"HTTP/1.1 200 OK" and answer.body == INDEX
            assert reader.end() == "eof"
            break
    assert serving.proc.poll() is None


# ---------------------------------------------------------------- error answers, byte for byte
TLS_CLIENT_HELLO = (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32))
                    + b"\x00\x02\x13\x01\x01\x00")
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
ALLOW = b"Allow: GET, HEAD"


@dataclass
class Refusal:
    payload: bytes
    status_line: bytes
    body: bytes | None  # exactly, or None: starts with ``prefix`` (llhttp's words follow)
    prefix: bytes = b""
    ctype: str = TEXT
    extra: tuple[bytes, ...] = ()
    at_once: bool = False  # answered before the header timeout (no head to wait for)


def _refusals() -> dict[str, Refusal]:
    big_n = len(BIG)
    small_n = len(SMALL)
    return {
        # README: "a malformed request line or header | HTTP/1.1 400 Bad Request, then close"
        "garbage": Refusal(b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 Bad Request", None,
                           b"400 Bad Request\n"),
        "extra-words": Refusal(b"GET / HTTP/1.1 extra words\r\nHost: x\r\n\r\n",
                               b"HTTP/1.1 400 Bad Request", None, b"400 Bad Request\n"),
        "bad-header": Refusal(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
                              b"HTTP/1.1 400 Bad Request", None, b"400 Bad Request\n"),
        "bare-lf": Refusal(b"GET / HTTP/1.1\nHost: x\n\n", b"HTTP/1.1 400 Bad Request", None,
                           b"400 Bad Request\n"),
        # HTTP/0.9: 400 at once, not after the header timeout
        "http09": Refusal(b"GET /\r\n", b"HTTP/1.1 400 Bad Request",
                          b"400 Bad Request\nan HTTP/0.9 request (no version): not served\n",
                          at_once=True),
        # RFC 9112 3.2
        "no-host": Refusal(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request",
                           b"400 Bad Request\nan HTTP/1.1 request without a Host header field\n"),
        "two-hosts": Refusal(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                             b"HTTP/1.1 400 Bad Request",
                             b"400 Bad Request\ntwo Host header fields\n"),
        "tls": Refusal(TLS_CLIENT_HELLO, b"HTTP/1.1 400 Bad Request",
                       b"400 Bad Request\na TLS handshake reached the plain-HTTP port\n",
                       at_once=True),
        "h2-preface": Refusal(HTTP2_PREFACE, b"HTTP/1.1 400 Bad Request",
                              b"400 Bad Request\nan HTTP/2 connection preface (prior knowledge)\n"),
        "brew-405": Refusal(request("/", method="BREW"), b"HTTP/1.1 405 Method Not Allowed",
                            b"405 Method Not Allowed\nmethod BREW\n", extra=(ALLOW,)),
        "post-405": Refusal(request("/", "Content-Length: 0", method="POST", close=True),
                            b"HTTP/1.1 405 Method Not Allowed",
                            b"405 Method Not Allowed\nmethod POST is not allowed\n",
                            extra=(ALLOW,)),
        "414": Refusal(request("/" + "a" * 9000), b"HTTP/1.1 414 URI Too Long",
                       b"414 URI Too Long\nrequest line over 8192 bytes\n"),
        "431": Refusal(request("/", *[f"X-Filler-{i}: {'v' * 100}" for i in range(200)]),
                       b"HTTP/1.1 431 Request Header Fields Too Large",
                       b"431 Request Header Fields Too Large\nheaders over 16384 bytes\n"),
        "505": Refusal(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
                       b"HTTP/1.1 505 HTTP Version Not Supported",
                       b"505 HTTP Version Not Supported\nHTTP/2.0 is not supported here\n"),
        # the file answers: closed because the request said so
        "404": Refusal(request("/no-such-page.html", close=True), b"HTTP/1.1 404 Not Found",
                       NOT_FOUND_PAGE, ctype=HTML),
        "404-dotfile": Refusal(request("/.hidden", close=True), b"HTTP/1.1 404 Not Found",
                               NOT_FOUND_PAGE, ctype=HTML),
        "404-trailing-slash": Refusal(request("/small.txt/", close=True),
                                      b"HTTP/1.1 404 Not Found", NOT_FOUND_PAGE, ctype=HTML),
        "404-nul": Refusal(request("/small.txt%00.html", close=True), b"HTTP/1.1 404 Not Found",
                           NOT_FOUND_PAGE, ctype=HTML),
        "403-dotdot": Refusal(request("/../secret.txt", close=True), b"HTTP/1.1 403 Forbidden",
                              b"403 Forbidden\n"),
        "403-encoded": Refusal(request("/%2e%2e/secret.txt", close=True),
                               b"HTTP/1.1 403 Forbidden", b"403 Forbidden\n"),
        "403-symlink-out": Refusal(request("/out.txt", close=True), b"HTTP/1.1 403 Forbidden",
                                   b"403 Forbidden\n"),
        "416-small": Refusal(request("/small.txt", f"Range: bytes={small_n}-", close=True),
                             b"HTTP/1.1 416 Range Not Satisfiable",
                             b"416 Range Not Satisfiable\nthe file has %d bytes\n" % small_n,
                             extra=(b"Content-Range: bytes */%d" % small_n,)),
        "416-big": Refusal(request("/big.bin", f"Range: bytes={big_n + 10}-", close=True),
                           b"HTTP/1.1 416 Range Not Satisfiable",
                           b"416 Range Not Satisfiable\nthe file has %d bytes\n" % big_n,
                           extra=(b"Content-Range: bytes */%d" % big_n,)),
    }


REFUSALS = _refusals()


@pytest.mark.parametrize("case", list(REFUSALS))
def test_error_answer_byte_for_byte_then_close(server: Serving, case: str) -> None:
    """Each error the README promises: its status line, its fields, a Content-Length
    that is its body's, ``Connection: close``, nothing after it, then the server's FIN."""
    want = REFUSALS[case]
    with connect(server.port) as sock:
        start = time.monotonic()
        sock.sendall(want.payload)
        reader = Reader(sock)
        answer = reader.answer()
        took = time.monotonic() - start
        how = reader.end()
    body = answer.body
    if want.body is not None:
        assert body == want.body
    else:
        assert body.startswith(want.prefix) and body.endswith(b"\n") and len(body) > len(want.prefix), body
    assert_head(answer, want.status_line, want.ctype, len(body), "close", *want.extra)
    assert how == "eof", "the answer was followed by a reset, not a FIN"
    if want.at_once:
        assert took < HEADER_TIMEOUT, f"answered after {took:.2f} s: the header timeout's, not at once"
    still_serving(server)


def test_a_refusal_reaches_a_client_that_keeps_sending(server: Serving) -> None:
    """A refused client that sends on (here 1 MiB after its bad line): its answer must
    not be lost to a reset. The server answers, shuts down writing (the client sees the
    answer, then the FIN) and discards what still comes, rather than closing on unread
    input, which makes the kernel send RST and the client's kernel drop the answer."""
    with connect(server.port) as sock:
        try:
            sock.sendall(b"GARBAGE\r\n\r\n" + b"x" * (1 << 20))
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise AssertionError(f"the server reset the connection while the client sent: {exc}")
        reader = Reader(sock)
        try:
            answer = reader.answer()
            how = reader.end()
        except ConnectionResetError as exc:
            raise AssertionError(f"the answer was lost to a reset: {exc}") from None
    assert answer.status_line == b"HTTP/1.1 400 Bad Request"
    assert answer.header("Connection") == "close"
    assert answer.header("Content-Length") == str(len(answer.body))
    assert how == "eof"
    still_serving(server)


def test_408_after_the_header_timeout_then_close(server: Serving) -> None:
    """README: "a client that stops mid-headers | 408 and close after the header timeout"."""
    start = time.monotonic()
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        reader = Reader(sock)
        answer = reader.answer(timeout=HEADER_TIMEOUT + 4)
        took = time.monotonic() - start
        how = reader.end()
    assert_head(answer, b"HTTP/1.1 408 Request Timeout", "text/plain", 0, "close")
    assert answer.body == b""
    assert how == "eof"
    assert took >= HEADER_TIMEOUT, f"408 after {took:.2f} s, before the header timeout"
    still_serving(server)


def test_a_refused_request_ends_the_connection_though_more_follows(server: Serving) -> None:
    """A good request, then garbage, then a good one, in one write: 200, 400, the end
    (the third is never answered: after a refusal nothing more is read)."""
    with connect(server.port) as sock:
        sock.sendall(request("/small.txt") + b"GARBAGE\r\n\r\n" + request("/"))
        reader = Reader(sock)
        first = reader.answer()
        second = reader.answer()
        how = reader.end()
    assert_head(first, b"HTTP/1.1 200 OK", TEXT, len(SMALL), "keep-alive", *file_fields(first))
    assert first.body == SMALL
    assert second.status_line == b"HTTP/1.1 400 Bad Request"
    assert second.header("Connection") == "close"
    assert how == "eof"


# ---------------------------------------------------------------- keep-alive, HEAD, ranges, 304
def file_fields(answer: Answer) -> tuple[bytes, ...]:
    """The fields every file answer carries, in the order sent (checked by form)."""
    tail = answer.lines[-4:]
    assert re.match(rb"^Last-Modified: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$",
                    tail[0]), tail
    assert re.match(rb'^ETag: "[0-9a-f]+-[0-9a-f]+"$', tail[1]), tail
    assert tail[2:] == [b"Accept-Ranges: bytes", b"Cache-Control: no-cache"], tail
    return tuple(tail)


def test_keep_alive_answers_in_turn_on_one_connection(server: Serving) -> None:
    """README: keep-alive follows the version and ``Connection``; every answer carries
    Content-Length. Five answers on one connection, read by their lengths; then
    ``Connection: close`` ends it."""
    with connect(server.port) as sock:
        reader = Reader(sock)
        for path, body, ctype in (("/small.txt", SMALL, TEXT), ("/big.bin", BIG,
                                                                   "application/octet-stream"),
                                  ("/", INDEX, HTML), ("/small.txt", SMALL, TEXT)):
            sock.sendall(request(path))
            answer = reader.answer()
            assert_head(answer, b"HTTP/1.1 200 OK", ctype, len(body), "keep-alive",
                        *file_fields(answer))
            assert answer.body == body, path
        sock.sendall(request("/missing.txt"))  # a 404 does not end a keep-alive connection
        answer = reader.answer()
        assert_head(answer, b"HTTP/1.1 404 Not Found", HTML, len(NOT_FOUND_PAGE), "keep-alive")
        assert answer.body == NOT_FOUND_PAGE
        sock.sendall(request("/sub/", close=True))
        answer = reader.answer()
        assert answer.status_line == b"HTTP/1.1 200 OK" and answer.body == b"<p>sub</p>\n"
        assert answer.header("Connection") == "close"
        assert reader.end() == "eof"


@pytest.mark.parametrize("version, connection, kept", [
    ("1.0", None, False), ("1.0", "keep-alive", True), ("1.1", None, True),
    ("1.1", "close", False)])
def test_keep_alive_follows_version_and_connection(server: Serving, version: str,
                                                   connection: str | None, kept: bool) -> None:
    extra = (f"Connection: {connection}",) if connection else ()
    with connect(server.port) as sock:
        reader = Reader(sock)
        sock.sendall(request("/small.txt", *extra, version=version))
        answer = reader.answer()
        assert answer.body == SMALL
        assert answer.header("Connection") == ("keep-alive" if kept else "close")
        if kept:  # still open: a second request is answered on it
            sock.sendall(request("/", close=True, version=version))
            assert reader.answer().body == INDEX
        assert reader.end() == "eof"


def test_pipelined_requests_answered_in_order(server: Serving) -> None:
    paths = ["/small.txt", "/big.bin", "/missing", "/", "/small.txt"]
    bodies = [SMALL, BIG, NOT_FOUND_PAGE, INDEX, SMALL]
    with connect(server.port) as sock:
        sock.sendall(b"".join(request(p) for p in paths[:-1]) + request(paths[-1], close=True))
        reader = Reader(sock)
        answers = [reader.answer() for _ in paths]
        assert reader.end() == "eof"
    assert [a.body for a in answers] == bodies
    assert [a.status for a in answers] == [200, 200, 404, 200, 200]
    assert [a.header("Connection") for a in answers] == ["keep-alive"] * 4 + ["close"]


@pytest.mark.parametrize("path, body", [("/small.txt", SMALL), ("/big.bin", BIG)],
                         ids=["cached", "streamed"])
def test_head_is_the_get_head_without_a_body(server: Serving, path: str, body: bytes) -> None:
    """HEAD: the head a GET gets (its Content-Length the body's), and no byte of body:
    the next answer on the connection follows the blank line at once."""
    with connect(server.port) as sock:
        reader = Reader(sock)
        sock.sendall(request(path, method="HEAD"))
        head = reader.answer(head_only=True)
        sock.sendall(request(path))
        get = reader.answer()
        sock.sendall(request("/nothing-here", method="HEAD"))
        missing = reader.answer(head_only=True)
        sock.sendall(request("/sub", method="HEAD", close=True))
        moved = reader.answer(head_only=True)
        assert reader.end() == "eof"
    # The same head but the Date's value (a second may have passed between them).
    assert head.lines[:2] == get.lines[:2] and head.lines[3:] == get.lines[3:]
    assert head.header("Content-Length") == str(len(body)) and get.body == body
    assert_head(missing, b"HTTP/1.1 404 Not Found", HTML, len(NOT_FOUND_PAGE), "keep-alive")
    assert_head(moved, b"HTTP/1.1 301 Moved Permanently", TEXT, len(b"301 Moved Permanently\n"),
                "close", b"Location: /sub/")


def _ranges(size: int) -> list[tuple[str, int, tuple[int, int] | None]]:
    """(Range value, status, (first, last) of a 206) for a file of ``size`` bytes."""
    return [
        ("bytes=0-9", 206, (0, 9)),
        ("bytes=10-", 206, (10, size - 1)),
        (f"bytes={size - 1}-", 206, (size - 1, size - 1)),
        (f"bytes={size - 1}-{size - 1}", 206, (size - 1, size - 1)),
        (f"bytes=5-{size + 100}", 206, (5, size - 1)),
        ("bytes=-10", 206, (size - 10, size - 1)),
        ("bytes=-1", 206, (size - 1, size - 1)),
        (f"bytes=-{size + 5}", 206, (0, size - 1)),
        (f"bytes={size}-", 416, None),
        ("bytes=-0", 416, None),
        ("bytes=5-2", 200, None),  # invalid: ignored
        ("bytes=0-1,3-4", 200, None),  # several: the whole file
        ("items=0-1", 200, None),
    ]


@pytest.mark.parametrize("path, body", [("/small.txt", SMALL), ("/big.bin", BIG)],
                         ids=["cached", "streamed"])
def test_range_edges(server: Serving, path: str, body: bytes) -> None:
    """README: one ``Range: bytes=`` range gets 206 (or 416 past the end); several
    get the whole file. Each on one keep-alive connection, lengths exact."""
    size = len(body)
    ctype = TEXT if path.endswith(".txt") else "application/octet-stream"
    with connect(server.port) as sock:
        reader = Reader(sock)
        for value, status, span in _ranges(size):
            sock.sendall(request(path, f"Range: {value}"))
            answer = reader.answer()
            if status == 206:
                assert span is not None
                first, last = span
                fields = file_fields(answer)
                assert_head(answer, b"HTTP/1.1 206 Partial Content", ctype, last - first + 1,
                            "keep-alive", b"Content-Range: bytes %d-%d/%d" % (first, last, size),
                            *fields)
                assert answer.body == body[first:last + 1], value
            elif status == 416:
                want = b"416 Range Not Satisfiable\nthe file has %d bytes\n" % size
                assert_head(answer, b"HTTP/1.1 416 Range Not Satisfiable", TEXT, len(want),
                            "keep-alive", b"Content-Range: bytes */%d" % size)
                assert answer.body == want
            else:
                assert_head(answer, b"HTTP/1.1 200 OK", ctype, size, "keep-alive",
                            *file_fields(answer))
                assert answer.body == body, value
        sock.sendall(request("/", close=True))
        assert reader.answer().body == INDEX
        assert reader.end() == "eof"


@pytest.mark.parametrize("path, body", [("/small.txt", SMALL), ("/big.bin", BIG)],
                         ids=["cached", "streamed"])
def test_conditional_get_304(server: Serving, path: str, body: bytes) -> None:
    with connect(server.port) as sock:
        reader = Reader(sock)
        sock.sendall(request(path))
        first = reader.answer()
        etag, modified = first.header("ETag"), first.header("Last-Modified")
        assert etag and modified and first.body == body
        for condition in (f"If-None-Match: {etag}", f"If-None-Match: W/{etag}",
                          f"If-Modified-Since: {modified}"):
            sock.sendall(request(path, condition))
            answer = reader.answer(head_only=True)
            assert answer.lines[0] == b"HTTP/1.1 304 Not Modified", condition
            assert answer.header("Content-Length") is None  # a 304 sends no body
            assert answer.lines[3:] == [b"Connection: keep-alive", *first.lines[-4:]]
        sock.sendall(request(path, 'If-None-Match: "other"'))
        assert reader.answer().body == body
        sock.sendall(request(path, "Range: bytes=0-3", 'If-Range: "stale"', close=True))
        stale = reader.answer()
        assert stale.status_line == b"HTTP/1.1 200 OK" and stale.body == body
        assert reader.end() == "eof"


# ---------------------------------------------------------------- the cache looks at the disk
def after_a_tick(path: Path) -> None:
    """Until the file system's clock (coarse: a tick of the kernel's) has moved past
    ``path``'s change time: an edit from now on gets a ctime and mtime of its own."""
    before = path.stat().st_ctime_ns
    tick = path.parent.parent.parent / f"tick-{path.name}"  # beside the root, not served
    try:
        wait_for(lambda: (tick.write_bytes(b"."), tick.stat().st_ctime_ns > before)[1],
                 "the file system's clock to move on", timeout=2.0)
    finally:
        tick.unlink(missing_ok=True)


def test_small_file_cache_answers_the_file_as_it_is_now(server: Serving) -> None:
    """README: files up to 256 KiB are cached, checked on disk at every request: an
    edited, replaced, deleted file is answered for what it is now. Each change on the
    connection that read the file before (the cache of a forked child is its own),
    then on a new connection."""
    path = server_site(server) / "edits" / f"{server.mode_id}.txt"
    target = f"/edits/{server.mode_id}.txt"
    path.write_bytes(b"A" * 100)

    def get(sock_reader: Reader, sock: socket.socket) -> bytes:
        sock.sendall(request(target))
        answer = sock_reader.answer()
        assert answer.header("Content-Length") == str(len(answer.body))
        return answer.body if answer.status == 200 else b"%d" % answer.status

    def fresh() -> bytes:
        with connect(server.port) as other:
            return get(Reader(other), other)

    try:
        with connect(server.port) as sock:
            reader = Reader(sock)
            assert get(reader, sock) == b"A" * 100
            assert get(reader, sock) == b"A" * 100  # (from the cache now)
            # edited in place, the same size
            after_a_tick(path)
            with open(path, "r+b") as f:
                f.write(b"B" * 100)
            assert get(reader, sock) == b"B" * 100
            if server.mode != "single":  # (single serves one connection at a time)
                assert fresh() == b"B" * 100
            # edited, another size
            after_a_tick(path)
            path.write_bytes(b"C" * 150)
            assert get(reader, sock) == b"C" * 150
            # edited the same size, and its time put back (as cp -p, rsync -t): its ctime says
            after_a_tick(path)
            st = path.stat()
            path.write_bytes(b"D" * 150)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            assert path.stat().st_mtime_ns == st.st_mtime_ns
            assert get(reader, sock) == b"D" * 150
            # replaced by a rename (a new inode), same size and time
            after_a_tick(path)
            new = path.with_name(path.name + ".new")
            new.write_bytes(b"E" * 150)
            os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(new, path)
            assert get(reader, sock) == b"E" * 150
            # deleted: 404; created again: served
            path.unlink()
            assert get(reader, sock) == b"404"
            path.write_bytes(b"F" * 10)
            assert get(reader, sock) == b"F" * 10
        assert fresh() == b"F" * 10
    finally:
        path.unlink(missing_ok=True)


def server_site(server: Serving) -> Path:
    argv = server.proc.args
    return Path(argv[argv.index("--root") + 1])


# ---------------------------------------------------------------- with a trace: 503, pipelining
def trace_events(trace: Path, holding: bytes = b"") -> list[dict]:  # type: ignore[type-arg]
    """The events written so far (whole lines; the header line skipped); with
    ``holding``, only the lines that hold it are parsed (a busy mode's trace is long)."""
    events = []
    with open(trace, "rb") as f:
        data = f.read()
    for line in data.split(b"\n")[1:]:
        if line.endswith(b"}") and holding in line:
            try:
                events.append(json.loads(line))
            except ValueError:
                pass  # a line being written
    return events


def admitted(serving: Serving, deadline: float) -> socket.socket:
    """A keep-alive connection the server serves (its GET answered 200): retried while
    the server still counts connections of earlier tests that it has not seen close."""
    while True:
        sock = connect(serving.port)
        sock.sendall(request("/"))
        answer = Reader(sock).answer()
        if answer.status == 200:
            return sock
        sock.close()
        assert answer.status == 503, answer.lines
        assert time.monotonic() < deadline, "no connection admitted"
        time.sleep(0.01)


def test_503_beyond_max_connections_then_close(traced: Serving) -> None:
    """README: "more than --max-connections | 503 and close; the server carries on"."""
    deadline = time.monotonic() + IO_TIMEOUT
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(admitted(traced, deadline))
        with connect(traced.port) as extra:  # sends nothing: the answer comes at once
            reader = Reader(extra)
            answer = reader.answer()
            how = reader.end()
        want = b"503 Service Unavailable\nthe server is at its connection limit\n"
        assert_head(answer, b"HTTP/1.1 503 Service Unavailable", TEXT, len(want), "close")
        assert answer.body == want
        assert how == "eof"
        # The held ones were not disturbed.
        for sock in held:
            sock.sendall(request("/small.txt"))
            assert Reader(sock).answer().body == SMALL
        held.pop().close()
        # One left: there is room again, once the server has seen it go.
        sock = admitted(traced, time.monotonic() + IO_TIMEOUT)
        held.append(sock)
    finally:
        for sock in held:
            sock.close()
    assert traced.proc.poll() is None


def test_pipelined_read_parsed_four_at_a_time(traced: Serving) -> None:
    """README: of pipelined requests only the next four of a read are parsed; the rest
    waits, unread and unparsed, until their answers are out. A client that sends 200
    requests for a streamed file in one write and reads nothing: when the server first
    sends, four requests are parsed (the trace's ``request`` events before its first
    ``send``), and the socket was read once."""
    assert traced.trace is not None
    payload = request("/big.bin") * 200
    deadline = time.monotonic() + TRACE_TIMEOUT
    while True:  # bounded by the deadline
        with connect(traced.port, rcvbuf=4096) as sock:
            sock.sendall(payload)  # one write: one segment on loopback (~8 KB)
            me = "%s:%d>" % sock.getsockname()

            def mine() -> list[dict]:  # type: ignore[type-arg]
                return [e for e in trace_events(traced.trace, me.encode())  # type: ignore[arg-type]
                        if str(e.get("conn", "")).startswith(me)]

            def answered() -> list[dict]:  # type: ignore[type-arg]
                events = mine()
                return events if any(e.get("kind") == "send" or e.get("status") == 503
                                     for e in events) else []

            events = wait_for(answered, "the server's first send",
                              timeout=max(0.1, deadline - time.monotonic()))
            if any(e.get("status") == 503 for e in events):
                # The server had not yet seen the previous test's connections close
                # (--max-connections 2): this one was refused; the next one is not.
                assert time.monotonic() < deadline, "refused (503) until the deadline"
                time.sleep(0.05)
                continue
            kinds = [e.get("kind") for e in events]
            first_send = kinds.index("send")
            parsed = kinds[:first_send].count("request")
            received = [e.get("bytes") for e in events if e.get("kind") == "recv"]
            assert received[:1] == [len(payload)], received  # (one read had them all)
            assert parsed == PARSE_AHEAD, (parsed, kinds[:first_send + 1])
            break
    still_serving(traced)
