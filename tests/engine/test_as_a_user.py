"""The server as an ordinary user runs it: SockScope installed (not editable) into a venv of
the system's python3, in a folder anyone may read, run as uid 65534 with no capability.

What such a user gets: packets derived from the calls (no capture rights), states from
those segments, checked by sock_diag polls (no tracepoint: that needs root).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


from engine.trace import read_trace

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
          "--inh-caps=-all", "--bounding-set=-all"]


def walk(events: list, conn: str, side: str) -> list[str]:
    return [e.data["state"] for e in events if e.conn == conn and e.kind == "tcp_state"
            and e.data.get("side") == side and e.data.get("source") == "inferred"]


def test_an_ordinary_user_sees_five_short_connections_walk_the_textbook(
        user_python: str, shared_dir: Path) -> None:
    trace = shared_dir / "user.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [*NOBODY, user_python, "-m", "engine", "serve", "--port", "0", "--policy", "close",
         "--load=--clients 5 --requests 1 --short --together", "--exit-after-load",
         "--trace", str(trace)],
        cwd="/", env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "/venv/lib/" in out  # the installed copy served, not this checkout
    assert "packets: derived" in out and "CAP_NET_RAW" in out
    assert "kernel states: from the derived segments" in out
    assert "kernel states: checked via sockdiag" in out
    assert "kernel states: not traced" in out
    events = sorted(read_trace(trace).events, key=lambda e: (e.t_ns, e.seq))
    conns = sorted({e.conn for e in events if e.kind == "accept"})
    assert len(conns) == 5
    for conn in conns:
        assert walk(events, conn, "server") == ["SYN_RECV", "ESTABLISHED", "FIN_WAIT_1",
                                                "FIN_WAIT_2", "TIME_WAIT"]
        assert walk(events, conn, "client") == ["SYN_SENT", "ESTABLISHED", "CLOSE_WAIT",
                                                "LAST_ACK", "CLOSED"]
    checks = [e for e in events if e.kind == "state_check" and e.conn in conns]
    assert checks and {e.data["source"] for e in checks} == {"observed"}
    assert all(e.data.get("verdict") == "confirms" for e in checks), \
        [e.data for e in checks if e.data.get("verdict") != "confirms"]
