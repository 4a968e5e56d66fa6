"""Presentation mode's laser pointer (L) and pen (D, C clears), on the first lesson recorded
for real: what a lecturer draws is on the picture, goes with the step, keeps clicks from
the views while the pen is on, and is gone when presenting ends.

The mouse goes through the window's QWindow (QTest on a QWindow), as the platform's
events do: Qt finds the widget under it, so a click the overlay lets through lands on
the view below it as a real one would."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from visualizer import pointer, presentation
from visualizer.app import MainWindow
from visualizer.lessons import all_lessons, prepare
from visualizer.views import style

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def first(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["first-request"], tmp_path_factory.mktemp("lesson"))


@pytest.fixture
def window(qtbot, tmp_path: Path, first):  # type: ignore[no-untyped-def]
    """The window presenting the lesson (F5), at its first step."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()  # the window's shortcuts (F5) work in the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    w.open_lesson(first)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    assert w.presentation.active
    yield w
    w.presentation.leave()
    w.close()


@pytest.fixture(autouse=True)
def default_style():  # type: ignore[no-untyped-def]
    yield
    style.set_theme("light")
    style.set_zoom(1.0)
    presentation.apply_palette()
    while QApplication.overrideCursor() is not None:  # a failed test left it hidden
        QApplication.restoreOverrideCursor()


# ---------------------------------------------------------------- helpers
def at(w: MainWindow, x: float, y: float) -> QPoint:
    """A point of the window at fractions (x, y) of its presentation page."""
    page = w.presentation._page
    return page.mapTo(w, QPoint(round(page.width() * x), round(page.height() * y)))


def press(qtbot, w: MainWindow, pos: QPoint) -> None:  # type: ignore[no-untyped-def]
    qtbot.mousePress(w.windowHandle(), LEFT, pos=pos)


def drag(qtbot, w: MainWindow, points: list[QPoint]) -> None:  # type: ignore[no-untyped-def]
    """Press at the first point, move through the others, let go at the last."""
    handle = w.windowHandle()
    qtbot.mouseMove(handle, points[0])
    qtbot.mousePress(handle, LEFT, pos=points[0])
    for p in points[1:]:
        qtbot.mouseMove(handle, p)
    qtbot.mouseRelease(handle, LEFT, pos=points[-1])


def along(points: list[QPoint], per_segment: int = 6) -> list[QPoint]:
    """Points on the polyline through ``points`` (its corners and between them)."""
    out = []
    for a, b in zip(points, points[1:]):
        for i in range(per_segment):
            t = i / per_segment
            out.append(QPoint(round(a.x() + (b.x() - a.x()) * t),
                              round(a.y() + (b.y() - a.y()) * t)))
    return out + [points[-1]]


def grab(w: MainWindow) -> QImage:
    presentation._settle(w)
    return w.grab().toImage()


def ink(c: QColor) -> bool:
    """The pen's magenta, drawn at 80 % over anything the views draw (white, near-black,
    the highlight, the Okabe–Ito colours): red strong, green far below it, some blue."""
    return c.red() > 150 and c.red() - c.green() > 120 and 60 <= c.blue() <= 210


def laser_red(c: QColor) -> bool:
    return c.red() > 220 and c.green() < 80 and c.blue() < 80


def inked(image: QImage, points: list[QPoint]) -> list[bool]:
    return [ink(image.pixelColor(p)) for p in points]


STROKE = [(0.30, 0.55), (0.42, 0.48), (0.55, 0.52), (0.62, 0.65), (0.50, 0.75), (0.36, 0.70)]


# ---------------------------------------------------------------- the pen
def test_the_pen_draws_and_the_next_step_clears_it(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    w = window
    p = w.presentation
    overlay = p.pointer.overlay
    assert overlay is not None and overlay.parentWidget() is p._page
    assert overlay.isHidden()  # nothing on, nothing drawn: not even there
    points = [at(w, x, y) for x, y in STROKE]
    path = along(points)
    before = grab(w)
    assert not any(inked(before, path))  # the picture itself has no pen colour there
    qtbot.keyClick(w, Qt.Key.Key_D)
    assert p.pointer.pen and p.pointer.pen_action.isChecked() and overlay.isVisible()
    assert overlay.geometry() == p._page.rect()
    drag(qtbot, w, points)
    assert len(overlay.strokes) == 1
    drawn = grab(w)
    assert all(inked(drawn, path)), [drawn.pixelColor(q).name() for q in path]
    # Only along the stroke: a point well off it is as it was.
    off = at(w, 0.9, 0.3)
    assert drawn.pixelColor(off) == before.pixelColor(off)
    for theme in ("dark", "projector"):  # the pen reads in every theme
        p.set_theme(theme, persist=False)
        assert all(inked(grab(w), path)), theme
    p.set_theme("light", persist=False)
    # The next step (PageDown) clears it.
    step = w.lesson_step
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.lesson_step == step + 1
    assert overlay.strokes == []
    assert not any(inked(grab(w), path))
    # The pen is still on: draw again; C clears; PageUp (back a step) clears too.
    drag(qtbot, w, points)
    assert all(inked(grab(w), path))
    qtbot.keyClick(w, Qt.Key.Key_C)
    assert overlay.strokes == [] and not any(inked(grab(w), path))
    drag(qtbot, w, points)
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.lesson_step == step and not any(inked(grab(w), path))
    # The pen off keeps what was drawn (over the same step), transparent to the mouse.
    drag(qtbot, w, points)
    qtbot.keyClick(w, Qt.Key.Key_D)
    assert not p.pointer.pen and all(inked(grab(w), path))
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    qtbot.keyClick(w, Qt.Key.Key_C)
    assert overlay.isHidden()


def _lifecycle_row(w: MainWindow) -> tuple[QPoint, str]:
    """A point of the window over a connection's row of the lifecycle view, and its id."""
    view = w.views["lifecycle"]
    assert w.view_tabs.currentWidget() is view
    presentation._settle(w)
    view._layout()
    k = view.canvas_scale
    for bar in view.bars:
        if bar.h <= 0:
            continue
        y = (bar.y + bar.h / 2) * k
        for fx in (0.2, 0.3, 0.4, 0.5):
            x = view.width() * fx
            conn = view.conn_at(x / k, y / k)
            if conn is not None:
                return view.mapTo(w, QPoint(round(x), round(y))), conn
    raise AssertionError("the lifecycle view shows no connection's row")


def test_the_pen_keeps_clicks_from_the_view_and_off_lets_them_through(qtbot, window, first) -> None:  # type: ignore[no-untyped-def]
    w = window
    last = next(k for k in range(len(first.steps) - 1, -1, -1)
                if first.steps[k].view == "lifecycle")  # selects a connection with a click
    w.go_to_step(last)
    spot, conn = _lifecycle_row(w)
    w.select_connection(None)
    qtbot.keyClick(w, Qt.Key.Key_D)
    overlay = w.presentation.pointer.overlay
    assert not overlay.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    press(qtbot, w, spot)  # circling the row: the pen's, not a selection
    qtbot.mouseRelease(w.windowHandle(), LEFT, pos=spot)
    assert w.selected is None
    assert len(overlay.strokes) == 1  # (a click leaves a dot)
    qtbot.keyClick(w, Qt.Key.Key_D)  # the pen off: the click reaches the view
    press(qtbot, w, spot)
    qtbot.mouseRelease(w.windowHandle(), LEFT, pos=spot)
    assert w.selected == conn


# ---------------------------------------------------------------- the laser
def test_the_laser_dot_follows_the_mouse_and_hides_the_cursor(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    w = window
    p = w.presentation
    overlay = p.pointer.overlay
    here, there = at(w, 0.5, 0.6), at(w, 0.3, 0.8)
    handle = w.windowHandle()
    qtbot.mouseMove(handle, here)
    before = grab(w)
    assert not laser_red(before.pixelColor(here)) and not laser_red(before.pixelColor(there))
    assert overlay.dot is None and QApplication.overrideCursor() is None  # off: nothing
    qtbot.keyClick(w, Qt.Key.Key_L)
    assert p.pointer.laser and p.pointer.laser_action.isChecked()
    qtbot.mouseMove(handle, there)
    assert overlay.dot == QPointF(overlay.mapFrom(w, there))
    image = grab(w)
    assert laser_red(image.pixelColor(there)) and not laser_red(image.pixelColor(here))
    cursor = QApplication.overrideCursor()
    assert cursor is not None and cursor.shape() == Qt.CursorShape.BlankCursor
    # The laser leaves clicks alone: the overlay is transparent to the mouse.
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    # Sized with the zoom: 10 px from the centre is the halo at 100 %, the core at 200 %.
    aside = there + QPoint(10, 0)
    assert not laser_red(image.pixelColor(aside))
    p.set_zoom(2.0, persist=False)
    qtbot.mouseMove(handle, there + QPoint(1, 0))
    qtbot.mouseMove(handle, there)
    assert laser_red(grab(w).pixelColor(aside))
    # Red in the dark theme too (and the projector's).
    for theme in ("dark", "projector"):
        p.set_theme(theme, persist=False)
        assert laser_red(grab(w).pixelColor(there)), theme
    # Off: the dot goes, the cursor comes back, and the page is as it was.
    p.set_theme("light", persist=False)
    p.set_zoom(1.0, persist=False)
    qtbot.keyClick(w, Qt.Key.Key_L)
    assert not p.pointer.laser and overlay.dot is None and overlay.isHidden()
    assert QApplication.overrideCursor() is None
    qtbot.mouseMove(handle, here)
    after = grab(w)
    assert not laser_red(after.pixelColor(there))
    assert after.pixelColor(there) == before.pixelColor(there)
    # The menu's action does what L does.
    p.pointer.laser_action.trigger()
    qtbot.mouseMove(handle, there)
    assert p.pointer.laser and laser_red(grab(w).pixelColor(there))


# ---------------------------------------------------------------- leaving, exports
def test_leaving_turns_both_off_and_takes_the_drawing(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    w = window
    p = w.presentation
    overlay = p.pointer.overlay
    points = [at(w, x, y) for x, y in STROKE]
    qtbot.keyClick(w, Qt.Key.Key_D)
    drag(qtbot, w, points)
    qtbot.keyClick(w, Qt.Key.Key_L)
    qtbot.mouseMove(w.windowHandle(), points[0])
    assert overlay.strokes and overlay.dot is not None
    assert QApplication.overrideCursor() is not None
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert not p.active and p.pointer.overlay is None
    assert not p.pointer.laser_action.isChecked() and not p.pointer.pen_action.isChecked()
    assert not any(a.isEnabled() for a in p.pointer.actions)  # presenting only
    assert QApplication.overrideCursor() is None
    assert overlay.strokes == [] and overlay.dot is None
    # L and D mean nothing in the window; presenting again starts clean.
    qtbot.keyClick(w, Qt.Key.Key_L)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    again = p.pointer.overlay
    assert p.active and again is not None and again is not overlay
    assert not p.pointer.laser and not p.pointer.pen and again.strokes == [] and again.isHidden()
    assert not any(inked(grab(w), along(points)))


def test_a_saved_slide_keeps_the_drawing(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = window
    page = presentation.slide_layout(w)  # 1280 x 720, as exports draw
    qtbot.keyClick(w, Qt.Key.Key_D)
    points = [at(w, x, y) for x, y in STROKE]
    drag(qtbot, w, points)
    png = tmp_path / "annotated.png"
    presentation.export_page(w, png)
    with Image.open(png) as picture:
        assert picture.size == (1280, 720)
        rgb = picture.convert("RGB")
        on_page = [page.mapFrom(w, q) for q in along(points)]
        assert all(ink(QColor(*rgb.getpixel((q.x(), q.y())))) for q in on_page)
    # A page drawn larger scales the drawing with it.
    overlay = w.presentation.pointer.overlay
    start = overlay.strokes[0].elementAt(0)
    image = presentation.render_page(w, presentation.SLIDE * 1.5)
    moved = overlay.strokes[0].elementAt(0)
    assert (moved.x, moved.y) == pytest.approx((start.x * 1.5, start.y * 1.5), abs=1.0)
    assert ink(image.pixelColor(round(moved.x), round(moved.y)))


def test_the_keys_are_listed(window) -> None:  # type: ignore[no-untyped-def]
    p = window.presentation
    tip = p.present_action.toolTip()
    assert "L the laser pointer" in tip and "D draws (C clears)" in tip
    texts = [a.text() for a in p.pointer.actions]
    assert [t.split("\t")[1] for t in texts] == ["L", "D", "C"]
    assert all(a in p.menu.actions() for a in p.pointer.actions)
    assert set(p.pointer.actions) <= set(p._page.actions())  # the page's right-click menu
    assert pointer.pen_width() == pointer.PEN_WIDTH  # light theme, 100 %
