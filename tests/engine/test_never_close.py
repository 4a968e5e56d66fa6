"""``never_close`` (``serve --never-close``, the CLOSE_WAIT lesson): when a client
closes, the server forgets its socket without close(), and the kernel keeps the
server's end in CLOSE_WAIT (the client's in FIN_WAIT_2) until the server stops."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from engine.cli import build_parser
from engine.events import MemorySink, Probe
from engine.kernel.observer import KernelObserver
from tests.conftest import ALL_MODES, MODE_IDS, running_server, socket_close

REQUEST = b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n"
CLOSE_WAIT_HEX = "08"  # /proc/net/tcp's state number


def _states_from_proc(port: int) -> list[str] | None:
    """The states (hex) of the server's ends on ``port`` from /proc/net/tcp; None if unreadable."""
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None
    out = []
    for line in lines:
        fields = line.split()
        local, state = fields[1], fields[3]
        if int(local.rsplit(":", 1)[1], 16) == port and state != "0A":  # not the listener
            out.append(state)
    return out


def _states_from_ss(port: int) -> list[str] | None:
    if shutil.which("ss") is None:
        return None
    done = subprocess.run(["ss", "-Htan", f"sport = :{port}"], capture_output=True, text=True,
                          timeout=10, check=False)
    if done.returncode != 0:
        return None
    names = {"CLOSE-WAIT": CLOSE_WAIT_HEX}
    return [names.get(line.split()[0], line.split()[0]) for line in done.stdout.splitlines()
            if line.split() and line.split()[0] != "LISTEN"]


def _one_request_then_close(address: tuple) -> socket.socket:
    client = socket.create_connection(address[:2], timeout=5)
    client.sendall(REQUEST)
    assert client.recv(65536).startswith(b"HTTP/1.1 200")
    client.close()  # the client closes first: its FIN, the server reads EOF
    return client


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_never_close_leaves_close_wait_observed(mode: str, trigger: str) -> None:
    ok, reason = KernelObserver.available()
    if not ok:
        pytest.skip(f"no kernel observer here ({reason}); the /proc test covers the rest")
    kernel = MemorySink()
    with running_server(mode, trigger, never_close=True) as (server, sink):
        port = server.address[1]
        kernel_probe = Probe("kernel")
        kernel_probe.add_sink(kernel)
        observer = KernelObserver(kernel_probe, port, interval=0.001).start()
        try:
            _one_request_then_close(server.address)

            def server_states(events):  # type: ignore[no-untyped-def]
                return [e.data["state"] for e in events
                        if e.kind == "tcp_state" and e.data["side"] == "server"]

            assert kernel.wait_for(lambda ev: "CLOSE_WAIT" in server_states(ev), 5), \
                list(kernel.events)
            assert sink.wait_for(lambda ev: any(e.kind == "error" and
                                                e.data.get("what") == "never_closed"
                                                for e in ev), 5)
            time.sleep(0.3)  # it stays: nobody will ever call close()
            assert server_states(kernel.events)[-1] == "CLOSE_WAIT"
            # The client's end waits in FIN_WAIT_2 (for a FIN that never comes).
            assert kernel.wait_for(lambda ev: any(
                e.kind == "tcp_state" and e.data["side"] == "client"
                and e.data["state"] == "FIN_WAIT_2" for e in ev), 5), list(kernel.events)
            assert not [e for e in sink.events if socket_close(e)]  # no close() happened
            if mode != "processes":  # (there, the child holds it, and lives on)
                assert len(server.leaked) == 1 and not server.conns
            server.stop()
            # Stopping releases it: a close event, and the kernel's CLOSE_WAIT ends.
            closes = [e for e in sink.events if socket_close(e)]
            assert [e.data["reason"] for e in closes] == ["server stopping (never closed until now)"]
            assert not server.leaked
            assert kernel.wait_for(lambda ev: server_states(ev)[-1] != "CLOSE_WAIT", 5)
        finally:
            observer.stop()


@pytest.mark.parametrize("mode", ["epoll", "threaded"])
def test_never_close_seen_in_proc_or_ss(mode: str) -> None:
    """The same without the observer: what /proc/net/tcp (or ss) lists."""
    with running_server(mode, never_close=True) as (server, _):
        port = server.address[1]
        reader = _states_from_proc if _states_from_proc(port) is not None else _states_from_ss
        if reader(port) is None:
            pytest.skip("neither /proc/net/tcp nor ss is available here")
        _one_request_then_close(server.address)
        deadline = time.monotonic() + 5
        while CLOSE_WAIT_HEX not in (reader(port) or []) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reader(port) == [CLOSE_WAIT_HEX]
        time.sleep(0.2)
        assert reader(port) == [CLOSE_WAIT_HEX]  # still there
        server.stop()
        assert CLOSE_WAIT_HEX not in (reader(port) or [])


def test_never_close_half_close_still_answers() -> None:
    """A half-closing client still gets its answer; then the socket is leaked, not closed."""
    with running_server("epoll", never_close=True) as (server, sink):
        client = socket.create_connection(server.address[:2], timeout=5)
        client.sendall(REQUEST)
        client.shutdown(socket.SHUT_WR)
        data = client.recv(65536)
        assert data.startswith(b"HTTP/1.1 200")
        assert sink.wait_for(lambda ev: any(e.data.get("what") == "never_closed" for e in ev), 5)
        client.settimeout(0.2)
        with pytest.raises(TimeoutError):  # no FIN from the server: no EOF
            client.recv(100)
        client.close()


def test_cli_never_close_option() -> None:
    args = build_parser().parse_args(["serve", "--never-close"])
    assert args.never_close is True
    assert build_parser().parse_args(["serve"]).never_close is False


def test_off_by_default_closes() -> None:
    with running_server("epoll") as (server, sink):
        _one_request_then_close(server.address)
        assert sink.wait_for(lambda ev: any(socket_close(e) for e in ev), 5)
        assert not server.leaked
