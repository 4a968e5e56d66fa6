"""Lessons on what the kernel keeps after (or before) the program: TIME_WAIT and
SO_REUSEADDR, CLOSE_WAIT left by a server that never closes, and the accept
queue of a server that does not accept (the listen backlog).

Each records real runs of the engine (``sockscope serve`` children) and, where
one process cannot show it all, merges their traces into one.
"""
from __future__ import annotations

import errno
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from engine.events import Event, Probe
from engine.server import connection_id
from engine.trace import TraceWriter, read_trace

from ..model import EventLog
from .base import Engine, Lesson, LessonError, Step, fin, find, first_fin_side, last
from .files import FILES
from .files import load as load_file

KERNEL_INTERVAL = "0.001"  # poll the kernel every millisecond: short states are seen
# Packets: captured where this user may (root, CAP_NET_RAW), else derived. Tests set
# "derived" to walk what an unprivileged student gets.
PACKETS = "auto"


# ================================================================ recording helpers
def _free_port() -> int:
    """A port nobody uses now (bind port 0, read it, let it go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Client:
    """A client in this process, recording its calls like the built-in clients,
    but in control of who closes first: it can read to end-of-file (the server
    closes first) or close right after the answer (it closes first)."""

    def __init__(self, path: Path) -> None:
        self.writer = TraceWriter(path, header={"role": "client"})
        self.probe = Probe("client")
        self.probe.add_sink(self.writer)

    def get(self, port: int, *, keep_alive: bool, until_eof: bool, pause: float) -> str:
        """One request; then (``until_eof``) read until the server closes; wait
        ``pause`` seconds (states last long enough to be seen), close. Returns the id."""
        emit, tid = self.probe.emit, threading.get_native_id()
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        fd = sock.fileno()
        conn = connection_id(sock.getsockname(), sock.getpeername())
        emit("connect", conn, fd, tid, peer=conn.split(">")[1])
        request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: sockscope-lesson\r\n"
                   f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()
        try:
            sock.sendall(request)
            emit("send", conn, fd, tid, bytes=len(request), wanted=len(request))
            data = b""
            while b"\r\n\r\n" not in data or len(data) < _answer_length(data):
                chunk = sock.recv(65536)
                emit("recv", conn, fd, tid, bytes=len(chunk))
                if not chunk:
                    break
                data += chunk
            if until_eof:
                for _ in range(1000):
                    chunk = sock.recv(65536)
                    emit("recv", conn, fd, tid, bytes=len(chunk))
                    if not chunk:
                        break
            time.sleep(pause)
        finally:
            emit("close", conn, fd, tid, reason="after end-of-file" if until_eof else "done")
            sock.close()
        return conn

    def close(self) -> None:
        self.writer.close()
        if self.writer.failed is not None:  # a full disk: the client's record is not whole
            raise self.writer.failed


def _answer_length(data: bytes) -> int:
    """Bytes of a whole answer: its head and Content-Length (the head's end if unknown)."""
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return 1 << 30
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value.strip() or 0)
    return len(head) + 4


def _wait_in_trace(path: Path, seen: Callable[[Event], bool], count: int = 1,
                   timeout: float = 2.0) -> bool:
    """Wait (bounded) until a live trace holds ``count`` events that ``seen`` accepts
    (the writer flushes every 50 ms; the kernel observer may be seconds late under load)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if sum(1 for e in read_trace(path).events if seen(e)) >= count:
                return True
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _time_wait_seen(side: str, conns: list[str]) -> Callable[[Event], bool]:
    """The kernel itself (a poll) has seen ``side`` of one of ``conns`` in TIME_WAIT."""
    return lambda e: e.kind in ("tcp_state", "state_check") and e.conn in conns \
        and e.data.get("side") == side and e.data.get("state") == "TIME_WAIT" \
        and e.data.get("source") == "observed"


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


# ================================================================ reading the log
def _observed(log: EventLog) -> bool:
    """Whether the kernel was asked (sock_diag): its states, or its checks of the segments'."""
    return any(find(log, kind, where=lambda e: e.data.get("source") == "observed") is not None
               for kind in ("tcp_state", "state_check"))


def _confirmed(log: EventLog, conn: str, side: str, state: str, after: int = -1) -> int | None:
    """The kernel's first word (a poll or its tracepoint) that ``side`` of ``conn`` is in
    ``state``, after ``after``: a state the observer reported, or its check confirming
    the segments'."""
    return find(log, None, conn=conn, after=after,
                where=lambda e: e.kind in ("tcp_state", "state_check")
                and e.data.get("side") == side and e.data.get("state") == state
                and e.data.get("source") in ("observed", "traced")
                and e.data.get("verdict") in (None, "confirms"))


def _captured(log: EventLog) -> bool:
    return find(log, "packet", where=lambda e: e.data.get("origin") == "captured") is not None


def _state(log: EventLog, state: str, *, side: str | None = None, conn: str | None = None,
           nth: int = 0, after: int = -1, source: str | None = None) -> int | None:
    return find(log, "tcp_state", conn=conn, nth=nth, after=after,
                where=lambda e: e.data.get("state") == state
                and (side is None or e.data.get("side") == side)
                and (source is None or e.data.get("source") == source))


def _conns(log: EventLog, kind: str = "accept", src: str = "server", *, after: int = -1,
           before: int | None = None) -> list[str]:
    out: list[str] = []
    for i in log.indices(kinds=[kind], src=src, start=after + 1):
        if before is not None and int(i) >= before:
            break
        conn = log[int(i)].conn
        if conn and conn not in out:
            out.append(conn)
    return out


def _pick(value: str | None) -> Callable[[EventLog], str | None]:
    return lambda log: value


def _at(index: int | None) -> Callable[[EventLog], int | None]:
    return lambda log: index


# ================================================================ 7. time-wait
def _time_wait_record(workdir: Path) -> Path:
    workdir = Path(workdir)
    port = _free_port()
    common = ["--mode", "epoll", "--port", str(port), "--kernel-interval", KERNEL_INTERVAL,
              "--cpu-interval", "0", "--packets", PACKETS]
    client = _Client(workdir / "tw-clients.jsonl")
    engines: list[Engine] = []
    extra: list[Event] = []
    try:
        # 1. The server closes first (--policy close); the client reads to EOF.
        first = Engine(workdir, "tw-close-first", *common, "--policy", "close")
        engines.append(first)
        first.wait_for("recording events")
        time.sleep(0.05)
        for _ in range(2):
            conn = client.get(port, keep_alive=False, until_eof=True, pause=0.04)
            # The observer sees the server's end in TIME_WAIT before anything else happens.
            _wait_in_trace(first.trace, _time_wait_seen("server", [conn]))
            time.sleep(0.03)
        first.finish()
        # 2. Restarted at once on the same port without SO_REUSEADDR: a second process.
        again = Engine(workdir, "tw-no-reuseaddr", *common, "--no-reuseaddr", trace=False)
        engines.append(again)
        started = time.monotonic_ns()
        deadline = time.monotonic() + 10
        while again.proc.poll() is None and time.monotonic() < deadline \
                and "SockScope serving" not in again.output:  # it listened after all
            again._read(0.05)
        failed_ns = time.monotonic_ns()
        if again.proc.poll() is None:  # it is listening: the lesson's point did not happen
            again.finish()
        else:
            code = again.finish(stop=False)
            message = again.stderr().strip()
            if code != 0 and "EADDRINUSE" in message:
                extra.append(Event(0, failed_ns, "server", "error", None, -1, 0, {
                    "what": "EADDRINUSE", "detail": message, "errno": errno.EADDRINUSE,
                    "port": port, "reuseaddr": False, "exit_code": code,
                    "tried_ns": started}))
        # 3. Again with SO_REUSEADDR (the default), keep-alive: the client closes first.
        third = Engine(workdir, "tw-reuseaddr", *common)
        engines.append(third)
        third.wait_for("recording events")
        time.sleep(0.05)
        kept = client.get(port, keep_alive=True, until_eof=False, pause=0.04)
        _wait_in_trace(third.trace, _time_wait_seen("client", [kept]))
        time.sleep(0.1)  # a quiet moment before the server stops
        third.finish()
    finally:
        client.close()
        for engine in engines:
            if engine.proc.poll() is None:
                engine.kill()
    traces = [first.trace, client.writer.path, third.trace]
    return _merge(workdir / "time-wait.jsonl", traces, extra, lesson="time-wait", port=port)


def _eaddrinuse(log: EventLog) -> int | None:
    return find(log, "error", where=lambda e: e.data.get("what") == "EADDRINUSE")


def _time_wait_parts(log: EventLog) -> tuple[int | None, list[str], list[str], int | None]:
    """(the failed restart, connections before it, after it, the successful listen)."""
    fail = _eaddrinuse(log)
    if fail is None:
        return None, [], [], None
    before = _conns(log, before=fail)
    listen = find(log, "listen", src="server", after=fail)
    after = _conns(log, after=listen if listen is not None else fail)
    return fail, before, after, listen


def _time_wait_check(log: EventLog) -> None:
    fail, before, after, listen = _time_wait_parts(log)
    if fail is None:
        raise LessonError("time-wait: restarting without SO_REUSEADDR did not fail with "
                          "EADDRINUSE")
    data = log[fail].data
    if data.get("errno") != errno.EADDRINUSE or data.get("exit_code") != 1:
        raise LessonError(f"time-wait: the restart failed, but not with EADDRINUSE: {data}")
    first_listen = find(log, "listen", src="server")
    if first_listen is None or log[first_listen].data.get("port") != data.get("port"):
        raise LessonError("time-wait: the first server did not listen on the lesson's port")
    if listen is None or log[listen].data.get("reuseaddr") is not True \
            or log[listen].data.get("port") != data.get("port"):
        raise LessonError("time-wait: the restart with SO_REUSEADDR did not listen on the port")
    if not before or not after:
        raise LessonError("time-wait: the run lacks the server-closes-first or the "
                          "client-closes-first connection")
    for conn, closer in [(c, "server") for c in before] + [(c, "client") for c in after]:
        side = first_fin_side(log, conn)
        if side != closer:
            raise LessonError(f"time-wait: {conn}: the first FIN came from the {side}, "
                              f"not the {closer}")
        waits = {log[i].data.get("side") for i in log.indices(kinds=["tcp_state"], conn=conn)
                 if log[int(i)].data.get("state") == "TIME_WAIT"}
        if waits != {closer}:
            raise LessonError(f"time-wait: {conn}: TIME_WAIT seen on {sorted(waits) or 'no side'}, "
                              f"expected only the {closer} (it sent the first FIN)")
    # The restart failed while the server's TIME_WAIT sockets were there.
    for conn in before:
        tw = _state(log, "TIME_WAIT", side="server", conn=conn)
        gone = _state(log, "CLOSED", side="server", conn=conn, after=tw if tw is not None else -1)
        if tw is None or tw > fail or (gone is not None and gone < fail):
            raise LessonError(f"time-wait: {conn}: the server's TIME_WAIT did not span the "
                              f"failed restart")


def _last_of(log: EventLog, conn: str | None, before: int | None) -> int | None:
    """The connection's last event before ``before``: its teardown, settled (packets
    are stamped when read and states when polled, so they come a little late)."""
    found = [int(i) for i in log.indices(conn=conn) if before is None or int(i) < before]
    return found[-1] if found else None


def _reuseaddr_text(log: EventLog, seen_en: str, seen_zh: str) -> dict[str, str]:
    """The restart with SO_REUSEADDR: what the option does on Linux (bind() passes over
    TIME_WAIT sockets on the port only if they had the option too), and whether the
    first server's listener had it (its accepted sockets inherit it) in this recording."""
    first = find(log, "listen", src="server")
    had = first is not None and log[first].data.get("reuseaddr") is True
    en = ("Restarted with SO_REUSEADDR, as the lecture's servers do: bind() succeeds and the "
          f"server listens. The TIME_WAIT sockets are still there ({seen_en} them): the option "
          "releases nothing, whatever the lecture's comment says. On Linux it lets bind() pass "
          "over TIME_WAIT sockets on the port only if those sockets had SO_REUSEADDR too")
    zh = ("再用 SO_REUSEADDR 重启（讲义里的服务器都这样设置）：bind() 成功，服务器开始监听。"
          f"TIME_WAIT 套接字并没有消失（{seen_zh}它们）：不管讲义注释怎么说，这个选项什么也不"
          "释放。在 Linux 上，只有当端口上的 TIME_WAIT 套接字本身也设置了 SO_REUSEADDR 时，"
          "它才让 bind() 越过它们")
    if had:
        en += (": these had it, for accepted sockets inherit it from the listener, and the "
               "first server's listener set it.")
        zh += "：这些套接字设置了，因为 accept() 得到的套接字从监听套接字继承这个选项，而第一个服务器的监听套接字设置了它。"
    else:
        en += "."
        zh += "。"
    return {"en": en, "zh_CN": zh}


def _time_wait_steps(log: EventLog) -> list[Step]:
    fail, before, after, listen = _time_wait_parts(log)
    one, two = before[0], before[-1]
    three = after[0]
    port = log[fail].data.get("port") if fail is not None else "?"
    observed = _observed(log)
    how_en = "observed: the kernel is asked every millisecond" if observed else \
        "inferred from the calls"
    how_zh = "观测所得：每毫秒向内核查询一次" if observed else "由系统调用推断"
    seen_en = "ss lists" if observed else "the kernel still holds"
    seen_zh = "ss 依然列出" if observed else "内核依然保留着"
    pkts_en = "captured" if _captured(log) else "derived from the calls"
    pkts_zh = "抓包所得" if _captured(log) else "由系统调用推导"
    fin_one = fin(log, one)
    second = find(log, "connect", src="client", conn=two)
    settled_one = _last_of(log, one, second)
    stopped = find(log, "thread_exit", src="server", after=settled_one or -1,
                   where=lambda e: e.data.get("name") == "loop")
    settled_two = _last_of(log, two, stopped)
    leftover = _state(log, "TIME_WAIT", side="server", after=listen if listen is not None else -1)
    fin_three = fin(log, three)
    end = find(log, "thread_exit", src="server", after=fin_three or -1,
               where=lambda e: e.data.get("name") == "loop")
    settled_three = _last_of(log, three, end)
    return [
        Step({"en": f"The server runs on port {port}, set to close every connection after its "
                    "answer: it closes first, so its FIN is the connection's first (packets "
                    f"{pkts_en}).",
              "zh_CN": f"服务器在端口 {port} 上运行，设置为发完响应就关闭连接：它先关闭，"
                       f"所以连接上的第一个 FIN 是它发的（报文{pkts_zh}）。"},
             _at(fin_one), "sequence", _pick(one), footnote="sockscope serve --policy close"),
        Step({"en": "The client reads to end-of-file, then closes: its FIN comes second. The "
                    "end that sent the first FIN, the server's (the active closer), is now in "
                    f"TIME_WAIT ({how_en}).",
              "zh_CN": "客户端读到 EOF（recv() 返回 0）后才关闭：它的 FIN 是第二个。"
                       f"先发 FIN 的是主动关闭方，即服务器这一端，它现在处于 TIME_WAIT（{how_zh}）。"},
             _at(settled_one), "sequence", _pick(one)),
        Step({"en": "A second short connection, the same story: each one the server closed "
                    "leaves a TIME_WAIT socket on the server's side, for 60 s.",
              "zh_CN": "第二个短连接，情形相同：服务器主动关闭的每个连接，"
                       "都在服务器一侧留下一个 TIME_WAIT 套接字，持续 60 秒。"},
             _at(settled_two), "lifecycle", _pick(two)),
        Step({"en": "The server stops; its TIME_WAIT sockets stay: they belong to the kernel. "
                    "Restarted at once without SO_REUSEADDR (a second process), bind() fails "
                    f"with EADDRINUSE, exit code 1: a TIME_WAIT socket on port {port} is enough. "
                    "Lecture 3.1's first server sets no SO_REUSEADDR: this is the \"Address "
                    "already in use\" a student meets on stopping it and starting it again.",
              "zh_CN": "服务器停止了，但它的 TIME_WAIT 套接字还在：它们属于内核。"
                       "不设置 SO_REUSEADDR 立即重启（另一个进程）：bind() 失败，错误是 "
                       f"EADDRINUSE，退出码 1。端口 {port} 上只要有一个 TIME_WAIT 套接字就够了。"
                       "讲义 3.1 的第一个服务器没有设置 SO_REUSEADDR：学生停掉它再马上启动时，"
                       "遇到的正是这个 “Address already in use”。"},
             _at(fail), "lifecycle", _pick(two)),
        Step(_reuseaddr_text(log, seen_en, seen_zh),
             _at(leftover if leftover is not None else listen), "sockets", _pick(two)),
        Step({"en": "The other way round: a keep-alive connection. The server does not close; "
                    "the client, done, closes first: this time the first FIN is the client's.",
              "zh_CN": "反过来看：一个长连接（keep-alive）。服务器不主动关闭；"
                       "客户端用完后先关闭：这次第一个 FIN 是客户端发的。"},
             _at(fin_three), "sequence", _pick(three),
             question={"en": "Which end will be left waiting in TIME_WAIT now, the client's or "
                             "the server's?",
                       "zh_CN": "现在留在 TIME_WAIT 里等待的会是哪一端，客户端还是服务器？"}),
        Step({"en": "Now TIME_WAIT is on the client's side; the server's end is closed as soon "
                    "as its own FIN is acknowledged (it was the passive closer). TIME_WAIT follows the active closer, whoever closes "
                    "first, not who is the server.",
              "zh_CN": "这次 TIME_WAIT 在客户端一侧；服务器这一端的 FIN 一被确认就彻底关闭"
                       "（它是被动关闭方）。"
                       "TIME_WAIT 跟着主动关闭方走，而不是跟着服务器走。"},
             _at(settled_three), "sequence", _pick(three)),
        Step({"en": f"Port {port} as ss shows it: two TIME-WAIT sockets whose local end is the "
                    "server's (it closed the short connections first), one whose local end is "
                    "the client's (it closed the keep-alive one). A busy server that closes "
                    "first piles them up on its own port, and accept() does not suffer: the "
                    "restarted server accepted while its TIME_WAIT sockets were there (each is "
                    "another address pair; they cost a little memory). What runs out is a "
                    "client's ephemeral ports: many short connections to one server, the client "
                    "closing first, hold one local port each for 60 s "
                    "(ip_local_port_range, 32768–60999 by default: about 28,000).",
              "zh_CN": f"用 ss 的方式看端口 {port}：两个 TIME-WAIT 套接字的本地端是服务器"
                       "（短连接是它先关闭的），一个的本地端是客户端（长连接是客户端先关闭的）。"
                       "一个繁忙且总是主动关闭的服务器，会在自己的端口上堆积大量 TIME_WAIT，"
                       "但 accept() 并不受影响：重启后的服务器在这些 TIME_WAIT 套接字还在时"
                       "照样 accept() 了连接（每个都是不同的地址对，只占一点内存）。"
                       "真正会耗尽的是客户端的临时端口：客户端向同一个服务器发起大量短连接、"
                       "且每次主动关闭，每个连接都要占住一个本地端口 60 秒"
                       "（ip_local_port_range，默认 32768–60999，约 28000 个）。"},
             _at(settled_three), "sockets", _pick(three)),
    ]


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

_time_wait_needs = _needs_kernel(
    "TIME_WAIT sockets outlive the process: only the kernel can show them, and it cannot be "
    "asked here ({reason})")


TIME_WAIT = Lesson(
    name="time-wait",
    length=8,
    title={"en": "TIME_WAIT and SO_REUSEADDR", "zh_CN": "TIME_WAIT 与 SO_REUSEADDR"},
    section="3.2–3.3",
    summary={"en": "the side that closes first waits in TIME_WAIT; without SO_REUSEADDR a "
                   "restart fails with EADDRINUSE",
             "zh_CN": "主动关闭方进入 TIME_WAIT；不设置 SO_REUSEADDR，重启会因 EADDRINUSE 失败"},
    record=_time_wait_record, steps=_time_wait_steps, check=_time_wait_check,
    needs=_time_wait_needs)


# ================================================================ 8. close-wait
# Written as a lesson file (files/close-wait.toml).
CLOSE_WAIT = load_file(FILES / "close-wait.toml")


# ================================================================ 9. backlog
BACKLOG = 1
BACKLOG_CLIENTS = 5
HOLD_S = 1.35  # hold the server this long: the first SYN retransmission comes after 1 s


def _capture_plan() -> str:
    """Where the backlog lesson can capture real packets: "lab", "lo" or "none"."""
    from engine.capture.live import can_capture
    from engine.lab import lab_available
    if lab_available()[0]:
        return "lab"
    if can_capture()[0]:
        return "lo"
    return "none"


def _backlog_record(workdir: Path) -> Path:
    plan = _capture_plan()
    options = ["--mode", "epoll", "--port", "0", "--step", "--backlog", str(BACKLOG),
               "--kernel-interval", KERNEL_INTERVAL, "--cpu-interval", "0",
               "--packets", "captured" if plan != "none" else "derived",
               f"--load=--clients {BACKLOG_CLIENTS} --requests 1"]
    if plan == "lab":
        options.append("--lab")
    engine = Engine(Path(workdir), "backlog", *options, control=True)
    try:
        engine.wait_for("held before epoll_wait")
        time.sleep(HOLD_S)  # held: the queue fills, the SYNs beyond it are dropped and resent
        engine.command("")  # release the epoll_wait: it reports the listening socket
        engine.command("")  # and one accept(): the queue shrinks by one
        time.sleep(0.15)
        engine.command("c")  # then run freely: the queue drains, the resent SYNs get in
        engine.wait_for("requests:")  # the clients are done (the last after a resent SYN)
        time.sleep(0.1)  # the kernel observer reports how they ended
        code = engine.finish()
    finally:
        if engine.proc.poll() is None:
            engine.kill()
    if code != 0:
        raise LessonError(f"backlog: the engine failed ({code}): {engine.stderr()[-300:]}")
    return engine.trace


def _queue_lengths(log: EventLog) -> list[tuple[int, int, int]]:
    """(log index, length, backlog) of every accept_queue event."""
    return [(int(i), int(log[int(i)].data.get("length", 0)),
             int(log[int(i)].data.get("backlog") or 0))
            for i in log.indices(kinds=["accept_queue"])]


def _retransmitted_syns(log: EventLog) -> list[tuple[str, int, int]]:
    """(connection, first SYN, its retransmission with the same sequence number)."""
    first: dict[str, tuple[int, object]] = {}
    out = []
    for i in log.indices(kinds=["packet"]):
        e = log[int(i)]
        if e.data.get("flags") != "SYN" or e.data.get("origin") != "captured":
            continue
        seen = first.get(str(e.conn))
        if seen is None:
            first[str(e.conn)] = (int(i), e.data.get("tcp_seq"))
        elif seen[1] == e.data.get("tcp_seq") and str(e.conn) not in [c for c, _, _ in out]:
            out.append((str(e.conn), seen[0], int(i)))
    return out


def syn_intervals(log: EventLog, conn: str | None, before: int | None = None) -> list[float]:
    """Seconds between the SYNs ``conn``'s client sent (before ``before``): the captured
    SYNs with its first one's sequence number, else its first SYN_SENT and the kernel's
    retransmit events."""
    end = before if before is not None else len(log)
    seq = None
    times: list[int] = []
    for i in log.indices(kinds=["packet"], conn=conn):
        e = log[int(i)]
        if int(i) >= end or e.data.get("flags") != "SYN" or e.data.get("origin") != "captured":
            continue
        if seq is None:
            seq = e.data.get("tcp_seq")
        if e.data.get("tcp_seq") == seq:
            times.append(e.t_ns)
    if len(times) < 2:
        start = _state(log, "SYN_SENT", side="client", conn=conn)
        resent = [log[int(i)].t_ns for i in log.indices(kinds=["retransmit"], conn=conn)
                  if int(i) < end and log[int(i)].data.get("side") == "client"
                  and log[int(i)].data.get("state") == "SYN_SENT"]
        times = ([log[start].t_ns] if start is not None else []) + resent
    return [(b - a) / 1e9 for a, b in zip(times, times[1:])]


def _retry_text(intervals: list[float]) -> dict[str, str]:
    """What the SYN retransmissions' spacing in this recording says about the kernel:
    1 s apart (Linux 6.5 and later: tcp_syn_linear_timeouts) or doubling (older)."""
    if not intervals:
        return {"en": "", "zh_CN": ""}
    apart_en = ", ".join(f"{x:.1f} s" for x in intervals)
    apart_zh = "、".join(f"{x:.1f} 秒" for x in intervals)
    linear = all(0.8 <= x <= 1.4 for x in intervals)
    doubling = len(intervals) >= 2 and 0.8 <= intervals[0] <= 1.4 and all(
        1.6 <= b / a <= 2.5 for a, b in zip(intervals, intervals[1:]))
    en = f" Its SYN was sent {len(intervals) + 1} times, {apart_en} apart: "
    zh = f"它的 SYN 一共发了 {len(intervals) + 1} 次，间隔依次为 {apart_zh}："
    if linear:
        en += ("1 s each, linear, as Linux does for the first retries since 6.5 "
               "(net.ipv4.tcp_syn_linear_timeouts); older kernels double the wait "
               "(sending at 0, 1, 3, 7 s).")
        zh += ("每次 1 秒，线性重传，这是 Linux 6.5 起对最初几次重传的做法"
               "（net.ipv4.tcp_syn_linear_timeouts）；更早的内核每次加倍等待"
               "（在第 0、1、3、7 秒发送）。")
    elif doubling:
        en += ("the wait doubles, as kernels before Linux 6.5 do (since 6.5 the first retries "
               "come 1 s apart: net.ipv4.tcp_syn_linear_timeouts).")
        zh += ("等待时间每次加倍，这是 Linux 6.5 之前内核的做法（6.5 起最初几次重传"
               "间隔 1 秒：net.ipv4.tcp_syn_linear_timeouts）。")
    else:
        en += ("Linux 6.5 and later resend the first SYNs 1 s apart "
               "(net.ipv4.tcp_syn_linear_timeouts); older kernels double the wait (1, 3, 7 s).")
        zh += ("Linux 6.5 起最初几次 SYN 重传间隔 1 秒（net.ipv4.tcp_syn_linear_timeouts）；"
               "更早的内核每次加倍等待（第 1、3、7 秒）。")
    return {"en": en, "zh_CN": zh}


def _two_queues_text(log: EventLog, conn: str | None) -> dict[str, str]:
    """Two queues, not one; and what this recording shows of a queued connection (``conn``,
    the first accepted): ESTABLISHED on the server's side, its request arrived, before
    any accept()."""
    en = ("Two queues, not one: a SYN first makes a half-open connection in the SYN queue "
          "(SYN_RECV on the server's side); the completed handshake moves it to the accept "
          "queue, the one listen()'s backlog limits, which accept() takes from.")
    zh = ("其实有两个队列：SYN 先在半连接队列（SYN 队列）里建立一个半开连接（服务器一端处于 "
          "SYN_RECV）；握手完成后，连接转入全连接队列（accept 队列），listen() 的 backlog "
          "限制的就是它，accept() 从它里面取连接。")
    accepted = find(log, "accept", src="server")
    end = accepted if accepted is not None else len(log)
    established = _confirmed(log, str(conn), "server", "ESTABLISHED")
    if conn is not None and established is not None and established < end:
        en += (" A queued connection is already ESTABLISHED on the server's side (the kernel "
               "confirmed it) before any accept()")
        zh += "排队的连接在任何 accept() 之前，服务器一端就已经是 ESTABLISHED（内核确认）"
        sent = find(log, "send", src="client", conn=conn)
        if sent is not None and sent < end:
            en += (", and the client's request already waits in it (the socket's Recv-Q): "
                   "accept() only hands the connection over.")
            zh += "，客户端的请求也已经在里面等着（套接字的 Recv-Q）：accept() 只是把连接交出来。"
        else:
            en += ": accept() only hands it over."
            zh += "：accept() 只是把它交出来。"
    return {"en": en, "zh_CN": zh}


def _backlog_check(log: EventLog) -> None:
    queue = _queue_lengths(log)
    if not queue:
        raise LessonError("backlog: no accept queue lengths were recorded")
    listen = find(log, "listen", src="server")
    backlog = int(log[listen].data.get("backlog", BACKLOG)) if listen is not None else BACKLOG
    longest = max(length for _, length, _ in queue)
    if longest < backlog + 1:
        raise LessonError(f"backlog: the accept queue reached {longest}, not its limit "
                          f"(backlog {backlog}: {backlog + 1} connections)")
    if _captured(log) and not _retransmitted_syns(log):
        raise LessonError("backlog: packets were captured, but no SYN was retransmitted")
    if find(log, "accept", src="server") is None:
        raise LessonError("backlog: the server never accepted after the gate was released")


def _backlog_steps(log: EventLog) -> list[Step]:
    queue = _queue_lengths(log)
    longest = max(length for _, length, _ in queue)
    full = next(i for i, length, _ in queue if length == longest)
    backlog = next(b for i, _, b in queue if i == full) or BACKLOG
    held = find(log, "gate", src="server", where=lambda e: e.data.get("state") == "held")
    released = find(log, "gate", src="server",
                    where=lambda e: e.data.get("state") in ("released", "running"))
    accepted = _conns(log)
    first = accepted[0] if accepted else None
    syn_ack = find(log, "packet", conn=first, where=lambda e: e.data.get("flags") == "SYN|ACK")
    draining = [i for i, length, _ in queue if i > full and length < longest]
    shrink = draining[0] if draining else None
    drained = draining[-1] if draining else None
    # The clients the full queue kept out: observed in SYN_SENT while the server was held.
    before = released if released is not None else len(log)
    # (A client's SYN_SENT counts only while it lasts: the first clients' handshakes
    # completed at once, and their ends moved on to ESTABLISHED.)
    client_states: dict[str, tuple[int, str]] = {}
    for i in log.indices(kinds=["tcp_state"]):
        e = log[int(i)]
        if int(i) < before and e.data.get("side") == "client":
            client_states[str(e.conn)] = (int(i), str(e.data.get("state")))
    waiting = sorted(i for i, state in client_states.values() if state == "SYN_SENT")
    captured = _captured(log)
    retrans = _retransmitted_syns(log)
    if captured and retrans:
        conn, syn, again = retrans[0]
    else:
        conn = log[int(waiting[0])].conn if waiting else first
        syn = again = None
    # What the kernel observer reported of the held moment: the queue, both ends' states.
    quiet = min(x for x in (again, released, len(log)) if x is not None)
    reported = [int(i) for i in log.indices(src="kernel") if int(i) < quiet]
    settled = max([full] + [int(i) for i in waiting] + reported[-1:])
    kept_out = len({log[int(i)].conn for i in waiting})
    connected = find(log, "connect", src="client", conn=conn)
    answer = find(log, "packet", conn=conn, after=again if again is not None else -1,
                  where=lambda e: e.data.get("flags") == "SYN|ACK")
    # How long its connect() took: from its first SYN (captured), or at least from
    # when it was first seen in SYN_SENT (observed).
    since = syn if syn is not None else _state(log, "SYN_SENT", side="client", conn=conn)
    took = (log[connected].t_ns - log[since].t_ns) / 1e9 \
        if since is not None and connected is not None else None
    at_least_en = "" if syn is not None else "at least "
    at_least_zh = "" if syn is not None else "至少"
    pk_en = "captured" if captured else "derived from the calls"
    pk_zh = "抓包所得" if captured else "由系统调用推导"
    steps = [
        Step({"en": f"The server listens with backlog {backlog}, and the gate holds it before "
                    "epoll_wait: it will not call accept(). The kernel does not wait for it.",
              "zh_CN": f"服务器以 backlog {backlog} 监听，而闸门（gate）把它挡在 epoll_wait 之前："
                       "它不会调用 accept()。但内核不会等它。"},
             _at(held), "io", _pick(first)),
        Step({"en": f"{BACKLOG_CLIENTS} clients connect at once. For the first ones the server's "
                    "kernel answers SYN|ACK by itself: the handshake completes and the "
                    f"connection waits in the accept queue (packets {pk_en}).",
              "zh_CN": f"{BACKLOG_CLIENTS} 个客户端同时发起连接。对前几个，服务器内核自己回复 "
                       "SYN|ACK：握手完成，连接进入全连接队列（accept 队列）等待"
                       f"（报文{pk_zh}）。"},
             _at(syn_ack if syn_ack is not None else full), "sequence", _pick(first),
             question={"en": f"Backlog {backlog} and {BACKLOG_CLIENTS} clients: what do the "
                             "clients that do not fit get, an RST or silence?",
                       "zh_CN": f"backlog 是 {backlog}，客户端有 {BACKLOG_CLIENTS} 个："
                                "放不下的客户端会收到 RST，还是什么也收不到？"}),
    ]
    if syn is not None:
        steps.append(Step(
            {"en": "Another client's SYN gets no answer at all: no SYN|ACK, no RST. The kernel "
                   "dropped it, silently. The client waits in SYN_SENT.",
             "zh_CN": "另一个客户端的 SYN 完全没有回应：没有 SYN|ACK，也没有 RST。"
                      "内核悄悄地把它丢掉了。客户端停在 SYN_SENT。"},
            _at(syn), "sequence", _pick(conn)))
    why_en, why_zh = ("Why: the", "原因：") if syn is not None else ("The", "")
    steps.append(Step(
        {"en": f"{why_en} accept queue is full. The listening socket's Recv-Q is {longest}, its "
               f"Send-Q {backlog}: the backlog the kernel uses, listen()'s argument capped at "
               "net.core.somaxconn. The accept queue holds backlog + 1 connections; then new "
               f"SYNs are dropped. {kept_out} clients are left in SYN_SENT (observed).",
         "zh_CN": f"{why_zh}全连接队列（accept 队列）满了。监听套接字的 Recv-Q 是 {longest}，"
                  f"Send-Q 是 {backlog}：这是内核实际使用的 backlog，即 listen() 的参数，"
                  "但不超过 net.core.somaxconn。全连接队列最多容纳 backlog + 1 个连接，"
                  f"之后新来的 SYN 一律丢弃。{kept_out} 个客户端停在 SYN_SENT（观测所得）。"},
        _at(settled), "sockets", _pick(conn)))
    steps.append(Step(_two_queues_text(log, first), _at(settled), "sequence", _pick(first)))
    if again is not None:
        steps.append(Step(
            {"en": "About a second later the client's kernel sends the SYN again, with the same "
                   "sequence number: a retransmission (packets captured). connect() is still "
                   "blocked.",
             "zh_CN": "大约一秒后，客户端内核再次发送 SYN，序列号完全相同：这是重传"
                      "（抓包所得）。connect() 仍然阻塞着。"},
            _at(again), "sequence", _pick(conn)))
    else:
        steps.append(Step(
            {"en": "Their kernels retransmit the SYN after about a second, and again later; "
                   "packets are not captured here, so the SYNs themselves are not shown, only "
                   "the clients still in SYN_SENT.",
             "zh_CN": "它们的内核大约一秒后会重传 SYN，之后还会再传；这里没有抓包，"
                      "所以看不到 SYN 报文本身，只能看到客户端仍停在 SYN_SENT。"},
            _at(released if released is not None else settled), "sockets", _pick(conn)))
    steps += [
        Step({"en": "The gate is released: epoll_wait reports the listening socket and accept() "
                    "takes one connection off the queue.",
              "zh_CN": "闸门放开：epoll_wait 报告监听套接字可读，accept() 从队列中取走一个连接。"},
             _at(shrink if shrink is not None else released), "plots", _pick(first)),
        Step({"en": "The server runs freely: the queue drains to 0 and the queued clients are "
                    "served at once.",
              "zh_CN": "服务器自由运行：队列清空为 0，排队的客户端立刻得到了服务。"},
             _at(drained if drained is not None else released), "plots", _pick(first)),
    ]
    if answer is not None:
        slow_en = f"{at_least_en}{took:.1f} s" if took is not None else "more than a second"
        slow_zh = f"{at_least_zh}{took:.1f} 秒" if took is not None else "一秒多"
        retries = _retry_text(syn_intervals(log, conn, answer))
        steps.append(Step(
            {"en": "A dropped client gets in only with a later retransmission, once there is "
                   f"room: SYN|ACK at last ({pk_en}). Its connect() took {slow_en}, nearly all "
                   "of it spent waiting for retransmissions." + retries["en"],
             "zh_CN": "被丢弃的客户端要等到之后的某次重传、队列有空位时才能进来：终于收到 "
                      f"SYN|ACK（报文{pk_zh}）。它的 connect() 花了 {slow_zh}，"
                      "几乎全部耗在等待重传上。" + retries["zh_CN"]},
            _at(answer), "sequence", _pick(conn)))
    steps.append(Step(
        {"en": "The whole run: the queue stayed full while the server did not accept, and "
               f"the {kept_out} clients it kept out waited for SYN retransmissions, seconds, "
               "not microseconds. A backlog too small costs that; the lecture's listen(128) "
               "leaves room.",
         "zh_CN": "整个过程：服务器不调用 accept() 的时候队列一直是满的，被挡在外面的 "
                  f"{kept_out} 个客户端只能等 SYN 重传，代价以秒计，而不是微秒。"
                  "backlog 太小就要付出这个代价；讲义里的 listen(128) 留足了余地。"},
        lambda log: last(log), "plots", _pick(conn)))
    return steps


_backlog_needs = _needs_kernel(
    "the accept queue's length is read from the kernel (the listening socket in sock_diag or "
    "/proc), which cannot be asked here: {reason}")


BACKLOG_LESSON = Lesson(
    name="backlog",
    length=10,
    title={"en": "The backlog: a server that does not accept",
           "zh_CN": "backlog：不调用 accept 的服务器"},
    section="3.1",
    summary={"en": "the accept queue fills; further SYNs are dropped and retransmitted",
             "zh_CN": "accept 队列被填满；之后的 SYN 被丢弃并重传"},
    record=_backlog_record, steps=_backlog_steps, check=_backlog_check, needs=_backlog_needs)

LESSONS = [TIME_WAIT, CLOSE_WAIT, BACKLOG_LESSON]
