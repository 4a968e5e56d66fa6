"""Presentation mode, themes, zoom and slide exports, on the first lesson recorded for real."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QTextBrowser

from visualizer import presentation
from visualizer.app import MainWindow
from visualizer.lessons import all_lessons, prepare
from visualizer.views import style

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def first(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["first-request"], tmp_path_factory.mktemp("lesson"))


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s.setValue("language", "en")
    return s


def make_window(qtbot, settings: QSettings) -> MainWindow:  # type: ignore[no-untyped-def]
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    return w


@pytest.fixture
def window(qtbot, settings: QSettings):  # type: ignore[no-untyped-def]
    w = make_window(qtbot, settings)
    yield w
    w.presentation.leave()
    w.close()


@pytest.fixture(autouse=True)
def default_style():  # type: ignore[no-untyped-def]
    """Themes and zoom are the style module's state: every test starts and ends at 100 %."""
    yield
    style.set_theme("light")
    style.set_zoom(1.0)
    presentation.apply_palette()


def pixel(widget, x: int | None = None, y: int | None = None):  # type: ignore[no-untyped-def]
    image = widget.grab().toImage()
    return image.pixelColor(image.width() - 4 if x is None else x,
                            image.height() - 4 if y is None else y)


def test_enter_hides_everything_but_the_picture_and_esc_restores(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    w = window
    tabs_before = [w.view_tabs.tabText(i) for i in range(w.view_tabs.count())]
    geometry = w.geometry()
    assert w.engine_bar.isVisible() and w.table.isVisible() and w.connections.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_F5)
    p = w.presentation
    assert p.active and w.isFullScreen() and p.present_action.isChecked()
    for hidden in (w.engine_bar, w.traffic_bar, w.menuBar(), w.statusBar(), w.table,
                   w.connections, w.slider, w.view_tabs.tabBar()):
        assert not hidden.isVisible()
    front = w.view_tabs.currentWidget()
    assert front.isVisible() and front.width() > 0.9 * w.width()
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert not p.active and not w.isFullScreen() and not p.present_action.isChecked()
    for shown in (w.engine_bar, w.traffic_bar, w.menuBar(), w.statusBar(), w.table,
                  w.connections, w.slider, w.view_tabs.tabBar(), front):
        assert shown.isVisible()
    assert [w.view_tabs.tabText(i) for i in range(w.view_tabs.count())] == tabs_before
    assert w.geometry() == geometry
    # The menu action does the same; closing the window while presenting leaves first.
    p.present_action.trigger()
    assert p.active
    w.close()
    assert not p.active and not w.isFullScreen()


def test_pagedown_steps_the_lesson_whatever_has_the_focus(qtbot, window, first) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.open_lesson(first)
    w.presentation.enter()
    assert w.caption_box.isVisible()
    count = len(first.steps)
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.lesson_step == 1 and w.timeline.cursor == first.at[1]
    assert w.caption_step.text() == f"2 / {count}"
    # The step's caption is large (read from the back row) and its number a solid badge.
    assert w.caption.font().pointSizeF() >= 1.5 * style.BASE_POINT_SIZE
    assert style.FOREGROUND in w.caption_step.styleSheet()
    # The step's segment is marked in the sequence view.
    sequence = w.views["sequence"]
    sequence.grab()
    log = w.timeline.log
    assert sequence.highlighted == max(i for i in range(first.at[1] + 1)
                                       if log[i].kind == "packet")
    assert log[sequence.highlighted].data["flags"] == "SYN|ACK"
    # A text box of the HTTP view would scroll on PageDown: presenting, it steps.
    w.go_to_step(4)
    assert w.view_tabs.currentWidget().name == "http"
    box = w.views["http"].findChildren(QTextBrowser)[0]
    qtbot.keyClick(box, Qt.Key.Key_PageDown)
    assert w.lesson_step == 5
    qtbot.keyClick(box, Qt.Key.Key_PageUp)
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.lesson_step == 3 and w.timeline.cursor == first.at[3]


def test_presenting_a_question_comes_alone_before_its_answer(qtbot, window, first) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: a step that asks takes two presses when presenting: its narration,
    then the question alone (framed, bold, the picture unchanged), then the answer."""
    w = window
    w.open_lesson(first)
    asking = [k for k in range(len(first.steps)) if first.question(k)]
    assert asking == [6]  # "count the teardown's segments", answered by step 8
    k = asking[0]
    narration, question = first.narration(k), first.question(k)
    assert question and question not in narration and question.endswith("?")
    # In the window, the caption says both at once, and PageDown goes to the answer.
    w.go_to_step(k)
    assert w.caption.text() == f"{narration} {question}"
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.lesson_step == k + 1 and not w.lesson_asking
    # Presenting: the narration alone ...
    w.presentation.enter()
    w.go_to_step(k - 1)
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.lesson_step == k and w.caption.text() == narration
    plain = w.caption.styleSheet()
    assert "border" not in plain and not w.caption.font().bold()
    # ... then the question alone, over the same picture ...
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.lesson_step == k and w.lesson_asking
    assert w.caption.text() == f"Question: {question}"
    assert w.timeline.cursor == first.at[k] and w.caption_step.text() == f"{k + 1} / {len(first.steps)}"
    assert "border" in w.caption.styleSheet() and w.caption.font().bold()
    # ... then the answer; back again the same way.
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.lesson_step == k + 1 and not w.lesson_asking and w.timeline.cursor == first.at[k + 1]
    assert w.caption.text() == first.narration(k + 1) and "The teardown took" in w.caption.text()
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.lesson_step == k and w.lesson_asking and w.caption.text().startswith("Question: ")
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.lesson_step == k and not w.lesson_asking and w.caption.text() == narration
    # In Chinese, the question's own label.
    w.set_language("zh_CN")
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.caption.text() == "问题：" + first.question(k, "zh_CN")
    # Leaving, the window shows narration and question together again.
    w.presentation.leave()
    assert w.caption.text() == first.text(k, "zh_CN")
    assert "border" not in w.caption.styleSheet()
    w.set_language("en")


def test_pagedown_without_a_lesson_steps_one_event(qtbot, window, first) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.show_timeline(first.timeline, "trace")
    w.seek(5)
    w.presentation.enter()
    assert not w.caption_box.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.timeline.cursor == 7
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.timeline.cursor == 6
    w.open_lesson(first)  # a lesson opened while presenting keeps its caption after
    assert w.caption_box.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert w.caption_box.isVisible() and w.view_tabs.isVisible()


def test_b_blanks_and_unblanks_in_the_theme_colour(qtbot, window, first) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.open_lesson(first)
    p = w.presentation
    p.enter()
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert p.blanked and p.cover.isVisible() and p.cover.geometry() == w.rect()
    colour = pixel(w, w.width() // 2, w.height() // 2)
    assert colour.lightness() == 255  # white over a light theme
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert not p.blanked and not p.cover.isVisible()
    p.set_theme("dark", persist=False)
    qtbot.keyClick(w, Qt.Key.Key_Period)  # what clickers send for "black screen"
    assert p.blanked
    assert pixel(w, w.width() // 2, w.height() // 2).lightness() == 0
    step = w.lesson_step
    qtbot.keyClick(w, Qt.Key.Key_PageDown)  # the first press brings the picture back
    assert not p.blanked and w.lesson_step == step
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.lesson_step == step + 1
    p.blank(True)
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert not p.active and not p.cover.isVisible()


def test_zoom_scales_the_type_and_is_remembered(qtbot, window, settings, first) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.open_lesson(first)
    sequence = w.views["sequence"]
    title = sequence._fonts()["title"].pointSizeF()
    caption = w.caption.font().pointSizeF()
    qtbot.keyClick(w, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert style.ZOOM == 1.25 and style.BASE_POINT_SIZE == 17.5
    assert settings.value("zoom") in (125, "125")
    w.presentation.set_zoom(2.0)
    assert sequence._fonts()["title"].pointSizeF() == pytest.approx(2 * title)
    assert w.caption.font().pointSizeF() > 1.5 * caption
    plots = w.views["plots"]
    assert plots.raster.getAxis("left").style["tickFont"].pointSizeF() == pytest.approx(
        0.8 * style.BASE_POINT_SIZE)
    for _ in range(10):
        w.presentation.zoom_in()
    assert style.ZOOM == 3.0  # 300 % at most
    qtbot.keyClick(w, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert style.ZOOM == 2.5
    for view in w.views.values():  # every view draws at any zoom
        view.grab()
    w.close()
    again = make_window(qtbot, settings)
    assert style.ZOOM == 2.5 and again.presentation.zoom_actions[250].isChecked()
    again.activateWindow()  # the window's shortcuts work in the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is again)
    qtbot.keyClick(again, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert style.ZOOM == 1.0 and style.BASE_POINT_SIZE == style.BASE_SIZE
    again.close()


def test_theme_switches_every_view_and_is_remembered(qtbot, window, settings, first) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.open_lesson(first)
    assert style.THEME == "light"
    light = {name: pixel(view) for name, view in w.views.items()}
    assert all(c.lightness() > 200 for c in light.values()), light
    w.presentation.theme_actions["dark"].trigger()
    assert style.THEME == "dark" and settings.value("theme") == "dark"
    dark = {name: pixel(view) for name, view in w.views.items()}
    assert all(c.lightness() < 60 for c in dark.values()), {n: c.name() for n, c in dark.items()}
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 60
    # The meanings keep their Okabe–Ito colours; closing is drawn in the text colour.
    assert style.CLIENT == "#0072B2" and style.KIND_COLOURS["close"] == style.FOREGROUND
    w.presentation.set_theme("projector")
    assert style.BACKGROUND == "#FFFFFF" and style.FOREGROUND == "#000000"
    assert style.pen(2) == 3.0  # thicker lines on a projector
    assert pixel(w.views["sequence"]).name() == "#ffffff"
    w.presentation.set_theme("dark")
    w.close()
    again = make_window(qtbot, settings)
    assert style.THEME == "dark" and again.presentation.theme_actions["dark"].isChecked()
    again.close()


def test_a_pair_side_by_side_follows_the_lesson(qtbot, window, first) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.open_lesson(first)
    p = w.presentation
    p.enter()
    order = list(w.views)
    qtbot.keyClick(w, Qt.Key.Key_2, Qt.KeyboardModifier.ShiftModifier)  # view 2 beside
    assert p.second is w.views[order[1]] and p.front() is w.views["sequence"]
    left, right = p.front(), p.second
    assert left.isVisible() and right.isVisible()
    assert left.mapTo(w, left.rect().topLeft()).x() < right.mapTo(w, right.rect().topLeft()).x()
    assert right.width() > 0.35 * w.width() and left.width() > 0.35 * w.width()
    qtbot.keyClick(w, Qt.Key.Key_3)  # view 3 in front, the pair stays
    assert p.front() is w.views[order[2]] and p.second is w.views[order[1]]
    qtbot.keyClick(w, Qt.Key.Key_At, Qt.KeyboardModifier.ShiftModifier)  # Shift+2, US layout
    assert p.second is w.views[order[1]]
    qtbot.keyClick(w, Qt.Key.Key_0)  # one view again
    assert p.second is None and not w.views[order[1]].isVisible()
    # A step asking for the second view brings it in front; the front one goes beside.
    w.go_to_step(3)
    assert p.front().name == first.steps[3].view == "io"
    p.set_second("http")
    w.go_to_step(4)
    assert first.steps[4].view == "http"
    assert p.front().name == "http" and p.second is not None and p.second.name == "io"
    w.go_to_step(5)
    assert p.second.timeline.cursor == first.at[5]  # the second view follows the cursor
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert [w.view_tabs.widget(i).name for i in range(w.view_tabs.count())] == order
    assert p.second is None and w.view_tabs.currentWidget().name == "http"


def test_parse_steps() -> None:
    assert presentation.parse_steps(None, 4) == [0, 1, 2, 3]
    assert presentation.parse_steps("2-3", 4) == [1, 2]
    assert presentation.parse_steps("3", 4) == [2]
    assert presentation.parse_steps("3-", 4) == [2, 3]
    assert presentation.parse_steps("-2", 4) == [0, 1]
    for bad in ("0-2", "3-9", "4-2", "x"):
        with pytest.raises(ValueError):
            presentation.parse_steps(bad, 4)


def test_gif_and_svg_of_the_presentation_layout(qtbot, window, first, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.open_lesson(first)
    out = tmp_path / "steps.gif"
    assert presentation.export_gif(w, out, [0, 1, 2, 3]) == 4
    with Image.open(out) as gif:
        assert gif.n_frames == 4 and gif.size == (1280, 720)
        assert gif.info["duration"] == presentation.FRAME_MS and gif.info["loop"] == 0
    png = tmp_path / "step.png"
    presentation.export_page(w, png)
    with Image.open(png) as picture:
        assert picture.size == (1280, 720)
    svg = tmp_path / "step.svg"
    presentation.export_page(w, svg, QSize(1280, 720))
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert 'viewBox="0 0 1280 720"' in text
    assert "accept() takes" in text.replace("&#x27;", "'")  # the caption, as text
    # A step that asks gives two frames: the narration, then the question alone.
    assert presentation.export_gif(w, tmp_path / "ask.gif", [6, 7]) == 3
    with Image.open(tmp_path / "ask.gif") as gif:
        assert gif.n_frames == 3


def test_lesson_command_writes_a_gif_and_a_presented_svg(tmp_path: Path) -> None:
    gif = tmp_path / "first.gif"
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                           "--lang", "en", "--gif", str(gif), "--steps", "2-4", "--theme", "dark",
                           "--zoom", "150"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    with Image.open(gif) as picture:
        assert picture.n_frames == 3 and picture.size == (1280, 720)
        assert max(picture.convert("L").getpixel((640, 700)), 0) < 60  # dark
    svg = tmp_path / "step.svg"
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                           "--lang", "en", "--step", "2", "--present", "--screenshot", str(svg)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "<svg" in svg.read_text(encoding="utf-8")
    asked = tmp_path / "asked.png"
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                           "--lang", "zh_CN", "--step", "7", "--present", "--question",
                           "--screenshot", str(asked)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    with Image.open(asked) as picture:
        assert picture.size == (1280, 720)
    nothing = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                              "--step", "2", "--present", "--question", "--screenshot",
                              str(tmp_path / "no.png")],
                             cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert nothing.returncode == 2 and "step 2 of first-request asks nothing" in nothing.stderr
    assert "the steps that ask: 7" in nothing.stderr and not (tmp_path / "no.png").exists()
    wrong = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                            "--question"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--question goes with --present and --step K" in wrong.stderr
    bad = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                          "--gif", str(tmp_path / "x.gif"), "--steps", "3-99"],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert bad.returncode == 2 and "steps 1 to" in bad.stderr
    assert not (tmp_path / "x.gif").exists()


def test_the_state_diagram_beside_the_sequence_view(qtbot, window, first) -> None:  # type: ignore[no-untyped-def]
    """The pair a TCP lecture projects: the segments on the left, the state diagram on
    the right, the same connection in both, following the lesson's steps."""
    w = window
    w.open_lesson(first)
    p = w.presentation
    p.enter()
    w.go_to_step(0)
    order = list(w.views)
    number = order.index("diagram") + 1
    qtbot.keyClick(w, getattr(Qt.Key, f"Key_{number}"), Qt.KeyboardModifier.ShiftModifier)
    assert p.front().name == "sequence" and p.second is w.views["diagram"]
    sequence, diagram = p.front(), p.second
    assert sequence.isVisible() and diagram.isVisible()
    for k in (0, 1, 2, 6):
        w.go_to_step(k)
        assert diagram.conn == sequence.conn is not None
        for side in ("client", "server"):
            marker = diagram.markers.get(side)
            lane = getattr(sequence, f"{side}_state")
            assert (marker.state if marker is not None else "—") == lane, (k, side)
