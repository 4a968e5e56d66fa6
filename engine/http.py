"""HTTP/1.x without sockets: requests in, response heads out.

``RequestParser`` wraps httptools (llhttp). It is fed whatever bytes arrived
(a request split over many reads, or many requests in one read) and returns
the requests completed so far, in order. Anything it cannot accept raises
``HttpError`` carrying the status to answer with; the connection then sends
that answer and closes. Nothing here touches a socket, so it is tested byte by
byte.

After ``record_heads(True)`` (the server calls it while someone listens), each
``Request`` also keeps its head as received: the bytes from the request line
to the blank line, sliced from what was fed (not rebuilt from parsed values),
at most ``HEAD_CAP`` of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import formatdate

import httptools

SERVER_NAME = "SockScope"
MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024
ALLOWED_METHODS = ("GET", "HEAD")
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEAD_CAP = 2048  # bytes of a request head kept for the trace
_BLANK_LINE = b"\r\n\r\n"  # llhttp accepts CRLF line ends only: this ends every head
_UNKNOWN = -2  # where a message starts is not known (see RequestParser._start)
_CONTINUED = -1  # the message began in an earlier feed: its first bytes are in _carry

REASONS = {
    200: "OK", 206: "Partial Content", 301: "Moved Permanently", 304: "Not Modified", 400: "Bad Request",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    414: "URI Too Long", 416: "Range Not Satisfiable", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

_CONDITIONAL = frozenset((b"range", b"if-range", b"if-none-match", b"if-modified-since"))
_CONDITIONAL_SIZES = frozenset(len(n) for n in _CONDITIONAL)

_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                         b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class HttpError(Exception):
    """Input the server refuses. ``what`` names it in the trace (``malformed``,
    ``tls_client_hello``...); ``status`` is the answer."""

    def __init__(self, status: int, what: str, detail: str = "") -> None:
        super().__init__(f"{status} {what}: {detail}" if detail else f"{status} {what}")
        self.status = status
        self.what = what
        self.detail = detail


@dataclass(slots=True)
class Request:
    method: str
    target: bytes  # the request-target exactly as sent
    version: str  # "1.0" or "1.1"
    keep_alive: bool
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # The head as received (request line to blank line, at most HEAD_CAP bytes);
    # None unless the parser recorded heads, or when it lost track of where the
    # message began (after a chunked request body, or recording turned on mid-head).
    head: bytes | None = None
    head_truncated: bool = False  # the head was longer than HEAD_CAP
    # It carries Range, If-Range, If-None-Match or If-Modified-Since: the answer
    # may be 206, 304 or 416 (looked at only then, to keep plain GETs fast).
    conditional: bool = False

    def header(self, name: bytes) -> bytes | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def sniff_foreign_protocol(first_bytes: bytes) -> HttpError | None | bool:
    """Recognise the protocols browsers and tools send to a plain HTTP/1 port.

    Returns the refusal, None for plain HTTP, or True while too few bytes have
    arrived to tell (a client may send one byte at a time).
    """
    if first_bytes[:1] == b"\x16":  # TLS record type "handshake", then version 3.x
        if len(first_bytes) < 3:
            return True if first_bytes[1:2] in (b"", b"\x03") else None
        if first_bytes[1] == 0x03 and first_bytes[2] <= 0x04:
            return HttpError(400, "tls_client_hello", "a TLS handshake reached the plain-HTTP port")
        return None
    if len(first_bytes) < 4 and b"PRI ".startswith(first_bytes):
        return True
    if first_bytes.startswith(b"PRI "):
        return HttpError(400, "http2_preface", "an HTTP/2 connection preface (prior knowledge)")
    return None


def _is_09_line(line: bytes) -> bool:
    """Is this complete line a request line without a version? A request line has a
    space before any colon (methods have no colon); a header line does not."""
    line = line.rstrip(b"\r\n")
    if not line or line[0] in b" \t":
        return False
    space = line.find(b" ")
    colon = line.find(b":")
    return space > 0 and (colon < 0 or colon > space) and b" HTTP/" not in line


class RequestParser:
    """Turns received bytes into ``Request`` objects (pipelining included)."""

    __slots__ = ("_parser", "_done", "_url", "_url_len", "_headers", "_header_bytes",
                 "_in_head", "_began_now", "_head_bytes", "_sniff", "_in_message", "_prefix",
                 "_bad_method", "closed", "recording", "_data", "_pos", "_start", "_head",
                 "_head_cut", "_chunked", "_chunks_at", "_carry", "_carry_len", "_carry_tail",
                 "_line", "_conditional")

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._done: list[Request] = []
        self._url: list[bytes] = []
        self._url_len = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._in_head = False
        self._began_now = False
        self._head_bytes = 0
        self._sniff: bytes | None = b""  # first bytes, until we know it is HTTP/1
        self._in_message = False
        self._prefix = b""  # the start of a message whose method is not parsed yet
        self._bad_method: bytes | None = None  # an unknown method, waiting for its end
        self.closed = False  # a request said "close": later bytes are ignored
        # Heads as received. llhttp reports no offsets, so they are tracked here:
        # _pos is where, in the bytes being fed (_data), the next message can begin
        # (the end of the previous one: its head, plus a Content-Length body);
        # _start is where the current message began, or _CONTINUED / _UNKNOWN.
        self.recording = False  # see record_heads
        self._data = b""
        self._pos = 0
        self._start = _UNKNOWN
        self._head: bytes | None = None
        self._head_cut = False
        self._chunked = False
        self._chunks_at: tuple[bytes, int] | None = None  # where a chunked body began
        self._carry = b""  # the first HEAD_CAP bytes of a head split across feeds
        self._carry_len = 0  # all its bytes so far
        self._carry_tail = b""  # its last 3 bytes: a blank line may straddle feeds
        self._line = b""  # an unfinished head's last line so far (see _check_request_line)
        self._conditional = False

    # httptools callbacks -------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = []
        self._url_len = 0
        self._headers = []
        self._header_bytes = 0
        self._in_head = True
        self._began_now = True
        self._in_message = True
        self._start = self._pos
        self._chunked = False

    def on_url(self, chunk: bytes) -> None:
        self._url.append(chunk)
        self._url_len += len(chunk)
        if self._url_len > MAX_REQUEST_LINE:
            raise HttpError(414, "uri_too_long", f"request line over {MAX_REQUEST_LINE} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            raise HttpError(431, "headers_too_large", f"headers over {MAX_HEADER_BYTES} bytes")
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        # RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any
        # request with more than one (which of two hosts was meant?).
        hosts = 0
        conditional = False
        for name, _ in self._headers:
            size = len(name)
            if size == 4:
                if name.lower() == b"host":
                    hosts += 1
            elif size in _CONDITIONAL_SIZES and name.lower() in _CONDITIONAL:
                conditional = True
        self._conditional = conditional
        if hosts != 1 and (hosts > 1 or self._parser.get_http_version() == "1.1"):
            raise HttpError(400, "host", "two Host header fields" if hosts > 1
                            else "an HTTP/1.1 request without a Host header field")
        self._in_head = False
        self._head_bytes = 0
        if self.recording:
            start = self._start
            if start >= 0:  # the usual case, inline: the head began in these bytes
                data = self._data
                end = data.find(b"\r\n\r\n", start) + 4
                if 4 <= end <= start + HEAD_CAP and data[start] > 13:  # no CR/LF to skip
                    self._head = data[start:end]
                    self._head_cut = False
                    self._pos = end
                    return
            self._take_head()

    def on_body(self, chunk: bytes) -> None:
        if self._pos >= 0:
            self._pos += len(chunk)

    def on_chunk_header(self) -> None:
        # Chunk sizes and extensions reach no callback: where this message ends is
        # found by walking the chunks (``_after_chunks``) if a head follows in
        # the same feed, else when the next feed starts outside a message.
        self._chunked = True
        if self._pos >= 0:
            self._chunks_at = (self._data, self._pos)
            self._pos = _UNKNOWN

    def on_message_complete(self) -> None:
        self._in_message = False
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            if version.startswith("0."):
                raise HttpError(400, "malformed", "HTTP/0.9 requests are not served")
            raise HttpError(505, "bad_version", f"HTTP/{version} is not supported here")
        keep_alive = parser.should_keep_alive()
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        request = Request(parser.get_method().decode("ascii"), url, version, keep_alive,
                          self._headers, conditional=self._conditional)
        if self.recording:
            request.head = self._head
            request.head_truncated = self._head_cut
        self._done.append(request)
        if not keep_alive:
            self.closed = True

    # ---------------------------------------------------------------------
    @property
    def in_head(self) -> bool:
        """A request has begun and its head is not complete yet."""
        return self._in_head

    def record_heads(self, on: bool) -> None:
        """Keep each request's head (``Request.head``) from now on, or stop.

        A request already begun when recording starts gets no head (None):
        where it began is not known.
        """
        if on and not self.recording:
            self._head = None
            self._head_cut = False
            self._start = _UNKNOWN
            self._pos = _UNKNOWN
            self._chunks_at = None
        self.recording = on

    def take_done(self) -> list[Request]:
        """Requests completed before an error was raised in the same ``feed``."""
        done, self._done = self._done, []
        return done

    def feed(self, data: bytes) -> list[Request]:
        """Parse ``data``; return the requests it completed (possibly none)."""
        if self.closed:
            return []
        if self._sniff is not None:
            data = self._sniff + data
            verdict = sniff_foreign_protocol(data)
            if verdict is True:
                self._sniff = data
                return []
            self._sniff = None
            if isinstance(verdict, HttpError):
                self.closed = True
                raise verdict
        if self._bad_method is not None:
            self._bad_method += data
            self._judge_method(self._bad_method)
            return []
        was_in_message = self._in_message
        self._began_now = False
        if self.recording:
            self._data = data
            self._pos = _UNKNOWN if self._chunked and was_in_message else 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # "Upgrade:" or CONNECT: answer what was asked in HTTP/1.1, then close.
            self.closed = True
            if self._done:
                self._done[-1].keep_alive = False
        except httptools.HttpParserInvalidMethodError:
            if not self.closed:  # bytes after a "close" request are not an error
                self._bad_method = self._message_start(data, was_in_message)
                self._judge_method(self._bad_method)
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raised: our own refusals come back here.
            if isinstance(exc.__context__, HttpError):
                self.closed = True
                raise exc.__context__ from None
            if not self.closed:
                self.closed = True
                raise HttpError(400, "malformed", str(exc) or type(exc).__name__) from None
        if self._in_message and not self._url:
            # The feed ended before the method was parsed: keep its first bytes,
            # should it turn out to be a method llhttp does not know.
            self._prefix = self._message_start(data, was_in_message)[:64]
        elif self._prefix:
            self._prefix = b""
        if self._in_head:
            self._check_request_line(data)
            if self.recording:
                self._carry_head(data)
            if not self._began_now:
                # A head still incomplete across reads: httptools buffers the partial
                # header internally, so bound it here (at most one read beyond).
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEADER_BYTES + MAX_REQUEST_LINE:
                    self.closed = True
                    raise HttpError(431, "headers_too_large", "request head too large")
        elif self._line:
            self._line = b""
        if self.recording:
            self._data = b""
            self._chunks_at = None
        done = self._done
        if done:
            self._done = []
        return done

    def _check_request_line(self, data: bytes) -> None:
        """A head is unfinished at the end of a feed: if its request line has ended
        without a version, it is HTTP/0.9, which has no headers to wait for. llhttp
        would wait for them (and a header timeout answer 408): refuse it at once.

        llhttp says "0.9" once it reads past such a line; a feed that ends right at
        its LF is judged here from the line itself (``_line``: the bytes after the
        last LF of earlier feeds, for a line split across feeds)."""
        if self._parser.get_http_version() == "0.9" or (
                self._url and data.endswith(b"\n") and _is_09_line(self._last_line(data))):
            self.closed = True
            raise HttpError(400, "malformed", "an HTTP/0.9 request (no version): not served")
        at = data.rfind(b"\n")
        self._line = data[at + 1:] if at >= 0 else (self._line + data)[-MAX_REQUEST_LINE:]

    def _last_line(self, data: bytes) -> bytes:
        at = data.rfind(b"\n", 0, len(data) - 1)
        return data[at + 1:] if at >= 0 else self._line + data

    def _take_head(self) -> None:
        """The head just completed: slice it from the bytes fed (and the carry)."""
        data = self._data
        start = self._start
        if start >= 0:
            while data[start] in (13, 10):  # CR/LF before a message, skipped by llhttp
                start += 1
            end = data.find(_BLANK_LINE, start) + 4
            if end < 4:  # cannot happen: llhttp saw the blank line in these bytes
                self._head, self._head_cut, self._pos = None, False, _UNKNOWN
                return
            if end - start > HEAD_CAP:
                self._head = data[start:start + HEAD_CAP]
                self._head_cut = True
            else:
                self._head = data[start:end]
                self._head_cut = False
        elif start == _CONTINUED:
            tail = self._carry_tail
            joint = tail + data[:3]
            at = joint.find(_BLANK_LINE)
            end = at + 4 - len(tail) if at >= 0 else data.find(_BLANK_LINE) + 4
            carry = self._carry
            if len(carry) < HEAD_CAP:
                carry += data[:min(end, HEAD_CAP - len(carry))]
            self._head = carry
            self._head_cut = self._carry_len + end > HEAD_CAP
            self._carry = self._carry_tail = b""
        else:
            # Right after a chunked body: found by walking it. Otherwise begun
            # before recording was on: no head, and no telling where it ends.
            chunks_at, self._chunks_at = self._chunks_at, None
            if chunks_at is not None and chunks_at[0] is data:
                self._start = self._after_chunks(data, chunks_at[1])
                if self._start >= 0:
                    self._take_head()
                    return
            self._head, self._head_cut, self._pos = None, False, _UNKNOWN
            return
        self._pos = end

    @staticmethod
    def _after_chunks(data: bytes, pos: int) -> int:
        """Where the chunked body starting at ``pos`` (already accepted by llhttp)
        ends, trailers included; _UNKNOWN if that is not within ``data``."""
        while True:
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                return _UNKNOWN
            try:
                size = int(data[pos:eol].split(b";", 1)[0].strip(), 16)
            except ValueError:
                return _UNKNOWN
            pos = eol + 2
            if size == 0:  # the last chunk, then trailers up to a blank line
                end = data.find(_BLANK_LINE, pos - 2)
                return end + 4 if end >= 0 else _UNKNOWN
            pos += size + 2

    def _carry_head(self, data: bytes) -> None:
        """Keep the start of a head that goes on in the next feed."""
        start = self._start
        if start >= 0:
            part = data[start:].lstrip(b"\r\n")
            self._carry = part[:HEAD_CAP]
            self._carry_len = len(part)
            self._carry_tail = part[-3:]
            self._start = _CONTINUED
        elif start == _CONTINUED:
            self._carry_len += len(data)
            if len(self._carry) < HEAD_CAP:
                self._carry += data[:HEAD_CAP - len(self._carry)]
            self._carry_tail = (self._carry_tail + data[-3:])[-3:]

    def _message_start(self, data: bytes, was_in_message: bool) -> bytes:
        """The bytes of the message in progress at the end of ``data``, from its start.

        Counts head ends (CRLF CRLF) of the messages completed in ``data``; a
        message with a body would confuse it, which costs only the choice
        between 400 and 405 for the request after it.
        """
        start = 0
        for _ in range(len(self._done)):
            end = data.find(b"\r\n\r\n", start)
            if end < 0:
                break
            start = end + 4
        if start == 0 and was_in_message:
            return self._prefix + data
        return data[start:].lstrip(b"\r\n")

    def _judge_method(self, start: bytes) -> None:
        """A method llhttp does not know: 405 if it is a well-formed token, else
        400. Raises once the token has ended; returns while it may go on."""
        token, space, _ = start.partition(b" ")
        well_formed = bool(token) and len(token) <= 32 and all(c in _TOKEN_CHARS for c in token)
        if space and well_formed:
            self.closed = True
            raise HttpError(405, "method_not_allowed", f"method {token.decode('ascii')}")
        if not well_formed or len(start) > 32:
            self.closed = True
            raise HttpError(400, "malformed", "not an HTTP request line")


class DateCache:
    """The ``Date`` header value, formatted at most once a second."""

    __slots__ = ("_second", "value")

    def __init__(self) -> None:
        self._second = -1
        self.value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self.value = formatdate(second, usegmt=True)
        return self.value


def response_head(status: int, length: int | None, content_type: str | None, date: str,
                  keep_alive: bool, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A response head. ``length`` and ``content_type`` None leave their fields out
    (a 304 describes the representation the client has, and sends none)."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
             f"Server: {SERVER_NAME}", f"Date: {date}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    lines.extend(f"{k}: {v}" for k, v in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_body(status: int, detail: str = "") -> bytes:
    reason = REASONS.get(status, "Error")
    text = f"{status} {reason}\n" + (f"{detail}\n" if detail else "")
    return text.encode("utf-8")


def plain_answer(status: int, detail: str, date: str, keep_alive: bool = False,
                 extra: tuple[tuple[str, str], ...] = ()) -> tuple[bytes, bytes]:
    """A short plain-text answer (an error, a redirect): its head and its body."""
    body = error_body(status, detail)
    return response_head(status, len(body), "text/plain; charset=utf-8", date, keep_alive,
                         extra), body


# ---------------------------------------------------------------- caching and ranges
UNSATISFIABLE = "unsatisfiable"


def etag_for(mtime_ns: int, size: int) -> str:
    """A strong validator from what changes when the file does (as nginx: time, size)."""
    return f'"{mtime_ns:x}-{size:x}"'


def http_date_seconds(value: bytes) -> int | None:
    """An HTTP date (IMF-fixdate, RFC 850 or asctime) as Unix seconds; None if it is not one."""
    from email.utils import mktime_tz, parsedate_tz
    try:
        parsed = parsedate_tz(value.decode("latin-1"))
        return None if parsed is None else int(mktime_tz(parsed))
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


def etag_matches(header: bytes, etag: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110 13.1.2): "*" or any listed tag,
    ``W/`` or not, with the same opaque value."""
    value = header.strip()
    if value == b"*":
        return True
    want = etag.encode("latin-1")
    for tag in value.split(b","):
        tag = tag.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == want:
            return True
    return False


def not_modified(request: "Request", etag: str, mtime_s: int) -> bool:
    """GET or HEAD whose copy is still good: 304 (RFC 9110 13.2.2: If-None-Match
    decides when present; If-Modified-Since only without it)."""
    if request.method not in ("GET", "HEAD"):
        return False
    none_match = request.header(b"If-None-Match")
    if none_match is not None:
        return etag_matches(none_match, etag)
    since = request.header(b"If-Modified-Since")
    if since is not None:
        seconds = http_date_seconds(since)
        return seconds is not None and mtime_s <= seconds
    return False


def byte_range(request: "Request", size: int, etag: str, last_modified: str
               ) -> tuple[int, int] | str | None:
    """The one range a GET asks for, as (first, last) inclusive; ``UNSATISFIABLE``
    for 416; None to send the whole file (no Range, an If-Range that no longer
    matches, a unit other than bytes, several ranges, or a malformed one: RFC 9110
    14.2 lets a server ignore Range)."""
    if request.method != "GET":
        return None
    value = request.header(b"Range")
    if value is None:
        return None
    if_range = request.header(b"If-Range")
    if if_range is not None:
        if_range = if_range.strip()
        if if_range.startswith(b'"'):  # an entity tag: strong comparison
            if if_range != etag.encode("latin-1"):
                return None
        elif if_range != last_modified.encode("latin-1"):
            return None
    unit, eq, spec = value.strip().partition(b"=")
    if not eq or unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition(b"-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or first_text == b"") \
            or not (last_text.isdigit() or last_text == b"") or len(spec) > 40:
        return None
    if not first_text:  # a suffix: the last N bytes
        if not last_text:
            return None
        length = int(last_text)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - length), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: ignored
    if first >= size:
        return UNSATISFIABLE
    return first, min(int(last_text), size - 1) if last_text else size - 1
