"""A window showing a recorded lesson, for the lesson tests (tests/qt/)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from visualizer.app import MainWindow


def runs(log) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    """mode -> (first, last) index of each engine's run in a recording of several, from
    the server's mode events (a lesson's [[runs]], one after the other)."""
    starts = [(i, log[i].data["mode"]) for i in range(len(log))
              if log[i].kind == "mode" and log[i].src == "server"]
    return {mode: (i, starts[k + 1][0] - 1 if k + 1 < len(starts) else len(log) - 1)
            for k, (i, mode) in enumerate(starts)}


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


def walk(qtbot, prepared, tmp_path: Path, check=None) -> None:  # type: ignore[no-untyped-def]
    """Walk the lesson with PageDown in every language: each step in its view, the cursor
    on its event, its view drawn; ``check(k, lang, view)`` looks at each step's view."""
    from PySide6.QtCore import Qt

    from visualizer.lessons import LANGS
    for lang in LANGS:
        window = lesson_window(qtbot, prepared, lang, tmp_path)
        for k, step in enumerate(prepared.steps):
            view = window.view_tabs.currentWidget()
            assert view.name == step.view and window.timeline.cursor == prepared.at[k]
            view.show_state(window.timeline)
            view.grab()
            if check is not None:
                check(k, lang, view)
            qtbot.keyClick(window, Qt.Key.Key_PageDown)
        window.close()


def unfit(qtbot, prepared, tmp_path: Path, *, langs=("en", "zh_CN"), zooms=(2.0,),  # type: ignore[no-untyped-def]
          sizes=((1280, 720), (1920, 1080)), steps=None) -> list[str]:
    """Every step of the lesson in presentation layout, in each language, zoom and size,
    with every text measured against its box (visualizer.textaudit): what is cut, what
    crosses its view's edge, what lies on another text; one line per finding."""
    from PySide6.QtCore import QSize

    from visualizer import presentation
    from visualizer.textaudit import TextAudit, widget_findings
    found: list[str] = []
    if len(prepared.steps) != prepared.lesson.count():  # what sockscope lessons said
        found.append(f"{prepared.lesson.name}: {len(prepared.steps)} steps recorded, "
                     f"{prepared.lesson.count()} listed")
    for lang in langs:
        window = lesson_window(qtbot, prepared, lang, tmp_path)
        for zoom in zooms:
            window.presentation.set_zoom(zoom, persist=False)
            for w, h in sizes:
                for k in (range(len(prepared.steps)) if steps is None else steps):
                    window.go_to_step(k)
                    page = presentation.slide_layout(window, QSize(w, h))
                    with TextAudit() as audit:
                        page.grab()
                    found += [f"{prepared.lesson.name} step {k + 1} {lang} {zoom:.0%} {w}x{h}: "
                              f"{f}" for f in audit.findings() + widget_findings(page)]
        window.presentation.leave()
        window.close()
    return found
