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
from PySide6.QtGui import QFont, QFontMetricsF, QImage, QPainter, QTextOption
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
# Events of one fd that happen close together (a short connection seen over seconds:
# accept, recv, send, close within a pixel or two) must all stay visible where they
# happened. So no marker hides another: recv sits a little above the fd's line and send
# a little below it (where the bytes plot draws "in" and "out"); the others sit on the
# line, one inside the other, smaller ones on top: a large diamond (epoll_ctl, its tips
# show left and right), the dots of recv and send, a square (accept) over their inner
# halves, a small dot (EAGAIN) in the square, and close a hollow square around them all.
# kind: (symbol, size in marker units, filled, z)
_MARKERS = {"epoll_ctl": ("d", 2.0, True, 1), "recv": ("o", 1.0, True, 2),
            "send": ("o", 1.0, True, 2.5), "accept": ("s", 1.1, True, 3),
            "eagain": ("o", 0.6, True, 4), "close": ("s", 2.2, False, 5)}
_RASTER_Z = {k: m[3] for k, m in _MARKERS.items()}
_LANE = {"recv": 1.0, "send": -1.0}  # above (+) or below (-) the fd's line
LANE = 0.2  # of a row: where the bytes plot puts its "in" and "out" bars
_LEGEND_GLYPH = {"accept": "■", "close": "□", "epoll_ctl": "◆"}  # others: ●
MAX_POINTS = 5_000  # raster dots drawn as dots; beyond, painted into an image
# The image keeps every kind's colour: each fd's row is cut into up to six stripes and a
# pixel where several kinds happened shows each of them, in this order from the top
# (when the stripes are fewer than the kinds there, the first ones of this order win:
# a close never hides an accept, a recv or a send).
IMAGE_ORDER = ("accept", "recv", "send", "close", "eagain", "epoll_ctl")
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


class _Axis(pg.AxisItem):
    """pyqtgraph's axis, with ticks a projected plot can read:

    - tick labels never run into each other: the major spacing grows (1, 2, 5 times a
      power of ten) until each label has its own room, at any zoom;
    - an ``integer`` axis (fds, counts) has ticks on whole numbers only;
    - drawn straight onto the view, not through a cached QPicture: what the text audit
      (visualizer.textaudit) measures is where the labels really are.
    """

    def __init__(self, orientation: str, integer: bool = False) -> None:
        super().__init__(orientation)
        self.integer = integer
        self._specs: Any = None
        # Labels of the minor ticks only where they leave a good gap. The room for the
        # labels grows, never shrinks, until the type changes (setTickFont): a layout
        # that passes through a tiny size must not take it away just before a picture.
        self.setStyle(textFillLimits=[(0, 0.45), (2, 0.35), (4, 0.25), (6, 0.15)],
                      autoReduceTextSpace=False)

    def setTickFont(self, font: QFont | None) -> None:  # noqa: N802
        super().setTickFont(font)
        # Room for labels of this type at once (one line of them; three digits beside
        # an axis), not once a first picture measured them: the labels' room grows
        # from there if they need more (measure, paint), never shrinks.
        fm = QFontMetricsF(font or QFont())
        self.textHeight = fm.height() * 0.8  # what generateDrawSpecs counts
        self.textWidth = fm.horizontalAdvance("888")
        if self.orientation in ("left", "right"):
            self._updateWidth()
        else:
            self._updateHeight()
        self.measure()

    def _label_room(self, lo: float, hi: float, spacing: float) -> float:
        """Pixels one tick label needs along the axis (its text and a gap)."""
        fm = QFontMetricsF(self.style["tickFont"] or QFont())
        if self.orientation in ("left", "right"):
            return fm.height() * 1.3
        values = [lo, hi, (lo + hi) / 2, np.floor(hi / spacing) * spacing]
        texts = self.tickStrings(values, self.autoSIPrefixScale * self.scale, spacing)
        return max(fm.horizontalAdvance(t) for t in texts) + fm.horizontalAdvance("M")

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> Any:  # noqa: N802
        levels = super().tickSpacing(minVal, maxVal, size)
        if not levels or self._tickSpacing is not None:
            return levels
        span = abs(maxVal - minVal)
        if span <= 0 or size <= 0:
            return levels
        major = float(levels[0][0])
        if self.integer:
            major = max(major, 1.0)
        for _ in range(12):  # bounded: 1, 2, 5, 10... times the start
            if major * size / span >= self._label_room(minVal, maxVal, major):
                break
            digits = major / 10 ** np.floor(np.log10(major))
            major *= 2.5 if round(digits) == 2 else 2.0
        minor = [(float(s), o) for s, o in levels[1:]
                 if s < major and (not self.integer or s >= 1)
                 and abs(major / s - round(major / s)) < 1e-6]
        return [(major, 0.0), *minor]

    def measure(self, painter: QPainter | None = None) -> None:
        """Work out the labels now (not at the next paint): an axis whose labels need more
        room widens before it is drawn, instead of drawing once without them."""
        if self.picture is not None or getattr(self, "_linkedView", None) is None \
                or self.linkedView() is None or self.scene() is None \
                or not self.scene().views():
            return
        own = painter is None
        image = QImage(1, 1, QImage.Format.Format_ARGB32) if own else None
        if own:
            painter = QPainter(image)
        assert painter is not None
        painter.save()
        try:
            if self.style["tickFont"]:
                painter.setFont(self.style["tickFont"])
            self.generateDrawSpecs(painter)
        finally:
            painter.restore()
            if own:
                painter.end()

    def resizeEvent(self, ev: Any = None) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self.measure()

    def linkedViewChanged(self, view: Any, newRange: Any = None) -> None:  # noqa: N802,N803
        super().linkedViewChanged(view, newRange)
        self.measure()

    def paint(self, p: Any, opt: Any, widget: Any) -> None:
        if self.picture is None:  # pyqtgraph's mark that the axis changed
            self.picture = True
            p.save()
            try:
                if self.style["tickFont"]:
                    p.setFont(self.style["tickFont"])
                # (labels wider than the axis make it widen, and mark it changed again:
                # it is drawn anew once it has its width)
                self._specs = self.generateDrawSpecs(p)
            finally:
                p.restore()
        if self._specs is not None:
            p.save()
            try:
                self.drawPicture(p, *self._specs)
            finally:
                p.restore()


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

        def axes(integer: bool) -> dict[str, _Axis]:
            return {"left": _Axis("left", integer=integer), "bottom": _Axis("bottom")}

        self.raster = g.addPlot(row=0, col=0, colspan=3, axisItems=axes(True))
        self.bytes_plot = g.addPlot(row=0, col=3, axisItems=axes(True))
        self.ready_plot = g.addPlot(row=1, col=0, axisItems=axes(True))
        self.open_plot = g.addPlot(row=1, col=1, axisItems=axes(True))
        self.queue_plot = g.addPlot(row=1, col=2, axisItems=axes(True))
        self.cpu_plot = g.addPlot(row=1, col=3, axisItems=axes(False))
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
        # bytes from 0 to a round number above the most (never a range around 0 in
        # milli-bytes when there is nothing yet): set by _draw_bytes
        self.bytes_plot.getViewBox().enableAutoRange(x=False)
        self.bytes_plot.setXRange(0, 100, padding=0)
        self.raster.getViewBox().setAutoVisible(y=True)
        # x: "all" (0 to the cursor), "manual" (the user zoomed or panned), "follow"
        self.x_mode = "all"

        # Items, made once; every refresh only sets their data.
        self.scatter: dict[str, pg.ScatterPlotItem] = {}
        self.marker_unit = 8.0  # px: a recv's dot; the others in proportion (_MARKERS)
        self.lane = LANE  # fd units: recv above the fd's line, send below
        for kind in RASTER_KINDS:
            item = pg.ScatterPlotItem(name=kind)
            item.setZValue(_RASTER_Z[kind])
            self.raster.addItem(item)
            self.scatter[kind] = item
        self._style_markers()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.hide()
        self.raster.addItem(self.image)
        # Idle sweeps folded into one event: shaded over the time they took (no dot per
        # EAGAIN was recorded there, so none is drawn), behind the dots.
        self.idle_shade = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], pen=None)
        self.idle_shade.setZValue(-1)
        self.raster.addItem(self.idle_shade, ignoreBounds=True)
        self.idle_spans: list[tuple[float, float, int]] = []  # (from s, to s, sweeps)
        self._legend_idle = False
        self.raster_image: np.ndarray | None = None
        self.image_stripes = 1  # image rows per fd (a stripe per kind there, up to six)
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
        self.cpu_curve = self.cpu_plot.plot(pen=pg.mkPen(style.SERVER, width=3))
        self.cpu_curve.setFillLevel(0.0)
        for curve in (self.ready_curve, self.open_curve, self.queue_curve, self.cpu_curve):
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        # Lines to read a value against: one whole core (100 %) in the CPU plot, a full
        # accept queue (backlog + 1 connections) in the queue's.
        self.core_line = pg.InfiniteLine(pos=100.0, angle=0, movable=False)
        self.cpu_plot.addItem(self.core_line, ignoreBounds=True)
        self.full_line = pg.InfiniteLine(pos=0.0, angle=0, movable=False)
        self.full_line.hide()
        self.queue_plot.addItem(self.full_line, ignoreBounds=True)
        self.reference_labels: dict[Any, pg.TextItem] = {}
        for plot in (self.cpu_plot, self.queue_plot):
            label = pg.TextItem(anchor=(0, 1))
            label.hide()
            plot.addItem(label, ignoreBounds=True)
            self.reference_labels[plot] = label
        # The value at the cursor, a dot on the cursor's line (a step there hides under it).
        self.now_dots: dict[Any, pg.ScatterPlotItem] = {}
        for plot in (self.open_plot, self.queue_plot, self.cpu_plot):
            dot = pg.ScatterPlotItem()
            dot.setZValue(25)  # above the cursor's line
            plot.addItem(dot, ignoreBounds=True)
            self.now_dots[plot] = dot
        self._style_lines()
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
        for plot in (self.raster, self.bytes_plot, self.ready_plot, self.open_plot,
                     self.queue_plot, self.cpu_plot):
            text = pg.TextItem(color=style.MUTED, anchor=(0.5, 0.5))
            text.textItem.document().setDefaultTextOption(QTextOption(Qt.AlignmentFlag.AlignCenter))
            text.setFont(style.font(0.95))
            text.hide()
            plot.addItem(text, ignoreBounds=True)
            self.messages[plot] = text
            plot.sigRangeChanged.connect(self._place_messages)
        self.raster.sigXRangeChanged.connect(self._range_moved)
        self.raster.sigYRangeChanged.connect(self._fit_markers)
        self.raster.getViewBox().sigResized.connect(self._fit_markers)
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
        # +1 an accept, -1 the close that closes the socket (a forking server's parent
        # closing its copy closes nothing: last is false)
        self._open = EventSeries(["accept", "close"], value=lambda e: (
            1.0 if e.kind == "accept" else 0.0 if e.data.get("last") is False else -1.0))
        self._queue = EventSeries(["accept_queue"], src=None, value=lambda e: (
            e.data.get("length", 0), e.data.get("backlog", 0)), width=2)
        self._cpu = EventSeries(["cpu"], src=None, value=_cpu_value)
        # The non-blocking loop's idle sweeps, folded into one poll_sweep each stretch
        # (engine/modes/nonblocking.py): (sweeps, since_ns), since -1 for a plain sweep.
        self._folded = EventSeries(["poll_sweep"], value=lambda e: (
            float(e.data.get("sweeps") or 1),
            float(e.data["since_ns"]) if e.data.get("since_ns") is not None else -1.0), width=2)
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
        self.cpu_median: float | None = None
        self.queue_full: int | None = None  # the queue's "full" line (backlog + 1), if drawn
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
        words = [f'<span style="color:{style.KIND_COLOURS[k]}; '
                 f'font-size:{style.BASE_POINT_SIZE * 1.3 * f:.0f}pt">'
                 f'{_LEGEND_GLYPH.get(k, "●")}</span>&nbsp;'
                 f'{self.tr(k if k != "eagain" else "EAGAIN")}' for k in RASTER_KINDS]
        if getattr(self, "_legend_idle", False):
            colour = pg.mkColor(style.KIND_COLOURS["eagain"])
            words.append(f'<span style="background-color:rgba({colour.red()},{colour.green()},'
                         f'{colour.blue()},0.25)">&nbsp;&nbsp;&nbsp;&nbsp;</span>&nbsp;'
                         + self.tr("idle sweeps (EAGAIN)"))
        return "   ".join(words)

    def _fit_legend(self) -> None:
        """Zoomed in, the legend's type is set smaller until it fits its place (never
        below 100 %'s size); then a narrow window cuts it."""
        words = "   ".join(_LEGEND_GLYPH.get(k, "●") + " " + self.tr(k if k != "eagain"
                                                                 else "EAGAIN")
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
        # and never so large that a small plot's title ("Accept queue (backlog 4096)", some 27
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
        self._legend_factor = 1.0
        self.legend.setText(self._legend_html())
        for w in (self.legend, self.follow_box, self.all_button):
            w.setFont(style.font(1.0))
        QTimer.singleShot(0, self, self._fit_legend)
        self.graphics.setBackground(style.BACKGROUND)
        self._title_size = self._width_title_size()
        for plot, text in self.titles.items():
            self._style_plot(plot, plot.titleLabel.text or text)
        self._cramped = None  # the zoom changed: the fonts above are arranged again
        self._arrange()
        self._style_markers()
        self.bars_in.setOpts(brush=style.KIND_COLOURS["recv"])
        self.bars_out.setOpts(brush=style.KIND_COLOURS["send"])
        for curve, colour, width in ((self.ready_curve, style.KIND_COLOURS["epoll_wait"], 1),
                                     (self.open_curve, style.DATA, 3),
                                     (self.queue_curve, style.WASTE, 3),
                                     (self.cpu_curve, style.SERVER, 3)):
            curve.setPen(pg.mkPen(colour, width=style.pen(width)))
        self._style_lines()
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

    def _style_lines(self) -> None:
        """The CPU's filled curve, the reference lines, their words, the cursor dots."""
        fill = pg.mkColor(style.SERVER)
        fill.setAlpha(60)
        self.cpu_curve.setBrush(pg.mkBrush(fill))
        self.core_line.setPen(pg.mkPen(style.MUTED, width=style.pen(1.5),
                                       style=Qt.PenStyle.DashLine))
        self.full_line.setPen(pg.mkPen(style.VERMILION, width=style.pen(2),
                                       style=Qt.PenStyle.DotLine))
        for plot, label in self.reference_labels.items():
            label.setColor(style.MUTED if plot is self.cpu_plot else style.VERMILION)
            label.setFont(style.font(0.6 if getattr(self, "_cramped", 0) else 0.8))
        size = 9 * style.ZOOM ** 0.5
        for plot, dot in self.now_dots.items():
            colour = {self.open_plot: style.DATA, self.queue_plot: style.WASTE,
                      self.cpu_plot: style.SERVER}[plot]
            dot.setSymbol("o")
            dot.setSize(size)
            dot.setBrush(pg.mkBrush(colour))
            dot.setPen(pg.mkPen(style.BACKGROUND, width=1.5))

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
        complete &= self._draw_folded(log, cursor, t0)
        self._set_x()
        self._heavy(force=not self.throttle)
        self.complete = complete
        if not self.complete and not self._catch_up.isActive():
            self._catch_up.start(40)  # a huge log: keep reading, a slice per call
        self._draw_selection(timeline)
        self._place_messages()
        self._measure_axes()
        self._relayout()
        self.last_draw_ms = (time.perf_counter() - started) * 1e3

    def _measure_axes(self) -> None:
        image = QImage(1, 1, QImage.Format.Format_ARGB32)
        painter = QPainter(image)
        try:
            for plot in self.titles:
                for side in ("left", "bottom"):
                    axis = plot.getAxis(side)
                    if isinstance(axis, _Axis):
                        axis.measure(painter)
        finally:
            painter.end()

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
        self._message(self.bytes_plot, None)
        for plot in self.now_dots:
            self._now(plot, None, 0.0)
        for plot, line in ((self.queue_plot, self.full_line), (self.cpu_plot, self.core_line)):
            self._reference(plot, line, None, "")
        self._message(self.raster, self.tr("no events yet"))
        self.idle_spans = []
        self.idle_shade.hide()

    def _message(self, plot: Any, text: str | None) -> None:
        item = self.messages[plot]
        if text:
            if getattr(item, "_sockscope_text", None) != text:
                item.setText(text)
                item._sockscope_text = text
            item.show()
        else:
            item.hide()

    def _place_messages(self, *_: Any) -> None:
        for plot, item in self.messages.items():
            if item.isVisible():
                self._fit_message(plot, item)
                (x0, x1), (y0, y1) = plot.viewRange()
                item.setPos((x0 + x1) / 2, (y0 + y1) / 2)
        for plot in self.reference_labels:
            self._place_reference(plot)

    @staticmethod
    def _fit_message(plot: Any, item: Any) -> None:
        """A message's words inside its plot: the type set smaller (to 60 %) until
        they fit its box, wrapped at spaces; a small plot zoomed in says them small."""
        vb = plot.getViewBox()
        width, height = max(40.0, vb.width() - 12), max(12.0, vb.height() - 6)
        item.setTextWidth(width)
        doc = item.textItem.document()
        text = getattr(item, "_sockscope_text", None)
        if text is not None and item.textItem.toPlainText() != text:
            item.setText(text)  # its whole words again (an earlier fit cut them)
        scale = 0.95
        for _ in range(8):  # bounded: 0.95 down to 0.6
            item.setFont(style.font(scale))
            if doc.size().height() <= height and doc.idealWidth() <= width + 1:
                return
            if scale <= 0.6:
                break
            scale = max(0.6, scale * 0.9)
        # still too large: one line, cut with "…"
        whole = item.textItem.toPlainText()
        margins = 2 * doc.documentMargin() + 4
        item.setText(QFontMetricsF(style.font(scale)).elidedText(
            whole, Qt.TextElideMode.ElideRight, width - margins))
        item._sockscope_text = whole

    @staticmethod
    def _y_from_zero(plot: Any, y: np.ndarray, least: float = 1.0) -> float:
        """y from 0 to a round number above the data (unchanged while it fits: an
        axis that moves every frame costs a repaint and reads badly). A little room
        below 0, so that a line at 0 is seen above the axis, not in it; the top."""
        top = float(np.nanmax(y)) if len(y) and np.isfinite(y).any() else 0.0
        top = _nice(max(least, top) * 1.08)
        want = [-0.04 * top, top]
        if not np.allclose(plot.viewRange()[1], want, rtol=0, atol=1e-9 * top):
            plot.setYRange(*want, padding=0)
        return top

    def _title(self, plot: Any, text: str) -> None:
        if plot.titleLabel.text != text:  # a new title re-lays out the whole grid
            plot.setTitle(text, size=self._title_size)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._arrange()
        QTimer.singleShot(0, self, self._fit_legend)  # once the layout gave it its width
        size = self._width_title_size()
        if size != self._title_size:
            self._title_size = size
            for plot in self.titles:
                plot.setTitle(plot.titleLabel.text, size=size)
        self._relayout()

    # Below this height (in unzoomed pixels: a slide zoomed in) the small plots would be
    # slivers under their titles and axes: they get as much height as the raster, and
    # the heading is set no larger than the rest.
    # Very cramped (a slide at 200 % with a banner above the view), the heading steps
    # aside.
    CRAMPED_HEIGHT = 450
    VERY_CRAMPED_HEIGHT = 250

    @property
    def cramped(self) -> int:
        """0: room enough; 1: cramped; 2: very cramped."""
        logical = self.height() / style.ZOOM
        return 2 if logical < self.VERY_CRAMPED_HEIGHT else 1 if logical < \
            self.CRAMPED_HEIGHT else 0

    def _arrange(self) -> None:
        cramped = self.cramped
        if cramped == getattr(self, "_cramped", None):
            return
        self._cramped = cramped
        rows = self.graphics.ci.layout
        rows.setRowStretchFactor(0, 1 if cramped else 3)
        rows.setRowStretchFactor(1, 1 if cramped else 2)
        # Cramped, the row above the plots takes one line: the heading, the buttons (for
        # the lecturer's hand, not the hall) and the legend beside them (_fit_legend).
        controls = max(1.0 / style.ZOOM, 0.6) if cramped else 1.0
        self.heading.setFont(style.font(max(1.3 / style.ZOOM, 0.8) if cramped else 1.3,
                                        bold=True))
        self.heading.setVisible(cramped < 2)
        for w in (self.follow_box, self.all_button):
            w.setFont(style.font(controls))
        for plot in self.titles:
            plot.getAxis("bottom").label.setFont(style.font(0.65 if cramped else 0.85))
            plot.getAxis("left").label.setFont(style.font(0.65 if cramped else 0.85))
        for label in self.reference_labels.values():
            label.setFont(style.font(0.6 if cramped else 0.8))
        self._relayout()
        QTimer.singleShot(0, self, self._fit_legend)

    def _relayout(self) -> None:
        """The plots' layouts now (axes of another size), not at the next turn of the
        event loop: a picture may be taken before it."""
        for plot in self.titles:
            plot.layout.activate()
        self.graphics.ci.layout.activate()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        # drawn while hidden (another tab in front, a window not shown yet), the raster
        # and the bars were left for now: draw them once the layout has run
        if self.timeline is not None:
            QTimer.singleShot(0, self, self._redraw_heavy)

    def settle(self) -> None:
        """A picture is about to be taken: the raster and the bars as of now."""
        if self.timeline is not None and self.isVisible():
            self._heavy(force=True)
            self._place_messages()
            self._measure_axes()
            self._relayout()

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
        s = self._open.update(log, cursor + 1, self._deadline)
        k = s.count(cursor)
        step = s.v[:k, 0]
        x = (s.t[:k] - t0) / 1e9
        y = np.cumsum(step).astype(np.float64)
        self.open_data = (x, y)
        # none open from the first event on (where the time axis starts)
        self.open_curve.setData(*_steps(np.append(0.0, x), np.append(0.0, y), self.cursor_x))
        self._y_from_zero(self.open_plot, y)
        self._now(self.open_plot, self.cursor_x, float(y[-1]) if k else 0.0)
        self._message(self.open_plot, None if k else self.tr("no connection yet"))
        return s.complete

    def _draw_queue(self, log: Any, cursor: int, t0: int) -> bool:
        s = self._queue.update(log, cursor + 1, self._deadline)
        k = s.count(cursor)
        x = (s.t[:k] - t0) / 1e9
        y = s.v[:k, 0].copy()
        self.queue_data = (x, y)
        self.queue_curve.setData(*_steps(x, y, self.cursor_x))
        full = None
        if k:
            backlog = int(s.v[k - 1, 1])
            # Linux queues backlog + 1 connections, then drops SYNs: "full" where the
            # queue comes near it (not a line far above a queue of a few in 4096)
            if backlog >= 0 and backlog + 1 <= max(4.0, 2.0 * float(np.nanmax(y))):
                full = backlog + 1
        self.queue_full = full
        self._y_from_zero(self.queue_plot, y, least=float(full or 1))
        self._reference(self.queue_plot, self.full_line, full,
                        self.tr("full: backlog + 1") if full else "")
        self._now(self.queue_plot, self.cursor_x if k else None, float(y[-1]) if k else 0.0)
        if k:
            self._title(self.queue_plot, self.tr("Accept queue (backlog {0})").format(backlog))
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
        finite = y[np.isfinite(y)]
        self._reference(self.cpu_plot, self.core_line, 100.0 if len(finite) else None,
                        self.tr("one core"))
        self.cpu_median = float(np.median(finite)) if len(finite) else None
        if self.cpu_median is not None:
            # the number the lessons say ("a median N % of a core"), big enough to read
            self._title(self.cpu_plot, self.tr("Engine CPU % (median {0})").format(
                f"{self.cpu_median:.0f}"))
            self._now(self.cpu_plot, float(x[np.isfinite(y)][-1]), float(finite[-1]))
        else:
            self._title(self.cpu_plot, self.titles[self.cpu_plot])
            self._now(self.cpu_plot, None, 0.0)
        if "cpu" not in log.kinds.codes:
            self.cpu_message = self.tr(_NO_CPU)
        elif not k:
            self.cpu_message = self.tr("no CPU sample yet")
        else:
            self.cpu_message = ""
        self._message(self.cpu_plot, self.cpu_message or None)
        return s.complete

    def _now(self, plot: Any, x: float | None, y: float) -> None:
        dot = self.now_dots[plot]
        if x is None:
            dot.setData([], [])
        else:
            dot.setData([x], [y])

    def _reference(self, plot: Any, line: Any, value: float | None, text: str) -> None:
        label = self.reference_labels[plot]
        if value is None:
            line.hide()
            label.hide()
            return
        line.setValue(value)
        line.show()
        if label.textItem.toPlainText() != text:
            label.setText(text)
        self._place_reference(plot)

    def _place_reference(self, plot: Any) -> None:
        label = self.reference_labels[plot]
        line = self.core_line if plot is self.cpu_plot else self.full_line
        if not line.isVisible():
            return
        # its words where the plot has room for them (three lines of them), and not on
        # the plot's own message
        room = plot.getViewBox().height() >= 3 * QFontMetricsF(label.textItem.font()).height()
        label.setVisible(room and not self.messages[plot].isVisible())
        if label.isVisible():
            (x0, _), (_, y1) = plot.viewRange()
            label.setPos(x0, line.value())
            # above the line when there is room, else under it
            label.setAnchor((0, 1) if line.value() < 0.8 * y1 else (0, 0))

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

    def _draw_folded(self, log: Any, cursor: int, t0: int) -> bool:
        """Shade the idle sweeps the engine folded into one event each (every try an
        EAGAIN, no event per try): the raster shows when the loop swept in vain."""
        series = self._folded.update(log, cursor + 1, self._deadline)
        k = series.count(cursor)
        v, t = series.v[:k], series.t[:k]
        folded = v[:, 1] >= 0 if k else np.zeros(0, bool)
        since = (v[folded, 1] - t0) / 1e9 if k else np.empty(0)
        until = (t[folded] - t0) / 1e9 if k else np.empty(0)
        self.idle_spans = [(float(a), float(b), int(n)) for a, b, n in
                           zip(since.tolist(), until.tolist(), v[folded, 0].tolist())]
        if len(since):
            # What the screen can show: spans closer than a pixel apart merged (an idle
            # loop folds a stretch every 0.1 s: thousands in a long run).
            x0, x1 = self.raster.getViewBox().viewRange()[0]
            pixel = max(1e-9, (x1 - x0) / max(1.0, self.raster.getViewBox().width()))
            a, b = since, np.maximum(until, since)
            starts = np.concatenate([[True], a[1:] - b[:-1] > pixel])
            a, b = a[starts], np.maximum.reduceat(b, np.flatnonzero(starts))
            colour = pg.mkColor(style.KIND_COLOURS["eagain"])
            colour.setAlpha(60)
            lo, hi = self.raster.getViewBox().viewRange()[1]
            self.idle_shade.setOpts(x0=a, x1=b, y0=np.full(len(a), lo - (hi - lo)),
                                    y1=np.full(len(a), hi + (hi - lo)), brush=colour, pen=None)
            self.idle_shade.show()
        else:
            self.idle_shade.hide()
        if bool(self.idle_spans) != self._legend_idle:
            self._legend_idle = bool(self.idle_spans)
            self.legend.setText(self._legend_html())
        return series.complete

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
            # an fd's row cut into stripes (one per kind there), when it has the pixels
            stripes = max(1, min(len(IMAGE_ORDER), max_rows // rows)) \
                if rows == fmax - fmin + 1 else 1
            self._image_frame = (x0, x1, cols, rows, fmin, fmax - fmin + 1)
            self.image_stripes = stripes
            self._counts = np.zeros((len(IMAGE_ORDER), rows, cols), np.int32)
            self.raster_image = np.zeros((rows * stripes, cols, 4), np.uint8)
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
            self._fit_markers(place=False)
            self._place_markers()
        self._message(self.raster, None if len(x) else self.tr("no server event on an fd yet"))

    # markers: their sizes and lanes follow the rows' height on screen
    def _style_markers(self) -> None:
        u = self.marker_unit
        for kind, item in self.scatter.items():
            symbol, size, filled, _ = _MARKERS[kind]
            colour = style.KIND_COLOURS[kind]
            item.setSymbol(symbol)
            item.setSize(size * u)
            if filled:
                item.setPen(pg.mkPen(None))
                item.setBrush(pg.mkBrush(colour))
            else:  # a ring: what it surrounds shows through
                item.setPen(pg.mkPen(colour, width=max(2.0, 0.25 * u)))
                item.setBrush(pg.mkBrush(None))

    def _place_markers(self) -> None:
        empty = (np.empty(0), np.empty(0))
        for kind, item in self.scatter.items():
            xs, ys = self.raster_data.get(kind, empty)
            item.setData(xs, ys + _LANE.get(kind, 0.0) * self.lane)

    def _fit_markers(self, *_: Any, place: bool = True) -> None:
        """A marker unit from the height of one fd's row on screen (smaller when the rows
        are thin, larger zoomed in), and the lanes of recv and send far enough apart that
        neither hides the other."""
        vb = self.raster.getViewBox()
        y0, y1 = self.raster.viewRange()[1]
        row = vb.height() / max(y1 - y0, 1e-9)  # px per fd
        if row <= 0:
            return
        unit = float(np.clip(row * 0.6, 6.0, 8.0 * style.ZOOM ** 0.5))
        # (never past the row's own half: the lanes move with the rows' height, and data
        # that grew the y range would shrink the rows and push the lanes out again)
        lane = min(0.42, max(LANE, 0.45 * unit / row))
        if abs(unit - self.marker_unit) <= 0.1 * self.marker_unit and \
                abs(lane - self.lane) <= 0.15 * self.lane:
            return  # (a change this small would only make the range move again)
        self.marker_unit, self.lane = unit, lane
        self._style_markers()
        if place and not self.raster_binned:
            self._place_markers()

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
        for i, kind in enumerate(IMAGE_ORDER):
            if kind in codes:
                lookup[codes[kind]] = i
        flat = (lookup[k] * rows + row) * cols + col
        if len(flat) > counts.size // 8:  # many: one pass over everything
            counts += (sign * np.bincount(flat, minlength=counts.size)).reshape(
                counts.shape).astype(np.int32)
            self._paint_cells(counts > 0, slice(None), slice(None))
            return
        np.add.at(counts.reshape(-1), flat, sign)
        # a pixel named twice is painted twice: the same colours
        self._paint_cells(counts[:, row, col] > 0, row, col)

    def _paint_cells(self, present: np.ndarray, r: Any, c: Any) -> None:
        """Paint cells (fd row ``r``, column ``c``; arrays, or slices for all) from which
        kinds are ``present`` there (kinds first): each kind present gets its share of
        the row's stripes, in ``IMAGE_ORDER`` from the top."""
        image = self.raster_image
        assert image is not None
        stripes = self.image_stripes
        n = present.sum(axis=0)
        rank = np.cumsum(present, axis=0) - 1
        colours = np.array([_RGBA[kind] for kind in IMAGE_ORDER], np.uint8)
        rows = image.shape[0] // stripes
        cells = image.reshape(rows, stripes, image.shape[1], 4)
        for s in range(stripes):
            target = (s * n) // stripes  # which of the kinds there this stripe shows
            paint = np.zeros(n.shape + (4,), np.uint8)
            for i in range(len(IMAGE_ORDER)):
                paint[present[i] & (rank[i] == target)] = colours[i]
            # stripe 0 is the top one; the image's row 0 is drawn at the bottom
            if isinstance(r, slice):
                cells[:, stripes - 1 - s, :] = paint
            else:
                cells[r, stripes - 1 - s, c] = paint

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
        most = float(max(sums[0].max(initial=0), sums[1].max(initial=0)))
        # whole bytes from 0: at least 0 to 100 B (no milli-bytes, no negative bytes)
        top = _nice(max(100.0, most) * 1.08)
        if not np.allclose(self.bytes_plot.viewRange()[0], [0, top], rtol=0, atol=1e-9 * top):
            self.bytes_plot.setXRange(0, top, padding=0)
        self._message(self.bytes_plot, None if most > 0 else
                      self.tr("no bytes received or sent yet"))

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
