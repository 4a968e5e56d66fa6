"""The lecture's other servers, each recorded for real:

- processes (3.4's remark on processes): fork() gives the child a copy of the
  connected socket's descriptor; the kernel closes the socket (FIN) only when the
  last descriptor is closed. With and without the bug of a parent that keeps its copy.
- gevent (3.5): a greenlet per connection on one OS thread; a recv() that would block
  parks the greenlet, and the hub's epoll_wait wakes it.
- asyncio: a task per connection; the event loop's callbacks read for the tasks'
  streams, and the tasks parse and answer.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..model import EventLog
from .base import Lesson, LessonError, Step, find, serve
from .kernel import _merge

# --------------------------------------------------------------------------- processes
PROCESS_LOAD = "--clients 1 --requests 1 --short --timeout 1"
KEEP = ("--mode", "processes", "--policy", "close", "--keep-parent-copy")


def _record_processes(workdir: Path) -> Path:
    runs = [serve(workdir, "processes-closes", "--mode", "processes", "--policy", "close",
                  "--cpu-interval", "0", load=PROCESS_LOAD),
            serve(workdir, "processes-keeps", *KEEP, "--cpu-interval", "0", load=PROCESS_LOAD)]
    return _merge(Path(workdir) / "processes.jsonl", runs, [], lesson="processes")


def _runs(log: EventLog) -> list[tuple[int, int, int]]:
    """Each engine's run: (first index, last index, its port)."""
    starts = [int(i) for i in log.indices(kinds=["mode"], src="server")]
    out = []
    for k, i in enumerate(starts):
        end = starts[k + 1] - 1 if k + 1 < len(starts) else len(log) - 1
        listen = find(log, "listen", src="server", after=i - 1)
        port = int(log[listen].data.get("port", 0)) if listen is not None else 0
        out.append((i, end, port))
    return out


def _server_fin(log: EventLog, conn: str | None, port: int, after: int | None,
                before: int | None = None) -> int | None:
    """The first segment with FIN the server's end sent on ``conn`` after ``after``."""
    if conn is None or after is None:
        return None
    i = find(log, "packet", conn=conn, after=after,
             where=lambda e: "FIN" in str(e.data.get("flags")) and e.data.get("sport") == port)
    return i if i is not None and (before is None or i < before) else None


def _close(log: EventLog, conn: str | None, copy: str, after: int) -> int | None:
    return find(log, "close", src="server", conn=conn, after=after,
                where=lambda e: e.data.get("copy") == copy)


def _process_moments(log: EventLog) -> dict:  # type: ignore[type-arg]
    runs = _runs(log)
    if len(runs) != 2:
        return {}
    (a0, a1, a_port), (b0, b1, b_port) = runs
    m: dict = {"a_port": a_port, "b_port": b_port}  # type: ignore[type-arg]
    m["a_fork"] = find(log, "fork", src="server", after=a0 - 1)
    a = m["a"] = log[m["a_fork"]].conn if m["a_fork"] is not None else None
    m["a_parent_close"] = _close(log, a, "parent", a0 - 1)
    m["a_child_close"] = _close(log, a, "child", a0 - 1)
    m["a_fin"] = _server_fin(log, a, a_port, m["a_child_close"])
    m["a_fin_early"] = _server_fin(log, a, a_port, m["a_fork"], m["a_child_close"])
    m["b_fork"] = find(log, "fork", src="server", after=b0 - 1)
    b = m["b"] = log[m["b_fork"]].conn if m["b_fork"] is not None else None
    m["b_child_close"] = _close(log, b, "child", b0 - 1)
    m["b_answer"] = find(log, "recv", src="client", conn=b,
                         where=lambda e: int(e.data.get("bytes", 0)) > 0)
    m["b_client_close"] = find(log, "close", src="client", conn=b)
    m["b_parent_close"] = _close(log, b, "parent", b0 - 1)
    m["b_fin_early"] = _server_fin(log, b, b_port, m["b_fork"], m["b_parent_close"])
    m["b_fin"] = _server_fin(log, b, b_port, m["b_parent_close"])
    m["b_close_wait"] = find(log, "tcp_state", conn=b, after=m["b_client_close"] or 0,
                             where=lambda e: e.data.get("side") == "server"
                             and e.data.get("state") == "CLOSE_WAIT")
    m["b_exit"] = find(log, "process_exit", src="server", conn=b)
    return m


def _check_processes(log: EventLog) -> None:
    m = _process_moments(log)
    if not m:
        raise LessonError("processes: the two runs are not both in the recording")
    need = ("a_fork", "a_parent_close", "a_child_close", "a_fin", "b_fork", "b_child_close",
            "b_answer", "b_client_close", "b_parent_close", "b_exit")
    missing = [k for k in need if m[k] is None]
    if missing:
        raise LessonError(f"processes: the recording lacks {', '.join(missing)}")
    if not m["a_fork"] < m["a_parent_close"] < m["a_child_close"] < m["a_fin"]:
        raise LessonError("processes: the parent's copy was not closed before the child's")
    if m["a_fin_early"] is not None:
        raise LessonError("processes: a FIN left before the last descriptor was closed")
    if log[m["a_parent_close"]].data.get("last") is not False or \
            log[m["a_child_close"]].data.get("last") is not True:
        raise LessonError("processes: the closes do not say which was the last")
    if log[m["b_child_close"]].data.get("last") is not False or \
            not m["b_child_close"] < m["b_client_close"] < m["b_parent_close"]:
        raise LessonError("processes: with the bug, the client did not close first")
    if m["b_fin_early"] is not None:
        raise LessonError("processes: with the bug, a FIN left before the parent closed")


def _ms(log: EventLog, a: int | None, b: int | None) -> float:
    return 0.0 if a is None or b is None else (log[b].t_ns - log[a].t_ns) / 1e6


def _process_steps(log: EventLog) -> list[Step]:
    m = _process_moments(log)
    a, b = m["a"], m["b"]
    fork = log[m["a_fork"]]
    fd, child = fork.fd, fork.data.get("child")
    child_b = log[m["b_fork"]].data.get("child")
    fd_b = log[m["b_fork"]].fd
    waited = _ms(log, m["b_answer"], m["b_client_close"])
    footnote = "sockscope serve " + " ".join(KEEP)
    return [
        Step({"en": f"A server that forks: the parent accept()s the connection (fd {fd}) and "
                    f"calls fork(). Child {child} inherits the descriptor: fd {fd} in both "
                    "processes, one socket. The kernel counts the descriptors that refer to it.",
              "zh_CN": f"一个 fork 的服务器：父进程 accept() 得到连接（fd {fd}），然后调用 fork()。"
                       f"子进程 {child} 继承了这个描述符：两个进程里都有 fd {fd}，指向同一个套接字。"
                       "内核记着有几个描述符指向它。"},
             lambda log: m["a_fork"], "io", lambda log: a),
        Step({"en": f"The parent closes its copy (fd {fd}). Nothing leaves on the wire: the "
                    "child's descriptor still refers to the socket, so the socket stays open.",
              "zh_CN": f"父进程关闭自己的那份（fd {fd}）。线路上什么也没发：子进程的描述符还指向"
                       "这个套接字，所以套接字仍然打开着。"},
             lambda log: m["a_parent_close"], "io", lambda log: a,
             question={"en": "The child answers, then calls close(). Does a FIN leave now?",
                       "zh_CN": "子进程回答完请求，然后调用 close()。这时会发出 FIN 吗？"},
             choices=[{"en": "yes", "zh_CN": "会"},
                      {"en": "no, not until the process exits", "zh_CN": "不会，要等进程退出"}],
             answer=0),
        Step({"en": "Yes: the child's close() closed the last descriptor, so the kernel sends "
                    "FIN, and the client reads end-of-file right after the whole answer.",
              "zh_CN": "会：子进程的 close() 关掉的是最后一个描述符，于是内核发出 FIN，客户端读完"
                       "整个回答后马上读到 EOF（recv() 返回 0）。"},
             lambda log: m["a_fin"], "sequence", lambda log: a),
        Step({"en": "The same server with the lecture's bug: the parent never closes its copy. "
                    f"Child {child_b} answers and calls close(), but that is not the last "
                    f"descriptor: the parent still holds fd {fd_b}.",
              "zh_CN": "同一个服务器，带着讲义里的那个错误：父进程从不关闭自己的那份。"
                       f"子进程 {child_b} 回答完并调用 close()，但这不是最后一个描述符："
                       f"父进程还拿着 fd {fd_b}。"},
             lambda log: m["b_child_close"], "io", lambda log: b,
             question={"en": "The client asked for Connection: close and has the whole answer. "
                             "When does it read end-of-file?",
                       "zh_CN": "客户端要求了 Connection: close，也收到了完整的回答。"
                                "它什么时候能读到 EOF？"},
             footnote=footnote),
        Step({"en": "Never, from this server: no FIN left. The client waited "
                    f"{waited:,.0f} ms for end-of-file, gave up and closed first; the server's "
                    "socket is now in CLOSE_WAIT, held open by the parent.",
              "zh_CN": "这个服务器永远不会给它：没有发出 FIN。客户端等了 "
                       f"{waited:,.0f} 毫秒的 EOF，放弃了，自己先关闭；服务器这一端的套接字"
                       "现在处于 CLOSE_WAIT，被父进程一直开着。"},
             lambda log: m["b_close_wait"] or m["b_client_close"], "sequence",
             lambda log: b, footnote=footnote),
        Step({"en": "Only when the server stops does the parent close its copy. That is the "
                    "last descriptor, and only now does the server's FIN leave. Threads share "
                    "one descriptor table, so a threaded server has no copy to close (3.4).",
              "zh_CN": "直到服务器停止，父进程才关闭它的那份。那是最后一个描述符，服务器的 FIN "
                       "直到这时才发出。线程共用同一张描述符表，所以多线程的服务器没有这份副本"
                       "要关（3.4）。"},
             lambda log: m["b_fin"] or m["b_parent_close"], "sequence", lambda log: b,
             footnote=footnote),
    ]


def _needs_fork() -> tuple[bool, str]:
    if not hasattr(os, "fork"):
        return False, "this system has no fork() (Windows)"
    return True, ""


PROCESSES = Lesson(
    name="processes",
    length=6,
    title={"en": "A process per connection: two descriptors, one socket",
           "zh_CN": "每个连接一个进程：两个描述符，一个套接字"},
    section="3.4",
    summary={"en": "fork() copies the descriptor; the FIN leaves when the last copy is closed, "
                   "and a parent that keeps its copy holds every client",
             "zh_CN": "fork() 复制了描述符；最后一份关闭时才发 FIN，父进程不关自己那份，"
                      "每个客户端都会被拖住"},
    record=_record_processes, steps=_process_steps, check=_check_processes, needs=_needs_fork)


# --------------------------------------------------------------------------- gevent
COROUTINE_LOAD = "--clients 3 --requests 2 --think 120"


def _record_coroutines(mode: str) -> object:
    def record(workdir: Path) -> Path:
        return serve(workdir, mode, "--mode", mode, "--cpu-interval", "0", load=COROUTINE_LOAD)
    return record


def _coroutine_moments(log: EventLog) -> dict:  # type: ignore[type-arg]
    starts = [int(i) for i in log.indices(kinds=["task_start"], src="server")]
    m: dict = {"starts": starts}  # type: ignore[type-arg]
    if len(starts) < 3:
        return m
    last = starts[2]
    m["all_started"] = last
    m["park"] = find(log, "eagain", src="server", after=last,
                     where=lambda e: e.conn is not None)
    # every coroutine waiting: the loop's wait that blocked the longest, after all started
    waits = [int(i) for i in log.indices(kinds=["wait"], src="server", start=last)]
    m["sleep"] = max(waits, key=lambda i: int(log[i].data.get("blocked_ns") or 0), default=None) \
        if waits and log[waits[0]].data.get("blocked_ns") is not None else None
    m["woken"] = find(log, "request", src="server", after=m["sleep"]) \
        if m["sleep"] is not None else None
    # asyncio: a read the loop made for a stream whose task had not run yet
    m["loop_read"] = find(log, "recv", src="server", after=last,
                          where=lambda e: e.data.get("by") == "loop"
                          and int(e.data.get("bytes", 0)) > 0)
    m["task_parse"] = find(log, "request", src="server", conn=log[m["loop_read"]].conn,
                           after=m["loop_read"]) if m["loop_read"] is not None else None
    m["task_send"] = find(log, "send", src="server", after=m["task_parse"] or last,
                          where=lambda e: e.data.get("by") == "task") \
        if m["task_parse"] is not None else None
    m["blocking_wait"] = find(log, "wait", src="server", after=last,
                              where=lambda e: e.data.get("timeout") != 0
                              and bool(e.data.get("ready")))
    m["last_end"] = find(log, "task_end", src="server", nth=-1)
    return m


def _one_thread(log: EventLog, kinds: list[str]) -> set[int]:
    return {log[int(i)].thread for i in log.indices(kinds=kinds, src="server")
            if log[int(i)].conn is not None}


def _check_gevent(log: EventLog) -> None:
    m = _coroutine_moments(log)
    if len(m["starts"]) != 3:
        raise LessonError("gevent: not three greenlets")
    for key in ("park", "sleep", "woken"):
        if m.get(key) is None:
            raise LessonError(f"gevent: the recording lacks {key}")
    if len(_one_thread(log, ["recv", "send", "request", "response"])) != 1:
        raise LessonError("gevent: the greenlets did not all run on one OS thread")
    if int(log[m["sleep"]].data.get("blocked_ns") or 0) < 50_000_000:
        raise LessonError("gevent: the hub never slept while every greenlet waited")


def _count(log: EventLog, kind: str, **data: object) -> int:
    return sum(1 for i in log.indices(kinds=[kind], src="server")
               if all(log[int(i)].data.get(k) == v for k, v in data.items()))


def _gevent_steps(log: EventLog) -> list[Step]:
    m = _coroutine_moments(log)
    starts = m["starts"]
    tid = log[starts[0]].thread
    names = ", ".join(str(log[i].data.get("name")) for i in starts[:3])
    park = log[m["park"]]
    park_name = f"greenlet-{park.data.get('greenlet')}"
    slept = int(log[m["sleep"]].data.get("blocked_ns") or 0) / 1e6
    call = str(log[m["sleep"]].data.get("call") or "epoll_wait").split()[-1]  # (libev's)
    woken = log[m["woken"]]
    woken_name = f"greenlet-{woken.data.get('greenlet')}"
    requests = _count(log, "request")
    turns = len(log.indices(kinds=["wait"], src="server"))
    return [
        Step({"en": f"gevent: each connection gets a greenlet ({names}), and all of them run "
                    f"on one OS thread (thread {tid}). A greenlet is a function with its own "
                    "stack that can pause in the middle and be resumed later.",
              "zh_CN": f"gevent：每个连接一个 greenlet（{names}），它们都跑在同一个操作系统线程上"
                       f"（线程 {tid}）。greenlet 是有自己栈的函数，可以在中途暂停，之后再接着运行。"},
             lambda log: m["all_started"], "io", lambda log: log[m["all_started"]].conn),
        Step({"en": f"{park_name} calls recv() on a gevent socket; nothing has arrived, so the "
                    "kernel answers EAGAIN. The thread does not block: the greenlet parks and "
                    "switches to the hub, which runs whoever can go on.",
              "zh_CN": f"{park_name} 在 gevent 的套接字上调用 recv()；数据还没到，内核返回 EAGAIN。"
                       "线程并不阻塞：这个 greenlet 挂起，切换到 hub，由 hub 运行还能继续的那个。"},
             lambda log: m["park"], "io", lambda log: park.conn),
        Step({"en": f"Every greenlet is parked. The hub calls {call}, and the one thread "
                    f"sleeps in the kernel ({slept:,.0f} ms) until a client sends.",
              "zh_CN": f"所有 greenlet 都挂起了。hub 调用 {call}，这唯一的线程在内核里睡了 "
                       f"{slept:,.0f} 毫秒，直到有客户端发来数据。"},
             lambda log: m["sleep"], "io", lambda log: None,
             question={"en": "A request arrives for one of the parked greenlets. Which OS "
                             "thread runs it?",
                       "zh_CN": "一个挂起的 greenlet 的请求到了。哪个操作系统线程来运行它？"}),
        Step({"en": f"The same thread {tid}: the hub wakes {woken_name}, whose recv() now "
                    "returns the request. The lecture's monkey.patch_all() puts this socket "
                    "class in place of socket.socket: coroutines are epoll in disguise.",
              "zh_CN": f"还是同一个线程 {tid}：hub 唤醒 {woken_name}，它的 recv() 这次返回了请求。"
                       "讲义里的 monkey.patch_all() 就是把 socket.socket 换成这个套接字类："
                       "协程其实是换了装的 epoll。"},
             lambda log: m["woken"], "io", lambda log: woken.conn),
        Step({"en": f"In all: {len(starts)} greenlets answered {requests} requests on one OS "
                    f"thread, in {turns} turns of the hub's loop. One greenlet runs at a time: "
                    "a greenlet that computes without calling I/O holds up all the others.",
              "zh_CN": f"合计：{len(starts)} 个 greenlet 在一个操作系统线程上回答了 {requests} 个请求，"
                       f"hub 的循环转了 {turns} 圈。同一时刻只有一个 greenlet 在运行：一个只计算、"
                       "不做 I/O 的 greenlet 会拖住其他所有的。"},
             lambda log: m["last_end"], "plots", lambda log: None),
    ]


def _needs_gevent() -> tuple[bool, str]:
    from engine.modes import REGISTRY
    return REGISTRY["gevent"].available()


GEVENT = Lesson(
    name="gevent",
    length=5,
    title={"en": "gevent: greenlets on one thread", "zh_CN": "gevent：一个线程上的 greenlet"},
    section="3.5",
    summary={"en": "a greenlet per connection; a recv() that would block parks it, and the "
                   "hub's epoll wakes it",
             "zh_CN": "每个连接一个 greenlet；会阻塞的 recv() 让它挂起，由 hub 的 epoll 唤醒"},
    record=_record_coroutines("gevent"), steps=_gevent_steps,  # type: ignore[arg-type]
    check=_check_gevent, needs=_needs_gevent)


# --------------------------------------------------------------------------- asyncio
def _check_asyncio(log: EventLog) -> None:
    m = _coroutine_moments(log)
    if len(m["starts"]) != 3:
        raise LessonError("asyncio: not three tasks")
    for key in ("loop_read", "task_parse", "task_send", "blocking_wait"):
        if m.get(key) is None:
            raise LessonError(f"asyncio: the recording lacks {key}")
    read = log[m["loop_read"]]
    started = find(log, "task_start", src="server", conn=read.conn)
    if started is None or not started < m["loop_read"] < m["task_parse"]:
        raise LessonError("asyncio: the loop's read did not come while its task awaited it")
    if log[m["task_send"]].data.get("by") != "task":
        raise LessonError("asyncio: the answer was not sent from the task")
    if len(_one_thread(log, ["recv", "send", "request", "response"])) != 1:
        raise LessonError("asyncio: the tasks did not all run on one OS thread")


def _asyncio_steps(log: EventLog) -> list[Step]:
    m = _coroutine_moments(log)
    starts = m["starts"]
    tid = log[starts[0]].thread
    names = ", ".join(str(log[i].data.get("name")) for i in starts[:3])
    read = log[m["loop_read"]]
    task = read.data.get("task")
    got = int(read.data.get("bytes", 0))
    sent = log[m["task_send"]]
    wait = log[m["blocking_wait"]]
    call = wait.data.get("call")
    ready = len(wait.data.get("ready") or [])
    requests = _count(log, "request")
    by_loop = _count(log, "recv", by="loop")
    reads = _count(log, "recv")
    return [
        Step({"en": f"asyncio.start_server: a task per connection ({names}), all on one "
                    f"thread, the event loop's (thread {tid}). Each task runs the handler: "
                    "await reader.read(), then writer.write().",
              "zh_CN": f"asyncio.start_server：每个连接一个任务（{names}），都在同一个线程上，"
                       f"即事件循环的线程（线程 {tid}）。每个任务运行处理函数：先 await "
                       "reader.read()，再 writer.write()。"},
             lambda log: m["all_started"], "io", lambda log: log[m["all_started"]].conn),
        Step({"en": f"The event loop reads first: its selector reported fd {read.fd} readable, "
                    f"and a callback of the loop recv()s {got} bytes into {task}'s "
                    "StreamReader. The task is parked in await reader.read(): it has not seen "
                    "them yet.",
              "zh_CN": f"事件循环先读：它的选择器报告 fd {read.fd} 可读，循环的一个回调 recv() 了 "
                       f"{got} 字节，放进 {task} 的 StreamReader。这个任务正挂起在 await "
                       "reader.read() 里：它还没看到这些字节。"},
             lambda log: m["loop_read"], "io", lambda log: read.conn,
             question={"en": "Who parses the request and sends the answer: the event loop, or "
                             "the task?",
                       "zh_CN": "谁来解析请求、发送回答：事件循环，还是任务？"}),
        Step({"en": f"The task: its await reader.read() returns the bytes, and its own code "
                    f"parses the request; its writer.write() sends {int(sent.data.get('bytes', 0))} "
                    "bytes at once, from the task (the loop sends only what the socket did "
                    "not take).",
              "zh_CN": "任务：它的 await reader.read() 拿到这些字节，由它自己的代码解析请求；它的 "
                       f"writer.write() 直接在任务里发出了 {int(sent.data.get('bytes', 0))} 字节"
                       "（套接字没收下的部分，才由事件循环稍后发送）。"},
             lambda log: m["task_send"], "io", lambda log: sent.conn),
        Step({"en": f"When no task can run, the loop blocks in {call}.select() until an fd is "
                    "ready or its next timer is due (the tasks' read deadlines): epoll "
                    f"underneath, as in 3.9. Here it returned {ready} ready fd(s).",
              "zh_CN": f"没有任务能运行时，事件循环阻塞在 {call}.select() 里，直到有 fd 就绪或者"
                       "下一个定时器到期（任务读数据的期限）：底下就是 epoll，和 3.9 一样。"
                       f"这一次它返回了 {ready} 个就绪的 fd。"},
             lambda log: m["blocking_wait"], "io", lambda log: None),
        Step({"en": f"In all: {len(starts)} tasks answered {requests} requests on one thread; "
                    f"{by_loop} of the {reads} recv() calls were the loop's, in its callbacks. "
                    "async/await marks where a task may pause; as with greenlets, one runs at "
                    "a time.",
              "zh_CN": f"合计：{len(starts)} 个任务在一个线程上回答了 {requests} 个请求；"
                       f"{reads} 次 recv() 调用中有 {by_loop} 次是事件循环在回调里做的。"
                       "async/await 标出任务可以暂停的地方；和 greenlet 一样，同一时刻只运行一个。"},
             lambda log: m["last_end"], "plots", lambda log: None),
    ]


ASYNCIO = Lesson(
    name="asyncio",
    length=5,
    title={"en": "asyncio: tasks on an event loop", "zh_CN": "asyncio：事件循环上的任务"},
    section="3.9+",
    summary={"en": "a task per connection; the loop's selector and callbacks read for the "
                   "tasks, which parse and answer",
             "zh_CN": "每个连接一个任务；事件循环的选择器和回调替任务读数据，任务负责解析和回答"},
    record=_record_coroutines("asyncio"), steps=_asyncio_steps,  # type: ignore[arg-type]
    check=_check_asyncio)

LESSONS = [PROCESSES, GEVENT, ASYNCIO]
