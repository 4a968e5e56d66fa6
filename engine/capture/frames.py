"""One TCP segment <-> the fields of a ``packet`` event.

``parse_frame`` turns a link-layer frame into the fields SockScope shows
(ports, flags, absolute sequence and acknowledgment numbers, payload length,
raw window, options, addresses); ``build_frame`` does the reverse so that any
``packet`` event, captured or derived from syscalls, can be exported to a
file Wireshark opens.

Why the payload length comes from the IP header and not from the bytes at
hand: live capture keeps only the first bytes of each frame (the headers) to
spare the socket buffer, and capture files are often cut at a snap length.
The headers still say how long the segment was.

Decoding is dpkt's (TCP options excepted, see ``parse_options``); this module
only checks what dpkt leaves unchecked
(fragments, truncated headers, impossible lengths) and names the problem.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

import dpkt
from dpkt import ethernet, ip, ip6, loopback, sll, sll2, tcp

# Link-layer header types (https://www.tcpdump.org/linktypes.html) that can
# carry TCP/IP the way SockScope meets it: Linux `lo` (Ethernet with zero
# addresses), raw IP (LINKTYPE_RAW, LINKTYPE_IPV4/6), Linux "any" captures
# (cooked SLL v1 and v2) and BSD/macOS loopback (NULL, LOOP).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL", LINKTYPE_ETHERNET: "ETHERNET", LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP", LINKTYPE_LINUX_SLL: "LINUX_SLL", LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6", LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}
SUPPORTED_LINKTYPES = frozenset(LINKTYPE_NAMES)

# The order flags are written in, everywhere SockScope shows them: the
# handshake/teardown flags first, then the modifiers, so "SYN|ACK", "FIN|ACK",
# "FIN|PSH|ACK" read the way people say them.
FLAG_ORDER: tuple[tuple[str, int], ...] = (
    ("SYN", tcp.TH_SYN), ("FIN", tcp.TH_FIN), ("RST", tcp.TH_RST), ("PSH", tcp.TH_PUSH),
    ("ACK", tcp.TH_ACK), ("URG", tcp.TH_URG), ("ECE", tcp.TH_ECE), ("CWR", tcp.TH_CWR),
)
_FLAG_BITS = dict(FLAG_ORDER)

_ARPHRD_LOOPBACK = 772  # SLL's hardware type for `lo`
_PACKET_OUTGOING = 4  # SLL's packet type for a frame this host sent


class FrameError(ValueError):
    """A frame that claims to carry TCP but cannot be decoded as such."""


# ----------------------------------------------------------------- flags
def flags_str(bits: int) -> str:
    """``0x12`` -> ``"SYN|ACK"`` (empty string when no flag is set)."""
    return "|".join(name for name, bit in FLAG_ORDER if bits & bit)


def flags_bits(text: str) -> int:
    """``"SYN|ACK"`` -> ``0x12``. Raises ``ValueError`` on a name it does not know."""
    bits = 0
    for name in filter(None, (part.strip().upper() for part in text.split("|"))):
        try:
            bits |= _FLAG_BITS[name]
        except KeyError:
            raise ValueError(f"unknown TCP flag {name!r} in {text!r} "
                             f"(known: {', '.join(_FLAG_BITS)})") from None
    return bits


# --------------------------------------------------------------- options
def parse_options(raw: bytes) -> dict[str, Any]:
    """TCP options as a JSON-friendly dict.

    Keys: ``sack_perm`` (always, a bool: whether SACK was offered), and when
    present ``mss``, ``wscale``, ``sack`` (list of ``[left, right]`` edges),
    ``ts_val``/``ts_ecr``, ``unknown`` (kinds not decoded, e.g. 34 for TCP Fast
    Open), ``malformed`` (True when the list ends in an impossible length).
    Lists, not tuples, so a trace written as JSON reads back equal.
    """
    opts: dict[str, Any] = {"sack_perm": False}
    raw = bytes(raw)
    at = 0
    # dpkt.tcp.parse_opts would read on past EOL and hand back a truncated
    # option as if whole; walking the list here flags both cases exactly.
    while at < len(raw):
        kind = raw[at]
        if kind == tcp.TCP_OPT_EOL:
            break  # the rest is padding
        if kind == tcp.TCP_OPT_NOP:
            at += 1
            continue
        if at + 1 >= len(raw) or raw[at + 1] < 2 or at + raw[at + 1] > len(raw):
            opts["malformed"] = True  # a length byte missing, too small or past the end
            break
        data = raw[at + 2:at + raw[at + 1]]
        at += raw[at + 1]
        if kind == tcp.TCP_OPT_MSS and len(data) == 2:
            opts["mss"] = struct.unpack(">H", data)[0]
        elif kind == tcp.TCP_OPT_WSCALE and len(data) == 1:
            opts["wscale"] = data[0]
        elif kind == tcp.TCP_OPT_SACKOK and not data:
            opts["sack_perm"] = True
        elif kind == tcp.TCP_OPT_SACK and data and len(data) % 8 == 0:
            edges = struct.unpack(f">{len(data) // 4}I", data)
            opts["sack"] = [[edges[i], edges[i + 1]] for i in range(0, len(edges), 2)]
        elif kind == tcp.TCP_OPT_TIMESTAMP and len(data) == 8:
            opts["ts_val"], opts["ts_ecr"] = struct.unpack(">II", data)
        else:
            opts.setdefault("unknown", []).append(kind)
    return opts


def encode_options(opts: dict[str, Any] | None) -> bytes:
    """The option bytes for ``opts`` (as ``parse_options`` returns), laid out as Linux does.

    Linux's SYN reads MSS, SACK_PERM, TS, NOP, WSCALE; data segments NOP, NOP,
    TS. Following the same layout makes an exported segment look like the one
    the kernel sent. ``unknown`` kinds are not re-encoded (their bytes were not
    kept). Raises ``ValueError`` past the 40 bytes TCP allows.
    """
    if not opts:
        return b""
    out = bytearray()
    if opts.get("mss") is not None:
        out += struct.pack(">BBH", tcp.TCP_OPT_MSS, 4, int(opts["mss"]))
    has_ts = opts.get("ts_val") is not None
    ts = (struct.pack(">BBII", tcp.TCP_OPT_TIMESTAMP, 10, int(opts["ts_val"]) & 0xFFFFFFFF,
                      int(opts.get("ts_ecr") or 0) & 0xFFFFFFFF) if has_ts else b"")
    if opts.get("sack_perm"):
        out += bytes((tcp.TCP_OPT_SACKOK, 2)) + ts if has_ts else b"\x01\x01\x04\x02"
    elif has_ts:
        out += b"\x01\x01" + ts
    if opts.get("wscale") is not None:
        out += bytes((tcp.TCP_OPT_NOP, tcp.TCP_OPT_WSCALE, 3, int(opts["wscale"])))
    blocks = opts.get("sack") or []
    if blocks:
        out += bytes((tcp.TCP_OPT_NOP, tcp.TCP_OPT_NOP, tcp.TCP_OPT_SACK, 2 + 8 * len(blocks)))
        for left, right in blocks:
            out += struct.pack(">II", int(left) & 0xFFFFFFFF, int(right) & 0xFFFFFFFF)
    out += b"\x01" * (-len(out) % 4)  # pad to a 32-bit boundary with NOPs, as Linux does
    if len(out) > 40:
        raise ValueError(f"TCP options take {len(out)} bytes; a TCP header allows 40")
    return bytes(out)


# ----------------------------------------------------------------- parse
def _network_layer(frame: bytes, linktype: int) -> object:
    """The dpkt IP/IP6 object inside ``frame`` (or whatever dpkt made of it)."""
    if linktype == LINKTYPE_ETHERNET:
        return ethernet.Ethernet(frame).data
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        version = frame[0] >> 4 if frame else 0
        if version == 4:
            return ip.IP(frame)
        if version == 6:
            return ip6.IP6(frame)
        return None
    if linktype == LINKTYPE_LINUX_SLL:
        return sll.SLL(frame).data
    if linktype == LINKTYPE_LINUX_SLL2:
        return sll2.SLL2(frame).data
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return loopback.Loopback(frame).data
    raise FrameError(f"link type {linktype} is not supported "
                     f"(supported: {', '.join(sorted(LINKTYPE_NAMES.values()))})")


def is_loopback_outgoing(frame: bytes, linktype: int) -> bool:
    """Whether a cooked ("any" interface) frame is the outgoing copy of a loopback frame.

    On `lo` the kernel shows every frame twice, once leaving and once
    arriving; a capture on "any" keeps both. The arriving copy is the one to
    keep (that is what libpcap does for a capture on `lo` itself).
    """
    try:
        if linktype == LINKTYPE_LINUX_SLL and len(frame) >= 4:
            pkttype, hatype = struct.unpack(">HH", frame[:4])
            return pkttype == _PACKET_OUTGOING and hatype == _ARPHRD_LOOPBACK
        if linktype == LINKTYPE_LINUX_SLL2 and len(frame) >= 11:
            hatype, pkttype = struct.unpack(">HB", frame[8:11])
            return pkttype == _PACKET_OUTGOING and hatype == _ARPHRD_LOOPBACK
    except struct.error:
        return False
    return False


def parse_frame(frame: bytes, linktype: int = LINKTYPE_ETHERNET) -> dict[str, Any] | None:
    """The ``packet`` fields of one frame, or None when it is not a TCP segment.

    Returns ``sport, dport, flags, tcp_seq, ack, len, win, options, src_ip,
    dst_ip``. ``len`` is the TCP payload length the IP header announces, so a
    frame cut after its headers still reports the segment's real size.
    Raises ``FrameError`` for a frame that says it is TCP but is too short or
    inconsistent to decode.
    """
    try:
        net = _network_layer(frame, linktype)
    except (dpkt.UnpackError, struct.error, IndexError) as exc:
        raise FrameError(f"link/IP header cannot be decoded: {exc or type(exc).__name__}") from None
    if isinstance(net, ip.IP):
        if net.p != dpkt.ip.IP_PROTO_TCP:
            return None
        if net.offset:  # a later fragment: no TCP header in it
            return None
        seg = net.data
        if not isinstance(seg, tcp.TCP):
            raise FrameError(f"IPv4 packet of protocol TCP with an undecodable TCP header "
                             f"({len(bytes(seg))} bytes after the IP header)")
        ip_header = net.hl * 4
        if net.len:
            payload = net.len - ip_header - seg.off * 4
        else:  # total length 0: a segmentation-offload super-packet; trust the bytes
            payload = len(seg.data)
        src, dst = socket.inet_ntop(socket.AF_INET, net.src), socket.inet_ntop(socket.AF_INET, net.dst)
    elif isinstance(net, ip6.IP6):
        if net.p != dpkt.ip.IP_PROTO_TCP:
            return None
        seg = net.data
        if not isinstance(seg, tcp.TCP):
            if net.nxt == 44:  # a fragment header: only the first fragment has TCP
                return None
            raise FrameError("IPv6 packet of protocol TCP with an undecodable TCP header")
        ext = sum(h.length for h in getattr(net, "all_extension_headers", ()))
        if net.plen:
            payload = net.plen - ext - seg.off * 4
        else:  # jumbogram or offload: trust the bytes
            payload = len(seg.data)
        src, dst = socket.inet_ntop(socket.AF_INET6, net.src), socket.inet_ntop(socket.AF_INET6, net.dst)
    else:
        return None
    if seg.off < 5:
        raise FrameError(f"TCP data offset {seg.off} is below the minimum of 5 words")
    if payload < 0:
        raise FrameError(f"IP length too short for its TCP header (payload {payload})")
    return {"sport": seg.sport, "dport": seg.dport, "flags": flags_str(seg.flags),
            "tcp_seq": seg.seq, "ack": seg.ack, "len": payload, "win": seg.win,
            "options": parse_options(seg.opts), "src_ip": src, "dst_ip": dst}


# The live capture's fast path: what `lo` carries (Ethernet, IPv4 or IPv6 without
# extension headers, TCP) read with precompiled structs, the same fields as
# ``parse_frame``; anything else (or anything wrong) goes to ``parse_frame``.
_ETHERTYPE = struct.Struct(">H").unpack_from
_IPV4 = struct.Struct(">BxHxxHxB").unpack_from  # version/IHL, total length, frag, protocol
_IPV6 = struct.Struct(">HB").unpack_from  # payload length, next header (at 4)
_TCP = struct.Struct(">HHIIHH").unpack_from
_TS_ONLY = struct.Struct(">III").unpack_from  # NOP NOP TS 10 val ecr: a data segment's options
_NOP_NOP_TS = 0x0101080A
_FLAGS = [flags_str(bits) for bits in range(256)]
_ADDRESSES: dict[bytes, str] = {}


def _address(raw: bytes, family: int) -> str:
    text = _ADDRESSES.get(raw)
    if text is None:
        text = socket.inet_ntop(family, raw)
        if len(_ADDRESSES) < 4096:  # a few peers; a scan of many is decoded each time
            _ADDRESSES[raw] = text
    return text


def parse_ethernet(frame: bytes) -> dict[str, Any] | None:
    """``parse_frame(frame)`` for an Ethernet frame, about five times faster on what
    `lo` carries; every other case (and every error) is ``parse_frame``'s own."""
    size = len(frame)
    if size < 34:
        return parse_frame(frame)
    ethertype = _ETHERTYPE(frame, 12)[0]
    if ethertype == 0x0800:
        vihl, total, frag, proto = _IPV4(frame, 14)
        at = 14 + (vihl & 15) * 4
        if vihl >> 4 != 4 or vihl & 15 < 5 or proto != 6 or frag & 0x3FFF or not total \
                or size < at + 20:
            return parse_frame(frame)
        payload = total - (at - 14)
        src, dst = _address(frame[26:30], socket.AF_INET), _address(frame[30:34], socket.AF_INET)
    elif ethertype == 0x86DD:
        if size < 74:
            return parse_frame(frame)
        plen, nxt = _IPV6(frame, 18)
        at = 54
        if frame[14] >> 4 != 6 or nxt != 6 or not plen:
            return parse_frame(frame)
        payload = plen
        src, dst = (_address(frame[22:38], socket.AF_INET6),
                    _address(frame[38:54], socket.AF_INET6))
    else:
        return parse_frame(frame)
    sport, dport, seq, ack, off_flags, win = _TCP(frame, at)
    header = (off_flags >> 12) * 4
    payload -= header
    if header < 20 or size < at + header or payload < 0:
        return parse_frame(frame)
    kind = 0
    if header == 32:
        kind, ts_val, ts_ecr = _TS_ONLY(frame, at + 20)
    if kind == _NOP_NOP_TS:
        options: dict[str, Any] = {"sack_perm": False, "ts_val": ts_val, "ts_ecr": ts_ecr}
    else:
        options = parse_options(frame[at + 20:at + header])
    return {"sport": sport, "dport": dport, "flags": _FLAGS[off_flags & 0xFF],
            "tcp_seq": seq, "ack": ack, "len": payload, "win": win,
            "options": options, "src_ip": src, "dst_ip": dst}


# ----------------------------------------------------------------- build
_ZERO_MAC = b"\x00" * 6  # what `lo` frames carry


def build_frame(fields: dict[str, Any], src_ip: str, dst_ip: str) -> bytes:
    """An Ethernet/IP/TCP frame for one ``packet`` event's fields.

    Checksums are computed (IP and TCP, over the pseudo-header), options are
    encoded from ``fields["options"]`` when given, and the payload is ``len``
    zero bytes: SockScope records the size of what was sent, not its content,
    and a tool like Wireshark needs the bytes to be there to count them.
    IPv4 or IPv6 follows the address family of ``src_ip``.
    """
    src = ipaddress.ip_address(src_ip)
    dst = ipaddress.ip_address(dst_ip)
    if src.version != dst.version:
        raise ValueError(f"addresses of different families: {src_ip} and {dst_ip}")
    flags = fields.get("flags") or ""
    bits = flags_bits(flags) if isinstance(flags, str) else int(flags)
    length = int(fields.get("len") or 0)
    if length < 0:
        raise ValueError(f"negative payload length {length}")
    opts = encode_options(fields.get("options"))
    seg = tcp.TCP(sport=int(fields["sport"]), dport=int(fields["dport"]),
                  seq=int(fields["tcp_seq"]) & 0xFFFFFFFF,
                  ack=int(fields.get("ack") or 0) & 0xFFFFFFFF,
                  win=int(fields.get("win") or 0) & 0xFFFF, sum=0, urp=0)
    seg.off = 5 + len(opts) // 4
    seg.flags = bits
    seg.opts = opts
    seg.data = bytes(length)
    if src.version == 4:
        total = 20 + len(seg)
        if total > 0xFFFF:
            raise ValueError(f"a {length}-byte payload does not fit one IPv4 packet")
        net: dpkt.Packet = ip.IP(src=src.packed, dst=dst.packed, p=dpkt.ip.IP_PROTO_TCP, ttl=64,
                                 id=0, sum=0, data=seg)
        net._flags_offset = 0x4000  # DF, as Linux sets on TCP
        eth_type = ethernet.ETH_TYPE_IP
    else:
        if len(seg) > 0xFFFF:
            raise ValueError(f"a {length}-byte payload does not fit one IPv6 packet")
        net = ip6.IP6(src=src.packed, dst=dst.packed, nxt=dpkt.ip.IP_PROTO_TCP, hlim=64,
                      plen=len(seg), data=seg)
        net.extension_hdrs = {}
        eth_type = ethernet.ETH_TYPE_IP6
    # bytes(net) fills in the IP and TCP checksums (dpkt computes a zero sum field).
    return ethernet.Ethernet(dst=_ZERO_MAC, src=_ZERO_MAC, type=eth_type, data=bytes(net)).pack()
