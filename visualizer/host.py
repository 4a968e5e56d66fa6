"""The engine and the built-in clients as child processes of the window.

``EngineHost`` starts ``sockscope serve`` with the window's settings, on
7890 or the next free port, streaming its trace over the channel and taking
stepping commands on stdin. A change of settings restarts it. Traffic runs
``sockscope load`` in its own child process, so a loaded client never slows
the window or the server.

``attach`` swaps the local engine for one running elsewhere (``sockscope serve
--control HOST:PORT``, on a VM, in a container): a ``SocketChannel`` in the
child's place, the same events and the same stepping commands. While attached
nothing starts a local engine here; the clients run inside the attached
engine (``load`` over its control port), so that their events and the
server's are on one clock.
"""
from __future__ import annotations

import re
import shlex
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from engine.server import DEFAULT_PORT, default_mode

from .channel import ProcessChannel, SocketChannel

URL_RE = re.compile(r"(http://\S+/) \(")


@dataclass
class EngineSettings:
    mode: str = field(default_factory=default_mode)
    trigger: str = "level"
    policy: str = "keep-alive"
    backlog: int = 4096
    reuseaddr: bool = True
    sweep_pause: float = 0.001
    lab: bool = False  # a private network namespace: only the engine's own clients reach it
    fault: str | None = None  # in the lab: drop-syn, drop-synack, drop-ack, drop-fin...
    root: str | None = None
    idle_timeout: float | None = None  # None: the engine's own (15 s)
    max_connections: int | None = None  # None: the engine's own (10,000)

    def server_options(self) -> list[str]:
        """The server's own settings as serve's options (what ``restart`` may change)."""
        out = ["--mode", self.mode, "--trigger", self.trigger, "--policy", self.policy,
               "--backlog", str(self.backlog), "--sweep-pause", str(self.sweep_pause),
               "--reuseaddr" if self.reuseaddr else "--no-reuseaddr"]
        if self.idle_timeout is not None:
            out += ["--idle-timeout", str(self.idle_timeout)]
        if self.max_connections is not None:
            out += ["--max-connections", str(self.max_connections)]
        return out

    def args(self, port: int) -> list[str]:
        out = ["serve", "--port", str(port), *self.server_options(), "--trace", "-",
               "--control"]
        if self.root:
            out += ["--root", self.root]
        if self.lab:
            out.append("--lab")
            if self.fault:
                out += ["--fault", self.fault]
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def free_port(start: int = DEFAULT_PORT, tries: int = 20, reuseaddr: bool = True) -> int:
    """The first port from ``start`` the engine can bind (0 if none): with
    ``reuseaddr`` as the engine will set it, so TIME_WAIT sockets block the port
    exactly when they block the engine."""
    for port in range(start, start + tries):
        if _bindable(port, reuseaddr):
            return port
    return 0


def _bindable(port: int, reuseaddr: bool) -> bool:
    with socket.socket() as s:
        if reuseaddr:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def why_moved(port: int, start: int = DEFAULT_PORT) -> str:
    """Why the engine is not on ``start``: "time_wait" when only TIME_WAIT sockets
    (which SO_REUSEADDR would let it bind past) hold it, "busy" when something
    listens there, "" when it is on ``start``."""
    if port == start or not port:
        return ""
    return "time_wait" if _bindable(start, True) else "busy"


class AttachError(Exception):
    """An engine elsewhere could not be attached to. ``why``: what the engine answered
    ("token", "busy", "protocol", "version", "closed"), or "unreachable" (``detail``: the
    system's words), or "timeout"."""

    def __init__(self, why: str, detail: str = "") -> None:
        super().__init__(f"{why}: {detail}" if detail else why)
        self.why, self.detail = why, detail


def remote_settings(header: dict | None, mode: dict | None, listen: dict | None
                    ) -> EngineSettings:
    """What an attached engine runs with, from its header and its ``mode`` and ``listen``
    events (each may be missing: the defaults then)."""
    s = EngineSettings()
    for source in (header or {}, mode or {}):
        if source.get("mode"):
            s.mode = str(source["mode"])
        if source.get("trigger"):
            s.trigger = str(source["trigger"])
        if source.get("policy"):
            s.policy = str(source["policy"])
    if mode and mode.get("sweep_pause") is not None:
        s.sweep_pause = float(mode["sweep_pause"])
    if listen:
        if listen.get("backlog") is not None:
            s.backlog = int(listen["backlog"])
        if listen.get("reuseaddr") is not None:
            s.reuseaddr = bool(listen["reuseaddr"])
    s.lab = False  # (a control port is never in the lab: nothing outside could reach it)
    return s


class EngineHost:
    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.channel: ProcessChannel | SocketChannel | None = None
        self.traffic: list[ProcessChannel] = []
        self.url: str | None = None
        self.stepping = False
        self.moved = ""  # why the engine is not on the default port ("time_wait", "busy")
        # Attached: the control port's "HOST:PORT" as the user gave it, and the engine's
        # URL as it says it (its own address there, often 127.0.0.1 on the VM).
        self.remote: str | None = None
        self.remote_url: str | None = None
        # Stopped channels whose lines still wait (an engine restarted while the window
        # was behind it), oldest first: taken before the running ones, at the same pace.
        self.retired: list = []

    def start(self) -> None:
        if self.remote is not None:  # attached: never a local engine behind its back
            return
        port = free_port(reuseaddr=self.settings.reuseaddr)
        self.moved = why_moved(port)
        self.channel = ProcessChannel(self.settings.args(port), "engine")
        self.url = None

    def wait_url(self, timeout: float = 10.0) -> str | None:
        deadline = time.monotonic() + timeout
        while self.url is None and time.monotonic() < deadline:
            self.poll_messages()
            if self.channel is None or self.channel.exit_code is not None:
                break
            time.sleep(0.01)
        return self.url

    def attach(self, host: str, port: int, token: str, timeout: float = 20.0,
               idle: Callable[[], None] | None = None) -> list:
        """Drive and watch the engine whose control port is ``host:port`` instead of a local
        one. Waits (at most ``timeout`` s, calling ``idle`` meanwhile: the window keeps
        drawing) until the engine accepted the token and said how it runs. Refused or
        unreachable: ``AttachError``, and this host is as it was (its local engine runs
        on). Accepted: the local engine and its clients stop, and what waits of theirs is
        dropped (nothing is returned: the window's timeline starts afresh)."""
        channel = SocketChannel(host, port, token)
        deadline = time.monotonic() + timeout

        def told() -> bool:  # the header and the listen event: the settings are known
            return channel.header is not None and \
                any(e.kind == "listen" for e in list(channel.events))

        while channel.exit_code is None and time.monotonic() < deadline and \
                not (channel.attached.is_set() and told()):
            if idle is not None:
                idle()
            time.sleep(0.01)
        if not channel.attached.is_set():
            channel.stop(1.0)
            if channel.refused is not None:
                raise AttachError(channel.refused)
            if channel.exit_code is not None:
                said = next((m for m in reversed(channel.messages)
                             if m.startswith("cannot attach")), "")
                raise AttachError("unreachable", said.partition(f"{channel.address}: ")[2])
            raise AttachError("timeout")
        # The timeline starts afresh (another machine's clock): what the local engine
        # sent and was not taken is dropped unread, never parsed (a far-behind window
        # would parse millions of lines only to drop them).
        final = self.stop(take=False)
        self.channel = channel
        self.remote = channel.address
        header = channel.header or {}
        self.remote_url = header.get("url")
        context = {e.kind: e.data for e in list(channel.events) if e.kind in ("mode", "listen")}
        self.settings = remote_settings(header, context.get("mode"), context.get("listen"))
        self.stepping = "--step" in (header.get("argv") or ())
        self.moved = ""
        self.url = None
        if self.remote_url:  # from here: the host attached to, the engine's own web port
            web = urlsplit(self.remote_url).port
            if web:
                self.url = f"http://{'[' + host + ']' if ':' in host else host}:{web}/"
        return final

    def poll_messages(self) -> list[str]:
        """New messages from the engine (and the URL once it is announced)."""
        if self.channel is None:
            return []
        lines = list(self.channel.messages)
        if self.remote is not None:  # attached: the URL is the one reachable from here
            return lines
        for line in lines:
            m = URL_RE.search(line)
            if m and self.url is None:
                self.url = m.group(1)
        return lines

    def restart(self, settings: EngineSettings) -> None:
        if self.remote is not None:  # attached: the engine there serves its port again
            if self.channel is not None:
                self.channel.send("restart " + shlex.join(settings.server_options()))
            kept = self.settings  # its lab, its site: the engine's own, as it was started
            self.settings = EngineSettings(**{**settings.to_dict(), "lab": kept.lab,
                                              "fault": kept.fault, "root": kept.root})
            return
        self.retire()
        self.settings = settings
        self.start()

    def set_stepping(self, on: bool) -> None:
        self.stepping = on
        if self.channel:
            self.channel.send("s" if on else "c")

    def step(self, count: int = 1) -> None:
        if self.channel:
            self.channel.send(str(count))

    def run_traffic(self, load_args: list[str]) -> ProcessChannel | None:
        """Clients in their own process; in the lab, inside the engine (nothing else
        reaches it); attached, inside the engine too (its clock is not this machine's: a
        client here would put its events out of order with the server's)."""
        if not self.url and self.remote is None:
            return None
        if self.settings.lab or self.remote is not None:
            if self.channel:
                self.channel.send("load " + shlex.join(load_args))
            return self.channel
        channel = ProcessChannel(["load", self.url, *load_args, "--trace", "-"], "traffic")
        self.traffic.append(channel)
        return channel

    def _sources(self) -> list:
        """The channels events come from: the stopped ones still waiting, the engine's,
        then the clients' processes."""
        return [source for group in self.retired for source in group] + self._running()

    def _running(self) -> list:
        return ([self.channel] if self.channel else []) + self.traffic

    def waiting(self) -> int:
        """Events that arrived and were not taken yet (the engine's and the clients')."""
        return sum(len(source.events) for source in self._sources())

    def newest_ns(self) -> int | None:
        """The time of the newest event that arrived (taken or not), from the sources'
        raw lines: with the window's last event, how far behind the picture is."""
        times = [t for t in (source.events.newest_ns for source in self._sources())
                 if t is not None]
        return max(times) if times else None

    def drain(self, limit: int | None = None) -> list:
        """The events that arrived from the engine and the clients: all of them, or about
        ``limit``, each source giving its share of what it has waiting, so that the
        sources stay as far along in time (an engine's events taken well after the
        clients' would each rewrite the folded history). Those of engines stopped while
        the window was behind come first, a stopped engine and its clients together."""
        batch: list = []
        while self.retired:  # older than anything running
            group = self.retired[0]
            taken = _share(group, limit)
            batch.extend(taken)
            if any(len(source.events) or source.reading for source in group):
                return batch  # (more waits, or a reader still puts: never dropped early)
            for source in self.retired.pop(0):
                _drop(source)  # (its file closed)
            if limit is not None:
                limit -= len(taken)
                if limit <= 0:
                    return batch
        batch.extend(_share(self._running(), limit))
        for t in list(self.traffic):
            if t.exit_code is not None and not t.events:
                t.stop()
                self.traffic.remove(t)
        return batch

    def stop(self, take: bool = True) -> list:
        """Stop the clients and the engine; returns their last events, and those of
        engines stopped before (``take=False``: none, dropped unread: after a long load
        test, millions of lines wait, and parsed at once they filled 24 GB)."""
        self.retire()
        final: list = []
        for source in self._sources():
            final.extend(source.drain(limit=10**9) if take else _drop(source))
        self.retired.clear()
        return final

    def retire(self) -> None:
        """Stop the clients, then the engine (it records their connections' ends); what
        they sent and was not taken waits on, unparsed (spilled to disk past its budget),
        and ``drain`` takes it first, at the window's pace: a restart far behind a load
        test parses no million lines at once."""
        for t in self.traffic:
            t.stop()
        if self.channel is not None:
            self.channel.stop()
        group = self._running()
        if group:
            self.retired.append(group)
        self.traffic = []
        self.channel = None

    def hand_over(self, other: "EngineHost") -> None:
        """Stopped here, what waits is taken by ``other`` (the window's next host) first."""
        self.retire()
        other.retired[:0] = self.retired
        self.retired = []


def _share(sources: list, limit: int | None) -> list:
    """All that ``sources`` have waiting, or about ``limit``: each its share."""
    waiting = [len(source.events) for source in sources]
    total = sum(waiting)
    batch: list = []
    for source, count in zip(sources, waiting):
        if limit is None or total <= limit:
            batch.extend(source.drain(10**9))
        elif count:
            batch.extend(source.drain(max(1, count * limit // total)))
    return batch


def _drop(channel) -> list:  # type: ignore[no-untyped-def]
    """What waits in a stopped channel, given up unread: its file closed (the disk back)."""
    channel.events.close()
    return []
