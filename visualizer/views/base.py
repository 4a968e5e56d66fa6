"""What every view is: a widget that draws the timeline at its cursor.

A view keeps no history of its own. ``show_state(timeline)`` is called
whenever the cursor moves or events arrive (at most 30 times a second); the
view draws ``timeline.state`` and may ask ``timeline.log`` about events up to
the cursor (``log.indices(conn=..., kinds=..., stop=timeline.cursor + 1)``
answers from columns, without decoding events). Selecting a connection in one
view selects it in every view: the view emits ``connection_selected`` and the
window calls ``select`` on all of them.

Colours and fonts come from ``style`` at paint time. When the theme or the
zoom changes, the window calls ``apply_theme()`` on every view: a view that
set something up once (a style sheet, a widget's font, a pyqtgraph
background) redoes it there; the default lays out and draws again.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Signal
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QWidget

from ..model import Timeline


FRAME_SECONDS = 0.033  # a live window's frame: 30 a second
LIVE_DRAW_SHARE = 0.25  # live, a dear view may take this share of the window's time


def redraw_after(cost: float) -> float:
    """Live, how long to wait before drawing again a view that just took ``cost`` seconds:
    none within half a frame; beyond, four times its cost, so that the window keeps its
    frame rate (it may sample what it draws, never what it records)."""
    return cost / LIVE_DRAW_SHARE if cost > FRAME_SECONDS / 2 else 0.0


class View(QWidget):
    name: ClassVar[str] = ""  # for ``sockscope replay --view NAME``
    # the tab's label: marked with QT_TRANSLATE_NOOP("View", ...), translated by the window
    title: ClassVar[str] = ""

    connection_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.timeline: Timeline | None = None
        self.selected: str | None = None

    def show_state(self, timeline: Timeline) -> None:
        """Draw ``timeline.state`` (the cursor's moment). Subclasses extend."""
        self.timeline = timeline
        self.update()

    def apply_theme(self) -> None:
        """``style`` changed (theme, zoom): redo what was set up once, draw again."""
        if self.timeline is not None:
            self.show_state(self.timeline)
        self.updateGeometry()
        self.update()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def retranslate(self) -> None:
        """The language changed: words a view set once (labels, titles, words it keeps
        from ``show_state``) are read again. Words drawn with ``self.tr`` in
        ``paintEvent`` need nothing: the repaint translates them. A view that keeps
        words forgets them in its override, then calls this."""
        if self.timeline is not None and self.isVisible():
            self.show_state(self.timeline)  # a hidden view does it when it is shown
        self.update()

    def settle(self) -> None:
        """Finish any animation at once (a picture is about to be taken)."""

    def select(self, conn: str | None) -> None:
        """Highlight connection ``conn`` (None: nothing); no signal back."""
        self.selected = conn
        if self.timeline is not None:
            self.show_state(self.timeline)

    def export(self, path: str | Path) -> None:
        """Write the view as it stands to PNG (or JPEG...) or SVG, by the file's suffix."""
        path = Path(path)
        if path.suffix.lower() == ".svg":
            size = self.size() if self.width() > 10 else QSize(1280, 720)
            generator = QSvgGenerator()
            generator.setFileName(str(path))
            generator.setSize(size)
            generator.setViewBox(QRect(0, 0, size.width(), size.height()))
            generator.setTitle(f"SockScope — {self.name}")
            generator.setResolution(self.logicalDpiX())  # text laid out at the widget's size
            painter = QPainter(generator)
            try:
                self.render(painter, QPoint(0, 0))
            finally:
                painter.end()
        elif not self.grab().save(str(path)):
            raise OSError(f"cannot write {path}")
