"""One client connection, shared by every I/O mode.

The modes differ only in *when* they call ``handle_read`` and ``handle_write``
(a thread blocked in recv, a polling sweep, epoll's ready list). What a
connection does with the bytes is here, once: parse, answer in order, buffer
what the socket did not take, stream large files, time out, and close.

The lecture's servers had four bugs this class must not have: ``recv(1024)``
taken as a whole request, partial ``send`` results ignored, no
Content-Length on keep-alive, and a path joined onto the root unchecked.
"""
from __future__ import annotations

import errno
import math
import os
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, BinaryIO

from .http import (ALLOWED_METHODS, UNSATISFIABLE, HttpError, Request, RequestParser, byte_range,
                   error_body, not_modified, plain_answer, response_head)
from .kernel.tcpinfo import tcp_info
from .static import content_type, validators

if TYPE_CHECKING:
    from .events import Probe, TaggedProbe
    from .server import Server

RECV_SIZE = 64 * 1024
FILE_CHUNK = 64 * 1024
OUT_HIGH = 64 * 1024  # answer further pipelined requests only below this much unsent
MAX_PENDING = 8  # pipelined requests waiting for an answer; stop reading beyond
# Requests parsed out of one read; the rest of the read waits, unparsed, until their
# answers are out (nginx, too, takes one request at a time from its buffer). A 64 KiB
# read of tiny pipelined requests holds ~2,000: parsing them all ahead cost ~1 MB per
# connection of a client that sends and never reads.
PARSE_AHEAD = 4
TCP_INFO_ON_CLOSE = ("segs_in", "segs_out", "total_retrans", "rtt_us", "bytes_acked",
                     "bytes_received")
LINGER = 2.0  # seconds a refused client gets to stop sending before we close
# errno of a file that cannot be read -> the status that answers the request
FILE_ERRORS = {errno.EACCES: 403, errno.EPERM: 403, errno.ENOENT: 404, errno.ENOTDIR: 404,
               errno.EISDIR: 404, errno.ELOOP: 404, errno.EMFILE: 503, errno.ENFILE: 503,
               errno.ENOMEM: 503}
PREVIEW = 64  # bytes of a response body shown in its event

# The text of cached answers, for their response events: (answer, head, preview)
# by the answer's id. A cached answer is the same bytes object for a second,
# so while tracing it is decoded once, not per request. Bounded; the answer is
# kept with its texts so an id cannot be reused while its entry lives.
_ANSWER_TEXTS: dict[int, tuple[bytes, str, str]] = {}
_ANSWER_TEXTS_MAX = 32


class Connection:
    __slots__ = ("server", "sock", "fd", "id", "peer", "tid", "parser", "pending", "out",
                 "body", "body_left", "close_after", "closed", "deadline", "deadline_why",
                 "requests", "bytes_in", "bytes_out", "mask", "read_paused", "blocking",
                 "refused", "lingering", "peer_eof", "gate", "inbuf", "probe",
                 "queued_at", "__weakref__")

    def __init__(self, server: "Server", sock: socket.socket, conn_id: str, peer: str,
                 tid: int, blocking: bool = False) -> None:
        self.server = server
        self.gate = server.gate
        # Where this connection's events go: the server's probe, or one that tags them
        # with the greenlet or task that serves the connection (``TaggedProbe``).
        self.probe: "Probe | TaggedProbe" = server.probe
        self.sock = sock
        self.fd = sock.fileno()
        self.id = conn_id
        self.peer = peer
        self.tid = tid
        self.parser = RequestParser()
        self.pending: deque[Request | HttpError] = deque()
        self.out = b""  # bytes the socket has not taken yet
        self.body: BinaryIO | None = None  # a large file being streamed
        self.body_left = 0
        self.close_after = False  # close once everything queued is sent
        self.closed = False
        self.deadline = time.monotonic() + server.config.header_timeout
        self.deadline_why = "header_timeout"
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.mask = 0  # the epoll/selectors interest currently registered
        self.read_paused = False
        self.blocking = blocking
        self.refused = False  # the last answer refused bad input
        self.lingering = False  # after a refusal: writing shut, reading to EOF
        self.peer_eof = False  # the client shut down its side (half-close)
        self.inbuf = b""  # received, not parsed yet (beyond PARSE_AHEAD requests)
        self.queued_at = math.inf  # a readiness loop's deadline heap: this one's entry

    # ------------------------------------------------------------ reading
    def wants_read(self) -> bool:
        if self.lingering:
            return not self.closed
        return not (self.closed or self.close_after or self.peer_eof or self.inbuf) \
            and len(self.pending) < MAX_PENDING

    def wants_write(self) -> bool:
        return not self.closed and (bool(self.out) or self.body is not None)

    def handle_read(self, drain: bool = False, size: int = RECV_SIZE) -> None:
        """Receive once (or until EAGAIN when ``drain``), answer what completed.

        ``size``: bytes asked of each recv (smaller only for a lesson's bug)."""
        sock = self.sock
        probe = self.probe
        while True:
            if not self.wants_read():
                self.read_paused = True
                return
            if self.blocking:
                # A blocking recv's timeout is per call; the deadline is absolute,
                # so a client dribbling a byte at a time still runs out of time.
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self._time_out()
                    return
                sock.settimeout(left)
            if self.gate.enabled:
                self.gate.wait("recv", self.id, self.fd, self.tid)
            try:
                data = sock.recv(size)
            except BlockingIOError:
                self.server.stats.eagain += 1
                if probe.active:
                    probe.emit("eagain", self.id, self.fd, self.tid, op="recv")
                return
            except TimeoutError:
                self._time_out()
                return
            except OSError as exc:
                self._fail_io("recv", exc)
                return
            if probe.active:
                probe.emit_data("recv", self.id, self.fd, self.tid, {"bytes": len(data)})
            self.received(data)
            if not data or self.closed:
                return
            if self.lingering:  # what the refused client still sends is discarded: read on
                continue
            self.handle_write()
            if not drain or self.closed:
                return

    # ------------------------------------------------------------ the session
    # What every mode's driver calls, whoever makes the syscalls: the bytes a read
    # gave (``received``), the bytes to send next (``take_output``), how many went
    # (``sent``), and everything queued gone (``all_sent``). ``handle_read`` and
    # ``handle_write`` are the socket driver; asyncio's streams are another.
    def received(self, data: bytes) -> None:
        """Bytes a read gave; ``b""``: the peer shut down its side (EOF)."""
        if not data:
            if self.lingering:
                self.close("lingered")
            elif self.wants_write() or self.pending:
                # Half-closed: the client still reads. Finish answering first.
                self.peer_eof = self.close_after = True
            else:
                # (a blocking mode's stop shuts the socket down itself: that is not
                # the peer closing)
                self.close("server stopping" if self.server._stopping else "peer closed")
            return
        self.bytes_in += len(data)
        if self.lingering:  # discard what the refused client still sends
            return
        self.read_paused = False
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        # About PARSE_AHEAD request heads now, the rest later. The cut goes after a
        # blank line followed by what looks like a method, so as not to fall inside a
        # body (the parser would take any cut; the heads kept for the trace would not).
        end = 0
        for heads in range(1, 4 * PARSE_AHEAD):
            end = data.find(b"\r\n\r\n", end) + 4
            if end < 4:
                break
            if heads >= PARSE_AHEAD and end < len(data) and 65 <= data[end] <= 90:
                self.inbuf = data[end:]
                data = data[:end]
                break
        parser = self.parser
        if parser.recording is not self.probe.active:  # heads as received, for the trace
            parser.record_heads(self.probe.active)
        try:
            requests = parser.feed(data)
        except HttpError as exc:
            self.inbuf = b""
            requests = self.parser.take_done()
            self.pending.extend(requests)
            self._note_requests(requests)
            self.pending.append(exc)
            probe = self.probe
            if probe.active:  # with the bytes of the read that was refused, as the http view shows
                probe.emit("error", self.id, self.fd, self.tid, what=exc.what, detail=exc.detail,
                           status=exc.status, head=data[:2048].decode("latin-1"),
                           head_truncated=len(data) > 2048)
            self.server.stats.bad_requests += 1
            return
        if requests:
            self.pending.extend(requests)
            self._note_requests(requests)
        elif self.deadline_why != "header_timeout" and self.parser.in_head:
            self._set_deadline("header_timeout")

    def _note_requests(self, requests: list[Request]) -> None:
        probe = self.probe
        if probe.active:
            for req in requests:
                head = req.head
                data = {"method": req.method, "path": req.target.decode("latin-1"),
                        "version": req.version, "keep_alive": req.keep_alive,
                        "head": head.decode("latin-1") if head is not None else ""}
                if req.head_truncated:
                    data["head_truncated"] = True
                probe.emit_data("request", self.id, self.fd, self.tid, data)

    # ------------------------------------------------------------ answering
    def _answer_next(self) -> None:
        """Queue the answer to the oldest pending request (or refusal)."""
        item = self.pending.popleft()
        server = self.server
        if isinstance(item, HttpError):
            self.refused = True
            extra = (("Allow", ", ".join(ALLOWED_METHODS)),) if item.status == 405 else ()
            self._queue_error(item.status, item.detail or item.what, "", False, extra)
            return
        self.requests += 1
        keep_alive = item.keep_alive and server.keep_alive_policy
        if not keep_alive:
            self.close_after = True
        if item.method not in ALLOWED_METHODS:
            self._queue_error(405, f"method {item.method} is not allowed", item.target,
                              keep_alive, (("Allow", ", ".join(ALLOWED_METHODS)),))
            return
        site = server.site
        now = time.monotonic()
        resolved = site.resolve(item.target, now)
        if resolved.status == 301:
            self._queue_error(301, "", item.target, keep_alive,
                              (("Location", resolved.location or "/"),),
                              head_only=item.method == "HEAD")
            return
        if resolved.status != 200 or resolved.path is None:
            self._queue_not_found(resolved.status, item, keep_alive)
            return
        head_only = item.method == "HEAD"
        date = server.date.now()
        try:
            cached = site.small_file(resolved.path)
            if cached is None:
                f = open(resolved.path, "rb")
        except OSError as exc:  # the file system's answer is this request's, not the server's
            self._file_failed(exc, item, keep_alive)
            return
        if cached is not None:
            if item.conditional and self._conditional(item, cached.size, cached.mtime_ns,
                                                      cached.fields, cached.ctype, keep_alive,
                                                      cached.body):
                return
            answer = cached.answer(date, keep_alive, head_only)
            self._queue(answer)
            self._note_cached_response(cached.size, item.target, answer)
            return
        try:
            st = os.fstat(f.fileno())
            size = st.st_size
            fields = validators(st.st_mtime_ns, size)
            if item.conditional and self._conditional(item, size, st.st_mtime_ns, fields,
                                                      content_type(resolved.path), keep_alive, f):
                return
        except OSError as exc:
            f.close()
            self._file_failed(exc, item, keep_alive)
            return
        head = response_head(200, size, content_type(resolved.path), date, keep_alive, fields)
        self._queue(head)
        self._stream(f, 0, size, head, item.target, 200, head_only)

    def _stream(self, f: BinaryIO, first: int, length: int, head: bytes, target: bytes,
                status: int, head_only: bool) -> None:
        """Send ``length`` bytes of the open file ``f`` from ``first`` after ``head``
        (already queued): streamed from the disk as the socket takes them."""
        preview = b""
        try:
            if first:
                f.seek(first)
            if self.probe.active and not head_only and length:
                # the first bytes; the buffered reader keeps them for streaming
                preview = f.read(min(PREVIEW, length))
                f.seek(first)
        except OSError as exc:
            f.close()
            self._report("error", what="file_read", detail=str(exc))
            self.close("file unreadable while sending")
            return
        self._note_response(status, length, target, head, preview)
        if head_only or length == 0:
            f.close()
        else:
            self.body = f
            self.body_left = length

    def _conditional(self, item: Request, size: int, mtime_ns: int,
                     fields: tuple[tuple[str, str], ...], ctype: str, keep_alive: bool,
                     content: bytes | BinaryIO) -> bool:
        """Answer a conditional or range request if it is one: 304 when the client's
        copy is current, 206 with one range, 416 for a range beyond the end. Returns
        False when the whole file is to be sent as usual (``content``: the cached
        bytes or the open file; an open file is closed if answered here)."""
        date = self.server.date.now()
        last_modified, etag = fields[0][1], fields[1][1]  # as static.validators makes them
        if not_modified(item, etag, mtime_ns // 1_000_000_000):
            head = response_head(304, None, None, date, keep_alive, fields)
            self._queue(head)
            self._note_response(304, 0, item.target, head, b"")
            if not isinstance(content, bytes):
                content.close()
            return True
        wanted = byte_range(item, size, etag, last_modified)
        if wanted is None:
            return False
        if wanted == UNSATISFIABLE:
            head, body = plain_answer(416, f"the file has {size} bytes", date, keep_alive,
                                      (("Content-Range", f"bytes */{size}"),))
            self._queue(head + body)
            self._note_response(416, len(body), item.target, head, body)
            if not isinstance(content, bytes):
                content.close()
            return True
        first, last = wanted  # type: ignore[misc]
        length = last - first + 1
        head = response_head(206, length, ctype, date, keep_alive,
                             (("Content-Range", f"bytes {first}-{last}/{size}"), *fields))
        self._queue(head)
        if isinstance(content, bytes):
            part = content[first:last + 1]
            self._queue(part)
            self._note_response(206, length, item.target, head, part)
        else:
            self._stream(content, first, length, head, item.target, 206, False)
        return True

    def _file_failed(self, exc: OSError, item: Request, keep_alive: bool) -> None:
        """A file that could not be read: answered for what it is, recorded with its
        errno, and the server serves on (unreadable 403, vanished 404, out of file
        descriptors or memory 503, anything else 500)."""
        status = FILE_ERRORS.get(exc.errno or 0, 500)
        if status == 404:
            self.server.site.forget()  # replaced or deleted: look at the disk again
        self._report_file_error(exc, status)
        self._queue_not_found(status, item, keep_alive)

    def _report_file_error(self, exc: OSError, status: int) -> None:
        self._report("error", what="file", errno=errno.errorcode.get(exc.errno or 0, ""),
                     status=status, detail=f"{exc.strerror or exc}: {exc.filename or ''}")

    def _queue_not_found(self, status: int, item: Request, keep_alive: bool) -> None:
        body = b""
        if status == 404:
            page = self.server.site.resolve(b"/404.html")
            try:
                cached = self.server.site.small_file(page.path) if page.path else None
            except OSError as exc:  # the error page itself unreadable: the plain one will do
                cached = None
                self._report_file_error(exc, 404)
            if cached is not None:
                body = cached.body
        if not body:
            body = error_body(status)
        ctype = "text/html; charset=utf-8" if body.startswith(b"<") else "text/plain; charset=utf-8"
        head = response_head(status, len(body), ctype, self.server.date.now(), keep_alive)
        if item.method == "HEAD":
            self._queue(head)
            self._note_response(status, len(body), item.target, head, b"")
        else:
            self._queue(head + body)
            self._note_response(status, len(body), item.target, head, body)

    def _queue_error(self, status: int, detail: str, target: bytes | str, keep_alive: bool,
                     extra: tuple[tuple[str, str], ...] = (), head_only: bool = False) -> None:
        if not keep_alive:
            self.close_after = True
        head, body = plain_answer(status, detail if status >= 400 else "",
                                  self.server.date.now(), keep_alive, extra)
        if head_only:  # HEAD: the head a GET would get, never a body (RFC 9110 9.3.2)
            body = b""
        self._queue(head + body)
        self._note_response(status, len(body), target, head, body)

    def _queue(self, data: bytes) -> None:
        self.out = self.out + data if self.out else data

    def _note_response(self, status: int, length: int, target: bytes | str, head: bytes,
                       body: bytes) -> None:
        """Count a response; with a listener, report it with its head as sent and
        the first bytes of its body (``body``: what is sent of it, b"" for none)."""
        self.server.stats.responses += 1
        probe = self.probe
        if probe.active:
            if isinstance(target, bytes):
                target = target.decode("latin-1")
            probe.emit_data("response", self.id, self.fd, self.tid, {
                "status": status, "length": length, "path": target,
                "head": head.decode("latin-1"),
                "preview": body[:PREVIEW].decode("latin-1", "replace")})

    def _note_cached_response(self, length: int, target: bytes, answer: bytes) -> None:
        """``_note_response`` for a whole cached 200 answer (head, then body if any)."""
        self.server.stats.responses += 1
        probe = self.probe
        if probe.active:
            texts = _ANSWER_TEXTS.get(id(answer))
            if texts is None or texts[0] is not answer:
                end = answer.find(b"\r\n\r\n") + 4
                texts = (answer, answer[:end].decode("latin-1"),
                         answer[end:end + PREVIEW].decode("latin-1", "replace"))
                if len(_ANSWER_TEXTS) >= _ANSWER_TEXTS_MAX:
                    _ANSWER_TEXTS.clear()
                _ANSWER_TEXTS[id(answer)] = texts
            probe.emit_data("response", self.id, self.fd, self.tid, {
                "status": 200, "length": length, "path": target.decode("latin-1"),
                "head": texts[1], "preview": texts[2]})

    # ------------------------------------------------------------ writing
    def handle_write(self) -> None:
        """Send what is queued, answering pending requests as room frees up.

        Non-blocking: returns when the socket would block (``wants_write``
        then says so). Blocking (threaded mode): returns when all is sent.
        """
        sock = self.sock
        probe = self.probe
        if self.blocking and (self.out or self.pending or self.body is not None):
            sock.settimeout(self.server.config.send_timeout)
        progress = False
        while not self.closed:
            out = self.out or self.take_output()
            if not out:
                break
            if self.gate.enabled:
                self.gate.wait("send", self.id, self.fd, self.tid)
            try:
                sent = sock.send(out)
            except BlockingIOError:
                self.server.stats.eagain += 1
                if probe.active:
                    probe.emit("eagain", self.id, self.fd, self.tid, op="send")
                if progress:  # the send timeout counts from the last progress
                    self.deadline = time.monotonic() + self.server.config.send_timeout
                    self.deadline_why = "send_timeout"
                return
            except TimeoutError:
                self.deadline_why = "send_timeout"
                self._time_out()
                return
            except OSError as exc:
                self._fail_io("send", exc)
                return
            progress = True
            if probe.active:
                probe.emit_data("send", self.id, self.fd, self.tid,
                                {"bytes": sent, "wanted": len(out)})
            self.sent(sent)
        if not self.closed:
            self.all_sent()

    def take_output(self) -> bytes:
        """The bytes to send next (``b""``: nothing, for now): what is queued, else the
        next part of a file being streamed, else the answer to the oldest pending
        request, else the requests of the last read not parsed yet."""
        while not self.closed and not self.out:
            if self.body is not None:
                self._refill_from_body()
            elif self.pending and not self.close_after:
                self._answer_next()
            elif self.inbuf:  # answers out: parse the next requests of the last read
                data, self.inbuf = self.inbuf, b""
                if not self.close_after:
                    self._feed(data)
            else:
                break
        return self.out

    def sent(self, count: int) -> None:
        """``count`` bytes of ``take_output()`` went; with room, answer the next request."""
        self.bytes_out += count
        out = self.out
        self.out = out[count:] if count < len(out) else b""
        if self.pending and len(self.out) < OUT_HIGH and self.body is None \
                and not self.close_after:
            self._answer_next()

    def all_sent(self) -> None:
        """Everything queued went out: close if that was the last answer, else time
        the wait for the next request."""
        if self.close_after:
            if self.refused:
                self._linger()
            else:
                self.close("peer closed" if self.peer_eof else "keep-alive off")
        elif not self.pending:
            if self.parser.in_head:
                if self.deadline_why != "header_timeout":
                    self._set_deadline("header_timeout")
            else:
                self._set_deadline("idle_timeout")

    def _refill_from_body(self) -> None:
        body = self.body
        assert body is not None
        try:
            chunk = body.read(min(FILE_CHUNK, self.body_left))
        except OSError as exc:
            chunk = b""
            self._report("error", what="file_read", detail=str(exc))
        if not chunk:
            # The file shrank under us: the promised length cannot be kept.
            body.close()
            self.body = None
            if self.body_left:
                self.close("file truncated while sending")
            return
        self.body_left -= len(chunk)
        self.out = chunk
        if self.body_left <= 0:
            body.close()
            self.body = None

    # ------------------------------------------------------------ ending
    def _linger(self) -> None:
        """Close after a refusal without losing the answer.

        Closing a socket with unread input makes the kernel send RST, and an
        RST can destroy the 400 before the client reads it. So: shut down
        writing (FIN after the answer), read and discard until the client
        closes or ``LINGER`` seconds pass, then close.
        """
        if self.lingering:
            return
        self.lingering = True
        try:
            self._shutdown_write()
        except OSError:
            self.close("refused")
            return
        self._report("shutdown", how="SHUT_WR")
        self.deadline = time.monotonic() + LINGER
        self.deadline_why = "linger"

    def _shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def _send_now(self, data: bytes) -> None:
        """A short answer in one non-blocking send, nothing waiting for it to go
        (raises OSError)."""
        self.sock.setblocking(False)
        self.sock.send(data)

    def _release(self) -> None:
        """Give the socket back to the kernel (the fd closes)."""
        self.sock.close()

    def _set_deadline(self, why: str) -> None:
        config = self.server.config
        timeout = config.idle_timeout if why == "idle_timeout" else config.header_timeout
        self.deadline = time.monotonic() + timeout
        self.deadline_why = why

    def expire_if_due(self, now: float) -> bool:
        """Close the connection if its deadline passed; returns whether it did."""
        if self.closed or now < self.deadline:
            return False
        if self.wants_write():
            if self.deadline_why != "send_timeout":  # progress resets the clock
                self.deadline = now + self.server.config.send_timeout
                self.deadline_why = "send_timeout"
                return False
        self._time_out()
        return True

    def _time_out(self) -> None:
        why = self.deadline_why
        if why == "linger":
            self.close("refused")
            return
        self._report("error", what=why, detail=f"no progress within the {why.replace('_', ' ')}")
        if why == "header_timeout" and self.parser.in_head and not self.out:
            # A request was started and never finished: say so before closing.
            try:
                self._send_now(response_head(408, 0, "text/plain", self.server.date.now(),
                                             False))
            except OSError:
                pass
        self.close(why)

    def _fail_io(self, op: str, exc: OSError) -> None:
        what = {ConnectionResetError: "reset", BrokenPipeError: "epipe"}.get(type(exc), "oserror")
        self.server.stats.io_errors += 1
        self._report("error", what=what, detail=f"{op}: {exc.strerror or exc}")
        self.close(what)

    def _report(self, kind: str, **data: object) -> None:
        probe = self.probe
        if probe.active:
            probe.emit(kind, self.id, self.fd, self.tid, **data)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        if reason == "peer closed" and self.server.config.never_close:
            self._never_close()
            return
        if self.gate.enabled:
            self.gate.wait("close", self.id, self.fd, self.tid)
        self._drop_work()
        probe = self.probe
        if probe.active:
            # What the kernel counted for this connection, just before it goes
            # (a few microseconds, and only when someone listens).
            info = tcp_info(self.sock)
            extra = {k: info[k] for k in TCP_INFO_ON_CLOSE if k in info} if info else {}
            probe.emit("close", self.id, self.fd, self.tid, reason=reason, **extra,
                       **self.server.close_fields)
        self.server._forget(self)  # before close: the mode may unregister the fd
        try:
            self._release()
        except OSError:
            pass

    def crashed(self, exc: BaseException) -> None:
        """The last resort of every loop: a bug or an unforeseen error while handling
        this connection costs this connection only. Recorded (with the errno of an
        OSError), answered 500 if no byte of an answer has gone out yet, closed."""
        try:
            self.server.stats.io_errors += 1
            name = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
            self._report("error", what="internal", errno=name,
                         detail=f"{type(exc).__name__}: {exc}"[:500])
            if not self.closed and not self.lingering and not self.out and self.body is None:
                self._answer_now(500, "the server failed on this connection")
        except Exception:  # noqa: BLE001 - reporting must not fail the loop in turn
            pass
        try:
            self.close("internal error")
        except Exception:  # noqa: BLE001
            self.closed = True
            self.server._forget(self)
            try:
                self.sock.close()
            except OSError:
                pass

    def _answer_now(self, status: int, detail: str) -> None:
        """A short answer in one non-blocking send (nothing waits for it to go)."""
        head, body = plain_answer(status, detail, self.server.date.now())
        try:
            self._send_now(head + body)
            self._note_response(status, len(body), "", head, body)
        except OSError:
            pass

    def refuse(self, status: int, detail: str, reason: str = "refused") -> None:
        """Turn this connection away before serving it: ``status`` at once, then close."""
        self._answer_now(status, detail)
        self.close(reason)

    def _drop_work(self) -> None:
        """Done with this connection: nothing more is read, answered or streamed."""
        self.closed = True
        self.inbuf = b""
        if self.body is not None:
            self.body.close()
            self.body = None
        self.out = b""
        self.pending.clear()

    def _never_close(self) -> None:
        """``never_close`` (a lesson's bug): the peer closed, and the server forgets
        the socket without calling close(). The kernel keeps it in CLOSE_WAIT (the
        peer's end in FIN_WAIT_2) until the server stops and releases it."""
        self._drop_work()
        self._report("error", what="never_closed",
                     detail="the peer closed; close() is never called: CLOSE_WAIT stays")
        self.server._forget(self)  # out of the loop (epoll_ctl DEL), but the fd stays open
        self.server.leaked.append(self)
