"""HTTP as the RFCs say, over real sockets in every I/O mode: Host (RFC 9112 3.2),
HTTP/0.9 refused at once, HEAD never with a body, conditional GET (RFC 9110 13:
ETag, Last-Modified, 304), one byte range (RFC 9110 14: 206, 416), and the last-resort guard that makes a failure
while handling one connection that connection's alone.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from engine.connection import Connection
from tests.engine.test_bad_input import (BIG, INDEX, concurrent, SITE, Response, Running, assert_refused,
                                         assert_still_serving, connect, exchange, make_server,
                                         parse_head, read_one_response, request, run,
                                         wait_event)

__all__ = ["make_server", "run"]  # fixtures, used by name


def ask(sock: socket.socket, path: str, *extra: str, method: str = "GET") -> Response:
    sock.sendall(request(path, *extra, method=method, close=False))
    return read_one_response(sock, head_only=method == "HEAD")


def read_head_only(sock: socket.socket, timeout: float = 5.0) -> tuple[Response, bytes]:
    """A bodiless answer (304, or a HEAD's): its head, and any bytes after it
    that arrive within a short wait (there must be none)."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        assert left > 0, bytes(buf[:200])
        sock.settimeout(left)
        chunk = sock.recv(65536)
        assert chunk, bytes(buf[:200])
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    rest = bytes(buf[end + 4:])
    sock.settimeout(0.2)
    try:
        rest += sock.recv(65536)
    except (socket.timeout, TimeoutError):
        pass
    sock.settimeout(5.0)
    return parse_head(bytes(buf[:end])), rest


# ---------------------------------------------------------------- Host, versions, paths
def test_http11_without_host_gets_400(run: Running) -> None:
    data, how = exchange(run.port, b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
    resp = assert_refused(data, how, 400)
    assert b"Host" in resp.body
    assert wait_event(run, "error", what="host") is not None
    assert_still_serving(run)


def test_two_host_fields_get_400_in_both_versions(run: Running) -> None:
    for version in (b"1.1", b"1.0"):
        data, how = exchange(run.port, b"GET / HTTP/" + version + b"\r\nHost: a\r\nHOST: b\r\n\r\n")
        assert_refused(data, how, 400)
    assert_still_serving(run)


def test_http10_without_host_is_served(run: Running) -> None:
    data, how = exchange(run.port, b"GET / HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(INDEX) and how == "eof"


@pytest.mark.parametrize("wire", [b"GET /\r\n", b"GET /index.html\r\n\r\n"],
                         ids=["line", "line-blank"])
def test_http09_gets_400_at_once(make_server: Callable[..., Running], wire: bytes) -> None:
    running = make_server(header_timeout=5.0)
    began = time.monotonic()
    data, how = exchange(running.port, wire, timeout=4.0)
    took = time.monotonic() - began
    assert_refused(data, how, 400)
    assert took < 2.0, f"answered after {took:.1f} s: the header timeout, not the request"
    assert_still_serving(running)


def test_a_file_with_a_trailing_slash_is_not_found(run: Running) -> None:
    with connect(run.port) as sock:
        assert ask(sock, "/index.html/").status == 404
        assert ask(sock, "/robots.txt/").status == 404
        assert ask(sock, "/index.html").status == 200


def test_head_of_a_redirect_has_no_body(run: Running) -> None:
    with connect(run.port) as sock:
        sock.sendall(request("/images", method="HEAD", close=False))
        head, rest = read_head_only(sock)
        assert head.status == 301 and head.headers["location"] == "/images/"
        assert rest == b""  # no byte of the body...
        assert ask(sock, "/").body == INDEX  # the connection is still in step
        got = ask(sock, "/images")  # ...whose length it gave: what a GET gets
        assert got.status == 301 and len(got.body) > 0
        assert int(head.headers["content-length"]) == len(got.body)


# ---------------------------------------------------------------- conditional GET
@pytest.mark.parametrize("path", ["/index.html", "/images/big.bmp"], ids=["cached", "streamed"])
def test_validators_and_304(run: Running, path: str) -> None:
    with connect(run.port) as sock:
        first = ask(sock, path)
        assert first.status == 200
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert etag.startswith('"') and modified.endswith("GMT")
        assert first.headers["accept-ranges"] == "bytes"
        assert first.headers["cache-control"] == "no-cache"  # revalidate: the 304 shows
        for extra in (f"If-None-Match: {etag}", f'If-None-Match: "x", W/{etag}',
                      "If-None-Match: *", f"If-Modified-Since: {modified}"):
            sock.sendall(request(path, extra, close=False))
            head, rest = read_head_only(sock)
            assert head.status == 304, extra
            assert rest == b"", extra
            assert "content-length" not in head.headers  # it would describe a body not sent
            assert head.headers["etag"] == etag and head.headers["connection"] == "keep-alive"
        sock.sendall(request(path, f"If-None-Match: {etag}", method="HEAD", close=False))
        assert read_head_only(sock)[0].status == 304
        # Another tag, or an older date: the file is sent whole.
        assert ask(sock, path, 'If-None-Match: "other"').status == 200
        assert ask(sock, path, "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT").status == 200
        assert ask(sock, path, "If-Modified-Since: yesterday").status == 200  # not a date
        # If-None-Match decides when both are sent (RFC 9110 13.2.2)
        assert ask(sock, path, 'If-None-Match: "other"', f"If-Modified-Since: {modified}"
                   ).status == 200
    assert wait_event(run, "response", status=304) is not None
    assert_still_serving(run)


def test_a_changed_file_is_sent_again(make_server: Callable[..., Running],
                                      tmp_path: Path) -> None:
    """An edited file is sent anew at the next request (with a new ETag), even
    right after it was cached; and a deleted one is 404 at once."""
    shutil.copy(SITE / "index.html", tmp_path / "index.html")
    page = tmp_path / "page.txt"
    page.write_bytes(b"first\n")
    os.utime(page, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    running = make_server(root=str(tmp_path))
    with connect(running.port) as sock:
        first = ask(sock, "/page.txt")
        etag = first.headers["etag"]
        sock.sendall(request("/page.txt", f"If-None-Match: {etag}", close=False))
        assert read_head_only(sock)[0].status == 304
        page.write_bytes(b"second, longer\n")  # at once: the cache looks at the disk each time
        sock.sendall(request("/page.txt", f"If-None-Match: {etag}", close=False))
        head, rest = read_head_only(sock)
        assert head.status == 200
        assert rest == b"second, longer\n" and head.headers["etag"] != etag
        page.unlink()
        assert ask(sock, "/page.txt").status == 404
        assert ask(sock, "/later.txt").status == 404
        (tmp_path / "later.txt").write_bytes(b"new\n")  # served at once, not a 404 remembered
        assert ask(sock, "/later.txt").body == b"new\n"


# ---------------------------------------------------------------- ranges
def test_one_range_of_a_cached_file(run: Running) -> None:
    size = len(INDEX)
    with connect(run.port) as sock:
        part = ask(sock, "/index.html", "Range: bytes=0-9")
        assert part.status == 206 and part.body == INDEX[:10]
        assert part.headers["content-range"] == f"bytes 0-9/{size}"
        assert ask(sock, "/index.html", "Range: bytes=-5").body == INDEX[-5:]
        assert ask(sock, "/index.html", "Range: bytes=10-").body == INDEX[10:]
        assert ask(sock, "/index.html", f"Range: bytes=5-{size * 3}").body == INDEX[5:]
        beyond = ask(sock, "/index.html", f"Range: bytes={size}-")
        assert beyond.status == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        # Several ranges, another unit, nonsense, a stale If-Range: the whole file, 200.
        for extra in ("Range: bytes=0-1,5-6", "Range: items=0-1", "Range: bytes=9-2",
                      "Range: bytes=abc"):
            whole = ask(sock, "/index.html", extra)
            assert (whole.status, whole.body) == (200, INDEX), extra
        etag = ask(sock, "/index.html").headers["etag"]
        assert ask(sock, "/index.html", "Range: bytes=0-0", f"If-Range: {etag}").body == INDEX[:1]
        assert ask(sock, "/index.html", "Range: bytes=0-0", 'If-Range: "old"').status == 200
        # HEAD ignores Range (RFC 9110 14.2: GET only)
        sock.sendall(request("/index.html", "Range: bytes=0-0", method="HEAD", close=False))
        head, rest = read_head_only(sock)
        assert head.status == 200 and rest == b""
    assert_still_serving(run)


def test_one_range_of_a_streamed_file(run: Running) -> None:
    data = BIG.read_bytes()
    size = len(data)
    with connect(run.port) as sock:
        part = ask(sock, "/images/big.bmp", "Range: bytes=100000-300099")
        assert part.status == 206 and part.body == data[100000:300100]
        assert part.headers["content-range"] == f"bytes 100000-300099/{size}"
        assert ask(sock, "/images/big.bmp", "Range: bytes=-10").body == data[-10:]
        assert ask(sock, "/images/big.bmp", f"Range: bytes={size + 1}-").status == 416
        assert ask(sock, "/index.html").body == INDEX  # in step after all of them
    assert_still_serving(run)


# The send time-out counted from the last progress is tested over the wire, in every
# mode, as an ordinary user: tests/engine/test_attack_as_user.py (a slow steady download).


# ---------------------------------------------------------------- the last resort
@concurrent
def test_a_bug_while_answering_costs_one_connection(run: Running,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure nothing foresaw (here: a bug planted in answering /boom) is caught by
    the loop's guard: that request gets 500, an ``error`` event says what, and the
    server, its other connections included, serves on."""
    original = Connection._answer_next

    def planted(self: Connection) -> None:
        item = self.pending[0]
        if getattr(item, "target", b"") == b"/boom":
            raise RuntimeError("planted bug")
        original(self)

    monkeypatch.setattr(Connection, "_answer_next", planted)
    with connect(run.port) as bystander:
        assert ask(bystander, "/").body == INDEX
        data, how = exchange(run.port, request("/boom"))
        assert data.startswith(b"HTTP/1.1 500 "), data[:200]
        event = wait_event(run, "error", what="internal")
        assert event is not None and "planted bug" in event.data["detail"]
        assert ask(bystander, "/").body == INDEX  # the other connection lives on
    monkeypatch.setattr(Connection, "_answer_next", original)
    server = run.server
    assert server._loop_error is None and server._thread is not None \
        and server._thread.is_alive()
    data, how = exchange(run.port, request("/"))
    assert data.endswith(INDEX)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@concurrent
def test_a_crash_of_the_loop_itself_keeps_its_cause_and_closes_everything(
        run: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside any connection (here: a bug planted in accepting), the loop ends, and its
    clean-up must neither hide the cause behind its own error ("I/O operation on closed
    epoll object") nor leave the listening socket or a connection open."""
    from engine.server import Server
    with connect(run.port) as open_one:
        assert ask(open_one, "/").body == INDEX

        def planted(self: Server, tid: int, blocking: bool = False) -> None:
            raise RuntimeError("planted accept bug")

        monkeypatch.setattr(type(run.server), "accept_one", planted)
        try:
            socket.create_connection(("127.0.0.1", run.port), timeout=2).close()
        except OSError:
            pass
        thread = run.server._thread
        assert thread is not None
        thread.join(5)
        assert not thread.is_alive()
        error = run.server._loop_error
        assert isinstance(error, RuntimeError) and "planted accept bug" in str(error)
        open_one.settimeout(5)
        assert open_one.recv(1) == b""  # the open connection was closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", run.port), timeout=2)
    assert wait_event(run, "error", what="loop_crashed") is not None
