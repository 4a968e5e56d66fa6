"""The lab: a private network namespace where real packets can be captured
without root, and where one chosen segment can be dropped on purpose.

``enter_lab()`` moves the calling process into a new user namespace (where it
is root) with a new network namespace (its own loopback). There it may open
AF_PACKET sockets and run nftables on its own loopback, and nothing it does
touches the host's network. The server and the built-in clients must run in
the same process (or its children): nothing outside can reach the lab.

It must run before any thread starts (unshare of a user namespace refuses
multithreaded processes), so the CLI calls it first thing. Where the kernel
or the distribution forbids unprivileged user namespaces, ``lab_available``
says exactly which setting does.

Faults (``install_faults``) use nftables' ``quota``: a rule that matches
until 100 bytes have passed drops exactly one segment of 52-80 bytes; the
kernel then retransmits it (a SYN after 1 s, doubling each time).
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

# name -> (nft match, what the lesson shows)
FAULTS: dict[str, tuple[str, str]] = {
    "drop-syn": ("tcp dport {port} tcp flags & (syn|ack) == syn",
                 "the client's SYN is lost: it retransmits after about 1 s (SYN_SENT meanwhile)"),
    "drop-synack": ("tcp sport {port} tcp flags & (syn|ack) == syn|ack",
                    "the server's SYN-ACK is lost: the server retransmits it (SYN_RECV meanwhile)"),
    "drop-ack": ("tcp dport {port} tcp flags & (syn|ack|fin|rst|psh) == ack",
                 "the handshake's final ACK is lost: the client is ESTABLISHED, the server "
                 "still SYN_RECV until the client's data (or the SYN-ACK retransmission) fixes it"),
    "drop-fin": ("tcp dport {port} tcp flags & fin == fin",
                 "the client's FIN is lost: it retransmits it; the server reads end-of-file late"),
    "drop-server-fin": ("tcp sport {port} tcp flags & fin == fin",
                        "the server's FIN is lost: it stays in FIN_WAIT_1 and retransmits"),
}


# The same matches in Python: the capture sees a segment on the wire before the input
# hook drops it, and marks the one each rule drops (``FaultMarks``).
# name -> (sent to the server's port?, the test on the segment's flags)
_FAULT_SEGMENTS = {
    "drop-syn": (True, lambda f: "SYN" in f and "ACK" not in f),
    "drop-synack": (False, lambda f: "SYN" in f and "ACK" in f),
    "drop-ack": (True, lambda f: "ACK" in f and not f & {"SYN", "FIN", "RST", "PSH"}),
    "drop-fin": (True, lambda f: "FIN" in f),
    "drop-server-fin": (False, lambda f: "FIN" in f),
}


class FaultMarks:
    """Which captured segment each fault's rule dropped: the first to match it (its quota
    lets no second one through). Call it with a captured segment's fields; it returns
    the fault's name for the dropped one, else None. Thread-safe enough for one capture
    thread, which is its only caller."""

    def __init__(self, faults: list[str], port: int) -> None:
        self.port = int(port)
        self._waiting = {name: _FAULT_SEGMENTS[name] for name in faults
                         if name in _FAULT_SEGMENTS}

    def __call__(self, fields: dict) -> str | None:  # type: ignore[type-arg]
        if not self._waiting:
            return None
        flags = set(str(fields.get("flags") or "").split("|"))
        to_server = fields.get("dport") == self.port
        for name, (inbound, test) in self._waiting.items():
            if inbound == to_server and test(flags):
                del self._waiting[name]
                return name
        return None


class LabError(RuntimeError):
    pass


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def lab_available() -> tuple[bool, str]:
    """Whether this machine lets an ordinary user create the lab, and if not, why."""
    if not sys.platform.startswith("linux"):
        return False, f"the lab needs Linux network namespaces; this is {sys.platform}"
    if os.geteuid() == 0:
        return True, "running as root: a network namespace needs no user namespace"
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return False, "user namespaces are disabled (sysctl user.max_user_namespaces = 0)"
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return False, ("unprivileged user namespaces are disabled "
                       "(sysctl kernel.unprivileged_userns_clone = 0)")
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return False, ("AppArmor restricts unprivileged user namespaces "
                       "(sysctl kernel.apparmor_restrict_unprivileged_userns = 1)")
    return True, "unprivileged user namespaces are allowed"


def faults_available() -> tuple[bool, str]:
    if shutil.which("nft") is None:
        return False, "nft (nftables) is not installed: apt-get install nftables"
    return True, "nftables present"


def enter_lab() -> None:
    """Move this process into its own network namespace (and a user namespace
    when not root), with the loopback up. Call before starting any thread."""
    ok, reason = lab_available()
    if not ok:
        raise LabError(reason)
    if threading.active_count() > 1:
        raise LabError("enter_lab() must run before any thread starts")
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNET if uid == 0 else CLONE_NEWUSER | CLONE_NEWNET
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise LabError(f"unshare failed: {os.strerror(err)}"
                       + (" (user namespaces are restricted here)" if err == errno.EPERM else ""))
    if uid != 0:
        # Become root inside: our uid and gid mapped to 0.
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    _loopback_up()


def _loopback_up() -> None:
    import fcntl  # (here: this module is imported on Windows too, where there is none)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, bytes(14))
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, bytes(14)))


def wait_until_closed(port: int, timeout: float = 3.0) -> bool:
    """Wait (bounded) until every connection on ``port`` has finished closing: no socket
    of the port left but the listener and TIME_WAIT ones. A dropped FIN is resent some
    200 ms later; ``--exit-after-load`` waits for it here rather than stopping the
    server (and the capture) before the retransmission the fault promises is seen.
    Returns False when ``timeout`` passed first (or the kernel cannot be asked)."""
    import time
    from .kernel.sockdiag import SockDiagError, dump_tcp, proc_net_tcp
    deadline = time.monotonic() + timeout
    while True:
        try:
            sockets = dump_tcp(port)
        except (OSError, SockDiagError):
            try:
                sockets = proc_net_tcp(port)
            except OSError:
                return False
        if all(s.state in ("LISTEN", "TIME_WAIT", "CLOSE") for s in sockets):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def install_faults(port: int, faults: list[str]) -> list[str]:
    """Drop one matching segment per fault, on this namespace's input path.

    Returns the lessons the faults show. Raises LabError with nft's own message."""
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise LabError(f"unknown fault {unknown[0]!r}: choose from {', '.join(FAULTS)}")
    ok, reason = faults_available()
    if not ok:
        raise LabError(reason)
    rules = "\n".join(f"    {FAULTS[f][0].format(port=port)} quota until 100 bytes counter drop"
                      for f in faults)
    ruleset = ("table inet sockscope_lab {\n  chain input {\n"
               "    type filter hook input priority 0; policy accept;\n"
               f"{rules}\n  }}\n}}\n")
    proc = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True,
                          timeout=10)
    if proc.returncode != 0:
        raise LabError(f"nft refused the fault rules: {proc.stderr.strip()}")
    return [FAULTS[f][1] for f in faults]
