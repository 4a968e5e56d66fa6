"""Hostile and broken clients against a real server, in every I/O mode.

Each test runs a server on 127.0.0.1 (port 0), does one bad thing to it over a
real socket, checks the answer (and the probe's events), then checks that the
server still serves an ordinary ``GET /``: one bad client must never cost
anyone else their page.
"""
from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine.events import Event, MemorySink, Probe
from engine.server import Server, ServerConfig, connection_id, create_server
from tests.conftest import ALL_MODES, CONCURRENT_IDS, CONCURRENT_MODES, MODE_IDS, socket_close

# Tests that hold one client open while another is served: modes that serve many at once.
concurrent = pytest.mark.parametrize("make_server", CONCURRENT_MODES, ids=CONCURRENT_IDS,
                                     indirect=True)

HOST = "127.0.0.1"
SITE = Path(__file__).resolve().parents[2] / "html"
INDEX = (SITE / "index.html").read_bytes()
BIG = SITE / "images" / "big.bmp"
IO_TIMEOUT = 5.0  # every socket operation and read loop is bounded by this

MODES = ALL_MODES  # every mode of the registry

TLS_CLIENT_HELLO = (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32))
                    + b"\x00\x02\x13\x01\x01\x00")
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ---------------------------------------------------------------- fixtures
@dataclass
class Running:
    server: Server
    sink: MemorySink
    mode: str

    @property
    def port(self) -> int:
        return self.server.address[1]


@pytest.fixture(params=MODES, ids=MODE_IDS)
def make_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., Running]]:
    """A factory: ``make_server(**config_overrides)`` starts a server; all stop at the end."""
    mode, trigger = request.param
    started: list[Server] = []

    def make(**overrides: Any) -> Running:
        kwargs: dict[str, Any] = dict(mode=mode, trigger=trigger, host=HOST, port=0,
                                      header_timeout=5.0, idle_timeout=5.0, send_timeout=5.0)
        if mode == "nonblocking":
            kwargs["sweep_pause"] = 0.001
        kwargs.update(overrides)
        probe = Probe("server")
        sink = MemorySink(maxlen=500_000)
        probe.add_sink(sink)
        server = create_server(ServerConfig(**kwargs), probe)
        started.append(server)
        server.start()
        assert server.address and server.address[0] == HOST
        return Running(server, sink, mode)

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def run(make_server: Callable[..., Running]) -> Running:
    return make_server()


# ---------------------------------------------------------------- client helpers
def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(IO_TIMEOUT)
    sock.connect((HOST, port))
    return sock


def read_until_eof(sock: socket.socket, timeout: float = IO_TIMEOUT,
                   limit: int = 8 << 20) -> tuple[bytes, str]:
    """Everything the peer sends until it closes. Returns (bytes, how) where how
    is "eof", "reset" or "timeout". Bounded by ``timeout`` and ``limit`` bytes."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while len(buf) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf), "timeout"
        sock.settimeout(min(left, IO_TIMEOUT))
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return bytes(buf), "timeout"
        except (ConnectionResetError, BrokenPipeError):
            return bytes(buf), "reset"
        if not chunk:
            return bytes(buf), "eof"
        buf += chunk
    return bytes(buf), "limit"


def exchange(port: int, data: bytes, timeout: float = IO_TIMEOUT) -> tuple[bytes, str]:
    """Connect, send ``data`` in one sendall, read until the server closes."""
    with connect(port) as sock:
        sock.sendall(data)
        return read_until_eof(sock, timeout)


@dataclass
class Response:
    status: int
    status_line: bytes
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def parse_head(head: bytes) -> Response:
    lines = head.split(b"\r\n")
    status_line = lines[0]
    assert status_line.startswith(b"HTTP/1.1 "), f"not a status line: {status_line[:80]!r}"
    status = int(status_line.split(b" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        assert sep, f"bad header line {line!r}"
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return Response(status, status_line, headers)


def parse_responses(data: bytes, head_only: tuple[bool, ...] = ()) -> tuple[list[Response], bytes]:
    """Split ``data`` into responses by Content-Length. Returns them and the leftover."""
    out: list[Response] = []
    pos = 0
    for i in range(1000):  # bounded
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        resp = parse_head(data[pos:end])
        assert "content-length" in resp.headers, resp.status_line
        length = int(resp.headers["content-length"])
        start = end + 4
        if i < len(head_only) and head_only[i]:
            length = 0
        if len(data) < start + length:
            break
        resp.body = data[start:start + length]
        out.append(resp)
        pos = start + length
    return out, data[pos:]


def read_one_response(sock: socket.socket, head_only: bool = False,
                      timeout: float = IO_TIMEOUT) -> Response:
    """One response off a keep-alive connection, by its Content-Length (bounded)."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        assert left > 0 and len(buf) < 65536, f"no complete head: {bytes(buf[:200])!r}"
        sock.settimeout(left)
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {bytes(buf[:200])!r}"
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    resp = parse_head(bytes(buf[:end]))
    length = 0 if head_only else int(resp.headers["content-length"])
    body = bytearray(buf[end + 4:])
    while len(body) < length:
        left = deadline - time.monotonic()
        assert left > 0, "body did not arrive in time"
        sock.settimeout(left)
        chunk = sock.recv(min(65536, length - len(body)))
        assert chunk, "connection closed mid-body"
        body += chunk
    assert len(body) == length, "more bytes than Content-Length before the next request"
    resp.body = bytes(body)
    return resp


def request(path: str, *extra: str, method: str = "GET", close: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if close:
        lines.append("Connection: close")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def conn_id_of(sock: socket.socket, run: Running) -> str:
    return connection_id(sock.getsockname(), run.server.address)


def wait_event(run: Running, kind: str, timeout: float = IO_TIMEOUT, **match: Any) -> Event | None:
    """The first event of ``kind`` whose fields match (a tuple/set value: any of them)."""
    found: list[Event] = []

    def matches(e: Event) -> bool:
        if e.kind != kind or (kind == "close" and not socket_close(e)):
            return False
        for key, want in match.items():
            got = e.conn if key == "conn" else e.data.get(key)
            if isinstance(want, (tuple, set, frozenset)):
                if got not in want:
                    return False
            elif got != want:
                return False
        return True

    def predicate(events: list[Event]) -> bool:
        for e in events:
            if matches(e):
                found.append(e)
                return True
        return False

    run.sink.wait_for(predicate, timeout)
    return found[0] if found else None


def wait_until(predicate: Callable[[], bool], timeout: float = IO_TIMEOUT) -> bool:
    """Poll ``predicate`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def assert_still_serving(run: Running) -> None:
    """An ordinary client still gets the home page, and the loop never crashed."""
    data, how = exchange(run.port, request("/"))
    responses, rest = parse_responses(data)
    assert len(responses) == 1, data[:300]
    assert responses[0].status == 200
    assert responses[0].body == INDEX
    assert rest == b""
    assert how == "eof"
    server = run.server
    assert server._loop_error is None
    assert server._thread is not None and server._thread.is_alive()
    crashes = [e for e in run.sink.of_kind("error")
               if e.data.get("what") in ("loop_crashed", "thread_crashed", "internal")]
    assert not crashes, crashes


def assert_refused(data: bytes, how: str, status: int) -> Response:
    """A status line (never a bare body), a body of exactly Content-Length, then close."""
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    responses, rest = parse_responses(data)
    assert len(responses) == 1 and rest == b"", data[:400]
    assert responses[0].headers.get("connection", "").lower() == "close"
    assert how in ("eof", "reset"), how  # the server closed; it did not wait for more
    return responses[0]


# ---------------------------------------------------------------- the cases
def test_normal_get_works(run: Running) -> None:
    assert_still_serving(run)


@pytest.mark.parametrize("target", [
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
    "/..%2f..%2fetc%2fpasswd",
])
def test_path_traversal_over_the_wire(run: Running, target: str) -> None:
    data, how = exchange(run.port, request(target))
    (resp,), rest = parse_responses(data)
    assert resp.status in (403, 404)
    assert b"root:" not in data
    assert rest == b"" and how == "eof"
    assert_still_serving(run)


def test_dotfile_over_the_wire(run: Running) -> None:
    for target in ("/.hidden", "/%2ehidden"):
        data, how = exchange(run.port, request(target))
        (resp,), rest = parse_responses(data)
        assert resp.status == 404, target
        assert b"secret" not in data.lower(), target
        assert how == "eof"
    assert_still_serving(run)


@pytest.mark.parametrize("line", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1 extra words\r\n\r\n",
                                  b"\x00\x01\x02\x03\x04\r\n\r\n"])
def test_malformed_request_line_gets_400_and_close(run: Running, line: bytes) -> None:
    data, how = exchange(run.port, line)
    assert_refused(data, how, 400)
    assert wait_event(run, "error", what="malformed", status=400) is not None
    assert run.server.stats.bad_requests >= 1
    assert_still_serving(run)


def test_malformed_after_good_request_answers_both(run: Running) -> None:
    """A good request, then garbage on the same connection: 200, then 400, then close."""
    data, how = exchange(run.port, request("/", close=False) + b"GARBAGE\r\n\r\n")
    responses, rest = parse_responses(data)
    assert [r.status for r in responses] == [200, 400], data[:300]
    assert responses[0].body == INDEX
    assert rest == b"" and how in ("eof", "reset")
    assert_still_serving(run)


def test_unknown_method_gets_405_with_allow(run: Running) -> None:
    data, how = exchange(run.port, request("/", method="BREW"))
    assert data.startswith(b"HTTP/1.1 405 "), data[:200]
    (resp,), rest = parse_responses(data)
    allow = resp.headers.get("allow")
    assert allow is not None, f"405 without an Allow header: {data[:300]!r}"
    methods = {m.strip() for m in allow.split(",")}
    assert {"GET", "HEAD"} <= methods
    assert how in ("eof", "reset")
    assert_still_serving(run)


def test_known_unserved_method_gets_405_with_allow(run: Running) -> None:
    data, how = exchange(run.port, request("/", "Content-Length: 0", method="POST"))
    (resp,), rest = parse_responses(data)
    assert resp.status == 405
    assert {"GET", "HEAD"} <= {m.strip() for m in resp.headers.get("allow", "").split(",")}
    assert how == "eof"
    assert_still_serving(run)


def test_request_line_over_8k_gets_414(run: Running) -> None:
    data, how = exchange(run.port, request("/" + "a" * 9000))
    assert_refused(data, how, 414)
    assert_still_serving(run)


def test_headers_over_16k_get_431(run: Running) -> None:
    headers = [f"X-Filler-{i}: {'v' * 100}" for i in range(200)]  # ~22 KiB
    data, how = exchange(run.port, request("/", *headers))
    assert_refused(data, how, 431)
    assert_still_serving(run)


def test_tls_client_hello_gets_400_and_error_event(run: Running) -> None:
    data, how = exchange(run.port, TLS_CLIENT_HELLO)
    assert_refused(data, how, 400)
    assert wait_event(run, "error", what="tls_client_hello") is not None
    assert_still_serving(run)


def test_http2_preface_gets_400_and_error_event(run: Running) -> None:
    data, how = exchange(run.port, HTTP2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    assert_refused(data, how, 400)
    assert wait_event(run, "error", what="http2_preface") is not None
    assert_still_serving(run)


def test_client_stopping_mid_headers_is_timed_out(make_server: Callable[..., Running]) -> None:
    run = make_server(header_timeout=0.5)
    with connect(run.port) as sock:
        cid = conn_id_of(sock, run)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        start = time.monotonic()
        data, how = read_until_eof(sock, timeout=3.0)
        elapsed = time.monotonic() - start
    assert how in ("eof", "reset"), f"still open after {elapsed:.1f}s"
    assert elapsed >= 0.3, "closed before the header timeout"
    # A head was started and never finished: the server says 408 before it closes.
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    (resp,), rest = parse_responses(data)
    assert rest == b""
    close = wait_event(run, "close", conn=cid)
    assert close is not None and close.data["reason"] == "header_timeout", close
    assert_still_serving(run)


def test_silent_client_is_timed_out(make_server: Callable[..., Running]) -> None:
    run = make_server(header_timeout=0.5)
    with connect(run.port) as sock:
        cid = conn_id_of(sock, run)
        data, how = read_until_eof(sock, timeout=3.0)
    assert how in ("eof", "reset"), "a silent client was never timed out"
    assert data == b"", data[:200]  # nothing was asked: nothing to answer 408 to
    close = wait_event(run, "close", conn=cid)
    assert close is not None and close.data["reason"] == "header_timeout", close
    assert_still_serving(run)


def test_slow_drip_headers_are_cut_off(make_server: Callable[..., Running]) -> None:
    """Slowloris: a byte every 0.1 s never completes the head; the header timeout is
    a deadline for the whole head, not a pause between bytes."""
    run = make_server(header_timeout=0.5)
    payload = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    closed_after: float | None = None
    with connect(run.port) as sock:
        cid = conn_id_of(sock, run)
        start = time.monotonic()
        for i in range(len(payload)):  # bounded by count and by time
            if time.monotonic() - start > 4.0:
                break
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed_after = time.monotonic() - start
                    break
                assert chunk.startswith(b"HTTP/1.1 408 "), chunk[:200]
                continue
            try:
                sock.send(payload[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
    assert closed_after is not None, "a client dripping one byte at a time was never cut off"
    assert closed_after < 3.0
    close = wait_event(run, "close", conn=cid)
    assert close is not None and close.data["reason"] == "header_timeout", close
    assert_still_serving(run)


def test_idle_keep_alive_is_closed(make_server: Callable[..., Running]) -> None:
    run = make_server(idle_timeout=0.5)
    with connect(run.port) as sock:
        cid = conn_id_of(sock, run)
        sock.sendall(request("/", close=False))
        resp = read_one_response(sock)
        assert resp.status == 200 and resp.body == INDEX
        assert resp.headers["connection"].lower() == "keep-alive"
        start = time.monotonic()
        data, how = read_until_eof(sock, timeout=3.0)
        elapsed = time.monotonic() - start
    assert how == "eof", f"{how} after {elapsed:.1f}s"
    assert data == b""
    assert elapsed >= 0.3, "closed before the idle timeout"
    close = wait_event(run, "close", conn=cid)
    assert close is not None and close.data["reason"] == "idle_timeout", close
    assert_still_serving(run)


@concurrent
def test_max_connections(make_server: Callable[..., Running]) -> None:
    run = make_server(max_connections=5)
    held: list[socket.socket] = []
    try:
        for _ in range(5):
            sock = connect(run.port)
            held.append(sock)
            sock.sendall(request("/", close=False))
            resp = read_one_response(sock)
            assert resp.status == 200 and resp.body == INDEX
        assert run.server.busy() == 5
        with connect(run.port) as sixth:
            data, how = read_until_eof(sixth, timeout=3.0)
        assert how in ("eof", "reset"), "the 6th connection was left hanging"
        if data:
            resp = assert_refused(data, how, 503)
            for name in ("content-length", "date", "server", "content-type"):
                assert name in resp.headers
        assert run.server.stats.refused >= 1
        assert wait_event(run, "error", what="over_capacity") is not None
        # The five held connections were not disturbed by the refusal.
        held[0].sendall(request("/robots.txt", close=False))
        resp = read_one_response(held[0])
        assert resp.status == 200 and resp.body == (SITE / "robots.txt").read_bytes()
        ids = {conn_id_of(s, run) for s in held}
    finally:
        for sock in held:
            sock.close()
    closed = run.sink.wait_for(
        lambda evs: ids <= {e.conn for e in evs if socket_close(e)}, IO_TIMEOUT)
    assert closed, "the server did not notice its clients leaving"
    # Room comes back when the server counts them gone: in processes mode, when it reaps
    # each child, which a loaded machine may take a moment to schedule (a CI run saw 503).
    assert wait_until(lambda: run.server.busy() == 0), run.server.busy()
    assert_still_serving(run)


@concurrent
def test_reset_mid_response(make_server: Callable[..., Running]) -> None:
    run = make_server()
    size = BIG.stat().st_size
    assert size > 1_000_000
    with connect(run.port) as other:  # a bystander, connected before the reset
        other.sendall(request("/", close=False))
        assert read_one_response(other).status == 200
        sock = connect(run.port, rcvbuf=4096)
        cid = conn_id_of(sock, run)
        sock.sendall(request("/images/big.bmp", close=False))
        got = 0
        deadline = time.monotonic() + IO_TIMEOUT
        while got < 8192 and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            assert chunk
            got += len(chunk)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST, with most of the 1.5 MiB still unsent
        close = wait_event(run, "close", conn=cid)
        assert close is not None, "the reset connection was never closed"
        assert close.data["reason"] in ("reset", "epipe"), close
        err = wait_event(run, "error", conn=cid, what=("reset", "epipe"))
        assert err is not None
        assert run.server.stats.io_errors >= 1
        # close() reports before it forgets the connection: allow the loop a moment.
        gone = wait_until(lambda: cid not in {c.id for c in list(run.server.conns.values())})
        assert gone, "the reset connection is still in the server's table"
        # The bystander is still served, on its existing connection, the whole file.
        other.sendall(request("/images/big.bmp", close=False))
        resp = read_one_response(other, timeout=10.0)
        assert resp.status == 200
        assert len(resp.body) == size and resp.body == BIG.read_bytes()
    assert_still_serving(run)


def test_pipelined_requests_answered_in_order(run: Running) -> None:
    paths = ["/robots.txt", "/css/style.css", "/", "/data/sample.json"]
    payload = b"".join(request(p, close=False) for p in paths[:3]) + request(paths[3])
    data, how = exchange(run.port, payload)
    responses, rest = parse_responses(data)
    assert [r.status for r in responses] == [200] * 4
    expected = [(SITE / "robots.txt").read_bytes(), (SITE / "css" / "style.css").read_bytes(),
                INDEX, (SITE / "data" / "sample.json").read_bytes()]
    assert [r.body for r in responses] == expected
    assert [r.headers["content-type"].split(";")[0] for r in responses] == \
        ["text/plain", "text/css", "text/html", "application/json"]
    assert [r.headers["connection"].lower() for r in responses] == \
        ["keep-alive", "keep-alive", "keep-alive", "close"]
    assert rest == b""
    assert how == "eof"
    assert_still_serving(run)


def test_pipelined_byte_by_byte(run: Running) -> None:
    """The same pipeline dribbled a few bytes per send still yields ordered answers."""
    paths = ["/robots.txt", "/data/sample.json"]
    payload = request(paths[0], close=False) + request(paths[1])
    with connect(run.port) as sock:
        for i in range(0, len(payload), 7):
            sock.sendall(payload[i:i + 7])
            time.sleep(0.001)
        data, how = read_until_eof(sock)
    responses, rest = parse_responses(data)
    assert [r.body for r in responses] == [(SITE / "robots.txt").read_bytes(),
                                           (SITE / "data" / "sample.json").read_bytes()]
    assert rest == b"" and how == "eof"
    assert_still_serving(run)


REQUIRED_HEADERS = ("content-length", "date", "server", "content-type")


@pytest.mark.parametrize("payload, status, head_only", [
    (request("/"), 200, False),
    (request("/", method="HEAD"), 200, True),
    (request("/images/big.bmp", method="HEAD"), 200, True),
    (request("/no-such-page.html"), 404, False),
    (request("/css"), 301, False),
    (request("/css", method="HEAD"), 301, True),  # a HEAD's 301: no body either
    (request("/../etc/passwd"), 403, False),
    (request("/", "Content-Length: 0", method="POST"), 405, False),
    (request("/", method="BREW"), 405, False),
    (b"GARBAGE\r\n\r\n", 400, False),
    (TLS_CLIENT_HELLO, 400, False),
], ids=["get", "head", "head-big", "404", "301", "head-301", "403", "post-405", "brew-405",
        "400", "tls"])
def test_every_response_has_standard_headers(run: Running, payload: bytes, status: int,
                                             head_only: bool) -> None:
    data, how = exchange(run.port, payload)
    responses, rest = parse_responses(data, head_only=(head_only,))
    assert len(responses) == 1, data[:300]
    resp = responses[0]
    assert resp.status == status
    for name in REQUIRED_HEADERS:
        assert name in resp.headers, f"{name} missing from {resp.status_line!r}"
    assert resp.headers["server"]
    assert resp.headers["date"].endswith("GMT")
    if not head_only:
        assert int(resp.headers["content-length"]) == len(resp.body)
    assert rest == b""
    if status == 301:
        assert resp.headers.get("location") == "/css/"
    assert how in ("eof", "reset")
    assert_still_serving(run)


def test_408_has_standard_headers(make_server: Callable[..., Running]) -> None:
    run = make_server(header_timeout=0.5)
    data, how = exchange(run.port, b"GET / HTTP/1.1\r\nHost: x\r\n", timeout=3.0)
    assert how in ("eof", "reset")
    if data:  # a 408 is optional; if sent, it is a proper response
        (resp,), rest = parse_responses(data)
        assert resp.status == 408
        for name in REQUIRED_HEADERS:
            assert name in resp.headers
    assert_still_serving(run)
