"""The lab: real packets without root, and one segment dropped on purpose."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.lab import faults_available, lab_available
from engine.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]

ok, why = lab_available()
pytestmark = pytest.mark.skipif(not ok, reason=f"the lab is unavailable here: {why}")


def unprivileged_prefix() -> list[str]:
    """A command prefix that runs as user nobody, without any capability that
    matters for networking. Where this Python lives in root's home (mode 700),
    the only capability kept is reading files (CAP_DAC_READ_SEARCH), so that
    the interpreter can start; it grants nothing on sockets."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        return []  # already unprivileged (or no way to drop): run as we are
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import httptools, orjson, dpkt"],
                           capture_output=True, timeout=30, cwd="/")
    if probe.returncode != 0:
        prefix += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return prefix


def serve_in_lab(folder: Path, *extra: str, prefix: list[str] | None = None,
                 load: str = "--requests 1 --short") -> tuple[str, list]:
    trace = folder / "lab.jsonl"
    proc = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "engine", "serve", "--lab", "--port", "0",
         f"--load={load}", "--exit-after-load", "--trace", str(trace), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, read_trace(trace).events


def test_lab_captures_real_packets_without_root(shared_dir: Path) -> None:
    prefix = unprivileged_prefix()
    if prefix:  # prove the point: this user may not capture outside the lab
        check = subprocess.run([*prefix, sys.executable, "-c",
                                "from engine.capture.live import can_capture; print(can_capture())"],
                               cwd=ROOT, capture_output=True, text=True, timeout=30,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert "False" in check.stdout, check.stdout + check.stderr
    out, events = serve_in_lab(shared_dir, prefix=prefix)
    assert "packets: captured on lo" in out and "requests: 1 ok" in out
    packets = [e for e in events if e.kind == "packet"]
    assert packets and all(e.data["origin"] == "captured" for e in packets)
    flags = [e.data["flags"] for e in packets]
    assert flags[:3] == ["SYN", "SYN|ACK", "ACK"]
    syn, synack, ack = packets[:3]
    assert synack.data["ack"] == syn.data["tcp_seq"] + 1
    assert ack.data["ack"] == synack.data["tcp_seq"] + 1
    accepts = {e.conn for e in events if e.kind == "accept"}
    assert {e.conn for e in packets} == accepts


@pytest.mark.skipif(not faults_available()[0], reason=faults_available()[1])
def test_dropped_syn_is_retransmitted_after_about_a_second(shared_dir: Path) -> None:
    out, events = serve_in_lab(shared_dir, "--fault", "drop-syn")
    assert "fault: the client's SYN is lost" in out
    syns = [e for e in events if e.kind == "packet" and e.data["flags"] == "SYN"]
    assert len(syns) == 2, [e.data for e in syns]
    assert syns[0].data["tcp_seq"] == syns[1].data["tcp_seq"], "the same SYN, sent again"
    gap = (syns[1].t_ns - syns[0].t_ns) / 1e9
    assert 0.8 <= gap <= 1.6, f"retransmitted after {gap:.2f} s"
    assert "requests: 1 ok" in out


@pytest.mark.skipif(not faults_available()[0], reason=faults_available()[1])
def test_dropped_final_ack_leaves_the_server_in_syn_recv(shared_dir: Path) -> None:
    out, events = serve_in_lab(shared_dir, "--fault", "drop-ack", "--kernel-interval", "0.002",
                               load="--requests 1 --wait-after-connect 300")
    states = [(e.data["side"], e.data["state"]) for e in events if e.kind == "tcp_state"]
    acks = [e for e in events if e.kind == "packet" and e.data["flags"] == "ACK"]
    assert acks, "the client's ACK was captured (the lab drops it after capture)"
    assert ("server", "SYN_RECV") in states, states


# Each fault's one dropped segment: (sent to the server?, its flags).
DROPPED = {"drop-syn": (True, "SYN"), "drop-synack": (False, "SYN|ACK"),
           "drop-ack": (True, "ACK"), "drop-fin": (True, "FIN|ACK"),
           "drop-server-fin": (False, "FIN|ACK")}


@pytest.mark.skipif(not faults_available()[0], reason=faults_available()[1])
@pytest.mark.parametrize("fault", list(DROPPED))
def test_the_dropped_segment_is_marked_and_changes_its_sender_only(shared_dir: Path,
                                                                   fault: str) -> None:
    """The capture sees a segment before the lab's rule drops it: it is marked, and the
    states follow what each end really got, as the kernel's own polls confirm."""
    out, events = serve_in_lab(shared_dir, "--fault", fault, "--kernel-interval", "0.002",
                               "--policy", "close" if fault == "drop-server-fin" else "keep-alive",
                               load="--requests 1" + (" --short" if fault != "drop-fin" else ""))
    assert "requests: 1 ok" in out, out
    packets = [e for e in events if e.kind == "packet"]
    marked = [e for e in packets if e.data.get("dropped")]
    assert len(marked) == 1 and marked[0].data["dropped"] == fault, [e.data for e in marked]
    to_server, flags = DROPPED[fault]
    port = int(marked[0].conn.rsplit(":", 1)[1])
    assert (marked[0].data["dport"] == port) == to_server
    assert marked[0].data["flags"] == flags
    # The same segment again, resent by its kernel, is not marked: it got through.
    again = [e for e in packets if e.t_ns > marked[0].t_ns and e.data["flags"] == flags
             and e.data["tcp_seq"] == marked[0].data["tcp_seq"] and e.conn == marked[0].conn]
    # (A lost pure ACK is not resent: the data that follows does its work. The client's
    # lost FIN is resent after about 200 ms: test_lab_faults.py checks that one.)
    if fault not in ("drop-ack", "drop-fin"):
        assert again and not again[0].data.get("dropped")
    checks = [e for e in events if e.kind == "state_check"]
    assert checks and all(e.data.get("verdict") == "confirms" for e in checks), \
        [e.data for e in checks if e.data.get("verdict") != "confirms"]
    if fault == "drop-synack":  # the client waited in SYN_SENT until the SYN|ACK came again
        est = next(e for e in events if e.kind == "tcp_state" and e.data["side"] == "client"
                   and e.data["state"] == "ESTABLISHED")
        assert est.t_ns >= again[0].t_ns


def test_fault_needs_the_lab() -> None:
    proc = subprocess.run([sys.executable, "-m", "engine", "serve", "--fault", "drop-syn"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--fault needs --lab" in proc.stderr
