"""Lessons on what the kernel keeps after (or before) the program: TIME_WAIT and
SO_REUSEADDR, CLOSE_WAIT left by a server that never closes, and the accept
queue of a server that does not accept (the listen backlog), each written as a
lesson file; and what lesson files share: a free port, the merge of several
processes' traces into one, and what the kernel observer needs."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable

from engine.events import Event
from engine.trace import TraceWriter, read_trace

from .files import FILES
from .files import load as load_file

# ================================================================ recording helpers
def _free_port() -> int:
    """A port nobody uses now (bind port 0, read it, let it go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _merge(out: Path, traces: list[Path], extra: list[Event], **header: object) -> Path:
    """One trace from several processes' (one monotonic clock on one machine):
    their events in time order, numbered again; then ``extra`` events, each with
    a fresh seq beyond the others, at their own times."""
    events: list[Event] = []
    for path in traces:
        if path.exists():
            events.extend(read_trace(path).events)
    events.sort(key=lambda e: (e.t_ns, e.src != "server"))
    writer = TraceWriter(out, header={"role": "lesson", "merged": [p.name for p in traces],
                                      **header})
    seq = 0
    try:
        for e in events:
            seq += 1
            writer(e._replace(seq=seq))
        for e in extra:
            seq += 1
            writer(e._replace(seq=seq))
    finally:
        writer.close()
    if writer.failed is not None:  # a full disk: the lesson's recording is not whole
        raise writer.failed
    return out


def _needs_kernel(why: str) -> Callable[[], tuple[bool, str]]:
    """A lesson's ``needs``: the kernel observer must be able to run here; ``why``
    (with ``{reason}``, the observer's) says what the lesson wants it for."""
    def needs() -> tuple[bool, str]:
        from engine.kernel.observer import KernelObserver
        ok, reason = KernelObserver.available()
        return (True, "") if ok else (False, why.format(reason=reason))
    return needs


# A lesson file's needs = ["kernel"].
_needs_kernel_here = _needs_kernel(
    "this lesson shows states only the kernel can tell (sock_diag), and the kernel observer "
    "cannot run here: {reason}")


def _needs_lab_faults() -> tuple[bool, str]:
    """A lesson file's needs = ["lab"]: a private network namespace, and nftables to drop
    the fault's segment in it."""
    from engine.lab import faults_available, lab_available
    for ok, reason in (lab_available(), faults_available()):
        if not ok:
            return False, f"this lesson drops a segment in the lab, which cannot run here: {reason}"
    return True, ""


# ================================================================ 7. time-wait
# Written as a lesson file (files/time-wait.toml): three engines on one port, the second
# of which must fail to start (its trace holds the EADDRINUSE it met).
TIME_WAIT = load_file(FILES / "time-wait.toml")


# ================================================================ 8. close-wait
# Written as a lesson file (files/close-wait.toml).
CLOSE_WAIT = load_file(FILES / "close-wait.toml")


# ================================================================ 9. backlog
# Written as a lesson file (files/backlog.toml; its client is scripts.py's
# held-accept-queue, the engine held before epoll_wait and released a step at a time).
BACKLOG_LESSON = load_file(FILES / "backlog.toml")

# The lab drops the handshake's last ACK (files/lost-ack.toml).
LOST_ACK = load_file(FILES / "lost-ack.toml")

LESSONS = [TIME_WAIT, CLOSE_WAIT, BACKLOG_LESSON, LOST_ACK]
