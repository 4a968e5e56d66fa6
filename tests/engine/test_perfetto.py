"""`sockscope export TRACE --perfetto OUT.json`: Chrome trace-event JSON (ui.perfetto.dev,
chrome://tracing) from a real recording, run as real processes, checked against the trace
it came from event by event."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.perfetto import CLIENTS_PID, export_perfetto
from engine.trace import make_header, read_trace
from tests.conftest import port_with_a_time_wait

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any], str]:
    """A keep-alive run through the real engine (2 clients, 6 requests each, connected
    together: both are open at once, however loaded the machine), exported through the
    real CLI: (trace path, the trace as read, the JSON, the CLI's output)."""
    where = tmp_path_factory.mktemp("perfetto")
    trace, out = where / "trace.jsonl", where / "trace.json"
    served = subprocess.run([*CLI, "serve", "--port", "0", "--policy", "keep-alive",
                             "--load=--clients 2 --requests 6 --together", "--exit-after-load",
                             "--trace", str(trace)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert served.returncode == 0 and "requests: 12 ok" in served.stdout, served.stdout
    exported = run("export", str(trace), "--perfetto", str(out))
    assert exported.returncode == 0, exported.stderr
    return trace, read_trace(trace), json.loads(out.read_text()), exported.stdout


def opened_conns(trace: Any) -> set[str]:
    """The run's own connections: those its clients and server opened. (Not a socket of
    an earlier test's server on the same port, still in TIME_WAIT, that the kernel
    observer found at its start: the export names it apart, "before the trace".)"""
    return {e.conn for e in trace.events if e.kind in ("accept", "connect")}


def older_conns(trace: Any) -> set[str]:
    return {e.conn for e in trace.events if e.conn is not None} - opened_conns(trace)


def t0(doc: dict[str, Any]) -> int:
    return int(doc["otherData"]["t0_ns"])


def us(doc: dict[str, Any], t_ns: int) -> float:
    return (t_ns - t0(doc)) / 1000


def test_the_file_is_trace_event_json_with_every_track_named(recorded) -> None:  # type: ignore[no-untyped-def]
    trace_path, trace, doc, said = recorded
    events = doc["traceEvents"]
    assert isinstance(events, list) and doc["displayTimeUnit"] == "ms"
    assert len(opened_conns(trace)) == 2
    n = len(older_conns(trace))
    also = f", and {n} socket{'' if n == 1 else 's'} already on the port when the " \
        f"recording began" if n else ""
    assert said.strip() == f"wrote {len(events)} trace events (2 connections{also}) to " \
                           f"{trace_path.with_suffix('.json')}"
    for e in events:
        assert {"ph", "pid"} <= e.keys() and isinstance(e["pid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], float | int) and "tid" in e
    processes = {e["pid"]: e["args"]["name"] for e in events
                 if e["ph"] == "M" and e["name"] == "process_name"}
    server = trace.header["pid"]
    assert processes[server].startswith("sockscope server") and "epoll" in processes[server]
    assert processes[CLIENTS_PID] == "clients"
    threads = {(e["pid"], e["tid"]) for e in events
               if e["ph"] == "M" and e["name"] == "thread_name" and e["args"]["name"]}
    used = {(e["pid"], e["tid"]) for e in events if e["ph"] in "Xi" and e.get("s", "t") == "t"}
    assert used <= threads and used  # every track it draws on has a name
    assert {p for p, _ in used} <= processes.keys()
    # The server's own threads are its pid's; the clients' threads are the clients'.
    assert {(server, e.thread) for e in trace.events if e.src == "server"} <= threads
    assert {(CLIENTS_PID, e.thread) for e in trace.events if e.src == "client"} <= threads


def test_each_syscall_is_one_slice_in_time_order_on_its_track(recorded) -> None:  # type: ignore[no-untyped-def]
    _, trace, doc, _ = recorded
    events = doc["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    server = trace.header["pid"]
    for kind in ("accept", "recv", "send", "close", "epoll_wait"):
        for src, pid in (("server", server), ("client", CLIENTS_PID)):
            want = [(us(doc, e.t_ns), e.thread) for e in trace.events
                    if e.kind == kind and e.src == src]
            got = [(s["ts"], s["tid"]) for s in slices
                   if s["name"] == kind and s["cat"] == "syscall" and s["pid"] == pid]
            assert got == want, (kind, src)
    assert any(s["name"] == "accept" for s in slices) and all(s["dur"] >= 0 for s in slices)
    # In time order (packets and the tracepoint's transitions are written late to the
    # trace, and not always in order): the connections and the names come last.
    timed = [e for e in events if e["ph"] not in "beM"]
    assert [e["ts"] for e in timed] == sorted(e["ts"] for e in timed)
    assert {e["ph"] for e in events[len(timed):]} <= set("beM")


def test_one_async_slice_per_connection_from_syn_to_closed(recorded) -> None:  # type: ignore[no-untyped-def]
    _, trace, doc, _ = recorded
    asyncs = [e for e in doc["traceEvents"] if e["ph"] in "be"]
    assert all(e["cat"] == "connection" for e in asyncs)
    # Process-scoped ids (id2.local), never a global id: Perfetto then draws each
    # connection's row under the server's process, not in a group of its own.
    assert all("id" not in e and set(e["id2"]) == {"local"} for e in asyncs)
    begins = {e["id2"]["local"]: e for e in asyncs if e["ph"] == "b"}
    ends = {e["id2"]["local"]: e for e in asyncs if e["ph"] == "e"}
    assert len(begins) == len(ends) == len([e for e in asyncs if e["ph"] == "b"])
    conns = opened_conns(trace)
    assert begins.keys() == ends.keys() and len(begins) == len(conns) + len(older_conns(trace))
    assert {b["name"] for b in begins.values()} == \
        conns | {f"{c} (before the trace)" for c in older_conns(trace)}
    for number, b in begins.items():
        if b["name"].endswith(" (before the trace)"):
            assert b["args"]["from"] == "before the trace"
            continue
        e = ends[number]
        assert e["name"] == b["name"] and e["pid"] == b["pid"] and b["ts"] < e["ts"]
        mine = [x for x in trace.events if x.conn == b["name"]]
        syns = [x.t_ns for x in mine if x.kind == "packet" and x.data["flags"] == "SYN"]
        opened = min(syns) if syns else min(x.t_ns for x in mine if x.kind in ("accept", "connect"))
        assert b["ts"] == us(doc, opened)
        closed = [x.t_ns for x in mine if x.kind == "tcp_state" and x.data["state"] == "CLOSED"]
        closes = [x.t_ns for x in mine if x.kind == "close"]
        assert e["ts"] == us(doc, max(closed) if closed else max(closes))


def counter(doc: dict[str, Any], name: str, key: str) -> list[Any]:
    return [e["args"][key] for e in doc["traceEvents"] if e["ph"] == "C" and e["name"] == name]


def test_counters_say_what_the_trace_says(recorded) -> None:  # type: ignore[no-untyped-def]
    _, trace, doc, _ = recorded
    opened = counter(doc, "open connections", "count")
    assert max(opened) == 2 and opened[-1] == 0  # 2 keep-alive clients, both closed at the end
    changes = sorted((e.t_ns, 1 if e.kind == "accept" else -1) for e in trace.events
                     if e.src == "server" and e.kind in ("accept", "close"))
    running = [sum(step for _, step in changes[:i + 1]) for i in range(len(changes))]
    assert [(e["ts"], e["args"]["count"]) for e in doc["traceEvents"]
            if e["ph"] == "C" and e["name"] == "open connections"] == \
        [(us(doc, t), n) for (t, _), n in zip(changes, running)]
    ready = counter(doc, "ready list", "length")
    assert ready == [len(e.data["ready"]) for e in trace.events if e.kind == "epoll_wait"]
    assert ready and max(ready) >= 1
    queue = counter(doc, "accept queue", "length")
    assert queue == [e.data["length"] for e in trace.events if e.kind == "accept_queue"]
    for e in doc["traceEvents"]:
        if e["ph"] == "C":
            assert e["pid"] == trace.header["pid"] and isinstance(e["ts"], float | int)


def test_flows_chain_syn_accept_requests_close_per_connection(recorded) -> None:  # type: ignore[no-untyped-def]
    _, trace, doc, _ = recorded
    events = doc["traceEvents"]
    numbers = {e["name"]: e["id2"]["local"] for e in events if e["ph"] == "b"
               and e["name"] in opened_conns(trace)}  # (a socket from before the trace: no flow)
    slices = {(e["pid"], e["tid"], e["ts"]) for e in events if e["ph"] == "X"}
    flows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["ph"] in "stf":
            assert e["cat"] == "flow" and e["name"] == "connection" and e["bp"] == "e"
            # Bound to a slice: one on the same track at the same time.
            assert (e["pid"], e["tid"], e["ts"]) in slices, e
            flows[e["id"]].append(e)
    assert flows.keys() == set(numbers.values())
    for conn, number in numbers.items():
        chain = sorted(flows[number], key=lambda e: e["ts"])
        mine = [x for x in trace.events if x.conn == conn]
        syn = [x for x in mine if x.kind == "packet" and x.data["flags"] == "SYN"][:1]
        steps = syn + [x for x in mine if x.src == "server" and x.kind in ("accept", "request")]
        steps += [x for x in mine if x.src == "server" and x.kind == "close"]
        assert [e["ts"] for e in chain] == sorted(us(doc, x.t_ns) for x in steps)
        assert [e["ph"] for e in chain] == ["s"] + ["t"] * (len(steps) - 2) + ["f"]
        assert chain[-1]["ts"] > chain[0]["ts"]


def test_every_tcp_state_change_is_one_instant(recorded) -> None:  # type: ignore[no-untyped-def]
    _, trace, doc, _ = recorded
    # In time order, as the export writes them (stable: the file's order at one time). The
    # file holds them as they were written: a state derived from a segment can be dated
    # a moment before one the server wrote just ahead of it.
    states = sorted((e for e in trace.events if e.kind == "tcp_state"),
                    key=lambda e: us(doc, e.t_ns))
    assert states
    instants = [e for e in doc["traceEvents"] if e["ph"] == "i" and e["cat"] == "tcp_state"]
    assert [(i["name"], i["ts"], i["args"]["conn"], i["args"]["side"]) for i in instants] == \
        [(f"{e.data['previous']} → {e.data['state']}" if e.data["previous"] else
          e.data["state"], us(doc, e.t_ns), e.conn, e.data["side"]) for e in states]
    assert all(i["s"] == "t" for i in instants)
    # serve records packets (captured, or derived from the syscalls): each of the two
    # connections' server ends goes from SYN_RECV to ESTABLISHED, once
    assert any(e.kind == "packet" for e in trace.events)
    assert sorted(i["args"]["conn"] for i in instants
                  if i["name"] == "SYN_RECV → ESTABLISHED" and i["args"]["side"] == "server") \
        == sorted(e.conn for e in trace.events if e.kind == "accept")
    assert len({e.conn for e in trace.events if e.kind == "accept"}) == 2


def test_a_corrupt_line_is_named_and_leaves_no_output(recorded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trace_path = recorded[0]
    lines = trace_path.read_bytes().splitlines(keepends=True)
    bad, out = tmp_path / "bad.jsonl", tmp_path / "out.json"
    bad.write_bytes(b"".join(lines[:6] + [b'{"seq": 7, "t_ns": "soon"\n'] + lines[7:]))
    proc = run("export", str(bad), "--perfetto", str(out))
    assert proc.returncode == 1 and "line 7" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    # Far in, past the first batch the reader takes: the part written is removed too.
    big = tmp_path / "big.jsonl"
    body = lines[1:-1]  # the events: no header, no end line
    with open(big, "wb") as f:
        f.write(lines[0])
        for _ in range(20000 // len(body) + 1):
            f.writelines(body)
        f.write(b"{broken\n")
        f.writelines(body)
    count = len(big.read_bytes().splitlines())
    proc = run("export", str(big), "--perfetto", str(out))
    where = count - len(body)
    assert proc.returncode == 1 and f"line {where}" in proc.stderr, proc.stderr
    assert not out.exists()


def test_an_unwritable_output_fails_clearly(recorded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trace_path = recorded[0]
    for out in (tmp_path / "no-such-dir" / "out.json", tmp_path):
        proc = run("export", str(trace_path), "--perfetto", str(out))
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"sockscope export: cannot write {out}: ")
    missing = tmp_path / "missing.jsonl"
    proc = run("export", str(missing), "--perfetto", str(tmp_path / "x.json"))
    assert proc.returncode == 1 and str(missing) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_pcapng_and_perfetto_are_one_or_the_other(recorded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trace_path = recorded[0]
    both = run("export", str(trace_path), "--pcapng", str(tmp_path / "a"),
               "--perfetto", str(tmp_path / "b"))
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    neither = run("export", str(trace_path))
    assert neither.returncode == 2 and "--pcapng" in neither.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    pcap = run("export", str(trace_path), "--pcapng", str(tmp_path / "a.pcapng"))
    packets = [e for e in recorded[1].events if e.kind == "packet"]
    if packets:  # as before: the segments, or the message that there are none
        assert pcap.returncode == 0 and pcap.stdout.startswith(f"wrote {len(packets)} ")
    else:
        assert pcap.returncode == 1 and "holds no derived packets" in pcap.stderr


def write_trace(path: Path, rows: list[dict[str, Any]], tail: bytes = b"") -> None:
    with open(path, "wb") as f:
        f.write(orjson.dumps(make_header(pid=100)) + b"\n")
        for seq, row in enumerate(rows, 1):
            f.write(orjson.dumps({"seq": seq, "conn": None, "fd": -1, "thread": 100, **row})
                    + b"\n")
        f.write(tail)


C = "127.0.0.1:5000>127.0.0.1:80"


def test_a_syn_written_after_its_accept_still_starts_the_flow(tmp_path: Path) -> None:
    """The capture thread writes late: the accept, the request and the close come
    first in the file, the SYN after them, earlier in time."""
    trace, out = tmp_path / "t.jsonl", tmp_path / "t.json"
    write_trace(trace, [
        {"t_ns": 2000, "src": "server", "kind": "accept", "conn": C, "fd": 5, "peer": "x"},
        {"t_ns": 3000, "src": "server", "kind": "request", "conn": C, "fd": 5, "method": "GET",
         "path": "/", "version": "1.1", "keep_alive": False},
        {"t_ns": 4000, "src": "server", "kind": "close", "conn": C, "fd": 5, "reason": "done"},
        {"t_ns": 1000, "src": "capture", "kind": "packet", "conn": C, "thread": 7,
         "sport": 5000, "dport": 80, "flags": "SYN", "tcp_seq": 1, "ack": 0, "len": 0,
         "win": 100, "origin": "captured"},
    ])
    done = export_perfetto(trace, out)
    events = json.loads(out.read_text())["traceEvents"]
    assert done.events == len(events) and done.connections == 1
    chain = sorted((e for e in events if e["ph"] in "stf"), key=lambda e: e["ts"])
    assert [(e["ph"], e["ts"], e["tid"]) for e in chain] == \
        [("s", 0.0, 7), ("t", 1.0, 100), ("t", 2.0, 100), ("f", 3.0, 100)]
    b, e = [x for x in events if x["ph"] in "be"]
    assert (b["ts"], e["ts"], e["args"]["to"]) == (0.0, 3.0, "close")


def test_without_packets_the_accept_starts_the_flow_and_a_cut_last_line_is_said(
        tmp_path: Path) -> None:
    trace, out = tmp_path / "t.jsonl", tmp_path / "t.json"
    write_trace(trace, [
        {"t_ns": 1000, "src": "server", "kind": "accept", "conn": C, "fd": 5, "peer": "x"},
        {"t_ns": 1500, "src": "server", "kind": "epoll_wait", "timeout": -1,
         "ready": [[5, 1], [6, 1], [7, 4]]},
        {"t_ns": 2000, "src": "server", "kind": "request", "conn": C, "fd": 5, "method": "GET",
         "path": "/", "version": "1.1", "keep_alive": True},
        {"t_ns": 2500, "src": "server", "kind": "wait", "call": "libev epoll_wait",
         "timeout": -1, "ready": None, "blocked_ns": 400},
        {"t_ns": 3000, "src": "server", "kind": "wait", "call": "libev epoll_wait",
         "timeout": -1, "ready": None, "blocked_ns": 900},
    ], tail=b'{"seq": 6, "t_ns": 30')
    proc = run("export", str(trace), "--perfetto", str(out))
    assert proc.returncode == 0 and "cut short" in proc.stderr
    events = json.loads(out.read_text())["traceEvents"]
    assert proc.stdout.strip() == f"wrote {len(events)} trace events (1 connection) to {out}"
    chain = sorted((e for e in events if e["ph"] in "stf"), key=lambda e: e["ts"])
    assert [(e["ph"], e["ts"]) for e in chain] == [("s", 0.0), ("t", 1.0)]
    assert counter({"traceEvents": events}, "ready list", "length") == [3]
    assert counter({"traceEvents": events}, "open connections", "count") == [1]
    waits = [(e["ts"], e["dur"]) for e in events if e["ph"] == "X" and e["name"] == "wait"]
    # It slept 400 ns before it returned; the next says 900 ns, but the thread ran the
    # one before it 500 ns ago: its slice begins there, never over it.
    assert waits == [(1.1, 0.4), (1.5, 0.5)]
    b, e = [x for x in events if x["ph"] in "be"]
    assert e["args"] == {"to": "end of trace", "open_at_end": True} and e["ts"] == 2.0


def test_late_events_land_in_their_place_past_a_batch(tmp_path: Path) -> None:
    """More rows than the exporter holds back: a packet written 2000 lines after its
    time is put in its place, whatever batch it comes in."""
    trace, out = tmp_path / "t.jsonl", tmp_path / "t.json"
    rows: list[dict[str, Any]] = [{"t_ns": 1000 * i, "src": "server", "kind": "epoll_wait",
                                   "timeout": -1, "ready": [[5, 1]]} for i in range(40000)]
    for at in (5000, 30000):  # in the first batch, and in a later one
        rows.insert(at + 2000, {"t_ns": 1000 * at + 500, "src": "capture", "kind": "packet",
                                "conn": C, "thread": 7, "sport": 5000, "dport": 80,
                                "flags": "ACK", "tcp_seq": 1, "ack": 1, "len": 0, "win": 1,
                                "origin": "captured"})
    write_trace(trace, rows)
    export_perfetto(trace, out)
    events = json.loads(out.read_text())["traceEvents"]
    timed = [e for e in events if e["ph"] not in "beM"]
    assert [e["ts"] for e in timed] == sorted(e["ts"] for e in timed)
    assert len(timed) == 2 * 40000 + 2
    packets = [i for i, e in enumerate(timed) if e["ph"] == "X" and e["cat"] == "packet"]
    assert [timed[i - 1]["ts"] for i in packets] == [5000.0, 30000.0]


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the kernel observer that finds older sockets reads Linux's sock_diag")
def test_a_socket_older_than_the_trace_is_named_apart(tmp_path: Path) -> None:
    """An earlier server's connection in TIME_WAIT on the port: the observer finds it at
    its start. Its row says "(before the trace)", begun "before the trace", and the CLI
    counts it apart from the connections the run opened."""
    port = port_with_a_time_wait()
    trace, out = tmp_path / "t.jsonl", tmp_path / "t.json"
    served = subprocess.run([*CLI, "serve", "--port", str(port), "--policy", "close",
                             "--load=--clients 1 --requests 1", "--exit-after-load",
                             "--trace", str(trace)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert served.returncode == 0, served.stdout + served.stderr
    exported = run("export", str(trace), "--perfetto", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "(1 connection, and 1 socket already on the port when the recording began)" in \
        exported.stdout, exported.stdout
    read = read_trace(trace)
    (old,) = older_conns(read)
    begins = {e["name"]: e for e in json.loads(out.read_text())["traceEvents"]
              if e["ph"] == "b"}
    assert begins.keys() == {f"{old} (before the trace)", *opened_conns(read)}
    assert begins[f"{old} (before the trace)"]["args"]["from"] == "before the trace"

