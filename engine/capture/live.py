"""Live capture of the server's TCP segments on the loopback interface.

SockScope shows what the kernel actually put on the wire next to what the
server asked of it. On Linux the wire of a local connection is `lo`, and an
``AF_PACKET`` socket sees every frame that crosses it. That needs root or the
``CAP_NET_RAW`` capability; ``can_capture()`` says plainly whether this
process has it, and why not.

Three things keep the capture cheap and exact:

* ``lo`` hands a packet socket every frame twice, once leaving
  (``PACKET_OUTGOING``) and once arriving. Only the arriving copy is kept,
  otherwise every segment would appear to have been sent twice.
* A classic BPF program attached with ``SO_ATTACH_FILTER`` drops, inside the
  kernel, the outgoing copies and every frame that is not TCP to or from the
  server port, and cuts the frames it keeps to their first ``SNAPLEN`` bytes
  (the headers): a bulk transfer on `lo` moves 64 KiB frames, and copying
  them into Python only to read 60 bytes of headers would fill the socket
  buffer and make the kernel drop frames. The same checks run again in
  Python, so a kernel that refuses the filter loses speed, not correctness.
* Frames the kernel dropped anyway (socket buffer full) are counted with
  ``PACKET_STATISTICS`` and reported, never silently lost.

Each event carries the time the kernel stamped the frame, not the time Python
read it. Reading comes 0.3-0.6 ms after the syscall that sent the segment
(the capture thread has to wake up and get the GIL), which would put a FIN
after the server's next moves. So ``SO_TIMESTAMPNS`` is on: every frame comes
with the ``CLOCK_REALTIME`` time the kernel received it (on `lo`, inside the
sending syscall itself). That time is moved to the monotonic clock every
other event uses by subtracting the offset realtime - monotonic, measured by
reading the real-time clock between two monotonic reads (the narrowest of a
few tries, well under a microsecond wide) and measured again every second:
NTP's slewing moves both clocks alike, but the real-time clock can be
stepped (settimeofday, NTP's step, a leap second). A frame that comes without
a stamp (the option refused, the ancillary data missing) or with one that
cannot be right (later than its receipt, or a minute older) is placed at its
receipt and counted in ``stats["unstamped"]``.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import select
import socket
import struct
import threading
import time
from collections import deque
from typing import Any, Callable

from ..events import Probe
from ..server import connection_id
from .frames import FrameError, parse_ethernet

ETH_P_ALL = 0x0003
SOL_PACKET = getattr(socket, "SOL_PACKET", 263)
PACKET_STATISTICS = 6
PACKET_OUTGOING = getattr(socket, "PACKET_OUTGOING", 4)
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
# Python's socket module does not name it. SO_TIMESTAMPNS(_OLD), which is also
# the ancillary message's type (SCM_TIMESTAMPNS), carrying a native struct
# timespec: 35 on x86, arm, mips, powerpc, riscv...; parisc and sparc differ.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", {"parisc": 0x4013, "sparc": 0x21}.get(
    next((a for a in ("parisc", "sparc") if platform.machine().startswith(a)), ""), 35))
_TIMESPEC = struct.Struct("@ll")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 64

# Bytes of each frame kept: Ethernet 14 + IPv4 up to 60 (IPv6 40 plus room for
# extension headers) + TCP up to 60 all fit. The payload length is read from
# the IP header, so nothing SockScope shows is lost by the cut.
SNAPLEN = 256
# The queue is charged each frame's whole buffer even after the snap cut, so a
# bulk transfer on lo (64 KiB frames) needs room: measured on a 2 GB transfer
# in-process, 4 MiB lost ~1% of frames, 16 MiB none. SO_RCVBUFFORCE (root /
# CAP_NET_ADMIN) may exceed net.core.rmem_max; otherwise SO_RCVBUF is capped there.
# Hence the default --capture-buffer: 16 MiB, the ring's blocks or, without a ring,
# this socket buffer (RING_BLOCKS below).
_BATCH = 512  # frames read per wakeup before looking at the stop signal again

# The TPACKET_V3 ring (packet_mmap): the kernel writes frames into blocks of a
# memory map shared with this process, and hands over a whole block at once
# (full, or ``RING_RETIRE_MS`` after its first frame), so a busy second costs a
# few wakeups, not a recvmsg per frame. Its blocks are sized like the socket
# buffer it replaces (16 MiB): with frames cut to SNAPLEN by the filter, about
# 50,000 frames wait there before the kernel must drop one (and counts it).
PACKET_VERSION, PACKET_RX_RING, TPACKET_V3 = 10, 5, 2
RING_BLOCK = 1 << 20
RING_BLOCKS = 16
RING_FRAME = 2048  # only sets the ring's geometry: V3 packs frames of any size
RING_RETIRE_MS = 8
_TP_STATUS_USER = 1
# A block's status says the kernel dropped frames since the statistics were last
# read (which resets the count).
_TP_STATUS_LOSING = 4
_TIMESPEC32 = struct.Struct("=II")  # a frame's tp_sec, tp_nsec; a block's ts_last_pkt
_BLOCK = struct.Struct("=IIII")  # at 8 in a block: status, num_pkts, offset_to_first_pkt, blk_len
# Blocks the kernel handed over are copied out of the ring at once (the used part,
# one memcpy) and decoded by another thread at its own pace: under a load the
# decoder cannot keep up with, frames wait in memory, not in the kernel's ring,
# where the next would be dropped. Up to this many bytes wait; beyond, blocks stay
# in the ring, which then fills, and the kernel drops and counts.
BACKLOG_MAX = 512 << 20
DECODE_AT_STOP_S = 120.0
_FRAME = struct.Struct("=IIIIIIHH")  # tpacket3_hdr: next, sec, nsec, snaplen, len, status, mac, net
_SLL_PKTTYPE = 48 + 10  # TPACKET_ALIGN(sizeof tpacket3_hdr) + offsetof(sockaddr_ll, sll_pkttype)
_FINAL_DRAIN_S = 0.2  # at stop, time spent reading what the kernel still holds
_STATS_EVERY_S = 1.0  # also how often the realtime - monotonic offset is measured again
_OFFSET_TRIES = 5
# A converted stamp is believed if it is at most this much after its receipt (the
# offset's own error) and less than a minute before it (frames wait in the socket
# buffer while the thread is held up, never that long).
_STAMP_SLACK_NS = 100_000
_STAMP_MAX_AGE_NS = 60 * 1_000_000_000


def realtime_offset_ns(tries: int = _OFFSET_TRIES) -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns, to about a microsecond.

    Each try reads the real-time clock between two monotonic reads and takes
    the middle of the bracket; the narrowest bracket wins (a try interrupted
    by the scheduler or the GIL is wide and loses).
    """
    best_width, best = None, 0
    mono, real = time.monotonic_ns, time.time_ns
    for _ in range(max(1, tries)):
        m0 = mono()
        r = real()
        m1 = mono()
        if best_width is None or m1 - m0 < best_width:
            best_width, best = m1 - m0, r - (m0 + m1) // 2
    return best


class CaptureError(RuntimeError):
    """Live capture cannot start (no permission, no such interface, not Linux)."""


def can_capture(iface: str = "lo") -> tuple[bool, str]:
    """Whether this process can capture on ``iface``, and a sentence saying why (not).

    It tries what capturing does, opening an ``AF_PACKET`` raw socket,
    because only the kernel knows the answer: uid 0 in a container may lack
    ``CAP_NET_RAW``, and a non-root process may have been granted it.
    """
    if not hasattr(socket, "AF_PACKET") or not platform.system() == "Linux":
        return False, (f"live capture uses Linux AF_PACKET sockets; this system is "
                       f"{platform.system() or 'unknown'}: import a pcap file instead")
    try:
        # Protocol 0: the socket receives nothing, so the probe costs nothing.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except OSError as exc:
        return False, _open_failure(exc)
    sock.close()
    try:
        socket.if_nametoindex(iface)
    except OSError:
        return False, f"no network interface named {iface!r} on this host"
    return True, f"AF_PACKET raw socket opened (euid {os.geteuid()}); can capture on {iface}"


def _open_failure(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    what = f"opening an AF_PACKET raw socket failed: {exc.strerror or exc} ({name})"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return (f"{what}: permission denied; capturing needs root or the CAP_NET_RAW "
                f"capability (this process runs as euid {os.geteuid()})")
    if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EINVAL):
        return f"{what}: this kernel or sandbox does not offer packet sockets"
    return what


# ------------------------------------------------------------------ BPF
def bpf_program(port: int, snaplen: int = SNAPLEN) -> list[tuple[int, int, int, int]]:
    """A classic BPF program: keep TCP to/from ``port`` arriving on an Ethernet-framed link.

    It is what ``tcpdump -d 'inbound and tcp port P'`` compiles to on `lo`,
    written out so that no libpcap is needed: IPv6 (no extension headers, as
    tcpdump), IPv4 except later fragments, and it rejects outgoing copies by
    the packet type the kernel attaches. Returns ``(code, jt, jf, k)``.
    """
    ld_w_abs, ldh_abs, ldb_abs, ldh_ind, ldxb_msh = 0x20, 0x28, 0x30, 0x48, 0xB1
    jeq, jset, ret = 0x15, 0x45, 0x06
    skf_pkttype = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE
    prog: list[tuple[Any, ...]] = [
        (ld_w_abs, None, None, skf_pkttype),
        (jeq, "reject", None, PACKET_OUTGOING),
        (ldh_abs, None, None, 12),  # EtherType
        (jeq, None, "ipv4", 0x86DD),
        (ldb_abs, None, None, 20),  # IPv6 next header
        (jeq, None, "reject", 6),
        (ldh_abs, None, None, 54),
        (jeq, "accept", None, port),
        (ldh_abs, None, None, 56),
        (jeq, "accept", "reject", port),
        ("ipv4", jeq, None, "reject", 0x0800),
        (ldb_abs, None, None, 23),  # IPv4 protocol
        (jeq, None, "reject", 6),
        (ldh_abs, None, None, 20),  # flags + fragment offset
        (jset, "reject", None, 0x1FFF),
        (ldxb_msh, None, None, 14),  # X = IPv4 header length
        (ldh_ind, None, None, 14),
        (jeq, "accept", None, port),
        (ldh_ind, None, None, 16),
        (jeq, "accept", "reject", port),
        ("accept", ret, None, None, snaplen),
        ("reject", ret, None, None, 0),
    ]
    labels = {ins[0]: pc for pc, ins in enumerate(prog) if isinstance(ins[0], str)}
    out = []
    for pc, ins in enumerate(prog):
        code, jt, jf, k = ins[1:] if isinstance(ins[0], str) else ins
        rel = [0 if j is None else labels[j] - pc - 1 for j in (jt, jf)]
        assert all(0 <= r < 256 for r in rel), "BPF jump out of range"
        out.append((code, rel[0], rel[1], k))
    return out


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """Attach a classic BPF program (``SO_ATTACH_FILTER``; the kernel copies it)."""
    insns = b"".join(struct.pack("=HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(insns, len(insns))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


_STATUS = struct.Struct("=I")
PACKET_TIMESTAMP = 17
SOF_TIMESTAMPING_SOFTWARE = 1 << 4


def _open_ring(sock: socket.socket, blocks: int = RING_BLOCKS) -> mmap.mmap | None:
    """Switch ``sock`` (not yet bound) to a TPACKET_V3 receive ring of ``blocks`` blocks
    and map it; None where the kernel refuses (the socket then stays as it was)."""
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        # The frame's time: the one the kernel stamped as it received it (SO_TIMESTAMPNS
        # turned stamping on), as recvmsg's ancillary data says, not the copy's.
        sock.setsockopt(SOL_PACKET, PACKET_TIMESTAMP, SOF_TIMESTAMPING_SOFTWARE)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack(
            "=7I", RING_BLOCK, blocks, RING_FRAME, RING_BLOCK * blocks // RING_FRAME,
            RING_RETIRE_MS, 0, 0))
    except OSError:
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, 0)  # TPACKET_V1: plain recvmsg again
        except OSError:
            pass
        return None
    try:
        return mmap.mmap(sock.fileno(), RING_BLOCK * blocks, mmap.MAP_SHARED,
                         mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, ValueError):  # no room to map it: the ring goes, recvmsg it is
        try:
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("=7I", 0, 0, 0, 0, 0, 0, 0))
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, 0)
        except OSError:
            raise CaptureError("a packet ring was set up and cannot be mapped or removed") \
                from None
        return None


# -------------------------------------------------------------- capture
class LoopbackCapture:
    """Capture the segments of one server port on ``iface`` and emit ``packet`` events.

    Each kept frame becomes ``probe.emit("packet", conn, -1, tid, ...)`` with
    the fields of ``frames.parse_frame`` and ``origin="captured"``; ``conn``
    is oriented client>server, the server being the end that uses ``port``,
    so it equals the id the server gave the connection when it accepted it.
    The event's ``t_ns`` is the kernel's own stamp of the frame
    (``SO_TIMESTAMPNS``, moved from the real-time to the monotonic clock the
    probes use), so captured and server events interleave on one time line in
    the order they happened; ``emit_at`` gives it to the probe. Frames without
    a stamp fall back to the time of receipt and are counted (``unstamped``).

    ``use_bpf=False`` skips the kernel filter (every frame on the interface
    then crosses into Python); it exists to measure what the filter saves.
    """

    def __init__(self, probe: Probe, port: int, iface: str = "lo", *, use_bpf: bool = True,
                 snaplen: int = SNAPLEN, ring: bool = True, buffer_mib: int = RING_BLOCKS,
                 dropped: Callable[[dict[str, Any]], str | None] | None = None) -> None:
        self.probe = probe
        self.port = int(port)
        self.iface = iface
        # Which segments a firewall rule drops after the capture saw them (the lab's
        # faults, engine.lab.FaultMarks): marked "dropped", since their receiver never
        # got them.
        self.dropped = dropped
        self.use_bpf = use_bpf
        self.snaplen = snaplen
        self.use_ring = ring
        # The kernel's room for frames not read yet: the ring's blocks (1 MiB each), or
        # the socket buffer without a ring.
        # Two blocks at least: the kernel fills one while the other is being copied out.
        self.buffer_mib = max(2, int(buffer_mib))
        self._ring: mmap.mmap | None = None  # the TPACKET_V3 ring, where the kernel allows it
        self._block = 0  # the ring's next block to read
        self._conn_ids: dict[tuple[str, int, str], str] = {}  # (client ip, port, server ip): id
        self._blocks: deque[tuple[bytes, int]] = deque()  # copied blocks, and when
        self._backlog = 0  # their bytes
        self._decoding = threading.Condition()
        self._decoded_all = False  # set once the capture thread has read its last block
        self._decoder: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self._last_copied: int | None = None  # the kernel's stamp of the last frame copied out
        self._gap: list | None = None  # a gap whose end is not known yet: [start, count]
        self.bpf_attached = False
        self.rcvbuf = 0
        self.stats = {"frames": 0, "outgoing_dropped": 0, "other_dropped": 0,
                      "malformed": 0, "emitted": 0, "kernel_packets": 0, "kernel_drops": 0,
                      "unstamped": 0, "blocks": 0, "backlog_peak": 0, "gaps": 0}
        self.timestamps = False  # whether the kernel accepted SO_TIMESTAMPNS
        self._rt_offset = 0  # CLOCK_REALTIME - CLOCK_MONOTONIC, ns
        self.error: str | None = None
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._drops_reported = 0
        self._result: dict[str, Any] | None = None

    # ----------------------------------------------------------- control
    def start(self) -> "LoopbackCapture":
        """Open the socket, attach the filter, start the thread. Raises ``CaptureError``."""
        if self._thread is not None:
            raise CaptureError("this capture was already started")
        if not hasattr(socket, "AF_PACKET"):
            raise CaptureError(can_capture(self.iface)[1])
        try:
            # Protocol 0 until bind: no frame can arrive before the filter is in place.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as exc:
            raise CaptureError(_open_failure(exc)) from exc
        try:
            if self.use_bpf:
                try:
                    attach_filter(sock, bpf_program(self.port, self.snaplen))
                    self.bpf_attached = True
                except OSError as exc:  # filtering in Python still gives the same events
                    self.error = f"BPF filter refused ({exc}); filtering in Python"
            for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, self.buffer_mib << 20)
                    break
                except OSError:
                    continue
            self.rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.timestamps = True
            except OSError as exc:  # every frame then falls back to its receipt time
                self.error = f"SO_TIMESTAMPNS refused ({exc}); packets stamped on receipt"
            if self.use_ring:
                # None: the kernel refused; recvmsg it is
                self._ring = _open_ring(sock, self.buffer_mib)
            self._rt_offset = realtime_offset_ns()
            try:
                sock.bind((self.iface, ETH_P_ALL))
            except OSError as exc:
                if exc.errno == errno.ENODEV:
                    raise CaptureError(f"no network interface named {self.iface!r}") from exc
                raise CaptureError(f"cannot bind a packet socket to {self.iface!r}: {exc}") from exc
            sock.setblocking(False)
            self._sock = sock
            self._read_kernel_stats()  # start counting from zero (reading resets them)
            self.stats["kernel_packets"] = self.stats["kernel_drops"] = 0
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            self._sock = None
            sock.close()
            raise
        self._thread = threading.Thread(target=self._run, name="sockscope-capture", daemon=True)
        if self._ring is not None:
            self._decoder = threading.Thread(target=self._decode, name="sockscope-capture-decode",
                                             daemon=True)
            self._decoder.start()
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop within a fraction of a second and return the counts.

        Frames already queued in the kernel are still read (for at most
        0.2 s), so a segment that arrived just before ``stop()`` is not lost, and
        the frames copied out of the ring are all decoded (a backlog a load left:
        ``DECODE_AT_STOP_S`` at most). ``backlog_peak``: the most bytes that waited.
        Keys: ``frames`` (reached Python), ``outgoing_dropped``,
        ``other_dropped`` (not TCP of this port), ``malformed``, ``emitted``,
        ``kernel_packets`` / ``kernel_drops`` (PACKET_STATISTICS: what passed
        the filter, and what the full socket buffer lost), ``unstamped``
        (frames that came without the kernel's time stamp: placed at their
        receipt), ``bpf`` (whether the kernel filter is attached),
        ``timestamps`` (whether SO_TIMESTAMPNS is on), ``rcvbuf`` (the socket
        buffer the kernel granted), ``error``, ``thread_alive`` (True only if
        a thread failed to end in time).
        """
        if self._result is not None:
            return self._result
        if self._thread is None:
            raise CaptureError("this capture was not started")
        self._stopping.set()
        try:
            assert self._wake_w is not None
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout=1.0)
        alive = self._thread.is_alive()
        if self._decoder is not None:  # what was copied out of the ring, all of it decoded
            with self._decoding:
                self._decoded_all = True
                self._decoding.notify()
            self._decoder.join(timeout=DECODE_AT_STOP_S)
            alive = alive or self._decoder.is_alive()
        if not alive:
            self._read_kernel_stats()
            self._report_drops(final=True)
            for s in (self._sock, self._wake_r, self._wake_w):
                if s is not None:
                    s.close()
            if self._ring is not None:
                self._ring.close()
        self._result = {**self.stats, "bpf": self.bpf_attached,
                        "ring": self._ring is not None,
                        "timestamps": self.timestamps, "rcvbuf": self.rcvbuf,
                        "error": self.error, "thread_alive": alive}
        return self._result

    def __enter__(self) -> "LoopbackCapture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ thread
    def _run(self) -> None:
        assert self._sock is not None and self._wake_r is not None
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        poller.register(self._wake_r.fileno(), select.POLLIN)
        next_stats = time.monotonic() + _STATS_EVERY_S
        try:
            while not self._stopping.is_set():
                poller.poll(int(_STATS_EVERY_S * 1000))  # woken by a frame or by stop()
                self._read_batch(_BATCH)
                # The count is read only once every full block is copied: the kernel drops
                # only when none is free, so a gap then lies after the last frame copied.
                # Read while full blocks still wait (a capture far behind, or stopped and
                # going on), it would put the gap between two frames from before it.
                if time.monotonic() >= next_stats and not self._ring_waiting():
                    next_stats = time.monotonic() + _STATS_EVERY_S
                    self._rt_offset = realtime_offset_ns()  # NTP may slew the real-time clock
                    self._read_kernel_stats()
                    # (recvmsg has no blocks to bring a gap's end: said at once, until now)
                    self._report_drops(final=self._ring is None)
            # What the kernel still holds. The ring hands over a partly filled block
            # RING_RETIRE_MS after its first frame: wait for it (twice that, at most).
            deadline = time.monotonic() + _FINAL_DRAIN_S
            quiet = time.monotonic() + 2 * RING_RETIRE_MS / 1000
            while time.monotonic() < deadline:
                if self._read_batch(_BATCH) >= _BATCH:
                    continue
                if self._ring is None or time.monotonic() >= quiet:
                    break
                poller.poll(RING_RETIRE_MS)
        except OSError as exc:  # the interface went away, the socket was closed...
            self.error = f"capture stopped: {exc}"
            if self.probe.active:
                self.probe.emit("error", None, -1, threading.get_native_id(),
                                what="capture_failed", detail=str(exc))

    def _read_batch(self, limit: int) -> int:
        """Read up to ``limit`` frames without blocking (from the ring: whole blocks until
        that many); returns how many were read."""
        if self._ring is not None:
            return self._read_ring(limit)
        sock = self._sock
        assert sock is not None
        take = self._take
        tid = threading.get_native_id()
        count = 0
        unpack_time = _TIMESPEC.unpack_from
        monotonic_ns = time.monotonic_ns
        sol_socket, scm_timestampns, stamp_size = socket.SOL_SOCKET, SO_TIMESTAMPNS, _TIMESPEC.size
        while count < limit:
            try:
                frame, ancillary, _, addr = sock.recvmsg(self.snaplen, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            count += 1
            stamp = None
            for level, kind, data in ancillary:
                if level == sol_socket and kind == scm_timestampns and len(data) >= stamp_size:
                    seconds, nanoseconds = unpack_time(data)
                    stamp = seconds * 1_000_000_000 + nanoseconds
                    break
            take(frame, addr[2], stamp, monotonic_ns(), tid)
            if stamp is not None:
                self._last_copied = stamp
        return count

    def _ring_waiting(self) -> bool:
        """Has the kernel handed over the next block, not yet copied?"""
        if self._ring is None:
            return False
        return bool(_BLOCK.unpack_from(self._ring, self._block * RING_BLOCK + 8)[0]
                    & _TP_STATUS_USER)

    def _read_ring(self, limit: int) -> int:
        """Copy the blocks the kernel handed over out of the ring (the used part of each),
        give them back, and leave them to the decoder thread; until ``limit`` frames,
        no block is ready, or the backlog is full. Returns how many frames."""
        ring = self._ring
        assert ring is not None
        block_at = _BLOCK.unpack_from
        count = 0
        while count < limit and self._backlog < BACKLOG_MAX:
            base = self._block * RING_BLOCK
            status, frames, first, used = block_at(ring, base + 8)
            if not status & _TP_STATUS_USER:
                break
            block = ring[base:base + min(used, RING_BLOCK)]
            _STATUS.pack_into(ring, base + 8, 0)  # TP_STATUS_KERNEL: the block is the kernel's again
            if frames:
                # The kernel drops only when no block is free, and opens the next block
                # for the first frame after: a gap always comes just before a block's
                # first frame, and the block says so (TP_STATUS_LOSING: drops counted
                # since the last reading). Where it was is said now, with the count
                # (whose reading lets the next gap be seen).
                sec, nsec = _TIMESPEC32.unpack_from(block, first + 4)
                if self._gap is not None or status & _TP_STATUS_LOSING:
                    self._read_kernel_stats()
                    self._report_drops(after=sec * 1_000_000_000 + nsec)
                sec, nsec = _TIMESPEC32.unpack_from(block, 40)  # ts_last_pkt
                self._last_copied = sec * 1_000_000_000 + nsec
            self._block = (self._block + 1) % self.buffer_mib
            count += frames
            self.stats["blocks"] += 1
            with self._decoding:
                self._blocks.append((block, time.monotonic_ns()))
                self._backlog += len(block)
                self.stats["backlog_peak"] = max(self.stats["backlog_peak"], self._backlog)
                self._decoding.notify()
        return count

    def _decode(self) -> None:
        """The decoder thread: every copied block's frames, taken as recvmsg's are, until
        the capture has stopped and nothing is left."""
        tid = threading.get_native_id()
        take = self._take
        frame_at = _FRAME.unpack_from
        block_at = _BLOCK.unpack_from
        while True:
            with self._decoding:
                while not self._blocks and not self._decoded_all:
                    self._decoding.wait()
                if not self._blocks:
                    return
                block, received = self._blocks.popleft()
                self._backlog -= len(block)
            _, frames, at, _ = block_at(block, 8)
            for _ in range(frames):
                step, sec, nsec, snap, _length, _status, mac, _net = frame_at(block, at)
                take(block[at + mac:at + mac + snap], block[at + _SLL_PKTTYPE],
                     sec * 1_000_000_000 + nsec, received, tid)
                at += step

    def _take(self, frame: bytes, pkttype: int, stamp: int | None, received: int,
              tid: int) -> None:
        """One frame: counted, decoded, and if it is the server port's, emitted at the
        kernel's time (``stamp``, CLOCK_REALTIME ns), or at ``received`` without one."""
        stats = self.stats
        stats["frames"] += 1
        if pkttype == PACKET_OUTGOING:  # lo's second copy of the same frame
            stats["outgoing_dropped"] += 1
            return
        try:
            fields = parse_ethernet(frame)
        except FrameError:
            stats["malformed"] += 1
            return
        port = self.port
        if fields is None or (fields["sport"] != port and fields["dport"] != port):
            stats["other_dropped"] += 1
            return
        client = (fields["dst_ip"], fields["dport"], fields["src_ip"]) \
            if fields["sport"] == port else (fields["src_ip"], fields["sport"], fields["dst_ip"])
        conn = self._conn_ids.get(client)
        if conn is None:  # once per connection: the id is the same for all its segments
            if len(self._conn_ids) >= 65536:
                self._conn_ids.clear()
            conn = self._conn_ids[client] = connection_id(client[:2], (client[2], port))
        stats["emitted"] += 1
        t_ns = -1 if stamp is None else stamp - self._rt_offset
        if not received - _STAMP_MAX_AGE_NS < t_ns <= received + _STAMP_SLACK_NS:
            # No stamp, or one on another clock: the time of receipt is the best left.
            stats["unstamped"] += 1
            t_ns = received
        if self.dropped is not None:
            fault = self.dropped(fields)
            if fault is not None:
                fields["dropped"] = fault
        if self.probe.active:
            fields["origin"] = "captured"
            self.probe.emit_data_at(t_ns, "packet", conn, -1, tid, fields)

    def _read_kernel_stats(self) -> None:
        """Add PACKET_STATISTICS to the totals (the kernel resets them on each read)."""
        if self._sock is None or self._sock.fileno() < 0:
            return
        with self._stats_lock:  # the capture thread's periodic read, the decoder's at a gap
            try:
                packets, drops = struct.unpack("II", self._sock.getsockopt(
                    SOL_PACKET, PACKET_STATISTICS, 8))
            except OSError:
                return
            self.stats["kernel_packets"] += packets
            self.stats["kernel_drops"] += drops

    def _report_drops(self, after: int | None = None, final: bool = False) -> None:
        """Say the frames the kernel dropped, with where in time they are missing.

        A gap lies after the last frame copied out before it (the kernel drops only
        when every block is full, and all full blocks are copied before the count is
        read) and before the first frame of the next block (which the kernel opened
        for it). So a count read finds the gap's start; the gap is said, as a
        ``dropped`` event with ``from_ns`` and ``until_ns`` (monotonic), once a block
        brings its end (``after``: that block's first frame's real-time stamp), or at
        the end (``final``: until now). Counts read meanwhile join the same gap."""
        with self._stats_lock:
            new = self.stats["kernel_drops"] - self._drops_reported
            self._drops_reported = self.stats["kernel_drops"]
        if new > 0:
            if self._gap is None:
                self._gap = [self._last_copied, 0]
            self._gap[1] += new
        if self._gap is None or (after is None and not final):
            return
        (before, count), self._gap = self._gap, None
        if after is None:
            after = time.time_ns()
        self.stats["gaps"] += 1
        if self.probe.active:  # dated where the gap begins: what it says happened then
            offset = self._rt_offset
            since = (after if before is None else before) - offset
            self.probe.emit_data_at(since, "dropped", None, -1, threading.get_native_id(), {
                "count": count, "sink": "capture", "until_ns": after - offset,
                "from_ns": since})