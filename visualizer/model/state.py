"""Reducers: the server as it stood after a given event.

``apply(state, event)`` folds one event into a ``ServerState`` in place;
``ServerState.clone()`` copies what ``apply`` mutates, for snapshots. The
state holds what the views draw: connections with both ends' TCP states and
their requests, the fd table, the epoll interest and ready lists, threads,
the accept queue, what the gate holds, and counters.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from engine.events import Event


@dataclass(slots=True)
class ConnectionState:
    id: str
    fd: int = -1
    client: str = "CLOSED"  # TCP state of the client's end
    server: str = "CLOSED"
    client_source: str | None = None  # "observed" / "inferred" / None (not reported)
    server_source: str | None = None
    client_since: int | None = None  # when this end entered its state (t_ns)
    server_since: int | None = None
    # The kernel's latest word on each end (state_check): (state, source, verdict,
    # t_ns), source "traced" or "observed", verdict "confirms" / "contradicts" / None.
    client_check: tuple[str, str, str | None, int] | None = None
    server_check: tuple[str, str, str | None, int] | None = None
    opened_ns: int | None = None
    closed_ns: int | None = None  # the server closed its socket
    time_wait_ms: int | None = None  # TIME_WAIT countdown when last observed
    # Counts and the latest only: a snapshot copies the state, so nothing in it
    # may grow with history (the log has every request; views ask it).
    requests: int = 0
    responses: int = 0
    last_request: tuple[int, str, str] | None = None  # (t_ns, method, path)
    last_response: tuple[int, int, int] | None = None  # (t_ns, status, length)
    statuses: dict[int, int] = field(default_factory=dict)  # status -> count
    bytes_in: int = 0
    bytes_out: int = 0
    packets: int = 0
    thread: int = 0
    client_gone: bool = False  # the client's own close was seen
    # Found by the kernel observer's first look (no previous state), before anything of
    # the trace: an earlier server's socket on the port (TIME_WAIT...), not one of its own.
    predates: bool = False

    def clone(self) -> "ConnectionState":
        # Field by field (tests/model checks none is missed): several times faster than
        # dataclasses.replace or copy.copy, and copies happen per event under load.
        return ConnectionState(
            self.id, self.fd, self.client, self.server, self.client_source, self.server_source,
            self.client_since, self.server_since, self.client_check, self.server_check,
            self.opened_ns, self.closed_ns, self.time_wait_ms, self.requests, self.responses,
            self.last_request, self.last_response, dict(self.statuses), self.bytes_in,
            self.bytes_out, self.packets, self.thread, self.client_gone, self.predates)

    @property
    def open(self) -> bool:
        return self.closed_ns is None and self.opened_ns is not None

    @property
    def earlier(self) -> bool:
        """A socket older than the recording, as far as the trace tells by now: found by
        the observer's first look and nothing of the trace opened it or used it since."""
        return self.predates and self.opened_ns is None and not self.packets \
            and not self.requests


@dataclass(slots=True)
class ServerState:
    index: int = -1  # the last event folded in
    t_ns: int = 0
    mode: dict[str, Any] = field(default_factory=dict)
    listen: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, ConnectionState] = field(default_factory=dict)
    fds: dict[int, str] = field(default_factory=dict)  # fd -> connection id
    interest: dict[int, str] = field(default_factory=dict)  # fd -> mask ("IN", "IN|ET"...)
    ready: list[tuple[int, int]] = field(default_factory=list)  # the last wait's ready list
    threads: dict[int, str] = field(default_factory=dict)  # thread -> what it does now
    # gevent and asyncio: the coroutine serving each connection (conn -> its name)
    tasks: dict[str, str] = field(default_factory=dict)
    # processes: the children alive (pid -> its connection), and the connections whose
    # socket the parent still holds a copy of since it forked
    children: dict[int, str] = field(default_factory=dict)
    parent_copies: set[str] = field(default_factory=set)
    accept_queue: tuple[int, int] = (0, 0)  # (length, backlog)
    held: list[tuple[str, str | None]] = field(default_factory=list)  # gate: (action, conn)
    counts: dict[str, int] = field(default_factory=dict)  # events per kind
    eagain: int = 0
    dropped: int = 0
    dropped_by: dict[str, int] = field(default_factory=dict)  # the same, by the sink that lost them
    last_sweep: dict[str, Any] = field(default_factory=dict)
    # Connections finished (closed at both ends) are retired from ``connections``
    # once there are more than ``retire_above``, so that snapshots stay small under
    # thousands of short connections; the log still has all of them.
    retired: int = 0
    retire_above: int = 1000
    # Copy on write: a clone shares its connections with the original; ``owned``
    # names the ones this state may change in place (made or copied since).
    # With 1,000 connections a snapshot is then a dict copy, not 1,000 copies.
    owned: set[str] = field(default_factory=set, compare=False, repr=False)
    # (index, how many connections are open then): counted once per state, not per frame
    open_count: tuple[int, int] = field(default=(-2, 0), compare=False, repr=False)

    def clone(self) -> "ServerState":
        self.owned = set()  # shared from now on: the next change copies first
        return replace(self, mode=dict(self.mode), listen=dict(self.listen),
                       connections=dict(self.connections),
                       fds=dict(self.fds), interest=dict(self.interest), ready=list(self.ready),
                       threads=dict(self.threads), tasks=dict(self.tasks),
                       children=dict(self.children), parent_copies=set(self.parent_copies),
                       held=list(self.held),
                       counts=dict(self.counts), last_sweep=dict(self.last_sweep), owned=set())

    @property
    def open_connections(self) -> int:
        # Every change goes through ``apply``, which moves ``index``: a count taken at
        # this index holds until the next event (ten thousand connections: per frame,
        # the count would cost more than the picture).
        if self.open_count[0] != self.index:
            self.open_count = (self.index, sum(1 for c in self.connections.values() if c.open))
        return self.open_count[1]

    def connection(self, conn_id: str) -> ConnectionState:
        """Connection ``conn_id``, this state's own to change (made or copied as needed)."""
        conn = self.connections.get(conn_id)
        if conn is None:
            conn = self.connections[conn_id] = ConnectionState(conn_id)
            self.owned.add(conn_id)
        elif conn_id not in self.owned:
            conn = self.connections[conn_id] = conn.clone()
            self.owned.add(conn_id)
        return conn


def apply(state: ServerState, event: Event, index: int | None = None) -> ServerState:
    """Fold ``event`` into ``state`` (in place) and return it."""
    kind, data, conn_id, t = event.kind, event.data, event.conn, event.t_ns
    state.index = index if index is not None else state.index + 1
    state.t_ns = t
    state.counts[kind] = state.counts.get(kind, 0) + 1
    src = event.src
    if kind == "mode":
        if src == "server":
            _new_engine(state, t)
        state.mode = dict(data)
    elif kind == "listen":
        state.listen = dict(data)
        state.accept_queue = (0, int(data.get("backlog", 0)))
    elif kind == "dropped":
        count = int(data.get("count", 0))
        state.dropped += count
        sink = str(data.get("sink", "?"))
        state.dropped_by = {**state.dropped_by, sink: state.dropped_by.get(sink, 0) + count}
    elif kind == "epoll_wait" or kind == "wait":
        state.ready = [tuple(pair) for pair in data.get("ready") or []]  # type: ignore[misc]
        state.threads[event.thread] = "working" if state.ready else "waiting"
    elif kind == "epoll_ctl" or kind == "interest":
        if data.get("op") == "DEL":
            state.interest.pop(event.fd, None)
        else:
            state.interest[event.fd] = str(data.get("mask"))
    elif kind == "poll_sweep":
        state.last_sweep = dict(data)
    elif kind == "accept_queue":
        state.accept_queue = (int(data.get("length", 0)), int(data.get("backlog", 0)))
    elif kind == "thread_start":
        state.threads[event.thread] = "started"
    elif kind == "fork":
        if conn_id is not None:
            state.children[int(data.get("child", 0))] = conn_id
            state.parent_copies.add(conn_id)
    elif kind == "process_exit":
        state.children.pop(int(data.get("child", 0)), None)
    elif kind == "task_start":
        if conn_id is not None:
            state.tasks[conn_id] = str(data.get("name") or "")
    elif kind == "task_end":
        state.tasks.pop(conn_id, None)  # type: ignore[arg-type]
    elif kind == "thread_exit":
        state.threads.pop(event.thread, None)
        if src == "server" and conn_id is None and data.get("name") == "loop":
            state.listen = {}  # the server stopped: its listening socket is closed
    elif kind == "gate":
        if data.get("state") == "held":
            state.held.append((str(data.get("action")), conn_id))
        else:
            item = (str(data.get("action")), conn_id)
            if item in state.held:
                state.held.remove(item)
    elif kind == "eagain":
        state.eagain += 1
    if conn_id is None:
        return state
    conn = state.connection(conn_id)
    if kind in ("accept", "connect"):
        conn.predates = False  # opened here (a port pair used again after its TIME_WAIT)
    if kind == "accept" and src == "server":
        conn.fd = event.fd
        conn.opened_ns = conn.opened_ns or t
        conn.thread = event.thread
        state.fds[event.fd] = conn_id
        if conn.server_source is None:
            conn.server = "ESTABLISHED"
        if conn.client_source is None and conn.client == "CLOSED" and not conn.client_gone:
            conn.client = "ESTABLISHED"  # (not a client that already closed: an abort)
    elif kind == "connect":
        conn.opened_ns = conn.opened_ns or t
        if conn.client_source is None:
            conn.client = "ESTABLISHED"
    elif kind == "recv" and src == "server":
        conn.bytes_in += int(data.get("bytes", 0))
        state.threads[event.thread] = "recv"
    elif kind == "send" and src == "server":
        conn.bytes_out += int(data.get("bytes", 0))
        state.threads[event.thread] = "send"
    elif kind == "request":
        conn.requests += 1
        conn.last_request = (t, str(data.get("method")), str(data.get("path")))
    elif kind == "response":
        status = int(data.get("status", 0))
        conn.responses += 1
        conn.last_response = (t, status, int(data.get("length", 0)))
        conn.statuses[status] = conn.statuses.get(status, 0) + 1
    elif kind == "close" and src == "client":
        conn.client_gone = True
        if conn.client_source is None:  # nobody reports this end's states: its socket is gone
            conn.client = "CLOSED"
    elif kind == "close" and src == "server" and data.get("last") is False:
        # one copy of a forked socket: the socket lives on in the other process
        if data.get("copy") == "parent":
            state.parent_copies.discard(conn_id)
    elif kind == "close" and src == "server":
        if data.get("copy") == "parent":
            state.parent_copies.discard(conn_id)
        conn.closed_ns = t
        if conn.server_source is None:
            conn.server = "CLOSED"
        if state.fds.get(event.fd) == conn_id:
            del state.fds[event.fd]
        state.interest.pop(event.fd, None)
        if len(state.connections) > state.retire_above:
            _retire(state)
    elif kind == "tcp_state":
        side = data.get("side")
        if side in ("client", "server"):
            new = str(data.get("state"))
            if "previous" in data and data["previous"] is None and \
                    data.get("source") == "observed" and conn.opened_ns is None and \
                    not conn.packets and not conn.requests:
                conn.predates = True
            if new != getattr(conn, side):
                setattr(conn, f"{side}_since", t)
            setattr(conn, side, new)
            setattr(conn, f"{side}_source", data.get("source"))
            if new == "TIME_WAIT":
                conn.time_wait_ms = data.get("expires_ms")
    elif kind == "state_check":
        side = data.get("side")
        if side in ("client", "server"):
            checked = str(data.get("state"))
            setattr(conn, f"{side}_check",
                    (checked, str(data.get("source")), data.get("verdict"), t))
            if checked == "TIME_WAIT" and data.get("expires_ms") is not None:
                conn.time_wait_ms = data.get("expires_ms")
    elif kind == "packet":
        conn.packets += 1
    return state


def check_badge(conn: ConnectionState, side: str) -> tuple[str, str, str] | None:
    """What the kernel says of ``side``'s state as it stands: ("✓", source, state)
    when its latest check confirms the state shown, ("✗", source, state) when it
    contradicts it (state: what the kernel reported), None when it has not spoken
    of this state (no check yet, or the state changed since)."""
    check = getattr(conn, f"{side}_check")
    if check is None:
        return None
    state, source, verdict, t = check
    if verdict == "confirms" and state == getattr(conn, side):
        return "✓", source, state
    if verdict == "contradicts" and t >= (getattr(conn, f"{side}_since") or 0):
        return "✗", source, state
    return None


def finished(conn: ConnectionState) -> bool:
    """Closed by the server, and the client's end gone too (or never reported)."""
    return conn.closed_ns is not None and (conn.client_source is None or conn.client == "CLOSED") \
        and (conn.server_source is None or conn.server == "CLOSED")


def _new_engine(state: ServerState, t: int) -> None:
    """A server process starts (its ``mode`` event): whatever an earlier one held, its
    fds, threads, interest list and listening socket, went with it, and the
    connections it had open were closed when it exited. (Their TCP states are the
    kernel's, and stay as reported.)"""
    state.fds.clear()
    state.interest.clear()
    state.ready = []
    state.threads.clear()
    state.tasks.clear()
    state.children.clear()
    state.parent_copies.clear()
    state.held.clear()
    state.last_sweep = {}
    state.listen = {}
    state.accept_queue = (0, 0)
    for conn_id, conn in list(state.connections.items()):
        if conn.opened_ns is not None and conn.closed_ns is None:
            state.connection(conn_id).closed_ns = t


def _retire(state: ServerState) -> None:
    done = [k for k, c in state.connections.items() if finished(c)]
    for k in done:
        del state.connections[k]
    state.retired += len(done)
    state.retire_above = max(1000, 2 * len(state.connections))
