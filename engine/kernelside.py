"""The kernel side: packet capture and the kernel's reports in a process of their own.

Where packets can be captured, ``sockscope serve`` records three more sources
beside its server: the captured segments, the TCP states they imply, and the
kernel's word on those states (the tracepoint, sock_diag). Parsing every
segment in Python costs about as much CPU as serving it, and in the server's
own interpreter that CPU is the GIL the server's loop needs: under wrk the
capture thread alone took 60 % of a core, and the server ran at a fifth of its
untraced speed. So these sources run in a child process, and the server
process only emits its own events.

How the two processes meet:

* The child is forked before the engine starts any thread (``fork``), so it
  has every module the parent has imported, and forking is safe. It waits for
  the server's port (the server binds after), then starts the same sources the
  engine would start in-process, with one sink: a trace writer whose stream is
  a pipe to the parent. The lines it prints (what it captures, how the states
  are known) go through a second pipe, and the parent prints them where they
  always stood, so ``serve``'s output reads the same.
* The parent copies the child's lines, whole and undecoded, into its trace
  file and to the control port's clients (``raw``): no parsing, no JSON, a
  read and a queue per 64 KiB. Every event keeps its own time (the kernel's
  stamp for a segment), so a reader orders the trace by ``t_ns`` as it
  always has (the tracepoint's and the capture's events always came late).
  The child's sequence numbers start at ``SEQ_BASE``, apart from the server's.
* Stopping: the parent closes the command pipe; the child stops its sources
  (each reads what the kernel still holds), flushes, and exits; the parent
  reads its pipe to the end before it closes the trace. A child that cannot
  capture says why, and the parent derives the segments itself, as before.
* The child dies with the parent (``PR_SET_PDEATHSIG``) and ignores Ctrl+C,
  which reaches the whole process group: the parent stops it in order.

Linux only (packet capture is ``AF_PACKET``); elsewhere nothing forks.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from typing import Any, Callable

SEQ_BASE = 1 << 40  # the kernel side's first sequence number: never the server's
READY = "\0ready"
FAILED = "\0failed "
START_TIMEOUT_S = 15.0  # forked, started, its capture and tracer set up: well under a second
_CHUNK = 1 << 16


class KernelSide:
    """The parent's handle on the kernel-side process (see the module's text).

    ``fork(start)`` forks it; ``begin(port, sinks)`` hands it the port and
    waits until its sources run, printing their lines; ``stop()`` ends it and
    returns once its last line has reached the sinks."""

    def __init__(self, pid: int, command_w: int, status_r: int, trace_r: int) -> None:
        self.pid = pid
        self._command_w = command_w
        self._status_r = status_r
        self._trace_r = trace_r
        self._reader: threading.Thread | None = None
        self._sinks: list[Any] = []
        self.lines = 0  # events the child sent
        self.exit_code: int | None = None
        self._stopping = False
        self._probe: Any = None
        self._say: Callable[[str], None] = print

    @classmethod
    def fork(cls, start: Callable[[int, list], tuple[list, list, str | None]]
             ) -> "KernelSide | None":
        """Fork the kernel side. ``start(port, sinks)`` runs in the child: it starts the
        sources on ``sinks`` and returns (what to stop, unused, None), or says why the
        packets cannot be captured (third item). None where fork is missing."""
        if not hasattr(os, "fork"):
            return None
        command_r, command_w = os.pipe()
        status_r, status_w = os.pipe()
        trace_r, trace_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the parent's code
            code = 1
            try:
                for fd in (command_w, status_r, trace_r):
                    os.close(fd)
                code = _child(start, command_r, status_w, trace_w)
            except BaseException:  # noqa: BLE001 - said, then the child ends
                import traceback
                try:
                    traceback.print_exc()
                except Exception:  # noqa: BLE001
                    pass
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                except Exception:  # noqa: BLE001
                    pass
                os._exit(code)
        for fd in (command_r, status_w, trace_w):
            os.close(fd)
        return cls(pid, command_w, status_r, trace_r)

    def begin(self, port: int, sinks: list[Any], say: Callable[[str], None] = print,
              probe: Any = None) -> str | None:
        """Start the child's sources on the server's ``port``; its events go to ``sinks``
        (each with ``raw(count, data)``). Returns None once they run, or why not (the
        child has then ended). Should the child end before ``stop()`` (killed, crashed),
        the server serves on, and ``probe`` records why the packets and the kernel's
        reports stop there (an ``error`` event), as ``say`` does."""
        self._sinks = list(sinks)
        self._probe, self._say = probe, say
        try:
            os.write(self._command_w, f"{port}\n".encode())
        except OSError as exc:
            self._stopping = True
            self._end()
            return f"the kernel side ended before it started ({exc.strerror})"
        self._reader = threading.Thread(target=self._pump, name="sockscope-kernel-side",
                                        daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = b""
        while True:
            left = deadline - time.monotonic()
            # Each way out below but READY ends the child: as asked, so its pipe's end
            # is no death to report (``_stopping``: the pump says nothing).
            if left <= 0 or not select.select([self._status_r], [], [], left)[0]:
                self._stopping = True
                self._end(kill=True)
                return f"the kernel side did not start within {START_TIMEOUT_S:g} s"
            chunk = os.read(self._status_r, 4096)
            if not chunk:
                self._stopping = True
                self._end()
                return f"the kernel side ended as it started (exit code {self.exit_code})"
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if line == READY:
                    fd, self._status_r = self._status_r, -1  # the relay's from now on
                    threading.Thread(target=self._relay, args=(fd,),
                                     name="sockscope-kernel-side-says", daemon=True).start()
                    return None
                if line.startswith(FAILED):
                    self._stopping = True
                    self._end()
                    return line[len(FAILED):]
                say(line)

    def _relay(self, fd: int) -> None:
        """What the child says later (a source that stopped...): printed by the parent.
        This thread owns the status pipe from here on, and closes it at its end."""
        try:
            while chunk := os.read(fd, 4096):
                for line in chunk.decode("utf-8", "replace").splitlines():
                    print(line, flush=True)
        except (OSError, ValueError):
            pass
        finally:
            os.close(fd)

    def _pump(self) -> None:
        """The child's trace, whole lines at a time, to the sinks; its header left out."""
        pending = b""
        header = True
        read = os.read
        while True:
            try:
                chunk = read(self._trace_r, _CHUNK)
            except OSError:
                break
            if not chunk:
                if not self._stopping:
                    self._ended_early()
                break
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if not cut:
                continue
            data, pending = pending[:cut], pending[cut:]
            if header:
                header = False
                data = data[data.index(b"\n") + 1:]
                if not data:
                    continue
            count = data.count(b"\n")
            self.lines += count
            for sink in self._sinks:
                sink.raw(count, data)

    def _ended_early(self) -> None:
        """The child ended while the server serves (killed, crashed): said once, as an
        ``error`` event and a line; the server serves on without packets and states."""
        self._end()
        code = self.exit_code
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 \
            else f"exit code {code}"
        said = (f"the kernel side ended ({how}): captured packets and the kernel's reports "
                f"stop here; the server serves on")
        if self._probe is not None and self._probe.active:
            self._probe.emit("error", None, -1, threading.get_native_id(),
                             what="kernel_side_ended", detail=said, exit_code=code)
        try:
            self._say(f"sockscope: {said}")
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """Stop the child: its sources read what the kernel still holds, its last lines
        reach the sinks, then it exits (5 s at most, then it is killed)."""
        self._stopping = True
        if self._command_w >= 0:
            try:
                os.close(self._command_w)
            except OSError:
                pass
            self._command_w = -1
        if self._reader is not None:
            self._reader.join(10)
        self._end(kill=self._reader is not None and self._reader.is_alive())

    def _end(self, kill: bool = False) -> None:
        if self.exit_code is not None:
            return
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.01)
        # Closed once, and forgotten: a number closed twice may by then be another
        # file's (a client's socket).
        fds, (self._command_w, self._status_r, self._trace_r) = \
            (self._command_w, self._status_r, self._trace_r), (-1, -1, -1)
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _child(start: Callable[[int, list], tuple[list, list, str | None]], command_r: int,
           status_w: int, trace_w: int) -> int:
    from . import events
    from .lifetime import die_with_parent
    from .trace import TraceWriter
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it, in order
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()
    events.restart_sequence(SEQ_BASE)
    said = os.fdopen(status_w, "w", buffering=1, encoding="utf-8")
    sys.stdout = said  # the sources' lines ("packets: captured on lo...") go to the parent
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(command_r, 64)
        if not chunk:
            return 0  # the engine did not serve (it could not listen): nothing to do
        line += chunk
    port = int(line)
    stream = os.fdopen(trace_w, "wb")
    # Flushed every 10 ms (a full batch at once): the window sees a segment soon after
    # the server's own events, whatever the load.
    writer = TraceWriter("-", stream=stream, header={"role": "kernel"}, sink="kernel-side",
                         flush_interval=0.01, batch=256)
    started, _, problem = start(port, [writer])
    if problem is not None:
        for source in started:
            source.stop()
        said.write(FAILED + problem.replace("\n", " ") + "\n")
        return 0
    said.write(READY + "\n")
    while os.read(command_r, 64):  # until the engine closes the pipe
        pass
    for source in started:
        source.stop()
    writer.close()
    stream.close()
    return 0
