"""What the ``http`` view shows, over real loopback sockets in every mode: each
``request`` event's head is the bytes the client sent (odd spacing and case
kept, one head per pipelined request, whole however the bytes were split);
each ``response`` event's head is what the server sent, and its preview the
body's first 64 bytes."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import KINDS, Event, MemorySink
from engine.http import HEAD_CAP, RequestParser, error_body
from tests.conftest import ALL_MODES, MODE_IDS, read_to_eof, running_server

SITE = Path(__file__).resolve().parents[2] / "html"
INDEX = (SITE / "index.html").read_bytes()
ROBOTS = (SITE / "robots.txt").read_bytes()
NOT_FOUND = (SITE / "404.html").read_bytes()
BIG = (SITE / "images" / "big.bmp").read_bytes()
TIMEOUT = 5.0

ODD = (b"GET   /index.html?x=1 HTTP/1.1\r\nhOST:   127.0.0.1  \r\nx-WeIrD-CaSe:a\r\n"
       b"Accept:\t*/*\r\nX-Name: caf\xe9\r\nX-Empty:\r\nConnection: close\r\n\r\n")


def exchange(address: tuple, pieces: list[bytes], sink: MemorySink | None = None) -> bytes:
    """Send ``pieces`` (one send each); read until the server closes.
    With ``sink``, each piece waits until the server has read every byte before it
    (its ``recv`` events say so): the pieces are then the server's reads, however
    late a loaded machine runs its loop (or forks its process)."""
    with socket.create_connection(address[:2], timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = 0
        for piece in pieces:
            if sink is not None and sent:
                assert sink.wait_for(lambda evs, n=sent: sum(
                    e.data["bytes"] for e in evs if e.kind == "recv") >= n, TIMEOUT), \
                    f"the server never read the first {sent} bytes"
            sock.sendall(piece)
            sent += len(piece)
        return read_to_eof(sock)


def wait_kind(sink: MemorySink, kind: str, count: int) -> list[Event]:
    assert sink.wait_for(lambda evs: sum(e.kind == kind for e in evs) >= count, TIMEOUT), \
        f"fewer than {count} {kind} events"
    events = sink.of_kind(kind)
    for e in events:
        assert set(KINDS[kind]) <= set(e.data), f"{kind} lacks {set(KINDS[kind]) - set(e.data)}"
    return events


def text(raw: bytes) -> str:
    return raw.decode("latin-1")


def response_heads(raw: bytes, bodiless: tuple[int, ...] = ()) -> list[bytes]:
    """The heads in a stream of responses; those numbered in ``bodiless`` (answers
    to HEAD) have none of the body their Content-Length announces."""
    heads: list[bytes] = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw[:200]
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        raw = rest if len(heads) in bodiless else rest[length:]
        heads.append(head + sep)
    return heads


# ---------------------------------------------------------------- the parser alone
_NAMES = st.sampled_from([b"x-a", b"X-Long", b"Accept", b"A"])
_HOSTS = st.sampled_from([b"Host", b"hOsT", b"HOST"])  # exactly one per request (RFC 9112 3.2)
_VALUES = st.binary(max_size=40).map(
    lambda v: bytes(c for c in v if c >= 0x20 and c != 0x7f).strip(b" \t"))
_HEADERS = st.lists(st.tuples(_NAMES, st.sampled_from([b":", b": ", b":\t", b":   "]), _VALUES),
                    max_size=6)
_LONG = st.integers(0, 3000).map(lambda n: [(b"X-Pad", b": ", b"p" * n)] if n > 200 else [])


@st.composite
def _messages(draw: st.DrawFn, chunked: bool) -> tuple[bytes, bytes]:
    """(head, whole message): a GET with odd spacing, maybe a body."""
    line = draw(st.sampled_from([b"GET / HTTP/1.1", b"GET  /a?b=c HTTP/1.1", b"HEAD /x HTTP/1.0"]))
    headers = draw(_HEADERS) + draw(_LONG)
    headers.insert(draw(st.integers(0, len(headers))),
                   (draw(_HOSTS), draw(st.sampled_from([b":", b": "])), draw(_VALUES)))
    body_kind = draw(st.sampled_from(["none", "length", "chunked"] if chunked else ["none", "length"]))
    body = draw(st.binary(max_size=20))
    if body_kind == "length":
        headers.append((b"Content-Length", b": ", str(len(body)).encode()))
    elif body_kind == "chunked":
        headers.append((b"Transfer-Encoding", b": ", b"chunked"))
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        body = b""
    if line.endswith(b"1.0"):
        headers.append((b"Connection", b": ", b"keep-alive"))
    head = line + b"\r\n" + b"".join(n + sep + v + b"\r\n" for n, sep, v in headers) + b"\r\n"
    # Blank lines a client may send before a request (RFC 9112 2.2: ignore at least one)
    return head, draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"\n\r\n"])) + head + body


def _feed(chunks: list[bytes]) -> list[tuple[bytes | None, bool]]:
    parser = RequestParser()
    parser.record_heads(True)
    return [(r.head, r.head_truncated) for chunk in chunks for r in parser.feed(chunk)]


def _cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]


@settings(max_examples=300, deadline=None)
@given(st.lists(_messages(chunked=False), min_size=1, max_size=4),
       st.lists(st.integers(0, 20_000), max_size=8))
def test_parser_heads_however_the_bytes_are_cut(messages: list, cuts: list[int]) -> None:
    stream = b"".join(whole for _, whole in messages)
    expected = [(head[:HEAD_CAP], len(head) > HEAD_CAP) for head, _ in messages]
    assert _feed(_cut(stream, cuts)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages(chunked=True), min_size=1, max_size=4))
def test_parser_heads_after_chunked_bodies_in_one_read(messages: list) -> None:
    stream = b"".join(whole for _, whole in messages)
    assert _feed([stream]) == [(head[:HEAD_CAP], len(head) > HEAD_CAP) for head, _ in messages]


def test_parser_heads_with_every_cut() -> None:
    """Each split point of a pipelined stream, and each pair around the blank lines."""
    heads = [ODD.replace(b"Connection: close", b"X-Keep: 1"),
             b"GET /b HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n",
             b"HEAD  /c HTTP/1.1\r\nHost: t\r\n\r\n"]
    stream = heads[0] + heads[1] + b"\r\n\r\n" + b"\r\n" + heads[2]
    expected = [(head, False) for head in heads]
    for cut in range(1, len(stream)):
        assert _feed([stream[:cut], stream[cut:]]) == expected, cut
    ends = [i for i in range(len(stream)) if stream.startswith(b"\r\n\r\n", i)]
    for a in {e + d for e in ends for d in range(-2, 5)}:
        for b in range(a + 1, min(a + 6, len(stream))):
            assert _feed([stream[:a], stream[a:b], stream[b:]]) == expected, (a, b)


def test_parser_never_guesses_a_head_when_recording_starts_mid_head() -> None:
    first = ODD.replace(b"Connection: close", b"X-Keep: 1")
    second = b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n"
    third = b"GET /third HTTP/1.1\r\nHost: t\r\n\r\n"
    parser = RequestParser()
    assert parser.feed(first[:20]) == []
    parser.record_heads(True)
    heads = [r.head for r in parser.feed(first[20:] + second)]
    heads += [r.head for r in parser.feed(third)]
    assert heads == [None, None, third]  # unknown, never wrong; the next read is exact


def test_parser_records_nothing_unless_asked() -> None:
    (req,) = RequestParser().feed(ODD)
    assert req.head is None and req.head_truncated is False


# ---------------------------------------------------------------- request heads
@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_request_head_is_the_bytes_sent(mode: str, trigger: str) -> None:
    with running_server(mode, trigger) as (server, sink):
        raw = exchange(server.address, [ODD])
        (req,) = wait_kind(sink, "request", 1)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert req.data["head"] == text(ODD)
    assert "head_truncated" not in req.data
    assert req.data["path"] == "/index.html?x=1"


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_pipelined_requests_each_get_their_own_head(mode: str, trigger: str) -> None:
    sent = [b"GET /robots.txt HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\nHEAD  /index.html HTTP/1.1\r\nhost: b\r\nX-Two: 2\r\n\r\n",  # CRLF between
            b"GET /css/style.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"GET /nope HTTP/1.1\r\nHOST: d\r\nConnection: close\r\n\r\n"]
    with running_server(mode, trigger) as (server, sink):
        exchange(server.address, [b"".join(sent)])
        requests = wait_kind(sink, "request", 4)
    assert [e.data["head"] for e in requests] == [text(s.lstrip(b"\r\n")) for s in sent]


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_request_split_across_sends_keeps_its_whole_head(mode: str, trigger: str) -> None:
    # Cut mid request line, mid header, and inside the blank line (CR | LF | CRLF).
    cuts = [7, 30, len(ODD) - 3, len(ODD) - 2, len(ODD) - 1]
    pieces = [ODD[a:b] for a, b in zip([0, *cuts], [*cuts, len(ODD)])]
    with running_server(mode, trigger) as (server, sink):
        raw = exchange(server.address, pieces, sink=sink)
        (req,) = wait_kind(sink, "request", 1)
        recvs = [e for e in sink.of_kind("recv") if e.data["bytes"]]
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert [e.data["bytes"] for e in recvs] == [len(p) for p in pieces], \
        "the request arrived in its pieces"
    assert req.data["head"] == text(ODD)


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_keep_alive_requests_each_get_their_own_head(mode: str, trigger: str) -> None:
    first = b"GET /robots.txt HTTP/1.1\r\nHost: one\r\n\r\n"
    second = b"GET /index.html HTTP/1.1\r\nHost: two\r\nConnection: close\r\n\r\n"
    with running_server(mode, trigger) as (server, sink):
        with socket.create_connection(server.address[:2], timeout=TIMEOUT) as sock:
            sock.sendall(first)
            wait_kind(sink, "response", 1)
            sock.sendall(second)
            read_to_eof(sock)
        requests = wait_kind(sink, "request", 2)
    assert [e.data["head"] for e in requests] == [text(first), text(second)]


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_long_head_is_cut_and_flagged(mode: str, trigger: str, split: bool) -> None:
    pad = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"abcdefghij" * 9) for i in range(60))
    request = b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n" + pad + b"Connection: close\r\n\r\n"
    assert 6000 < len(request) < 16 * 1024
    pieces = [request[:1500], request[1500:3000], request[3000:]] if split else [request]
    with running_server(mode, trigger) as (server, sink):
        raw = exchange(server.address, pieces, sink=sink)
        (req,) = wait_kind(sink, "request", 1)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert req.data["head"] == text(request[:HEAD_CAP])
    assert len(req.data["head"]) == HEAD_CAP == 2048
    assert req.data["head_truncated"] is True


@pytest.mark.parametrize("mode,trigger", [("epoll", "level"), ("threaded", "level")],
                         ids=["epoll-level", "threaded"])
def test_heads_after_requests_with_bodies(mode: str, trigger: str) -> None:
    """A body (Content-Length or chunked) between pipelined requests is not a head."""
    sent = [b"GET /robots.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n",
            b"GET /index.html HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /css/style.css HTTP/1.1\r\nHost: t\r\nX-After: chunks\r\nConnection: close\r\n\r\n"]
    stream = (sent[0] + b"\r\n\r\nGET /" + sent[1] + b"4;ext=1\r\n\r\n\r\n\r\n3\r\nabc\r\n"
              b"0\r\nTrailer: x\r\n\r\n" + sent[2])
    with running_server(mode, trigger) as (server, sink):
        raw = exchange(server.address, [stream])
        requests = wait_kind(sink, "request", 3)
    assert len(response_heads(raw)) == 3
    assert [e.data["head"] for e in requests] == [text(s) for s in sent]


# ---------------------------------------------------------------- response heads
@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_response_head_and_preview_are_what_was_sent(mode: str, trigger: str) -> None:
    request = (b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n"
               b"HEAD /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /no/such/page HTTP/1.1\r\nHost: t\r\n\r\n"
               b"DELETE / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    with running_server(mode, trigger) as (server, sink):
        raw = exchange(server.address, [request])
        ok, head_only, missing, refused = wait_kind(sink, "response", 4)
    heads = response_heads(raw, bodiless=(1,))
    assert [e.data["head"] for e in (ok, head_only, missing, refused)] == [text(h) for h in heads]

    assert ok.data["status"] == 200
    assert ok.data["head"].startswith("HTTP/1.1 200 OK\r\n")
    assert f"\r\nContent-Length: {len(INDEX)}\r\n" in ok.data["head"]
    assert ok.data["length"] == len(INDEX)
    assert ok.data["preview"] == INDEX[:64].decode("latin-1")

    assert head_only.data["head"].startswith("HTTP/1.1 200 OK\r\n")
    assert f"\r\nContent-Length: {len(ROBOTS)}\r\n" in head_only.data["head"]
    assert head_only.data["preview"] == ""

    assert missing.data["status"] == 404
    assert missing.data["head"].startswith("HTTP/1.1 404 Not Found\r\n")
    assert missing.data["preview"] == NOT_FOUND[:64].decode("latin-1")

    assert refused.data["status"] == 405
    assert refused.data["preview"] == error_body(405, "method DELETE is not allowed")[:64].decode()


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_streamed_file_preview_leaves_the_body_intact(mode: str, trigger: str) -> None:
    with running_server(mode, trigger) as (server, sink):
        raw = exchange(server.address,
                       [b"GET /images/big.bmp HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"])
        (resp,) = wait_kind(sink, "response", 1)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == BIG, "reading the preview must not disturb the streamed bytes"
    assert resp.data["head"] == text(head + b"\r\n\r\n")
    assert f"\r\nContent-Length: {len(BIG)}\r\n" in resp.data["head"]
    assert resp.data["preview"] == BIG[:64].decode("latin-1", "replace")


def test_refusal_reports_its_answer() -> None:
    """Bytes that are not HTTP get a 400 whose event still has a head and a preview."""
    with running_server("epoll", "level") as (server, sink):
        raw = exchange(server.address, [b"\x00\x01garbage\r\n\r\n"])
        (resp,) = wait_kind(sink, "response", 1)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert resp.data["head"] == text(raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")
    assert resp.data["preview"] == text(raw.partition(b"\r\n\r\n")[2][:64])
    assert not sink.of_kind("request")
