"""The lessons of the lecture's other servers (processes 3.4, gevent 3.5, asyncio):
recorded for real, each caption's fact checked against its trace, walked in the
window in both languages."""
from __future__ import annotations

from pathlib import Path

import pytest
from visualizer.lessons import all_lessons, prepare
from visualizer.lessons.base import find
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from lesson_window import unfit  # tests/qt/
from lesson_window import walk  # tests/qt/


@pytest.fixture(scope="module")
def processes(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["processes"], tmp_path_factory.mktemp("processes"))


@pytest.fixture(scope="module")
def gevent(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["gevent"], tmp_path_factory.mktemp("gevent"))


@pytest.fixture(scope="module")
def asyncio_(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["asyncio"], tmp_path_factory.mktemp("asyncio"))


def test_they_sit_in_the_lecture_s_order() -> None:
    names = list(all_lessons())
    assert names.index("single") < names.index("processes") < names.index("threads") \
        < names.index("gevent") < names.index("nonblocking")
    assert names.index("scan") < names.index("asyncio") < names.index("time-wait")
    assert [all_lessons()[n].section for n in ("processes", "gevent")] == ["3.4", "3.5"]


# The processes lesson's events, found here as the test reads the log.
def _runs(log):  # type: ignore[no-untyped-def]
    """Each engine's run (files/processes.toml records two): (first index, last index, its port)."""
    starts = [int(i) for i in log.indices(kinds=["mode"], src="server")]
    out = []
    for k, i in enumerate(starts):
        end = starts[k + 1] - 1 if k + 1 < len(starts) else len(log) - 1
        listen = find(log, "listen", src="server", after=i - 1)
        port = int(log[listen].data.get("port", 0)) if listen is not None else 0
        out.append((i, end, port))
    return out


def _server_fin(log, conn: str | None, port: int, after: int | None,
                before: int | None = None):  # type: ignore[no-untyped-def]
    """The first segment with FIN the server's end sent on ``conn`` after ``after``."""
    if conn is None or after is None:
        return None
    i = find(log, "packet", conn=conn, after=after,
             where=lambda e: "FIN" in str(e.data.get("flags")) and e.data.get("sport") == port)
    return i if i is not None and (before is None or i < before) else None


def _close(log, conn: str | None, copy: str, after: int):  # type: ignore[no-untyped-def]
    return find(log, "close", src="server", conn=conn, after=after,
                where=lambda e: e.data.get("copy") == copy)


def _process_moments(log):  # type: ignore[no-untyped-def]
    runs = _runs(log)
    if len(runs) != 2:
        return {}
    (a0, a1, a_port), (b0, b1, b_port) = runs
    m = {"a_port": a_port, "b_port": b_port}
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



def test_processes_captions_say_what_the_trace_shows(processes) -> None:  # type: ignore[no-untyped-def]
    log = processes.timeline.log
    m = _process_moments(log)
    fork = log[m["a_fork"]]
    assert f"(fd {fork.fd})" in processes.text(0) and f"Child {fork.data['child']}" \
        in processes.text(0)
    # The child's events are the child's: its pid, its own thread.
    served = [log[int(i)] for i in log.indices(kinds=["request"], src="server", conn=m["a"])]
    assert served and {e.data["pid"] for e in served} == {fork.data["child"]}
    # Step 2: the parent's close is not the last, and no FIN leaves until the child's.
    assert processes.at[1] == m["a_parent_close"]
    assert log[m["a_parent_close"]].data["last"] is False and m["a_fin_early"] is None
    assert m["a_child_close"] < m["a_fin"] <= processes.at[2]  # (settled: its states too)
    # With the bug: the child's close is not the last; the client closes first, after
    # waiting the time the caption gives; the server's FIN only after the parent's close.
    assert log[m["b_child_close"]].data["last"] is False
    waited = (log[m["b_client_close"]].t_ns - log[m["b_answer"]].t_ns) / 1e6
    assert waited >= 900 and f"waited {waited:,.0f} ms" in processes.text(4)
    assert m["b_fin_early"] is None
    processes.timeline.seek(processes.at[4])
    assert processes.timeline.state.connections[m["b"]].server == "CLOSE_WAIT"
    assert m["b_parent_close"] < processes.at[5] and log[m["b_parent_close"]].data["last"]
    assert processes.steps[3].footnote and "--keep-parent-copy" in processes.steps[3].footnote


def test_processes_window_walk(qtbot, processes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def check(k: int, lang: str, view) -> None:  # type: ignore[no-untyped-def]
        if k == 1 and lang == "en":  # the parent's copy closed: the child's lane says so
            assert view.picture == "processes" and view.lanes[1].sub == "parent's copy: closed"
        if k == 3 and lang == "en":
            assert "not the last copy" in view.lanes[-1].text
            assert view.lanes[-1].sub == "parent's copy: open"
    walk(qtbot, processes, tmp_path, check)


def _coroutine_moments(log):  # type: ignore[no-untyped-def]
    """The gevent and asyncio lessons' events, found here as the test reads the log
    (files/gevent.toml and files/asyncio.toml find them by their anchors)."""
    starts = [int(i) for i in log.indices(kinds=["task_start"], src="server")]
    m = {"starts": starts}
    last = starts[2]
    m["park"] = find(log, "eagain", src="server", after=last,
                     where=lambda e: e.conn is not None)
    waits = [int(i) for i in log.indices(kinds=["wait"], src="server", start=last)]
    m["sleep"] = max(waits, key=lambda i: int(log[i].data.get("blocked_ns") or 0))
    m["woken"] = find(log, "request", src="server", after=m["sleep"])
    m["loop_read"] = find(log, "recv", src="server", after=last,
                          where=lambda e: e.data.get("by") == "loop"
                          and int(e.data.get("bytes", 0)) > 0)
    if m["loop_read"] is not None:
        m["task_parse"] = find(log, "request", src="server", conn=log[m["loop_read"]].conn,
                               after=m["loop_read"])
        m["task_send"] = find(log, "send", src="server", after=m["task_parse"],
                              where=lambda e: e.data.get("by") == "task")
    return m


def test_gevent_captions_say_what_the_trace_shows(gevent) -> None:  # type: ignore[no-untyped-def]
    log = gevent.timeline.log
    m = _coroutine_moments(log)
    starts = m["starts"]
    tid = log[starts[0]].thread
    assert {log[i].thread for i in starts} == {tid}
    assert f"(thread {tid})" in gevent.text(0) and "greenlet-1, greenlet-2, greenlet-3" \
        in gevent.text(0)
    park = log[m["park"]]
    assert park.kind == "eagain" and f"greenlet-{park.data['greenlet']} calls recv()" \
        in gevent.text(1)
    slept = log[m["sleep"]].data["blocked_ns"] / 1e6
    assert slept >= 50 and f"({slept:,.0f} ms)" in gevent.text(2)
    woken = log[m["woken"]]
    assert woken.thread == tid and f"The same thread {tid}" in gevent.text(3)
    requests = len(log.indices(kinds=["request"], src="server"))
    assert f"answered {requests} requests" in gevent.text(4)


def test_gevent_window_walk(qtbot, gevent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def check(k: int, lang: str, view) -> None:  # type: ignore[no-untyped-def]
        if k == 2:  # every greenlet parked, the hub back from its wait
            assert view.lanes[0].current
            assert all(ln.activity == "parked" for ln in view.lanes[1:])
    walk(qtbot, gevent, tmp_path, check)


def test_asyncio_captions_say_what_the_trace_shows(asyncio_) -> None:  # type: ignore[no-untyped-def]
    log = asyncio_.timeline.log
    m = _coroutine_moments(log)
    read = log[m["loop_read"]]
    assert read.data["by"] == "loop" and f"recv()s {read.data['bytes']} bytes into " \
        f"{read.data['task']}'s" in asyncio_.text(1)
    started = [i for i in m["starts"] if log[i].conn == read.conn]
    assert started and started[0] < m["loop_read"] < m["task_parse"]
    sent = log[m["task_send"]]
    assert sent.data["by"] == "task" and f"sends {sent.data['bytes']} bytes" in asyncio_.text(2)
    reads = [log[int(i)] for i in log.indices(kinds=["recv"], src="server")]
    by_loop = sum(e.data.get("by") == "loop" for e in reads)
    assert f"{by_loop} of the {len(reads)} recv() calls" in asyncio_.text(4)


def test_asyncio_window_walk(qtbot, asyncio_, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def check(k: int, lang: str, view) -> None:  # type: ignore[no-untyped-def]
        if k == 1:  # the loop's read: the loop lane runs, not the task
            assert view.lanes[0].current and not any(ln.current for ln in view.lanes[1:])
        if k == 2:
            assert [ln.conn for ln in view.lanes[1:] if ln.current] == \
                [asyncio_.timeline.log[asyncio_.at[2]].conn]
    walk(qtbot, asyncio_, tmp_path, check)


@pytest.mark.parametrize("name", ["processes", "gevent", "asyncio_"])
def test_captions_keep_one_vocabulary_and_ask(name: str, request) -> None:  # type: ignore[no-untyped-def]
    check_vocabulary(request.getfixturevalue(name))


@pytest.mark.parametrize("name", ["processes", "gevent", "asyncio_"])
def test_every_step_fits_at_200_percent(qtbot, request, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Presentation layout at 200 %, both languages, 1280x720 and 1920x1080: no text cut,
    past its view's edge or on another text (measured against its box)."""
    found = unfit(qtbot, request.getfixturevalue(name), tmp_path)
    assert not found, "\n".join(found[:40])
