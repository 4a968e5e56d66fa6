"""The sans-I/O HTTP layer: whole, byte by byte, split, pipelined, refused.

``RequestParser.feed`` gets whatever bytes one ``recv`` returned, so every
property here must hold however the bytes are chunked.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.http import (HTTP2_PREFACE, MAX_HEADER_BYTES, MAX_REQUEST_LINE, UNSATISFIABLE,
                         HttpError, Request, RequestParser, byte_range, http_date_seconds,
                         not_modified)

ALLOWED_REFUSALS = {400, 405, 414, 431, 505}
TLS_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)) + b"\x00" * 16

GET = b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n"


def summary(req: Request) -> tuple:
    return (req.method, req.target, req.version, req.keep_alive, list(req.headers))


def feed_all(chunks: list[bytes]) -> list[Request]:
    parser = RequestParser()
    out: list[Request] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def bytewise(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def refusal(chunks: list[bytes]) -> HttpError:
    """Feed ``chunks``; the parser must refuse them with an HttpError."""
    parser = RequestParser()
    with pytest.raises(HttpError) as info:
        for chunk in chunks:
            parser.feed(chunk)
    return info.value


# ---------------------------------------------------------------- complete requests
def test_get_fed_whole() -> None:
    (req,) = feed_all([GET])
    assert req.method == "GET"
    assert req.target == b"/index.html?x=1"
    assert req.version == "1.1"
    assert req.keep_alive is True
    assert req.header(b"host") == b"example.test"
    assert req.header(b"HOST") == b"example.test"
    assert req.header(b"x-missing") is None


def test_get_same_whole_and_byte_by_byte() -> None:
    whole = feed_all([GET])
    parser = RequestParser()
    seen: list[Request] = []
    for i, chunk in enumerate(bytewise(GET)):
        got = parser.feed(chunk)
        if i < len(GET) - 1:
            assert got == [], f"request completed early, at byte {i}"
        seen.extend(got)
    assert [summary(r) for r in seen] == [summary(r) for r in whole]
    assert len(seen) == 1


def test_pipelined_requests_in_one_feed_come_out_in_order() -> None:
    data = (b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
            b"HEAD /two HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /three?q=3 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    reqs = feed_all([data])
    assert [(r.method, r.target) for r in reqs] == [
        ("GET", b"/one"), ("HEAD", b"/two"), ("GET", b"/three?q=3"), ("GET", b"/four")]
    assert [r.keep_alive for r in reqs] == [True, True, True, False]
    # And the same when the pipeline arrives a byte at a time.
    assert [summary(r) for r in feed_all(bytewise(data))] == [summary(r) for r in reqs]


def test_request_split_across_feeds() -> None:
    parser = RequestParser()
    assert parser.feed(b"GET /split HT") == []
    assert parser.in_head
    assert parser.feed(b"TP/1.1\r\nHo") == []
    assert parser.feed(b"st: x\r\n") == []
    assert parser.in_head
    (req,) = parser.feed(b"\r\nGET /next HTTP/1.1\r\nHost: t\r\n")
    assert (req.method, req.target, req.header(b"Host")) == ("GET", b"/split", b"x")
    assert parser.in_head  # the second request has begun
    (req2,) = parser.feed(b"\r\n")
    assert req2.target == b"/next"
    assert not parser.in_head


@pytest.mark.parametrize("cut", [1, 5, 17, len(GET) // 2, len(GET) - 1])
def test_any_single_split_point(cut: int) -> None:
    assert [summary(r) for r in feed_all([GET[:cut], GET[cut:]])] == \
        [summary(r) for r in feed_all([GET])]


# ---------------------------------------------------------------- keep-alive
@pytest.mark.parametrize("version, connection, keep_alive", [
    (b"1.0", None, False),
    (b"1.0", b"keep-alive", True),
    (b"1.0", b"Keep-Alive", True),
    (b"1.1", None, True),
    (b"1.1", b"close", False),
    (b"1.1", b"Close", False),
    (b"1.1", b"keep-alive", True),
])
def test_keep_alive_defaults_and_connection_header(version: bytes, connection: bytes | None,
                                                   keep_alive: bool) -> None:
    head = b"GET / HTTP/" + version + b"\r\nHost: h\r\n"
    if connection is not None:
        head += b"Connection: " + connection + b"\r\n"
    parser = RequestParser()
    (req,) = parser.feed(head + b"\r\n")
    assert req.version == version.decode()
    assert req.keep_alive is keep_alive
    assert parser.closed is (not keep_alive)


def test_bytes_after_close_request_are_ignored_same_feed() -> None:
    parser = RequestParser()
    reqs = parser.feed(b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                       b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n\x00\x01garbage\r\n\r\n")
    assert [r.target for r in reqs] == [b"/a"]
    assert parser.closed
    assert parser.feed(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n") == []
    assert parser.feed(b"\x16\x03\x01 not even http") == []


def test_bytes_after_http10_request_in_later_feeds_are_ignored() -> None:
    parser = RequestParser()
    (req,) = parser.feed(b"GET /a HTTP/1.0\r\n\r\n")
    assert not req.keep_alive
    assert parser.feed(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n") == []
    assert parser.feed(b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n") == []  # no error either


# ---------------------------------------------------------------- refusals
MALFORMED_LINES = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/1.1 trailing\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
    b"GET / FTP/1.1\r\n\r\n",
]


@pytest.mark.parametrize("line", MALFORMED_LINES)
def test_malformed_request_line_is_400(line: bytes) -> None:
    err = refusal([line])
    assert (err.status, err.what) == (400, "malformed")


def test_http09_request_is_400() -> None:
    err = refusal([b"GET /\r\n\r\n"])
    assert err.status == 400


def test_unknown_method_token_is_405() -> None:
    err = refusal([b"BREW / HTTP/1.1\r\nHost: pot\r\n\r\n"])
    assert (err.status, err.what) == (405, "method_not_allowed")


def test_unknown_method_with_bad_token_is_400() -> None:
    err = refusal([b"BR{W / HTTP/1.1\r\n\r\n"])
    assert err.status == 400


def test_known_but_unserved_method_parses() -> None:
    """llhttp knows POST: the parser hands it on; the connection answers 405."""
    (req,) = feed_all([b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"])
    assert req.method == "POST"


def test_request_target_over_8k_is_414() -> None:
    err = refusal([b"GET /" + b"a" * (MAX_REQUEST_LINE + 100) + b" HTTP/1.1\r\nHost: t\r\n\r\n"])
    assert (err.status, err.what) == (414, "uri_too_long")


def test_request_target_just_under_limit_is_accepted() -> None:
    target = b"/" + b"a" * (MAX_REQUEST_LINE - 200)
    (req,) = feed_all([b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n"])
    assert req.target == target


def test_headers_over_16k_is_431() -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
    assert len(headers) > MAX_HEADER_BYTES
    err = refusal([b"GET / HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n"])
    assert (err.status, err.what) == (431, "headers_too_large")


def test_single_huge_header_in_one_feed_is_431() -> None:
    err = refusal([b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * (MAX_HEADER_BYTES + 4096) + b"\r\n\r\n"])
    assert err.status == 431


@pytest.mark.parametrize("piece", [1, 7, 100, 1000])
def test_huge_header_dribbled_is_bounded(piece: int) -> None:
    """One header that never ends, fed a little at a time: refused before ~40 KiB."""
    parser = RequestParser()
    fed = 0
    limit = 40 * 1024
    with pytest.raises(HttpError) as info:
        parser.feed(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ")
        fed = 24
        while fed < limit:
            parser.feed(b"v" * piece)
            fed += piece
    assert info.value.status == 431
    assert fed < limit


def test_tls_client_hello_is_400() -> None:
    err = refusal([TLS_CLIENT_HELLO])
    assert (err.status, err.what) == (400, "tls_client_hello")


def test_exact_brief_tls_bytes_are_400() -> None:
    err = refusal([b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"])
    assert (err.status, err.what) == (400, "tls_client_hello")


def test_http2_preface_is_400() -> None:
    err = refusal([HTTP2_PREFACE])
    assert (err.status, err.what) == (400, "http2_preface")


def test_http2_preface_with_settings_frame_is_400() -> None:
    err = refusal([HTTP2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"])
    assert (err.status, err.what) == (400, "http2_preface")


def test_refused_parser_stays_closed() -> None:
    parser = RequestParser()
    with pytest.raises(HttpError):
        parser.feed(b"GARBAGE\r\n\r\n")
    assert parser.closed
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n") == []


def test_requests_before_an_error_are_kept() -> None:
    parser = RequestParser()
    with pytest.raises(HttpError) as info:
        parser.feed(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGARBAGE\r\n\r\n")
    assert info.value.status == 400
    assert [r.target for r in parser.take_done()] == [b"/ok"]


# The same refusals, fed one byte at a time: a TCP peer may deliver any chunking,
# so the answer must not depend on it.
REFUSALS = {
    "malformed": (b"GARBAGE\r\n\r\n", 400, "malformed"),
    "brew": (b"BREW / HTTP/1.1\r\nHost: pot\r\n\r\n", 405, "method_not_allowed"),
    "uri_too_long": (b"GET /" + b"a" * (MAX_REQUEST_LINE + 100) + b" HTTP/1.1\r\nHost: t\r\n\r\n",
                     414, "uri_too_long"),
    "headers_too_large": (b"GET / HTTP/1.1\r\nHost: t\r\n"
                          + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
                          + b"\r\n", 431, "headers_too_large"),
    "tls": (TLS_CLIENT_HELLO, 400, "tls_client_hello"),
    "http2": (HTTP2_PREFACE, 400, "http2_preface"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusal_same_when_fed_byte_by_byte(name: str) -> None:
    data, status, what = REFUSALS[name]
    err = refusal(bytewise(data))
    assert (err.status, err.what) == (status, what)


# ---------------------------------------------------------------- fuzzing
VALID = [
    GET,
    b"GET / HTTP/1.0\r\n\r\n",
    b"HEAD /a/b.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody",
    b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n",
]


@st.composite
def mutated_request(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "replace" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 64))]
    return bytes(data)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    chunks, last = [], 0
    for p in points:
        chunks.append(data[last:p])
        last = p
    chunks.append(data[last:])
    return chunks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=512), mutated_request(),
                      st.sampled_from(VALID).map(lambda v: v + v)),
       cuts=st.lists(st.integers(0, 4096), max_size=12))
def test_fuzz_never_crashes(data: bytes, cuts: list[int]) -> None:
    parser = RequestParser()
    try:
        for chunk in chunked(data, cuts):
            for req in parser.feed(chunk):
                assert isinstance(req, Request)
                assert req.version in ("1.0", "1.1")
                assert isinstance(req.method, str) and req.method
                assert isinstance(req.target, bytes)
    except HttpError as err:
        assert err.status in ALLOWED_REFUSALS, err
        assert err.what
        assert parser.closed


@settings(max_examples=100, deadline=None)
@given(valid=st.sampled_from(VALID), cuts=st.lists(st.integers(0, 4096), max_size=20))
def test_fuzz_valid_requests_any_chunking_same_result(valid: bytes, cuts: list[int]) -> None:
    expected = [summary(r) for r in feed_all([valid])]
    assert expected
    assert [summary(r) for r in feed_all(chunked(valid, cuts))] == expected


# ---------------------------------------------------------------- Host and HTTP/0.9 (RFC 9112)
@pytest.mark.parametrize("data, what", [
    (b"GET / HTTP/1.1\r\n\r\n", "host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "host"),
    (b"GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", "host"),
    (b"GET /\r\n", "malformed"),
    (b"GET /index.html\r\n\r\n", "malformed"),
    (b"GET /x\r\nHost: a\r\n", "malformed"),
], ids=["no-host", "two-hosts", "two-hosts-1.0", "0.9", "0.9-blank", "0.9-header"])
def test_host_and_http09_refused_whole_and_byte_by_byte(data: bytes, what: str) -> None:
    for chunks in ([data], bytewise(data)):
        err = refusal(chunks)
        assert (err.status, err.what) == (400, what)


def test_http09_after_a_good_request_keeps_the_good_one() -> None:
    parser = RequestParser()
    with pytest.raises(HttpError) as caught:
        parser.feed(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b\r\n")
    assert caught.value.status == 400
    assert [r.target for r in parser.take_done()] == [b"/a"]


@pytest.mark.parametrize("chunks", [
    [b"GET / HTT", b"P/1.1\r\nHost: a\r\n", b"\r\n"],
    [b"GET http://a:1/ HTTP/1.1\r\n", b"Host: a\r\n\r\n"],
    [b"GET / HTTP/1.0\r\n", b"\r\n"],
], ids=["version-split", "absolute-form", "1.0-no-host"])
def test_versioned_lines_cut_at_their_end_are_not_http09(chunks: list[bytes]) -> None:
    assert len(feed_all(chunks)) == 1


# ---------------------------------------------------------------- ranges and validators
def req(*headers: tuple[bytes, bytes], method: str = "GET") -> Request:
    r = Request(method, b"/f", "1.1", True, list(headers))
    return r


@pytest.mark.parametrize("value, expected", [
    (b"bytes=0-9", (0, 9)), (b"bytes=5-", (5, 99)), (b"bytes=-10", (90, 99)),
    (b"bytes=-500", (0, 99)), (b"bytes=90-500", (90, 99)), (b"BYTES = 1-2", (1, 2)),
    (b"bytes=100-", UNSATISFIABLE), (b"bytes=100-200", UNSATISFIABLE), (b"bytes=-0", UNSATISFIABLE),
    (b"bytes=9-2", None), (b"bytes=0-1,4-5", None), (b"items=0-1", None), (b"bytes=a-b", None),
    (b"bytes=", None), (b"bytes=-", None), (b"0-9", None), (b"bytes=1" + b"0" * 60 + b"-", None),
])
def test_byte_range(value: bytes, expected: object) -> None:
    assert byte_range(req((b"Range", value)), 100, '"e"', "Mon, 01 Jan 2024 00:00:00 GMT") == expected


def test_byte_range_only_for_get_and_a_current_if_range() -> None:
    last = "Mon, 01 Jan 2024 00:00:00 GMT"
    rng = (b"Range", b"bytes=0-0")
    assert byte_range(req(rng, method="HEAD"), 100, '"e"', last) is None
    assert byte_range(req(rng, (b"If-Range", b'"e"')), 100, '"e"', last) == (0, 0)
    assert byte_range(req(rng, (b"If-Range", b'"old"')), 100, '"e"', last) is None
    assert byte_range(req(rng, (b"If-Range", last.encode())), 100, '"e"', last) == (0, 0)
    assert byte_range(req(rng, (b"If-Range", b"Sun, 31 Dec 2023 00:00:00 GMT")), 100, '"e"',
                      last) is None
    assert byte_range(req(), 100, '"e"', last) is None


def test_not_modified() -> None:
    etag, mtime = '"abc-10"', 1_700_000_000
    assert not_modified(req((b"If-None-Match", b'"abc-10"')), etag, mtime)
    assert not_modified(req((b"If-None-Match", b'W/"abc-10"')), etag, mtime)  # weak comparison
    assert not_modified(req((b"If-None-Match", b'"x", "abc-10"')), etag, mtime)
    assert not_modified(req((b"If-None-Match", b"*")), etag, mtime)
    assert not not_modified(req((b"If-None-Match", b'"abc-1"')), etag, mtime)
    since = http_date_seconds(b"Tue, 14 Nov 2023 22:13:20 GMT")
    assert since == mtime
    assert not_modified(req((b"If-Modified-Since", b"Tue, 14 Nov 2023 22:13:20 GMT")), etag, mtime)
    assert not_modified(req((b"If-Modified-Since", b"Tuesday, 14-Nov-23 22:13:20 GMT")), etag, mtime)
    assert not_modified(req((b"If-Modified-Since", b"Tue Nov 14 22:13:20 2023")), etag, mtime)
    assert not not_modified(req((b"If-Modified-Since", b"Tue, 14 Nov 2023 22:13:19 GMT")), etag, mtime)
    assert not not_modified(req((b"If-Modified-Since", b"soon")), etag, mtime)
    # If-None-Match decides when present, even if the date would say 304
    assert not not_modified(req((b"If-None-Match", b'"no"'),
                                (b"If-Modified-Since", b"Tue, 14 Nov 2023 22:13:20 GMT")), etag, mtime)
    assert not not_modified(req((b"If-None-Match", b"*"), method="POST"), etag, mtime)


def test_conditional_flag_marks_only_requests_that_need_a_look() -> None:
    (plain,) = feed_all([b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"])
    (ranged,) = feed_all([b"GET / HTTP/1.1\r\nHost: a\r\nrange: bytes=0-1\r\n\r\n"])
    (revisit,) = feed_all([b"GET / HTTP/1.1\r\nIf-None-Match: *\r\nHost: a\r\n\r\n"])
    assert (plain.conditional, ranged.conditional, revisit.conditional) == (False, True, True)
