"""Ask the Linux kernel for the TCP sockets of one port: sock_diag netlink, or /proc.

Why a hand-written netlink client: the observer polls every few milliseconds,
so one dump must cost little and parse lazily. pyroute2's DiagSocket parses
every attribute of every socket into dicts (about 23 ms for 1,000 sockets);
this module keeps the raw reply and decodes only what is asked for. No
privileges are needed: any user may dump TCP sockets through sock_diag.

What one dump costs, measured here (Linux 6.18, 2 cores, 262,144 established
hash buckets): about 1.6 ms per address family *even when no socket matches*,
because the kernel walks every bucket of the established hash. The matching
sockets add little (about 0.3 ms per 1,000 with the bytecode filter below).
A dump of listening sockets only skips that walk and costs about 15 µs. The
observer (``observer.py``) is built around these two numbers.

Wire format (``include/uapi/linux/inet_diag.h``, ``sock_diag.h``, ``netlink.h``):

- request: ``nlmsghdr`` + ``inet_diag_req_v2`` (family, protocol, ext, pad,
  states bitmask, ``inet_diag_sockid``), then optionally an
  ``INET_DIAG_REQ_BYTECODE`` attribute: a little program the kernel runs on
  each socket ("sport == P or dport == P") so only the port's sockets come back;
- reply: many ``nlmsghdr`` + ``inet_diag_msg`` (+ attributes we skip), spread
  over several ``recv`` calls (multipart), ended by ``NLMSG_DONE``; a refused
  request answers ``NLMSG_ERROR`` with a negative errno.

``/proc/net/tcp`` and ``/proc/net/tcp6`` give the same facts as text (slower:
the kernel formats every socket of the network namespace, and the listen
backlog is missing) and serve where netlink is unavailable.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from typing import Iterable, Iterator, NamedTuple

# ----------------------------------------------------------------- constants
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
INET_DIAG_REQ_BYTECODE = 1
# Bytecode operations (enum in inet_diag.h).
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_EQ = 11
INET_DIAG_BC_D_EQ = 12

# Linux TCP state numbers -> the names SockScope shows. The kernel spells
# FIN_WAIT1/FIN_WAIT2 without the underscore; a request socket (NEW_SYN_RECV,
# a half-open connection before the final ACK) is what textbooks call SYN_RECV.
STATE_NAMES: dict[int, str] = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
    11: "CLOSING", 12: "SYN_RECV", 13: "BOUND_INACTIVE",
}
TCP_LISTEN = 10
# Every state of a socket in the established or listening hash (1..12).
# BOUND_INACTIVE (13, bound but neither listening nor connected) is left out:
# such a socket is not a connection and never carries traffic.
ALL_STATES = sum(1 << s for s in range(1, 13))
LISTEN_ONLY = 1 << TCP_LISTEN
CONNECTION_STATES = ALL_STATES & ~LISTEN_ONLY

# idiag_timer / the "tr" column of /proc/net/tcp. ``ss`` prints 1 as "on":
# it is the retransmission timer (also tail-loss probe and reorder timeout).
TIMER_NAMES: dict[int, str] = {0: "off", 1: "retransmit", 2: "keepalive", 3: "time_wait",
                               4: "probe"}

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQ_V2 = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states (+ 48-byte sockid)
_SOCKID_LEN = 48  # sport, dport (be16), src[4], dst[4] (be32), if, cookie[2]
_RTATTR = struct.Struct("=HH")
_BC_OP = struct.Struct("=BBH")  # code, yes, no
_MSG_TAIL = struct.Struct("=IIIII")  # expires, rqueue, wqueue, uid, inode
_COOKIE = struct.Struct("=II")
_PORTS = struct.Struct("!HH")
_ERRNO = struct.Struct("=i")

# Offsets inside one reply message (nlmsghdr is 16 bytes, inet_diag_msg follows).
OFF_FAMILY, OFF_STATE, OFF_TIMER, OFF_RETRANS = 16, 17, 18, 19
OFF_SPORT, OFF_DPORT, OFF_SRC, OFF_DST, OFF_COOKIE, OFF_TAIL = 20, 22, 24, 40, 60, 68
OFF_KEY_END = 56  # [OFF_SPORT, OFF_KEY_END): ports and addresses, the socket's 4-tuple
MIN_MSG_LEN = 88


class TcpSocket(NamedTuple):
    """One TCP socket as the kernel reports it.

    ``local``/``remote`` are ``(ip, port)``; ``timer`` is a name from
    ``TIMER_NAMES`` and ``expires_ms`` when it fires. For a LISTEN socket
    ``rqueue`` is the accept queue length and ``wqueue`` the backlog
    (sock_diag only: /proc does not show the backlog, so it is None there).
    ``cookie`` identifies the socket across dumps (None from /proc).
    """
    family: int
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    rqueue: int
    wqueue: int | None
    timer: str
    expires_ms: int
    retrans: int
    inode: int
    uid: int
    cookie: int | None


class SockDiagError(OSError):
    """The kernel refused a sock_diag request, or the reply made no sense."""


# ----------------------------------------------------------------- requests
def port_filter_bytecode(port: int) -> bytes:
    """The kernel-side filter "sport == port or dport == port".

    Each op is (code, yes, no): after the test, jump ``yes`` bytes ahead if it
    held, ``no`` bytes if not. Landing exactly on the end accepts the socket,
    landing 4 bytes past it rejects. Comparison ops carry the port in the
    ``no`` field of a second op. The kernel audits a program by walking its
    ``yes`` jumps, so the OR is written with an always-false JMP in the middle
    (the layout ``ss`` generates) to keep every op on that path:

        0  S_EQ   yes -> 8 (JMP)   no -> 12 (D_EQ)
        4  port
        8  JMP    (never taken: yes -> 12)   no -> 20 = end: accept
        12 D_EQ   yes -> 20 = end: accept    no -> 24 = end + 4: reject
        16 port
    """
    return b"".join((
        _BC_OP.pack(INET_DIAG_BC_S_EQ, 8, 12), _BC_OP.pack(0, 0, port),
        _BC_OP.pack(INET_DIAG_BC_JMP, 4, 12),
        _BC_OP.pack(INET_DIAG_BC_D_EQ, 8, 12), _BC_OP.pack(0, 0, port),
    ))


def build_request(family: int, states: int, seq: int, bytecode: bytes | None = None) -> bytes:
    """A SOCK_DIAG_BY_FAMILY dump request for TCP sockets of ``family`` in ``states``."""
    body = _REQ_V2.pack(family, socket.IPPROTO_TCP, 0, 0, states) + bytes(_SOCKID_LEN)
    if bytecode:
        body += _RTATTR.pack(_RTATTR.size + len(bytecode), INET_DIAG_REQ_BYTECODE) + bytecode
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                          NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


# ----------------------------------------------------------------- replies
def iter_messages(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """Yield ``(chunk, offset)`` of every socket message in a dump's raw chunks.

    Decoding stays lazy: callers read the fields they need at the offsets
    above (``OFF_*``) or call ``parse_message``.
    """
    unpack_header = _NLMSGHDR.unpack_from
    for chunk in chunks:
        off, end = 0, len(chunk)
        while off + 16 <= end:
            length, mtype = unpack_header(chunk, off)[:2]
            if mtype == SOCK_DIAG_BY_FAMILY and length >= MIN_MSG_LEN:
                yield chunk, off
            if length < 16:
                break
            off += (length + 3) & ~3


def parse_message(chunk: bytes, off: int) -> TcpSocket:
    """Decode one ``inet_diag_msg`` at ``off`` (``iter_messages`` gives offsets)."""
    family, state, timer, retrans = chunk[off + OFF_FAMILY:off + OFF_SPORT]
    sport, dport = _PORTS.unpack_from(chunk, off + OFF_SPORT)
    alen = 4 if family == socket.AF_INET else 16
    src = socket.inet_ntop(family, chunk[off + OFF_SRC:off + OFF_SRC + alen])
    dst = socket.inet_ntop(family, chunk[off + OFF_DST:off + OFF_DST + alen])
    low, high = _COOKIE.unpack_from(chunk, off + OFF_COOKIE)
    expires, rqueue, wqueue, uid, inode = _MSG_TAIL.unpack_from(chunk, off + OFF_TAIL)
    return TcpSocket(family, STATE_NAMES.get(state, f"STATE_{state}"), (src, sport), (dst, dport),
                     rqueue, wqueue, TIMER_NAMES.get(timer, f"timer_{timer}"), expires, retrans,
                     inode, uid, low | high << 32)


def message_ports(chunk: bytes, off: int) -> tuple[int, int]:
    """(local port, remote port) of the message at ``off``, without decoding the rest."""
    return _PORTS.unpack_from(chunk, off + OFF_SPORT)  # type: ignore[return-value]


# ----------------------------------------------------------------- the client
class SockDiag:
    """A netlink sock_diag socket kept open for repeated dumps.

    Keeping it open matters: opening and binding a netlink socket costs more
    than a dump of the listening sockets. ``kernel_filter`` says whether the
    kernel accepted the port bytecode; when it did not (an old or unusual
    kernel answers EINVAL) the same dumps are filtered here instead.
    """

    RECV_SIZE = 64 * 1024  # the kernel fills at most ~32 KiB per dump message batch

    def __init__(self) -> None:
        if not hasattr(socket, "AF_NETLINK"):
            raise SockDiagError(errno.EAFNOSUPPORT, f"no AF_NETLINK on {sys.platform}")
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_SOCK_DIAG)
        try:
            self.sock.bind((0, 0))
            try:  # room for a whole dump burst; capped by net.core.rmem_max without privileges
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            except OSError:
                pass
        except OSError:
            self.sock.close()
            raise
        self._buf = bytearray(self.RECV_SIZE)
        self._view = memoryview(self._buf)
        self._seq = 0
        self._requests: dict[tuple[int, int, int | None], bytes] = {}
        self.kernel_filter: bool | None = None  # None until tried

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SockDiag":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ raw dumps
    def dump_raw(self, family: int, port: int | None = None, states: int = ALL_STATES
                 ) -> list[bytes]:
        """One dump as the raw reply chunks (see ``iter_messages``).

        With ``port``, the kernel filters by bytecode when it can; if it
        cannot, every socket comes back and callers must check the ports
        (``dump``, the observer do). Raises ``SockDiagError`` on NLMSG_ERROR.
        """
        if port is not None and self.kernel_filter is not False:
            try:
                chunks = self._dump(family, states, port)
                self.kernel_filter = True
                return chunks
            except SockDiagError as exc:
                if exc.errno != errno.EINVAL or self.kernel_filter:
                    raise
                self.kernel_filter = False  # this kernel refuses the bytecode: filter here
        return self._dump(family, states, None)

    def _dump(self, family: int, states: int, port: int | None) -> list[bytes]:
        self._seq = seq = (self._seq + 1) & 0xFFFFFFFF
        key = (family, states, port)
        template = self._requests.get(key)
        if template is None:
            bytecode = port_filter_bytecode(port) if port is not None else None
            template = self._requests[key] = build_request(family, states, 0, bytecode)
        request = bytearray(template)
        struct.pack_into("=I", request, 8, seq)
        self.sock.send(request)
        return self._receive(seq)

    def _receive(self, seq: int) -> list[bytes]:
        chunks: list[bytes] = []
        recv_into, view, unpack_header = self.sock.recv_into, self._view, _NLMSGHDR.unpack_from
        while True:
            try:
                size = recv_into(view)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the socket overran: this dump is incomplete
                    raise SockDiagError(errno.ENOBUFS, "sock_diag reply overran the socket buffer"
                                        ) from exc
                raise
            chunk = bytes(view[:size])
            # The common case: only socket messages, then (maybe) DONE at the very end.
            off = 0
            done = False
            while off + 16 <= size:
                length, mtype, _flags, mseq = unpack_header(chunk, off)[:4]
                if length < 16:
                    raise SockDiagError(errno.EBADMSG, f"netlink message of length {length}")
                if mseq != seq:  # left over from an interrupted earlier dump: skip it
                    off += (length + 3) & ~3
                    continue
                if mtype == NLMSG_DONE:
                    status = _ERRNO.unpack_from(chunk, off + 16)[0] if length >= 20 else 0
                    if status < 0:
                        raise SockDiagError(-status,
                                            f"sock_diag dump failed: {os.strerror(-status)}")
                    done = True
                    break
                if mtype == NLMSG_ERROR:
                    code = _ERRNO.unpack_from(chunk, off + 16)[0] if length >= 20 else -errno.EIO
                    if code:
                        raise SockDiagError(-code, f"sock_diag refused the request: "
                                                   f"{os.strerror(-code)}")
                elif mtype == NLMSG_OVERRUN:
                    raise SockDiagError(errno.ENOBUFS, "netlink overrun")
                off += (length + 3) & ~3
            chunks.append(chunk)
            if done:
                return chunks

    # ------------------------------------------------------------ decoded dumps
    def dump(self, port: int | None = None,
             families: Iterable[int] = (socket.AF_INET, socket.AF_INET6),
             states: int = ALL_STATES) -> list[TcpSocket]:
        """The TCP sockets whose local or remote port is ``port`` (all if None)."""
        out: list[TcpSocket] = []
        for family in families:
            chunks = self.dump_raw(family, port, states)
            for chunk, off in iter_messages(chunks):
                if port is not None and not self.kernel_filter \
                        and port not in message_ports(chunk, off):
                    continue
                out.append(parse_message(chunk, off))
        return out


def dump_tcp(port: int | None = None,
             families: Iterable[int] = (socket.AF_INET, socket.AF_INET6),
             states: int = ALL_STATES) -> list[TcpSocket]:
    """One-shot ``SockDiag().dump(...)``: opens and closes its own netlink socket."""
    with SockDiag() as diag:
        return diag.dump(port, families, states)


def sockdiag_available() -> tuple[bool, str]:
    """Whether sock_diag TCP dumps work here, and why not when they do not."""
    if not sys.platform.startswith("linux"):
        return False, f"sock_diag is a Linux netlink interface; this is {sys.platform}"
    try:
        with SockDiag() as diag:
            diag.dump_raw(socket.AF_INET, 0, LISTEN_ONLY)
            filtered = ("kernel-side port filter" if diag.kernel_filter
                        else "port filtered in Python")
    except (OSError, SockDiagError) as exc:
        return False, f"sock_diag unavailable: {exc}"
    return True, f"sock_diag netlink works ({filtered})"


# ----------------------------------------------------------------- /proc fallback
PROC_FILES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_address(family: int, text: str) -> tuple[str, int]:
    """``0100007F:1F90`` -> ("127.0.0.1", 8080).

    The kernel prints each 32-bit word of the (network order) address as a
    native integer, so packing the words back natively restores the bytes.
    """
    addr, _, port = text.partition(":")
    raw = b"".join(struct.pack("=I", int(addr[i:i + 8], 16)) for i in range(0, len(addr), 8))
    return socket.inet_ntop(family, raw), int(port, 16)


def parse_proc_line(family: int, line: str) -> TcpSocket:
    """Decode one data line of /proc/net/tcp or tcp6.

    Columns: sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout
    inode... For a LISTEN socket rx_queue is the accept queue; the backlog is
    not shown (wqueue is None). ``when`` is in clock ticks (USER_HZ).
    """
    f = line.split()
    family = int(family)  # an int, as sock_diag reports it (not socket.AddressFamily)
    state = int(f[3], 16)
    tx, rx = (int(x, 16) for x in f[4].split(":"))
    timer, when = (int(x, 16) for x in f[5].split(":"))
    return TcpSocket(family, STATE_NAMES.get(state, f"STATE_{state}"),
                     _proc_address(family, f[1]), _proc_address(family, f[2]),
                     rx, None if state == TCP_LISTEN else tx,
                     TIMER_NAMES.get(timer, f"timer_{timer}"),
                     when * 1000 // _CLOCK_TICKS if timer else 0,
                     int(f[6], 16), int(f[9]), int(f[7]), None)


def proc_net_tcp(port: int | None = None,
                 families: Iterable[int] = (socket.AF_INET, socket.AF_INET6)) -> list[TcpSocket]:
    """The same records as ``SockDiag.dump`` from /proc/net/tcp{,6} (text, slower).

    Cookies are not shown there (None), nor the listen backlog (None).
    """
    out: list[TcpSocket] = []
    needle = f":{port:04X} " if port is not None else ""
    for family in families:
        try:
            with open(PROC_FILES[family], encoding="ascii") as f:
                next(f, None)  # header
                for line in f:
                    # Cheap pre-check: the port appears as ":PPPP " after an address.
                    if needle and needle not in line:
                        continue
                    sock = parse_proc_line(family, line)
                    if port is None or sock.local[1] == port or sock.remote[1] == port:
                        out.append(sock)
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
    return out


def proc_listeners(port: int, families: Iterable[int] = (socket.AF_INET, socket.AF_INET6)
                   ) -> list[TcpSocket]:
    """The LISTEN sockets on ``port`` from /proc, reading only the file's head.

    The kernel lists listening sockets before all others and generates the
    file a page at a time, so stopping at the first non-listening line keeps
    this cheap even with thousands of connections.
    """
    out: list[TcpSocket] = []
    for family in families:
        try:
            with open(PROC_FILES[family], encoding="ascii") as f:
                next(f, None)
                for line in f:
                    if line.split(None, 4)[3] != "0A":
                        break
                    sock = parse_proc_line(family, line)
                    if sock.local[1] == port:
                        out.append(sock)
        except FileNotFoundError:
            continue
    return out


def proc_available() -> tuple[bool, str]:
    """Whether /proc/net/tcp can be read here."""
    try:
        with open(PROC_FILES[socket.AF_INET], encoding="ascii") as f:
            f.readline()
    except OSError as exc:
        return False, f"/proc/net/tcp unavailable: {exc}"
    return True, "/proc/net/tcp readable"
