"""The plots view: the arrays it draws equal what the events say up to the cursor,
from synthetic traces and from live runs of the real engine."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from engine.events import Event
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.views import plots as plots_module
from visualizer.views.plots import PlotsView

ROOT = Path(__file__).resolve().parents[2]
A = "127.0.0.1:50001>127.0.0.1:7890"
B = "127.0.0.1:50002>127.0.0.1:7890"
T0 = 5_000_000_000


def ev(seq: int, ms: float, kind: str, conn: str | None = None, fd: int = -1,
       src: str = "server", **data: object) -> Event:
    return Event(seq, T0 + int(ms * 1_000_000), src, kind, conn, fd, 1, data)


def synthetic() -> list[Event]:
    return [
        ev(1, 0, "mode", mode="epoll", trigger="level", policy="keep-alive",
           multiplexer="epoll"),
        ev(2, 1, "listen", None, 6, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True),
        ev(3, 2, "epoll_ctl", None, 6, op="ADD", mask="IN"),
        ev(4, 10, "epoll_wait", timeout=-1, ready=[(6, 1)]),
        ev(5, 11, "accept", A, 10, peer="x"),
        ev(6, 12, "accept_queue", src="kernel", length=3, backlog=128, source="observed"),
        ev(7, 13, "accept", B, 11, peer="y"),
        ev(8, 14, "connect", A, 30, src="client", peer="z"),  # a client fd: not in the raster
        ev(9, 20, "epoll_wait", timeout=0.25, ready=[(10, 1), (11, 1)]),
        ev(10, 21, "recv", A, 10, bytes=100),
        ev(11, 22, "send", A, 10, bytes=2000, wanted=2000),
        ev(12, 23, "recv", B, 11, bytes=50),
        ev(13, 24, "accept_queue", src="kernel", length=0, backlog=128, source="observed"),
        ev(14, 25, "send", B, 11, bytes=700, wanted=900),
        ev(15, 30, "epoll_wait", timeout=0.25, ready=[(10, 1)]),
        ev(16, 31, "recv", A, 10, bytes=0),
        ev(17, 32, "close", A, 10, reason="peer closed"),
        ev(18, 33, "recv", A, 31, src="client", bytes=2000),
    ]


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = PlotsView()
    qtbot.addWidget(v)
    v.resize(1280, 720)
    v.throttle = False
    v.show()
    return v


def at(view: PlotsView, tl: Timeline, index: int) -> PlotsView:
    tl.seek(index)
    view.show_state(tl)
    return view


def timeline(events: list[Event]) -> Timeline:
    tl = Timeline(EventLog(events))
    tl.live = False
    return tl


def test_synthetic_arrays_follow_the_cursor(view: PlotsView) -> None:
    tl = timeline(synthetic())
    at(view, tl, 16)  # the close
    assert view.cursor_x == pytest.approx(0.032)
    assert all(line.value() == pytest.approx(0.032) for line in view.cursor_lines)
    x, y = view.raster_data["recv"]
    assert x.tolist() == pytest.approx([0.021, 0.023, 0.031]) and y.tolist() == [10, 11, 10]
    x, y = view.raster_data["accept"]
    assert x.tolist() == pytest.approx([0.011, 0.013]) and y.tolist() == [10, 11]
    assert view.raster_data["close"][1].tolist() == [10]
    assert view.raster_data["epoll_ctl"][1].tolist() == [6]
    assert not view.raster_binned
    fds, b_in, b_out = view.bytes_data
    assert fds.tolist() == [10, 11] and b_in.tolist() == [100, 50] and b_out.tolist() == [2000, 700]
    x, y = view.ready_data
    assert x.tolist() == pytest.approx([0.010, 0.020, 0.030]) and y.tolist() == [1, 2, 1]
    x, y = view.open_data
    assert x.tolist() == pytest.approx([0.011, 0.013, 0.032]) and y.tolist() == [1, 2, 1]
    x, y = view.queue_data
    assert x.tolist() == pytest.approx([0.012, 0.024]) and y.tolist() == [3, 0]
    assert view.cpu_message == "no CPU samples in this trace"
    assert view.messages[view.cpu_plot].isVisible()
    assert len(view.cpu_data[0]) == 0
    # Step back: everything shrinks to what the events said then.
    at(view, tl, 11)  # B's recv
    assert view.cursor_x == pytest.approx(0.023)
    assert view.raster_data["recv"][1].tolist() == [10, 11]
    assert view.raster_data["send"][1].tolist() == [10]
    assert view.raster_data["close"][1].tolist() == []
    fds, b_in, b_out = view.bytes_data
    assert fds.tolist() == [10, 11] and b_in.tolist() == [100, 50] and b_out.tolist() == [2000, 0]
    assert view.ready_data[1].tolist() == [1, 2]
    assert view.open_data[1].tolist() == [1, 2]
    assert view.queue_data[1].tolist() == [3]
    at(view, tl, 2)
    assert all(len(x) == 0 for x, _ in view.raster_data.values() if x is not None) or \
        view.raster_data["epoll_ctl"][1].tolist() == [6]
    assert len(view.bytes_data[0]) == 0 and len(view.open_data[0]) == 0
    assert view.messages[view.ready_plot].isVisible()
    # and forward again
    at(view, tl, 17)
    assert view.bytes_data[1].tolist() == [100, 50]  # the client's recv is not the server's
    assert view.raster_data["recv"][1].tolist() == [10, 11, 10]


def test_cpu_samples_are_drawn_when_present(view: PlotsView) -> None:
    events = synthetic()[:5] + [ev(100 + k, 40 + 100 * k, "cpu", src="engine", percent=10.0 * k,
                                   user_s=0.1 * k, system_s=0.0, interval_s=0.1)
                                for k in range(4)]
    tl = timeline(events)
    at(view, tl, len(events) - 2)
    assert view.cpu_message == ""
    assert view.cpu_data[1].tolist() == [0.0, 10.0, 20.0]
    assert view.cpu_data[0].tolist() == pytest.approx([0.04, 0.14, 0.24])
    at(view, tl, 4)
    assert view.cpu_message == "no CPU sample yet"


def test_follow_the_cursor_and_zoom(view: PlotsView) -> None:
    tl = timeline(synthetic())
    at(view, tl, 16)
    lo, hi = view.raster.viewRange()[0]
    assert lo < 0 <= view.cursor_x <= hi  # all: from 0 past the cursor
    view.follow_box.setChecked(True)
    for index in (9, 12, 16):
        at(view, tl, index)
        lo, hi = view.raster.viewRange()[0]
        assert lo < view.cursor_x < hi
        assert (view.cursor_x - lo) / (hi - lo) == pytest.approx(0.85, abs=0.01)
        for plot in view.time_plots[1:]:
            assert plot.viewRange()[0] == pytest.approx([lo, hi])
    view.show_all()
    assert not view.follow_box.isChecked() and view.x_mode == "all"


def test_big_raster_becomes_an_image_and_grows_incrementally(view: PlotsView) -> None:
    n = plots_module.MAX_POINTS + 5000
    events = [ev(1, 0, "mode", mode="epoll", trigger="level", policy="keep-alive",
                 multiplexer="epoll")]
    for k in range(n):
        events.append(ev(k + 2, 0.01 * (k + 1), "recv" if k % 2 else "send",
                         A, 10 + k % 50, bytes=1))
    tl = timeline(events)
    view.x_mode = "manual"  # a fixed range: the image's columns stay put
    view._set_x_range(0, 0.01 * (n + 10) / 1000)
    at(view, tl, n - 4000)
    assert view.raster_binned and view.raster_image is not None
    for step in range(5):
        at(view, tl, n - 3500 + 500 * step)
    grown = view.raster_image.copy()
    assert view.raster_increments == 5
    assert view.raster_count == n - 1500  # events 1..n-1500: one dot each
    fresh = PlotsView()
    fresh.resize(1280, 720)
    fresh.throttle = False
    fresh.show()
    fresh.x_mode = "manual"
    fresh._set_x_range(0, 0.01 * (n + 10) / 1000)
    at(fresh, tl, tl.cursor)
    assert np.array_equal(grown, fresh.raster_image)
    rows = np.flatnonzero(grown[:, :, 3].any(axis=1))
    assert rows.tolist() == list(range(50))  # fds 10..59, one row each
    # Stepping back takes events away from the same picture.
    for back in (1, 700, 1):
        at(view, tl, tl.cursor - back)
        at(fresh, tl, tl.cursor)
        assert np.array_equal(view.raster_image, fresh.raster_image)
    assert view.raster_increments == 8
    fresh.close()
    # Back below the threshold: dots again.
    at(view, tl, 100)
    assert not view.raster_binned and len(view.raster_data["recv"][0]) == 50


def test_late_events_and_selection(view: PlotsView, qtbot) -> None:  # type: ignore[no-untyped-def]
    events = synthetic()
    tl = timeline(events[:12])
    tl.seek(11)
    view.show_state(tl)
    assert view.bytes_data[1].tolist() == [100, 50]
    # A late recv (dated before B's) is merged into the log; the cursor follows.
    tl.add([ev(50, 22.5, "recv", A, 10, bytes=7)])
    tl.seek(len(tl.log) - 1)
    view.show_state(tl)
    assert view.bytes_data[1].tolist() == [107, 50]
    view.select(B)
    assert view.selected_fd == 11 and view.selection_bands[0].isVisible()
    assert view.selection_bands[0].getRegion() == pytest.approx((10.5, 11.5))
    view.select(None)
    assert not view.selection_bands[0].isVisible()
    # Clicking the raster on fd 11's row selects the connection on that fd.
    qtbot.wait(50)  # the layout settles
    vb = view.raster.getViewBox()
    x_mid = sum(view.raster.viewRange()[0]) / 2
    scene_pos = vb.mapViewToScene(pg.Point(x_mid, 11))
    pos = view.graphics.mapFromScene(scene_pos)
    with qtbot.waitSignal(view.connection_selected, timeout=1000) as signal:
        qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert signal.args == [B]


def test_export_png_and_svg(view: PlotsView, tmp_path: Path) -> None:
    tl = timeline(synthetic())
    at(view, tl, 16)
    view.export(tmp_path / "plots.png")
    assert (tmp_path / "plots.png").stat().st_size > 10_000
    view.export(tmp_path / "plots.svg")
    svg = (tmp_path / "plots.svg").read_text()
    assert "<svg" in svg and svg.count("<polyline") + svg.count("<path") > 20
    assert "Server events per fd" in svg and "no CPU samples" in svg


# ---------------------------------------------------------------- live runs
def record(tmp_path: Path, *mode: str) -> Timeline:
    path = tmp_path / "trace.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode", *mode,
                    "--load=--clients 3 --requests 4 --together", "--exit-after-load",
                    # No sampler: the plot's "no CPU samples" must not depend on whether a
                    # loaded machine stretched the run past the first 0.1 s sample.
                    "--cpu-interval", "0", "--trace", str(path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    tl, _, problems = open_trace(path)
    assert not problems
    return tl


def expected(tl: Timeline, stop: int) -> dict[str, object]:
    """What the events in [0, stop] say, read the slow way."""
    events = [tl.log[i] for i in range(stop + 1)]
    t0 = tl.log[0].t_ns
    server = [e for e in events if e.src == "server"]
    b_in: dict[int, int] = {}
    b_out: dict[int, int] = {}
    for e in server:
        if e.kind == "recv":
            b_in[e.fd] = b_in.get(e.fd, 0) + e.data["bytes"]
            b_out.setdefault(e.fd, 0)
        elif e.kind == "send":
            b_out[e.fd] = b_out.get(e.fd, 0) + e.data["bytes"]
            b_in.setdefault(e.fd, 0)
    opened = 0
    open_y = []
    for e in server:
        if e.kind in ("accept", "close"):
            opened += 1 if e.kind == "accept" else -1
            open_y.append(opened)
    return {
        "recv_fds": [e.fd for e in server if e.kind == "recv" and e.fd >= 0],
        "recv_x": [(e.t_ns - t0) / 1e9 for e in server if e.kind == "recv" and e.fd >= 0],
        "bytes": (sorted(b_in), [b_in[fd] for fd in sorted(b_in)],
                  [b_out[fd] for fd in sorted(b_out)]),
        "ready": [len(e.data["ready"]) for e in server if e.kind == "epoll_wait"],
        "open": open_y,
        "queue": [e.data["length"] for e in events if e.kind == "accept_queue"],
    }


@pytest.mark.parametrize("mode", [("epoll",), ("epoll", "--trigger", "edge"), ("threaded",),
                                  ("nonblocking", "--sweep-pause", "0.001")],
                         ids=["epoll-level", "epoll-edge", "threaded", "nonblocking"])
def test_live(view: PlotsView, tmp_path: Path, mode: tuple[str, ...]) -> None:
    tl = record(tmp_path, *mode)
    end = len(tl.log) - 1
    for stop in (end // 3, end):
        at(view, tl, stop)
        want = expected(tl, stop)
        assert view.raster_data["recv"][1].tolist() == want["recv_fds"]
        assert view.raster_data["recv"][0].tolist() == pytest.approx(want["recv_x"])
        fds, b_in, b_out = view.bytes_data
        assert (fds.tolist(), b_in.tolist(), b_out.tolist()) == want["bytes"]
        assert view.ready_data[1].tolist() == want["ready"]
        assert view.open_data[1].tolist() == want["open"]
        assert view.queue_data[1].tolist() == want["queue"]
        assert view.cursor_x == pytest.approx((tl.log[stop].t_ns - tl.log[0].t_ns) / 1e9)
    if mode[0] == "epoll":
        # how many waits it takes depends on timing: an edge-triggered loop that
        # drains may find the next request already there and never wait for it
        assert len(view.ready_data[1]) > 0 and not view.messages[view.ready_plot].isVisible()
    else:  # no epoll in this mode: the plot says so
        assert len(view.ready_data[1]) == 0
        assert mode[0] in view.messages[view.ready_plot].toPlainText()
    assert view.open_data[1][-1] == 0 and view.open_data[1].max() == 3
    assert view.cpu_message == "no CPU samples in this trace"
    assert view.complete


def test_zoomed_in_the_legend_takes_a_row_of_its_own_and_fits(view: PlotsView, qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QFontMetricsF
    from visualizer.views import style
    qtbot.wait(20)  # the first fit runs once the layout has given the legend its width
    assert view._top.indexOf(view.legend) >= 0  # 100 %: beside the heading
    try:
        style.set_zoom(3.0)
        view.apply_theme()
        view.resize(1268, 470)
        qtbot.waitUntil(lambda: view._legend_row.indexOf(view.legend) >= 0, timeout=2000)
        qtbot.wait(20)
        words = view.legend.text()
        assert "epoll_ctl" in words and "EAGAIN" in words
        plain = "   ".join("● " + k for k in ("accept", "recv", "send", "EAGAIN", "close",
                                               "epoll_ctl"))
        assert QFontMetricsF(view.legend.font()).horizontalAdvance(plain) <= view.legend.width()
        assert view.legend.font().pointSizeF() >= style.BASE_SIZE - 0.5  # not below 100 %
    finally:
        style.set_zoom(1.0)
        view.apply_theme()
        view.resize(1280, 720)
    qtbot.waitUntil(lambda: view._top.indexOf(view.legend) >= 0, timeout=2000)
