"""The server's ``close`` event carries the kernel's TCP_INFO counters (README: segments
in/out, retransmissions, RTT; ``TCP_INFO_ON_CLOSE``), with the values a known exchange
must give: the request's bytes received, the answer's bytes acknowledged, nothing
retransmitted on a clean loopback. (A lost segment's retransmission is counted too:
tests/engine/test_lab_faults.py, drop-synack.)"""
from __future__ import annotations

import socket
import sys

import pytest

from tests.conftest import ALL_MODES, MODE_IDS, read_to_eof, running_server, socket_closes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="TCP_INFO is read on Linux only (elsewhere: none)")

CLOSE = b"GET /robots.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
KEEP = b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n"
COUNTERS = {"segs_in", "segs_out", "total_retrans", "rtt_us", "bytes_acked", "bytes_received"}


def read_answer(sock: socket.socket) -> bytes:
    """One keep-alive answer, by its Content-Length (the server does not close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed before answering"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return head + b"\r\n\r\n" + body


def the_close(sink) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert sink.wait_for(lambda evs: any(e.kind == "close" and e.data.get("last", True)
                                         for e in evs), 5), "no close event"
    (close,) = socket_closes(sink)
    missing = COUNTERS - set(close.data)
    assert not missing, f"the close event lacks TCP_INFO counters {missing}: {close.data}"
    return close.data  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_server_closes_first_counts_the_request_and_no_retransmission(mode: str,
                                                                     trigger: str) -> None:
    """Connection: close: the server closes after its answer, before any FIN of the
    client's, so exactly the request's bytes were received."""
    with running_server(mode, trigger) as (server, sink):
        with socket.create_connection(server.address[:2], timeout=5) as sock:
            sock.sendall(CLOSE)
            answer = read_to_eof(sock)
            info = the_close(sink)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert info["reason"] == "keep-alive off"
    assert info["total_retrans"] == 0
    assert info["bytes_received"] == len(CLOSE)
    assert 0 <= info["bytes_acked"] <= len(answer)  # its ACK may still be on its way
    assert info["segs_in"] >= 2  # the handshake's ACK and the request, at least
    assert info["segs_out"] >= 1  # the answer
    assert 0 < info["rtt_us"] < 1_000_000  # a loopback round trip: microseconds


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_client_closes_first_every_answer_byte_was_acknowledged(mode: str,
                                                               trigger: str) -> None:
    """Keep-alive: the client reads the whole answer and then sends its FIN, which
    acknowledges every byte of it: bytes_acked is exactly the answer's length."""
    with running_server(mode, trigger) as (server, sink):
        with socket.create_connection(server.address[:2], timeout=5) as sock:
            sock.sendall(KEEP)
            answer = read_answer(sock)
            sock.shutdown(socket.SHUT_WR)
            assert read_to_eof(sock) == b""
            info = the_close(sink)
    assert info["reason"] == "peer closed"
    assert info["total_retrans"] == 0
    assert info["bytes_acked"] == len(answer)
    # The kernel advances its count by the FIN's sequence number too.
    assert info["bytes_received"] in (len(KEEP), len(KEEP) + 1)
    assert info["segs_in"] >= 3  # ACK, request, FIN
    assert info["segs_out"] >= 1
    assert 0 < info["rtt_us"] < 1_000_000
