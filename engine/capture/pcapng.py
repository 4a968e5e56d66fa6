"""pcap/pcapng files: export a trace's segments for Wireshark, import any capture.

Export (``export_pcapng``) writes every ``packet`` event, captured on the
wire or derived from syscalls, as an Ethernet frame in a pcapng file, so the
same connection can be studied in Wireshark or tshark.

Timestamps. Events carry ``t_ns`` from the monotonic clock, which has no
date. A frame's absolute time is the trace header's ``created`` wall-clock
time plus the frame's offset from the trace's start:
``created + (t_ns - anchor) / 1e9``, where ``anchor`` is the header's
``created_t_ns`` when it has one (imported captures do: 0) and otherwise the
earliest ``t_ns`` among the events given (the trace's first event comes
right after its header was written, so the date is off by that little).
Intervals between frames are exact to the nanosecond (the file uses
nanosecond resolution). Without a header the raw monotonic clock is written
(seconds since boot: dates in 1970, intervals still exact).

Import (``import_capture``) reads pcap or pcapng made by any tool, for any
server and port, into ``packet`` events. Each connection is oriented by who
sent its first SYN (the client), failing that by who sent a SYN|ACK (the
server), failing that (a capture started mid-connection) the lower port is
taken as the server's. Imported events have ``t_ns`` = nanoseconds since the
first segment and a header whose ``created`` is that segment's wall-clock
time, so export(import(file)) keeps the original dates.
"""
from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator

from dpkt import pcap, pcapng

from ..events import Event
from ..server import connection_id
from ..trace import TraceError, TraceWriter, make_header
from .frames import (LINKTYPE_ETHERNET, LINKTYPE_NAMES, SUPPORTED_LINKTYPES, FrameError,
                     build_frame, is_loopback_outgoing, parse_frame)

_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",  # microseconds, LE / BE
                b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}  # nanoseconds
_SNAPLEN = 262144  # tcpdump's default; frames bigger than lo's MTU still fit
_LE = sys.byteorder == "little"  # dpkt's writer insists on native-order blocks


class CaptureFileError(TraceError):
    """A capture file that cannot be read; the message names the file (and frame)."""

    def __init__(self, path: str | os.PathLike[str], problem: str, frame: int = 0) -> None:
        self.frame = frame
        super().__init__(path, 0, f"frame {frame}: {problem}" if frame else problem)


class CaptureEvents(list):  # type: ignore[type-arg]
    """The ``packet`` events of an imported capture (a plain list of ``Event``).

    ``header`` is the trace header describing the source file; ``problems``
    lists what was skipped and why (a truncated last frame, for instance).
    """

    header: dict[str, Any]
    problems: list[str]


# ---------------------------------------------------------------- export
def export_pcapng(events: Iterable[Event], out_path: str | os.PathLike[str],
                  header: dict[str, Any] | None = None, *, origin: str | None = None) -> int:
    """Write the ``packet`` events as a pcapng file (LINKTYPE_ETHERNET); returns how many.

    ``header`` is the trace's header (for dates, see the module docstring).
    ``origin`` keeps only ``"captured"`` or ``"derived"`` segments: a trace
    holding both would otherwise show every segment twice. Addresses come from
    the event (``src_ip``/``dst_ip``) or else from its connection id. Frames
    are written in time order.
    """
    events = list(events)
    packets = [e for e in events if e.kind == "packet"
               and (origin is None or e.data.get("origin") == origin)]
    packets.sort(key=lambda e: (e.t_ns, e.seq))  # stable: captured and derived interleave
    if header is not None and "created" in header:
        anchor = header.get("created_t_ns")
        if anchor is None:
            anchor = min((e.t_ns for e in events), default=0)
        base_ns = int(Decimal(repr(float(header["created"]))) * 10**9) - int(anchor)
    else:
        base_ns = 0
    le = _LE
    option = pcapng.PcapngOptionLE if le else pcapng.PcapngOption
    shb_cls = pcapng.SectionHeaderBlockLE if le else pcapng.SectionHeaderBlock
    idb_cls = pcapng.InterfaceDescriptionBlockLE if le else pcapng.InterfaceDescriptionBlock
    epb_cls = pcapng.EnhancedPacketBlockLE if le else pcapng.EnhancedPacketBlock
    comment = ("SockScope export: frames rebuilt from packet events (payload bytes are zeros, "
               "only their count is real); time = trace created + (t_ns - anchor)")
    shb = shb_cls(opts=[option(code=pcapng.PCAPNG_OPT_COMMENT, text=comment),
                        option(code=pcapng.PCAPNG_OPT_SHB_USERAPPL, data=b"SockScope"),
                        option(code=pcapng.PCAPNG_OPT_ENDOFOPT)])
    idb = idb_cls(snaplen=_SNAPLEN, linktype=LINKTYPE_ETHERNET,
                  opts=[option(code=pcapng.PCAPNG_OPT_IF_NAME, data=b"lo"),
                        option(code=pcapng.PCAPNG_OPT_IF_TSRESOL, data=b"\x09"),  # 10^-9 s
                        option(code=pcapng.PCAPNG_OPT_ENDOFOPT)])
    out_path = Path(out_path)
    with open(out_path, "wb") as f:
        writer = pcapng.Writer(f, shb=shb, idb=idb)
        for e in packets:
            src_ip, dst_ip = _addresses(e)
            try:
                frame = build_frame(e.data, src_ip, dst_ip)
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"packet event seq {e.seq} ({e.conn}) cannot be exported: "
                                 f"{exc}") from None
            ts = max(0, base_ns + e.t_ns)
            writer.writepkt(epb_cls(ts_high=ts >> 32, ts_low=ts & 0xFFFFFFFF, caplen=len(frame),
                                    pkt_len=len(frame), pkt_data=frame))
    return len(packets)


def _addresses(e: Event) -> tuple[str, str]:
    """The sender's and receiver's IP of a packet event."""
    src, dst = e.data.get("src_ip"), e.data.get("dst_ip")
    if src and dst:
        return src, dst
    if not e.conn or ">" not in e.conn:
        raise ValueError(f"packet event seq {e.seq} has neither addresses nor a connection id")
    client, server = (_split_endpoint(x) for x in e.conn.split(">", 1))
    if int(e.data["sport"]) == client[1] and int(e.data["dport"]) == server[1]:
        return client[0], server[0]
    return server[0], client[0]


def _split_endpoint(text: str) -> tuple[str, int]:
    """``"[::1]:80"`` or ``"127.0.0.1:80"`` -> (host, port)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------- import
def _open_reader(path: Path, f: Any) -> tuple[Any, str]:
    head = f.read(4)
    f.seek(0)
    try:
        if head == _PCAPNG_MAGIC:
            return pcapng.Reader(f), "pcapng"
        if head in _PCAP_MAGICS:
            return pcap.Reader(f), "pcap"
    except Exception as exc:  # dpkt raises ValueError, NeedData, struct.error... on garbage
        raise CaptureFileError(path, f"damaged capture file header: "
                                     f"{exc or type(exc).__name__}") from None
    if not head:
        raise CaptureFileError(path, "empty file: not a pcap or pcapng capture")
    raise CaptureFileError(path, f"not a pcap or pcapng capture (starts with bytes "
                                 f"{head.hex(' ')})")


def _frames(path: Path, reader: Any, f: Any, size: int, problems: list[str]
            ) -> Iterator[tuple[int, Any, bytes]]:
    """(frame number, timestamp, bytes), naming damage instead of leaking dpkt errors.

    A file cut short in its last frame (tcpdump killed mid-write) is kept up
    to that frame, and the cut is reported in ``problems``; damage anywhere
    else raises ``CaptureFileError``.
    """
    it = iter(reader)
    number = 0
    while True:
        number += 1
        try:
            ts, buf = next(it)
        except StopIteration:
            return
        except Exception as exc:  # truncated or garbled block; dpkt's types vary
            detail = str(exc) or type(exc).__name__
            if f.tell() >= size:
                problems.append(f"frame {number}: truncated at the end of the file "
                                f"({detail}); skipped")
                return
            raise CaptureFileError(path, f"damaged record ({detail})", number) from None
        yield number, ts, buf


def _ts_ns(ts: Any) -> int:
    """A dpkt timestamp (float, or Decimal for nanosecond pcap) in integer nanoseconds."""
    if isinstance(ts, Decimal):
        return int(ts * 10**9)
    # repr gives the shortest decimal that reads back as this float: a
    # microsecond file's 1700000000.123456 stays exact instead of ...455999.
    return int(Decimal(repr(float(ts))) * 10**9)


def import_capture(path: str | os.PathLike[str]) -> CaptureEvents:
    """Read a pcap/pcapng file into ``packet`` events (src "capture", origin "captured").

    Frames that are not TCP are skipped and counted; so are outgoing copies of
    loopback frames in a Linux "any" capture (every segment would otherwise
    appear twice). Raises ``CaptureFileError`` (naming the file) when the file
    is not a capture or is damaged before its end. pcapng files with several
    interfaces are read as if all frames had the first interface's link type.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        f = open(path, "rb")
    except OSError as exc:
        raise CaptureFileError(path, exc.strerror or str(exc)) from None
    problems: list[str] = []
    parsed: list[tuple[int, int, dict[str, Any]]] = []
    counts = {"frames": 0, "not_tcp": 0, "malformed": 0, "loopback_duplicates": 0}
    with f:
        reader, fmt = _open_reader(path, f)
        linktype = reader.datalink()
        if linktype not in SUPPORTED_LINKTYPES:
            raise CaptureFileError(path, f"link type {linktype} is not supported (supported: "
                                         f"{', '.join(sorted(LINKTYPE_NAMES.values()))})")
        for number, ts, buf in _frames(path, reader, f, size, problems):
            counts["frames"] += 1
            if is_loopback_outgoing(buf, linktype):
                counts["loopback_duplicates"] += 1
                continue
            try:
                fields = parse_frame(buf, linktype)
            except FrameError as exc:
                counts["malformed"] += 1
                if len(problems) < 20:
                    problems.append(f"frame {number}: {exc}; skipped")
                continue
            if fields is None:
                counts["not_tcp"] += 1
                continue
            parsed.append((number, _ts_ns(ts), fields))
    servers = _orient(fields for _, _, fields in parsed)
    first_ns = parsed[0][1] if parsed else 0
    out = CaptureEvents()
    for seq, (number, ns, fields) in enumerate(parsed, 1):
        src, dst = (fields["src_ip"], fields["sport"]), (fields["dst_ip"], fields["dport"])
        server = servers[frozenset((src, dst))]
        client = dst if src == server else src
        out.append(Event(seq, ns - first_ns, "capture", "packet", connection_id(client, server),
                         -1, 0, {"origin": "captured", **fields, "frame": number}))
    source = {"path": str(path.resolve()), "format": fmt, "size": size, "linktype": linktype,
              "linktype_name": LINKTYPE_NAMES.get(linktype, str(linktype)),
              "segments": len(out), **counts}
    out.header = make_header(created=first_ns / 1e9 if parsed else path.stat().st_mtime,
                             created_t_ns=0, clock="capture_ns", source=source)
    if problems:
        out.header["problems"] = list(problems)
    out.problems = problems
    return out


def _orient(segments: Iterable[dict[str, Any]]) -> dict[frozenset, tuple[str, int]]:
    """For each connection (unordered endpoint pair), its server endpoint."""
    by_syn: dict[frozenset, tuple[str, int]] = {}
    by_synack: dict[frozenset, tuple[str, int]] = {}
    seen: dict[frozenset, tuple[tuple[str, int], tuple[str, int]]] = {}
    for fields in segments:
        src, dst = (fields["src_ip"], fields["sport"]), (fields["dst_ip"], fields["dport"])
        key = frozenset((src, dst))
        seen.setdefault(key, (src, dst))
        flags = fields["flags"].split("|")
        if "SYN" in flags and "ACK" not in flags:
            by_syn.setdefault(key, dst)
        elif "SYN" in flags:
            by_synack.setdefault(key, src)
    servers = {}
    for key, (a, b) in seen.items():
        if key in by_syn:
            servers[key] = by_syn[key]
        elif key in by_synack:
            servers[key] = by_synack[key]
        else:  # mid-connection: ephemeral ports are high, service ports low
            servers[key] = min((a, b), key=lambda end: (end[1], end[0]))
    return servers


def write_trace_from_capture(capture_path: str | os.PathLike[str],
                             trace_path: str | os.PathLike[str]) -> CaptureEvents:
    """Import a capture and write it as a SockScope trace; returns the imported events."""
    events = import_capture(capture_path)
    with TraceWriter(trace_path, header=events.header) as writer:
        for e in events:
            writer(e)
    return events


__all__ = ["CaptureEvents", "CaptureFileError", "export_pcapng", "import_capture",
           "write_trace_from_capture"]
