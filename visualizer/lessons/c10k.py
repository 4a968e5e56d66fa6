"""C10K (after lecture 3.9): ten thousand idle keep-alive clients, held four ways.

Each client connects, asks for the home page once, reads the answer and then says
nothing, keeping its connection open, as a browser tab left open does. The same
clients are held by a thread per connection, by select(), by poll() and by epoll;
then two clients make a few requests while all of them are held. What each server
pays is in its own samples (``cpu`` events: OS threads, resident memory, the
scheduler's context switches) and in its waits (how many fds each call handed the
kernel). The numbers in the captions are read from the recording, never written in.
"""
from __future__ import annotations

import time
from pathlib import Path

from engine.clients import LoadConfig, run_load
from engine.compare import IdleConnections
from engine.limits import SPARE_FDS, raise_open_files

from ..model import EventLog
from .base import Engine, Lesson, LessonError, Step, Text
from .kernel import _free_port, _merge
from .models import _epoll_needs
from .scan import _interest_at, _runs

IDLE = 10_000
RUNS = ("threaded", "select", "poll", "epoll")
FD_SETSIZE = 1024
HOST = "127.0.0.1"


def _needs() -> tuple[bool, str]:
    ok, reason = _epoll_needs()
    if not ok:
        return ok, reason
    # The clients' ends are this process's; the server, a process of its own, raises its
    # own limit the same way (to the same hard limit).
    _, _, problem = raise_open_files(IDLE + 2 * SPARE_FDS)
    if problem:
        return False, f"{IDLE:,} connections need {IDLE:,} descriptors at each end: {problem}"
    return True, ""


def _record(workdir: Path) -> Path:
    workdir = Path(workdir)
    ok, reason = _needs()
    if not ok:
        raise LessonError(f"c10k cannot run here: {reason}")
    traces = []
    for mode in RUNS:
        port = _free_port()
        engine = Engine(workdir, f"c10k-{mode}", "--mode", mode, "--host", HOST, "--port",
                        str(port), "--states", "off", "--packets", "off",
                        "--cpu-interval", "0.25", "--idle-timeout", "3600",
                        "--max-connections", str(IDLE + 100))
        idle = None
        try:
            engine.wait_for("recording events")
            time.sleep(0.6)  # samples of the server at rest (every 0.25 s)
            idle = IdleConnections(HOST, port, IDLE)
            held = idle.open(30 + IDLE / 200)
            if mode != "select" and held.held != IDLE:
                raise LessonError(f"c10k: {mode} held {held.held:,} of {IDLE:,} idle "
                                  f"connections ({dict(held.reasons)})")
            time.sleep(0.8)  # samples with every client held
            result = run_load(LoadConfig(url=f"http://{HOST}:{port}/", clients=2,
                                         requests=5, keep_alive=True, timeout=10))
            if mode != "select" and result.failed:
                raise LessonError(f"c10k: {mode}: {result.failed} requests failed while the "
                                  f"idle clients were held ({dict(result.errors)})")
            time.sleep(0.3)
            engine.finish(timeout=60)
        finally:
            if engine.proc.poll() is None:
                engine.kill()
            if idle is not None:
                idle.close()
        traces.append(engine.trace)
    return _merge(workdir / "c10k.jsonl", traces, [], lesson="c10k", idle=IDLE)


# ------------------------------------------------------------------ facts
def _samples(log: EventLog, span: tuple[int, int]) -> list[int]:
    return [int(i) for i in log.indices(kinds=["cpu"], start=span[0], stop=span[1] + 1)]


def _peak(log: EventLog, span: tuple[int, int]) -> int | None:
    """The sample with the most threads (then the most memory) in a run."""
    samples = _samples(log, span)
    if not samples:
        return None
    return max(samples, key=lambda i: (int(log[i].data.get("threads") or 0),
                                       float(log[i].data.get("rss_mb") or 0)))


def _rest(log: EventLog, span: tuple[int, int]) -> int | None:
    """The first sample of a run: the server before any client came."""
    samples = _samples(log, span)
    return samples[0] if samples else None


def _fact(log: EventLog, index: int | None, key: str) -> float:
    return float(log[index].data.get(key) or 0) if index is not None else 0.0


def _switches(log: EventLog, span: tuple[int, int]) -> int:
    samples = _samples(log, span)
    if len(samples) < 2:
        return 0
    return int(_fact(log, samples[-1], "switches") - _fact(log, samples[0], "switches"))


def _refusals(log: EventLog, span: tuple[int, int]) -> list[int]:
    """select()'s refusals of the idle clients: the first IDLE connections of the run (the
    load's two clients, which come after them, are refused too, and not counted here)."""
    accepts = log.indices(kinds=["accept"], src="server", start=span[0], stop=span[1] + 1)
    idle = {log[int(i)].conn for i in accepts[:IDLE]}
    return [int(i) for i in log.indices(kinds=["error"], start=span[0], stop=span[1] + 1)
            if log[int(i)].data.get("what") == "fd_setsize" and log[int(i)].conn in idle]


def _widest_wait(log: EventLog, span: tuple[int, int]) -> int | None:
    """poll's call that handed the kernel the most fds, with something ready."""
    waits = [int(i) for i in log.indices(kinds=["wait"], src="server", start=span[0],
                                         stop=span[1] + 1) if log[int(i)].data.get("ready")]
    if not waits:
        return None
    return max(waits, key=lambda i: int(log[i].data.get("fds") or 0))


def _served_wait(log: EventLog, span: tuple[int, int]) -> int | None:
    """An epoll_wait with every idle client on the interest list: the first one after the
    last idle client's accept that reports a ready fd (usually idle clients' own requests)."""
    accepts = log.indices(kinds=["accept"], src="server", start=span[0], stop=span[1] + 1)
    if not len(accepts):
        return None
    after = int(accepts[min(len(accepts) - 1, IDLE - 1)])
    for i in log.indices(kinds=["epoll_wait"], src="server", start=after, stop=span[1] + 1):
        if log[int(i)].data.get("ready"):
            return int(i)
    return None


def _check(log: EventLog) -> None:
    runs = _runs(log)
    if set(runs) != set(RUNS):
        raise LessonError(f"c10k: the runs recorded were {sorted(runs)}, not {list(RUNS)}")
    threads = _fact(log, _peak(log, runs["threaded"]), "threads")
    if threads < IDLE:
        raise LessonError(f"c10k: the threaded server had at most {threads:.0f} threads, "
                          f"fewer than its {IDLE:,} clients")
    for mode in ("select", "poll", "epoll"):
        most = _fact(log, _peak(log, runs[mode]), "threads")
        if not 0 < most <= 8:
            raise LessonError(f"c10k: the {mode} server had {most:.0f} threads, not a few")
    if _fact(log, _peak(log, runs["threaded"]), "rss_mb") <= \
            _fact(log, _peak(log, runs["epoll"]), "rss_mb"):
        raise LessonError("c10k: the threads took no more memory than epoll")
    refused = len(_refusals(log, runs["select"]))
    if refused < IDLE - FD_SETSIZE:
        raise LessonError(f"c10k: select() refused {refused:,} connections, fewer than the "
                          f"{IDLE - FD_SETSIZE:,} whose fds are past FD_SETSIZE")
    widest = _widest_wait(log, runs["poll"])
    if widest is None or int(log[widest].data.get("fds") or 0) < IDLE:
        raise LessonError("c10k: poll() was never handed every client's fd at once")
    served = _served_wait(log, runs["epoll"])
    if served is None or _interest_at(log, [served], runs["epoll"])[served] < IDLE:
        raise LessonError("c10k: epoll_wait never reported a ready fd with every client on "
                          "its interest list")


# ------------------------------------------------------------------ steps
def _steps(log: EventLog) -> list[Step]:
    runs = _runs(log)
    t_peak, e_peak = _peak(log, runs["threaded"]), _peak(log, runs["epoll"])
    t_rest = _rest(log, runs["threaded"])
    t_threads, t_mb = _fact(log, t_peak, "threads"), _fact(log, t_peak, "rss_mb")
    t_rest_mb = _fact(log, t_rest, "rss_mb")
    t_switches, e_switches = _switches(log, runs["threaded"]), _switches(log, runs["epoll"])
    e_threads, e_mb = _fact(log, e_peak, "threads"), _fact(log, e_peak, "rss_mb")
    refusals = _refusals(log, runs["select"])
    first_refusal = refusals[0] if refusals else None
    first_fd = int(log[first_refusal].fd) if first_refusal is not None else FD_SETSIZE
    widest = _widest_wait(log, runs["poll"])
    p_fds = int(log[widest].data.get("fds") or 0) if widest is not None else 0
    p_ready = len(log[widest].data.get("ready") or ()) if widest is not None else 0
    served = _served_wait(log, runs["epoll"])
    e_interest = _interest_at(log, [served], runs["epoll"])[served] if served is not None else 0
    e_ready = len(log[served].data.get("ready") or ()) if served is not None else 0

    threaded: Text = {
        "en": f"{IDLE:,} clients connected, asked once, and now say nothing, keeping the "
              f"connection open. A thread per connection holds each in its own OS thread, "
              f"blocked in recv(): the process has {t_threads:,.0f} threads and "
              f"{t_mb:,.0f} MB resident ({t_rest_mb:,.0f} MB before the clients came; epoll "
              f"holds the same clients in {e_mb:,.0f} MB), and the scheduler switched "
              f"{t_switches:,} times over the run.",
        "zh_CN": f"{IDLE:,} 个客户端连上来，各请求一次，然后不再说话，连接一直开着。"
                 f"每个连接一个线程的服务器让每个连接占一个操作系统线程，阻塞在 recv() 里："
                 f"进程有 {t_threads:,.0f} 个线程，常驻内存 {t_mb:,.0f} MB（客户端来之前是 "
                 f"{t_rest_mb:,.0f} MB；epoll 撑住同样的客户端只用 {e_mb:,.0f} MB），整个运行中"
                 f"调度器切换了 {t_switches:,} 次。"}
    select_text: Text = {
        "en": f"No. select() takes bitmaps of FD_SETSIZE = {FD_SETSIZE} bits: an fd numbered "
              f"{FD_SETSIZE} or more cannot be put in one. From fd {first_fd} on, the server "
              f"answers 503 and closes: {len(refusals):,} of the {IDLE:,} clients refused.",
        "zh_CN": f"不能。select() 用的是 FD_SETSIZE = {FD_SETSIZE} 位的位图：编号 {FD_SETSIZE} "
                 f"及以上的 fd 根本放不进去。从 fd {first_fd} 开始，服务器回答 503 并关闭："
                 f"{IDLE:,} 个客户端里有 {len(refusals):,} 个被拒绝。"}
    poll_text: Text = {
        "en": f"poll() takes a list, so it holds all {IDLE:,}, in one thread. But every call "
              f"hands the kernel the whole list: this one {p_fds:,} fds, to report {p_ready} "
              f"ready. The kernel looks at each, on every call, however few have anything.",
        "zh_CN": f"poll() 用的是列表，所以它能在一个线程里撑住全部 {IDLE:,} 个。但每次调用都要"
                 f"把整个列表交给内核：这一次是 {p_fds:,} 个 fd，只为报告 {p_ready} 个就绪。"
                 f"不管有事的有多少，内核每次都要逐个查看。"}
    epoll_text: Text = {
        "en": f"epoll holds the {IDLE:,} in one thread too: {e_interest:,} fds on the interest "
              f"list in the kernel, added once each. This epoll_wait handed the kernel no "
              f"list and got back the {e_ready} ready. The process: {e_threads:,.0f} threads "
              f"(the loop, and SockScope's recorder), {e_mb:,.0f} MB, {e_switches:,} "
              f"switches over the run.",
        "zh_CN": f"epoll 也在一个线程里撑住这 {IDLE:,} 个：关注列表在内核里，有 {e_interest:,} "
                 f"个 fd，每个只加入一次。这次 epoll_wait 没有交给内核任何列表，只取回 "
                 f"{e_ready} 个就绪的。进程：{e_threads:,.0f} 个线程（事件循环，加上 SockScope "
                 f"的记录线程），{e_mb:,.0f} MB，整个运行中切换 {e_switches:,} 次。"}
    summary: Text = {
        "en": f"{IDLE:,} idle clients: a thread each costs {t_threads:,.0f} threads and "
              f"{t_mb:,.0f} MB against epoll's {e_threads:,.0f} and {e_mb:,.0f} MB; select() "
              f"cannot hold them; poll() can, paying a scan of every fd on every call. That "
              f"is the C10K problem, and why servers that hold many connections wait in epoll "
              f"(or kqueue).",
        "zh_CN": f"{IDLE:,} 个空闲客户端：每个一个线程要 {t_threads:,.0f} 个线程和 {t_mb:,.0f} MB，"
                 f"epoll 只要 {e_threads:,.0f} 个和 {e_mb:,.0f} MB；select() 撑不住；poll() "
                 f"撑得住，代价是每次调用都扫描所有 fd。这就是 C10K 问题，也是要同时撑住大量"
                 f"连接的服务器都在 epoll（或 kqueue）上等待的原因。"}
    return [
        Step(threaded, lambda log: t_peak, "io",
             question={"en": f"select() watches fds in one thread. Can it hold the same "
                             f"{IDLE:,} clients?",
                       "zh_CN": f"select() 在一个线程里监视 fd。它能撑住同样的 {IDLE:,} "
                                f"个客户端吗？"},
             ),
        Step(select_text, lambda log: first_refusal, "io",
             question={"en": "poll() has no such limit. What does each call cost it?",
                       "zh_CN": "poll() 没有这个上限。它每次调用的代价是什么？"}),
        Step(poll_text, lambda log: widest, "io",
             question={"en": "And epoll: what does one epoll_wait hand the kernel?",
                       "zh_CN": "那么 epoll：一次 epoll_wait 要交给内核什么？"}),
        Step(epoll_text, lambda log: served, "io"),
        Step(summary, lambda log: served, "plots"),
    ]


C10K = Lesson(
    name="c10k",
    length=5,
    title={"en": "Ten thousand idle clients (C10K)", "zh_CN": "一万个空闲客户端（C10K）"},
    section="3.9+",
    summary={"en": f"{IDLE:,} idle keep-alive clients held four ways: a thread each, select, "
                   "poll and epoll, and what each pays in threads, memory and scanning",
             "zh_CN": f"用四种方式撑住 {IDLE:,} 个空闲长连接客户端：每个一个线程、select、poll "
                      "和 epoll，以及各自在线程、内存和扫描上的代价"},
    record=_record, steps=_steps, check=_check, needs=_needs)

LESSONS = [C10K]

__all__ = ["C10K", "IDLE", "LESSONS", "RUNS"]
