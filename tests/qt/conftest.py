"""Qt tests: every widget a test made is gone before the next test starts.

A widget kept alive by a reference cycle (a lambda connected to its own
signal) would otherwise be destroyed at interpreter exit, after Qt has torn
down what it needs: pyqtgraph's scenes then crash the process, after every
test has passed."""
from __future__ import annotations

import gc
from pathlib import Path
from typing import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings
from PySide6.QtWidgets import QApplication


@pytest.fixture(autouse=True)
def _widgets_die_with_their_test(qapp: QApplication) -> Iterator[None]:
    yield
    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The window with its own engine, as a user starts it, in English (the assertions
    read English labels, whatever the locale); its settings in the test's folder."""
    from visualizer.app import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def engine_url(qtbot, window, timeout_ms: int = 30_000) -> str:  # type: ignore[no-untyped-def]
    """The window's own engine's address, once it has said it: the window waits 10 s for
    it as it starts, and shows it when it comes later (a loaded machine)."""
    qtbot.waitUntil(lambda: window.host is not None and window.host.url is not None,
                    timeout=timeout_ms)
    return str(window.host.url)


def replay_window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The window without an engine (a trace's replay), in English, its settings in the
    test's folder; what its message boxes would say goes to ``warnings`` instead."""
    from PySide6.QtWidgets import QMessageBox

    from visualizer.app import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.warnings = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda parent, title, text, *a: w.warnings.append((title, text)))
    return w
