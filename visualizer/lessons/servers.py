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
from .files import FILES
from .files import load as load_file
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


# --------------------------------------------------------------------------- gevent, asyncio
# Written as lesson files (files/gevent.toml, files/asyncio.toml).
def _needs_gevent() -> tuple[bool, str]:
    from engine.modes import REGISTRY
    return REGISTRY["gevent"].available()


GEVENT = load_file(FILES / "gevent.toml")
ASYNCIO = load_file(FILES / "asyncio.toml")

LESSONS = [PROCESSES, GEVENT, ASYNCIO]
