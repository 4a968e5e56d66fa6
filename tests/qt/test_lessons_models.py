"""The I/O-model lessons (3.4–3.9), each recorded for real, checked, and walked
step by step in the window in both languages: a thread per connection,
non-blocking polling, and epoll level vs edge with the edge-triggered bug."""
from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from visualizer.app import MainWindow
from visualizer.lessons import LANGS, Prepared, all_lessons, prepare
from visualizer.lessons.models import (
    CPU_MEDIAN,
    WASTE_RATIO,
    _conn_threads,
    _most_at_once,
    _runs,
    _stalled,
    _sweep_totals,
)


def _prepared(name: str, tmp_path_factory) -> Prepared:  # type: ignore[no-untyped-def]
    return prepare(all_lessons()[name], tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def threads(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepared("threads", tmp_path_factory)


@pytest.fixture(scope="module")
def nonblocking(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepared("nonblocking", tmp_path_factory)


@pytest.fixture(scope="module")
def epoll(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepared("epoll", tmp_path_factory)


def walk(qtbot, prepared: Prepared, tmp_path: Path,  # type: ignore[no-untyped-def]
         at_step: Callable[[int, MainWindow], None] | None = None) -> list[str]:
    """Open the lesson and press PageDown through every step, in each language;
    ``at_step(k, window)`` checks what step k shows (in the first language)."""
    steps = prepared.steps
    assert 5 <= len(steps) <= 10
    assert prepared.at == sorted(prepared.at)
    seen: list[str] = []
    for lang in LANGS:
        settings = QSettings(str(tmp_path / f"{lang}.ini"), QSettings.Format.IniFormat)
        settings.setValue("language", lang)
        window = MainWindow(engine=False, settings=settings)
        qtbot.addWidget(window)
        window.resize(1600, 1000)
        window.show()
        window.open_lesson(prepared)
        for k in range(len(steps)):
            assert window.caption_step.text() == f"{k + 1} / {len(steps)}"
            assert window.timeline.cursor == prepared.at[k]
            assert window.view_tabs.currentWidget().name == steps[k].view
            text = window.caption.text()
            assert text == prepared.text(k, lang) and text
            if lang == "zh_CN":
                assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text
            if steps[k].conn is not None:
                assert window.selected == steps[k].conn(prepared.timeline.log)
            if lang == LANGS[0]:
                seen.append(steps[k].view)
                if at_step is not None:
                    at_step(k, window)
            qtbot.keyClick(window, Qt.Key.Key_PageDown)
        assert window.lesson_step == len(steps) - 1
        window.close()
    return seen


def test_the_lessons_are_listed_in_the_lecture_order() -> None:
    names = list(all_lessons())
    assert names.index("threads") < names.index("nonblocking") < names.index("epoll")
    for name in ("threads", "nonblocking", "epoll"):
        lesson = all_lessons()[name]
        assert all(lesson.title.get(lang) and lesson.summary.get(lang) for lang in LANGS)


# ---------------------------------------------------------------- threads
def test_threads_serve_several_clients_at_once(qtbot, threads, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = threads.timeline.log
    spans = _conn_threads(log)
    most, _ = _most_at_once(spans)
    assert len(spans) >= 3 and most >= 3  # three client threads alive together
    # each thread served its own connection, more than one request each (keep-alive)
    for a, b, conn in spans.values():
        served = log.indices(conn=conn, kinds=["response"], src="server", start=a, stop=b + 1)
        assert len(served) >= 2
        assert {log[int(i)].thread for i in served} == {log[a].thread}

    def at_step(k: int, window: MainWindow) -> None:
        io = window.views["io"]
        conn_lanes = [ln for ln in io.lanes if ln.role == "conn"]
        if k == 1:  # all the threads at once, each in its lane
            assert io.mode == "threaded" and len(conn_lanes) >= 3
            assert len({ln.conn for ln in conn_lanes}) == len(conn_lanes)
        if k == 2:  # every thread blocked in recv(), waiting for its client
            assert conn_lanes and all(ln.activity == "recv_blocked" for ln in conn_lanes)
        if k == 3:  # one thread woke up, the others still blocked
            awake = [ln for ln in conn_lanes if ln.activity != "recv_blocked"]
            assert len(awake) == 1 and awake[0].conn == window.selected
            assert len(conn_lanes) - len(awake) >= 2
        if k == 4:  # plots: a row per fd, and the engine's CPU stays low
            plots = window.views["plots"]
            assert len(plots.bytes_data[0]) >= 3
            cpu = plots.cpu_data[1]
            assert len(cpu) and statistics.median(cpu) < 50

    seen = walk(qtbot, threads, tmp_path, at_step)
    assert {"io", "plots", "lifecycle"} <= set(seen)


# ---------------------------------------------------------------- nonblocking
def test_nonblocking_wastes_tries_and_a_core(qtbot, nonblocking, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = nonblocking.timeline.log
    sweeps, eagain, useful = _sweep_totals(log)
    assert useful and eagain >= WASTE_RATIO * useful
    cpu = [float(log[int(i)].data["percent"]) for i in log.indices(kinds=["cpu"])]
    assert statistics.median(cpu) > CPU_MEDIAN
    assert len(log.indices(kinds=["response"], src="server")) == 8  # 4 clients x 2 requests

    def at_step(k: int, window: MainWindow) -> None:
        io = window.views["io"]
        if k in (0, 1, 2, 3, 4, 6):
            assert io.mode == "nonblocking" and io.sweep
        if k == 1:  # accept() useful, the new sockets' recv() EAGAIN
            outcomes = {c.role: c.outcome for c in io.sweep}
            assert outcomes["listen"] == "useful"
            assert any(c.outcome == "eagain" and c.role == "conn" for c in io.sweep)
        if k == 2:  # connected but thinking: every try of the sweep was EAGAIN
            assert len(io.sweep) >= 5 and all(c.outcome == "eagain" for c in io.sweep)
        if k == 3:  # a request found
            assert any(c.outcome == "useful" and c.role == "conn" for c in io.sweep)
        if k == 4:  # the totals, in large type: nearly every try was wasted
            for _ in range(200):  # a big log is counted a slice per refresh
                if io._sweeps.complete and io.totals["sweeps"] == sweeps:
                    break
                io.show_state(window.timeline)
            assert io.totals == {"sweeps": sweeps, "tries": io.totals["tries"],
                                 "eagain": eagain, "useful": useful}
            assert io.wasted_percent is not None and io.wasted_percent > 99
            assert str(sweeps) in window.caption.text().replace(",", "")
        if k == 5:  # the CPU plot, drawn and high
            plots = window.views["plots"]
            assert statistics.median(plots.cpu_data[1]) > CPU_MEDIAN
            assert "eagain" in plots.raster_data or plots.raster_image is not None

    seen = walk(qtbot, nonblocking, tmp_path, at_step)
    assert {"io", "plots"} <= set(seen)


# ---------------------------------------------------------------- epoll
def test_epoll_level_edge_and_the_edge_bug(qtbot, epoll, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = epoll.timeline.log
    runs = _runs(log)
    assert set(runs) == {"level-no-drain", "edge", "edge-no-drain"}
    s = _stalled(log)
    # The bug, from the log: the server read 1024 of the bytes, the fd was reported
    # once, the waits after it came back empty, and the client gave up on its request.
    assert s["read"] == 1024 < s["sent"]
    assert len(s["reports"]) == 1 and s["empty"]
    assert log[s["gave_up"]].data["reason"] == "error"
    assert s["answers"] < 12  # 12 requests pipelined, the last one never answered in time
    t = log.column("t_ns")
    assert (int(t[s["gave_up"]]) - int(t[s["first_recv"]])) / 1e9 >= 0.9  # the stall lasted
    # The other runs answered everything.
    for name in ("level-no-drain", "edge"):
        start, stop = runs[name]
        assert len(log.indices(kinds=["response"], src="server", start=start, stop=stop)) == 24

    def at_step(k: int, window: MainWindow) -> None:
        io = window.views["io"]
        if k in (0, 1):
            assert io.trigger == "level"
        if k == 1:  # the same fd reported again by the next wait
            assert [item.again for item in io.ready] == [True]
            assert "recv" in io.now_text
        if k in (2, 3):
            assert io.trigger == "edge" and io.ready and not io.ready[0].again
        if k == 3:
            assert "EAGAIN" in io.now_text
        if k == 4:
            assert io.trigger == "edge" and "1024" in io.now_text
        if k == 5:  # stalled: nothing ready, though the fd is still watched
            assert io.ready == [] and any(i.fd == s["fd"] for i in io.interest)
        if k == 6 and s["later"]:  # the FIN's edge: reported at last, the rest read
            assert s["fd"] in [item.fd for item in io.ready]
            assert str(s["sent"] - s["read"]) in io.now_text
        if k == 7:  # on the wire: the bytes, the answers, a long silence, the FIN
            seq = window.views["sequence"]
            assert seq.conn == s["conn"]
            fins = [a for a in seq.arrows if "FIN" in a.flags]
            data = [a for a in seq.arrows if a.kind == "data" and a.sender == "server"]
            if fins:
                before = [a for a in seq.arrows if a.index < fins[0].index]
                assert fins[0].elapsed_ms - before[-1].elapsed_ms >= 900
            assert data or seq.elisions
        if k == 8:
            plots = window.views["plots"]
            assert 0 in plots.ready_data[1]  # waits that returned nothing

    seen = walk(qtbot, epoll, tmp_path, at_step)
    assert {"io", "sequence", "plots"} <= set(seen)
