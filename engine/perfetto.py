"""Chrome trace-event JSON from a trace: open it in ui.perfetto.dev or chrome://tracing.

``sockscope export TRACE --perfetto OUT.json`` writes the JSON object format
(``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``) of the
Trace Event Format, one event per line, streaming: the trace is read batch by batch
(``iter_batches``) and each batch's events are written before the next is read, so
a recording of a million events never sits in memory, nor twice. What is kept is
per connection (a few numbers each: when it began and ended, where its flow is)
and per track (its name).

What the file shows
- Processes and threads ("M" metadata): the server (the trace header's ``pid``, or
  an event's own ``pid``: a forked child), one thread track per ``thread``; the
  built-in clients as a process of their own, "clients"; the kernel's word (TCP
  states, one track per side, and the observers' threads: sock_diag, the
  tracepoint) as "kernel"; the packets as "capture"; the engine's own notes as
  "engine". These processes have made-up pids above Linux's largest
  (``pid_max`` is at most 2**22), so none is ever a real one.
- Every syscall and HTTP step as a complete slice ("X"). An event is a point in
  time (its ``t_ns``, taken when the call returned): its slice lasts 0 µs, except
  where the event says how long it took: ``wait``'s ``blocked_ns`` (gevent's hub;
  an ``epoll_wait`` that had one too), ``gate``'s ``held_ns`` (stepping),
  ``poll_sweep``'s ``since_ns`` (idle sweeps in a row); such a slice never begins
  before the previous slice on its thread (gevent's hub counts from its prepare
  watcher, and its callbacks run after that: the thread was busy, not blocked;
  the recorded figure stays in the args). ``epoll_wait`` records no
  blocked time: the gap before it on its thread is where it slept, but the trace
  does not say so and the slice does not pretend.
- Each connection as an async slice ("b"/"e", cat ``connection``, name: the
  connection id, ``id2.local``: its number in order of appearance, an id of the
  server process's own, so that viewers draw the row under it) from its first SYN (or,
  without packets, its accept or connect; failing those its first event) to its
  last ``tcp_state`` CLOSED (failing that its last ``close``; failing that the end
  of the trace, with ``open_at_end``).
- TCP state changes as thread-scoped instants ("i", cat ``tcp_state``) named
  "SYN_RECV → ESTABLISHED", one track per side.
- Counters ("C"): ``ready list`` (the length of each ``epoll_wait``/``wait``'s
  ready list), ``open connections`` (accepted minus closed by the server),
  ``accept queue`` (``accept_queue`` events' length), ``cpu`` (percent).
- Flow arrows ("s"/"t"/"f", cat ``flow``, name ``connection``, the connection's
  number as id, ``"bp": "e"``) per connection: SYN → accept → each request →
  the server's close. A flow event binds to the slice enclosing it on its thread
  at its time: each is written right after its slice, with the same pid, tid and
  ts (Perfetto binds to the topmost open slice of the track; chrome://tracing to
  the slice enclosing ``ts``; a 0 µs slice at that ts is both). A SYN may be
  written to the trace after the accept it led to (the capture thread writes late):
  until a connection's SYN is seen its first server step is held, and becomes the
  flow's start ("s") if no SYN ever comes.

Timestamps are microseconds (floats, nanosecond precision) from the earliest event
of the trace's first batch (a capture written late can still be earlier: its ts is
then negative, never moved). Events are written in time order: the newest 16,384
rows are held back and sorted with the next batch, so what the trace holds late (a
capture thread's packets, the tracepoint's per-CPU buffers, written milliseconds
after the syscalls) lands in its place; the connections' async slices and the track
names come last.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Iterator

import orjson

from .trace import iter_batches

__all__ = ["export_perfetto", "PerfettoExport", "CLIENTS_PID", "KERNEL_PID", "CAPTURE_PID",
           "ENGINE_PID"]

# Linux's pid_max is at most 2**22: pids and tids above it are never real ones.
_FAKE = 2**22
CLIENTS_PID = _FAKE + 1
KERNEL_PID = _FAKE + 2
CAPTURE_PID = _FAKE + 3
ENGINE_PID = _FAKE + 4
_SIDE_TIDS = _FAKE + 16  # kernel: one track of TCP states per side, from here on

SYSCALLS = frozenset(("listen", "accept", "connect", "recv", "send", "eagain", "shutdown",
                      "close", "epoll_ctl", "epoll_wait", "interest", "wait", "poll_sweep",
                      "fork"))
_CATS = {"request": "http", "response": "http", "packet": "packet", "state_check": "kernel",
         "retransmit": "kernel", "reset": "kernel"}
_TIMED = frozenset(("wait", "epoll_wait", "gate", "poll_sweep"))  # may say how long they took
REORDER = 16384  # rows held back to put late-written events in their place
_TS = itemgetter("ts")
_OBSERVERS = {"observed": "sock_diag", "traced": "tracepoint"}
_PROCESS_ORDER = {CLIENTS_PID: 1, KERNEL_PID: 2, CAPTURE_PID: 3, ENGINE_PID: 4}


@dataclass
class PerfettoExport:
    """What ``export_perfetto`` wrote: trace events, connections, and what the reader
    skipped (a truncated last line)."""
    events: int = 0
    connections: int = 0  # opened in the trace
    older: int = 0  # sockets the kernel observer found on the port at its start: not opened here
    problems: list[str] = field(default_factory=list)


class _Conn:
    """One connection, as much as the export keeps of it."""
    __slots__ = ("number", "first", "opened", "opened_by", "closed", "close", "flow", "held",
                 "syn", "predates")

    def __init__(self, number: int, t_ns: int) -> None:
        self.number = number
        self.first = t_ns  # its earliest event
        self.opened = -1  # its first SYN, or else its accept or connect (earliest)
        self.opened_by = ""
        self.closed = -1  # its last tcp_state CLOSED
        self.close = -1  # its last close
        self.predates = False  # its first event: the observer's first look (no previous)
        self.flow = 0  # 0: nothing yet, 1: a server step held (no SYN seen), 2: started
        self.held: tuple[float, int, int] | None = None  # (ts, pid, tid) of that step
        self.syn = False


class _Exporter:
    def __init__(self, header: dict[str, Any], base_ns: int, out: IO[bytes]) -> None:
        self.out = out
        self.base = base_ns
        pid = header.get("pid")
        self.server_pid = pid if type(pid) is int and 0 < pid <= _FAKE else _FAKE + 8
        self.header = header
        self.conns: dict[str, _Conn] = {}
        self.open: set[str] = set()  # accepted by the server and not yet closed by it
        self.threads: dict[tuple[int, int], str] = {}  # (pid, tid) -> name
        self.kinds: dict[tuple[int, int], set[str]] = {}  # observers' threads: what they do
        self.processes: dict[int, str] = {}
        self.sides: dict[str, int] = {}
        self.lasts: dict[tuple[int, int], int] = {}  # per thread track: its last slice's t_ns
        self.pending: list[dict[str, Any]] = []  # rows waiting to be written in time order
        self.mode = ""
        self.written = 0
        self.last_ns = base_ns
        self._sep = b""

    # ------------------------------------------------------------------ output
    def queue(self, rows: list[dict[str, Any]]) -> None:
        """Rows of a batch, written in time order: the newest ``REORDER`` rows wait for
        the next batch, so an event written late to the trace (a capture thread, the
        tracepoint's per-CPU buffers) still lands in its place; one later than that is
        written where it comes (a viewer sorts anyway)."""
        pending = self.pending
        pending += rows
        if len(pending) > 2 * REORDER:
            pending.sort(key=_TS)  # stable: a flow stays after its slice at the same ts
            cut = len(pending) - REORDER
            self.write(pending[:cut])
            del pending[:cut]

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dumps = orjson.dumps
        self.out.write(self._sep + b",\n".join([dumps(r) for r in rows]))
        self._sep = b",\n"
        self.written += len(rows)

    # ------------------------------------------------------------------ tracks
    def _track(self, src: str, thread: int, data: dict[str, Any]) -> tuple[int, int]:
        if src == "server":
            pid = data.get("pid")
            if type(pid) is not int or not 0 < pid <= _FAKE:
                pid = self.server_pid
        elif src == "client":
            pid = CLIENTS_PID
        elif src == "kernel":
            pid = KERNEL_PID
        elif src == "capture":
            pid = CAPTURE_PID
        else:
            pid = ENGINE_PID
        tid = thread if 0 < thread <= _FAKE else pid
        key = (pid, tid)
        if key not in self.threads:
            self.threads[key] = self._thread_name(src, pid, tid)
            if pid not in self.processes:
                self.processes[pid] = src
        return key

    def _thread_name(self, src: str, pid: int, tid: int) -> str:
        if src == "server":
            return "main thread" if tid == pid else f"thread {tid}"
        if src == "client":
            return f"client {tid}" if tid != pid else "client"
        return f"{src} {tid}" if tid != pid else src

    def _side_track(self, side: str) -> tuple[int, int]:
        tid = self.sides.get(side)
        if tid is None:
            tid = self.sides[side] = _SIDE_TIDS + len(self.sides)
            self.threads[(KERNEL_PID, tid)] = f"TCP states: {side} side"
            self.processes.setdefault(KERNEL_PID, "kernel")
        return KERNEL_PID, tid

    # ------------------------------------------------------------------ events
    def batch(self, events: list[Any]) -> None:
        rows: list[dict[str, Any]] = []
        add = rows.append
        base = self.base
        conns = self.conns
        track = self._track
        threads = self.threads
        syscalls, cats, timed = SYSCALLS, _CATS, _TIMED
        server_pid = self.server_pid
        last = self.last_ns
        lasts = self.lasts
        for seq, t_ns, src, kind, conn, fd, thread, data in events:
            if t_ns > last:
                last = t_ns
            ts = (t_ns - base) / 1000
            state = None
            if conn is not None:
                state = conns.get(conn)
                if state is None:
                    state = conns[conn] = _Conn(len(conns) + 1, t_ns)
                elif t_ns < state.first:
                    state.first = t_ns
            if kind == "tcp_state":
                pid, tid = self._side_track(str(data.get("side")))
                previous, now = data.get("previous"), data.get("state")
                name = f"{previous} → {now}" if previous else str(now)
                if state is not None and state.first == t_ns and previous is None and \
                        "previous" in data and data.get("source") == "observed":
                    state.predates = True  # there before the trace began (until opened here)
                add({"ph": "i", "s": "t", "name": name, "cat": "tcp_state", "ts": ts,
                     "pid": pid, "tid": tid, "args": {"seq": seq, "conn": conn, **data}})
                if state is not None and now == "CLOSED" and t_ns > state.closed:
                    state.closed = t_ns
                continue
            if kind == "accept_queue":
                add({"ph": "C", "name": "accept queue", "ts": ts, "pid": server_pid,
                     "tid": server_pid, "args": {"length": data.get("length", 0)}})
                continue
            if kind == "cpu":
                add({"ph": "C", "name": "cpu", "ts": ts, "pid": server_pid, "tid": server_pid,
                     "args": {"percent": data.get("percent", 0)}})
                continue
            if kind == "dropped":
                add({"ph": "i", "s": "g", "name": f"dropped {data.get('count')} events",
                     "cat": "engine", "ts": ts, "pid": server_pid, "tid": server_pid,
                     "args": {"seq": seq, **data}})
                continue
            key = track(src, thread, data)
            pid, tid = key
            if src != "server" and src != "client":
                seen = self.kinds.get(key)
                if seen is None:
                    seen = self.kinds[key] = set()
                if kind == "packet":
                    seen.add(f"{data.get('origin')} packets")
                else:  # sock_diag's polls, the tracepoint's transitions, what else speaks
                    seen.add(_OBSERVERS.get(data.get("source"), kind))
            dur = 0.0
            start = ts
            if kind in timed:
                took = data.get("blocked_ns") or data.get("held_ns")
                if kind == "poll_sweep" and type(data.get("since_ns")) is int:
                    took = t_ns - data["since_ns"]
                if type(took) is int and took > 0:
                    # Never over the events before it on its thread: they ran, so it was
                    # not blocked then (gevent's hub counts from its prepare watcher, and
                    # gevent runs callbacks after that).
                    since = max(t_ns - took, lasts.get(key, t_ns))
                    if since < t_ns:
                        start, dur = (since - base) / 1000, (t_ns - since) / 1000
            lasts[key] = t_ns
            if kind in syscalls:
                name, cat = kind, "syscall"
            elif kind == "packet":
                name, cat = str(data.get("flags")), "packet"
            elif kind == "request":
                name, cat = f"{data.get('method')} {data.get('path')}", "http"
            elif kind == "response":
                name, cat = f"response {data.get('status')}", "http"
            elif kind == "error":
                name, cat = f"error: {data.get('what')}", "error"
            else:
                name, cat = kind, cats.get(kind, "event")
            args = {"seq": seq, **data}
            if conn is not None:
                args["conn"] = conn
            if fd != -1:
                args["fd"] = fd
            add({"ph": "X", "name": name, "cat": cat, "ts": start, "dur": dur, "pid": pid,
                 "tid": tid, "args": args})
            if kind == "epoll_wait" or kind == "wait":
                ready = data.get("ready")
                # gevent's hub: libev does not say which fds were ready (null, read as []).
                if ready is not None and not str(data.get("call", "")).startswith("libev"):
                    add({"ph": "C", "name": "ready list", "ts": ts, "pid": pid, "tid": pid,
                         "args": {"length": len(ready)}})
            elif kind == "mode":
                self.mode = " ".join(str(data[k]) for k in ("mode", "trigger", "policy")
                                     if data.get(k))
            elif kind == "thread_start" and src == "server" and data.get("name"):
                threads[key] = f"{data['name']} ({tid})" if tid != pid else \
                    f"{data['name']} (main thread)"
            if state is None:
                continue
            # ---- a connection's life, its flow, the open-connections counter
            if kind == "packet":
                flags = data.get("flags") or ""
                if "SYN" in flags and "ACK" not in flags and not state.syn:
                    state.syn = True
                    if state.opened < 0 or t_ns < state.opened or state.opened_by != "SYN":
                        state.opened, state.opened_by = t_ns, "SYN"
                    if state.flow != 2:
                        add(_flow("s", state.number, ts, pid, tid))
                        if state.held is not None:
                            add(_flow("t", state.number, *state.held))
                            state.held = None
                        state.flow = 2
            elif kind == "accept" or kind == "connect":
                if state.opened_by != "SYN" and (state.opened < 0 or t_ns < state.opened):
                    state.opened, state.opened_by = t_ns, kind
                if kind == "accept" and src == "server":
                    self._flow_step(state, ts, pid, tid, add)
                    if conn not in self.open:
                        self.open.add(conn)
                        add({"ph": "C", "name": "open connections", "ts": ts,
                             "pid": server_pid, "tid": server_pid,
                             "args": {"count": len(self.open)}})
            elif kind == "request" and src == "server":
                self._flow_step(state, ts, pid, tid, add)
            elif kind == "close":
                if t_ns > state.close:
                    state.close = t_ns
                if src == "server" and data.get("last") is not False:  # the socket's own close
                    if state.flow:
                        add(_flow("f", state.number, ts, pid, tid))
                    if conn in self.open:
                        self.open.discard(conn)
                        add({"ph": "C", "name": "open connections", "ts": ts,
                             "pid": server_pid, "tid": server_pid,
                             "args": {"count": len(self.open)}})
        self.last_ns = last
        self.queue(rows)

    @staticmethod
    def _flow_step(state: _Conn, ts: float, pid: int, tid: int, add: Any) -> None:
        if state.flow:  # started, or its first step held: a step either way
            add(_flow("t", state.number, ts, pid, tid))
        else:  # the first server step: held until a SYN comes (or the trace ends)
            state.flow, state.held = 1, (ts, pid, tid)

    # ------------------------------------------------------------------ the end
    def finish(self) -> None:
        self.pending.sort(key=_TS)
        self.write(self.pending)
        self.pending = []
        rows: list[dict[str, Any]] = []
        add = rows.append
        base, pid = self.base, self.server_pid
        end_ns = self.last_ns
        for conn, state in self.conns.items():
            if state.held is not None:  # no SYN came: the first server step starts the flow
                add(_flow("s", state.number, *state.held))
                state.held = None
            begin = state.opened if state.opened >= 0 else state.first
            older = state.predates and state.opened < 0  # an earlier server's, on the port
            begun = state.opened_by or ("before the trace" if older else "first event")
            if state.closed >= 0:
                end, ended = state.closed, "CLOSED"
            elif state.close >= 0:
                end, ended = state.close, "close"
            else:
                end, ended = end_ns, "end of trace"
            if end < begin:  # a close written before its own SYN's time: never a negative slice
                end = begin
            # id2.local: the id is the server process's own, so viewers show the row
            # under that process (a plain id is global: Perfetto lists it apart).
            name = f"{conn} (before the trace)" if older else conn
            add({"ph": "b", "cat": "connection", "name": name, "id2": {"local": state.number},
                 "ts": (begin - base) / 1000, "pid": pid, "tid": pid,
                 "args": {"conn": conn, "from": begun}})
            add({"ph": "e", "cat": "connection", "name": name, "id2": {"local": state.number},
                 "ts": (end - base) / 1000, "pid": pid, "tid": pid,
                 "args": {"to": ended, **({"open_at_end": True} if ended == "end of trace"
                                          else {})}})
        self.threads.setdefault((pid, pid), "main thread")
        self.processes.setdefault(pid, "server")
        names = {CLIENTS_PID: "clients", KERNEL_PID: "kernel (TCP states, observers)",
                 CAPTURE_PID: "capture (packets)", ENGINE_PID: "engine"}
        for p, src in sorted(self.processes.items()):
            if p in names:
                name = names[p]
            elif p == pid:
                name = f"sockscope server ({self.mode})" if self.mode else "sockscope server"
            else:
                name = f"server child {p}"
            add({"ph": "M", "name": "process_name", "pid": p, "tid": p, "args": {"name": name}})
            add({"ph": "M", "name": "process_sort_index", "pid": p, "tid": p,
                 "args": {"sort_index": _PROCESS_ORDER.get(p, 0)}})
        for (p, tid), name in sorted(self.threads.items()):
            seen = self.kinds.get((p, tid))
            if seen and tid != p:
                name = f"{', '.join(sorted(seen))} ({tid})"
            add({"ph": "M", "name": "thread_name", "pid": p, "tid": tid, "args": {"name": name}})
        self.write(rows)


def _flow(ph: str, number: int, ts: float, pid: int, tid: int) -> dict[str, Any]:
    return {"ph": ph, "id": number, "cat": "flow", "name": "connection", "ts": ts, "pid": pid,
            "tid": tid, "bp": "e"}


def export_perfetto(trace_path: str | os.PathLike[str], out_path: str | os.PathLike[str]
                    ) -> PerfettoExport:
    """Write ``trace_path`` as Chrome trace-event JSON to ``out_path``, streaming.

    Raises ``TraceError`` (naming the line) for a trace that cannot be read: a bad
    header before ``out_path`` is touched; a bad line further on after some of the
    file is written, which is then removed. ``OSError`` when ``out_path`` cannot be
    written (also removed when it was made)."""
    result = PerfettoExport()
    items: Iterator[Any] = iter_batches(trace_path, result.problems)
    header = next(items)
    first = next(items, None)
    base = min(e[1] for e in first[0]) if first else 0
    out = open(out_path, "wb")
    try:
        out.write(b'{"traceEvents":[\n')
        exporter = _Exporter(header, base, out)
        for events, _ in chain([first] if first else [], items):
            exporter.batch(events)
        exporter.finish()
        other = {"source": "sockscope", "trace": str(trace_path), "t0_ns": base,
                 "clock": header.get("clock"), "trace_version": header.get("version"),
                 "host": header.get("host"), "server_pid": exporter.server_pid}
        out.write(b'\n],\n"displayTimeUnit":"ms",\n"otherData":' + orjson.dumps(other) + b"}\n")
        out.close()
    except BaseException:
        out.close()
        _remove(out_path)
        raise
    result.events = exporter.written
    result.older = sum(1 for c in exporter.conns.values() if c.predates and c.opened < 0)
    result.connections = len(exporter.conns) - result.older
    return result


def _remove(path: str | os.PathLike[str]) -> None:
    """Remove a half-written output (a regular file only: never a device or a pipe)."""
    try:
        if Path(path).is_file():
            os.unlink(path)
    except OSError:
        pass
