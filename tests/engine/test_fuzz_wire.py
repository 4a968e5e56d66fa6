"""Random bytes over a real socket: an answer with a status line (or a plain
close), never a dead loop. Every mode, one server per mode for all examples."""
from __future__ import annotations

import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ALL_MODES, MODE_IDS, running_server

ALLOWED = {b"200", b"301", b"400", b"403", b"404", b"405", b"408", b"414", b"431", b"505"}
VALID = b"GET /robots.txt HTTP/1.1\r\nHost: fuzz\r\n\r\n"


def exchange(address: tuple, payload: bytes) -> bytes:
    with socket.create_connection(address[:2], timeout=3) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the server already refused and closed: fine
        out = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            out += data
        return out


@st.composite
def wire_bytes(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.binary(min_size=1, max_size=300))
    if choice == 1:  # a valid request with bytes flipped, cut or inserted
        data = bytearray(VALID)
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
        return bytes(data[:draw(st.integers(1, len(data)))])
    return VALID + draw(st.binary(min_size=1, max_size=100))  # trailing garbage


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_random_bytes_get_a_status_line_and_the_loop_survives(mode: str, trigger: str) -> None:
    with running_server(mode, trigger) as (server, sink):
        seen: list[bytes] = []

        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(payload=wire_bytes())
        def one(payload: bytes) -> None:
            answer = exchange(server.address, payload)
            if answer:
                assert answer.startswith(b"HTTP/1.1 "), answer[:80]
                assert answer[9:12] in ALLOWED, answer[:80]
                seen.append(answer[9:12])

        one()
        assert server._loop_error is None
        crashes = [e for e in sink.of_kind("error")
                   if e.data["what"] in ("loop_crashed", "thread_crashed", "internal")]
        assert not crashes, crashes[:3]
        assert exchange(server.address, VALID).startswith(b"HTTP/1.1 200 OK")
    assert b"400" in seen, "random bytes must have met at least one refusal"
