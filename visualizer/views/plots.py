"""Per-fd plots (pyqtgraph), all up to the cursor.

1. A raster: one dot per server event, x = time since the first event,
   y = fd, coloured by kind. Read from the log's columns, never decoded;
   when the visible range holds more than ``MAX_POINTS`` events they are
   painted into an image instead, one row per fd and one column per two
   screen pixels (what a screen can show anyway).
2. Bytes in / out per fd (recv / send byte counts), as bars beside the raster
   on the same fd axis.
3. Ready-list length per ``epoll_wait``, 4. connections open, 5. the accept
   queue, 6. the engine's CPU use (from ``cpu`` events, when the engine
   emits them) over time.

A dashed vertical line marks the cursor's time in every time plot; zoom and
pan with the mouse (pyqtgraph's default); "Follow the cursor" keeps the
cursor near the right edge. Values that need event data (bytes, ready-list
lengths, queue lengths) come from ``EventSeries`` caches keyed by log index:
each refresh reads only the events it has not read yet, and a cursor moved
back only slices the arrays. The raster and the bars are the heavy plots:
when drawing them costs more than a few milliseconds they are redrawn at
most every few frames (and once more when things settle).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QT_TRANSLATE_NOOP, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QFontMetricsF, QTextOption
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.modes import picture as mode_picture

from ..model import Timeline
from ..model.series import EventSeries
from . import style
from .base import View

RASTER_KINDS = ("accept", "recv", "send", "eagain", "close", "epoll_ctl")
# Drawn on top of each other in this order: a recv at the moment of an epoll_ctl shows.
_RASTER_Z = {"epoll_ctl": 1, "eagain": 2, "accept": 3, "recv": 4, "send": 5, "close": 6}
MAX_POINTS = 5_000  # raster dots drawn as dots; beyond, painted into an image
_RGBA = {k: (*pg.mkColor(style.KIND_COLOURS[k]).getRgb()[:3], 255) for k in _RASTER_Z}
READ_BUDGET_S = 0.010  # decoding event data per call, at most (then next call goes on)
HEAVY_BUDGET_S = 0.006  # heavy plots that cost more than this are throttled

_NO_CPU = QT_TRANSLATE_NOOP("PlotsView", "no CPU samples in this trace")
# The legend names the kinds (translated where drawn; lupdate finds them here).
_LEGEND_WORDS = (QT_TRANSLATE_NOOP("PlotsView", "accept"), QT_TRANSLATE_NOOP("PlotsView", "recv"),
                 QT_TRANSLATE_NOOP("PlotsView", "send"), QT_TRANSLATE_NOOP("PlotsView", "EAGAIN"),
                 QT_TRANSLATE_NOOP("PlotsView", "close"),
                 QT_TRANSLATE_NOOP("PlotsView", "epoll_ctl"))


def _cpu_value(e: Any) -> float:
    """A ``cpu`` event's CPU use in percent of one core."""
    data = e.data
    if "percent" in data:
        return float(data["percent"])
    return float("nan")


def _shrinkable(label: Any) -> None:
    """Let a plot's title be narrower than its text: a narrow window clips a title
    instead of pushing the plots out of sight (pyqtgraph sizes a label to its text
    whenever the text changes or the label is resized)."""
    if getattr(label, "_sockscope_shrinkable", False):
        label.updateMin()
        return
    original = label.updateMin

    def update_min() -> None:
        original()
        label.setMinimumWidth(40)
        hints = getattr(label, "_sizeHint", None)
        if isinstance(hints, dict) and Qt.SizeHint.MinimumSize in hints:
            hints[Qt.SizeHint.MinimumSize] = (40, hints[Qt.SizeHint.MinimumSize][1])

    label.updateMin = update_min
    label._sockscope_shrinkable = True
    update_min()
    label.updateGeometry()


def _nice(value: float) -> float:
    """The round number (1, 1.2, 1.5, 2... times a power of ten) at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * power >= value * (1 - 1e-9):
            return float(step * power)
    return float(10 * power)


def _steps(x: np.ndarray, y: np.ndarray, end: float | None) -> tuple[np.ndarray, np.ndarray]:
    """A step line through (x, y): each value holds until the next; up to ``end``."""
    if not len(x):
        return x, y
    xs = np.repeat(x, 2)[1:]
    ys = np.repeat(y, 2)[:-1]
    if end is not None and end >= x[-1]:
        xs = np.append(xs, end)
        ys = np.append(ys, y[-1])
    return xs, ys


class PlotsView(View):
    name = "plots"
    title = QT_TRANSLATE_NOOP("View", "Plots")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.throttle = True  # tests turn it off to draw every call at once
        self.setAutoFillBackground(True)  # the plots' own background around them too
        self._fill()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(4)
        top = QHBoxLayout()
        self.heading = heading = QLabel()
        heading.setFont(style.font(1.3, bold=True))
        top.addWidget(heading)
        top.addSpacing(16)
        self.legend = QLabel(self._legend_html())
        self.legend.setFont(style.font(1.0))
        # a narrow window cuts the legend rather than the plots (zoomed in, its type is
        # set smaller first: _fit_legend)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._legend_factor = 1.0
        self.legend.setMinimumWidth(50)
        top.addWidget(self.legend, 1)
        self.follow_box = QCheckBox()
        self.follow_box.setFont(style.font(1.0))
        self.follow_box.toggled.connect(self._follow_toggled)
        top.addWidget(self.follow_box)
        self.all_button = QPushButton()
        self.all_button.setFont(style.font(1.0))
        self.all_button.clicked.connect(self.show_all)
        top.addWidget(self.all_button)
        layout.addLayout(top)
        self._top = top
        self._legend_row = QHBoxLayout()  # the legend's own row, when the top one is full
        layout.addLayout(self._legend_row)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(style.BACKGROUND)
        layout.addWidget(self.graphics, 1)
        g = self.graphics
        self.raster = g.addPlot(row=0, col=0, colspan=3)
        self.bytes_plot = g.addPlot(row=0, col=3)
        self.ready_plot = g.addPlot(row=1, col=0)
        self.open_plot = g.addPlot(row=1, col=1)
        self.queue_plot = g.addPlot(row=1, col=2)
        self.cpu_plot = g.addPlot(row=1, col=3)
        g.ci.layout.setRowStretchFactor(0, 3)
        g.ci.layout.setRowStretchFactor(1, 2)
        self.time_plots = [self.raster, self.ready_plot, self.open_plot, self.queue_plot,
                           self.cpu_plot]
        titles = self.titles = self._title_words()
        self._title_size = f"{style.BASE_POINT_SIZE * 1.05:.0f}pt"
        for plot, text in titles.items():
            self._style_plot(plot, text)
        self._set_words()
        for col in range(4):
            g.ci.layout.setColumnStretchFactor(col, 1)
            g.ci.layout.setColumnMinimumWidth(col, 120)
        for plot in self.time_plots:
            plot.getViewBox().enableAutoRange(x=False)
            plot.getViewBox().setMouseEnabled(x=True, y=plot is self.raster)
        self.bytes_plot.setYLink(self.raster)
        self.bytes_plot.getViewBox().setMouseEnabled(x=False, y=True)
        self.raster.getViewBox().setAutoVisible(y=True)
        # x: "all" (0 to the cursor), "manual" (the user zoomed or panned), "follow"
        self.x_mode = "all"

        # Items, made once; every refresh only sets their data.
        self.scatter: dict[str, pg.ScatterPlotItem] = {}
        for kind in RASTER_KINDS:
            item = pg.ScatterPlotItem(size=8, pen=None, brush=pg.mkBrush(style.KIND_COLOURS[kind]),
                                      symbol="o" if kind not in ("close", "accept") else "s",
                                      name=kind)
            item.setZValue(_RASTER_Z[kind])
            self.raster.addItem(item)
            self.scatter[kind] = item
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.hide()
        self.raster.addItem(self.image)
        self.raster_image: np.ndarray | None = None
        self.raster_count = 0
        self.raster_increments = 0  # pictures grown by the new events only
        self._image_fds = (0, 0)
        self._image_frame: tuple[float, float, int, int, int, int] = (0.0, 1.0, 1, 1, 0, 1)
        self._counts: np.ndarray | None = None
        self.bars_in = pg.BarGraphItem(x0=[0], y=[0], height=[0.36], width=[0],
                                       brush=style.KIND_COLOURS["recv"], pen=None)
        self.bars_out = pg.BarGraphItem(x0=[0], y=[0], height=[0.36], width=[0],
                                        brush=style.KIND_COLOURS["send"], pen=None)
        self.bytes_plot.addItem(self.bars_in)
        self.bytes_plot.addItem(self.bars_out)
        self.ready_curve = self.ready_plot.plot(pen=pg.mkPen(style.KIND_COLOURS["epoll_wait"],
                                                             width=1),
                                                symbol="o", symbolSize=6, symbolPen=None,
                                                symbolBrush=style.BLUE)
        self.open_curve = self.open_plot.plot(pen=pg.mkPen(style.DATA, width=3))
        self.queue_curve = self.queue_plot.plot(pen=pg.mkPen(style.WASTE, width=3))
        self.cpu_curve = self.cpu_plot.plot(pen=pg.mkPen(style.SERVER, width=2))
        for curve in (self.ready_curve, self.open_curve, self.queue_curve, self.cpu_curve):
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self.cursor_lines: list[pg.InfiniteLine] = []
        for plot in self.time_plots:
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen(style.FOREGROUND, width=2,
                                                style=Qt.PenStyle.DashLine))
            line.setZValue(20)
            plot.addItem(line, ignoreBounds=True)
            self.cursor_lines.append(line)
        self.selection_bands = []
        for plot in (self.raster, self.bytes_plot):
            band = pg.LinearRegionItem(orientation="horizontal", movable=False,
                                       brush=pg.mkBrush(style.SELECTED), pen=pg.mkPen(None))
            band.setZValue(-10)
            band.hide()
            plot.addItem(band, ignoreBounds=True)
            self.selection_bands.append(band)
        self.messages: dict[Any, pg.TextItem] = {}
        for plot in (self.raster, self.ready_plot, self.open_plot, self.queue_plot,
                     self.cpu_plot):
            text = pg.TextItem(color=style.MUTED, anchor=(0.5, 0.5))
            text.textItem.document().setDefaultTextOption(QTextOption(Qt.AlignmentFlag.AlignCenter))
            text.setFont(style.font(0.95))
            text.hide()
            plot.addItem(text, ignoreBounds=True)
            self.messages[plot] = text
            plot.sigRangeChanged.connect(self._place_messages)
        self.raster.sigXRangeChanged.connect(self._range_moved)
        for plot in self.time_plots:
            # Not pyqtgraph's x link: it aligns plots by screen position, and these
            # plots sit in different columns. One x range for all, set here.
            # A bound method, not a lambda holding self: a cycle through a lambda
            # leaves the view to the garbage collector, and a pyqtgraph scene
            # destroyed from inside a collection crashes Qt.
            plot.getViewBox().sigRangeChangedManually.connect(self._zoomed_manually)
        self.graphics.scene().sigMouseClicked.connect(self._clicked)

        self._bytes = EventSeries(["recv", "send"], value=lambda e: e.data.get("bytes", 0))
        self._ready = EventSeries(["epoll_wait", "wait"],
                                  value=lambda e: len(e.data.get("ready") or ()))
        self._open = EventSeries(["accept", "close"])
        self._queue = EventSeries(["accept_queue"], src=None, value=lambda e: (
            e.data.get("length", 0), e.data.get("backlog", 0)), width=2)
        self._cpu = EventSeries(["cpu"], src=None, value=_cpu_value)
        self._heavy_due = 0.0
        self._deadline = 0.0
        self._bytes_sums: tuple[int, np.ndarray | None, Any] = (0, None, None)
        self._follow_width = 1.0
        self._heavy_key: tuple[Any, ...] | None = None
        self._setting_range = False
        self._catch_up = QTimer(self)
        self._catch_up.setSingleShot(True)
        self._catch_up.timeout.connect(self._redraw_heavy)

        # What is drawn, as plain data (tests read it).
        self.cursor_x: float | None = None
        self.raster_data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.raster_binned = False
        self.bytes_data = (np.empty(0, np.int64), np.empty(0), np.empty(0))
        empty = (np.empty(0), np.empty(0))
        self.ready_data = self.open_data = self.queue_data = self.cpu_data = empty
        self.cpu_message = ""
        self.complete = True
        self.last_draw_ms = 0.0
        self.last_heavy_ms = 0.0

    # ---------------------------------------------------------------- looks
    def _title_words(self) -> dict[Any, str]:
        return {
            self.raster: self.tr("Server events per fd"),
            self.bytes_plot: self.tr("Bytes per fd: <span style='color:{0}'>■ in</span> "
                                     "<span style='color:{1}'>■ out</span>").format(
                style.KIND_COLOURS["recv"], style.KIND_COLOURS["send"]),
            self.ready_plot: self.tr("Ready list per wait"),
            self.open_plot: self.tr("Connections open"),
            self.queue_plot: self.tr("Accept queue"),
            self.cpu_plot: self.tr("Engine CPU %"),
        }

    def _set_words(self) -> None:
        """The words set once: the heading, the buttons, the axes."""
        self.heading.setText(self.tr("Per-fd plots"))
        self.follow_box.setText(self.tr("Follow the cursor"))
        self.all_button.setText(self.tr("Show all"))
        self.raster.setLabel("left", self.tr("fd"))
        self.raster.setLabel("bottom", self.tr("time since the first event"), units="s")
        for plot in self.time_plots[1:]:
            plot.setLabel("bottom", self.tr("time"), units="s")
        self.bytes_plot.setLabel("bottom", self.tr("bytes"), units="B")

    def retranslate(self) -> None:
        self._set_words()
        self.legend.setText(self._legend_html())
        QTimer.singleShot(0, self, self._fit_legend)  # other words, other widths
        self.titles = self._title_words()
        for plot, text in self.titles.items():  # the queue's "(of N)": show_state
            self._title(plot, text)
        super().retranslate()

    def _legend_html(self) -> str:
        f = getattr(self, "_legend_factor", 1.0)
        return "   ".join(
            f'<span style="color:{style.KIND_COLOURS[k]}; '
            f'font-size:{style.BASE_POINT_SIZE * 1.3 * f:.0f}pt">'
            f'●</span>&nbsp;{self.tr(k if k != "eagain" else "EAGAIN")}' for k in RASTER_KINDS)

    def _fit_legend(self) -> None:
        """Zoomed in, the legend's type is set smaller until it fits its place (never
        below 100 %'s size); then a narrow window cuts it."""
        words = "   ".join("● " + self.tr(k if k != "eagain" else "EAGAIN")
                           for k in RASTER_KINDS)
        floor, f = min(1.0, 1.0 / style.ZOOM), 1.0
        # Beside the heading when it fits there (at the smallest type allowed), else on a
        # row of its own under it.
        beside = self.width() - 60 - sum(w.sizeHint().width() for w in
                                         (self.heading, self.follow_box, self.all_button))
        least = QFontMetricsF(style.font(floor)).horizontalAdvance(words) * 1.15
        own_row = beside < least
        in_row = self._legend_row.indexOf(self.legend) >= 0
        if own_row != in_row:
            (self._top if in_row else self._legend_row).removeWidget(self.legend)
            if own_row:
                self._legend_row.addWidget(self.legend)
            else:
                self._top.insertWidget(2, self.legend, 1)
        room = self.width() - 24 if own_row else beside
        for _ in range(12):  # bounded
            if QFontMetricsF(style.font(f)).horizontalAdvance(words) * 1.15 <= room \
                    or f <= floor:
                break
            f = max(floor, f * 0.9)
        if f != self._legend_factor:
            self._legend_factor = f
            self.legend.setFont(style.font(f))
            self.legend.setText(self._legend_html())

    def _width_title_size(self) -> str:
        # Narrow windows get smaller titles (a full-screen projector gets the large ones);
        # the zoom makes every title larger: the width is measured in zoomed type.
        width = self.width() / style.ZOOM
        scale = 1.05 if width >= 1180 else 0.9 if width >= 950 else 0.75
        # and never so large that a small plot's title ("Accept queue (of 4096)", some 22
        # characters of bold type) runs into its neighbour's: a quarter of the width each
        fits = max(60.0, self.width() / 4 - 24) / (22 * 0.66) * 0.75  # points
        return f"{min(style.BASE_POINT_SIZE * scale, max(fits, 8.0)):.0f}pt"

    def _fill(self) -> None:
        pal = self.palette()
        pal.setColor(self.backgroundRole(), pg.mkColor(style.BACKGROUND))
        self.setPalette(pal)

    def apply_theme(self) -> None:
        """The theme or the zoom changed: pyqtgraph keeps colours and fonts in its items."""
        self._fill()
        for k in _RASTER_Z:
            _RGBA[k] = (*pg.mkColor(style.KIND_COLOURS[k]).getRgb()[:3], 255)
        self.heading.setFont(style.font(1.3, bold=True))
        self._legend_factor = 1.0
        self.legend.setText(self._legend_html())
        for w in (self.legend, self.follow_box, self.all_button):
            w.setFont(style.font(1.0))
        QTimer.singleShot(0, self, self._fit_legend)
        self.graphics.setBackground(style.BACKGROUND)
        self._title_size = self._width_title_size()
        for plot, text in self.titles.items():
            self._style_plot(plot, plot.titleLabel.text or text)
        for kind, item in self.scatter.items():
            item.setBrush(pg.mkBrush(style.KIND_COLOURS[kind]))
        self.bars_in.setOpts(brush=style.KIND_COLOURS["recv"])
        self.bars_out.setOpts(brush=style.KIND_COLOURS["send"])
        for curve, colour, width in ((self.ready_curve, style.KIND_COLOURS["epoll_wait"], 1),
                                     (self.open_curve, style.DATA, 3),
                                     (self.queue_curve, style.WASTE, 3),
                                     (self.cpu_curve, style.SERVER, 2)):
            curve.setPen(pg.mkPen(colour, width=style.pen(width)))
        for line in self.cursor_lines:
            line.setPen(pg.mkPen(style.FOREGROUND, width=style.pen(2),
                                 style=Qt.PenStyle.DashLine))
        for band in self.selection_bands:
            band.setBrush(pg.mkBrush(style.SELECTED))
        for text in self.messages.values():
            text.setColor(style.MUTED)
            text.setFont(style.font(0.95))
        self._heavy_key = None  # the raster's picture is painted in the kinds' colours
        super().apply_theme()

    def _style_plot(self, plot: Any, title: str) -> None:
        plot.setTitle(title, color=style.FOREGROUND, size=self._title_size, bold=True)
        _shrinkable(plot.titleLabel)
        plot.showGrid(x=True, y=True, alpha=0.25)
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen(style.MUTED))
            axis.setTextPen(pg.mkPen(style.FOREGROUND))
            axis.setTickFont(style.font(0.8))
            axis.setTickDensity(1.0 / style.ZOOM)  # larger type, fewer ticks: no run-ons
            axis.label.setFont(style.font(0.85))
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.getViewBox().setDefaultPadding(0.04)

    def sizeHint(self) -> QSize:
        return QSize(1280, 720)

    # ---------------------------------------------------------------- drawing
    def show_state(self, timeline: Timeline) -> None:
        started = time.perf_counter()
        self.timeline = timeline
        log, cursor = timeline.log, timeline.cursor
        if cursor < 0 or not len(log):
            self._clear()
            return
        times = log.times
        t0 = int(times[0])
        self.cursor_x = (int(times[cursor]) - t0) / 1e9
        for line in self.cursor_lines:
            line.setValue(self.cursor_x)
        # Reading event data (a huge log's first time) gets READ_BUDGET_S per call.
        self._deadline = started + READ_BUDGET_S
        complete = self._draw_ready(log, cursor, t0)
        complete &= self._draw_open(log, cursor, t0)
        complete &= self._draw_queue(log, cursor, t0)
        complete &= self._draw_cpu(log, cursor, t0)
        complete &= self._bytes.update(log, cursor + 1, self._deadline).complete
        self._set_x()
        self._heavy(force=not self.throttle)
        self.complete = complete
        if not self.complete and not self._catch_up.isActive():
            self._catch_up.start(40)  # a huge log: keep reading, a slice per call
        self._draw_selection(timeline)
        self._place_messages()
        self.last_draw_ms = (time.perf_counter() - started) * 1e3

    def _clear(self) -> None:
        self.cursor_x = None
        for line in self.cursor_lines:
            line.setValue(0)
        for item in self.scatter.values():
            item.setData([], [])
        self.raster_data = {}
        self.raster_image = None
        self.image.hide()
        empty = (np.empty(0), np.empty(0))
        self.ready_data = self.open_data = self.queue_data = self.cpu_data = empty
        for curve in (self.ready_curve, self.open_curve, self.queue_curve, self.cpu_curve):
            curve.setData([], [])
        self.bytes_data = (np.empty(0, np.int64), np.empty(0), np.empty(0))
        self._set_bars(*self.bytes_data)
        self._message(self.raster, self.tr("no events yet"))

    def _message(self, plot: Any, text: str | None) -> None:
        item = self.messages[plot]
        if text:
            item.setText(text)
            item.show()
        else:
            item.hide()

    def _place_messages(self, *_: Any) -> None:
        for plot, item in self.messages.items():
            if item.isVisible():
                item.setTextWidth(max(60.0, plot.getViewBox().width() - 16))
                (x0, x1), (y0, y1) = plot.viewRange()
                item.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    @staticmethod
    def _y_from_zero(plot: Any, y: np.ndarray, least: float = 1.0) -> None:
        """y from 0 to a round number above the data (unchanged while it fits: an
        axis that moves every frame costs a repaint and reads badly)."""
        top = float(np.nanmax(y)) if len(y) and np.isfinite(y).any() else 0.0
        top = _nice(max(least, top) * 1.08)
        if plot.viewRange()[1] != [0, top]:
            plot.setYRange(0, top, padding=0)

    def _title(self, plot: Any, text: str) -> None:
        if plot.titleLabel.text != text:  # a new title re-lays out the whole grid
            plot.setTitle(text, size=self._title_size)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        QTimer.singleShot(0, self, self._fit_legend)  # once the layout gave it its width
        size = self._width_title_size()
        if size != self._title_size:
            self._title_size = size
            for plot in self.titles:
                plot.setTitle(plot.titleLabel.text, size=size)

    # light plots: a few points per refresh, cached values
    def _draw_ready(self, log: Any, cursor: int, t0: int) -> bool:
        s = self._ready.update(log, cursor + 1, self._deadline)
        k = s.count(cursor)
        x = (s.t[:k] - t0) / 1e9
        y = s.v[:k, 0].copy()
        self.ready_data = (x, y)
        self.ready_curve.setData(x, y)
        symbol = "o" if k <= 300 else None
        if self.ready_curve.opts["symbol"] != symbol:
            self.ready_curve.setSymbol(symbol)
        self._y_from_zero(self.ready_plot, y)
        said = self.timeline.state.mode if self.timeline else {}
        mode = said.get("mode") or ""
        picture = said.get("picture") or mode_picture(mode)
        if k:
            self._message(self.ready_plot, None)
        elif picture and picture != "readiness":
            self._message(self.ready_plot, self.tr("no epoll_wait in {0} mode").format(mode))
        else:
            self._message(self.ready_plot, self.tr("no epoll_wait yet"))
        return s.complete

    def _draw_open(self, log: Any, cursor: int, t0: int) -> bool:
        s = self._open.update(log, cursor + 1)
        k = s.count(cursor)
        accept = log.kinds.codes.get("accept", -1)
        step = np.where(s.kind[:k] == accept, 1, -1)
        x = (s.t[:k] - t0) / 1e9
        y = np.cumsum(step).astype(np.float64)
        self.open_data = (x, y)
        self.open_curve.setData(*_steps(x, y, self.cursor_x))
        self._y_from_zero(self.open_plot, y)
        self._message(self.open_plot, None if k else self.tr("no connection yet"))
        return True

    def _draw_queue(self, log: Any, cursor: int, t0: int) -> bool:
        s = self._queue.update(log, cursor + 1, self._deadline)
        k = s.count(cursor)
        x = (s.t[:k] - t0) / 1e9
        y = s.v[:k, 0].copy()
        self.queue_data = (x, y)
        self.queue_curve.setData(*_steps(x, y, self.cursor_x))
        self._y_from_zero(self.queue_plot, y)
        if k:
            backlog = int(s.v[k - 1, 1])
            self._title(self.queue_plot, self.tr("Accept queue (of {0})").format(backlog))
            self._message(self.queue_plot, None)
        else:
            self._title(self.queue_plot, self.titles[self.queue_plot])
            self._message(self.queue_plot, self.tr("no accept-queue samples "
                                                   "(kernel states off?)"))
        return s.complete

    def _draw_cpu(self, log: Any, cursor: int, t0: int) -> bool:
        s = self._cpu.update(log, cursor + 1, self._deadline)
        k = s.count(cursor)
        x = (s.t[:k] - t0) / 1e9
        y = s.v[:k, 0].copy()
        self.cpu_data = (x, y)
        self.cpu_curve.setData(x, y, connect="finite")
        self._y_from_zero(self.cpu_plot, y, least=100.0)
        if "cpu" not in log.kinds.codes:
            self.cpu_message = self.tr(_NO_CPU)
        elif not k:
            self.cpu_message = self.tr("no CPU sample yet")
        else:
            self.cpu_message = ""
        self._message(self.cpu_plot, self.cpu_message or None)
        return s.complete

    # heavy plots: the raster and the bars
    def _heavy(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now < self._heavy_due:
            if not self._catch_up.isActive():
                self._catch_up.start(max(1, int((self._heavy_due - now) * 1000)))
            return
        started = time.perf_counter()
        self._redraw_heavy(check=False)
        cost = time.perf_counter() - started
        self.last_heavy_ms = cost * 1e3
        self._heavy_due = started + (3 * cost if cost > HEAVY_BUDGET_S else 0.0)

    def _redraw_heavy(self, check: bool = True) -> None:
        tl = self.timeline
        if tl is None or tl.cursor < 0 or not len(tl.log) or not self.isVisible():
            return  # another tab is shown: it will be drawn when it is shown again
        if check and not self.complete:  # the catch-up timer: the light plots read on
            self.show_state(tl)
            return
        log, cursor = tl.log, tl.cursor
        t0 = int(log.times[0])
        self._draw_raster(log, cursor, t0)
        self._draw_bytes(log, cursor)

    @staticmethod
    def _raster_points(log: Any, a: int, b: int, t0: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
        """x (s), fd and kind code of the server's fd events in ``[a, b)``: columns only."""
        codes = {k: log.kinds.codes[k] for k in RASTER_KINDS if k in log.kinds.codes}
        src_code = log.sources.codes.get("server", -1)
        kinds = log.column("kind")[a:b]
        fds = log.column("fd")[a:b]
        mask = (log.column("src")[a:b] == src_code) & (fds >= 0) & \
            np.isin(kinds, list(codes.values()))
        sel = np.flatnonzero(mask)
        x = (log.times[a:b][sel] - t0) / 1e9
        return x, fds[sel].astype(np.int64), kinds[sel], codes

    def _draw_raster(self, log: Any, cursor: int, t0: int) -> None:
        stop = cursor + 1
        times = log.times[:stop]
        x0, x1 = self.raster.viewRange()[0]
        width = x1 - x0
        a = int(np.searchsorted(times, t0 + (x0 - 0.05 * width) * 1e9, side="left"))
        b = int(np.searchsorted(times, t0 + (x1 + 0.05 * width) * 1e9, side="right"))
        vb = self.raster.getViewBox()
        cols = max(100, int(vb.width()) // 2)
        max_rows = max(50, int(vb.height()))
        frame = (id(log), t0, a, x0, x1, cols, max_rows)  # what the picture's pixels mean
        stamp = self._stamp(log, b)
        if (frame, b, stamp) == self._heavy_key:
            return
        last, self._heavy_key = self._heavy_key, (frame, b, stamp)
        # The same picture a few events on or back: add or take away those events.
        if self.raster_binned and last is not None and last[0] == frame and \
                len(log) >= last[1] and self._stamp(log, last[1]) == last[2] and \
                abs(b - last[1]) < max(50_000, b // 4):
            lo, hi = sorted((last[1], b))
            x, y, k, codes = self._raster_points(log, lo, hi, t0)
            sign = 1 if b > last[1] else -1
            count = self.raster_count + sign * len(x)
            fmin, fmax = self._image_fds
            if count > MAX_POINTS and (not len(y) or (int(y.min()) >= fmin
                                                       and int(y.max()) <= fmax)):
                self._count_into_image(x, y, k, codes, sign)
                self.raster_count = count
                self.raster_increments += 1
                self.image.setImage(self.raster_image, autoLevels=False)
                return
        x, y, k, codes = self._raster_points(log, a, b, t0)
        self.raster_count = len(x)
        self.raster_binned = len(x) > MAX_POINTS
        self.raster_data = {}
        if self.raster_binned:
            # Too many dots for a scatter: paint them into an image, one column per
            # two screen pixels and one row per fd, or per pixel when fds outnumber
            # pixels (what the screen shows anyway). Counts per (kind, row, column)
            # let the cursor step either way by adding or taking away events.
            fmin, fmax = int(y.min()), int(y.max())
            self._image_fds = (fmin, fmax)
            rows = min(fmax - fmin + 1, max_rows)
            self._image_frame = (x0, x1, cols, rows, fmin, fmax - fmin + 1)
            self._counts = np.zeros((len(RASTER_KINDS), rows, cols), np.int32)
            self.raster_image = np.zeros((rows, cols, 4), np.uint8)
            self._count_into_image(x, y, k, codes, 1)
            self.image.setImage(self.raster_image, autoLevels=False)
            self.image.setRect(QRectF(x0, fmin - 0.5, x1 - x0, fmax - fmin + 1))
            self.image.show()
            for kind, item in self.scatter.items():
                item.setData([], [])
                self.raster_data[kind] = (np.empty(0), np.empty(0))
        else:
            self.raster_image = None
            self._counts = None
            self.image.hide()
            for kind, item in self.scatter.items():
                code = codes.get(kind)
                if code is None:
                    item.setData([], [])
                    self.raster_data[kind] = (np.empty(0), np.empty(0))
                    continue
                m = k == code
                xs, ys = x[m], y[m].astype(np.float64)
                self.raster_data[kind] = (xs, ys)
                item.setData(xs, ys)
        self._message(self.raster, None if len(x) else self.tr("no server event on an fd yet"))

    @staticmethod
    def _stamp(log: Any, n: int) -> tuple[int, int] | None:
        """The key (t_ns, seq) of event ``n - 1``: unchanged while nothing was merged before."""
        return (int(log.times[n - 1]), int(log.column("seq")[n - 1])) if n > 0 else None

    def _count_into_image(self, x: np.ndarray, y: np.ndarray, k: np.ndarray,
                          codes: dict[str, int], sign: int) -> None:
        """Add (or take away) events in the per-pixel counts; repaint the pixels touched."""
        counts, image = self._counts, self.raster_image
        assert counts is not None and image is not None
        x0, x1, cols, rows, fmin, span = self._image_frame
        col = np.clip(((x - x0) / max(x1 - x0, 1e-12) * cols).astype(np.int64), 0, cols - 1)
        row = (y - fmin) if rows == span else (y - fmin) * rows // span
        lookup = np.full(max(codes.values(), default=0) + 1, -1, np.int64)
        for i, kind in enumerate(RASTER_KINDS):
            if kind in codes:
                lookup[codes[kind]] = i
        flat = (lookup[k] * rows + row) * cols + col
        if len(flat) > counts.size // 8:  # many: one pass over everything
            counts += (sign * np.bincount(flat, minlength=counts.size)).reshape(
                counts.shape).astype(np.int32)
            image[:] = 0
            for kind in sorted(_RASTER_Z, key=_RASTER_Z.__getitem__):  # the top kinds last
                image[counts[RASTER_KINDS.index(kind)] > 0] = _RGBA[kind]
            return
        np.add.at(counts.reshape(-1), flat, sign)
        r, c = row, col  # a pixel named twice is painted twice: the same colour
        image[r, c] = 0
        for kind in sorted(_RASTER_Z, key=_RASTER_Z.__getitem__):
            present = counts[RASTER_KINDS.index(kind), r, c] > 0
            image[r[present], c[present]] = _RGBA[kind]

    def _draw_bytes(self, log: Any, cursor: int) -> None:
        s = self._bytes  # read in show_state, within the reading budget
        k = s.count(cursor)
        recv = log.kinds.codes.get("recv", -1)
        done, sums, mark = self._bytes_sums
        if sums is None or k > s.n or (done and (done > s.n or (int(s.t[done - 1]),
                                                                int(s.seq[done - 1])) != mark)):
            done, sums = 0, np.zeros((3, 0))  # new, or the log changed: from the start
        if k < done and done - k > k:
            done, sums = 0, np.zeros((3, 0))  # far back: counting up is less work
        lo, hi, sign = (done, k, 1) if k >= done else (k, done, -1)
        fd = s.fd[lo:hi].astype(np.int64)
        ok = fd >= 0
        fd = fd[ok]
        if len(fd):
            nbytes = s.v[lo:hi, 0][ok]
            is_recv = s.kind[lo:hi][ok] == recv
            size = max(int(fd.max()) + 1, sums.shape[1])
            grown = np.zeros((3, size))
            grown[:, :sums.shape[1]] = sums
            grown[0] += sign * np.bincount(fd[is_recv], weights=nbytes[is_recv], minlength=size)
            grown[1] += sign * np.bincount(fd[~is_recv], weights=nbytes[~is_recv],
                                           minlength=size)
            grown[2] += sign * np.bincount(fd, minlength=size)
            sums = grown
        self._bytes_sums = (k, sums, (int(s.t[k - 1]), int(s.seq[k - 1])) if k else None)
        fds = np.flatnonzero(sums[2])
        self.bytes_data = (fds, sums[0][fds], sums[1][fds])
        self._set_bars(*self.bytes_data)

    def _set_bars(self, fds: np.ndarray, b_in: np.ndarray, b_out: np.ndarray) -> None:
        if not len(fds):  # BarGraphItem wants at least one bar: an invisible one
            fds, b_in, b_out = np.zeros(1), np.zeros(1), np.zeros(1)
        y = fds.astype(np.float64)
        self.bars_in.setOpts(x0=np.zeros(len(y)), y=y + 0.2, height=0.38, width=b_in)
        self.bars_out.setOpts(x0=np.zeros(len(y)), y=y - 0.2, height=0.38, width=b_out)

    # ---------------------------------------------------------------- cursor, selection
    def _follow_toggled(self, on: bool) -> None:
        if on:
            x0, x1 = self.raster.viewRange()[0]
            width = x1 - x0
            if self.x_mode == "all":  # from the whole trace: look at the last quarter
                width = max(width / 4, 1e-3)
            self._follow_width = width
            self.x_mode = "follow"
        elif self.x_mode == "follow":
            self.x_mode = "manual"
        self._set_x()
        if self.timeline is not None:
            self._heavy(force=True)

    def show_all(self) -> None:
        """Back to the whole trace up to the cursor (and stop following)."""
        self.x_mode = "all"
        self.follow_box.blockSignals(True)
        self.follow_box.setChecked(False)
        self.follow_box.blockSignals(False)
        self._set_x(force=True)
        if self.timeline is not None:
            self._heavy(force=True)

    def _zoomed_manually(self, _mask: object) -> None:
        box = self.sender()
        plot = next((p for p in self.time_plots if p.getViewBox() is box), None)
        if plot is not None:
            self._zoomed(plot)

    def _zoomed(self, plot: Any) -> None:
        """The mouse zoomed or panned a plot: every time plot takes its x range."""
        x0, x1 = plot.viewRange()[0]
        if self.x_mode == "follow":
            self._follow_width = x1 - x0
            self._set_x()
            return
        self.x_mode = "manual"
        self._set_x_range(x0, x1)

    def _set_x(self, force: bool = False) -> None:
        cx = self.cursor_x
        if cx is None or self.x_mode == "manual":
            return
        if self.x_mode == "follow":
            width = self._follow_width
            lo, hi = cx - 0.85 * width, cx + 0.15 * width
        else:
            # 0 to a round number past the cursor, changed only when the cursor
            # passes it (or goes back below half of it): axes stay still.
            lo, hi = self.raster.viewRange()[0]
            if force or not (lo < 0 and 0.5 * hi <= cx <= hi * 0.98):
                hi = _nice(max(cx, 1e-6) * 1.1)
                lo = -0.01 * hi
            else:
                return
        self._set_x_range(lo, hi)

    def _set_x_range(self, lo: float, hi: float) -> None:
        self._setting_range = True
        try:
            for plot in self.time_plots:
                plot.setXRange(lo, hi, padding=0)
        finally:
            self._setting_range = False

    def _range_moved(self, *_: Any) -> None:
        if self._setting_range or self.timeline is None:
            return
        # The user zoomed or panned: redraw the raster for what is now visible (soon).
        self._heavy_key = None
        if not self._catch_up.isActive():
            self._catch_up.start(30)

    def _draw_selection(self, timeline: Timeline) -> None:
        conn = timeline.state.connections.get(self.selected) if self.selected else None
        fd = conn.fd if conn is not None and conn.fd >= 0 else None
        for band in self.selection_bands:
            if fd is None:
                band.hide()
            else:
                band.setRegion((fd - 0.5, fd + 0.5))
                band.show()
        self.selected_fd = fd

    def _clicked(self, event: Any) -> None:
        tl = self.timeline
        if tl is None:
            return
        pos = event.scenePos()
        for plot in (self.raster, self.bytes_plot):
            vb = plot.getViewBox()
            if vb.sceneBoundingRect().contains(pos):
                fd = round(vb.mapSceneToView(pos).y())
                conn = tl.state.fds.get(fd)
                if conn:
                    self.connection_selected.emit(conn)
                return

    def select(self, conn: str | None) -> None:
        self.selected = conn
        if self.timeline is not None:
            self._draw_selection(self.timeline)
