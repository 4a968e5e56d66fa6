"""``TCP_INFO``: what the kernel knows about one socket this process owns.

Cheap (about 4 µs) and private to the socket's owner, so the engine can ask
for every connection it serves: segments in and out, retransmissions, the
smoothed RTT, the congestion window. Linux only; macOS has a different struct
(``TCP_CONNECTION_INFO``) and Windows another (``SIO_TCP_INFO``): there
``tcp_info`` returns None rather than guess.

The layout follows ``struct tcp_info`` in ``include/uapi/linux/tcp.h``. The
kernel copies ``min(asked, sizeof(struct tcp_info))`` bytes, and the struct
only ever grows at the end, so an older kernel simply returns fewer fields:
we decode every field that fits in what came back and leave the rest out.
Names are the kernel's without ``tcpi_``, except ``rtt_us`` and ``rttvar_us``
(the unit matters for those two in a lesson). Units: ``rto``, ``ato``,
``rtt_us``, ``rttvar_us``, ``rcv_rtt``, ``min_rtt`` in µs; ``last_*`` in ms;
``*_rate`` in bytes per second; ``busy_time``/``*_limited`` in µs.
"""
from __future__ import annotations

import socket
import struct
import sys
from typing import Any

from .sockdiag import STATE_NAMES

# The number 11 means TCP_INFO on Linux only (FreeBSD reuses the name for another struct).
TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
ASK_BYTES = 256  # every field above; newer kernels append ECN byte counters we do not ask for

# (name, struct code) in kernel order; "x" marks the bitfield bytes decoded by hand.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("state", "B"), ("ca_state", "B"), ("retransmits", "B"), ("probes", "B"),
    ("backoff", "B"), ("options", "B"), ("_wscale", "B"), ("_flags", "B"),
    ("rto", "I"), ("ato", "I"), ("snd_mss", "I"), ("rcv_mss", "I"),
    ("unacked", "I"), ("sacked", "I"), ("lost", "I"), ("retrans", "I"), ("fackets", "I"),
    ("last_data_sent", "I"), ("last_ack_sent", "I"), ("last_data_recv", "I"),
    ("last_ack_recv", "I"),
    ("pmtu", "I"), ("rcv_ssthresh", "I"), ("rtt_us", "I"), ("rttvar_us", "I"),
    ("snd_ssthresh", "I"), ("snd_cwnd", "I"), ("advmss", "I"), ("reordering", "I"),
    ("rcv_rtt", "I"), ("rcv_space", "I"), ("total_retrans", "I"),
    ("pacing_rate", "Q"), ("max_pacing_rate", "Q"), ("bytes_acked", "Q"),
    ("bytes_received", "Q"), ("segs_out", "I"), ("segs_in", "I"),
    ("notsent_bytes", "I"), ("min_rtt", "I"), ("data_segs_in", "I"), ("data_segs_out", "I"),
    ("delivery_rate", "Q"), ("busy_time", "Q"), ("rwnd_limited", "Q"), ("sndbuf_limited", "Q"),
    ("delivered", "I"), ("delivered_ce", "I"), ("bytes_sent", "Q"), ("bytes_retrans", "Q"),
    ("dsack_dups", "I"), ("reord_seen", "I"), ("rcv_ooopack", "I"), ("snd_wnd", "I"),
    ("rcv_wnd", "I"), ("rehash", "I"), ("total_rto", "H"), ("total_rto_recoveries", "H"),
    ("total_rto_time", "I"), ("received_ce", "I"),
)


def _layout() -> list[tuple[str, str, int]]:
    """(name, code, end offset) with C's natural alignment, as the kernel lays it out."""
    out, off = [], 0
    for name, code in _FIELDS:
        size = struct.calcsize(code)
        off = (off + size - 1) // size * size
        off += size
        out.append((name, code, off))
    return out


_LAYOUT = _layout()
_DECODERS: dict[int, tuple[struct.Struct, tuple[str, ...]]] = {}  # returned length -> decoder


def _decoder(length: int) -> tuple[struct.Struct, tuple[str, ...]]:
    """A Struct for the longest prefix of fields that fits in ``length`` bytes (cached)."""
    cached = _DECODERS.get(length)
    if cached is None:
        fields = [(n, c) for n, c, end in _LAYOUT if end <= length]
        # "@" is native order *and* native alignment: exactly the C struct.
        cached = _DECODERS[length] = (struct.Struct("@" + "".join(c for _, c in fields)),
                                      tuple(n for n, _ in fields))
    return cached


def decode_tcp_info(raw: bytes) -> dict[str, Any]:
    """Decode the bytes ``getsockopt(TCP_INFO)`` returned (any length)."""
    layout, names = _decoder(len(raw))
    info: dict[str, Any] = dict(zip(names, layout.unpack_from(raw)))
    wscale = info.pop("_wscale", None)
    if wscale is not None:  # two 4-bit fields; GCC packs the first in the low bits
        info["snd_wscale"], info["rcv_wscale"] = wscale & 0x0F, wscale >> 4
    flags = info.pop("_flags", None)
    if flags is not None:
        info["delivery_rate_app_limited"] = bool(flags & 1)
        info["fastopen_client_fail"] = (flags >> 1) & 0x03
    if "state" in info:
        info["state_name"] = STATE_NAMES.get(info["state"], f"STATE_{info['state']}")
    return info


def tcp_info(sock: socket.socket) -> dict[str, Any] | None:
    """The kernel's ``tcp_info`` for ``sock``, or None when it cannot be had.

    None: no TCP_INFO on this platform, the socket is closed or not TCP.
    Never raises for a socket that closed under us (a connection that ended
    between the caller's check and this call is normal in a server).
    """
    if TCP_INFO is None:
        return None
    try:
        if sock.fileno() < 0:
            return None
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, ASK_BYTES)
    except (OSError, ValueError):
        return None
    if not raw:
        return None
    return decode_tcp_info(raw)
