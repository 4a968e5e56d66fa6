"""Presentation mode, themes and zoom, and pictures for slides.

A lecturer projects the window. **View → Presentation mode** (F5) fills the
screen with one view (the current tab) or a pair side by side, and the
lesson's caption in large type with its step number; the toolbars, the
event log, the connections table, the menus and the status bar go away
until Esc. Keys while presenting (what a presentation clicker sends, and a
few more):

===================  ==================================================
PageDown / PageUp    next / previous lesson step (no lesson: one event);
                     a step that asks the class shows its question alone
                     on a press of its own, before the next step answers
B or .               blank the screen (black in the dark theme, white
                     otherwise); B again, PageDown or PageUp comes back
1 … 7                that view in front (the tabs' order)
Shift+1 … Shift+7    that view beside it (a pair); Shift+the front
                     view's number, or 0, back to one view
L                    the laser pointer on / off: a red dot follows the
                     mouse over the page (visualizer/pointer.py)
D                    the pen on / off ("draw"): drag to draw over the
                     picture; no click reaches the views while it is on
C                    clear the drawing (so does any change of step or
                     view, and leaving)
F5 or Esc            leave (full screen, window and layout as they were)
===================  ==================================================

Everywhere: **View → Theme** (light, projector: pure black on pure white
with thicker lines, dark) and **View → Zoom** (Ctrl+= / Ctrl+- / Ctrl+0,
100 % to 300 %: every view's type and the caption). Both are kept in the
settings ("theme", "zoom"). The colours that carry a meaning stay the
Okabe–Ito palette in every theme; only the neutrals change.

Exports (``sockscope lesson NAME ...``): ``export_page`` writes the
presentation layout (the caption and the view, 1280 x 720 by default) as
PNG or SVG; ``export_gif`` writes a range of steps as a looping animated
GIF, one frame per step.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (QT_TRANSLATE_NOOP, QCoreApplication, QEvent, QObject, QPoint, QRect,
                            QRectF, QSize, Qt, QTimer)
from PySide6.QtGui import (QAction, QActionGroup, QColor, QFontMetricsF, QGuiApplication, QImage,
                           QKeySequence, QPainter, QPalette)
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (QApplication, QBoxLayout, QSizePolicy, QSplitter, QToolBar,
                               QVBoxLayout, QWidget)

from .pointer import Pointer
from .views import View, style

if TYPE_CHECKING:
    from .app import MainWindow

ZOOM_STEPS = (100, 125, 150, 175, 200, 250, 300)  # percent
THEMES = (("light", QT_TRANSLATE_NOOP("Presentation", "Light")),
          ("projector", QT_TRANSLATE_NOOP("Presentation", "Projector (high contrast)")),
          ("dark", QT_TRANSLATE_NOOP("Presentation", "Dark")))
SLIDE = QSize(1280, 720)  # what exports draw at
FRAME_MS = 1500  # an animated GIF's time per step
CAPTION_SCALE = 1.5  # the caption's type in the window, times style's base size
PRESENT_CAPTION_SCALE = 1.9  # and presenting: read from the back row
CAPTION_SHARE = 0.3  # of the height the caption shares with the views, at most

# Shift+digit arrives as the shifted symbol on most layouts (US shown here); the
# keyboard's own key (X11 key codes 10-16 are the digits 1-7) covers the others.
_SHIFTED = {Qt.Key.Key_Exclam: 1, Qt.Key.Key_At: 2, Qt.Key.Key_NumberSign: 3,
            Qt.Key.Key_Dollar: 4, Qt.Key.Key_Percent: 5, Qt.Key.Key_AsciiCircum: 6,
            Qt.Key.Key_Ampersand: 7}
_DIGITS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(10)}

_light_palette: QPalette | None = None  # the application's palette before a dark theme


def dark_palette() -> QPalette:
    """The window's widgets (tables, menus, buttons) for the dark theme."""
    p = QPalette()
    base, window, text = QColor(style.BACKGROUND), QColor("#1E2126"), QColor(style.FOREGROUND)
    for role, colour in ((QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
                         (QPalette.ColorRole.Base, base),
                         (QPalette.ColorRole.AlternateBase, QColor("#1A1D21")),
                         (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor("#2A2E34")),
                         (QPalette.ColorRole.ButtonText, text),
                         (QPalette.ColorRole.BrightText, QColor(style.YELLOW)),
                         (QPalette.ColorRole.ToolTipBase, QColor("#2A2E34")),
                         (QPalette.ColorRole.ToolTipText, text),
                         (QPalette.ColorRole.PlaceholderText, QColor(style.MUTED)),
                         (QPalette.ColorRole.Highlight, QColor(style.BLUE)),
                         (QPalette.ColorRole.HighlightedText, QColor(style.INK_LIGHT)),
                         (QPalette.ColorRole.Link, QColor(style.SKY)),
                         (QPalette.ColorRole.Light, QColor("#3A3F46")),
                         (QPalette.ColorRole.Midlight, QColor("#31353B")),
                         (QPalette.ColorRole.Mid, QColor("#25282D")),
                         (QPalette.ColorRole.Dark, QColor("#0C0D0F")),
                         (QPalette.ColorRole.Shadow, QColor("#000000"))):
        p.setColor(role, colour)
    muted = QColor("#7A7F86")
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, muted)
    return p


def apply_palette() -> None:
    """The application's palette for ``style``'s theme (dark, or as it was)."""
    global _light_palette
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    if style.DARK:
        if _light_palette is None:
            _light_palette = QPalette(app.palette())
        app.setPalette(dark_palette())
    elif _light_palette is not None:  # back to the system's (set only if we changed it)
        app.setPalette(_light_palette)
        _light_palette = None


def parse_steps(text: str | None, count: int) -> list[int]:
    """"A-B" (from 1, both included), "K", "A-" or "-B" -> step indices from 0;
    None or "" -> every step. Raises ValueError for a range outside 1..count."""
    if not text:
        return list(range(count))
    first, dash, last = text.strip().partition("-")
    a = int(first) if first.strip() else 1
    b = (int(last) if last.strip() else count) if dash else a
    if not 1 <= a <= b <= count:
        raise ValueError(f"steps {text!r}: the lesson has steps 1 to {count}")
    return list(range(a - 1, b))


def _unique(keys: list[str], standard: QKeySequence.StandardKey) -> list[QKeySequence]:
    """``keys`` and the platform's own for ``standard``, each once (the same sequence
    twice on one action makes it ambiguous: it would never fire)."""
    found: dict[str, QKeySequence] = {}
    for seq in [QKeySequence(k) for k in keys] + QKeySequence.keyBindings(standard):
        found.setdefault(seq.toString(), seq)
    return list(found.values())


def _view_title(view: View) -> str:
    return QCoreApplication.translate("View", view.title)


class _Keys(QObject):
    """The application's key presses for the presenting window, before any widget (a
    text box that would scroll on PageDown) sees them."""

    def __init__(self, presentation: Presentation) -> None:
        super().__init__(presentation)
        self.presentation = presentation

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        p = self.presentation
        if event.type() == QEvent.Type.KeyPress and obj.isWidgetType() \
                and obj.window() is p.window:
            return p._key(event)
        return False


class Presentation(QObject):
    """The window's presentation mode, theme and zoom (``window.presentation``)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.active = False
        self.fullscreen = False
        self.blanked = False
        self.second: View | None = None  # the view beside the front one (presenting)
        self.second_name: str | None = None  # the pair asked for (kept between sessions)
        self.split: QSplitter | None = None
        self._page: QWidget | None = None
        self._central: QWidget | None = None
        self._homes: dict[str, tuple] = {}
        self._hidden: list[tuple[QWidget, bool]] = []
        self._saved: tuple | None = None
        self._tabs_mode = False
        self._caption_key: tuple | None = None
        self.cover = QWidget(window)  # B: the blank screen, over everything
        self.cover.setAutoFillBackground(True)
        self.cover.hide()
        self._keys = _Keys(self)
        self._build_menu()
        window.installEventFilter(self)  # resizes (the cover), closing, the language
        settings = window.qsettings
        theme = str(settings.value("theme") or "light")
        try:
            zoom = float(settings.value("zoom") or 100) / 100
        except (TypeError, ValueError):
            zoom = 1.0
        self.set_theme(theme, persist=False)
        self.set_zoom(zoom, persist=False)

    # ------------------------------------------------------------ menu
    def _build_menu(self) -> None:
        w = self.window
        self.menu = w.menuBar().addMenu("")
        self.present_action = QAction(w)
        self.present_action.setCheckable(True)
        self.present_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.present_action.toggled.connect(lambda on: self.enter() if on else self.leave())
        self.menu.addAction(self.present_action)
        self.pair_menu = self.menu.addMenu("")
        self.pair_group = QActionGroup(self)
        self.pair_actions: dict[str | None, QAction] = {}
        for name in (None, *w.views):
            action = QAction(w)
            action.setCheckable(True)
            action.setChecked(name is None)
            action.triggered.connect(lambda _=False, n=name: self.set_second(n))
            self.pair_group.addAction(action)
            self.pair_menu.addAction(action)
            self.pair_actions[name] = action
        self.pointer = Pointer(w, self.menu)  # L, D, C: the laser, the pen (presenting)
        self.menu.addSeparator()
        self.theme_menu = self.menu.addMenu("")
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name, _ in THEMES:
            action = QAction(w)
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            self.theme_group.addAction(action)
            self.theme_menu.addAction(action)
            self.theme_actions[name] = action
        self.zoom_menu = zoom_menu = self.menu.addMenu("")
        self.zoom_in_action = zoom_in = QAction(w)
        zoom_in.setShortcuts(_unique(["Ctrl+=", "Ctrl++"], QKeySequence.StandardKey.ZoomIn))
        zoom_in.triggered.connect(self.zoom_in)
        self.zoom_out_action = zoom_out = QAction(w)
        zoom_out.setShortcuts(_unique(["Ctrl+-"], QKeySequence.StandardKey.ZoomOut))
        zoom_out.triggered.connect(self.zoom_out)
        self.zoom_reset_action = zoom_reset = QAction(w)
        zoom_reset.setShortcut(QKeySequence("Ctrl+0"))
        zoom_reset.triggered.connect(lambda: self.set_zoom(1.0))
        for action in (zoom_in, zoom_out, zoom_reset):
            zoom_menu.addAction(action)
        zoom_menu.addSeparator()
        self.zoom_group = QActionGroup(self)
        self.zoom_actions: dict[int, QAction] = {}
        for pct in ZOOM_STEPS:
            action = QAction(f"{pct} %", w)
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, p=pct: self.set_zoom(p / 100))
            self.zoom_group.addAction(action)
            zoom_menu.addAction(action)
            self.zoom_actions[pct] = action
        # Shortcuts of the window itself: they work with the menu bar hidden (presenting).
        for action in (self.present_action, zoom_in, zoom_out, zoom_reset):
            w.addAction(action)
        self.retranslate()

    def retranslate(self) -> None:
        """The menu's words, in the window's language (again when it changes)."""
        # self.tr(...) in full: lupdate files a bare tr(...) under no context at all
        self.menu.setTitle(self.tr("&View"))
        self.present_action.setText(self.tr("&Presentation mode"))
        self.present_action.setToolTip(self.tr(
            "Full screen: one view and the caption. PageDown/PageUp step, B blanks, "
            "1–6 the view, Shift+1–6 a second view beside it, L the laser pointer, "
            "D draws (C clears), Esc leaves"))
        self.pointer.retranslate()
        self.pair_menu.setTitle(self.tr("Second &view when presenting"))
        for name, action in self.pair_actions.items():
            action.setText(self.tr("none") if name is None else _view_title(self.views[name]))
        self.theme_menu.setTitle(self.tr("&Theme"))
        for name, label in THEMES:
            self.theme_actions[name].setText(self.tr(label))
        self.zoom_menu.setTitle(self.tr("&Zoom"))
        self.zoom_in_action.setText(self.tr("Zoom &in"))
        self.zoom_out_action.setText(self.tr("Zoom &out"))
        self.zoom_reset_action.setText(self.tr("&Actual size (100 %)"))

    # ------------------------------------------------------------ theme and zoom
    @property
    def views(self) -> dict[str, View]:
        return self.window.views

    def set_theme(self, name: str, persist: bool = True) -> str:
        """Switch every view, the caption and the window's palette to theme ``name``."""
        name = style.set_theme(name)
        apply_palette()
        self._restyle()
        action = self.theme_actions.get(name)
        if action is not None:
            action.setChecked(True)
        if persist:
            self.window.qsettings.setValue("theme", name)
        return name

    def set_zoom(self, factor: float, persist: bool = True) -> float:
        """Scale the views' type and the caption: 1.0 to 3.0 (100 % to 300 %)."""
        factor = style.set_zoom(factor)
        self._restyle()
        pct = round(factor * 100)
        for p, action in self.zoom_actions.items():
            action.setChecked(p == pct)
        if persist:
            self.window.qsettings.setValue("zoom", pct)
        return factor

    def zoom_in(self) -> float:
        pct = round(style.ZOOM * 100)
        return self.set_zoom(next((p for p in ZOOM_STEPS if p > pct), ZOOM_STEPS[-1]) / 100)

    def zoom_out(self) -> float:
        pct = round(style.ZOOM * 100)
        return self.set_zoom(next((p for p in reversed(ZOOM_STEPS) if p < pct), ZOOM_STEPS[0])
                             / 100)

    def _restyle(self) -> None:
        self._style_page()
        self._paint_cover()
        if self.pointer.overlay is not None:  # the pen's colour and the dot's size
            self.pointer.overlay.update()
        for view in self.views.values():
            view.apply_theme()

    def _style_page(self) -> None:
        self.style_caption()
        if self._page is not None:  # around the pictures: the pictures' own background
            pal = self._page.palette()
            pal.setColor(QPalette.ColorRole.Window, QColor(style.BACKGROUND))
            self._page.setPalette(pal)

    def style_caption(self) -> None:
        """The narration: large (times the zoom), on the highlight colour; larger still when
        presenting, with the step number as a solid badge. A long text at a large zoom gets
        smaller type rather than more than a third of the height (the pictures need it)."""
        w = self.window
        area = w.caption_box.parentWidget()
        asking = bool(w.caption.property("asking"))
        key = (w.caption.text(), w.caption_step.text(), w.caption_note.text(),
               area.size() if area else None, self.active, style.THEME, style.ZOOM, asking)
        if key == self._caption_key:
            return
        self._caption_key = key
        scale = self._caption_scale()
        size = style.BASE_POINT_SIZE * scale
        pad = max(6, round(size * (0.45 if self.active else 0.35)))
        w.caption.setFont(style.font(scale, bold=asking))
        # A question stands out: bold, framed, on the page's own background (no answer
        # is highlighted yet).
        frame = (f"background:{style.BACKGROUND};border:{max(3, pad // 3)}px solid "
                 f"{style.FOREGROUND};" if asking else f"background:{style.SELECTED};")
        w.caption.setStyleSheet(f"{frame}color:{style.FOREGROUND};padding:{pad}px")
        w.caption_note.setFont(style.font(max(0.9, scale * 0.55), mono=True))
        w.caption_note.setStyleSheet(f"color:{style.MUTED}")
        w.caption_step.setFont(style.font(scale * (0.95 if self.active else 0.8), bold=True))
        w.caption_step.setAlignment(Qt.AlignmentFlag.AlignCenter)
        w.caption_step.setSizePolicy(
            QSizePolicy.Policy.Preferred,
            QSizePolicy.Policy.Maximum if self.active else QSizePolicy.Policy.Preferred)
        if self.active:
            w.caption_step.setStyleSheet(
                f"background:{style.FOREGROUND};color:{style.BACKGROUND};"
                f"padding:{pad}px {round(pad * 1.5)}px;border-radius:{pad}px")
        else:
            w.caption_step.setStyleSheet(f"color:{style.FOREGROUND}")

    def _caption_scale(self) -> float:
        """The largest type (a factor of style's base size) up to the wanted one with which
        the caption fits in CAPTION_SHARE of the height it shares with the views."""
        w = self.window
        want = PRESENT_CAPTION_SCALE if self.active else CAPTION_SCALE
        text, area = w.caption.text(), w.caption_box.parentWidget()
        asking = bool(w.caption.property("asking"))
        if not text or area is None or area.width() < 200 or area.height() < 200:
            return want
        least = min(want, 1.2 / style.ZOOM)  # never below 1.2 times 100 %'s base size
        scale = want
        while scale > least:
            size = style.BASE_POINT_SIZE * scale
            pad = max(6, round(size * (0.45 if self.active else 0.35)))
            badge = QFontMetricsF(style.font(scale * (0.95 if self.active else 0.8), True))
            badge_w = badge.horizontalAdvance(w.caption_step.text() or "10 / 10") + 3 * pad + 12
            text_w = max(50, int(area.width() - badge_w - 2 * pad - 16))
            height = QFontMetricsF(style.font(scale, bold=asking)).boundingRect(
                QRectF(0, 0, text_w, 1e6), int(Qt.TextFlag.TextWordWrap), text).height()
            if w.caption_note.isVisibleTo(w.caption_box) and w.caption_note.text():
                height += QFontMetricsF(style.font(max(0.9, scale * 0.55), mono=True)).height() + 2
            if height + 2 * pad <= area.height() * CAPTION_SHARE:
                return scale
            scale *= 0.92
        return max(scale, least)

    # ------------------------------------------------------------ presenting
    def toggle(self) -> None:
        self.present_action.toggle()

    def enter(self, fullscreen: bool = True) -> None:
        """Presentation layout: the caption over the current view (and the pair), alone in
        the window; full screen unless ``fullscreen`` is False (exports)."""
        if self.active:
            return
        w = self.window
        self.active = True
        self.fullscreen = fullscreen
        self._saved = (QRect(w.geometry()), w.windowState())
        # Everything but the pictures goes (remembered as it was).
        bars: list[QWidget] = [w.menuBar(), w.statusBar()]
        bars += [b for b in w.findChildren(QToolBar) if b.parentWidget() is w]
        self._hidden = [(b, b.isHidden()) for b in bars]
        for b, _ in self._hidden:
            b.hide()
        tabs, caption = w.view_tabs, w.caption_box
        column = w.view_column  # the views and the key moment's banner above them
        self._homes = {"tabs": self._home(column), "caption": self._home(caption)}
        self._central = w.takeCentralWidget()
        page = self._page = QWidget()
        page.setObjectName("presentation")
        page.setAutoFillBackground(True)
        layout = QVBoxLayout(page)
        margin = 6
        layout.setContentsMargins(margin, margin, margin, margin)
        layout.setSpacing(margin)
        layout.addWidget(caption)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.setHandleWidth(8)
        self.split.addWidget(column)
        layout.addWidget(self.split, 1)
        self._tabs_mode = tabs.documentMode()
        tabs.setDocumentMode(True)
        tabs.tabBar().hide()
        w.setCentralWidget(page)
        w.show_caption()  # presenting, a question waits for a key of its own
        self._style_page()
        column.show()
        caption.setVisible(not self._homes["caption"][-1])
        page.show()
        QApplication.instance().installEventFilter(self._keys)
        self._apply_pair()
        self.pointer.install(page, self._moment())  # the laser and the pen, over the page
        if fullscreen:
            if QGuiApplication.platformName() == "xcb":
                # X11 leaves full screen to the window manager; with none (a bare X server,
                # a kiosk session) the window would keep its size: cover the screen first.
                w.setGeometry(w.screen().geometry())
            w.showFullScreen()
        if not self.present_action.isChecked():
            self.present_action.setChecked(True)  # (toggled: enter() again returns at once)
        page.setFocus()
        w._refresh()

    def leave(self) -> None:
        """Back to the window as it was: layout, bars, geometry, full screen or not."""
        if not self.active:
            return
        w = self.window
        QApplication.instance().removeEventFilter(self._keys)
        self.pointer.remove()  # both off, the drawing gone
        self.blank(False)
        self._return_second()
        self.active = False
        page = w.takeCentralWidget()
        tabs, caption = w.view_tabs, w.caption_box
        tabs.tabBar().show()
        tabs.setDocumentMode(self._tabs_mode)
        # Back where they were, the lower index first (they may share a layout).
        # (Shown or hidden as they are now: a lesson opened meanwhile keeps its caption.)
        for name, widget in sorted((("tabs", w.view_column), ("caption", caption)),
                                   key=lambda nw: self._homes[nw[0]][2]):
            self._restore_home(widget, (*self._homes[name][:-1], widget.isHidden()))
        w.setCentralWidget(self._central)
        self._central.show()
        self._central = None
        if page is not None:
            page.deleteLater()
        self._page = self.split = None
        for b, hidden in self._hidden:
            b.setVisible(not hidden)
        self._hidden = []
        geometry, state = self._saved or (None, Qt.WindowState.WindowNoState)
        if self.fullscreen:
            w.setWindowState(state)
            if geometry is not None and not state & (Qt.WindowState.WindowMaximized
                                                     | Qt.WindowState.WindowFullScreen):
                w.setGeometry(geometry)  # (restoreGeometry would clamp it to the screen)
        self.fullscreen = False
        w.show_caption()  # the narration and its question together again
        self.style_caption()
        if self.present_action.isChecked():
            self.present_action.setChecked(False)
        w._refresh()

    @staticmethod
    def _home(widget: QWidget) -> tuple:
        """Where ``widget`` sits, to put it back: (parent, layout, index, stretch, hidden)."""
        parent = widget.parentWidget()
        hidden = widget.isHidden()
        if isinstance(parent, QSplitter):
            return parent, None, parent.indexOf(widget), 0, hidden
        layout = parent.layout() if parent is not None else None
        index = layout.indexOf(widget) if layout is not None else -1
        stretch = layout.stretch(index) if isinstance(layout, QBoxLayout) and index >= 0 else 0
        return parent, layout, index, stretch, hidden

    @staticmethod
    def _restore_home(widget: QWidget, home: tuple) -> None:
        parent, layout, index, stretch, hidden = home
        if isinstance(parent, QSplitter):
            parent.insertWidget(index, widget)
        elif isinstance(layout, QBoxLayout):
            layout.insertWidget(index, widget, stretch)
        elif layout is not None:
            layout.addWidget(widget)
        elif parent is not None:
            widget.setParent(parent)
        widget.setVisible(not hidden)

    # ------------------------------------------------------------ the pair
    def names(self) -> list[str]:
        return list(self.views)

    def front(self) -> View | None:
        view = self.window.view_tabs.currentWidget()
        return view if isinstance(view, View) else None

    def set_front(self, name: str) -> None:
        """View ``name`` in front; if it was the second one, the two change places."""
        view = self.views.get(name)
        if view is None:
            return
        if view is self.second or name == self.second_name:
            front = self.front()
            self._return_second()
            self.second_name = front.name if front is not None and front is not view else None
        self.window.show_view(name)
        self._apply_pair()
        self._check_pair_action()

    def set_second(self, name: str | None) -> None:
        """View ``name`` beside the front one when presenting (None, or the front view
        itself: one view alone)."""
        if name is not None and name not in self.views:
            return
        front = self.front()
        if name is not None and front is not None and front.name == name:
            name = None
        self.second_name = name
        self._apply_pair()
        self._check_pair_action()

    def _check_pair_action(self) -> None:
        action = self.pair_actions.get(self.second_name)
        if action is not None:
            action.setChecked(True)

    def show_view(self, view: View) -> bool:
        """A lesson step asks for the view that is the second one: it comes in front and
        the front one takes its place."""
        if view is not self.second:
            return False
        self.set_front(view.name)
        return True

    def _apply_pair(self) -> None:
        if not self.active or self.split is None:
            return
        want = self.views.get(self.second_name) if self.second_name else None
        if want is not None and want is self.front():
            want = None
        if self.second is not None and self.second is not want:
            self._return_second()
        if want is not None and self.second is None:
            tabs = self.window.view_tabs
            tabs.removeTab(tabs.indexOf(want))
            self.split.addWidget(want)
            want.show()
            self.second = want
            half = max(1, self.split.width() // 2)
            self.split.setSizes([half, half])
            want.show_state(self.window.timeline)
        self.pointer.follow(self._moment())

    def _return_second(self) -> None:
        view, self.second = self.second, None
        if view is None:
            return
        tabs = self.window.view_tabs
        order = list(self.views.values())
        position = sum(1 for v in order[:order.index(view)] if tabs.indexOf(v) >= 0)
        current = tabs.currentWidget()
        tabs.blockSignals(True)
        tabs.insertTab(position, view, _view_title(view))
        tabs.setCurrentWidget(current)
        tabs.blockSignals(False)

    def refresh(self, timeline) -> None:  # type: ignore[no-untyped-def]
        """The window drew the front view at the cursor: the second one too (and the
        caption's type fits its new text)."""
        if self.second is not None:
            self.second.show_state(timeline)
        if self.window.caption_box.isVisible():
            self.style_caption()
        if self.active:
            self.pointer.follow(self._moment())

    def _moment(self) -> tuple:
        """What the page shows, as far as a drawing over it goes: the lesson's step (and
        its question), the cursor (not while live: it moves on its own), the views."""
        w = self.window
        front = self.front()
        return (id(w.lesson), w.lesson_step, w.lesson_asking,
                getattr(w, "lesson_revealed", False),  # a question's answer marked
                None if w.timeline.live else w.timeline.cursor,
                front.name if front is not None else None,
                self.second.name if self.second is not None else None)

    # ------------------------------------------------------------ blank
    def blank(self, on: bool | None = None) -> bool:
        """Cover the window (B): black in the dark theme, white otherwise."""
        self.blanked = (not self.blanked) if on is None else bool(on)
        self._paint_cover()
        if self.blanked:
            self.cover.setGeometry(self.window.rect())
            self.cover.raise_()
            self.cover.show()
        else:
            self.cover.hide()
        return self.blanked

    def _paint_cover(self) -> None:
        pal = self.cover.palette()
        pal.setColor(QPalette.ColorRole.Window, QColor("#000000" if style.DARK else "#FFFFFF"))
        self.cover.setPalette(pal)

    # ------------------------------------------------------------ keys
    def step(self, count: int) -> None:
        """A lesson's next (previous) step, or one event without a lesson. A step that
        asks a question has a beat of its own for it: its narration, then (next key)
        the question alone over the same picture, with its choices if it offers some,
        then (next key) the right choice marked, then (next key) the answer."""
        w = self.window
        lesson = w.lesson
        if lesson is None:
            w.step(count)
            return
        k, asking, revealed = w.lesson_step, w.lesson_asking, w.lesson_revealed
        # A question with choices has one beat more: the right choice marked.
        reveals = bool(lesson.choices(k)) and lesson.steps[k].answer is not None
        if count > 0:
            if not asking and lesson.question(k):
                w.go_to_step(k, ask=True)
            elif asking and reveals and not revealed:
                w.go_to_step(k, ask=True, reveal=True)
            elif k + 1 < len(lesson.steps):
                w.go_to_step(k + 1)
        elif count < 0:
            if revealed:
                w.go_to_step(k, ask=True)
            elif asking:
                w.go_to_step(k)
            elif k > 0:
                back = k - 1
                w.go_to_step(back, ask=bool(lesson.question(back)),
                             reveal=bool(lesson.choices(back))
                             and lesson.steps[back].answer is not None)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        """The window's own events."""
        kind = event.type()
        if kind == QEvent.Type.Resize:
            if self.blanked:
                self.cover.setGeometry(self.window.rect())
            QTimer.singleShot(0, self, self.style_caption)  # once the layouts have the new size
        elif kind == QEvent.Type.Close:
            self.leave()  # the settings keep the window's geometry, not the full screen
        elif kind == QEvent.Type.LanguageChange:
            self.retranslate()
        return False

    def _key(self, event) -> bool:  # type: ignore[no-untyped-def]
        key = event.key()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        others = mods & ~Qt.KeyboardModifier.ShiftModifier
        if others != Qt.KeyboardModifier.NoModifier:
            return False  # Ctrl+=, Ctrl+Q...: the window's shortcuts
        if key == Qt.Key.Key_Escape:
            self.leave()
            return True
        if not shift and self.pointer.key(key):  # L, D, C
            return True
        if key in (Qt.Key.Key_B, Qt.Key.Key_Period) and not shift:
            self.blank()
            return True
        if key in (Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
            if self.blanked:  # the first press brings the picture back
                self.blank(False)
            else:
                self.step(1 if key == Qt.Key.Key_PageDown else -1)
            return True
        number = _SHIFTED.get(key)
        if number is None and shift and 10 <= event.nativeScanCode() <= 16:
            number = event.nativeScanCode() - 9  # X11: the digit keys, any layout
        if number is not None or (shift and key in _DIGITS):
            number = number if number is not None else _DIGITS[key]
            names = self.names()
            self.set_second(names[number - 1] if 1 <= number <= len(names) else None)
            return True
        if key in _DIGITS:
            n = _DIGITS[key]
            names = self.names()
            if n == 0:
                self.set_second(None)
            elif n <= len(names):
                self.set_front(names[n - 1])
            return True
        return False


# ---------------------------------------------------------------- exports
def _settle(window: MainWindow, timeout: float = 3.0) -> None:
    """Let layouts, animations (a segment's journey) and deferred redraws finish."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout
    app.processEvents()
    while time.monotonic() < deadline:
        moving = [v for v in window.views.values() if getattr(v, "animating", False)]
        if not moving:
            break
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def slide_layout(window: MainWindow, size: QSize = SLIDE) -> QWidget:
    """The window in presentation layout, not full screen, its page ``size`` large."""
    p = window.presentation
    p.enter(fullscreen=False)
    for view in window.views.values():
        if hasattr(view, "throttle"):
            view.throttle = False  # exports draw every plot at once
    window.show()
    page = p._page
    assert page is not None
    window.resize(size)
    QApplication.instance().processEvents()
    extra = window.size() - page.size()
    window.resize(size + extra)
    _settle(window)
    return page


def render_page(window: MainWindow, size: QSize = SLIDE) -> QImage:
    """The presentation layout at ``size`` as a picture."""
    page = slide_layout(window, size)
    image = page.grab().toImage()
    if image.size() != size:
        image = image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image


def export_page(window: MainWindow, path: str | Path, size: QSize = SLIDE) -> None:
    """Write the presentation layout (caption and view) as PNG, or SVG by the suffix."""
    path = Path(path)
    if path.suffix.lower() == ".svg":
        page = slide_layout(window, size)
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(page.size())
        generator.setViewBox(QRect(0, 0, page.width(), page.height()))
        generator.setTitle("SockScope")
        generator.setResolution(page.logicalDpiX())
        painter = QPainter(generator)
        try:
            page.render(painter, QPoint(0, 0))
        finally:
            painter.end()
        return
    if not render_page(window, size).save(str(path)):
        raise OSError(f"cannot write {path}")


def to_pil(image: QImage):  # type: ignore[no-untyped-def]
    """A QImage as a Pillow image (RGB)."""
    from PIL import Image
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    data = bytes(image.constBits())
    rgba = Image.frombuffer("RGBA", (image.width(), image.height()), data, "raw", "RGBA",
                            image.bytesPerLine(), 1)
    return rgba.convert("RGB")


def export_gif(window: MainWindow, path: str | Path, steps: list[int],
               size: QSize = SLIDE, frame_ms: int = FRAME_MS) -> int:
    """Each of the open lesson's ``steps`` (from 0) in presentation layout, as one
    frame of a looping animated GIF, and a step's question as a frame of its own after
    it, as presenting shows them. Returns the number of frames."""
    from PIL import Image
    if window.lesson is None or not steps:
        raise ValueError("no lesson steps to draw")
    frames = []
    for k in steps:
        for ask in (False, True) if window.lesson.question(k) else (False,):
            window.go_to_step(k, ask=ask)
            frame = to_pil(render_page(window, size))
            frames.append(frame.convert("P", palette=Image.Palette.ADAPTIVE, colors=256))
    frames[0].save(str(path), save_all=True, append_images=frames[1:], duration=frame_ms,
                   loop=0, optimize=False, disposal=1)
    return len(frames)
