"""Which port the window's engine gets: TIME_WAIT sockets block it exactly when they
would block the engine (SO_REUSEADDR off), and the window can say why it moved.
Real sockets on 127.0.0.1; the engine host is Qt-free."""
from __future__ import annotations

import socket
import time

from visualizer.host import free_port, why_moved


def _server_time_wait() -> int:
    """A port whose only socket is a server-side TIME_WAIT (the server closed first)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    served, _ = listener.accept()
    served.close()  # the server's FIN first: its end goes to TIME_WAIT
    client.settimeout(5)
    assert client.recv(1) == b""
    client.close()
    listener.close()
    time.sleep(0.05)  # the last ACK crosses loopback
    return port


def test_time_wait_moves_the_engine_only_without_so_reuseaddr() -> None:
    port = _server_time_wait()
    assert free_port(port, tries=1, reuseaddr=True) == port  # SO_REUSEADDR binds past it
    moved = free_port(port, tries=20, reuseaddr=False)
    assert moved not in (0, port)
    assert why_moved(moved, start=port) == "time_wait"
    assert why_moved(port, start=port) == ""


def test_a_listening_program_is_named_as_such() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        moved = free_port(port, tries=20, reuseaddr=True)
        assert moved != port
        assert why_moved(moved, start=port) == "busy"
