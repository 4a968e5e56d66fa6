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

Where packets cannot be captured (an ordinary user), the segments are derived
from the syscalls both ends make (``PacketDeriver``), and their states placed
and checked by sock_diag polls: in the server's interpreter, that halved the
traced server's rate. So the kernel side derives them too, fed the engine's own
events (``Feed``): the bytes the engine's trace writer serialized anyway, each
batch with the time before which every event is in it, through a third pipe.
The child parses only the kinds the deriver reads, and takes them in time
order up to that time: a delayed ACK is drawn once the answer that would have
carried it can no longer come, as in the server's process. A child that falls
behind costs time: past ``Feed.MAX_BYTES`` in memory, batches wait in a spill
file; only what that file cannot take is lost (counted, said by a ``dropped``
event), never the server or its trace.

Linux only (packet capture is ``AF_PACKET``, the observer is sock_diag); elsewhere
nothing forks.
"""
from __future__ import annotations

import os
import re
import select
import signal
import struct
import sys
import threading
import time
from collections import deque
from typing import Any, Callable

import orjson

SEQ_BASE = 1 << 40  # the kernel side's first sequence number: never the server's
READY = "\0ready"
FAILED = "\0failed "
START_TIMEOUT_S = 15.0  # forked, started, its capture and tracer set up: well under a second
_CHUNK = 1 << 16


_FRAME = struct.Struct("<qI")  # a feed's frame: every event before this time is in it; bytes
FED_START_TIMEOUT_S = 30.0  # a fed child reads what waits before it ends: allow for it
# The engine's events the kernel side reads: the deriver's (engine/capture/derived.py,
# PacketDeriver._take and _handle); every other line is left unparsed.
FED_KINDS = ("connect", "accept", "send", "recv", "shutdown", "close", "mode")
# Matched at each line's start (the writer's own field order, engine/trace.py: serialize):
# a line of another kind fails within its first 80 bytes, unparsed.
_FED_LINE = re.compile(rb'\{"seq":\d+,"t_ns":\d+,"src":"(?:server|client)","kind":"(?:'
                       + b"|".join(k.encode() for k in FED_KINDS) + rb')"')
# A thread of the engine may stamp an event, then lose the GIL before it reaches the
# writer's batch (for a switch interval, 5 ms, or several with many threads): the fed
# clock stays this far behind the time a batch says.
FED_GRACE_NS = 25_000_000


class Feed:
    """The engine's side of the feed: its trace writer's ``tap``. Batches wait in a
    queue that a thread writes to the pipe, so neither the server nor its trace ever
    waits for the kernel side. Past ``MAX_BYTES`` waiting in memory, batches wait in an
    unnamed file (``spill_dir``, the temporary folder by default), in order, and the
    kernel side reads them from there when it catches up: a slow kernel side (one core
    for everything, a long load test) costs time, not segments. Only what the file
    cannot take (``MAX_SPILL`` bytes, or a full disk) is dropped and counted
    (``dropped``), and a ``dropped`` event (sink "derive") says so."""

    MAX_BYTES = 64 << 20
    MAX_SPILL = 64 << 30

    def __init__(self, fd: int, spill_dir: str | None = None) -> None:
        self._fd = fd
        self._queue: deque[tuple[int, bytes]] = deque()
        self._bytes = 0
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._thread: threading.Thread | None = None
        self._spill_dir = spill_dir
        self._spill: Any = None  # the file frames wait in once memory holds enough
        self._spill_end = 0  # bytes of frames in it
        self._spill_sent = 0  # of which the pipe has taken
        self._in_flight: tuple[bytes, bool] | None = None  # (a frame's data, from the file)
        self._abandoned = False  # close() gave up waiting: what waited is counted there
        self.spilled = 0  # bytes that went through the file, in all
        self.dropped = 0  # events the kernel side never got
        self._reported = 0
        self.sent = 0  # bytes written to the pipe
        self.source: Any = None  # the TraceWriter whose tap this is
        self.probe: Any = None  # where a loss is said

    def attach(self, writer: Any) -> None:
        """Read every batch ``writer`` serializes, from now on."""
        self.source = writer
        writer.tap = self
        self.start()

    def start(self) -> "Feed":
        """Write what comes to the pipe, from now on (``attach`` starts it)."""
        thread = threading.Thread(target=self._run, name="sockscope-feed", daemon=True)
        thread.start()  # (RuntimeError with no thread left: then there is none to join)
        self._thread = thread
        return self

    def __call__(self, data: bytes, upto: int) -> None:
        """The writer's tap (called with its take lock held: append, or one write to the
        file, nothing more)."""
        with self._cond:
            if self._closed:  # the kernel side is gone: what it would have read is counted
                if data and not self._abandoned:
                    self.dropped += data.count(b"\n")
                return
            queue = self._queue
            if self._spill_end or (data and self._bytes + len(data) > self.MAX_BYTES):
                self._to_file(data, upto)  # behind: after what already waits there
                if len(queue) == 0:
                    self._cond.notify()
                return
            if data:
                self._bytes += len(data)
            elif queue and not queue[-1][1]:
                queue[-1] = (upto, b"")  # only time went on: one frame says it
                return
            queue.append((upto, data))
            if len(queue) == 1:
                self._cond.notify()

    def _to_file(self, data: bytes, upto: int) -> None:
        """A frame at the end of the spill file (the lock held); dropped if it cannot."""
        try:
            if self._spill is None:
                import tempfile
                self._spill = tempfile.TemporaryFile(prefix="sockscope-feed-",
                                                     dir=self._spill_dir)
            frame = _FRAME.pack(upto, len(data)) + data
            if self._spill_end + len(frame) > self.MAX_SPILL:
                raise OSError(27, "the feed's spill file is full")  # EFBIG
            fd = self._spill.fileno()
            done = 0
            while done < len(frame):
                done += os.pwrite(fd, frame[done:], self._spill_end + done)
            self._spill_end += len(frame)
            self.spilled += len(frame)
        except OSError:
            self.dropped += data.count(b"\n")

    def _run(self) -> None:
        fd = self._fd
        try:
            while True:
                spill = None
                with self._cond:
                    while not self._queue and not self._spill_end and not self._closed:
                        self._cond.wait()
                    if self._queue:  # what waits in memory came before the file's frames
                        upto, data = self._queue.popleft()
                        self._bytes -= len(data)
                        self._in_flight = (data, False)
                    elif self._spill_end:
                        spill, start = self._spill.fileno(), self._spill_sent
                    else:
                        return
                if spill is None:
                    _write_all(fd, _FRAME.pack(upto, len(data)), data)
                    self.sent += _FRAME.size + len(data)
                else:  # the next frame, as it was written: copied, not parsed
                    head, data = _frame_at(spill, start)
                    self._in_flight = (data, True)
                    _write_all(fd, head, data)
                    self.sent += len(head) + len(data)
                    with self._cond:
                        self._spill_sent += len(head) + len(data)
                        if self._spill_sent == self._spill_end:  # caught up: memory again
                            self._spill_sent = self._spill_end = 0
                            os.ftruncate(spill, 0)
                self._in_flight = None
                if self.dropped != self._reported:
                    self._report()
        except BaseException as exc:  # the kernel side is gone (it said so, or will)
            self._stopped(exc)
        finally:
            with self._cond:
                self._closed = True  # (whatever ended it: the tap only counts from here)
            self._release()

    def _stopped(self, exc: BaseException) -> None:
        """The feed cannot go on: every event not delivered is counted (once: close() may
        have counted what waited, if it gave up first), and said."""
        with self._cond:
            self._closed = True
            if self._abandoned:  # counted by close(), but the frame it left in flight
                lost = self._in_flight[0].count(b"\n") if self._in_flight else 0
                self.dropped += lost
                return
            waiting = [d for _, d in self._queue]
            self._queue.clear()
            self._bytes = 0
            in_flight = self._in_flight
            spill, start, end = self._spill, self._spill_sent, self._spill_end
        # Counted outside the lock (a big file takes a while; this thread owns it).
        lost = sum(d.count(b"\n") for d in waiting)
        if in_flight is not None and not in_flight[1]:
            lost += in_flight[0].count(b"\n")  # (one from the file is still in it)
        if spill is not None and end > start:
            lost += _lines_in(spill, start, end)
        with self._cond:
            self.dropped += lost
        if not isinstance(exc, OSError):  # a bug, not the kernel side's end: say it
            import traceback
            traceback.print_exception(exc)
        if self.dropped != self._reported:
            self._report()

    def _release(self) -> None:
        """The pipe and the spill file, closed by whoever ends last (once)."""
        with self._cond:
            fd, self._fd = self._fd, -1
            spill, self._spill = self._spill, None
            self._spill_end = self._spill_sent = 0
        try:
            if fd >= 0:
                os.close(fd)
        except OSError:
            pass
        try:
            if spill is not None:
                spill.close()
        except OSError:
            pass

    def _report(self) -> None:
        count = self.dropped - self._reported
        self._reported += count
        if self.probe is not None and self.probe.active:
            self.probe.emit("dropped", None, -1, 0, count=count, sink="derive",
                            reason="the kernel side did not read them (behind, or gone): "
                                   "segments derived from these events are missing")

    def close(self, timeout: float = FED_START_TIMEOUT_S) -> None:
        """What the writer holds, then the end: the kernel side reads to it. Past
        ``timeout`` (a kernel side that stopped reading: it is then killed), what still
        waits is counted as dropped; the thread closes the pipe as it ends."""
        source = self.source
        self.source = None
        if source is not None and not self._closed:
            source._take_batch()  # the last partial batch, with the time it was taken
            source.tap = None
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # (the tap is detached: nobody waits on the lock)
                with self._cond:
                    self._abandoned = True
                    self.dropped += sum(d.count(b"\n") for _, d in self._queue)
                    self._queue.clear()
                    if self._spill_end:  # what the file holds after the frame in flight
                        start = self._spill_sent
                        if self._in_flight is not None and self._in_flight[1]:
                            start += _FRAME.size + len(self._in_flight[0])
                        self.dropped += _lines_in(self._spill, start, self._spill_end)
                        self._spill_end = self._spill_sent = 0
        else:
            self._release()
        if self.dropped != self._reported:
            self._report()


def _frame_at(fd: int, start: int) -> tuple[bytes, bytes]:
    """The frame of the spill file ``fd`` at ``start``: its head and its lines."""
    head = os.pread(fd, _FRAME.size, start)
    if len(head) != _FRAME.size:
        raise OSError(5, "the feed's spill file ended early")
    size = _FRAME.unpack(head)[1]
    data = os.pread(fd, size, start + _FRAME.size)
    if len(data) != size:
        raise OSError(5, "the feed's spill file ended early")
    return head, data


def _lines_in(spill: Any, start: int, end: int) -> int:
    """Events in the frames of ``spill`` from ``start`` (a frame's start) to ``end``."""
    count = 0
    try:
        fd = spill.fileno()
        while start < end:
            head, data = _frame_at(fd, start)
            count += data.count(b"\n")
            start += len(head) + len(data)
    except (OSError, ValueError):
        pass
    return count


def _write_all(fd: int, head: bytes, data: bytes) -> None:
    done = os.writev(fd, [head, data]) if data else os.write(fd, head)
    if done < len(head) + len(data):  # a signal cut the write short
        rest = memoryview(head + data)
        while done < len(rest):
            done += os.write(fd, rest[done:])


class FedEvents:
    """The kernel side's end of the feed: parses the engine's events the deriver reads,
    hands the server's to ``server`` (a probe the deriver listens to) and the built-in
    clients' to ``clients``, and keeps the time up to which all of them came
    (``now``), which the deriver and the checks go by."""

    def __init__(self, fd: int) -> None:
        from .events import Probe
        self._fd = fd
        self.server = Probe("server")
        self.clients: list[Callable[[Any], None]] = []
        self.on_time: list[Callable[[], None]] = []  # called once time moved (each frame)
        self._upto = 0
        self.events = 0  # events handed on
        self.failures = 0  # lines that did not parse (never expected: ours)
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sockscope-fed", daemon=True)

    def now(self) -> int:
        """Every event of the engine stamped before this time has been handed on."""
        return self._upto - FED_GRACE_NS

    def start(self) -> "FedEvents":
        self._thread.start()
        return self

    def join(self, timeout: float) -> bool:
        return self.ended.wait(timeout)

    def _run(self) -> None:
        from .events import Event
        loads, from_dict = orjson.loads, Event.from_own_dict
        size = _FRAME.size
        unpack = _FRAME.unpack
        wanted = _FED_LINE.match
        try:
            with os.fdopen(self._fd, "rb", buffering=1 << 20) as f:
                read = f.read
                while True:
                    head = read(size)
                    if len(head) < size:
                        break
                    upto, n = unpack(head)
                    if n:
                        data = read(n)
                        if len(data) < n:
                            break
                        for line in data.split(b"\n"):
                            if not wanted(line):
                                continue
                            try:
                                event = from_dict(loads(line))
                            except (ValueError, TypeError, KeyError, AttributeError):
                                self.failures += 1
                                continue
                            self._hand_on(event)
                    if upto > self._upto:
                        self._upto = upto
                        self._time_moved()
        except OSError:
            pass
        finally:
            # The engine ended its feed: nothing more can come.
            self._upto = max(self._upto, time.monotonic_ns() + FED_GRACE_NS)
            self._time_moved()
            self.ended.set()

    def _time_moved(self) -> None:
        for tick in self.on_time:
            try:
                tick()
            except Exception:  # noqa: BLE001 - the feed reads on
                self.failures += 1

    def _hand_on(self, event: Any) -> None:
        self.events += 1
        src = event[2]
        if src == "server":
            self.server.forward(event)
        elif src == "client":
            for sink in self.clients:
                try:
                    sink(event)
                except Exception:  # noqa: BLE001 - one sink's failure is not the feed's
                    self.failures += 1


class KernelSide:
    """The parent's handle on the kernel-side process (see the module's text).

    ``fork(start)`` forks it; ``begin(port, sinks)`` hands it the port and
    waits until its sources run, printing their lines; ``stop()`` ends it and
    returns once its last line has reached the sinks."""

    def __init__(self, pid: int, command_w: int, status_r: int, trace_r: int,
                 feed_w: int = -1) -> None:
        self.pid = pid
        # Derived segments: the engine's events go to the child (``attach_feed``).
        self.feed: Feed | None = Feed(feed_w) if feed_w >= 0 else None
        self._ending = threading.Lock()
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

    not_started: str | None = None  # why the last fork() made none (said by the caller)

    @classmethod
    def fork(cls, start: Callable[[int, list, "FedEvents | None"], tuple[list, list, str | None]],
             fed: bool = False) -> "KernelSide | None":
        """Fork the kernel side. ``start(port, sinks, fed)`` runs in the child: it starts
        the sources on ``sinks`` and returns (what to stop, unused, None), or says why
        the packets cannot be captured (third item). ``fed``: the child reads the
        engine's events (``FedEvents``, handed to ``start``; the parent's ``feed``).
        None where fork is missing."""
        if not hasattr(os, "fork"):
            return None
        made: list[int] = []
        try:
            for _ in range(4 if fed else 3):
                made.extend(os.pipe())
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except OSError as exc:  # no file or process left (a low ulimit): all in this process
            for fd in made:
                os.close(fd)
            KernelSide.not_started = exc.strerror or str(exc)
            return None
        command_r, command_w, status_r, status_w, trace_r, trace_w = made[:6]
        feed_r, feed_w = made[6:8] if fed else (-1, -1)
        if fed and pid:
            _widen(feed_w)
        if pid == 0:  # the child: never returns into the parent's code
            code = 1
            try:
                for fd in (command_w, status_r, trace_r, feed_w):
                    if fd >= 0:
                        os.close(fd)
                code = _child(start, command_r, status_w, trace_w, feed_r)
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
        for fd in (command_r, status_w, trace_w, feed_r):
            if fd >= 0:
                os.close(fd)
        return cls(pid, command_w, status_r, trace_r, feed_w)

    def attach_feed(self, writer: Any, probe: Any = None) -> bool:
        """Feed the child every event ``writer`` records from now on (``probe``: where
        a loss of the feed is said). Before the server makes any. False when the feed's
        thread cannot start (the limit on processes): the kernel side is no use then."""
        if self.feed is not None:
            self.feed.probe = probe
            try:
                self.feed.attach(writer)
            except RuntimeError:
                writer.tap = None
                self.feed.source = None
                return False
        return True

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
        reader = threading.Thread(target=self._pump, name="sockscope-kernel-side", daemon=True)
        try:
            reader.start()
        except RuntimeError as exc:  # no thread left (the limit on processes): none at all
            self._stopping = True
            self._end(kill=True)
            return f"the kernel side's reader could not start ({exc})"
        self._reader = reader
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
                    try:
                        threading.Thread(target=self._relay, args=(fd,),
                                         name="sockscope-kernel-side-says", daemon=True).start()
                    except RuntimeError:  # (no thread left: its later lines go unsaid)
                        os.close(fd)
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
        fd = self._trace_r  # this thread's: it closes it as it ends (``_end`` does not)
        try:
            self._pump_from(fd)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass

    def _pump_from(self, fd: int) -> None:
        pending = b""
        header = True
        read = os.read
        while True:
            try:
                chunk = read(fd, _CHUNK)
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
        packets = "derived" if self.feed is not None else "captured"
        said = (f"the kernel side ended ({how}): {packets} packets and the kernel's reports "
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
        if self.feed is not None:
            self.feed.close()  # the child reads to its end, then stops its sources
        if self._command_w >= 0:
            try:
                os.close(self._command_w)
            except OSError:
                pass
            self._command_w = -1
        if self._reader is not None:
            self._reader.join(FED_START_TIMEOUT_S if self.feed is not None else 10)
        self._end(kill=self._reader is not None and self._reader.is_alive())

    def _end(self, kill: bool = False) -> None:
        with self._ending:  # (the pump, seeing the child die, and stop() may both end it)
            self._end_locked(kill)

    def _end_locked(self, kill: bool) -> None:
        if self.exit_code is not None:
            return
        if self.feed is not None:  # a child that ends (or never began) is fed no more
            self.feed.close(timeout=0 if kill else 1)
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
        if self._reader is not None:  # the pump's, closed by the pump as it ends
            fds = fds[:2]
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _widen(fd: int) -> None:
    """A pipe of 1 MiB (Linux's default most a user may ask), not 64 KiB: fewer wakeups."""
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (OSError, ImportError):
        pass


# The kernel side's bulk work (its threads by name) runs at a lower priority than the
# server: the server's loop gets a core first, and they catch up from what holds their
# input (the capture's ring, 16 MB; the feed's pipe and its spill file), so that under
# a load on two cores the server is not made to wait for them. Not the observer's and
# the tracepoint reader's threads: when a sock_diag dump or a state change is read is
# part of what they tell.
BULK_THREADS = ("sockscope-capture", "sockscope-capture-decode", "sockscope-fed",
                "sockscope-trace")
BULK_NICE = 10


def yield_to_the_server() -> list[str]:
    """Lower the kernel side's bulk threads' priority (``BULK_NICE`` more than now; Linux
    sets it per thread); returns the names of those lowered."""
    if not hasattr(os, "setpriority") or sys.platform != "linux":
        return []
    lowered = []
    for thread in threading.enumerate():
        if thread.name in BULK_THREADS and thread.native_id is not None:
            try:
                now = os.getpriority(os.PRIO_PROCESS, thread.native_id)
                os.setpriority(os.PRIO_PROCESS, thread.native_id, min(19, now + BULK_NICE))
            except OSError:  # (gone already, or not allowed: it keeps its priority)
                continue
            lowered.append(thread.name)
    return lowered


def _child(start: Callable[[int, list, "FedEvents | None"], tuple[list, list, str | None]],
           command_r: int, status_w: int, trace_w: int, feed_r: int = -1) -> int:
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
    # As in the server (engine/cli.py): nothing here builds cycles, and under load the
    # default thresholds run young collections thousands of times a second.
    import gc
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    fed = FedEvents(feed_r) if feed_r >= 0 else None
    try:
        # Flushed every 10 ms (a full batch at once): the window sees a segment soon
        # after the server's own events, whatever the load.
        writer = TraceWriter("-", stream=stream, header={"role": "kernel"},
                             sink="kernel-side", flush_interval=0.01, batch=256)
        started, _, problem = start(port, [writer], fed)
        if fed is not None and problem is None:
            fed.start()
    except (OSError, RuntimeError) as exc:  # a thread or a file it could not have (limits)
        said.write(f"{FAILED}the kernel side could not start its sources ({exc})\n")
        return 0
    if problem is not None:
        for source in started:
            source.stop()
        said.write(FAILED + problem.replace("\n", " ") + "\n")
        return 0
    yield_to_the_server()
    said.write(READY + "\n")
    while os.read(command_r, 64):  # until the engine closes the pipe
        pass
    if fed is not None:  # the engine closed the feed first: what it still holds, read
        fed.join(FED_START_TIMEOUT_S)
    for source in started:
        source.stop()
    writer.close()
    stream.close()
    return 0
