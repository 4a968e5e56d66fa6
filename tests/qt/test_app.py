"""The window with its real engine: drive it, watch it, step back and forth, replay."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from engine.trace import read_trace
from visualizer.app import MODES, MainWindow
from tests.qt.conftest import engine_url

ROOT = Path(__file__).resolve().parents[2]


def responses(w: MainWindow) -> int:
    return sum(1 for e in w.timeline.log if e.kind == "response")


def test_window_starts_engine_and_shows_traffic(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    assert engine_url(qtbot, window).startswith("http://127.0.0.1:")
    window.count_box.setValue(2)
    window.traffic_buttons["Keep-alive"].click()
    qtbot.waitUntil(lambda: responses(window) >= 10, timeout=10_000)
    qtbot.waitUntil(lambda: window.timeline.state.open_connections == 0, timeout=10_000)
    state = window.timeline.state
    served = [c for c in state.connections.values() if c.requests]
    assert len(served) == 2 and all(c.requests == 5 for c in served)
    assert window.connections.rowCount() >= 2
    assert "mode: epoll" in window.status_label.text()
    assert window.host.url in window.status_label.text()
    # Step back and forth: the model and the widgets follow the cursor.
    end = window.timeline.cursor
    window.step(-5)
    assert window.timeline.cursor == end - 5 and not window.timeline.live
    assert not window.live_button.isChecked()
    assert window.slider.value() == end - 5
    assert window.position_label.text() == f"{end - 4} / {len(window.timeline.log)}"
    window.step(5)
    assert window.timeline.cursor == end
    first_request = next(i for i, e in enumerate(window.timeline.log) if e.kind == "request")
    window.seek(first_request - 1)
    before = sum(c.requests for c in window.timeline.state.connections.values())
    window.step(1)
    after = sum(c.requests for c in window.timeline.state.connections.values())
    assert after == before + 1


def test_keyboard_and_clicking_a_row_move_the_cursor(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: responses(window) >= 1, timeout=10_000)
    from PySide6.QtCore import Qt
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.timeline.cursor == 0
    qtbot.keyClick(window, Qt.Key.Key_PageDown)  # a presentation clicker
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.timeline.cursor == 2
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.timeline.cursor == 1
    index = window.table_model.index(3, 0)
    window._row_clicked(index)
    assert window.timeline.cursor == window.table_model.rows[3]


def test_mode_switch_restarts_the_engine_and_keeps_the_timeline(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: responses(window) >= 1, timeout=10_000)
    recorded = len(window.timeline.log)
    window.mode_box.setCurrentIndex([m for _, m, _ in MODES].index("threaded"))
    window.restart_button.click()
    engine_url(qtbot, window)
    qtbot.waitUntil(lambda: window.timeline.state.mode.get("mode") == "threaded", timeout=10_000)
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: responses(window) >= 2, timeout=10_000)
    assert len(window.timeline.log) > recorded
    modes = [e.data["mode"] for e in window.timeline.log if e.kind == "mode"]
    assert modes[0] == "epoll" and modes[-1] == "threaded"
    assert any(e.kind == "thread_start" and e.conn for e in window.timeline.log)
    # The restart is marked on the timeline: one mark per engine start, at its mode event.
    window._refresh()
    marks = window.slider.marks
    assert len(marks) == 2 and [window.timeline.log[i].data["mode"] for i in marks] == \
        ["epoll", "threaded"]
    assert window.slider.mark_x(marks[0]) < window.slider.mark_x(marks[1])


def test_a_restart_keeps_the_old_engines_last_events_and_starts_the_picture_afresh(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A keep-alive connection held open across a restart: the old engine closes it as it
    stops (that close is recorded), and the new engine's picture holds none of the old
    one's fds, threads or interest list."""
    import socket
    from urllib.parse import urlsplit
    url = urlsplit(window.host.url)
    held = socket.create_connection((url.hostname, url.port), timeout=10)
    try:
        held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held.recv(65536).startswith(b"HTTP/1.1 200")
        qtbot.waitUntil(lambda: window.timeline.state.open_connections == 1, timeout=10_000)
        conn = next(c.id for c in window.timeline.state.connections.values() if c.open)
        old_fd = window.timeline.state.connections[conn].fd
        assert old_fd in window.timeline.state.interest
        window.mode_box.setCurrentIndex([m for _, m, _ in MODES].index("threaded"))
        window.restart_button.click()
        qtbot.waitUntil(lambda: window.timeline.state.mode.get("mode") == "threaded",
                        timeout=10_000)
        log = window.timeline.log
        restart = [i for i in range(len(log)) if log[i].kind == "mode"][-1]
        closes = [i for i in log.indices(conn=conn, kinds=["close"], src="server")]
        assert closes and closes[0] < restart  # the old engine's close, drained before
        state = window.timeline.state
        assert state.open_connections == 0 and not state.connections[conn].open
        assert state.interest == {} and conn not in state.fds.values()
        old_threads = {log[i].thread for i in range(restart) if log[i].src == "server"}
        assert not old_threads & set(state.threads)
        assert window.status_label.text().count("open connections: 0") == 1
    finally:
        held.close()


def test_opening_a_trace_stops_the_live_server_until_asked_back(qtbot, window: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: responses(window) >= 1, timeout=10_000)
    saved = tmp_path / "saved.jsonl"
    window.save_trace(str(saved))
    assert window.load_trace(str(saved))
    assert window.host is None
    assert not window.engine_bar.isEnabled() and not window.traffic_bar.isEnabled()
    count = len(window.timeline.log)
    qtbot.wait(600)  # nothing live joins the recording
    assert len(window.timeline.log) == count
    assert window.leave_lesson_action.isEnabled()
    window.leave_lesson_action.trigger()
    assert window.host is not None and window.traffic_bar.isEnabled()
    assert window.timeline.live and window.windowTitle() == "SockScope"
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: responses(window) >= 1, timeout=10_000)


def test_event_log_filters_by_kind_source_fd_and_connection(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.count_box.setValue(2)
    window.traffic_buttons["Keep-alive"].click()
    qtbot.waitUntil(lambda: responses(window) >= 10, timeout=10_000)
    log, model = window.timeline.log, window.table_model
    window.kind_filter.setCurrentIndex(window.kind_filter.findData("request"))
    assert len(model.rows) == 10 and all(log[i].kind == "request" for i in model.rows)
    window.source_filter.setCurrentIndex(window.source_filter.findData("client"))
    assert len(model.rows) == 0  # requests are the server's events
    window.source_filter.setCurrentIndex(0)
    conn = log[model.rows[0]].conn
    fd = log[model.rows[0]].fd
    window.select_connection(conn)
    window.conn_filter.setChecked(True)
    assert len(model.rows) == 5 and {log[i].conn for i in model.rows} == {conn}
    window.kind_filter.setCurrentIndex(0)
    window.fd_filter.setValue(fd)
    assert model.rows and all(log[i].fd == fd and log[i].conn == conn for i in model.rows)
    assert any(log[i].kind == "accept" for i in model.rows)
    window.filter_edit.setText("GET")
    assert model.rows and all(log[i].kind == "request" for i in model.rows)
    # New events keep arriving into a filtered table.
    window.conn_filter.setChecked(False)
    window.fd_filter.setValue(-1)
    before = len(model.rows)
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: len(model.rows) > before, timeout=10_000)
    assert model.rowCount() == len(model.rows) == 11


def test_lab_is_a_switch_greyed_with_its_reason(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    from engine.lab import lab_available
    ok, reason = lab_available()
    assert window.lab_box.isEnabled() == ok
    if not ok:
        assert reason in window.lab_box.toolTip()
        return
    window.lab_box.setChecked(True)
    from engine.lab import faults_available
    faults_ok, faults_reason = faults_available()
    if not faults_ok:  # a machine without nftables: the fault box says why, greyed
        assert not window.fault_box.isEnabled() and faults_reason in window.fault_box.toolTip()
        pytest.skip(f"the lab's faults need what this machine lacks: {faults_reason}")
    window.fault_box.setCurrentIndex(window.fault_box.findData("drop-syn"))
    window.restart_button.click()
    assert window.host is not None and window.host.settings.lab
    assert "lab" in window.url_label.text() and not window.browser_button.isEnabled()
    window.traffic_buttons["One request"].click()  # clients run inside the engine's namespace
    qtbot.waitUntil(lambda: responses(window) >= 1, timeout=15_000)

    def captured_syns() -> list:  # type: ignore[type-arg]
        return [e for e in window.timeline.log if e.kind == "packet" and e.data["flags"] == "SYN"]
    # The captured segments come from the kernel side's process: a few tens of ms after
    # the server's own events, each at its own time.
    qtbot.waitUntil(lambda: len(captured_syns()) >= 2, timeout=5_000)
    syns = captured_syns()
    assert len(syns) >= 2 and syns[0].data["tcp_seq"] == syns[1].data["tcp_seq"]  # retransmitted
    assert all(e.data["origin"] == "captured" for e in syns)


def test_engine_crash_is_reported_and_restartable(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: responses(window) >= 1, timeout=10_000)
    recorded = len(window.timeline.log)
    assert window.host is not None and window.host.channel is not None
    os.kill(window.host.channel.proc.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert "The engine stopped" in window.banner.text()
    assert "SIGKILL" in window.banner.text()  # killed: the signal named
    assert "stepping" not in window.banner.text() and "serving" not in window.banner.text()
    assert len(window.timeline.log) >= recorded  # nothing recorded is lost
    window.banner_button.click()
    assert not window.banner.isVisible()
    engine_url(qtbot, window)
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: responses(window) >= 2, timeout=10_000)


def test_step_the_server_from_the_window(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.gate_box.setChecked(True)
    window.traffic_buttons["One request"].click()
    held = lambda: [e for e in window.timeline.log  # noqa: E731
                    if e.kind == "gate" and e.data["state"] == "held"]
    qtbot.waitUntil(lambda: len(held()) >= 1, timeout=10_000)
    for n in range(2, 6):
        window.release_button.click()
        qtbot.waitUntil(lambda: len(held()) >= n, timeout=10_000)
    released = [e for e in window.timeline.log if e.kind == "gate" and e.data["state"] == "released"]
    closes = [e for e in window.timeline.log if e.kind == "close" and e.src == "server"]
    assert len(released) == 4 and not closes  # four steps cannot finish a request
    window.gate_box.setChecked(False)
    qtbot.waitUntil(lambda: responses(window) >= 1, timeout=10_000)


def close_next_message(box_texts: list[str]) -> None:
    def close() -> None:
        widget = QApplication.activeModalWidget()
        if widget is None:
            QTimer.singleShot(50, close)
            return
        box_texts.append(widget.text())  # type: ignore[attr-defined]
        widget.close()
    QTimer.singleShot(50, close)


def test_replay_a_trace_and_refuse_a_corrupt_one(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--states", "off",
                    "--packets", "derived", "--load=--requests 3", "--exit-after-load",
                    "--trace", str(trace)], cwd=ROOT, check=True, capture_output=True, timeout=60)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    assert w.load_trace(str(trace))
    assert not w.timeline.live and w.timeline.cursor == len(w.timeline.log) - 1
    assert sum(c.requests for c in w.timeline.state.connections.values()) == 3
    assert w.table_model.rowCount() == len(w.timeline.log)
    w.filter_edit.setText("packet")
    assert 0 < w.table_model.rowCount() < len(w.timeline.log)
    lines = trace.read_text().splitlines()
    lines[5] = "{broken"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    texts: list[str] = []
    close_next_message(texts)
    assert not w.load_trace(str(bad))
    assert texts and "line 6" in texts[0]
    assert len(w.timeline.log) > 0  # the app stays usable, with what it had
    saved = tmp_path / "saved.jsonl"
    assert w.save_trace(str(saved)) == len(w.timeline.log)
    # A disk that fills up mid-save (a file size limit, as a full disk): an error that
    # says how much is missing, and the partial file still reads, line by line.
    import resource
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (saved.stat().st_size // 2, limit[1]))
    try:
        with pytest.raises(OSError, match="events not saved"):
            w.save_trace(str(tmp_path / "half.jsonl"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    half = read_trace(tmp_path / "half.jsonl")
    assert not half.problems and half.events[-1].kind == "dropped"


def test_replay_command_writes_a_screenshot(tmp_path: Path) -> None:
    trace, png = tmp_path / "t.jsonl", tmp_path / "shot.png"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--states", "off",
                    "--packets", "off", "--load=--requests 2", "--exit-after-load",
                    "--trace", str(trace)], cwd=ROOT, check=True, capture_output=True, timeout=60)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    ok = subprocess.run([sys.executable, "-m", "visualizer.cli", "replay", str(trace), "--seek",
                         "10", "--screenshot", str(png)], cwd=ROOT, capture_output=True, text=True,
                        timeout=60, env=env)
    assert ok.returncode == 0, ok.stderr
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "sockscope-trace", "version": 99}\n')
    refused = subprocess.run([sys.executable, "-m", "visualizer.cli", "replay", str(bad),
                              "--screenshot", str(tmp_path / "x.png")], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 1 and "version 99" in refused.stderr
    nowhere = subprocess.run([sys.executable, "-m", "visualizer.cli", "replay", str(trace),
                              "--screenshot", str(tmp_path / "no" / "such" / "dir.png")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert nowhere.returncode == 1 and "cannot write" in nowhere.stderr, nowhere.stderr


def test_settings_persist(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "settings.ini")
    first = MainWindow(settings=QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(first)
    first.mode_box.setCurrentIndex([label for label, _, _ in MODES].index("selectors"))
    first.restart_button.click()
    first.close()
    second = MainWindow(engine=False, settings=QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second._saved_engine_settings()
    assert second.mode_box.currentText() == "selectors"


def test_the_mode_list_is_the_engine_registry(qtbot, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every mode the engine knows is in the window's list, in the lecture's order, with a
    label lupdate sees; one that cannot run here is greyed out and says why."""
    from engine.modes import REGISTRY, variants
    from visualizer import app
    assert [(m, t) for _, m, t in MODES] == variants()
    assert {label for label, _, _ in MODES} <= set(app.MODE_WORDS)
    spec = REGISTRY["poll"]
    monkeypatch.setitem(REGISTRY, "poll", type(spec)(**{**spec.__dict__,
                        "available": lambda: (False, "this system has no poll(): use selectors")}))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("mode", "poll")  # saved on a machine that had it
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    i = w._mode_index("poll")
    assert not w.mode_box.model().item(i).isEnabled()
    assert w.mode_box.itemData(i, 3) == "this system has no poll(): use selectors"
    assert w._saved_engine_settings().mode == "epoll"  # the default stands in
    assert w.mode_box.model().item(w._mode_index("single")).isEnabled()
    w.close()


def test_the_sweep_pause_is_editable_only_where_a_loop_sweeps(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from visualizer.app import MODES, MainWindow
    window = MainWindow(engine=False, settings=QSettings(str(tmp_path / "s.ini"),
                                                         QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    for i, (_, mode, _) in enumerate(MODES):
        if not window.mode_box.model().item(i).isEnabled():
            continue
        window.mode_box.setCurrentIndex(i)
        box = window.pause_box  # (its own state: a window without an engine greys its bar)
        assert box.isEnabledTo(box.parentWidget()) == (mode == "nonblocking"), mode
        assert ("busy" in window.pause_box.toolTip()) == (mode == "nonblocking")


def test_live_the_event_log_follows_the_newest_rows(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.count_box.setValue(4)
    for _ in range(3):  # far more rows than the log shows at once
        window.traffic_buttons["Keep-alive"].click()
    qtbot.waitUntil(lambda: responses(window) >= 30, timeout=20_000)
    bar = window.table.verticalScrollBar()
    # Live, the pictures are drawn at their pace (a dear drawing waits four times what it
    # took): once drawn after the last batch, the newest row is in sight.
    qtbot.waitUntil(lambda: not window._view_owed and window.waiting == 0 and
                    bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=10_000)
    assert window.timeline.live


def test_replaying_the_toolbar_shows_the_recordings_settings_then_the_live_ones(
        qtbot, window: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A lesson or a trace ran with its own mode, backlog, policy and sweep pause: the
    toolbar shows those while it is open (not the live server's), saves none of them,
    and the live settings come back with the live server."""
    trace = tmp_path / "nonblocking.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode",
                    "nonblocking", "--sweep-pause", "0.003", "--backlog", "7", "--policy",
                    "close", "--no-reuseaddr", "--states", "off", "--packets", "off",
                    "--load=--clients 1 --requests 1", "--exit-after-load", "--trace",
                    str(trace)], cwd=ROOT, check=True, capture_output=True, timeout=60)
    window.mode_box.setCurrentIndex(window._mode_index("threaded"))
    window.backlog_box.setValue(100)
    window.pause_box.setValue(1)
    window.restart_button.click()  # the live server: threaded, backlog 100
    qtbot.waitUntil(lambda: window.host is not None and window.host.settings.mode == "threaded",
                    timeout=10_000)
    saved_mode = window.qsettings.value("mode")
    assert window.load_trace(str(trace))
    assert MODES[window.mode_box.currentIndex()][1] == "nonblocking"
    assert (window.backlog_box.value(), window.pause_box.value(),
            window.policy_box.currentText(), window.reuse_box.isChecked()) == (7, 3, "close",
                                                                               False)
    assert not window.engine_bar.isEnabled()
    window.leave_lesson()  # back to the live server: its own settings, and it runs them
    assert MODES[window.mode_box.currentIndex()][1] == "threaded"
    assert (window.backlog_box.value(), window.pause_box.value(),
            window.policy_box.currentText(), window.reuse_box.isChecked()) == (100, 1,
                                                                               "keep-alive", True)
    assert window.host is not None and window.host.settings.mode == "threaded"
    assert window.host.settings.backlog == 100 and window.engine_bar.isEnabled()
    assert window.qsettings.value("mode") == saved_mode == MODES[window._mode_index(
        "threaded")][0]


def test_settings_shown_from_elsewhere_pick_the_trigger_they_say(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A recording's or an attached engine's epoll settings show their own trigger: edge
    as "epoll (edge)", not the first epoll entry; a mode with one trigger, its entry."""
    from visualizer.app import MODES
    for mode, trigger in (("epoll", "edge"), ("epoll", "level"), ("selectors", "level"),
                          ("threaded", "level")):
        window.show_engine_settings({"mode": mode, "trigger": trigger}, "shown")
        assert MODES[window.mode_box.currentIndex()][1:] == (mode, trigger)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_in_the_middle_of_a_drain_closes_the_window_after_it(  # type: ignore[no-untyped-def]
        qtbot, window: MainWindow, signum: int) -> None:
    """Python runs a signal's handler between any two bytecodes of the window's own code:
    Ctrl+C that lands while the window takes its engine's events must not pull the
    engine from under that code (it once did: "'NoneType' object has no attribute
    'channel'"). The window closes once the drain has returned, engine and all."""
    from PySide6.QtCore import QObject

    from visualizer.qtapp import quit_on_signals

    class Application(QObject):  # what quit_on_signals ends: here, not the test run's own
        quits = 0

        def quit(self) -> None:
            self.quits += 1
    app = Application()
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    host = window.host
    assert host is not None and host.channel is not None
    engine = host.channel.proc
    raised: list[int] = []
    take = window.add_events

    def add_events(batch, *pace):  # type: ignore[no-untyped-def]
        if not raised:  # the signal lands here, in the middle of _drain
            raised.append(len(batch))
            signal.raise_signal(signum)
        take(batch, *pace)
    try:
        quit_on_signals(app, window)
        window.drain_timer.stop()  # this test drains by hand
        window.add_events = add_events  # type: ignore[method-assign]
        window.count_box.setValue(1)
        window.traffic_buttons["Short"].click()
        deadline = time.monotonic() + 10
        while not raised and time.monotonic() < deadline:
            qtbot.wait(20)
            window._drain()
        assert raised, "the engine sent nothing to drain"
        assert window.host is host  # the drain ran to its end with its engine
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
        assert window.host is None and engine.poll() is not None  # the engine ended too
        assert app.quits == 1  # and the loop was asked to end
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_an_engine_slow_to_say_where_it_serves_is_shown_when_it_does(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """The window waits 10 s for its engine's address as it starts; on a loaded machine
    the engine may say it later. Then the address is shown as soon as it comes, not
    "(not started)" until the language changes."""
    url = engine_url(qtbot, window)
    host = window.host
    assert host is not None
    host.url = None  # as if start_engine had given up waiting: the line comes afterwards
    window._show_url()
    assert url not in window.url_label.text()
    qtbot.waitUntil(lambda: url in window.url_label.text(), timeout=5_000)
    assert host.url == url
