"""Presentation mode's laser pointer and pen, drawn over the pictures.

Presenting, **L** turns a laser dot on or off: a bright red dot with a soft
halo (its size follows the zoom) follows the mouse over the page (the caption
and the view, or the pair) and the system cursor is hidden there. **D**
("draw") turns the pen on or off: pressing and dragging draws freehand
strokes, thick and half-transparent, over whatever is shown; while the pen
is on, no click reaches the views below (circling a segment selects no
connection). **C** clears the drawing; so does any change of step (PageDown,
PageUp, an event with the arrows, another view in front) and leaving
presentation mode, which also turns both off. The same three are in
**View** (and the page's right-click menu while presenting).

The overlay is one transparent widget over the presentation page, made by
presentation mode when it begins and deleted when it ends. With the pen off
it is transparent to the mouse; with nothing on and nothing drawn it is
hidden, so that pictures taken then are the page alone. Anything drawn is
part of the page: ``page.grab()`` and the slide exports (``export_page``)
include it (a resized page scales the strokes with it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (QAction, QColor, QCursor, QPainter, QPainterPath, QPen,
                           QRadialGradient, QTransform)
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from .views import style

if TYPE_CHECKING:
    from .app import MainWindow

LASER = "#FF1A1A"  # the dot: brighter and redder than the views' vermilion (#D55E00)
LASER_RADIUS = 9.0  # px at 100 % zoom: the dot's core; the halo reaches HALO times as far
HALO = 3.0
# The pen: a magenta no view uses for a meaning (the Okabe–Ito palette has none),
# read on white and on near-black alike; a little lighter in the dark theme.
PEN_LIGHT = "#F00090"
PEN_DARK = "#FF52C5"
PEN_ALPHA = 0.8  # the picture shows through a little (0.9 on the dark theme's black)
PEN_WIDTH = 6.0  # px at 100 % zoom (times the theme's line factor: the projector's thicker)

_MOUSE = (QEvent.Type.MouseMove, QEvent.Type.HoverMove, QEvent.Type.Enter, QEvent.Type.Leave)
_KEYS = {Qt.Key.Key_L: "laser", Qt.Key.Key_D: "pen", Qt.Key.Key_C: "clear"}


def pen_colour() -> QColor:
    colour = QColor(PEN_DARK if style.DARK else PEN_LIGHT)
    colour.setAlphaF(0.9 if style.DARK else PEN_ALPHA)
    return colour


def pen_width() -> float:
    return PEN_WIDTH * style.ZOOM * style.LINE


def laser_radius() -> float:
    return LASER_RADIUS * style.ZOOM


class Overlay(QWidget):
    """The transparent sheet over the presentation page: the strokes (QPainterPaths in
    its own coordinates) and the laser dot."""

    def __init__(self, page: QWidget) -> None:
        super().__init__(page)
        self.setObjectName("pointer")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.laser = False
        self.pen = False
        self.strokes: list[QPainterPath] = []
        self.drawing: QPainterPath | None = None
        self.dot: QPointF | None = None
        self._size = QSize(page.size())
        self.setGeometry(page.rect())
        page.installEventFilter(self)  # follow the page's size (full screen, exports)
        self.hide()

    # ------------------------------------------------------------ state
    def sync(self) -> None:
        """Shown while something is on or drawn (else hidden: the page alone); the mouse
        is the overlay's only while the pen is on."""
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, not self.pen)
        if self.pen:
            self.setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.unsetCursor()
        if not self.laser:
            self.set_dot(None)
        show = self.laser or self.pen or bool(self.strokes) or self.drawing is not None
        if show:
            parent = self.parentWidget()
            if parent is not None and parent.rect() != self.geometry():
                self.setGeometry(parent.rect())
            self.raise_()
        self.setVisible(show)

    def clear(self) -> None:
        if self.strokes or self.drawing is not None:
            self.strokes, self.drawing = [], None
            self.update()
        self.sync()

    def set_dot(self, pos: QPointF | None) -> None:
        if pos == self.dot:
            return
        for p in (self.dot, pos):
            if p is not None:
                self.update(self._dot_rect(p))
        self.dot = pos

    def _dot_rect(self, pos: QPointF) -> QRect:
        r = laser_radius() * HALO + 2
        return QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r).toAlignedRect()

    def _update_path(self, path: QPainterPath) -> None:
        w = pen_width() / 2 + 2
        self.update(path.boundingRect().adjusted(-w, -w, w, w).toAlignedRect())

    # ------------------------------------------------------------ the page's size
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize and obj is self.parentWidget():
            new = obj.size()
            old, self._size = self._size, QSize(new)
            if old.width() > 0 and old.height() > 0 and old != new:
                scale = QTransform.fromScale(new.width() / old.width(),
                                             new.height() / old.height())
                self.strokes = [scale.map(p) for p in self.strokes]
                if self.drawing is not None:
                    self.drawing = scale.map(self.drawing)
            self.setGeometry(obj.rect())
        return False

    # ------------------------------------------------------------ the pen
    def mousePressEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        event.accept()  # the pen on: nothing reaches the views below
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        self.drawing = QPainterPath(pos)
        self.drawing.lineTo(pos + QPointF(0.01, 0))  # a click leaves a dot
        self._update_path(self.drawing)

    def mouseMoveEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        event.accept()
        if self.drawing is None:
            return
        last = self.drawing.currentPosition()
        pos = event.position()
        self.drawing.lineTo(pos)
        w = pen_width() / 2 + 2
        self.update(QRectF(last, pos).normalized().adjusted(-w, -w, w, w).toAlignedRect())

    def mouseReleaseEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        event.accept()
        if self.drawing is not None and event.button() == Qt.MouseButton.LeftButton:
            self.drawing.lineTo(event.position())
            self.strokes.append(self.drawing)
            self._update_path(self.drawing)
            self.drawing = None

    def mouseDoubleClickEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        self.mousePressEvent(event)

    # ------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        paths = self.strokes + ([self.drawing] if self.drawing is not None else [])
        if not paths and self.dot is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if paths:
            pen = QPen(pen_colour(), pen_width(), Qt.PenStyle.SolidLine,
                       Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            for path in paths:
                p.drawPath(path)
        if self.dot is not None:
            self._paint_dot(p, self.dot)
        p.end()

    @staticmethod
    def _paint_dot(p: QPainter, at: QPointF) -> None:
        r = laser_radius()
        halo = QRadialGradient(at, r * HALO)
        for stop, alpha in ((0.0, 200), (1 / HALO, 150), (0.6, 60), (1.0, 0)):
            c = QColor(LASER)
            c.setAlpha(alpha)
            halo.setColorAt(stop, c)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(halo)
        p.drawEllipse(at, r * HALO, r * HALO)
        # The core, ringed in white: it stays a dot over red and orange marks too.
        p.setPen(QPen(QColor("#FFFFFF"), max(1.5, r * 0.22)))
        p.setBrush(QColor(LASER))
        p.drawEllipse(at, r, r)


class Pointer(QObject):
    """The laser and the pen of a window's presentation mode (``presentation.pointer``):
    their actions, keys, and the overlay while presenting."""

    def __init__(self, window: MainWindow, menu: QMenu) -> None:
        super().__init__(window)
        self.window = window
        self.overlay: Overlay | None = None
        self._moment: object = None
        self._cursor_hidden = False
        self._mouse: QPoint | None = None  # where the window last saw the mouse (global)
        self.laser_action = QAction(window)
        self.laser_action.setCheckable(True)
        self.laser_action.toggled.connect(self.set_laser)
        self.pen_action = QAction(window)
        self.pen_action.setCheckable(True)
        self.pen_action.toggled.connect(self.set_pen)
        self.clear_action = QAction(window)
        self.clear_action.triggered.connect(self.clear)
        self.actions = (self.laser_action, self.pen_action, self.clear_action)
        for action in self.actions:
            action.setEnabled(False)  # presenting only
            menu.addAction(action)

    def retranslate(self) -> None:
        # The key after a tab: menus show it as the shortcut (presentation mode reads the
        # keys itself, before any widget; they mean nothing in the window).
        self.laser_action.setText(self.tr("&Laser pointer") + "\tL")
        self.pen_action.setText(self.tr("Pe&n: draw on the picture") + "\tD")
        self.clear_action.setText(self.tr("&Clear the drawing") + "\tC")

    @property
    def laser(self) -> bool:
        return self.overlay is not None and self.overlay.laser

    @property
    def pen(self) -> bool:
        return self.overlay is not None and self.overlay.pen

    # ------------------------------------------------------------ presenting
    def install(self, page: QWidget, moment: object = None) -> Overlay:
        """Presentation mode began: the overlay over ``page``, the actions on."""
        self.remove()
        self.overlay = Overlay(page)
        self._moment = moment
        page.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        page.addActions(list(self.actions))
        for action in self.actions:
            action.setEnabled(True)
        QApplication.instance().installEventFilter(self)
        return self.overlay

    def remove(self) -> None:
        """Presentation mode ends: both off, the drawing gone, the cursor back."""
        for action in self.actions:
            action.blockSignals(True)
            if action.isCheckable():
                action.setChecked(False)
            action.setEnabled(False)
            action.blockSignals(False)
        self._show_cursor()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        overlay, self.overlay = self.overlay, None
        if overlay is not None:
            overlay.laser = overlay.pen = False
            overlay.strokes, overlay.drawing, overlay.dot = [], None, None
            overlay.hide()
            overlay.deleteLater()

    def key(self, key: int) -> bool:
        """A key pressed while presenting (no modifier): True if it was L, D or C."""
        what = _KEYS.get(key)
        if what is None or self.overlay is None:
            return False
        if what == "laser":
            self.laser_action.toggle()
        elif what == "pen":
            self.pen_action.toggle()
        else:
            self.clear()
        return True

    def set_laser(self, on: bool) -> None:
        overlay = self.overlay
        if overlay is None:
            return
        overlay.laser = bool(on)
        if self.laser_action.isChecked() != overlay.laser:
            self.laser_action.setChecked(overlay.laser)
        overlay.sync()
        self._follow_mouse(self._mouse if self._mouse is not None else QCursor.pos())

    def set_pen(self, on: bool) -> None:
        overlay = self.overlay
        if overlay is None:
            return
        overlay.pen = bool(on)
        if not overlay.pen and overlay.drawing is not None:  # a stroke under way ends
            overlay.strokes.append(overlay.drawing)
            overlay.drawing = None
        if self.pen_action.isChecked() != overlay.pen:
            self.pen_action.setChecked(overlay.pen)
        overlay.sync()

    def clear(self) -> None:
        if self.overlay is not None:
            self.overlay.clear()

    def follow(self, moment: object) -> None:
        """What is shown (the step, the cursor, the views) is ``moment``: a new one clears
        the drawing, which was about the one before."""
        if moment != self._moment:
            self._moment = moment
            self.clear()

    # ------------------------------------------------------------ the mouse
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        """Every mouse move over the window (its QWindow sees them all, whichever widget
        is under the mouse and whether it tracks the mouse or not): the laser's dot."""
        overlay = self.overlay
        kind = event.type()
        if overlay is None or kind not in _MOUSE:
            return False
        if kind == QEvent.Type.Leave:
            if obj is self.window.windowHandle():
                self._mouse = None
                overlay.set_dot(None)
                self._show_cursor()
        elif hasattr(event, "globalPosition") and (obj is self.window.windowHandle() or (
                obj.isWidgetType() and obj.window() is self.window)):
            self._mouse = event.globalPosition().toPoint()
            if overlay.laser:
                self._follow_mouse(self._mouse)
        return False

    def _follow_mouse(self, global_pos) -> None:  # type: ignore[no-untyped-def]
        """The dot where the mouse is, over the page; the system's cursor hidden there."""
        overlay = self.overlay
        if overlay is None:
            return
        pos = QPointF(overlay.mapFromGlobal(global_pos))
        if overlay.laser and overlay.isVisible() and overlay.rect().contains(pos.toPoint()):
            overlay.set_dot(pos)
            self._hide_cursor()
        else:
            overlay.set_dot(None)
            self._show_cursor()

    def _hide_cursor(self) -> None:
        if not self._cursor_hidden:
            QApplication.setOverrideCursor(Qt.CursorShape.BlankCursor)
            self._cursor_hidden = True

    def _show_cursor(self) -> None:
        if self._cursor_hidden:
            QApplication.restoreOverrideCursor()
            self._cursor_hidden = False
