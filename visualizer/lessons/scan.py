"""select and poll against epoll (lecture 3.9): the same hundred keep-alive clients
served three times. select() and poll() are handed every watched fd on every call,
and the kernel looks at each; epoll keeps the interest list in the kernel and
hands back the ready fds only."""
from __future__ import annotations

import statistics
from pathlib import Path

from ..model import EventLog
from .base import Lesson, LessonError, Step, Text, serve
from .kernel import _merge
from .models import _epoll_needs

CLIENTS = 100
LOAD = f"--clients {CLIENTS} --requests 4 --together --think 150"
RUNS = ("select", "poll", "epoll")


def _record(workdir: Path) -> Path:
    traces = [serve(workdir, f"scan-{mode}", "--mode", mode, "--states", "off",
                    "--packets", "off", "--cpu-interval", "0", load=LOAD)
              for mode in RUNS]
    return _merge(Path(workdir) / "scan.jsonl", traces, [], lesson="scan")


def _runs(log: EventLog) -> dict[str, tuple[int, int]]:
    """mode -> (first, last) log index of that engine's run."""
    starts = [(int(i), str(log[int(i)].data.get("mode")))
              for i in log.indices(kinds=["mode"], src="server")]
    out = {}
    for k, (i, mode) in enumerate(starts):
        out[mode] = (i, starts[k + 1][0] - 1 if k + 1 < len(starts) else len(log) - 1)
    return out


def _waits(log: EventLog, mode: str, span: tuple[int, int]) -> list[int]:
    kind = "epoll_wait" if mode == "epoll" else "wait"
    return [int(i) for i in log.indices(kinds=[kind], src="server", start=span[0],
                                        stop=span[1] + 1)]


def _totals(log: EventLog, mode: str, span: tuple[int, int]) -> dict[str, float]:
    waits = _waits(log, mode, span)
    ready = [len(log[i].data.get("ready") or ()) for i in waits]
    scanned = [int(log[i].data.get("fds") or 0) for i in waits]
    return {"calls": len(waits), "ready": sum(ready), "scanned": sum(scanned),
            "most": max(scanned, default=0)}


def _busiest(log: EventLog, mode: str, span: tuple[int, int]) -> int | None:
    """A call while every client was connected: the most fds watched, something ready."""
    waits = [i for i in _waits(log, mode, span) if log[i].data.get("ready")]
    if not waits:
        return None
    if mode == "epoll":  # no count in the call: the interest list, from the ADDs before it
        size = _interest_at(log, waits, span)
        most = max(size.values())
        full = [i for i in waits if size[i] == most]
        typical = statistics.median_low([len(log[i].data["ready"]) for i in full])
        return next(i for i in full if len(log[i].data["ready"]) == typical)
    most = max(int(log[i].data.get("fds") or 0) for i in waits)
    return next(i for i in waits if int(log[i].data.get("fds") or 0) == most)


def _interest_at(log: EventLog, at: list[int], span: tuple[int, int]) -> dict[int, int]:
    """epoll's interest list at each index of ``at`` (ascending): ADDs minus DELs since
    the run began, in one pass over the run's epoll_ctl events."""
    ctls = log.indices(kinds=["epoll_ctl"], src="server", start=span[0],
                       stop=(at[-1] if at else span[0])).tolist()
    sizes, n, k = {}, 0, 0
    for index in at:
        while k < len(ctls) and ctls[k] < index:
            op = log[int(ctls[k])].data.get("op")
            n += 1 if op == "ADD" else -1 if op == "DEL" else 0
            k += 1
        sizes[index] = n
    return sizes


def _check(log: EventLog) -> None:
    runs = _runs(log)
    if set(runs) != set(RUNS):
        raise LessonError(f"scan: the runs recorded were {sorted(runs)}, not {list(RUNS)}")
    for mode in ("select", "poll"):
        t = _totals(log, mode, runs[mode])
        if t["most"] < CLIENTS + 2:
            raise LessonError(f"scan: {mode}() never watched the {CLIENTS} clients at once "
                              f"(at most {t['most']:.0f} fds)")
    if _busiest(log, "epoll", runs["epoll"]) is None:
        raise LessonError("scan: epoll_wait never returned a ready fd")


def _steps(log: EventLog) -> list[Step]:
    runs = _runs(log)
    at = {mode: _busiest(log, mode, runs[mode]) for mode in RUNS}
    tot = {mode: _totals(log, mode, runs[mode]) for mode in RUNS}

    def scan_text(mode: str) -> tuple[int, int]:
        i = at[mode]
        return (int(log[i].data.get("fds") or 0), len(log[i].data.get("ready") or ())) \
            if i is not None else (0, 0)

    s_fds, s_ready = scan_text("select")
    p_fds, p_ready = scan_text("poll")
    e_i = at["epoll"]
    e_ready = len(log[e_i].data.get("ready") or ()) if e_i is not None else 0
    e_interest = _interest_at(log, [e_i], runs["epoll"])[e_i] if e_i is not None else 0

    def per_ready(mode: str) -> float:
        t = tot[mode]
        return t["scanned"] / max(1.0, t["ready"])

    epoll_ready = [len(log[i].data.get("ready") or ()) for i in _waits(log, "epoll",
                                                                          runs["epoll"])]
    median_ready = statistics.median(epoll_ready) if epoll_ready else 0
    totals: Text = {
        "en": f"Over the whole run, {tot['select']['calls']:,.0f} calls to select() were handed "
              f"{tot['select']['scanned']:,.0f} fds to report {tot['select']['ready']:,.0f} "
              f"ready ones: {per_ready('select'):,.0f} fds looked at for each one that had "
              "something.",
        "zh_CN": f"整个运行中，{tot['select']['calls']:,.0f} 次 select() 调用一共交给内核 "
                 f"{tot['select']['scanned']:,.0f} 个 fd，报告了 {tot['select']['ready']:,.0f} "
                 f"个就绪的：每找到一个有事的 fd，要查看 {per_ready('select'):,.0f} 个。"}
    return [
        Step({"en": f"select(): {CLIENTS} clients on keep-alive connections, each asking every "
                    f"150 ms. On every call the server hands the kernel all {s_fds} watched fds "
                    "(bitmaps rebuilt from its own list), the kernel checks each one, and "
                    f"returns the ready ones: {s_ready} here.",
              "zh_CN": f"select()：{CLIENTS} 个客户端走长连接，每个每 150 毫秒发一次请求。每次调用，"
                       f"服务器都把全部 {s_fds} 个被监视的 fd 交给内核（位图每次都按自己的列表"
                       f"重新填写），内核逐个检查，再返回就绪的：这里是 {s_ready} 个。"},
             lambda log: at["select"], "io"),
        Step(totals, lambda log: at["select"], "io",
             question={"en": "poll() takes a list instead of bitmaps, and has no 1024 limit. "
                             "Will it be handed fewer fds per call?",
                       "zh_CN": "poll() 用的是列表而不是位图，也没有 1024 的上限。"
                                "它每次调用被交给的 fd 会少一些吗？"}),
        Step({"en": f"No: poll() is handed the same whole set, {p_fds} fds, to report {p_ready} "
                    f"ready here; over its run {tot['poll']['scanned']:,.0f} fds for "
                    f"{tot['poll']['ready']:,.0f} ready ones ({per_ready('poll'):,.0f} for each).",
              "zh_CN": f"不会：poll() 每次同样被交给整个集合，{p_fds} 个 fd，这里报告了 {p_ready} "
                       f"个就绪；整个运行中一共 {tot['poll']['scanned']:,.0f} 个 fd，换来 "
                       f"{tot['poll']['ready']:,.0f} 个就绪（每个 {per_ready('poll'):,.0f} 个）。"},
             lambda log: at["poll"], "io",
             question={"en": "epoll next, the same clients. How many fds does one epoll_wait "
                             "hand the kernel?",
                       "zh_CN": "接下来是 epoll，同样的客户端。一次 epoll_wait 要交给内核多少个 fd？"}),
        Step({"en": f"None. Each fd was added once, with epoll_ctl ADD, to the interest list "
                    f"that stays in the kernel ({e_interest} fds now); data arriving puts its fd "
                    f"on the ready list, and epoll_wait copies out only those: {e_ready} here "
                    f"(a median of {median_ready:g} per call over "
                    f"{tot['epoll']['calls']:,.0f} calls).",
              "zh_CN": f"一个也不用。每个 fd 只在加入时用 epoll_ctl ADD 登记一次，关注列表一直留在"
                       f"内核里（现在有 {e_interest} 个 fd）；数据到达时，它的 fd 被放进就绪列表，"
                       f"epoll_wait 只把这些复制出来：这里是 {e_ready} 个（"
                       f"{tot['epoll']['calls']:,.0f} 次调用，每次的中位数是 {median_ready:g} 个）。"},
             lambda log: at["epoll"], "io"),
        Step({"en": f"At {CLIENTS} connections the scan costs little next to the Python that "
                    "answers each request. It grows with every connection watched, where "
                    "epoll's work grows with the ready ones; and select() cannot watch an fd "
                    "numbered 1024 or more at all.",
              "zh_CN": f"在 {CLIENTS} 个连接时，这点扫描和回答每个请求的 Python 代码比起来不算什么。"
                       "但它随着被监视的连接数增长，而 epoll 的工作量只随就绪的连接数增长；"
                       "而且 select() 根本无法监视编号 1024 及以上的 fd。"},
             lambda log: at["epoll"], "plots"),
    ]


SCAN = Lesson(
    name="scan",
    length=5,
    title={"en": "select and poll against epoll", "zh_CN": "select、poll 与 epoll 的对比"},
    section="3.9",
    summary={"en": "the same clients three times: select and poll hand the kernel every fd on "
                   "every call, epoll only gets the ready ones back",
             "zh_CN": "同样的客户端跑三次：select 和 poll 每次调用都把所有 fd 交给内核，"
                      "epoll 只取回就绪的"},
    record=_record, steps=_steps, check=_check, needs=_epoll_needs)

LESSONS = [SCAN]
