"""Lessons on what the kernel keeps after (or before) the program: TIME_WAIT and
SO_REUSEADDR, CLOSE_WAIT left by a server that never closes, and the accept
queue of a server that does not accept (the listen backlog).

Each records real runs of the engine (``sockscope serve`` children) and, where
one process cannot show it all, merges their traces into one.
"""
from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable

from engine.events import Event
from engine.trace import TraceWriter, read_trace

from ..model import EventLog
from .base import Engine, Lesson, LessonError, Step, find, last
from .files import FILES
from .files import load as load_file

KERNEL_INTERVAL = "0.001"  # poll the kernel every millisecond: short states are seen


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


# ================================================================ reading the log
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
# Written as a lesson file (files/time-wait.toml): three engines on one port, the second
# of which must fail to start (its trace holds the EADDRINUSE it met).
TIME_WAIT = load_file(FILES / "time-wait.toml")


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
