"""Lessons on the I/O models: a thread per connection (3.4–3.5), non-blocking
polling (3.6) and epoll, level vs edge (3.9)."""
from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import orjson

from ..model import EventLog
from .base import Lesson, LessonError, Step, find, last, serve
from .files import FILES
from .files import load as load_file


# ---------------------------------------------------------------- helpers
def _server(log: EventLog, kind: str, **kw) -> int | None:  # type: ignore[no-untyped-def]
    return find(log, kind, src="server", **kw)


# ---------------------------------------------------------------- threads (3.4–3.5)
# Written as a lesson file (files/threads.toml).
THREADS = load_file(FILES / "threads.toml")


# ---------------------------------------------------------------- nonblocking (3.6)
# Written as a lesson file (files/nonblocking.toml).
NONBLOCKING = load_file(FILES / "nonblocking.toml")


# ---------------------------------------------------------------- epoll (3.9)
PIPELINED = 12  # requests in one write: 12 x 93 bytes > the lecture's recv(1024)
EPOLL_RUNS = (
    ("level", ("--trigger", "level", "--no-drain")),  # one recv(1024) per report; reported again
    ("edge", ("--trigger", "edge")),  # drained until EAGAIN
    ("edge-no-drain", ("--trigger", "edge", "--no-drain")),  # the bug: stalls
)
CLIENT_TIMEOUT = 1.0  # seconds the stalled client waits before it gives up


def _epoll_record(workdir: Path) -> Path:
    """Three runs, one after the other, merged into one trace (one clock: monotonic)."""
    workdir = Path(workdir)
    lines: list[bytes] = []
    header: dict | None = None
    for name, options in EPOLL_RUNS:
        trace = serve(workdir, f"epoll-{name}", "--mode", "epoll", *options,
                      "--kernel-interval", "0.002",
                      load=f"--clients 1 --requests {2 * PIPELINED} --pipeline {PIPELINED} "
                           f"--think 200 --timeout {CLIENT_TIMEOUT}")
        with open(trace, "rb") as f:
            head, *events = f.read().splitlines()
        if header is None:
            header = orjson.loads(head)
        lines += [e for e in events if e.strip()]
    assert header is not None
    header["runs"] = [name for name, _ in EPOLL_RUNS]
    rows = sorted((orjson.loads(line) for line in lines), key=lambda r: (r["t_ns"], r["seq"]))
    out = workdir / "epoll.jsonl"
    with open(out, "wb") as f:
        f.write(orjson.dumps(header) + b"\n")
        for seq, row in enumerate(rows):  # one numbering for the merged runs
            row["seq"] = seq
            f.write(orjson.dumps(row) + b"\n")
    return out


def _runs(log: EventLog) -> dict[str, tuple[int, int]]:
    """Each run's log range [start, stop), by its mode event."""
    starts = log.indices(kinds=["mode"], src="server").tolist()
    runs: dict[str, tuple[int, int]] = {}
    for k, i in enumerate(starts):
        d = log[i].data
        name = str(d.get("trigger")) + ("-no-drain" if d.get("no_drain") else "")
        runs[name] = (i, starts[k + 1] if k + 1 < len(starts) else len(log))
    return runs


def _reports(log: EventLog, fd: int, start: int, stop: int) -> list[int]:
    """The epoll_waits in [start, stop) whose ready list holds ``fd``."""
    return [i for i in log.indices(kinds=["epoll_wait"], src="server", start=start,
                                   stop=stop).tolist()
            if any(int(f) == fd for f, _ in log[i].data.get("ready") or ())]


def _stalled(log: EventLog) -> dict:
    """The buggy run's stalled connection, with what shows the stall (LessonError if none)."""
    runs = _runs(log)
    if "edge-no-drain" not in runs:
        raise LessonError("epoll: no edge-triggered run without draining was recorded")
    start, stop = runs["edge-no-drain"]
    for i in log.indices(kinds=["accept"], src="server", start=start, stop=stop).tolist():
        conn, fd = log[i].conn, log[i].fd
        assert conn is not None
        gave_up = find(log, "close", src="client", conn=conn, after=i,
                       where=lambda e: e.data.get("reason") == "error")
        if gave_up is None or gave_up >= stop:
            continue
        sent = sum(int(log[k].data.get("bytes", 0)) for k in
                   log.indices(conn=conn, kinds=["send"], src="client", stop=gave_up).tolist())
        recvs = log.indices(conn=conn, kinds=["recv"], src="server", start=i, stop=gave_up)
        read = sum(int(log[k].data.get("bytes", 0)) for k in recvs.tolist())
        reports = _reports(log, fd, i, gave_up)
        if not len(recvs) or not reports or read >= sent:
            continue
        requests = log.indices(conn=conn, kinds=["request"], src="server", stop=gave_up)
        answers = log.indices(conn=conn, kinds=["response"], src="server", stop=gave_up)
        return {"conn": conn, "fd": fd, "accept": i, "gave_up": gave_up, "sent": sent,
                "read": read, "reports": reports, "first_recv": int(recvs[0]),
                "requests": len(requests), "answers": len(answers),
                "later": _reports(log, fd, gave_up, stop)}
    raise LessonError("epoll: in the edge-triggered run without draining no client was left "
                      "waiting with unread bytes in the server's socket")


def _epoll_check(log: EventLog) -> None:
    runs = _runs(log)
    for name in ("level-no-drain", "edge"):
        if name not in runs:
            raise LessonError(f"epoll: the {name} run is missing")
    # Level-triggered, one recv(1024) per report: the same fd is reported again.
    start, stop = runs["level-no-drain"]
    accept = find(log, "accept", src="server", after=start - 1)
    if accept is None or accept >= stop:
        raise LessonError("epoll: the level-triggered run accepted nothing")
    reports = _reports(log, log[accept].fd, accept, stop)
    again = [b for a, b in pairwise(reports)
             if find(log, "recv", src="server", conn=log[accept].conn, after=a) is not None
             and find(log, "epoll_wait", src="server", after=a) == b]
    if not again:
        raise LessonError("epoll: level-triggered never reported an fd again in the next wait")
    # Edge-triggered, correct: drained until EAGAIN.
    start, stop = runs["edge"]
    eagain = find(log, "eagain", src="server", after=start - 1,
                  where=lambda e: e.data.get("op") == "recv" and e.conn is not None)
    if eagain is None or eagain >= stop:
        raise LessonError("epoll: the edge-triggered server never read until EAGAIN")
    gave_up = find(log, "close", src="client", after=start - 1,
                   where=lambda e: e.data.get("reason") == "error")
    if gave_up is not None and gave_up < stop:
        raise LessonError("epoll: a client of the correct edge-triggered run gave up")
    # The bug: a connection stalls.
    s = _stalled(log)
    if len(s["reports"]) != 1:
        raise LessonError(f"epoll: the stalled fd was reported {len(s['reports'])} times "
                          "before the client gave up (once expected)")


def _epoll_steps(log: EventLog) -> list[Step]:
    runs = _runs(log)
    lv0, lv1 = runs["level-no-drain"]
    ed0, _ = runs["edge"]
    s = _stalled(log)
    level_conn = log[find(log, "accept", src="server", after=lv0 - 1)].conn  # type: ignore[index]
    edge_conn = log[find(log, "accept", src="server", after=ed0 - 1)].conn  # type: ignore[index]
    lv_first = find(log, "recv", src="server", conn=level_conn)
    lv_reports = _reports(log, log[lv_first].fd, lv0, lv1) if lv_first is not None else []
    lv_again = next((r for r in lv_reports if lv_first is not None and r > lv_first), None)
    lv_second = find(log, "recv", src="server", conn=level_conn, after=lv_again) \
        if lv_again is not None else None
    ed_recv = find(log, "recv", src="server", conn=edge_conn)
    ed_eagain = find(log, "eagain", src="server", conn=edge_conn,
                     where=lambda e: e.data.get("op") == "recv")
    read, sent, left = s["read"], s["sent"], s["sent"] - s["read"]
    first_batch = find(log, "send", src="client", conn=s["conn"])
    batch = int(log[first_batch].data.get("bytes", 0)) if first_batch is not None else sent
    lv_rest = int(log[lv_second].data.get("bytes", 0)) if lv_second is not None else 0
    # During the stall: the loop asleep in epoll_wait, nothing to wake it (its timeout is
    # the nearest deadline), so the step stands on the last event of another source (the
    # kernel, the clients) before the client gives up: the server is waiting there.
    stall_wait = next((k for k in range(s["gave_up"] - 1, s["first_recv"], -1)
                       if log[k].src != "server"), s["gave_up"] - 1)
    fin = find(log, "packet", conn=s["conn"], after=s["gave_up"] - 1,
               where=lambda e: "FIN" in str(e.data.get("flags"))) or s["gave_up"]
    late = s["gave_up"]
    if s["later"]:
        late = find(log, "recv", src="server", conn=s["conn"], after=s["later"][0]) \
            or s["later"][0]
    waited = (int(log.column("t_ns")[s["gave_up"]]) - int(log.column("t_ns")[s["first_recv"]])) \
        / 1e9
    conn_l = lambda log: level_conn
    conn_e = lambda log: edge_conn
    conn_s = lambda log: s["conn"]
    return [
        Step({"en": f"Three runs of one client that pipelines {PIPELINED} requests in one write "
                    f"({batch} bytes). epoll keeps its interest list in the kernel; an arrival's "
                    "callback puts the fd on a ready list, and epoll_wait copies the ready events "
                    "out to the server: no memory is shared between kernel and application. "
                    "First level-triggered, reading like lecture 3.9's server: one recv(1024) "
                    "per report. It takes 1024 bytes; the rest stays in the socket.",
              "zh_CN": f"同一个客户端跑三次：它以管线化（pipelining）方式一次写出 {PIPELINED} 个请求"
                       f"（{batch} 字节）。"
                       "epoll 的关注列表（interest list）在内核里；数据到达时，回调把 fd 放进就绪"
                       "列表，epoll_wait 再把就绪事件复制给服务器：内核和应用程序之间并没有共享"
                       "内存。第一次是水平触发，像讲义 3.9 的服务器那样每次通知只调用一次 "
                       "recv(1024)：读走 1024 字节，其余的留在套接字里。"},
             lambda log: lv_first, "io", conn_l),
        Step({"en": f"Level-triggered: unread data remains, so the next epoll_wait reports the "
                    f"same fd again (\"again\"). The server reads the other {lv_rest} bytes: "
                    "nothing is lost, it only costs one more wait. (Lecture 3.9 tests "
                    "event == select.EPOLLIN; a report is a set of bits, so test "
                    "event & select.EPOLLIN, or a readable report that also carries HUP or "
                    "ERR is never read.)",
              "zh_CN": f"水平触发：因为还有未读的数据，下一次 epoll_wait 再次报告同一个 fd"
                       f"（“again”标记）。服务器读走剩下的 {lv_rest} 字节：什么也没丢，"
                       "只是多等了一次。（讲义 3.9 用 event == select.EPOLLIN 来判断；"
                       "报告是一组标志位，应该写 event & select.EPOLLIN，否则同时带有 HUP "
                       "或 ERR 的可读报告就永远不会被读取。）"},
             lambda log: lv_second if lv_second is not None else lv_again, "io", conn_l),
        Step({"en": "Edge-triggered (EPOLLET), written correctly: the socket is non-blocking, "
                    "the fd is reported once, when the bytes arrive, and the server reads in a "
                    "loop: this recv takes all "
                    f"{int(log[ed_recv].data.get('bytes', 0)) if ed_recv is not None else batch} "
                    "bytes...",
              "zh_CN": "边缘触发（EPOLLET），正确的写法：套接字设为非阻塞，字节到达时 fd 只被报告"
                       f"一次，服务器循环读取：这次 recv 读走了全部 "
                       f"{int(log[ed_recv].data.get('bytes', 0)) if ed_recv is not None else batch}"
                       " 字节……"},
             lambda log: ed_recv, "io", conn_e),
        Step({"en": "...and it goes on reading until recv says EAGAIN: the socket is drained. "
                    "That last recv() finds nothing: on a blocking socket it would wait there "
                    "and hang the whole loop, every other client with it; so the socket must be "
                    "non-blocking. Only then may it wait again: an edge must be handled "
                    "completely (to EAGAIN), not immediately; bytes it left would not be "
                    "reported again until something new arrives.",
              "zh_CN": "……然后继续读，直到 recv 返回 EAGAIN：套接字被读空了。最后这次 recv() "
                       "什么也读不到：如果套接字是阻塞的，它就会停在那里等待，把整个循环连同"
                       "其他所有客户端一起卡住；所以套接字必须是非阻塞的。读空之后才能再去等待："
                       "边缘触发的事件要处理完（读到 EAGAIN），而不是要“立即”处理；留下没读的"
                       "字节，在有新东西到达之前不会再被报告。"},
             lambda log: ed_eagain, "io", conn_e),
        Step({"en": f"Now the bug: edge-triggered, but one recv(1024) per report, as in the "
                    f"lecture. It reads {read} of the {sent} bytes and answers the "
                    f"{s['answers']} complete requests; {left} bytes, the last request, stay in "
                    f"the socket.",
              "zh_CN": f"现在看这个 bug：边缘触发，却像讲义那样每次通知只 recv(1024) 一次。"
                       f"它读了 {sent} 字节中的 {read} 字节，回答了 {s['answers']} 个完整的请求；"
                       f"剩下的 {left} 字节，也就是最后一个请求，留在了套接字里。"},
             lambda log: s["first_recv"], "io", conn_s,
             question={"en": f"Under edge-triggered, will epoll_wait report fd {s['fd']} again "
                             f"for these {left} unread bytes?",
                       "zh_CN": f"在边缘触发下，epoll_wait 会因为这 {left} 字节没读而再次报告 "
                                f"fd {s['fd']} 吗？"},
             choices=[{"en": "yes, on its next call", "zh_CN": "会，下一次调用就报告"},
                      {"en": "no: they are not new", "zh_CN": "不会：它们不是新到的"}],
             answer=1),
        Step({"en": f"Not for them: those {left} bytes are not new, so there is no new edge: "
                    "the server sleeps in epoll_wait and nothing wakes it, though fd "
                    f"{s['fd']} is still watched. Edge-triggered does not drop the fd: any new "
                    "arrival (more bytes, a FIN, an error) reports it again, even while old "
                    "bytes sit unread" + (" (the next step shows one)" if s["later"] else "")
                    + ". But nothing new comes: the client waits for the answer to its last "
                      "request.",
              "zh_CN": f"不会：这 {left} 字节不是新到的数据，所以没有新的“边缘”：虽然 fd "
                       f"{s['fd']} 仍在关注列表里，服务器却睡在 epoll_wait 里，没有任何东西唤醒它。"
                       "边缘触发并没有丢掉这个 fd：只要有新东西到达（新的字节、FIN、错误），"
                       "即使旧的字节还没读，它也会再次被报告"
                       + ("（下一步就能看到）" if s["later"] else "")
                       + "。可是没有新东西来：客户端一直在等它最后一个请求的响应。"},
             lambda log: stall_wait, "io", conn_s),
        Step({"en": f"After {waited:.1f} s the client gives up (its time-out) and closes. Its "
                    f"FIN is something new: an edge. Now fd {s['fd']} is reported and the "
                    f"forgotten {left} bytes are read, far too late: their client is gone.",
              "zh_CN": f"{waited:.1f} 秒后，客户端超时放弃，关闭了连接。它的 FIN 是新到的东西："
                       f"形成了一个边缘。这时 fd {s['fd']} 才被报告，那被遗忘的 {left} 字节才被"
                       "读到，可是太晚了：客户端已经走了。"} if s["later"] else
             {"en": f"After {waited:.1f} s the client gives up (its time-out) and closes: its "
                    "last request was never answered.",
              "zh_CN": f"{waited:.1f} 秒后，客户端超时放弃，关闭了连接：它的最后一个请求始终没有"
                       "得到回答。"},
             lambda log: late, "io", conn_s),
        Step({"en": f"The connection on the wire: the {sent} bytes went out and the server's "
                    f"kernel acknowledged them at once: they were in its socket all along. "
                    f"{s['answers']} answers came back, then {waited:.1f} s of silence, then the "
                    "client's FIN.",
              "zh_CN": f"从线路上看这个连接：{sent} 字节发了出去，服务器的内核立刻确认（ACK）了："
                       f"数据一直就在它的套接字里。回来了 {s['answers']} 个响应，然后是 "
                       f"{waited:.1f} 秒的沉默，最后是客户端的 FIN。"},
             lambda log: max(fin, late), "sequence", conn_s),
        Step({"en": "The three runs on one time axis: level and correct edge answer at once; the "
                    f"buggy edge run leaves a hole of {waited:.1f} s, its loop asleep in "
                    "epoll_wait with the bytes unread. The rule: level-triggered forgives reading only part, "
                    "edge-triggered does not: with EPOLLET, read (and accept) until EAGAIN, "
                    "every time.",
              "zh_CN": "三次运行放在同一条时间轴上：水平触发和正确的边缘触发都立刻回答；有 bug 的"
                       f"边缘触发留下了 {waited:.1f} 秒的空洞，其间循环一直睡在 epoll_wait 里，字节没人读。"
                       "规则：水平触发容忍只读一部分，边缘触发不会：使用 EPOLLET 时，每次都要"
                       "一直读（和 accept）到 EAGAIN 为止。"},
             lambda log: last(log), "plots", conn_s),
    ]


def _epoll_needs() -> tuple[bool, str]:
    import select
    if not hasattr(select, "epoll"):
        return False, ("epoll is a Linux interface and this system has none (elsewhere "
                       "SockScope's selectors mode does the same work with kqueue or select)")
    return True, ""


EPOLL = Lesson(
    name="epoll",
    length=9,
    title={"en": "epoll: level vs edge", "zh_CN": "epoll：水平触发与边缘触发"},
    section="3.9",
    summary={"en": "level-triggered reports unread data again; edge-triggered must drain, or a "
                   "client stalls",
             "zh_CN": "水平触发会重复报告未读的数据；边缘触发必须读空，否则客户端会卡住"},
    record=_epoll_record, steps=_epoll_steps, check=_epoll_check, needs=_epoll_needs)

LESSONS = [THREADS, NONBLOCKING, EPOLL]
