"""File → Attach to an engine…: the window drives and watches an engine that is not its
child (``sockscope serve --control HOST:PORT``). Real engines, real sockets on
127.0.0.1, a real window; every wait bounded, every engine killed at the end."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel

from tests.engine import test_control
from tests.engine.test_control import QUIET, ROOT, Engine
from visualizer.app import MODES, MainWindow
from visualizer.attach import AttachDialog
from visualizer import host as host_module
from visualizer.channel import ProcessChannel
from tests.qt.conftest import engine_url

TOKEN = "attach-test-token-0123456789"  # 28 characters
engines = test_control.engines  # a fixture: every engine started is killed at the end


@pytest.fixture
def engine(engines: list[Engine]):  # type: ignore[no-untyped-def]
    """An engine with a control port and a known token; killed at the end (``engines``)."""
    def make(*args: str) -> Engine:
        engines.append(Engine("--control", "127.0.0.1:0", "--token", TOKEN, *QUIET, *args))
        return engines[-1]
    return make


def status(w: MainWindow) -> str:
    """Every word the status bar shows."""
    return " | ".join(label.text() for label in w.statusBar().findChildren(QLabel)
                      if label.isVisible())


def count(w: MainWindow, kind: str, src: str = "server") -> int:
    return sum(1 for e in w.timeline.log if e.kind == kind and e.src == src)


def close_next_modal(seen: list[str], tries: int = 400) -> None:
    """Close the next modal box (a QMessageBox) from a timer, recording its text."""
    def close(left: int = tries) -> None:
        box = QApplication.activeModalWidget()
        if box is None:
            if left:
                QTimer.singleShot(50, lambda: close(left - 1))
            return
        seen.append(box.text())  # type: ignore[attr-defined]
        box.close()
    QTimer.singleShot(50, close)


def test_attached_the_window_shows_the_remote_engines_events_and_settings(
        qtbot, window: MainWindow, engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    e = engine("--mode", "threaded", "--backlog", "77", "--policy", "close")
    local = window.host
    assert local is not None and isinstance(local.channel, ProcessChannel)
    local_proc = local.channel.proc
    local_mode = window.mode_box.currentIndex()
    # By another name than the one the engine gives itself (a tunnel's, a VM's address).
    control = f"localhost:{e.port}"
    assert window.attach_engine("localhost", e.port, e.token)
    assert window.host is not None and window.host.remote == control
    assert local_proc.poll() is not None  # the local engine stopped
    assert f"attached to {control}" in status(window)
    assert window.windowTitle().endswith(control)
    # The toolbar: the attached engine's settings, to change there; its lab is its own.
    assert MODES[window.mode_box.currentIndex()][1] == "threaded"
    assert window.backlog_box.value() == 77 and window.policy_box.currentText() == "close"
    assert window.engine_bar.isEnabled() and not window.lab_box.isEnabled()
    assert "attached engine" in window.engine_bar.toolTip()
    # Traffic from outside the window: exactly its requests reach the timeline.
    web_port = e.url.rsplit(":", 1)[1].strip("/")
    assert window.host.remote_url == e.url  # the engine's own words
    assert window.host.url == f"http://localhost:{web_port}/"  # from here: the name used
    assert window.host.url in window.statusBar().currentMessage()  # where its page is, said
    subprocess.run([sys.executable, "-m", "engine", "load", e.url, "--requests", "5"],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    qtbot.waitUntil(lambda: count(window, "response") >= 5, timeout=15_000)
    qtbot.wait(500)  # nothing more comes
    assert count(window, "request") == 5 and count(window, "response") == 5
    assert count(window, "mode") == 1 and count(window, "listen") == 1  # the remote's only
    # The window's own traffic button: its clients run inside the attached engine.
    children: list[list[str]] = []

    def child(args: list[str], name: str) -> ProcessChannel:
        children.append(args)
        return ProcessChannel(args, name)
    monkeypatch.setattr(host_module, "ProcessChannel", child)
    window.count_box.setValue(1)
    window.traffic_buttons["Keep-alive"].click()
    qtbot.waitUntil(lambda: count(window, "response") >= 10, timeout=15_000)
    qtbot.wait(500)
    assert count(window, "request") == 10 and count(window, "response") == 10
    # its one client's five connections (the engine closes after each answer), traced there
    assert count(window, "connect", "client") == 5
    assert children == []  # no client process here: inside the engine there
    monkeypatch.undo()
    assert e.proc.poll() is None
    # Apply with another mode: the engine there serves its port again (no local engine
    # starts), the timeline goes on, and the toolbar shows what the engine says it runs.
    epoll_edge = next(i for i, (_, m, t) in enumerate(MODES) if m == "epoll" and t == "edge")
    window.mode_box.setCurrentIndex(epoll_edge)
    window.backlog_box.setValue(33)
    window.restart_button.click()
    qtbot.waitUntil(lambda: count(window, "mode") == 2 and count(window, "listen") == 2,
                    timeout=15_000)
    log = window.timeline.log
    mode = next(e.data for e in reversed(list(log)) if e.kind == "mode")
    listen = next(e.data for e in reversed(list(log)) if e.kind == "listen")
    assert (mode["mode"], mode["trigger"], mode["policy"]) == ("epoll", "edge", "close")
    assert listen["backlog"] == 33 and listen["port"] == int(web_port)
    assert window.host.remote == control and window.host.settings.mode == "epoll"
    assert count(window, "response") == 10  # everything before is kept
    qtbot.waitUntil(lambda: MODES[window.mode_box.currentIndex()][1:] == ("epoll", "edge"),
                    timeout=5_000)
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: count(window, "response") >= 11, timeout=15_000)
    # Changed there by someone else (another window, a terminal): the toolbar follows.
    with socket.create_connection((e.host, e.port), timeout=10) as other:
        other.sendall(f"SOCKSCOPE 1 {TOKEN}\n".encode())
        assert other.recv(3) == b"OK\n"
        other.sendall(b"restart --mode selectors --backlog 9 --policy keep-alive\n")
        qtbot.waitUntil(lambda: count(window, "listen") == 3, timeout=15_000)
    qtbot.waitUntil(lambda: MODES[window.mode_box.currentIndex()][1] == "selectors"
                    and window.backlog_box.value() == 9, timeout=5_000)
    assert window.policy_box.currentText() == "keep-alive"
    # The engine ends: the status bar says so.
    e.proc.kill()
    qtbot.waitUntil(lambda: f"the attached engine at {control} ended" in status(window),
                    timeout=15_000)
    assert f"attached to {control}" not in status(window)
    qtbot.waitUntil(lambda: "attached engine" in window.banner.text(), timeout=5_000)
    # Detach: a local engine again, with the window's own settings.
    assert window.detach_action.isEnabled()
    window.detach_action.trigger()
    assert window.host is not None and window.host.remote is None
    assert isinstance(window.host.channel, ProcessChannel) and engine_url(qtbot, window)
    assert window.engine_bar.isEnabled() and window.mode_box.currentIndex() == local_mode
    assert not window.detach_action.isEnabled()
    assert "attached" not in status(window)
    window.traffic_buttons["One request"].click()
    qtbot.waitUntil(lambda: count(window, "response") >= 1, timeout=15_000)


def test_attach_through_the_dialog_and_step_the_remote_engine(
        qtbot, window: MainWindow, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = engine("--step")
    typed: list[str] = []

    def fill(left: int = 400) -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, AttachDialog):
            if left:
                QTimer.singleShot(50, lambda: fill(left - 1))
            return
        assert dialog.token_edit.echoMode() == dialog.token_edit.EchoMode.Password
        dialog.host_edit.selectAll()
        qtbot.keyClicks(dialog.host_edit, e.host)
        dialog.port_box.lineEdit().selectAll()
        qtbot.keyClicks(dialog.port_box, str(e.port))
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        qtbot.keyClicks(dialog.token_edit, e.token[:10])
        typed.append(f"short token, OK enabled: {ok.isEnabled()}")
        qtbot.keyClicks(dialog.token_edit, e.token[10:])
        qtbot.keyClick(dialog.show_box, Qt.Key.Key_Space)  # the show toggle
        typed.append(dialog.token_edit.echoMode().name)
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)

    QTimer.singleShot(50, fill)
    window.attach_action.trigger()  # the dialog, then the attaching
    assert typed == ["short token, OK enabled: False", "Normal"]
    assert window.host is not None and window.host.remote == e.control
    assert f"attached to {e.control}" in status(window)
    saved = (tmp_path / "settings.ini")
    window.qsettings.sync()
    text = saved.read_text()
    assert e.host in text and str(e.port) in text and e.token not in text  # never the token
    # The remote engine steps (--step): the window's controls say so and drive it.
    assert window.gate_box.isChecked() and window.release_button.isEnabled()
    released = lambda: sum(1 for ev in window.timeline.log  # noqa: E731
                           if ev.kind == "gate" and ev.data["state"] == "released")
    held = lambda: count(window, "gate") - released()  # noqa: E731
    window.traffic_buttons["One request"].click()
    # The engine held its first action (before its first epoll_wait) before the window
    # attached: the client connects, the server does nothing.
    qtbot.waitUntil(lambda: count(window, "connect", "client") >= 1, timeout=15_000)
    qtbot.wait(300)
    assert released() == 0 and count(window, "accept") == 0 and count(window, "response") == 0
    window.release_button.click()  # one action, over the socket
    qtbot.waitUntil(lambda: released() >= 1 and held() >= 1, timeout=15_000)
    qtbot.wait(500)
    assert released() == 1 and held() == 1  # exactly one, and the next one held
    assert count(window, "response") == 0
    window.gate_box.setChecked(False)  # runs freely ("c")
    qtbot.waitUntil(lambda: count(window, "response") >= 1, timeout=15_000)
    assert e.proc.poll() is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_wrong_token_or_nothing_listening_is_said_and_the_local_engine_runs_on(
        qtbot, window: MainWindow, engine) -> None:  # type: ignore[no-untyped-def]
    e = engine()
    local = window.host
    assert local is not None and local.url
    seen: list[str] = []
    close_next_modal(seen)
    start = time.monotonic()
    assert not window.attach_engine(e.host, e.port, "wrong-token-" + "z" * 12)
    assert time.monotonic() - start < 20
    assert len(seen) == 1 and f"The engine at {e.control} refused the token" in seen[0]
    assert window.host is local and local.remote is None
    assert local.channel is not None and local.channel.exit_code is None  # kept, running
    assert "attached" not in status(window) and not window.detach_action.isEnabled()
    assert window.engine_bar.isEnabled()
    nowhere = _free_port()
    close_next_modal(seen)
    assert not window.attach_engine("127.0.0.1", nowhere, TOKEN)
    assert len(seen) == 2 and f"Nothing answers at 127.0.0.1:{nowhere}" in seen[1]
    assert window.host is local and local.channel.exit_code is None
    window.traffic_buttons["One request"].click()  # the local engine serves on
    qtbot.waitUntil(lambda: count(window, "response") >= 1, timeout=15_000)
    assert e.proc.poll() is None  # (a refusal never stops the engine there)


def test_attaching_far_behind_the_local_engine_parses_nothing_it_drops(
        qtbot, window: MainWindow, engine) -> None:  # type: ignore[no-untyped-def]
    """The timeline starts afresh when the window attaches (another machine's clock): what
    the local engine sent and the window had not taken is dropped unread. It used to be
    parsed whole first, only to be thrown away (a window behind a load test froze)."""
    from tests.qt.test_live_pace import far_behind
    e = engine("--mode", "epoll")
    assert window.host is not None and window.host.channel is not None
    parsed = far_behind(qtbot, window)
    assert window.attach_engine("127.0.0.1", e.port, e.token)
    assert window.host is not None and window.host.remote is not None
    assert sum(parsed) <= 10 * 4, parsed  # a tick or so, never what waited
    qtbot.waitUntil(lambda: count(window, "listen") == 1, timeout=10_000)  # the remote's
