"""The gate and the kernel together: hold the live server, watch the kernel go on."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.capture.live import LoopbackCapture, can_capture
from engine.events import MemorySink, Probe
from engine.kernel.observer import KernelObserver
from tests.conftest import running_server

ROOT = Path(__file__).resolve().parents[2]

HALF_CLOSE_SCRIPT = r"""
import encodings.idna, json, os, socket, sys, threading, time
sys.path.insert(0, sys.argv[1])
from engine import MemorySink, Probe, ServerConfig, create_server
from engine.capture.derived import PacketDeriver
from engine.kernel.observer import KernelObserver

if os.geteuid() == 0:  # everything is imported: now give root up for good
    os.setgroups([]); os.setgid(65534); os.setuid(65534)

sink = MemorySink()
server_probe, kernel_probe = Probe("server"), Probe("kernel")
deriver = PacketDeriver(Probe("engine"))
deriver.probe.add_sink(sink)
for p in (server_probe, kernel_probe):
    p.add_sink(sink)
    p.add_sink(deriver)
server = create_server(ServerConfig(mode=sys.argv[2], port=0), server_probe).start()
observer = KernelObserver(kernel_probe, server.address[1], interval=0.002).start()
deriver.start()
client = socket.create_connection(server.address[:2], timeout=5)
client.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n")
client.recv(65536)
gate = server.gate
gate.enable()
client.shutdown(socket.SHUT_WR)          # the client's FIN
deadline = time.monotonic() + 5          # let the server run up to its close()
while time.monotonic() < deadline:
    if gate.wait_until_held(1, 0.05):
        if gate.held[0].action == "close":
            break
        released = gate.released
        gate.step()
        while gate.released == released and time.monotonic() < deadline:
            time.sleep(0.0005)
held = [h.action for h in gate.held]
time.sleep(0.3)                          # held: the kernel goes on without us
gate.disable()                           # now the server closes
eof = client.recv(100)
time.sleep(0.3)
observer.stop(); deriver.stop(); server.stop()
client.close()
out = {"uid": os.geteuid(), "held": held, "eof": eof.decode(),
       "events": [[e.src, e.kind, e.t_ns, e.data.get("side"), e.data.get("state"),
                   e.data.get("sender"), e.data.get("flags")] for e in sink.events
                  if e.kind in ("tcp_state", "packet", "close")]}
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", ["epoll", "threaded"])
def test_server_held_before_close_shows_close_wait_unprivileged(mode: str) -> None:
    """Half-close: client FIN_WAIT_2 and server CLOSE_WAIT while the gate holds the
    server before close(); then LAST_ACK and TIME_WAIT. Run as an unprivileged
    user; the derived packets of the same run tell the same story."""
    proc = subprocess.run([sys.executable, "-c", HALF_CLOSE_SCRIPT, str(ROOT), mode],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["uid"] != 0
    assert out["held"] == ["close"] and out["eof"] == ""
    events = out["events"]
    states = [(side, state) for src, kind, t, side, state, _, _ in events if kind == "tcp_state"]
    assert ("client", "FIN_WAIT_2") in states and ("server", "CLOSE_WAIT") in states
    close_t = next(t for src, kind, t, *_ in events if kind == "close" and src == "server")
    close_wait_t = next(t for src, kind, t, side, state, *_ in events
                        if kind == "tcp_state" and (side, state) == ("server", "CLOSE_WAIT"))
    assert close_wait_t < close_t, "CLOSE_WAIT was observed while the server was held"
    after = states[states.index(("server", "CLOSE_WAIT")):]
    assert ("client", "TIME_WAIT") in after
    assert any(s == ("server", "LAST_ACK") or s == ("server", "CLOSED") for s in after)
    packets = [(sender, flags) for src, kind, t, side, state, sender, flags in events
               if kind == "packet"]
    # Held longer than the delayed-ACK timer: four segments, and in this order.
    assert packets[-4:] == [("client", "FIN|ACK"), ("server", "ACK"), ("server", "FIN|ACK"),
                            ("client", "ACK")]


capture_ok, capture_why = can_capture()


@pytest.mark.skipif(not capture_ok and not os.environ.get("CI"),
                    reason=f"capturing needs root or CAP_NET_RAW: {capture_why}")
def test_server_held_before_accept_overflows_the_backlog() -> None:
    """The server never gets to accept(): the kernel completes handshakes into the
    accept queue until the backlog is full, then drops SYNs, which the clients
    retransmit a second later."""
    packets, queue = MemorySink(), MemorySink()
    kernel_probe, capture_probe = Probe("kernel"), Probe("capture")
    kernel_probe.add_sink(queue)
    capture_probe.add_sink(packets)
    clients: list[socket.socket] = []
    with running_server("epoll", backlog=2) as (server, sink):
        port = server.address[1]
        server.gate.enable()
        with LoopbackCapture(capture_probe, port), \
                KernelObserver(kernel_probe, port, interval=0.002):
            for _ in range(6):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(server.address[:2])
                clients.append(c)
            time.sleep(1.6)  # the first SYN retransmission comes after about 1 s
            server.gate.disable()
            time.sleep(0.3)
    for c in clients:
        c.close()
    lengths = [e.data["length"] for e in queue.events if e.kind == "accept_queue"]
    assert lengths and max(lengths) >= 2, lengths
    assert all(e.data["backlog"] == 2 for e in queue.events if e.kind == "accept_queue")
    syns: dict[tuple[str, int], list[int]] = {}
    for e in packets.events:
        if e.data["flags"] == "SYN":
            syns.setdefault((e.conn, e.data["tcp_seq"]), []).append(e.t_ns)
    assert len(syns) == 6
    resent = [times for times in syns.values() if len(times) > 1]
    assert resent, "clients beyond the backlog must have retransmitted their SYN"
    gap = (resent[0][1] - resent[0][0]) / 1e9
    assert 0.8 <= gap <= 1.6, gap
