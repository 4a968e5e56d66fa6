"""A process per connection (``fork``), the server lecture 3.4 compares threads with.

The parent accepts, forks a child for the connection, and closes its own copy of
the connected socket: after ``fork()`` two descriptors, one in each process, refer
to one socket, and the kernel closes the socket (FIN) only when the last of them is
closed. ``keep_parent_copy`` is the bug on purpose: the parent keeps its copy, the
child's ``close()`` is then not the last, no FIN leaves, and a client that waits
for the end of the answer waits until the server stops.

The child serves its one connection with blocking calls, as a connection thread
does, then exits; the parent reaps it (``process_exit``). A child that dies costs
its connection only.

What the trace shows:
- ``fork`` (the parent: which child serves the connection), every event with
  ``pid``, the process that made it, and ``thread`` its OS thread;
- each ``close`` with ``copy`` ("parent" or "child") and ``last`` (whether it closed
  the socket itself);
- the children's events reach the trace through a pipe each: the parent re-emits
  them with the time they happened (one monotonic clock for every process).

Stepping works across processes: a child held at the gate tells the parent, which
holds the action in its own gate (so the window sees and steps it like any other)
and answers the child when a step releases it.
"""
from __future__ import annotations

import mmap
import os
import selectors
import signal
import threading
import time
from dataclasses import dataclass, field

import orjson

from ..connection import Connection
from ..events import Event, Probe, TaggedProbe
from ..server import REFUSED, Server, Stats

_CHILD_WAIT = 5.0  # seconds a stopping server gives its children to finish
_FAILED = 70  # a child's exit code when serving raised (EX_SOFTWARE)
REAP_POLL = 0.005  # seconds between looks at children that are exiting
_STAT_NAMES = frozenset(Stats.__dataclass_fields__)


def available() -> tuple[bool, str]:
    if not hasattr(os, "fork"):
        return False, "this system has no fork() (Windows): use threaded"
    return True, ""


@dataclass
class Child:
    pid: int
    conn: str
    fd: int
    events: int  # the read end of the pipe its events come through
    control: int  # the write end of the pipe that releases its held actions
    buffer: bytes = b""
    held: list[threading.Thread] = field(default_factory=list)
    # A held action's thread answers the child under this lock, and only while the
    # control pipe is open: a closed fd's number may already be another file's.
    lock: threading.Lock = field(default_factory=threading.Lock)
    gone: bool = False


class _PipeSink:
    """A child's events, one JSON line each, into its pipe to the parent."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, event: Event) -> None:
        _write_all(self.fd, orjson.dumps(event.to_dict()) + b"\n")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _close_all_but(*keep: int) -> None:
    """Close every descriptor of this process but ``keep`` (close_range where the
    kernel has it). The Python objects of those closed stay unused in the child."""
    limit = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536
    low = 0
    for fd in sorted(set(keep)):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(limit, low))


class _PipeStats(Stats):
    """A child's counters: each change also goes to the parent, whose ``stats`` then
    count every process's requests, errors and EAGAINs as they happen."""

    _fd: int | None = None

    def __setattr__(self, name: str, value: int) -> None:
        delta = value - getattr(self, name, 0)
        object.__setattr__(self, name, value)
        if delta and self._fd is not None:
            _write_all(self._fd, b'{"stat":"%s","add":%d}\n' % (name.encode(), delta))


class _ChildGate:
    """The gate as a child sees it: enabled when the parent's is (one shared byte);
    a held action is asked of the parent, and waits for its answer."""

    def __init__(self, shared: mmap.mmap, events: int, control: int) -> None:
        self.shared = shared
        self.events = events
        self.control = control

    @property
    def enabled(self) -> bool:  # type: ignore[override]
        return self.shared[0] == 1

    def wait(self, action: str, conn: str | None, fd: int, thread: int) -> None:
        _write_all(self.events, orjson.dumps({"gate": action, "conn": conn, "fd": fd,
                                              "thread": thread}) + b"\n")
        os.read(self.control, 1)  # the parent's step (or stepping turned off)


class ProcessesServer(Server):
    mode = "processes"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.probe = TaggedProbe(self.probe, pid=os.getpid())  # type: ignore[assignment]
        self.children: dict[int, Child] = {}  # by the read end of its pipe
        self.kept: list[Connection] = []  # keep_parent_copy: the parent's copies, kept
        self.close_fields = {"copy": "parent", "last": True}
        self._shared = mmap.mmap(-1, 1)  # the gate's enabled, for the children to read
        self.gate.on_change = self._share_gate
        self._tid = 0
        self._sel: selectors.BaseSelector | None = None
        self._exiting: list[Child] = []  # their pipe ended, not reaped yet

    def _share_gate(self, enabled: bool) -> None:
        self._shared[0] = 1 if enabled else 0

    def busy(self) -> int:
        return len(self.children) + len(self.conns)

    # ------------------------------------------------------------ the parent
    def _run(self, tid: int) -> None:
        assert self.listener is not None
        self._tid = tid
        sel = selectors.DefaultSelector()  # the parent's own wait: not the lecture's, not traced
        sel.register(self.listener, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._sel = sel
        try:
            while not self._stopping:
                # (children that closed their pipe but had not exited yet: looked at again soon)
                for key, _ in sel.select(REAP_POLL if self._exiting else None):
                    if key.data == "wake":
                        self.drain_wakeup()
                    elif key.data == "listen":
                        if self._stopping:
                            break
                        conn = self.accept_one(tid, blocking=True)
                        if conn is not None and conn is not REFUSED:
                            self._fork(conn, tid)
                    else:
                        self._pump(key.data)
                if self._exiting:
                    self._reap_exited()
        finally:
            self._stop_children()
            sel.close()

    def _fork(self, conn: Connection, tid: int) -> None:
        opened: list[int] = []
        try:
            events_r, events_w = os.pipe()
            opened += (events_r, events_w)
            control_r, control_w = os.pipe()
            opened += (control_r, control_w)
            pid = os.fork()
        except OSError as exc:  # out of fds (pipe), at RLIMIT_NPROC (EAGAIN) or memory
            for fd in opened:
                os.close(fd)
            self.turn_away(conn, tid, "fork_failed",
                           f"{'fork' if len(opened) == 4 else 'pipe'}: {exc.strerror or exc}",
                           "no process could be started for this connection")
            return
        if pid == 0:  # the child: never returns
            code = _FAILED
            try:
                os.close(events_r)
                os.close(control_w)
                code = self._child(conn, events_w, control_r)
            finally:
                os._exit(code)
        os.close(events_w)
        os.close(control_r)
        child = Child(pid, conn.id, conn.fd, events_r, control_w)
        self.children[events_r] = child
        self._sel.register(events_r, selectors.EVENT_READ, child)
        probe = self.probe
        if probe.active:
            probe.emit("fork", conn.id, conn.fd, tid, child=pid)
        if self.config.keep_parent_copy:
            # The lecture's bug: the parent's descriptor stays open; the socket outlives
            # the child's close(), with no FIN, until the server stops.
            self.kept.append(conn)
            del self.conns[conn.fd]
        else:
            self.close_fields = {"copy": "parent", "last": False}
            try:
                conn.close("the child serves it")
            finally:
                self.close_fields = {"copy": "parent", "last": True}
        os.write(control_w, b"g")  # the child may serve now: the parent's copy is settled

    def _pump(self, child: Child) -> None:
        """Read what the child sent: its events (re-emitted as they happened), its
        requests to hold an action; at the end of the pipe, reap it."""
        try:
            data = os.read(child.events, 65536)
        except OSError:
            data = b""
        if not data:
            self._reap(child)
            return
        lines = (child.buffer + data).split(b"\n")
        child.buffer = lines.pop()
        probe = self.probe.probe  # type: ignore[attr-defined]  # (the child tagged its own pid)
        for line in lines:
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if "stat" in row:  # a counter of the child's
                name = row["stat"]
                if name in _STAT_NAMES:
                    setattr(self.stats, name, getattr(self.stats, name) + int(row["add"]))
                continue
            if "gate" in row:
                self._hold_for(child, row)
                continue
            if probe.active:
                row.pop("seq", None)
                row.pop("src", None)
                probe.emit_at(row.pop("t_ns"), row.pop("kind"), row.pop("conn", None),
                              row.pop("fd", -1), row.pop("thread", 0), **row)

    def _hold_for(self, child: Child, row: dict) -> None:  # type: ignore[type-arg]
        """A child's action waits at the gate: held here, in the parent's gate, by a
        thread that answers the child once a step (or the end of stepping) lets it go."""
        def hold() -> None:
            self.gate.wait(str(row["gate"]), row.get("conn"), int(row.get("fd", -1)),
                           int(row.get("thread", 0)))
            with child.lock:
                if child.gone:
                    return
                try:
                    os.write(child.control, b"r")
                except OSError:  # the child is gone
                    pass

        thread = threading.Thread(target=hold, name=f"gate-{child.pid}", daemon=True)
        child.held.append(thread)
        thread.start()

    def _reap(self, child: Child) -> None:
        """Its pipe ended: the child closed its descriptors, so it is exiting. Reaped now
        if it has exited, or at a later turn of the loop (never waited for here: the
        parent accepts on meanwhile)."""
        self._sel.unregister(child.events)
        del self.children[child.events]
        os.close(child.events)
        self._exiting.append(child)
        self._reap_exited()

    def _reap_exited(self, block: bool = False) -> None:
        for child in list(self._exiting):
            try:
                pid, status = os.waitpid(child.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                pid, status = child.pid, 0
            if pid == 0:
                continue  # still exiting
            self._exiting.remove(child)
            self._reaped(child, os.waitstatus_to_exitcode(status))

    def _reaped(self, child: Child, code: int) -> None:
        probe = self.probe
        if code != 0 and probe.active:
            probe.emit("error", child.conn, child.fd, self._tid, what="child_failed",
                       detail=(f"child {child.pid} killed by signal {-code}" if code < 0 else
                               f"child {child.pid} exited with {code}")
                       + ": its descriptors closed with it")
        if probe.active:
            probe.emit("process_exit", child.conn, -1, self._tid, child=child.pid,
                       status=code)
        for thread in child.held:
            thread.join(0.1)
        with child.lock:
            child.gone = True
            try:
                os.close(child.control)
            except OSError:
                pass

    def _stop_children(self) -> None:
        """Stopping: every child is asked to stop (SIGTERM: it shuts its connection down
        and exits); their last events are read; a child still there after the wait is
        killed. Then the copies the parent kept are closed: the last ones."""
        self.gate.disable()
        for child in list(self.children.values()):
            try:
                os.kill(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + _CHILD_WAIT
        while self.children and time.monotonic() < deadline:
            for key, _ in self._sel.select(0.05):
                if isinstance(key.data, Child):
                    self._pump(key.data)
        for child in list(self.children.values()):
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(child)
        self._reap_exited(block=True)  # every child gone before its parent's copies go
        for conn in self.kept:
            conn.close("server stopping")
        self.kept.clear()

    # ------------------------------------------------------------ the child
    def _child(self, conn: Connection, events: int, control: int) -> int:
        """Serve ``conn`` to the end in this process; its events go to the parent."""
        pid = os.getpid()
        parent_probe: Probe = self.probe.probe  # type: ignore[attr-defined]
        mine = Probe("server")
        if parent_probe.active:
            mine.add_sink(_PipeSink(events))
        conn.probe = TaggedProbe(mine, pid=pid)
        self.probe = conn.probe  # type: ignore[assignment]
        gate = _ChildGate(self._shared, events, control)
        conn.gate = gate  # type: ignore[assignment]
        self.gate = gate  # type: ignore[assignment]
        conn.tid = threading.get_native_id()
        stats = _PipeStats()
        object.__setattr__(stats, "_fd", events)
        self.stats = stats
        # What came with the fork and is not this child's: the listening socket, the
        # wakeup pair, the other children's pipes, (with keep_parent_copy) the parent's
        # kept copies of earlier connections, and whatever else the process had open
        # (a trace file, a capture socket, a test's own client sockets). Closed at once,
        # so that the socket of this connection has exactly two descriptors: the
        # parent's and this one, and no other connection gains one here.
        for sock in (self.listener, self._wake_r, self._wake_w, *(k.sock for k in self.kept)):
            if sock is not None:
                sock.close()
        try:
            signal.set_wakeup_fd(-1)  # (the parent's wakeup socket, closed above)
        except ValueError:
            pass
        _close_all_but(0, 1, 2, conn.fd, events, control)
        self.children.clear()
        self.kept.clear()
        self.conns = {conn.fd: conn}
        self.close_fields = {"copy": "child", "last": not self.config.keep_parent_copy}

        def stop(signum: int, frame: object) -> None:  # the parent is stopping
            self._stopping = True
            if conn in self.leaked:  # (never_close: released by close() alone, below)
                return
            try:
                conn.sock.shutdown(2)
            except OSError:
                pass

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
        os.read(control, 1)  # the parent has settled its copy
        if mine.active:
            mine.emit("thread_start", conn.id, conn.fd, conn.tid, name=f"child {pid}", pid=pid)
        self.serve_to_the_end(conn)
        while self.leaked and not self._stopping:  # never_close: a child that never closes
            signal.pause()  # lives on, holding its socket in CLOSE_WAIT, until the stop
        self._release_leaked()
        if mine.active:
            mine.emit("thread_exit", conn.id, -1, conn.tid, name=f"child {pid}", pid=pid)
        return 0
