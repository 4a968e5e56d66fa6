"""Trace files: written as events happen, read back, damaged files named by line."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from engine.clients import LoadConfig, run_load
from engine.events import Event, Probe
from engine.trace import VERSION, TraceError, TraceWriter, read_trace
from tests.conftest import running_server

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    probe = Probe("server")
    path = tmp_path / "t.jsonl"
    with TraceWriter(path, header={"role": "test"}) as writer:
        probe.add_sink(writer)
        probe.emit("listen", None, 3, 7, host="127.0.0.1", port=80, backlog=5, reuseaddr=True)
        probe.emit("epoll_wait", None, -1, 7, timeout=0.25, ready=[(8, 1), (9, 5)])
        probe.emit("request", "1.2.3.4:5>6.7.8.9:80", 8, 7, method="GET", path="/ü",
                   version="1.1", keep_alive=True)
    trace = read_trace(path)
    assert trace.header["format"] == "sockscope-trace" and trace.header["version"] == VERSION
    assert trace.header["role"] == "test" and not trace.problems
    assert [e.kind for e in trace.events] == ["listen", "epoll_wait", "request"]
    assert trace.events[1].data["ready"] == [(8, 1), (9, 5)]
    req = trace.events[2]
    assert (req.conn, req.fd, req.thread, req.data["path"]) == ("1.2.3.4:5>6.7.8.9:80", 8, 7, "/ü")
    first = trace.events[0].seq
    assert [e.seq for e in trace.events] == [first, first + 1, first + 2]


def test_live_server_trace_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "server.jsonl"
    writer = TraceWriter(path)
    with running_server() as (server, sink):
        server.probe.add_sink(writer)
        run_load(LoadConfig(server.url, clients=2, requests=10))
        assert sink.wait_for(lambda evs: sum(e.kind == "close" for e in evs) >= 2, 5)
    writer.close()
    trace = read_trace(path)
    recorded = [e for e in sink.events if e.seq >= trace.events[0].seq]
    assert [(e.seq, e.kind, e.conn, e.data) for e in trace.events] == \
        [(e.seq, e.kind, e.conn, {k: (list(v) if k == "ready" else v) for k, v in e.data.items()})
         for e in recorded]
    assert sum(e.kind == "response" for e in trace.events) == 20


def write_five_recvs(path: Path) -> None:
    """A trace of five ``recv`` events (bytes 0 to 4), closed in order."""
    with TraceWriter(path) as writer:
        probe = Probe()
        probe.add_sink(writer)
        for i in range(5):
            probe.emit("recv", "c", 5, 1, bytes=i)


def test_truncated_last_line_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    write_five_recvs(path)
    data = path.read_bytes()
    data = data[:data.rindex(b'{"end":')]  # a writer that crashes writes no end line...
    path.write_bytes(data[:-20])  # ...and may stop in the middle of its last line
    trace = read_trace(path)
    assert [e.data["bytes"] for e in trace.events] == [0, 1, 2, 3]
    assert len(trace.problems) == 1 and "line 6" in trace.problems[0]
    assert "truncated" in trace.problems[0]


def test_corrupt_line_in_the_middle_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    header = orjson.dumps({"format": "sockscope-trace", "version": 1}).decode()
    good = orjson.dumps(Event(1, 5, "server", "recv", "c", 4, 1, {"bytes": 3}).to_dict()).decode()
    path.write_text("\n".join([header, good, "{not json", good]) + "\n")
    with pytest.raises(TraceError) as info:
        read_trace(path)
    assert info.value.line == 3 and "line 3" in str(info.value)
    path.write_text("\n".join([header, good, '{"seq": 2, "src": "server"}', good]) + "\n")
    with pytest.raises(TraceError, match="line 3.*missing field"):
        read_trace(path)


def test_newer_version_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    path.write_text(orjson.dumps({"format": "sockscope-trace", "version": VERSION + 1}).decode() + "\n")
    with pytest.raises(TraceError) as info:
        read_trace(path)
    message = str(info.value)
    assert f"version {VERSION + 1}" in message and f"1 to {VERSION}" in message


@pytest.mark.parametrize("content,problem", [
    (b"", "empty file"), (b"hello world\n", "header is not JSON"),
    (b'{"format": "pcap"}\n', "not a SockScope trace")])
def test_not_a_trace(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceError, match=problem):
        read_trace(path)


def test_full_writer_counts_what_it_drops(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    writer = TraceWriter(path, flush_interval=60, max_pending=10, batch=5)
    probe = Probe()
    probe.add_sink(writer)
    for i in range(25):
        probe.emit("recv", "c", 5, 1, bytes=i)
    writer.close()
    trace = read_trace(path)
    assert writer.dropped == 15
    kinds = [e.kind for e in trace.events]
    assert kinds.count("recv") == 10
    dropped = [e for e in trace.events if e.kind == "dropped"]
    assert len(dropped) == 1 and dropped[0].data["count"] == 15


def test_a_failing_sink_is_removed_not_fatal() -> None:
    probe = Probe()
    seen = []

    def broken(event: Event) -> None:
        raise RuntimeError("disk on fire")

    probe.add_sink(broken)
    probe.add_sink(seen.append)
    probe.emit("recv", "c", 1, 1, bytes=1)
    probe.emit("recv", "c", 1, 1, bytes=2)
    assert [e.data["bytes"] for e in seen] == [1, 2]
    assert len(probe.failed_sinks) == 1 and probe.active


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_trace_is_readable_after_the_server_is_killed(tmp_path: Path) -> None:
    """Written as events happen: a SIGKILLed server leaves a readable trace."""
    path = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0",
                             "--trace", str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line[line.index("http://"):].split()[0]
        result = run_load(LoadConfig(url, clients=2, requests=20))
        assert result.ok == 40
        time.sleep(0.3)  # longer than the writer's flush interval
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    trace = read_trace(path)
    assert sum(e.kind == "response" for e in trace.events) == 40
    assert "end" not in trace.header and len(trace.problems) == 1
    assert trace.problems[0].startswith("the trace has no end line: the engine that wrote it "
                                        "did not stop in order (it was killed")


def test_a_trace_closed_in_order_ends_with_an_end_line_saying_what_each_source_lost(
        tmp_path: Path) -> None:
    """The last line counts the events before it and what every source lost: the
    writer's own drops under ``trace``, the others' as their ``dropped`` events said."""
    path = tmp_path / "ended.jsonl"
    writer = TraceWriter(path, flush_interval=60, max_pending=10, batch=5)
    probe = Probe()
    probe.add_sink(writer)
    probe.emit("dropped", None, -1, 0, count=7, sink="capture")
    probe.emit("dropped", None, -1, 0, count=2, sink="capture")
    for i in range(24):
        probe.emit("recv", "c", 5, 1, bytes=i)
    writer.close()
    lines = path.read_bytes().splitlines()
    end = orjson.loads(lines[-1])["end"]
    assert end["lost"] == {"capture": 9, "trace": 16}  # 26 emitted, 10 kept
    assert end["events"] == len(lines) - 2  # every line but the header and itself
    trace = read_trace(path)
    assert trace.header["end"] == end and not trace.problems
    assert len(trace.events) == end["events"] == 11  # 10 kept, then the count of the rest
    writer.close()  # closed again: still one end line
    assert path.read_bytes().splitlines() == lines


def test_serve_ends_its_trace_with_the_end_line_and_a_killed_one_is_said_to_lack_it(
        tmp_path: Path) -> None:
    path = tmp_path / "served.jsonl"
    done = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0",
                           "--load=--clients 2 --requests 5", "--exit-after-load",
                           "--trace", str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    trace = read_trace(path)
    assert not trace.problems
    assert trace.header["end"]["events"] == len(trace.events) > 10
    assert trace.header["end"]["lost"] == {}
    assert orjson.loads(path.read_bytes().splitlines()[-1]) == {"end": trace.header["end"]}


@pytest.mark.parametrize("last,problem", [
    (b'{"end": {"events": "many"}}\n', "line 3: not a valid end line: events 'many'"),
    (b'{"end": {"events": 1, "lost": {"capture": -1}}}\n', "line 3: not a valid end line: lost"),
    (b'{"end": {"events": 1}, "seq": 9}\n', "line 3: not a valid end line"),
    (b'{"end": {"events": 1}}\n' + b'{"end": {"events": 1}}\n',
     "line 4: a line after the trace's end line")])
def test_a_broken_end_line_or_a_line_after_it_is_named(tmp_path: Path, last: bytes,
                                                         problem: str) -> None:
    path = tmp_path / "bad-end.jsonl"
    header = orjson.dumps({"format": "sockscope-trace", "version": VERSION})
    good = orjson.dumps(Event(1, 5, "server", "recv", "c", 4, 1, {"bytes": 3}).to_dict())
    path.write_bytes(header + b"\n" + good + b"\n" + last)
    with pytest.raises(TraceError, match=problem.replace("(", r"\(")):
        read_trace(path)


def test_an_event_after_the_end_line_is_refused_even_batches_later(tmp_path: Path) -> None:
    """Two traces joined: the second's events come after the first's end line, which
    ends the reader's first batch of 16,384 lines (or falls inside it)."""
    path = tmp_path / "joined.jsonl"
    header = orjson.dumps({"format": "sockscope-trace", "version": VERSION})
    good = orjson.dumps(Event(1, 5, "server", "recv", "c", 4, 1, {"bytes": 3}).to_dict())
    for before in (16_383, 1):
        end = orjson.dumps({"end": {"events": before, "lost": {}}})
        path.write_bytes(b"\n".join([header, *[good] * before, end, *[good] * 5]) + b"\n")
        with pytest.raises(TraceError,
                           match=f"line {before + 3}: a line after the trace's end line"):
            read_trace(path)


def test_an_end_line_that_counts_other_events_than_were_read_is_said(tmp_path: Path) -> None:
    path = tmp_path / "edited.jsonl"
    write_five_recvs(path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))  # an event taken out by hand
    trace = read_trace(path)
    assert len(trace.events) == 4
    assert trace.problems == ["the trace's end line counts 5 events, but 4 were read: "
                              "lines are missing or were added"]


def test_an_older_version_without_an_end_line_is_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "v2.jsonl"
    header = orjson.dumps({"format": "sockscope-trace", "version": 2})
    good = orjson.dumps(Event(1, 5, "server", "recv", "c", 4, 1, {"bytes": 3}).to_dict())
    path.write_bytes(header + b"\n" + good + b"\n")
    trace = read_trace(path)
    assert len(trace.events) == 1 and not trace.problems and "end" not in trace.header
    path.write_bytes(orjson.dumps({"format": "sockscope-trace", "version": VERSION}) + b"\n"
                     + good + b"\n")
    assert read_trace(path).problems == [
        "the trace has no end line: the engine that wrote it did not stop in order (it was "
        "killed or crashed, its disk filled up, or it is still recording); the 1 event read "
        "are whole"]
