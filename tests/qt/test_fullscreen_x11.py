"""Presentation mode on a real X server (Xvfb), where "full screen" is a request to a
window manager that may not be there: the window must still cover the screen, and
leaving must give the window back as it was. Offscreen, full screen is only a flag."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from visualizer.app import MainWindow, dispose
from visualizer.views import style
w = MainWindow(engine=False, settings=QSettings(sys.argv[1], QSettings.Format.IniFormat))
w.resize(800, 600)  # smaller than the screen: no window manager will grow it
w.show()
out = {"platform": app.platformName()}

def settle(ms):  # (not app.exec/quit: quitting closes the windows)
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()

settle(500)
out["before"] = w.geometry().getRect()
w.presentation.enter()
settle(1000)
screen = w.screen().geometry()
out["screen"] = screen.getRect()
out["full"] = w.isFullScreen()
out["during"] = w.geometry().getRect()
picture = w.screen().grabWindow(0).toImage()
corner = picture.pixelColor(picture.width() - 3, picture.height() - 3)
out["corner"] = corner.name()
out["background"] = style.BACKGROUND.lower()
w.presentation.leave()
settle(1000)
out["after_full"] = w.isFullScreen()
out["after"] = w.geometry().getRect()
print(json.dumps(out))
dispose(w)
"""


def _x11_ready() -> str | None:
    """Why this test cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "X11 full screen is a Linux matter"
    if shutil.which("xvfb-run") is None:
        return "xvfb-run is not installed (Debian: apt-get install xvfb)"
    probe = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-c",
         "from PySide6.QtWidgets import QApplication; QApplication([])"],
        env={**os.environ, "QT_QPA_PLATFORM": "xcb"}, capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        tail = (probe.stderr.strip().splitlines() or ["?"])[0]
        return f"Qt's xcb platform does not start under Xvfb here: {tail}"
    return None


def test_presentation_covers_a_bare_x_screen_and_gives_the_window_back(tmp_path: Path) -> None:
    reason = _x11_ready()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-c", SCRIPT,
         str(tmp_path / "settings.ini")],
        env={**os.environ, "QT_QPA_PLATFORM": "xcb"}, cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["platform"] == "xcb"
    assert out["screen"] == [0, 0, 1024, 768]
    assert out["before"][2] < 1024 and out["before"][3] < 768  # smaller than the screen
    assert out["full"] is True
    assert out["during"] == out["screen"]  # the window covers the screen, no more
    assert out["corner"] == out["background"]  # the page painted to the screen's corner
    assert out["after_full"] is False
    assert out["after"][2:] == out["before"][2:]  # the window as it was
