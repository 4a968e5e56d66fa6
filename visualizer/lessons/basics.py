"""Lessons on one request: the first request (3.1)."""
from __future__ import annotations

from pathlib import Path

from ..model import EventLog
from .base import Lesson, LessonError, Step, find, first_conn, last, packet, serve


# ---------------------------------------------------------------- first-request
def _first_request_record(workdir: Path) -> Path:
    return serve(workdir, "first-request", "--mode", "epoll", "--policy", "close",
                 load="--clients 1 --requests 1 --short")


def _first_request_check(log: EventLog) -> None:
    for flags in ("SYN", "SYN|ACK"):
        if packet(log, flags) is None:
            raise LessonError(f"first-request: no {flags} segment was recorded")
    if find(log, "response", where=lambda e: e.data.get("status") == 200) is None:
        raise LessonError("first-request: the request was not answered with 200")
    fins = find(log, "packet", where=lambda e: "FIN" in str(e.data.get("flags")))
    if fins is None:
        raise LessonError("first-request: no FIN: the connection was not closed")


def _first_request_steps(log: EventLog) -> list[Step]:
    conn = lambda log: first_conn(log)  # noqa: E731
    syn = packet(log, "SYN")
    fin = find(log, "packet", where=lambda e: "FIN" in str(e.data.get("flags")))
    return [
        Step({"en": "The client calls connect(): its kernel sends a SYN and the client's "
                    "socket is in SYN_SENT.",
              "zh_CN": "客户端调用 connect()：内核发出 SYN，客户端套接字进入 SYN_SENT 状态。"},
             lambda log: syn, "sequence", conn),
        Step({"en": "The server's kernel answers SYN|ACK by itself: accept() has not run yet. "
                    "The half-open connection waits in SYN_RECV.",
              "zh_CN": "服务器内核自己回复 SYN|ACK，此时 accept() 还没有运行。"
                       "半连接处于 SYN_RECV 状态。"},
             lambda log: packet(log, "SYN|ACK"), "sequence", conn),
        Step({"en": "The client's ACK completes the three-way handshake: both ends are "
                    "ESTABLISHED and the connection waits in the accept queue.",
              "zh_CN": "客户端的 ACK 完成三次握手：两端都是 ESTABLISHED，"
                       "连接在 accept 队列里等待。"},
             lambda log: packet(log, "ACK", after=syn if syn is not None else -1),
             "sequence", conn),
        Step({"en": "accept() takes the connection from the queue and returns a new socket "
                    "(a new fd) just for this client; the listening socket keeps listening.",
              "zh_CN": "accept() 从队列取出连接，返回一个专门服务这个客户端的新套接字"
                       "（新的 fd）；监听套接字继续监听。"},
             lambda log: find(log, "accept", src="server"), "io", conn),
        Step({"en": "The request arrives: recv() returns its bytes. The lecture's regular "
                    "expression cuts the path out of the request line.",
              "zh_CN": "请求到达：recv() 返回这些字节。讲义中的正则表达式从请求行中取出路径。"},
             lambda log: find(log, "request", src="server"), "http", conn),
        Step({"en": "The server sends the response: a head, a blank line, then the file.",
              "zh_CN": "服务器发送响应：响应头、一个空行，然后是文件内容。"},
             lambda log: find(log, "response", src="server"), "http", conn),
        Step({"en": "The request said Connection: close, so the server closes first: its FIN "
                    "starts the teardown.",
              "zh_CN": "请求中带有 Connection: close，所以服务器先关闭：它的 FIN 开始了四次挥手。"},
             lambda log: fin, "sequence", conn),
        Step({"en": "The teardown ends. The side that closed first, the server, stays in "
                    "TIME_WAIT for 60 s, so that late segments of this connection die out.",
              "zh_CN": "挥手结束。先关闭的一方（服务器）要在 TIME_WAIT 停留 60 秒，"
                       "让这个连接迟到的报文段消失。"},
             lambda log: last(log), "sequence", conn),
        Step({"en": "The whole life of the connection: handshake, one request, teardown, and "
                    "the TIME_WAIT tail it leaves behind.",
              "zh_CN": "连接的一生：握手、一个请求、挥手，以及留下的 TIME_WAIT 尾巴。"},
             lambda log: last(log), "lifecycle", conn),
    ]


FIRST_REQUEST = Lesson(
    name="first-request",
    title={"en": "The first request", "zh_CN": "第一个请求"},
    section="3.1–3.2",
    summary={"en": "one request, from the three-way handshake to the four-way teardown",
             "zh_CN": "一个请求：从三次握手到四次挥手"},
    record=_first_request_record, steps=_first_request_steps, check=_first_request_check)

LESSONS = [FIRST_REQUEST]
