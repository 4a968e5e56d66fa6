"""Reading what a user hands SockScope: a trace with a field of the wrong type or
range is refused naming the line and the field; a trace cut short is read up to
the cut and says how much; a capture given as a trace is recognised; and
``sockscope import`` keeps what is whole of a cut capture and refuses, without
allocating it, a record whose length no frame can have.

The trace is a real recording (``sockscope serve --trace``); the captures are
real pcap and pcapng files (written with struct, byte by byte, and by the
export), cut and damaged as a crash or a disk would.
"""
from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.capture.frames import build_frame
from engine.capture.pcapng import CaptureFileError, export_pcapng, import_capture
from engine.events import Event
from engine.trace import TraceError, read_trace

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine"]

# A field of the wrong type or range: (kind of the line changed, field, value, the view
# that fell over on it before it was refused on reading). The first six are the issue's.
BAD_VALUES: list[tuple[str, str, Any, str]] = [
    ("recv", "fd", 1e300, "sockets"),
    ("mode", "mode", None, "io"),
    ("packet", "tcp_seq", "a", "sequence"),
    ("cpu", "percent", "hot", "plots"),
    ("epoll_wait", "ready", "xx", "io"),
    ("request", "keep_alive", "yes", "http"),
    ("send", "wanted", "lots", "io"),
    ("packet", "len", 1e300, "sequence"),
    ("packet", "ack", [1], "sequence"),
    ("tcp_state", "side", 5, "lifecycle"),
    ("tcp_state", "source", 5, "sequence"),
    ("tcp_state", "via", 5, "sequence"),
    ("epoll_wait", "ready", [[1]], "io"),
    ("epoll_wait", "ready", [["a", 1]], "io"),
    ("response", "status", "200", "http"),
    ("recv", "seq", 2**64 - 1, "sequence"),  # an integer, but not one the log can hold
    ("recv", "thread", 1e300, "io"),
    ("recv", "conn", 5, "sockets"),
    ("recv", "src", None, "io"),
    ("accept", "src", "a", "io"),  # no such source: the I/O view took it for the server's
    # Of the right type, out of range: nothing can mean them.
    ("recv", "fd", -2, "plots"),
    ("recv", "fd", 2**31, "plots"),
    ("recv", "t_ns", -1, "plots"),
    ("recv", "t_ns", 1e300, "plots"),
    ("recv", "bytes", -1, "plots"),
    ("send", "bytes", -5, "io"),
    ("response", "length", -1, "http"),
    ("packet", "sport", 70000, "sequence"),
    ("packet", "tcp_seq", 2**32, "sequence"),
    ("cpu", "percent", -1.0, "plots"),
    ("epoll_wait", "ready", [[5, -1]], "io"),
]
IDS = [f"{k}.{f}={v!r}"[:40] for k, f, v, _ in BAD_VALUES]


def record_trace(path: Path) -> Path:
    """A real run: epoll, segments derived from the syscalls, TCP states inferred from
    them, CPU samples, keep-alive clients that think between requests."""
    subprocess.run([*CLI, "serve", "--port", "0", "--mode", "epoll", "--packets", "derived",
                    "--states", "inferred", "--cpu-interval", "0.01",
                    "--load=--clients 2 --requests 4 --think 20", "--exit-after-load",
                    "--trace", str(path)], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    kinds = {orjson.loads(line)["kind"] for line in path.read_bytes().splitlines()[1:-1]}
    needed = {k for k, _, _, _ in BAD_VALUES}
    assert needed <= kinds, f"the recording lacks {needed - kinds}"
    return path


def with_value(trace: Path, out: Path, kind: str, field: str, value: Any) -> int:
    """``trace`` with ``field`` of the first ``kind`` line set to ``value``, written to
    ``out``; returns that line's number (1-based, the header is line 1)."""
    lines = trace.read_bytes().splitlines(keepends=True)
    number = next(n for n, raw in enumerate(lines[1:], 2) if orjson.loads(raw)["kind"] == kind)
    row = orjson.loads(lines[number - 1])
    row[field] = value
    lines[number - 1] = json.dumps(row).encode() + b"\n"  # json: any integer, 1e300 as is
    out.write_bytes(b"".join(lines))
    return number


def write_pcap(path: Path, frames: list[bytes], order: str = "<", nano: bool = False,
               snaplen: int = 262144, times: list[float] | None = None) -> list[int]:
    """A classic pcap file, byte by byte (either byte order, micro- or nanosecond);
    returns where each record begins."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, 1))
    starts = []
    for k, frame in enumerate(frames):
        t = times[k] if times else 1_700_000_000 + k / 100
        sec = int(t)
        frac = round((t - sec) * (1e9 if nano else 1e6))
        starts.append(len(out))
        out += struct.pack(order + "IIII", sec, frac, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return starts


def tcp_frames(count: int = 3) -> list[bytes]:
    frames = []
    for k in range(count):
        flags = "SYN" if k == 0 else "ACK"
        frames.append(build_frame({"sport": 40000, "dport": 80, "flags": flags, "tcp_seq": 100 + k,
                                   "ack": 7 if k else 0, "len": 10 * k, "win": 512},
                                  "127.0.0.1", "127.0.0.1"))
    return frames


def pcapng_blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(type, offset, length) of each block of a little-endian pcapng file."""
    blocks, at = [], 0
    while at < len(data):
        kind, length = struct.unpack_from("<II", data, at)
        blocks.append((kind, at, length))
        at += length
    return blocks


def write_pcapng(path: Path, count: int = 3) -> list[tuple[int, int, int]]:
    """A pcapng file (SockScope's export, native byte order) of ``count`` segments;
    returns its Enhanced Packet Blocks as (type, offset, length)."""
    assert sys.byteorder == "little"  # the walk below reads little-endian blocks
    events = [Event(k + 1, k * 1000, "capture", "packet", "127.0.0.1:40000>127.0.0.1:80", -1, 0,
                    {"sport": 40000, "dport": 80, "flags": "SYN" if k == 0 else "ACK",
                     "tcp_seq": 100 + k, "ack": 7 if k else 0, "len": 10 * k, "win": 512})
              for k in range(count)]
    export_pcapng(events, path)
    return [b for b in pcapng_blocks(path.read_bytes()) if b[0] == 6]


def sockscope_import(capture: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``sockscope import`` as a user runs it, in at most 1 GiB of address space: a
    record's claimed length is never allocated (4 GiB would fail as MemoryError)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    return subprocess.run([*CLI, "import", str(capture), "--trace", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, preexec_fn=limit)


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_trace(tmp_path_factory.mktemp("recorded") / "run.jsonl")


# ------------------------------------------------------------ traces
def test_every_event_a_real_run_writes_is_read(trace: Path) -> None:
    """The checks refuse nothing a real run writes (every kind of this recording)."""
    got = read_trace(trace)
    assert not got.problems
    assert len(got.events) == len(trace.read_bytes().splitlines()) - 2  # header, end line
    assert got.header["end"]["events"] == len(got.events)


@pytest.mark.parametrize("kind,field,value,view", BAD_VALUES, ids=IDS)
def test_a_wrong_value_is_refused_naming_line_and_field(trace: Path, tmp_path: Path, kind: str,
                                                         field: str, value: Any,
                                                         view: str) -> None:
    bad = tmp_path / "bad.jsonl"
    line = with_value(trace, bad, kind, field, value)
    with pytest.raises(TraceError) as caught:
        read_trace(bad)
    message = str(caught.value)
    assert caught.value.line == line, message
    assert f"line {line}:" in message and f"field {field!r}" in message, message
    assert getattr(caught.value, "field", None) == field
    assert caught.value.__suppress_context__  # a message, not a chained traceback


def test_the_model_refuses_them_too(trace: Path, tmp_path: Path) -> None:
    """What the window reads with (``open_trace``) refuses the same way."""
    from visualizer.model import open_trace
    for k, (kind, field, value, _) in enumerate(BAD_VALUES):
        bad = tmp_path / f"bad{k}.jsonl"
        line = with_value(trace, bad, kind, field, value)
        with pytest.raises(TraceError) as caught:
            open_trace(bad, batch=7)
        assert caught.value.line == line and f"field {field!r}" in str(caught.value), \
            (kind, field, value, str(caught.value))


def test_a_cut_trace_says_how_much_it_recovered(trace: Path, tmp_path: Path) -> None:
    data = trace.read_bytes()
    lines = data.splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[:-25])  # the writer killed mid-line
    got = read_trace(cut)
    events = len(lines) - 2
    assert len(got.events) == events
    assert got.problems == [f"recovered {events} events; line {len(lines)} was cut short "
                            f"(a truncated last line: the writer stopped mid-line), skipped"]


@pytest.mark.parametrize("batch", [1, 3, 16384])
def test_blank_lines_neither_count_nor_shift_the_line_named(trace: Path, tmp_path: Path,
                                                             batch: int) -> None:
    """Lines are numbered as an editor numbers them, whatever the batches read."""
    from visualizer.model import open_trace
    lines = trace.read_bytes().splitlines(keepends=True)[:12]
    lines[4:4] = [b"\n", b"   \n"]  # two blank lines: lines 5 and 6
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines)[:-20])  # the last, line 14, cut short
    timeline, _, problems = open_trace(cut, batch=batch)
    assert len(timeline.log) == 10
    assert problems == ["recovered 10 events; line 14 was cut short (a truncated last line: "
                        "the writer stopped mid-line), skipped"]
    row = orjson.loads(lines[9])
    row["fd"] = "nine"
    lines[9] = orjson.dumps(row) + b"\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines))
    with pytest.raises(TraceError, match="line 10: .*field 'fd'"):
        open_trace(bad, batch=batch)


def test_a_wrong_value_on_the_last_line_is_not_taken_for_a_cut(trace: Path,
                                                                tmp_path: Path) -> None:
    """A whole last line (it parses) with a bad field, and no newline: refused, not skipped."""
    lines = trace.read_bytes().splitlines()[:-1]  # to the last event (no end line: a crash)
    row = orjson.loads(lines[-1])
    row["fd"] = -7
    bad = tmp_path / "last.jsonl"
    bad.write_bytes(b"\n".join(lines[:-1] + [orjson.dumps(row)]))
    with pytest.raises(TraceError, match=f"line {len(lines)}: .*field 'fd'"):
        read_trace(bad)


@pytest.mark.parametrize("fmt", ["pcapng", "pcap-le", "pcap-be", "pcap-nano-le", "pcap-nano-be"])
def test_a_capture_given_as_a_trace_points_to_import(tmp_path: Path, fmt: str) -> None:
    capture = tmp_path / "capture file.cap"  # a space: the command shown is quoted
    if fmt == "pcapng":
        write_pcapng(capture)
    else:
        write_pcap(capture, tcp_frames(), order="<" if fmt.endswith("le") else ">",
                   nano="nano" in fmt)
    with pytest.raises(TraceError) as caught:
        read_trace(capture)
    kind = "pcapng" if fmt == "pcapng" else "pcap"
    assert str(caught.value) == (
        f"{capture}: this is a {kind} capture, not a trace: turn it into one with "
        f"`sockscope import '{capture}' --trace OUT.jsonl`")
    assert "empty file" not in str(caught.value)


@pytest.mark.parametrize("damage", ["packet without sport", "header created not a time"])
def test_export_of_a_trace_it_cannot_turn_into_frames_says_why(trace: Path, tmp_path: Path,
                                                                damage: str) -> None:
    lines = trace.read_bytes().splitlines(keepends=True)
    if damage == "header created not a time":
        header = orjson.loads(lines[0])
        header["created"] = "yesterday"
        lines[0] = orjson.dumps(header) + b"\n"
    else:
        number = next(n for n, raw in enumerate(lines) if b'"kind":"packet"' in raw)
        row = orjson.loads(lines[number])
        del row["sport"]
        lines[number] = orjson.dumps(row) + b"\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines))
    proc = subprocess.run([*CLI, "export", str(bad), "--pcapng", str(tmp_path / "out.pcapng"),
                           "--origin", "derived"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"sockscope export: {bad}: ")
    assert ("'sport'" if damage.startswith("packet") else "'yesterday'") in proc.stderr


# ------------------------------------------------------------ sockscope import
@pytest.mark.parametrize("order,nano", [("<", False), (">", False), ("<", True), (">", True)])
@pytest.mark.parametrize("where", ["data", "header"])
def test_import_of_a_cut_pcap_keeps_what_is_whole(tmp_path: Path, order: str, nano: bool,
                                                  where: str) -> None:
    capture, out = tmp_path / "cut.pcap", tmp_path / "out.jsonl"
    starts = write_pcap(capture, tcp_frames(), order=order, nano=nano)
    data = capture.read_bytes()
    end = starts[2] + 20 if where == "data" else starts[2] + 9  # frame 3 cut short
    capture.write_bytes(data[:end])
    proc = sockscope_import(capture, out)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 segments of 1 connection to" in proc.stdout
    assert f"recovered 2 packets; the capture ends mid-packet at byte {end}: frame 3" \
        in proc.stderr, proc.stderr
    assert f"begins at byte {starts[2]}" in proc.stderr and "Traceback" not in proc.stderr
    back = read_trace(out)
    assert [e.data["tcp_seq"] for e in back.events] == [100, 101]
    assert back.header["problems"][0].startswith("recovered 2 packets")


@pytest.mark.parametrize("where", ["block", "block-header"])
def test_import_of_a_cut_pcapng_keeps_what_is_whole(tmp_path: Path, where: str) -> None:
    capture, out = tmp_path / "cut.pcapng", tmp_path / "out.jsonl"
    packets = write_pcapng(capture)
    third = packets[2][1]
    end = third + 40 if where == "block" else third + 5
    capture.write_bytes(capture.read_bytes()[:end])
    proc = sockscope_import(capture, out)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 segments" in proc.stdout
    assert f"recovered 2 packets; the capture ends mid-packet at byte {end}: frame 3" \
        in proc.stderr, proc.stderr
    assert len(read_trace(out).events) == 2


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("record", [1, 2])  # the middle one, the last one
def test_import_refuses_a_4_gib_pcap_record_without_allocating_it(tmp_path: Path, order: str,
                                                                 record: int) -> None:
    capture, out = tmp_path / "huge.pcap", tmp_path / "out.jsonl"
    starts = write_pcap(capture, tcp_frames(), order=order)
    data = bytearray(capture.read_bytes())
    struct.pack_into(order + "I", data, starts[record] + 8, 0xFFFFFFFF)  # caplen
    capture.write_bytes(bytes(data))
    proc = sockscope_import(capture, out)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(f"sockscope import: {capture}: frame {record + 1}: damaged "
                                  f"record at byte {starts[record]}: "), proc.stderr
    assert "4294967295" in proc.stderr and "refused" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


@pytest.mark.parametrize("field", ["block length", "caplen"])
def test_import_refuses_a_4_gib_pcapng_record_without_allocating_it(tmp_path: Path,
                                                                   field: str) -> None:
    capture, out = tmp_path / "huge.pcapng", tmp_path / "out.jsonl"
    packets = write_pcapng(capture)
    second = packets[1][1]
    data = bytearray(capture.read_bytes())
    # An Enhanced Packet Block: type, block length, interface, time (2), caplen, ...
    struct.pack_into("<I", data, second + (4 if field == "block length" else 20), 0xFFFFFFF0)
    capture.write_bytes(bytes(data))
    proc = sockscope_import(capture, out)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert f"frame 2: damaged record at byte {second}: " in proc.stderr, proc.stderr
    assert "4294967280" in proc.stderr and "refused" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


def test_a_header_block_of_4_gib_is_refused_too(tmp_path: Path) -> None:
    """The interface description, read by dpkt before any frame: its length is checked
    before dpkt reads (and allocates) that many bytes."""
    capture = tmp_path / "huge-header.pcapng"
    write_pcapng(capture)
    data = bytearray(capture.read_bytes())
    kind, idb, _ = pcapng_blocks(bytes(data))[1]
    assert kind == 1  # an Interface Description Block
    struct.pack_into("<I", data, idb + 4, 0xFFFFFFF0)
    capture.write_bytes(bytes(data))
    proc = sockscope_import(capture, tmp_path / "out.jsonl")
    assert proc.returncode == 1
    assert f"damaged capture file header at byte {idb + 8}: a header block claims " \
           f"{0xFFFFFFF0 - 8} more bytes" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_capture_whose_clock_steps_back_imports_to_a_readable_trace(tmp_path: Path) -> None:
    """Times are counted from the earliest frame, not the first: never negative."""
    capture, out = tmp_path / "back.pcap", tmp_path / "out.jsonl"
    write_pcap(capture, tcp_frames(), times=[1_700_000_000.5, 1_700_000_000.2, 1_700_000_000.9])
    events = import_capture(capture)
    assert sorted(e.t_ns for e in events) == [0, 300_000_000, 700_000_000]
    assert events.header["created"] == pytest.approx(1_700_000_000.2)
    proc = sockscope_import(capture, out)
    assert proc.returncode == 0, proc.stderr
    assert len(read_trace(out).events) == 3


def test_import_capture_names_the_damage_as_a_capture_file_error(tmp_path: Path) -> None:
    """The library call, as the CLI's: CaptureFileError with the frame number."""
    capture = tmp_path / "huge.pcap"
    starts = write_pcap(capture, tcp_frames())
    data = bytearray(capture.read_bytes())
    struct.pack_into("<I", data, starts[1] + 8, 0xFFFFFFFF)
    capture.write_bytes(bytes(data))
    with pytest.raises(CaptureFileError) as caught:
        import_capture(capture)
    assert caught.value.frame == 2 and caught.value.__suppress_context__


def test_an_errors_errno_is_its_name_or_an_older_traces_number(tmp_path: Path) -> None:
    """The server names an errno ("EMFILE", "EADDRINUSE"); traces of earlier releases
    carry a number there (time-wait's failed restart: 98). Both are read; a list is not."""
    header = {"format": "sockscope-trace", "version": 2, "clock": "monotonic_ns"}
    rows = [{"seq": 1, "t_ns": 10, "src": "server", "kind": "error", "conn": None, "fd": -1,
             "thread": 0, "what": "file", "errno": "EMFILE"},
            {"seq": 2, "t_ns": 20, "src": "server", "kind": "error", "conn": None, "fd": -1,
             "thread": 0, "what": "EADDRINUSE", "errno": 98, "exit_code": 1}]
    path = tmp_path / "old.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in [header, *rows]) + b"\n")
    assert [e.data["errno"] for e in read_trace(path).events] == ["EMFILE", 98]
    rows[1]["errno"] = [98]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in [header, *rows]) + b"\n")
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert caught.value.line == 3 and "errno" in str(caught.value)
