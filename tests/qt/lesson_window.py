"""A window showing a recorded lesson, for the lesson tests (tests/qt/)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from visualizer.app import MainWindow


def lesson_window(qtbot, prepared, lang: str, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    """A window (no engine, settings of its own, in ``lang``) open at the lesson's step 1."""
    settings = QSettings(str(tmp_path / f"{lang}.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", lang)
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    window.resize(1600, 1000)
    window.show()
    window.open_lesson(prepared)
    return window
