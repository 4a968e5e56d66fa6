"""The window's keys on a recorded trace, pressed as a user presses them (real key
events sent to the window): Space plays and pauses, End goes to the last event,
Home to the first, Right and Left one event on and back."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from engine.trace import read_trace
from visualizer.app import SPEEDS, MainWindow

ROOT = Path(__file__).resolve().parents[2]


def record(path: Path) -> Path:
    """A small real recording: one client, three requests on one connection."""
    proc = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0",
                           "--load=--clients 1 --requests 3", "--exit-after-load",
                           "--trace", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("keys") / "run.jsonl")


@pytest.fixture
def window(qtbot, trace: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    w.show()
    assert w.load_trace(str(trace))
    yield w
    w.close()


def events(trace: Path) -> int:
    """The number of events in the recording, read from the file itself."""
    return len(read_trace(str(trace)).events)


def test_space_plays_and_pauses(qtbot, window: MainWindow, trace: Path) -> None:  # type: ignore[no-untyped-def]
    n = events(trace)
    assert n > 40  # three requests, their packets and kernel states
    # Event-paced, 20 events a second: the whole recording takes seconds to play.
    window.speed_box.setCurrentIndex(next(i for i, (label, _) in enumerate(SPEEDS)
                                          if label == "20 events/s"))
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.timeline.cursor == 0 and not window.play_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.play_button.isChecked() and window.play_timer.isActive()
    qtbot.waitUntil(lambda: window.timeline.cursor >= 3, timeout=10_000)  # it moves on its own
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.play_button.isChecked() and not window.play_timer.isActive()
    stopped = window.timeline.cursor
    assert 3 <= stopped < n - 1
    qtbot.wait(300)  # six events' worth at that speed, had it kept playing
    assert window.timeline.cursor == stopped
    assert window.slider.value() == stopped
    assert window.position_label.text() == f"{stopped + 1} / {n}"
    # Space again plays on from where it stopped.
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.play_button.isChecked()
    qtbot.waitUntil(lambda: window.timeline.cursor > stopped, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.play_button.isChecked()


def test_end_home_right_left(qtbot, window: MainWindow, trace: Path) -> None:  # type: ignore[no-untyped-def]
    n = events(trace)
    assert len(window.timeline.log) == n
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.timeline.cursor == 0
    assert window.position_label.text() == f"1 / {n}"
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.timeline.cursor == 1
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.timeline.cursor == 0
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.timeline.cursor == n - 1
    assert window.slider.value() == n - 1
    assert window.position_label.text() == f"{n} / {n}"
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.timeline.cursor == n - 2
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.timeline.cursor == n - 1
    # End pauses a playing window (any navigation does) and stays at the end.
    window.play_button.setChecked(False)
    qtbot.keyClick(window, Qt.Key.Key_Home)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.play_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert not window.play_button.isChecked()
    assert window.timeline.cursor == n - 1
