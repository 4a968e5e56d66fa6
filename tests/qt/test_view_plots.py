"""The plots view: the arrays it draws equal what the events say up to the cursor,
from synthetic traces and from live runs of the real engine."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetricsF

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
    # At the third event, the epoll_ctl ADD of the listening fd: it alone is a dot.
    assert view.raster_data["epoll_ctl"][1].tolist() == [6]
    assert all(len(x) == 0 for kind, (x, _) in view.raster_data.items() if kind != "epoll_ctl")
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
    stripes = view.image_stripes  # an fd's row is cut in stripes (one kind each here)
    assert grown.shape[0] == 50 * stripes
    rows = np.flatnonzero(grown[:, :, 3].any(axis=1))
    assert rows.tolist() == list(range(50 * stripes))  # fds 10..59, every stripe painted
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


# ---------------------------------------------------------------- pictures a hall can read
def kind_pixels(view: PlotsView, x: float, fd: float, kinds: list[str],
                half: int = 24) -> dict[str, int]:
    """How many pixels of each kind's colour the raster shows within ``half`` pixels of
    (x, fd): what a reader sees of each kind there."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColor, QImage
    from visualizer.views import style
    vb = view.raster.getViewBox()
    centre = view.graphics.mapFromScene(vb.mapViewToScene(QPointF(x, fd)))
    image = view.graphics.viewport().grab().toImage().convertToFormat(
        QImage.Format.Format_RGB32)
    width = image.bytesPerLine() // 4
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), width, 4)[:, :image.width(), :3].astype(np.int32)
    box = pixels[max(0, centre.y() - half):centre.y() + half,
                 max(0, centre.x() - half):centre.x() + half]
    out = {}
    for kind in kinds:
        c = QColor(style.KIND_COLOURS[kind])
        near = np.abs(box - np.array([c.blue(), c.green(), c.red()])).max(axis=2) <= 24
        out[kind] = int(near.sum())
    return out


def a_short_connection_among_others() -> list[Event]:
    """Ten seconds of a server: one connection on fd 10 lives 2 ms (every kind of event
    within a pixel of the others at this scale), others come and go around it."""
    events = [ev(1, 0, "mode", mode="nonblocking", trigger=None, policy="keep-alive",
                 multiplexer=None),
              ev(2, 1, "listen", None, 6, host="127.0.0.1", port=7890, backlog=128)]
    seq = 3
    for k, t in enumerate((1000.0, 4000.0, 7000.0, 9900.0)):
        fd = 10 if k == 0 else 11 + k
        conn = f"127.0.0.1:{50010 + k}>127.0.0.1:7890"
        for dt, kind, data in ((0.0, "accept", {"peer": "x"}),
                               (0.1, "epoll_ctl", {"op": "ADD", "mask": "IN"}),
                               (0.2, "eagain", {"call": "recv"}),
                               (0.6, "recv", {"bytes": 80}),
                               (0.9, "send", {"bytes": 2000, "wanted": 2000}),
                               (1.6, "epoll_ctl", {"op": "DEL", "mask": "0"}),
                               (1.8, "close", {"reason": "peer closed"})):
            events.append(ev(seq, t + dt, kind, conn, fd, **data))
            seq += 1
    return events


def test_at_a_long_time_scale_no_kind_hides_another(view: PlotsView, qtbot) -> None:  # type: ignore[no-untyped-def]
    """Issue: seen over seconds, a short connection's close covered its accept, recv and
    send. Every kind must keep pixels of its own colour where it happened."""
    tl = timeline(a_short_connection_among_others())
    at(view, tl, len(tl.log) - 1)
    qtbot.wait(30)  # the layout has run: the markers' size follows the rows' height
    view.settle()
    assert not view.raster_binned
    lo, hi = view.raster.viewRange()[0]
    assert hi - lo > 5  # seconds: the 2 ms of fd 10 are less than a pixel wide
    kinds = ["accept", "recv", "send", "eagain", "close", "epoll_ctl"]
    seen = kind_pixels(view, 1.001, 10, kinds)
    hidden = [k for k in kinds if seen[k] < 4]
    assert not hidden, (hidden, seen)


def test_a_binned_raster_keeps_each_kinds_colour(view: PlotsView) -> None:
    """Past MAX_POINTS events the raster is a picture: where one fd's accept, recv, send
    and close fall into one pixel column, that fd's row shows each of their colours."""
    from visualizer.views import style
    events = [ev(1, 0, "mode", mode="epoll", trigger="level", policy="keep-alive",
                 multiplexer="epoll")]
    seq = 2
    for k in range(plots_module.MAX_POINTS // 4 + 200):
        fd = 10 + k % 40
        conn = f"127.0.0.1:{20000 + k}>127.0.0.1:7890"
        t = 5.0 * k
        for dt, kind in ((0.0, "accept"), (0.5, "recv"), (1.0, "send"), (1.5, "close")):
            events.append(ev(seq, t + dt, kind, conn, fd,
                             **({"bytes": 10} if kind in ("recv", "send") else {})))
            seq += 1
    tl = timeline(events)
    at(view, tl, len(tl.log) - 1)
    assert view.raster_binned and view.raster_image is not None
    image = view.raster_image
    for kind in ("accept", "recv", "send", "close"):
        rgba = np.array(plots_module._RGBA[kind], np.uint8)
        found = np.all(image == rgba, axis=2)
        assert found.any(), f"no {kind} ({style.KIND_COLOURS[kind]}) left in the picture"
        # and in every fd's rows: each row's stripes hold all four kinds
        rows = np.flatnonzero(found.any(axis=1)) // view.image_stripes
        assert set(rows.tolist()) == set(range(40)), kind


def test_fd_and_count_axes_tick_whole_numbers(view: PlotsView, qtbot) -> None:  # type: ignore[no-untyped-def]
    """A tall raster of three fds once read 18.0, 18.5, 19.0: fds and counts are whole."""
    tl = timeline(synthetic())
    at(view, tl, 16)
    qtbot.wait(30)
    for plot in (view.raster, view.ready_plot, view.open_plot, view.queue_plot):
        axis = plot.getAxis("left")
        (lo, hi) = plot.viewRange()[1]
        levels = axis.tickValues(lo, hi, plot.getViewBox().height())
        values = [v for _, vs in levels for v in vs]
        assert values and all(float(v).is_integer() for v in values), (plot, values)


def test_a_small_trace_gets_sensible_plots(qtbot) -> None:  # type: ignore[no-untyped-def]
    """`sockscope replay tests/data/v1-selectors.jsonl --view plots` drew empty per-fd
    plots and a "-400…400 bytes (mB)" axis: drawn while hidden, the raster and the bars
    waited for a redraw that never came. Shown, they are drawn; bytes start at 0, in
    whole bytes."""
    tl, _, problems = open_trace(ROOT / "tests" / "data" / "v1-selectors.jsonl")
    assert not problems
    view = PlotsView()
    qtbot.addWidget(view)
    view.resize(1280, 560)
    view.throttle = False
    tl.seek(len(tl.log) - 1)
    view.show_state(tl)  # hidden: another tab is in front, or the window is not shown yet
    assert not view.isVisible()
    view.show()
    qtbot.waitUntil(lambda: len(view.raster_data.get("recv", ((),))[0]) > 0, timeout=3000)
    fds, b_in, b_out = view.bytes_data
    assert len(fds) == 2 and b_in.sum() > 0 and b_out.sum() > 0
    lo, hi = view.bytes_plot.viewRange()[0]
    assert lo == 0 and hi >= b_out.max()
    axis = view.bytes_plot.getAxis("bottom")
    assert axis.labelUnitPrefix in ("", "k") and axis.autoSIPrefixScale <= 1  # never mB
    # Before any byte moved: 0 to 100 B, and the plot says why it is empty.
    tl.seek(13)
    view.show_state(tl)
    assert len(view.bytes_data[0]) == 0
    assert view.bytes_plot.viewRange()[0] == pytest.approx([0, 120])
    assert axis.labelUnitPrefix == "" and axis.autoSIPrefixScale == 1
    assert view.messages[view.bytes_plot].isVisible()


def cpu_trace() -> list[Event]:
    """A busy loop's engine: CPU samples around a whole core (median 99)."""
    percents = [86.1, 103.3, 105.1, 101.4, 99.4, 92.6, 47.6]
    events = synthetic()[:5]
    events += [ev(100 + k, 40 + 20 * k, "cpu", src="engine", percent=p, user_s=0.1 * k,
                  system_s=0.0, interval_s=0.02) for k, p in enumerate(percents)]
    return events


def test_the_cpu_plot_reads_at_200_percent_on_a_720p_slide(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Lesson nonblocking step 7 points at the CPU plot (bottom right), "a median 99 % of
    a core": zoomed to 200 % in a 1280x720 slide's view (under a 6-line caption) the plot
    has room for its curve and its 50 / 100 labels, says the median in its title, and
    marks one whole core."""
    from visualizer.textaudit import TextAudit
    from visualizer.views import style
    view = PlotsView()
    qtbot.addWidget(view)
    view.throttle = False
    tl = timeline(cpu_trace())
    try:
        style.set_zoom(2.0)
        view.apply_theme()
        view.resize(1268, 488)
        view.show()
        at(view, tl, len(tl.log) - 1)
        qtbot.wait(50)
        view.settle()
        assert "median 99" in view.cpu_plot.titleLabel.text
        assert view.core_line.isVisible() and view.core_line.value() == 100
        lo, hi = view.cpu_plot.viewRange()[1]
        assert lo <= 0 and 100 < hi <= 130
        # the plot is a plot, not a sliver: room for three lines of its tick labels
        tick = QFontMetricsF(view.cpu_plot.getAxis("left").style["tickFont"]).height()
        assert view.cpu_plot.getViewBox().height() >= 3 * tick
        with TextAudit() as audit:
            view.grab()
        drawn = {d.text for d in audit.drawn}
        assert {"50", "100"} <= drawn  # the left axis's labels are drawn
        assert not audit.findings(), [str(f) for f in audit.findings()]
    finally:
        style.set_zoom(1.0)
        view.apply_theme()


def test_the_accept_queue_shows_full_and_the_value_at_the_cursor(view: PlotsView) -> None:
    """Lesson backlog steps 7, 8, 10: the queue of a listen(1) stays full (2 = backlog + 1)
    while the server does not accept, then drains. The plot marks "full" and a dot gives
    the length at the cursor (a step right at the cursor hides under its line)."""
    events = [ev(1, 0, "mode", mode="epoll", trigger="level", policy="keep-alive",
                 multiplexer="epoll"),
              ev(2, 1, "listen", None, 6, host="127.0.0.1", port=7890, backlog=1)]
    for k, (ms, length) in enumerate(((100, 1), (110, 2), (1450, 1), (1600, 0))):
        events.append(ev(3 + k, ms, "accept_queue", src="kernel", length=length, backlog=1,
                         source="observed"))
    tl = timeline(events)
    at(view, tl, 3)  # full
    assert view.queue_full == 2 and view.full_line.isVisible()
    assert view.full_line.value() == 2 and view.queue_plot.viewRange()[1][1] > 2
    assert view.now_dots[view.queue_plot].getData()[1].tolist() == [2]
    at(view, tl, 4)  # accept() took one off
    assert view.now_dots[view.queue_plot].getData()[1].tolist() == [1]
    assert view.now_dots[view.queue_plot].getData()[0].tolist() == pytest.approx(
        [view.cursor_x])
    at(view, tl, 5)  # drained
    assert view.now_dots[view.queue_plot].getData()[1].tolist() == [0]
    assert "Accept queue (backlog 1)" in view.queue_plot.titleLabel.text


def test_idle_sweeps_folded_by_the_engine_are_shaded_where_they_happened(
        view: PlotsView, tmp_path: Path) -> None:
    """An idle non-blocking loop records one poll_sweep per idle stretch, no EAGAIN per
    try: the raster shades each stretch over the time it took, and only those."""
    path = tmp_path / "idle.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode",
                    "nonblocking", "--sweep-pause", "0.001", "--states", "off", "--packets", "off",
                    "--load=--clients 2 --requests 2 --think 150", "--exit-after-load",
                    "--trace", str(path)], cwd=ROOT, check=True, capture_output=True, timeout=60)
    tl, _, problems = open_trace(path)
    assert not problems
    log = tl.log
    folded = [i for i in range(len(log)) if log[i].kind == "poll_sweep" and "since_ns" in log[i].data]
    assert len(folded) >= 3
    t0 = log.times[0]
    want = [((log[i].data["since_ns"] - t0) / 1e9, (log[i].t_ns - t0) / 1e9, log[i].data["sweeps"])
            for i in folded]
    # Each call reads event data for READ_BUDGET_S at most (a loaded machine reads less
    # per call): shown again until everything is read, a bounded number of times.
    for _ in range(200):
        at(view, tl, len(log) - 1)
        if len(view.idle_spans) >= len(want):
            break
    assert [x for span in view.idle_spans for x in span] == \
        pytest.approx([x for span in want for x in span])
    assert view.idle_shade.isVisible() and "idle sweeps" in view.legend.text()
    at(view, tl, folded[0] - 1)  # before the first stretch ended: nothing shaded yet
    assert view.idle_spans == [] and not view.idle_shade.isVisible()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the processes mode forks")
def test_open_connections_count_the_socket_not_a_forking_parents_copy(view: PlotsView,
                                                                      tmp_path: Path) -> None:
    """A forking server closes two descriptors per connection (the parent's copy closes
    nothing): the open count follows the sockets, never below 0, back to 0 at the end."""
    tl = record(tmp_path, "processes")
    at(view, tl, len(tl.log) - 1)
    _, y = view.open_data
    copies = [e for e in tl.log if e.kind == "close" and e.data.get("last") is False]
    assert copies, "the parent's copies are closed too"
    assert y.min() >= 0 and y.max() >= 1 and y[-1] == 0
