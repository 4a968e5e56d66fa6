"""Connection lifecycles: every connection a bar on one time axis, short vs keep-alive.

What is drawn (the bars, their TIME_WAIT tails and request marks, the two
bands and their costs, the time axis with its breaks) is computed without Qt
by ``visualizer.model.lifecycle``, whose docstring says the rules; this view
lays it out and paints it. With many connections each band draws the latest
rows that fit, and says "+M earlier ..., not drawn" beside its title; the costs
count every connection. A band that needs few rows takes no more height than
they need; the other takes the rest. In a small window, or when the tables
would leave out rows that one line of costs would not, the costs go on one
line under each band's title instead of a table beside it. Counts are said in
the singular or the plural ("1 connection", "2 connections").

Every size comes from the type (``style.font``, which carries the zoom): the
rows are as tall as their labels need (tall enough to name the closing states
on the bar when there is room, no smaller than the port's label when there is
not), and so are the legend, the headers, the tables and the axis. A text that
still does not fit is said shorter, set smaller or left out, never cut.

The time axis: ticks (time since the first event) on its first line, spaced
by their labels' width; each stretch cut out is a break (a pale stripe the bars
run through, and a "//" on the axis) with the time it skipped said in words on
the second line. The moments the closing states change are points of the axis
too, so that a CLOSE_WAIT that lasts is seen where it begins and runs on
through the break that stands for its wait. A state only the segments or the
calls gave (neither the kernel's poll nor its tracepoint saw or confirmed it)
is marked "≈", as the TIME_WAIT countdown is.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QT_TRANSLATE_NOOP, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPen,
    QPolygonF,
    QTextLayout,
)
from PySide6.QtWidgets import QWidget

from ..model.lifecycle import GROUPS, KEEP_ALIVE, SHORT, Bar, Costs, Lifecycles, Run, TimeAxis
from ..model.text import fmt_duration
from . import style
from .base import View

# The closing states' names as the strips show them (the widest decide the rows).
STATE_SAMPLE = ("CLOSE_WAIT", "FIN_WAIT_1", "FIN_WAIT_2", "LAST_ACK", "CLOSING")
APPROX = "≈"  # a state (or a countdown) the kernel did not report: inferred
BODY_PAD = 0.1  # of a row, above and below its bar
_LEFT_TOP = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
_LEFT_MID = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_RIGHT_MID = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CENTRE = Qt.AlignmentFlag.AlignCenter


class LifecycleView(View):
    name = "lifecycle"
    title = QT_TRANSLATE_NOOP("View", "Lifecycle")
    # Where the handshake counts come from (Costs.handshake_origin, joined by " + ").
    ORIGINS = (QT_TRANSLATE_NOOP("LifecycleView", "captured"),
               QT_TRANSLATE_NOOP("LifecycleView", "derived"))

    # Sizes at 100 % before the first measure; ``_measure`` sets each from the type.
    EM = 22.0
    LEGEND_H = 35.0
    AXIS_H = 60.0
    AXIS_GAP = 8.0
    TICK = 6.0
    FOOTER_H = 33.0
    LABEL_W = 80.0
    TABLE_W = 372.0
    BREAK_W = 66.0
    HEADER_H = 31.0
    COSTS_H = 24.0
    BAND_PAD = 6.0
    TABLE_LINE = 24.0
    TABLE_LINES = 6
    ROW_HEIGHTS: tuple[float, ...] = (44.0, 38.0, 32.0, 26.0, 22.0)
    MARGIN = 12.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(640, 360)
        self._lifecycles = Lifecycles()  # the bars and costs at the cursor (no Qt)
        self._key: tuple | None = None
        # What is drawn (plain data, for tests and for painting).
        self.bars: list[Bar] = []
        self.costs: dict[str, Costs] = {g: Costs() for g in GROUPS}
        self.groups: dict[str, list[str]] = {g: [] for g in GROUPS}  # every conn, by group
        self.cursor_ns: int | None = None
        self.trace_start_ns = 0
        self.gaps: list[tuple[int, int, int]] = []  # the capture's: (from_ns, until_ns, frames)
        self.gap_rects: list[QRectF] = []  # as painted
        self.axis: TimeAxis | None = None
        self.ticks: list[tuple[float, str, bool]] = []  # as painted: x, label, labelled
        self.legend: list[tuple[QRectF, QRectF]] = []  # as painted: each key and its word
        self._layout_key: tuple | None = None
        self._measured: tuple | None = None
        self._bands: list[tuple[str, QRectF]] = []
        self._hidden: dict[str, int] = {}
        self._header_h: dict[str, float] = {g: self.HEADER_H for g in GROUPS}
        self.row_h = self.ROW_HEIGHTS[0]  # the rows' height as laid out
        self.compact = False  # laid out for a small window (costs on one line per band)
        self._seen_key: tuple | None = None
        self._strip_scales: tuple[float, ...] = (0.75, 0.65)
        self._seen: tuple[set, set] = (set(), set())
        self._measure()

    # ------------------------------------------------------------ model
    def show_state(self, timeline) -> None:  # type: ignore[no-untyped-def]
        self.timeline = timeline
        log = timeline.log
        key = (id(log), len(log), timeline.cursor, self.selected)
        if key != self._key:
            self._key = key
            self._compute(timeline)
            self._layout_key = None
        self.update()

    def _compute(self, timeline) -> None:  # type: ignore[no-untyped-def]
        m = self._lifecycles
        m.compute(timeline, self.selected)
        self.bars, self.costs, self.groups = m.bars, m.costs, m.groups
        self.cursor_ns, self.trace_start_ns = m.cursor_ns, m.trace_start_ns
        self.gaps = m.gaps

    def retranslate(self) -> None:
        self._layout_key = self._measured = None  # the table's width follows its words
        super().retranslate()

    # ------------------------------------------------------------ sizes from the type
    def apply_theme(self) -> None:
        """The zoom scales the type: the rows, margins and tables sized from it follow."""
        self._measured = None
        self._measure()
        self._layout_key = None
        super().apply_theme()

    def _measure(self) -> None:
        """Every height and width the layout uses, from the fonts (which carry the zoom)."""
        key = (style.BASE_POINT_SIZE,)
        if key == self._measured:
            return
        self._measured = key
        em = _line(style.font(1.0))
        self.EM = em
        self.MARGIN = max(12.0, 0.5 * em)
        self.LEGEND_H = _line(style.font(1.0)) + 0.6 * em
        self.HEADER_H = _line(style.font(1.15, bold=True)) + 0.3 * em
        self.COSTS_H = _line(style.font(0.9, bold=True)) + 0.2 * em
        self.BAND_PAD = 0.2 * em
        self.TABLE_LINE = max(_line(style.font(0.95)),
                              _line(style.font(1.05, bold=True, mono=True))) + 0.1 * em
        self.AXIS_GAP = 0.35 * em  # between the lowest row and the axis line
        self.TICK = 0.3 * em
        self.AXIS_H = self.AXIS_GAP + self.TICK + 0.1 * em + 2 * _line(style.font(0.85)) \
            + 0.2 * em
        self.FOOTER_H = _line(style.font(1.0, bold=True)) + 0.5 * em
        self.LABEL_W = QFontMetricsF(style.font(1.0, bold=True, mono=True)).horizontalAdvance(
            "00000") + 1.1 * em
        # Rows: tall enough to name the closing states in each half of the bar, down
        # to as tall as the port's label in the smaller type.
        usable = 1 - 2 * BODY_PAD

        def named(scale: float) -> float:  # a row whose half-strips hold the names
            font = style.font(scale, bold=True)
            need = max(_line_ink(font, APPROX + s)[0].height() for s in STATE_SAMPLE)
            return 2 * (need + 3) / usable

        port = _line(style.font(1.0, mono=True))
        least = _line(style.font(0.85, mono=True)) + 0.1 * em
        largest = max(named(0.75), port + 1.0 * em)
        heights = {largest, max(named(0.65), least),
                   max(port + 0.2 * em, least), least}
        step = largest
        for _ in range(8):  # and a few between, so that a band shrinks its rows gently
            step *= 0.88
            if step <= least:
                break
            heights.add(step)
        self.ROW_HEIGHTS = tuple(sorted((h for h in heights if h >= least), reverse=True))

    def _table_width(self) -> float:
        """As wide as the widest line of the cost table (its label, in this language, and
        its value): the usual ones, and those the costs at the cursor have."""
        fl = QFontMetricsF(style.font(0.95))
        fv = QFontMetricsF(style.font(1.05, bold=True, mono=True))
        usual = [Costs(handshake_counted=1, handshake_origin="captured", connections=1,
                       still_open=1)]
        widest = 0.0
        for c in usual + list(self.costs.values()):
            for k, (label, _) in enumerate(self._cost_lines(c)):
                value = "888.8 ms" if k == 4 else "8888"  # a duration, or a count
                widest = max(widest, fl.horizontalAdvance(label) + fv.horizontalAdvance(value))
        return widest + 0.8 * self.EM + 24

    @property
    def canvas_scale(self) -> float:
        """1, or less when zoomed in on a small screen: the whole picture is set smaller
        rather than bands with no room for two rows, never below 100 %'s type."""
        z = style.ZOOM
        if z <= 1.0:
            return 1.0
        self._measure()
        need_h = self.LEGEND_H + self.AXIS_H + self.FOOTER_H \
            + 2 * (self.HEADER_H + self.COSTS_H + 2 * self.ROW_HEIGHTS[-1] + self.BAND_PAD)
        need_w = 760.0 * z
        fit = min(1.0, max(self.height(), 1) / need_h, max(self.width(), 1) / need_w)
        return max(1.0 / z, fit)

    def _size(self) -> tuple[float, float]:
        """The picture's size in its own units (the widget's, over ``canvas_scale``)."""
        k = self.canvas_scale
        return self.width() / k, self.height() / k

    # ------------------------------------------------------------ layout
    def _layout(self) -> None:
        key = (self._key, self.width(), self.height(), style.ZOOM, style.BASE_POINT_SIZE)
        if key == self._layout_key:
            return
        self._layout_key = key
        self._measure()
        w, h = self._size()
        m = self.MARGIN
        top = self.LEGEND_H
        bottom = h - self.AXIS_H - self.FOOTER_H
        avail = bottom - top
        self.TABLE_W = self._table_width()
        table_h = self.TABLE_LINES * self.TABLE_LINE + 0.5 * self.EM
        by_group = {g: [b for b in self.bars if b.group == g] for g in GROUPS}
        pad = self.BAND_PAD

        def plan(compact: bool) -> tuple[dict[str, float], dict[str, float], float, int]:
            """Each band's header and height, the rows' height, and how many rows of
            connections are not drawn: the largest rows that show every connection, else
            the smallest, as many as fit."""
            # Compact: the costs on a line under the title (none for an empty band: its
            # title says "none yet"). The "+M earlier" note is on the title's line too.
            headers = {g: self.HEADER_H + (self.COSTS_H if compact and self.costs[g].connections
                                           else 0.0) for g in GROUPS}
            floor = 0.0 if compact else table_h + 0.3 * self.EM  # beside its cost table

            def need(g: str, row_h: float) -> float:
                return max(floor, headers[g] + len(by_group[g]) * row_h + pad)

            row_h = self.ROW_HEIGHTS[-1]
            for row_h in self.ROW_HEIGHTS:
                if sum(need(g, row_h) for g in GROUPS) <= avail:
                    break
            heights = {g: need(g, row_h) for g in GROUPS}
            half = avail / 2
            small = min(GROUPS, key=lambda g: heights[g])
            big = next(g for g in GROUPS if g != small)
            if all(v <= half for v in heights.values()):  # equal bands where possible
                heights = {g: half for g in GROUPS}
            elif heights[small] <= half:  # the other takes the rest (all of its rows,
                heights = {small: heights[small], big: avail - heights[small]}  # or all that fit)
            else:  # neither fits in half: half each, the latest rows of each
                heights = {g: half for g in GROUPS}
            left_out = sum(max(len(by_group[g]) - self._rows_in(heights[g] - headers[g], row_h),
                               0) for g in GROUPS)
            return headers, heights, row_h, left_out

        # Wide: a cost table beside each band. Compact (a small window, or more rows than
        # the tables leave room for): one line of costs under each band's title, and the
        # bars get the whole width.
        wide_plot = w - 2 * m - self.LABEL_W - self.TABLE_W - 18
        self.compact = wide_plot < 0.5 * w or avail < 2 * (table_h + 0.3 * self.EM) + 8
        headers, heights, row_h, left_out = plan(self.compact)
        if not self.compact and left_out:
            lines = plan(True)
            if lines[3] < left_out:
                self.compact = True
                headers, heights, row_h, left_out = lines
        plot_x0 = m + self.LABEL_W
        plot_x1 = w - m - 14 if self.compact else w - m - self.TABLE_W - 18
        y = top
        self._bands = []
        self._hidden = {}
        self._header_h = headers
        self.row_h = row_h
        for b in self.bars:
            b.h = 0.0
        for g in GROUPS:
            rect = QRectF(m, y, w - 2 * m, heights[g])
            self._bands.append((g, rect))
            bars = by_group[g]
            keep = self._rows_in(heights[g] - headers[g], row_h)
            shown = bars[len(bars) - keep:] if keep < len(bars) else bars
            self._hidden[g] = self.costs[g].earlier + len(bars) - len(shown)
            ry = y + headers[g]
            for b in shown:
                b.y, b.h = ry, row_h
                ry += row_h
            y += heights[g]
        # The shared time axis over the drawn bars: where each begins and ends, its
        # requests, its TIME_WAIT, and where its closing states change.
        drawn = [b for b in self.bars if b.h > 0]
        now = self.cursor_ns or 0
        points: list[int] = []
        for b in drawn:
            points.append(b.start_ns)
            points.extend(b.requests)
            points.extend(t for t in (b.end_ns, b.tail_start_ns, b.tw_end_ns) if t is not None)
            points.extend(t for _, _, t0, t1 in b.closing for t in (t0, t1) if t is not None)
        t_start = min(points) if points else now - 1
        self.BREAK_W = 3.0 * self.EM
        # Where the capture lost frames, among the bars: to scale, never cut out as quiet.
        self.axis = TimeAxis(points, t_start, now, plot_x0, plot_x1,
                             break_w=self.BREAK_W, min_w=5.5 * self.EM,
                             keep=[(lo, hi) for lo, hi, _ in self.gaps])
        for b in drawn:
            b.x0 = self.axis.x(b.start_ns)
            b.x1 = self.axis.x(b.end_ns if b.end_ns is not None else now)
        self._plot = (plot_x0, plot_x1, top, bottom)

    def _rows_in(self, room: float, row_h: float) -> int:
        """How many rows of ``row_h`` a band holds with ``room`` under its header."""
        return max(int((room - self.BAND_PAD + 0.01) // row_h), 0)

    @property
    def drawn_bars(self) -> list[Bar]:
        """The bars on screen, top to bottom (laid out for the current size)."""
        self._layout()
        return [b for b in self.bars if b.h > 0]

    def hidden(self, group: str) -> int:
        """Connections of ``group`` not drawn (the "+M earlier" line)."""
        self._layout()
        return self._hidden.get(group, 0)

    def band(self, group: str) -> QRectF:
        """The band of ``group`` (the picture's units), laid out for the current size."""
        self._layout()
        return next(r for g, r in self._bands if g == group)

    def rows_top(self, group: str) -> float:
        """Where the band's rows begin (under its title, and its costs when compact)."""
        return self.band(group).top() + self._header_h[group]

    # ------------------------------------------------------------ input
    def mousePressEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        k = self.canvas_scale
        conn = self.conn_at(event.position().x() / k, event.position().y() / k)
        if conn is not None:
            self.connection_selected.emit(conn)
        super().mousePressEvent(event)

    def conn_at(self, x: float, y: float) -> str | None:
        """The connection whose row is at (x, y) (the picture's units), if any."""
        self._layout()
        if not self.compact and x > self._size()[0] - self.MARGIN - self.TABLE_W:
            return None
        for b in self.bars:
            if b.h > 0 and b.y <= y < b.y + b.h:
                return b.conn
        return None

    # ------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), style.colour(style.BACKGROUND))
        k = self.canvas_scale
        p.scale(k, k)
        # The closing states' names: 0.75 or 0.65 of the type, or, in tight rows, as
        # small as 100 %'s 0.65 shows on the screen (zoomed in, the type is larger).
        least = 0.65 / (style.ZOOM * k)
        self._strip_scales = (0.75, 0.65) + ((least,) if least < 0.6 else ())
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        w, h = self._size()
        if self.cursor_ns is None or not any(c.connections for c in self.costs.values()):
            p.setPen(style.colour(style.MUTED))
            p.setFont(style.font(1.3))
            _draw_fitted(p, QRectF(0, 0, w, h), _CENTRE,
                         [self.tr("No connection yet at this point of the timeline")])
            return
        self._layout()
        x0, x1, top, bottom = self._plot
        legend_end = self._paint_legend(p, w)
        self._paint_cursor_text(p, w, legend_end)
        axis = self.axis
        assert axis is not None
        inset = 0.25 * self.EM
        for r in axis.breaks:  # a pale stripe where time was cut out
            p.fillRect(QRectF(r.x0 + inset, top, r.x1 - r.x0 - 2 * inset, bottom - top
                              + self.AXIS_GAP), style.blend(style.GRID, style.BACKGROUND, 0.6))
        seen = self._kernel_seen()
        for g, rect in self._bands:
            self._paint_band(p, g, rect, x0, x1, seen)
        self._paint_gaps(p, x0, x1, top, bottom)
        self._paint_axis(p, x0, x1, bottom, top, w)
        self._paint_footer(p, w, h)

    def _paint_gaps(self, p: QPainter, x0: float, x1: float, top: float, bottom: float
                    ) -> None:
        """Where the capture lost frames: a hatched band over every bar, from its last
        frame before to its first after, and how many it lost; the bars there may miss
        segments (a handshake, a FIN) and are not to be read as whole."""
        self.gap_rects = []
        axis = self.axis
        if not self.gaps or axis is None:
            return
        red = style.colour(style.WARNING)  # (the colour errors and resets have)
        least = 0.4 * self.EM  # a gap of microseconds still shows
        bands: list[list[float]] = []  # [a, b, frames]: gaps that touch on the screen, one
        for lo, hi, frames in sorted(self.gaps):
            a, b = axis.x(lo), axis.x(hi)
            if b - a < least:
                a, b = (a + b - least) / 2, (a + b + least) / 2
            a, b = max(a, x0), min(b, x1)
            if b <= a:
                continue
            if bands and a <= bands[-1][1] + 1.0:
                bands[-1][1] = max(bands[-1][1], b)
                bands[-1][2] += frames
            else:
                bands.append([a, b, frames])
        for a, b, frames in bands:
            frames = int(frames)
            r = QRectF(a, top, b - a, bottom - top)
            self.gap_rects.append(r)
            fill = QColor(red)
            fill.setAlphaF(0.10)
            p.fillRect(r, fill)
            hatch = QColor(red)
            hatch.setAlphaF(0.45)
            p.fillRect(r, QBrush(hatch, Qt.BrushStyle.BDiagPattern))
            p.setPen(QPen(red, 1.5))
            p.drawLine(QPointF(a, top), QPointF(a, bottom))
            p.drawLine(QPointF(b, top), QPointF(b, bottom))
            p.setFont(style.font(0.9, bold=True))
            texts = [self.tr("⚠ the capture lost {0} frames here: bars may miss segments")
                     .format(f"{frames:,}"),
                     self.tr("⚠ the capture lost {0} frames here").format(f"{frames:,}"),
                     self.tr("⚠ {0} frames lost").format(f"{frames:,}"), "⚠"]
            fm = QFontMetricsF(p.font())
            pad = 0.2 * self.EM
            # The longest wording that fits the plot from the band's start on.
            text = next((t for t in texts if fm.horizontalAdvance(t) + 4 <= x1 - a - pad), "⚠")
            box = QRectF(a + pad, bottom - fm.height() - pad, fm.horizontalAdvance(text) + 4,
                         fm.height())
            if box.right() > x1:
                box.moveRight(x1)
            back = QColor(style.colour(style.BACKGROUND))
            back.setAlphaF(0.85)
            p.fillRect(box, back)
            p.setPen(red)
            p.drawText(box, _LEFT_MID, text)

    # ------------------------------------------------------------ legend
    def _paint_legend(self, p: QPainter, w: float) -> float:
        """The legend, in the largest type in which it fits; returns where it ends."""
        items = (("bar", self.tr("open")), ("half", self.tr("closing: client above, server below")),
                 ("tw", self.tr("TIME_WAIT")), ("req", self.tr("request")))
        port = self.tr("port")
        left = self.MARGIN + self.LABEL_W
        right = w - self.MARGIN
        for scale in (1.0, 0.9, 0.8, 0.7):
            f = style.font(scale)
            fm = QFontMetricsF(f)
            lh = fm.height()
            swatch, gap, spacing = 1.6 * lh, 0.35 * lh, 1.1 * lh
            widths = [(0.9 * lh if kind == "req" else swatch) + gap + fm.horizontalAdvance(text)
                      for kind, text in items]
            if left + sum(widths) + spacing * (len(items) - 1) <= right or scale == 0.7:
                break
        p.setFont(f)
        y = (self.LEGEND_H - lh) / 2
        p.setPen(style.colour(style.MUTED))
        _draw_fitted(p, QRectF(self.MARGIN, y, self.LABEL_W - 0.8 * self.EM, lh), _RIGHT_MID,
                     [port])
        x = left
        self.legend = []
        for (kind, text), width in zip(items, widths):
            if x + width > right:  # (only in a window too narrow for any type)
                break
            box = QRectF(x, y + 0.15 * lh, swatch, 0.7 * lh)
            mark = QRectF(x + 0.45 * lh - 0.3 * lh, y + 0.08 * lh, 0.6 * lh, 0.84 * lh)
            if kind == "bar":
                self._draw_open(p, box)
            elif kind == "half":
                self._draw_open(p, box)
                p.setPen(Qt.PenStyle.NoPen)
                for state, t in (("FIN_WAIT_1", box.top()), ("CLOSE_WAIT", box.center().y())):
                    p.setBrush(style.colour(style.STATE_COLOURS[state]))
                    p.drawRect(QRectF(box.left() + 0.3 * swatch, t + 1, 0.7 * swatch,
                                      box.height() / 2 - 2))
            elif kind == "tw":
                self._draw_tail(p, box)
            else:
                self._draw_mark(p, mark.center().x(), mark.center().y(), 0.42 * lh)
            tx = x + width - fm.horizontalAdvance(text)
            p.setPen(style.colour(style.FOREGROUND))
            p.drawText(QRectF(tx, y, fm.horizontalAdvance(text) + 2, lh), _LEFT_MID, text)
            self.legend.append((mark if kind == "req" else box,
                                QRectF(tx, y, fm.horizontalAdvance(text), lh)))
            x += width + spacing
        return x - spacing

    def _paint_cursor_text(self, p: QPainter, w: float, after: float) -> None:
        now = self.cursor_ns or 0
        f = style.font(1.0)
        p.setFont(f)
        fm = QFontMetricsF(f)
        lh = fm.height()
        y = (self.LEGEND_H - lh) / 2
        p.setPen(style.colour(style.MUTED))
        for text in (self.tr("cursor: {0} after the first event"), self.tr("cursor: {0}")):
            text = text.format(fmt_duration(now - self.trace_start_ns))
            if after + self.EM + fm.horizontalAdvance(text) <= w - self.MARGIN:
                p.drawText(QRectF(0, y, w - self.MARGIN, lh), _RIGHT_MID, text)
                break

    def _draw_open(self, p: QPainter, r: QRectF) -> None:
        green = style.colour(style.STATE_COLOURS["ESTABLISHED"])
        fill = QColor(green)
        fill.setAlpha(70)
        p.setPen(QPen(green, 2))
        p.setBrush(fill)
        p.drawRoundedRect(r, 3, 3)

    def _draw_tail(self, p: QPainter, r: QRectF) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(style.colour(style.STATE_COLOURS["TIME_WAIT"]))
        p.drawRect(QRectF(r.x(), r.center().y() - r.height() * 0.36, r.width(),
                          r.height() * 0.72))

    def _draw_mark(self, p: QPainter, x: float, y: float, size: float) -> None:
        poly = QPolygonF([QPointF(x, y - size), QPointF(x + size * 0.7, y),
                          QPointF(x, y + size), QPointF(x - size * 0.7, y)])
        p.setPen(QPen(style.colour(style.BACKGROUND), 1.2))
        p.setBrush(style.colour(style.CLIENT))
        p.drawPolygon(poly)

    # ------------------------------------------------------------ bands
    def _paint_band(self, p: QPainter, g: str, rect: QRectF, x0: float, x1: float,
                    seen: tuple[set, set]) -> None:
        p.setPen(QPen(style.colour(style.GRID), 1.5))
        p.drawLine(QPointF(rect.left(), rect.top()), QPointF(rect.right(), rect.top()))
        title = self.tr("Short connections") if g == SHORT else self.tr("Keep-alive connections")
        rule = (self.tr("one request each, then closed") if g == SHORT
                else self.tr("several requests on one connection"))
        right = rect.right() if self.compact else rect.right() - self.TABLE_W - 0.5 * self.EM
        p.setFont(style.font(1.15, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        fm = QFontMetricsF(p.font())
        title_w = min(fm.horizontalAdvance(title) + 4, rect.width())
        _draw_fitted(p, QRectF(rect.left(), rect.top(), title_w, self.HEADER_H), _LEFT_MID,
                     [title])
        bars = [b for b in self.bars if b.group == g and b.h > 0]
        hidden = self._hidden.get(g, 0)
        # Beside the title: what the band holds, or that it holds nothing yet, or how
        # many of its connections are not drawn (the earliest: the rows above).
        if hidden:
            notes = [(self.tr("+{0} earlier connection, not drawn (counted in the costs)")
                      if hidden == 1 else
                      self.tr("+{0} earlier connections, not drawn (counted in the costs)"))
                     .format(hidden), self.tr("+{0} earlier, not drawn").format(hidden)]
        elif not bars:
            notes = [rule + " — " + self.tr("none yet"), self.tr("none yet")]
        else:
            notes = [rule]
        p.setFont(style.font(0.95))
        p.setPen(style.colour(style.MUTED))
        note_x = rect.left() + title_w + 0.5 * self.EM
        _draw_fitted(p, QRectF(note_x, rect.top(), max(0.0, right - note_x), self.HEADER_H),
                     _LEFT_MID, notes, elide=True)
        if self.compact and self.costs[g].connections:
            self._paint_cost_line(p, self.costs[g], QRectF(
                rect.left() + 0.5 * self.EM, rect.top() + self.HEADER_H,
                rect.width() - 0.5 * self.EM, self.COSTS_H))
        for b in bars:
            self._paint_bar(p, b, rect.left(), x1, seen)
        if not self.compact:
            self._paint_costs(p, self.costs[g], QRectF(
                rect.right() - self.TABLE_W, rect.top() + 0.3 * self.EM, self.TABLE_W,
                self.TABLE_LINES * self.TABLE_LINE + 0.5 * self.EM))

    def _paint_bar(self, p: QPainter, b: Bar, left: float, x1: float,
                   seen: tuple[set, set]) -> None:
        axis = self.axis
        assert axis is not None
        if b.selected:
            p.fillRect(QRectF(left, b.y, x1 - left + 10, b.h), style.colour(style.SELECTED))
        p.setPen(style.colour(style.FOREGROUND))
        label_box = QRectF(left, b.y, self.LABEL_W - 0.8 * self.EM, b.h)
        for scale in (1.0, 0.85, 0.75):
            p.setFont(style.font(scale, bold=b.selected, mono=True))
            if _fits(p.font(), b.label, label_box, _RIGHT_MID):
                p.drawText(label_box, _RIGHT_MID, b.label)
                break
        pad = max(b.h * BODY_PAD, 2.0)
        body = QRectF(b.x0, b.y + pad, max(b.x1 - b.x0, 3.0), b.h - 2 * pad)
        now = self.cursor_ns or 0
        tail = QRectF()
        if b.tw_start_ns is not None:
            t0 = b.tail_start_ns
            t1 = b.tw_end_ns if b.tw_end_ns is not None else now
            tx0, tx1 = axis.x(t0), axis.x(t1)
            tail = QRectF(tx0, body.y(), max(tx1 - tx0, 2.0), body.height())
            self._draw_tail(p, tail)
        self._draw_open(p, body)
        self._paint_closing(p, b, body, now, seen)
        if b.end_ns is None:  # still open: a thick open end at the cursor
            p.setPen(QPen(style.colour(style.STATE_COLOURS["ESTABLISHED"]), style.pen(4)))
            p.drawLine(QPointF(body.right(), body.top() - 3), QPointF(body.right(), body.bottom() + 3))
        size = body.height() * 0.45
        last_x = -1e9
        for t in b.requests:
            x = axis.x(t)
            if x - last_x >= 2:
                self._draw_mark(p, x, body.center().y(), size)
                last_x = x
        if b.tw_start_ns is not None and b.tw_end_ns is None and b.tw_left_s is not None:
            self._paint_countdown(p, b, tail)

    def _paint_closing(self, p: QPainter, b: Bar, body: QRectF, now: int,
                       seen: tuple[set, set]) -> None:
        """The half-closed states on the bar, where they were: the client's in its upper
        half, the server's in its lower half, named where there is room ("≈": inferred,
        the kernel did not say so). (On loopback most last microseconds and take no
        width; a CLOSE_WAIT a program leaves shows, through the breaks of its wait.)"""
        axis = self.axis
        assert axis is not None
        half = body.height() / 2
        for side, state, t0, t1 in b.closing:
            x0 = max(axis.x(t0), body.left())
            x1 = min(axis.x(t1 if t1 is not None else now), body.right())
            if x1 - x0 < 2:
                continue
            top = body.top() if side == "client" else body.top() + half
            strip = QRectF(x0, top + 1, x1 - x0, half - 2)
            fill = style.colour(style.STATE_COLOURS.get(state, style.GREY))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(fill)
            p.drawRect(strip)
            kernel = (b.conn, side, state, t0) in seen[0] or (b.conn, side, state) in seen[1]
            name = state if kernel else APPROX + state
            inner = strip.adjusted(2, 0.5, -2, -0.5)
            for scale in self._strip_scales:
                p.setFont(style.font(scale, bold=True))
                box = _ink_centred(p.font(), name, inner)
                if box is not None:
                    p.setPen(style.text_on(fill))
                    p.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                               name)
                    break

    def _kernel_seen(self) -> tuple[set, set]:
        """What the kernel said of the drawn bars' closing states by the cursor: the
        states it reported, (conn, side, state, t_ns), and those its poll or tracepoint
        confirmed, (conn, side, state). Read from the log for those bars only."""
        tl = self.timeline
        want = sorted({b.conn for b in self.bars if b.h > 0 and b.closing})
        if tl is None or not want:
            return set(), set()
        log = tl.log
        key = (id(log), len(log), tl.cursor, tuple(want))
        if key == self._seen_key:
            return self._seen
        reported: set = set()
        confirmed: set = set()
        codes = [c for c in (log.conns.codes.get(conn) for conn in want) if c is not None]
        idx = log.indices(kinds=["tcp_state", "state_check"], stop=tl.cursor + 1)
        idx = idx[np.isin(log.column("conn")[idx], codes)]
        for i in idx.tolist():
            e = log[int(i)]
            d = e.data
            by_kernel = d.get("source") in ("observed", "traced")
            if e.kind == "tcp_state" and by_kernel:
                reported.add((e.conn, d.get("side"), str(d.get("state")), e.t_ns))
            elif e.kind == "state_check" and by_kernel and d.get("verdict") in (None, "confirms"):
                confirmed.add((e.conn, d.get("side"), str(d.get("state"))))
        self._seen_key, self._seen = key, (reported, confirmed)
        return self._seen

    def _paint_countdown(self, p: QPainter, b: Bar, tail: QRectF) -> None:
        approx = "" if b.tw_source == "observed" else APPROX
        side = self.tr("both ends") if b.tw_both else \
            self.tr("server") if b.tw_side == "server" else self.tr("client")
        left = f"{approx}{b.tw_left_s:.0f} s"
        band = tail.height() * 0.14  # the tail is drawn 72 % as tall as the bar
        inner = tail.adjusted(max(b.x1 - tail.left(), 0) + 0.3 * self.EM, band,
                              -0.3 * self.EM, -band)
        texts = (self.tr("{0} in TIME_WAIT, {1} left").format(side, left),
                 self.tr("{0}, {1} left").format(side, left), left)
        p.setPen(style.colour(style.INK_LIGHT))  # on the TIME_WAIT tail, any theme
        right = Qt.AlignmentFlag.AlignRight
        for text in texts:  # the most said, in the largest type the tail holds
            for scale in (0.85, 0.75, 0.65):
                p.setFont(style.font(scale, bold=True))
                box = _ink_centred(p.font(), text, inner, right)
                if box is not None:
                    p.drawText(box, right | Qt.AlignmentFlag.AlignTop, text)
                    return

    # ------------------------------------------------------------ costs
    def _handshake_how(self, c: Costs) -> str:
        if c.handshake_assumed and not c.handshake_counted:
            return self.tr("3 each, assumed")
        if c.handshake_assumed:
            return self.tr("partly assumed")
        return " + ".join(self.tr(o) for o in c.handshake_origin.split(" + ")) \
            if c.handshake_origin else ""

    def _cost_lines(self, c: Costs) -> list[tuple[str, str]]:
        how = self._handshake_how(c)
        total = "—" if not c.connections else fmt_duration(c.total_ns)
        per = c.per_request
        return [
            (self.tr("connections opened"), str(c.connections)),
            (self.tr("requests"), str(c.requests)),
            (self.tr("handshake segments") + (f" ({how})" if how else ""),
             str(c.handshake_segments)),
            (self.tr("  per request"), "—" if per is None else fmt_ratio(per)),
            (self.tr("first open → now (still open)") if c.still_open
             else self.tr("first open → last close"), total),
            (self.tr("TIME_WAIT sockets now"), str(c.time_wait)),
        ]

    def _paint_costs(self, p: QPainter, c: Costs, r: QRectF) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        bg = QColor(style.GRID)
        bg.setAlpha(70)
        p.setBrush(bg)
        p.drawRoundedRect(r, 6, 6)
        y = r.top() + 0.25 * self.EM
        label_font, value_font = style.font(0.95), style.font(1.05, bold=True, mono=True)
        value_w = QFontMetricsF(value_font).horizontalAdvance
        for label, value in self._cost_lines(c):
            line = QRectF(r.left() + 12, y, r.width() - 24, self.TABLE_LINE)
            p.setPen(style.colour(style.FOREGROUND))
            p.setFont(value_font)
            p.drawText(line, _RIGHT_MID, value)
            p.setFont(label_font)
            room = line.adjusted(0, 0, -value_w(value) - 0.5 * self.EM, 0)
            _draw_fitted(p, room, _LEFT_MID, [label], elide=True)
            y += self.TABLE_LINE

    def _cost_parts(self, c: Costs) -> tuple[str, str, str, str, str, str]:
        """The costs in words, each count with its noun in the singular or the plural."""
        conns = (self.tr("{0} connection") if c.connections == 1
                 else self.tr("{0} connections")).format(c.connections)
        reqs = (self.tr("{0} request") if c.requests == 1
                else self.tr("{0} requests")).format(c.requests)
        segs = (self.tr("{0} handshake segment") if c.handshake_segments == 1
                else self.tr("{0} handshake segments")).format(c.handshake_segments)
        how = self._handshake_how(c)
        per = c.per_request
        ratio = "" if per is None else self.tr(", {0} per request").format(fmt_ratio(per))
        tw = self.tr("{0} in TIME_WAIT").format(c.time_wait)
        return conns, reqs, segs, (f" ({how})" if how else ""), ratio, tw

    def _paint_cost_line(self, p: QPainter, c: Costs, r: QRectF) -> None:
        conns, reqs, segs, how, ratio, tw = self._cost_parts(c)
        dot = "  ·  "
        texts = [dot.join((conns, reqs, segs + how + ratio, tw)),
                 dot.join((conns, reqs, segs + ratio, tw)),
                 dot.join((conns, reqs, segs + ratio)),
                 dot.join((conns, reqs, segs))]
        p.setPen(style.colour(style.FOREGROUND))
        for scale in (0.9, 0.8):
            p.setFont(style.font(scale, bold=True))
            if any(_fits(p.font(), t, r, _LEFT_MID) for t in texts):
                break
        _draw_fitted(p, r, _LEFT_MID, texts, elide=True)

    # ------------------------------------------------------------ axis
    def _paint_axis(self, p: QPainter, x0: float, x1: float, bottom: float, top: float,
                    w: float) -> None:
        """Ticks on the first line (time since the first event, as far apart as their
        labels need), the time each break skipped in words on the second."""
        axis = self.axis
        assert axis is not None
        em = self.EM
        y = bottom + self.AXIS_GAP
        fg = style.colour(style.FOREGROUND)
        p.setFont(style.font(0.85))
        fm = QFontMetricsF(p.font())
        lh = fm.height()
        rows = (y + self.TICK + 0.1 * em, y + self.TICK + 0.1 * em + lh)
        taken: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
        space = 0.8 * em  # between two labels on a line

        def place(x: float, text: str, row: int, colour: str) -> bool:
            tw = fm.horizontalAdvance(text)
            lx = min(max(x - tw / 2, 2.0), w - 2.0 - tw)
            if any(lx < b + space and lx + tw > a - space for a, b in taken[row]):
                return False
            taken[row].append((lx, lx + tw))
            p.setPen(style.colour(colour))
            p.drawText(QRectF(lx - 1, rows[row], tw + 3, lh), _LEFT_TOP, text)
            return True

        p.setPen(QPen(fg, style.pen(1.6)))
        for r in axis.runs:
            if not r.is_break:
                p.drawLine(QPointF(r.x0, y), QPointF(r.x1, y))
        for r in axis.breaks:  # "//" where the axis is cut, and what it skipped
            mid = (r.x0 + r.x1) / 2
            a, d = 0.22 * lh, 0.18 * lh
            p.setPen(QPen(fg, style.pen(1.6)))
            for dx in (-d, d):
                p.drawLine(QPointF(mid + dx - a, y + 0.4 * lh), QPointF(mid + dx + a, y - 0.4 * lh))
            span = fmt_duration(r.t1 - r.t0)
            for row, text in ((1, self.tr("{0} skipped").format(span)),
                              (1, self.tr("+{0}").format(span)),
                              (0, self.tr("{0} skipped").format(span)),
                              (0, self.tr("+{0}").format(span))):
                if place(mid, text, row, style.MUTED):
                    break
        base = self.trace_start_ns
        self.ticks = []
        # Ticks, each run to its own scale, where their labels stay over their run (or
        # the near half of a break beside it): two runs' labels never meet.
        reach = max(0.5 * self.BREAK_W - 0.5 * space, 0.0)
        for r in axis.runs:
            if r.is_break or r.x1 - r.x0 < 2 * em:
                continue
            step = self._tick_step(r, fm)
            t = base + math.ceil((r.t0 - base) / step) * step
            for _ in range(200):  # (bounded: a run is at most a few hundred em wide)
                if t > r.t1:
                    break
                x, text = r.x(t), fmt_tick(t - base, step)
                half = fm.horizontalAdvance(text) / 2
                if r.x0 - reach <= x - half and x + half <= r.x1 + reach:
                    p.setPen(QPen(fg, style.pen(1.2)))
                    p.drawLine(QPointF(x, y), QPointF(x, y + self.TICK))
                    self.ticks.append((x, text, place(x, text, 0, style.MUTED)))
                t += step
        xc = axis.x(self.cursor_ns or 0)  # the cursor: the right edge of what happened
        p.setPen(QPen(fg, 1.5, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(xc, top), QPointF(xc, y))

    def _tick_step(self, r: Run, fm: QFontMetricsF) -> int:
        """A 1-2-5 step whose labels stand apart by an em or more on this run."""
        scale = _scale(r)
        base = self.trace_start_ns
        step = _nice_step(2.5 * self.EM / scale)
        for _ in range(12):
            label_w = max(fm.horizontalAdvance(fmt_tick(t - base, step)) for t in (r.t0, r.t1))
            if step * scale >= label_w + 1.2 * self.EM:
                break
            step = _nice_step(step * 1.5)
        return step

    # ------------------------------------------------------------ footer
    def _paint_footer(self, p: QPainter, w: float, h: float) -> None:
        s, k = self.costs[SHORT], self.costs[KEEP_ALIVE]
        texts = []
        if s.per_request is not None and k.per_request is not None:
            texts.append(self.tr("Handshake segments per request: short {0}, keep-alive {1}."
                                 "  Keep-alive pays the handshake once.").format(
                                     fmt_ratio(s.per_request), fmt_ratio(k.per_request)))
        else:
            texts.append(self.tr("Keep-alive pays the handshake once; short connections pay "
                                 "it for every request."))
        texts.append(self.tr("Keep-alive pays the handshake once."))  # a narrow window
        p.setFont(style.font(1.0, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        _draw_fitted(p, QRectF(self.MARGIN, h - self.FOOTER_H, w - 2 * self.MARGIN,
                               self.FOOTER_H), _LEFT_MID, texts, elide=True)


# ---------------------------------------------------------------- text that fits
def _line(font: QFont) -> float:
    return QFontMetricsF(font).height()


_LINES: dict[tuple[str, str], tuple[QRectF, float, float]] = {}


def _line_ink(font: QFont, text: str) -> tuple[QRectF, float, float]:
    """One line of ``text`` as Qt sets it: its glyphs' ink (from the line's top-left),
    the line's height and its advance. Read from the glyphs of every font the line
    uses: a Chinese fallback font is taller than DejaVu, and a line that has one sits
    lower (its ascent is the larger one)."""
    key = (font.toString(), text)
    found = _LINES.get(key)
    if found is None:
        layout = QTextLayout(text, font)
        layout.beginLayout()
        line = layout.createLine()
        line.setLineWidth(1e6)
        layout.endLayout()
        ink = QRectF()
        for run in layout.glyphRuns():
            raw = run.rawFont()
            for glyph, at in zip(run.glyphIndexes(), run.positions()):
                ink = ink.united(raw.boundingRect(glyph).translated(at))
        if len(_LINES) > 4000:  # (a cache of the words drawn; bounded)
            _LINES.clear()
        found = _LINES[key] = (ink, line.height(), line.naturalTextWidth())
    return found


def _ink(font: QFont, text: str, box: QRectF, flags: Qt.AlignmentFlag) -> QRectF:
    """Where one line of ``text`` drawn in ``box`` with ``flags`` puts ink."""
    ink, h, w = _line_ink(font, text)
    return ink.translated(*style.aligned(box, w, h, flags))


def _fits(font: QFont, text: str, box: QRectF, flags: Qt.AlignmentFlag) -> bool:
    """Whether ``text`` drawn in ``box`` keeps all its ink inside it and its advance
    (give or take a pixel: a glyph's side bearing, rounding)."""
    if not text or box.width() <= 0 or box.height() <= 0:
        return False
    return _line_ink(font, text)[2] <= box.width() + 1.0 and \
        box.adjusted(-1.0, -1.0, 1.0, 1.0).contains(_ink(font, text, box, flags))


def _ink_centred(font: QFont, text: str, box: QRectF,
                 h: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignHCenter) -> QRectF | None:
    """The box (for ``h`` | AlignTop) that centres ``text``'s ink vertically in ``box``
    (a name in capitals sits low in its line: centred by its ink, it needs less room);
    None when the ink does not fit ``box``."""
    ink, height, advance = _line_ink(font, text)
    # No slack on the width: the glyphs' ink as Qt's metrics measure it (and clip it)
    # may reach a pixel or two past the layout's, when the advance already fills the box.
    if advance > box.width() or ink.height() > box.height() + 1.0:
        return None
    top = box.center().y() - ink.center().y()  # the line's top
    # (top-aligned, the text sits where the box's top says; the box reaches over all
    # its ink: an underscore may go below the font's descent)
    line = QRectF(box.left(), top, box.width(), max(height, ink.bottom() + 1))
    return line if line.adjusted(-1, -1, 1, 1).contains(
        _ink(font, text, line, h | Qt.AlignmentFlag.AlignTop)) else None


def _draw_fitted(p: QPainter, box: QRectF, flags: Qt.AlignmentFlag, texts: list[str],
                 elide: bool = False) -> bool:
    """Draw the first of ``texts`` (longest first) that fits ``box`` in the painter's
    font; else, with ``elide``, the last one shortened with "…" at a glyph's edge; else
    nothing. True when something was drawn."""
    font = p.font()
    for text in texts:
        if _fits(font, text, box, flags):
            p.drawText(box, flags, text)
            return True
    if elide and texts:
        short = QFontMetricsF(font).elidedText(texts[-1], Qt.TextElideMode.ElideRight,
                                               box.width() - 1)
        if short.strip(" …") and _fits(font, short, box, flags):
            p.drawText(box, flags, short)
            return True
    return False


def fmt_ratio(x: float) -> str:
    """3.0, 0.6, 0.15: one decimal, two when one would round a small ratio away."""
    text = f"{x:.2f}"
    return text.removesuffix("0")


def fmt_tick(ns: int, step: int) -> str:
    """A tick's time since the first event, with as many decimals as the step needs
    (the first event itself in the step's unit: "0 ms", not "0 µs")."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if max(abs(ns), step) >= scale or unit == "µs":
            decimals = max(0, math.ceil(-math.log10(step / scale) - 1e-9))
            return f"{ns / scale:.{min(decimals, 6)}f} {unit}"
    return f"{ns} ns"


def _nice_step(ns: float) -> int:
    """The smallest 1-2-5 step of at least ``ns`` nanoseconds."""
    ns = max(ns, 1.0)
    exp = 10 ** math.floor(math.log10(ns))
    for mult in (1, 2, 5, 10):
        if mult * exp >= ns:
            return int(mult * exp)
    return int(10 * exp)


def _scale(run: Run) -> float:
    return (run.x1 - run.x0) / max(run.t1 - run.t0, 1)
