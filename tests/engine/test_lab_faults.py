"""Each lab fault really drops its segment: the kernel that sent it sends it again.

The capture marks the dropped segment by its own reckoning (``FaultMarks``), whether or
not nftables dropped it, so the mark proves nothing; the retransmission does: a segment
that got through is never sent again. And ``--exit-after-load`` waits for it: a client's
FIN lost at the very end is resent about 200 ms later, and the run records it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.lab import faults_available, lab_available, wait_until_closed
from engine.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]

lab_ok, lab_why = lab_available()
nft_ok, nft_why = faults_available()
needs_faults = [pytest.mark.skipif(not lab_ok, reason=f"the lab is unavailable here: {lab_why}"),
                pytest.mark.skipif(not nft_ok, reason=nft_why)]

# fault -> (policy, load): the server closes first where its own FIN is dropped; the
# client sends its FIN last (keep-alive, the load's end) where the client's is.
RUNS = {
    "drop-syn": ("keep-alive", "--requests 1 --short"),
    "drop-synack": ("keep-alive", "--requests 1 --short"),
    "drop-fin": ("keep-alive", "--requests 1"),
    "drop-server-fin": ("close", "--requests 1"),
}


class Run:
    def __init__(self, out: str, events: list, seconds: float) -> None:  # type: ignore[type-arg]
        self.out, self.events, self.seconds = out, events, seconds
        self.packets = [e for e in events if e.kind == "packet"]
        (self.conn,) = {e.conn for e in events if e.kind == "accept"}
        self.port = int(self.conn.rsplit(":", 1)[1])

    def sent(self, to_server: bool, flags: str) -> list:  # type: ignore[type-arg]
        """The captured segments with these flags, sent to (or by) the server, in order."""
        return [e for e in self.packets if e.conn == self.conn and e.data["flags"] == flags
                and (e.data["dport"] == self.port) == to_server]

    def server_close(self):  # type: ignore[no-untyped-def]
        (close,) = [e for e in self.events if e.kind == "close" and e.src == "server"]
        return close


def serve_in_lab(folder: Path, fault: str) -> Run:
    policy, load = RUNS[fault]
    trace = folder / f"{fault}.jsonl"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--lab", "--port", "0", "--fault", fault,
         "--policy", policy, f"--load={load}", "--exit-after-load", "--trace", str(trace)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, out + err
    assert "requests: 1 ok" in out, out
    return Run(out, read_trace(trace).events, seconds)


@pytest.fixture(scope="module")
def lab_runs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One lab run per fault, made when first asked for and shared by the tests."""
    folder = tmp_path_factory.mktemp("lab-faults")
    runs: dict[str, Run] = {}

    def get(fault: str) -> Run:
        if fault not in runs:
            runs[fault] = serve_in_lab(folder, fault)
        return runs[fault]
    return get


def resent(first: list, what: str) -> tuple:  # type: ignore[type-arg]
    """The dropped segment and the same one sent again (same sequence number)."""
    assert len(first) >= 2, f"the {what} was sent once only: the fault dropped nothing"
    dropped, again = first[0], first[1]
    assert again.data["tcp_seq"] == dropped.data["tcp_seq"], "the same segment, sent again"
    assert not again.data.get("dropped"), "the second one got through"
    return dropped, again


@pytest.mark.parametrize("fault", [pytest.param(f, marks=needs_faults) for f in RUNS])
def test_the_fault_s_message_is_printed(lab_runs, fault: str) -> None:  # type: ignore[no-untyped-def]
    from engine.lab import FAULTS
    assert f"fault: {FAULTS[fault][1]}" in lab_runs(fault).out


@pytest.mark.parametrize("fault", [pytest.param("drop-synack", marks=needs_faults)])
def test_dropped_synack_is_resent_by_the_server_a_second_later(lab_runs, fault: str) -> None:  # type: ignore[no-untyped-def]
    run = lab_runs(fault)
    dropped, again = resent(run.sent(False, "SYN|ACK"), "server's SYN|ACK")
    assert dropped.data.get("dropped") == "drop-synack"
    gap = (again.t_ns - dropped.t_ns) / 1e9
    assert 0.8 <= gap <= 2.5, f"the SYN|ACK came again after {gap:.2f} s"
    # The client got nothing until then: its final ACK follows the second SYN|ACK.
    acks = run.sent(True, "ACK")
    assert acks and acks[0].t_ns > again.t_ns
    # The server's own kernel counted it: TCP_INFO at close says it retransmitted.
    assert run.server_close().data["total_retrans"] >= 1


@pytest.mark.parametrize("fault", [pytest.param("drop-syn", marks=needs_faults)])
def test_a_dropped_syn_is_the_client_s_retransmission_not_the_server_s(lab_runs, fault: str) -> None:  # type: ignore[no-untyped-def]
    run = lab_runs(fault)
    resent(run.sent(True, "SYN"), "client's SYN")
    assert len(run.sent(False, "SYN|ACK")) == 1
    close = run.server_close().data
    assert close["total_retrans"] == 0, close


@pytest.mark.parametrize("fault", [pytest.param("drop-fin", marks=needs_faults)])
def test_dropped_client_fin_is_resent_and_exit_after_load_waits_for_it(lab_runs, fault: str) -> None:  # type: ignore[no-untyped-def]
    """The load's last act is its FIN: dropped, then resent after the retransmission
    timeout (at least 200 ms). The run records the second FIN, and the server reads
    end-of-file only then (it was not stopped first)."""
    run = lab_runs(fault)
    dropped, again = resent(run.sent(True, "FIN|ACK"), "client's FIN")
    assert dropped.data.get("dropped") == "drop-fin"
    gap = (again.t_ns - dropped.t_ns) / 1e9
    assert 0.15 <= gap <= 3.0, f"the FIN came again after {gap:.2f} s"
    close = run.server_close()
    assert close.data["reason"] == "peer closed", close.data
    assert close.t_ns > again.t_ns, "end-of-file is read only once the FIN got through"
    # The server's FIN followed, and was acknowledged: the connection finished closing.
    server_fin = run.sent(False, "FIN|ACK")
    assert server_fin and server_fin[0].t_ns > again.t_ns
    assert run.seconds < 30


@pytest.mark.parametrize("fault", [pytest.param("drop-server-fin", marks=needs_faults)])
def test_dropped_server_fin_is_resent_by_the_server(lab_runs, fault: str) -> None:  # type: ignore[no-untyped-def]
    run = lab_runs(fault)
    dropped, again = resent(run.sent(False, "FIN|ACK"), "server's FIN")
    assert dropped.data.get("dropped") == "drop-server-fin"
    gap = (again.t_ns - dropped.t_ns) / 1e9
    assert 0.15 <= gap <= 3.0, f"the FIN came again after {gap:.2f} s"
    assert run.server_close().t_ns < dropped.t_ns, "the server closed first (policy close)"


def test_wait_until_closed_waits_for_open_connections_and_is_bounded() -> None:
    """What --exit-after-load waits for: the port's connections finished closing (only
    the listener and TIME_WAIT left). Bounded: an open connection costs the timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = listener.accept()
    try:
        started = time.monotonic()
        assert wait_until_closed(port, 0.3) is False  # ESTABLISHED both ends
        took = time.monotonic() - started
        assert 0.3 <= took < 2.0, took
        client.close()  # FIN_WAIT_2 and CLOSE_WAIT: still closing
        assert wait_until_closed(port, 0.1) is False
        accepted.close()  # LAST_ACK, then CLOSED; the client's end in TIME_WAIT
        started = time.monotonic()
        assert wait_until_closed(port, 5.0) is True
        assert time.monotonic() - started < 2.0
    finally:
        client.close()
        accepted.close()
        listener.close()
