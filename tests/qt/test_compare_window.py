"""The Compare window: real engines side by side, one load for all, the scaling chart
from a real ``sockscope compare --scale`` run."""
from __future__ import annotations

import subprocess
import sys

import pytest

from visualizer.compare_window import CompareWindow, mode_and_trigger

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="threads and memory come from the engines' /proc")


@pytest.fixture(autouse=True)
def english(qapp):  # type: ignore[no-untyped-def]
    from visualizer import i18n
    i18n.install(qapp, "en")  # the words asserted below, whatever an earlier test chose


@pytest.fixture
def compare(qtbot):  # type: ignore[no-untyped-def]
    window = CompareWindow(["threaded", "epoll-edge"])
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    yield window
    window.close()


def test_the_same_load_reaches_every_engine_and_their_numbers_differ(qtbot, compare) -> None:  # type: ignore[no-untyped-def]
    threaded, epoll = compare.panes
    urls = {p.host.url for p in compare.panes}
    assert None not in urls and len(urls) == 2  # each its own engine, its own port
    compare.clients.setValue(2)
    compare.requests.setValue(20)
    compare.idle.setValue(100)
    compare.run_button.click()
    # 100 idle clients asked once each, and the load's 40: on both, from their own events.
    qtbot.waitUntil(lambda: all(p.responses >= 140 and
                                p.timeline.state.open_connections >= 100
                                for p in compare.panes), timeout=60_000)
    qtbot.waitUntil(lambda: threaded.most_threads >= 100, timeout=10_000)
    assert epoll.most_threads <= 12  # the loop and SockScope's recorders: a few, not 100
    assert threaded.view.mode == "threaded" and epoll.view.mode == "epoll"
    assert epoll.view.badge == "EDGE" and len(epoll.view.interest) >= 100
    for pane in compare.panes:
        # the load came once every idle client was open and answered, and they stay
        assert pane.idle_ready and pane.idle_said.startswith("idle: 100 held, 0 refused")
        assert pane.errors == 0
        text = pane.numbers.text()
        assert f"({pane.responses:,} responses)" in text
        assert f"(most {pane.most_threads:,})" in text
        assert "p50" in text and "—" not in text.split("\n")[1]  # answer times measured
    compare.grab()
    engines = [p.host.channel.proc for p in compare.panes if p.host.channel]
    idle = [p.idle for p in compare.panes if p.idle]
    assert len(engines) == 2 and len(idle) == 2
    compare.close()
    for proc in engines + idle:  # closing the window ends every engine and client it started
        assert proc.poll() is not None


def test_the_scaling_chart_comes_from_a_real_run(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = CompareWindow(["threaded", "epoll"])
    qtbot.addWidget(window)
    window.show()
    try:
        window.tabs.setCurrentIndex(1)
        window.points.setText("5, 50")
        window.clients.setValue(1)
        window.requests.setValue(5)
        window.measure_button.click()
        assert not window.measure_button.isEnabled()
        qtbot.waitUntil(lambda: window.measuring is None, timeout=180_000)
        assert window.chart_path is not None and window.chart_path.exists()
        assert not window.chart.pixmap().isNull()
        log = window.progress.toPlainText()
        assert "--- 50 idle connections" in log and "epoll: 50 idle connections held" in log
    finally:
        window.close()


def test_fewer_than_two_modes_or_an_unknown_one_is_refused() -> None:
    for specs in (["epoll"], ["epoll", "carrier-pigeon"]):
        with pytest.raises(ValueError, match="two or more modes"):
            CompareWindow(specs)
    assert mode_and_trigger("epoll-edge") == ("epoll", "edge")
    assert mode_and_trigger("poll") == ("poll", "level")


def test_the_engine_alone_sends_the_window_to_sockscope() -> None:
    done = subprocess.run([sys.executable, "-m", "engine", "compare", "--window"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "sockscope compare --window" in done.stderr


def test_the_main_window_opens_it_beside_its_own_mode_and_closes_it(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from visualizer.app import MainWindow
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.mode_box.setCurrentIndex(window._mode_index("poll"))  # the mode chosen here
    window.compare_action.trigger()
    compare = window.compare_window
    assert compare is not None and compare.isVisible()
    assert [p.spec for p in compare.panes] == ["poll", "epoll"]
    engines = [p.host.channel.proc for p in compare.panes if p.host.channel]
    assert len(engines) == 2
    window.close()  # the Compare window and its engines end with the main window
    assert not compare.isVisible() and all(proc.poll() is not None for proc in engines)


def test_closing_during_a_measurement_leaves_no_engine_behind(qtbot) -> None:  # type: ignore[no-untyped-def]
    import os
    import time
    window = CompareWindow(["threaded", "epoll"])
    qtbot.addWidget(window)
    window.show()
    window.points.setText("3000")
    window.measure_button.click()
    measuring = window.measuring
    assert measuring is not None
    qtbot.waitUntil(lambda: "serving at" in window.progress.toPlainText(), timeout=60_000)
    pid = measuring.processId()

    def children(p: int) -> list[int]:
        out: list[int] = []
        for task in os.listdir(f"/proc/{p}/task"):
            with open(f"/proc/{p}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        return out

    engines = children(pid)
    assert engines, "compare started no engine"
    window.close()  # mid-measurement: compare is stopped, and so is its engine
    deadline = time.monotonic() + 20
    while any(os.path.exists(f"/proc/{e}") for e in engines) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{e}") for e in engines)
