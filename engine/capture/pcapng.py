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
earliest segment and a header whose ``created`` is that segment's wall-clock
time, so export(import(file)) keeps the original dates. A file cut short
mid-packet keeps what is whole and says how much; a record whose length no
frame can have is refused (naming its frame and byte) before it is read.
"""
from __future__ import annotations

import os
import struct
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
        created = header["created"]
        if type(created) not in (int, float) or type(anchor) is not int:
            raise ValueError(f"the trace header's created ({created!r}) and created_t_ns "
                             f"({anchor!r}) must be a time in seconds and an integer")
        base_ns = int(Decimal(repr(float(created))) * 10**9) - anchor
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
            try:
                src_ip, dst_ip = _addresses(e)
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
# A record (pcap) or block (pcapng) bigger than this is damage, never a frame: no link
# type read here has frames near it (tcpdump's snapshot length is 256 KiB), and it is
# refused before anything is allocated for it.
_MAX_RECORD = 16 * 2**20


class _Damage(Exception):
    """A record that cannot be a record (``absurd``) or is cut by the end of the file."""

    def __init__(self, at: int, problem: str, cut: bool = False) -> None:
        super().__init__(problem)
        self.at = at  # the byte offset of the record
        self.cut = cut


class _Bounded:
    """The file as dpkt reads its header blocks: a length read from the file
    that no block can have is refused before dpkt allocates that many bytes."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.name = getattr(f, "name", "<capture>")

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > _MAX_RECORD:
            raise _Damage(self._f.tell(), f"a header block claims {n} more bytes")
        return self._f.read(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _open_reader(path: Path, f: Any) -> tuple[Any, str]:
    head = f.read(4)
    f.seek(0)
    try:
        if head == _PCAPNG_MAGIC:
            return pcapng.Reader(_Bounded(f)), "pcapng"
        if head in _PCAP_MAGICS:
            return pcap.Reader(_Bounded(f)), "pcap"
    except Exception as exc:  # dpkt raises ValueError, NeedData, struct.error... on garbage
        where = f" at byte {exc.at}" if isinstance(exc, _Damage) else ""
        raise CaptureFileError(path, f"damaged capture file header{where}: "
                                     f"{exc or type(exc).__name__}") from None
    if not head:
        raise CaptureFileError(path, "empty file: not a pcap or pcapng capture")
    raise CaptureFileError(path, f"not a pcap or pcapng capture (starts with bytes "
                                 f"{head.hex(' ')})")


def _pcap_records(reader: Any, f: Any) -> Iterator[tuple[Any, bytes]]:
    """A pcap file's (timestamp, frame bytes), as dpkt's reader gives them, with
    each record's length checked before it is read (``_Damage`` otherwise)."""
    f.seek(0)
    head = f.read(24)  # the file header (dpkt read it): its magic gives the byte order
    order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    record = struct.Struct(order + "IIII")
    divisor = reader._divisor  # 1E6 (float), or Decimal 1E9 for nanosecond files
    snaplen = reader.snaplen
    limit = min(max(snaplen, _SNAPLEN), _MAX_RECORD)
    while (found := _next_header(f, 16, "record")) is not None:
        at, head = found
        sec, frac, caplen, _ = record.unpack(head)
        if caplen > limit:
            raise _Damage(at, f"its record claims {caplen} captured bytes, more than any "
                              f"frame of this capture can hold (snapshot length {snaplen})")
        buf = f.read(caplen)
        if len(buf) < caplen:
            raise _Damage(at, f"{len(buf)} of its {caplen} bytes are there", cut=True)
        yield sec + frac / divisor, buf


def _next_header(f: Any, size: int, what: str) -> tuple[int, bytes] | None:
    """The next ``size``-byte record or block header and where it starts; None at the
    end of the file, ``_Damage`` if the file ends inside it."""
    at = f.tell()
    head = f.read(size)
    if not head:
        return None
    if len(head) < size:
        raise _Damage(at, f"its {what} header is cut short", cut=True)
    return at, head


def _pcapng_records(reader: Any, f: Any) -> Iterator[tuple[Any, bytes]]:
    """A pcapng file's (timestamp, frame bytes) from its packet blocks (the blocks
    after the first interface description; dpkt's reader read those), each block's
    length checked before it is read (``_Damage`` otherwise)."""
    resume = f.tell()
    f.seek(8)
    le = f.read(4) == b"\x4d\x3c\x2b\x1a"  # the section's byte-order magic, little-endian
    f.seek(resume)
    block = struct.Struct("<II" if le else ">II")
    epb_cls = pcapng.EnhancedPacketBlockLE if le else pcapng.EnhancedPacketBlock
    pb_cls = pcapng.PacketBlockLE if le else pcapng.PacketBlock
    divisor, offset = reader._divisor, reader._tsoffset
    while (found := _next_header(f, 8, "block")) is not None:
        at, head = found
        kind, length = block.unpack(head)
        if length < 12 or length % 4 or length > _MAX_RECORD:
            raise _Damage(at, f"its block claims a length of {length} bytes (a block holds "
                              f"12 to {_MAX_RECORD}, a multiple of 4)")
        body = f.read(length - 8)
        if len(body) < length - 8:
            raise _Damage(at, f"{len(body) + 8} of its {length} bytes are there", cut=True)
        if kind not in (pcapng.PCAPNG_BT_EPB, pcapng.PCAPNG_BT_PB):
            continue  # statistics, name resolution...: no frame
        packet = (epb_cls if kind == pcapng.PCAPNG_BT_EPB else pb_cls)(head + body)
        if packet.caplen > length - 32:  # 32: the block's own fields around the frame
            raise _Damage(at, f"its packet claims {packet.caplen} captured bytes in a block "
                              f"of {length}")
        yield offset + (((packet.ts_high << 32) | packet.ts_low) / divisor), packet.pkt_data


def _frames(path: Path, reader: Any, fmt: str, f: Any, size: int, problems: list[str]
            ) -> Iterator[tuple[int, Any, bytes]]:
    """(frame number, timestamp, bytes), naming damage instead of leaking dpkt errors.

    A file cut short in its last frame (tcpdump killed mid-write) is kept up
    to that frame, and the cut is reported in ``problems`` with how much was
    recovered; damage anywhere else, or a record whose length no frame can have
    (checked before reading it), raises ``CaptureFileError`` naming the frame
    and its byte offset.
    """
    it = (_pcapng_records if fmt == "pcapng" else _pcap_records)(reader, f)
    number = 0
    while True:
        number += 1
        at = f.tell()
        try:
            ts, buf = next(it)
        except StopIteration:
            return
        except _Damage as exc:
            if exc.cut:
                whole = number - 1
                problems.append(f"recovered {whole} packet{'' if whole == 1 else 's'}; "
                                f"the capture ends mid-packet "
                                f"at byte {size}: frame {number}: truncated at the end of the "
                                f"file (it begins at byte {exc.at}; {exc}), skipped")
                return
            raise CaptureFileError(path, f"damaged record at byte {exc.at}: {exc}; refused",
                                   number) from None
        except Exception as exc:  # a garbled block; dpkt's types vary
            detail = str(exc) or type(exc).__name__
            raise CaptureFileError(path, f"damaged record at byte {at} ({detail})",
                                   number) from None
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
        for number, ts, buf in _frames(path, reader, fmt, f, size, problems):
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
    # From the earliest segment, not the first in the file (a capture's timestamps
    # may step back): t_ns is never negative.
    first_ns = min(ns for _, ns, _ in parsed) if parsed else 0
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
