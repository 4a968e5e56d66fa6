"""The lecture's first server (3.1, 3.3): one client at a time. A client that sends
its request slowly holds the server in recv(); a second client, though its
handshake is done and its request sent, waits in the accept queue until the
first one is finished. The server that motivates every mode after it."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from ..model import EventLog
from .base import Lesson, LessonError, Step, Text, find
from .basics import OBSERVING, _Served, read_to_close
from .kernel import _needs_kernel

HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # A's first part: no blank line yet
REST = b"Connection: close\r\n\r\n"
DRIBBLE_S = 0.6  # how long A holds its request back once B has connected


def _record(workdir: Path) -> Path:
    with _Served(workdir, "single", "--mode", "single", *OBSERVING) as served:
        address = ("127.0.0.1", served.port)
        answers: dict[str, bytes] = {}
        try:
            with socket.create_connection(address, timeout=10) as a:
                a.sendall(HEAD)  # A: half a request, then nothing for a while
                time.sleep(0.2)
                b = socket.create_connection(address, timeout=10)  # B: the kernel's handshake
                b.sendall(HEAD + REST)  # its whole request, at once
                reader = threading.Thread(target=lambda: answers.update(b=read_to_close(b)),
                                          name="lesson-single-b", daemon=True)
                reader.start()
                time.sleep(DRIBBLE_S)
                a.sendall(REST)  # A finishes: only now can the server answer it
                answers["a"] = read_to_close(a)
                reader.join(10)
                b.close()
        except OSError as exc:
            raise LessonError(f"single: a client failed: {exc}") from exc
        for who in ("a", "b"):
            if not answers.get(who, b"").startswith(b"HTTP/1.1 200 "):
                raise LessonError(f"single: client {who.upper()} got no page")
        time.sleep(0.05)
        return served.stop()


def _moments(log: EventLog) -> dict[str, int | None]:
    """The events the lesson stands on, found by what they are."""
    a_accept = find(log, "accept", src="server")
    a = log[a_accept].conn if a_accept is not None else None
    b_accept = find(log, "accept", src="server", nth=1)
    b = log[b_accept].conn if b_accept is not None else None
    first = -1 if a_accept is None else a_accept
    b_syn_ack = find(log, "packet", conn=b, where=lambda e: e.data.get("flags") == "SYN|ACK")
    return {
        "a_accept": a_accept,
        "a_part": find(log, "recv", src="server", conn=a, after=first,
                       where=lambda e: int(e.data.get("bytes", 0)) > 0),
        "b_syn_ack": b_syn_ack,
        "b_connect": find(log, "connect", src="client", conn=b),
        # B's request on the wire (captured, or derived from its send)
        "b_sent": find(log, "packet", conn=b, where=lambda e: int(e.data.get("len") or 0) > 0
                       and _from_client(e)),
        # B in the queue: reported after its handshake (a report of A's own wait before its
        # accept may be dated after that accept on a loaded machine)
        "queued": find(log, "accept_queue", after=max(first, b_syn_ack or -1),
                       where=lambda e: int(e.data.get("length", 0)) >= 1),
        "a_request": find(log, "request", src="server", conn=a),
        "a_close": find(log, "close", src="server", conn=a),
        "b_accept": b_accept,
        "b_response": find(log, "response", src="server", conn=b),
        "a": a, "b": b,  # type: ignore[dict-item]
    }


def _from_client(e) -> bool:  # type: ignore[no-untyped-def]
    """A segment the client sent: it leaves from the connection's client port."""
    client = str(e.conn or "").split(">")[0]
    return str(e.data.get("sport")) == client.rsplit(":", 1)[-1]


def _check(log: EventLog) -> None:
    m = _moments(log)
    if m["a_accept"] is None or m["b_accept"] is None or m["b_response"] is None:
        raise LessonError("single: the two clients were not both accepted and answered")
    if m["a_close"] is None or not m["a_close"] < m["b_accept"]:  # type: ignore[operator]
        raise LessonError("single: B was accepted before A was finished")
    came = m["b_connect"] if m["b_connect"] is not None else m["b_syn_ack"]
    if came is None or not came < m["a_close"]:  # type: ignore[operator]
        raise LessonError("single: B did not connect while A was being served")
    if m["queued"] is None or not m["queued"] < m["b_accept"]:  # type: ignore[operator]
        raise LessonError("single: the accept queue was never observed holding B")
    if m["a_part"] is None or m["a_request"] is None:
        raise LessonError("single: A's request was not read in two parts")
    if m["b_sent"] is None or not m["b_sent"] < m["a_close"]:  # type: ignore[operator]
        raise LessonError("single: B's request was not on the wire while A was served")


def _ms(log: EventLog, a: int | None, b: int | None) -> float:
    if a is None or b is None:
        return 0.0
    return (log[b].t_ns - log[a].t_ns) / 1e6


def _steps(log: EventLog) -> list[Step]:
    m = _moments(log)
    a, b = m["a"], m["b"]
    part = int(log[m["a_part"]].data.get("bytes", 0)) if m["a_part"] is not None else 0
    came = m["b_connect"] if m["b_connect"] is not None else m["b_syn_ack"]
    waited = _ms(log, came, m["b_accept"])
    length = int(log[m["queued"]].data.get("length", 0)) if m["queued"] is not None else 0
    a_fd = log[m["a_accept"]].fd if m["a_accept"] is not None else "?"
    queue_text: Text = {
        "en": f"Observed: the listening socket's accept queue holds {length} connection"
              f"{'s' if length != 1 else ''}: B, ESTABLISHED, its request in its receive "
              "buffer, unread. The server does not know: it is in recv() on A.",
        "zh_CN": f"观测结果：监听套接字的全连接队列（accept 队列）里有 {length} 个连接：B，"
                 "状态是 ESTABLISHED，它的请求已经在接收缓冲区里，还没人读。服务器并不知道："
                 "它正阻塞在 A 的 recv() 里。"}
    return [
        Step({"en": "The lecture's first server: accept() a client, serve it to the end, then "
                    "accept() the next. Client A connects and the server accepts it "
                    f"(fd {a_fd}).",
              "zh_CN": "讲义的第一个服务器：accept() 一个客户端，把它服务到底，然后再 accept() "
                       f"下一个。客户端 A 连上来，服务器 accept 了它（fd {a_fd}）。"},
             lambda log: m["a_accept"], "io", lambda log: a),
        Step({"en": f"A sends only part of its request ({part} bytes, no blank line yet). "
                    "recv() returns them; the request is not complete, so the server calls "
                    "recv() again, and blocks there.",
              "zh_CN": f"A 只发了请求的一部分（{part} 字节，还没有空行）。recv() 把它们读了出来；"
                       "请求还不完整，于是服务器再次调用 recv()，阻塞在那里。"},
             lambda log: m["a_part"], "io", lambda log: a),
        Step({"en": "Meanwhile client B connects, and its handshake completes: the server's "
                    "kernel answers SYN|ACK by itself, while the program is blocked in A's "
                    "recv(). B sends its whole request at once.",
              "zh_CN": "与此同时，客户端 B 连了上来，它的握手也完成了：程序还阻塞在 A 的 recv() 里，"
                       "服务器的内核自己回复了 SYN|ACK。B 一次就把整个请求发了出去。"},
             lambda log: m["b_sent"], "sequence", lambda log: b),
        Step(queue_text, lambda log: m["queued"], "io", lambda log: a,
             question={"en": "B's request is there, complete. When will the server read it?",
                       "zh_CN": "B 的请求已经完整地到了。服务器什么时候才会读它？"},
             choices=[{"en": "at once", "zh_CN": "马上"},
                      {"en": "when A is done", "zh_CN": "等 A 结束之后"},
                      {"en": "never: it times out", "zh_CN": "永远不会：它会超时"}],
             answer=1),
        Step({"en": "Only when A is done: A sent the rest of its request, the server answered "
                    "it and closed it, and only then called accept() again and took B from the "
                    f"queue, {waited:,.0f} ms after B connected.",
              "zh_CN": "要等 A 结束：A 发完请求的其余部分，服务器回答并关闭了它，然后才再次调用 "
                       f"accept()，从队列里取出 B，这时离 B 连上来已经过了 {waited:,.0f} 毫秒。"},
             lambda log: m["b_accept"], "io", lambda log: b),
        Step({"en": f"B is answered. One slow client held everyone up for {waited:,.0f} ms, "
                    "while the server's CPU had nothing to do: it was waiting in recv() for A. "
                    "A thread per connection (3.4), non-blocking polling (3.6) and epoll (3.9) "
                    "are three answers to this.",
              "zh_CN": f"B 得到了回答。一个慢客户端让所有人等了 {waited:,.0f} 毫秒，而服务器的 CPU "
                       "其实无事可做：它在 recv() 里等 A。每个连接一个线程（3.4）、非阻塞轮询（3.6）"
                       "和 epoll（3.9）是对这个问题的三种回答。"},
             lambda log: m["b_response"], "lifecycle", lambda log: b),
    ]


SINGLE = Lesson(
    name="single",
    length=6,
    title={"en": "One client at a time", "zh_CN": "一次服务一个客户端"},
    section="3.1",
    summary={"en": "the first server: a slow client holds it in recv(), the next one waits "
                   "in the accept queue",
             "zh_CN": "第一个服务器：一个慢客户端把它拖在 recv() 里，下一个客户端只能在全连接队列"
                      "（accept 队列）里等"},
    record=_record, steps=_steps, check=_check,
    needs=_needs_kernel("the single lesson observes the accept queue with sock_diag: {reason}"))

LESSONS = [SINGLE]
