"""Key moments (model/moments.py) on real recordings: said where they happen, never made
up from what came later."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from visualizer.model import open_trace
from visualizer.model.moments import moment_at

ROOT = Path(__file__).resolve().parents[2]


def record(tmp_path: Path, *options: str, load: str) -> object:
    path = tmp_path / "trace.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", *options,
                    f"--load={load}", "--exit-after-load", "--trace", str(path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    timeline, _, problems = open_trace(path)
    assert not problems
    return timeline.log


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll is Linux's")
@pytest.mark.parametrize("drain", [True, False], ids=["draining", "one-recv-per-report"])
def test_edge_triggered_requests_read_whole_leave_nothing_to_say(tmp_path: Path,
                                                                drain: bool) -> None:
    """Edge-triggered, one request at a time, each read whole by its recv: nothing is
    ever left unread, so no cursor gets the banner, whether the server drains to EAGAIN
    or reads once per report (the next request, sent later, is a new edge)."""
    log = record(tmp_path, "--mode", "epoll", "--trigger", "edge",
                 *([] if drain else ["--no-drain"]),
                 load="--clients 1 --requests 3 --think 80")
    assert sum(1 for e in log if e.kind == "response") == 3
    said = [i for i in range(len(log)) if (m := moment_at(log, i)) is not None
            and m.kind == "unread"]
    assert said == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll is Linux's")
def test_bytes_left_by_one_recv_per_report_are_said_until_something_new_arrives(
        tmp_path: Path) -> None:
    """Twelve pipelined requests in one write, one recv(1024) per report: the bytes past
    1024 are left; the banner says how many from that recv, and not once the client's
    FIN (something new) has arrived."""
    log = record(tmp_path, "--mode", "epoll", "--trigger", "edge", "--no-drain",
                 load="--clients 1 --requests 24 --pipeline 12 --think 200 --timeout 1")
    first = next(i for i in range(len(log)) if log[i].kind == "recv" and log[i].src == "server")
    sent = log[next(i for i in range(len(log)) if log[i].kind == "send" and
                    log[i].src == "client")].data["bytes"]
    m = moment_at(log, first)
    if m is None:  # the client's send stamped after the server's recv, and no capture
        assert not any(e.kind == "packet" and e.data.get("origin") == "captured" for e in log)
        pytest.skip("the recording cannot show what arrived before the recv")
    assert m.kind == "unread" and m.numbers["bytes"] == sent - log[first].data["bytes"] > 0
    closed = next(i for i in range(first, len(log)) if log[i].src == "client"
                  and log[i].kind == "close")
    assert moment_at(log, closed) is None



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll is Linux's")
def test_a_send_stamped_after_the_recv_that_took_its_bytes_is_no_edge(tmp_path: Path) -> None:
    """A CI rehearsal under load: the client's send call returned (and was stamped) after
    the server's recv had taken its bytes, so the send sat between the recv and the
    lesson's step, and the banner vanished there as if new bytes had come. A send whose
    bytes were already seen on the wire is nothing new: the banner holds past it."""
    import json
    record(tmp_path, "--mode", "epoll", "--trigger", "edge", "--no-drain",
           load="--clients 1 --requests 24 --pipeline 12 --think 200 --timeout 1")
    rows = [json.loads(line) for line in
            (tmp_path / "trace.jsonl").read_text().splitlines()]
    if not any(r.get("origin") == "captured" for r in rows):
        pytest.skip("needs captured packets (root): without them a late send is unknown")
    recv = next(r for r in rows if r.get("kind") == "recv" and r.get("src") == "server")
    send = next(r for r in rows if r.get("kind") == "send" and r.get("src") == "client")
    send["t_ns"] = recv["t_ns"] + 1_000  # returned a microsecond after the recv
    out = tmp_path / "late.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    timeline, _, problems = open_trace(out)
    assert not problems
    log = timeline.log
    at = next(i for i in range(len(log)) if log[i].kind == "recv" and log[i].src == "server")
    late = next(i for i in range(len(log)) if log[i].kind == "send" and log[i].src == "client")
    assert late > at
    for i in (at, late, late + 1):
        m = moment_at(log, i)
        assert m is not None and m.kind == "unread", i
        assert m.numbers["bytes"] == send["bytes"] - recv["bytes"] > 0
