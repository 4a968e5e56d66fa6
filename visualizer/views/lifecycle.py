"""Connection lifecycles: every connection a bar on one time axis, short vs keep-alive.

What is drawn (the bars, their TIME_WAIT tails and request marks, the two
bands and their costs, the time axis with its breaks) is computed without Qt
by ``visualizer.model.lifecycle``, whose docstring says the rules; this view
lays it out and paints it. With many connections each band draws the latest
rows that fit, under a "+M earlier" line; the costs count every connection.
In a small window the costs go on one line under each band's title instead of
a table beside it.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QT_TRANSLATE_NOOP, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QPainter,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QWidget

from ..model.lifecycle import GROUPS, KEEP_ALIVE, SHORT, Bar, Costs, Lifecycles, Run, TimeAxis
from ..model.text import fmt_duration
from . import style
from .base import View


class LifecycleView(View):
    name = "lifecycle"
    title = QT_TRANSLATE_NOOP("View", "Lifecycle")
    # Where the handshake counts come from (Costs.handshake_origin, joined by " + ").
    ORIGINS = (QT_TRANSLATE_NOOP("LifecycleView", "captured"),
               QT_TRANSLATE_NOOP("LifecycleView", "derived"))

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
        self.axis: TimeAxis | None = None
        self._layout_key: tuple | None = None
        self._bands: list[tuple[str, QRectF]] = []
        self._hidden: dict[str, int] = {}
        self._header_h = self.HEADER_H
        self.compact = False  # laid out for a small window (costs on one line per band)

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

    # ------------------------------------------------------------ layout
    LEGEND_H = 40
    AXIS_H = 50
    FOOTER_H = 40
    LABEL_W = 92
    TABLE_W = 372
    HEADER_H = 34
    COSTS_H = 26  # compact layout: the costs on one line under the band's title
    TABLE_LINE = 24
    TABLE_LINES = 6
    ROW_HEIGHTS = (44.0, 38.0, 32.0, 26.0, 22.0)
    _SIZED = ("LEGEND_H", "AXIS_H", "FOOTER_H", "LABEL_W", "TABLE_W", "HEADER_H", "COSTS_H",
              "TABLE_LINE")

    def apply_theme(self) -> None:
        """The zoom scales the type: the rows, margins and tables sized for it scale too."""
        z = style.ZOOM
        for name in self._SIZED:
            setattr(self, name, getattr(type(self), name) * z)
        self.ROW_HEIGHTS = tuple(h * z for h in type(self).ROW_HEIGHTS)
        self._header_h = self.HEADER_H
        self._layout_key = None
        super().apply_theme()

    @property
    def canvas_scale(self) -> float:
        """1, or less when zoomed in on a small screen: the whole picture is set smaller
        rather than bands with no room for a bar, never below 100 %'s type."""
        z = style.ZOOM
        if z <= 1.0:
            return 1.0
        need_h = self.LEGEND_H + self.AXIS_H + self.FOOTER_H \
            + 2 * (self.HEADER_H + self.COSTS_H + 2 * self.ROW_HEIGHTS[-1] + 6)
        need_w = 760.0 * z
        fit = min(1.0, max(self.height(), 1) / need_h, max(self.width(), 1) / need_w)
        return max(1.0 / z, fit)

    def _size(self) -> tuple[float, float]:
        """The picture's size in its own units (the widget's, over ``canvas_scale``)."""
        k = self.canvas_scale
        return self.width() / k, self.height() / k

    def _layout(self) -> None:
        key = (self._key, self.width(), self.height(), style.ZOOM)
        if key == self._layout_key:
            return
        self._layout_key = key
        w, h = self._size()
        m = 12.0
        top = self.LEGEND_H
        bottom = h - self.AXIS_H - self.FOOTER_H
        avail = bottom - top
        table_h = self.TABLE_LINES * self.TABLE_LINE + 14
        # Wide: a cost table beside each band. Compact (a small window): one line of
        # costs under each band's title, and the bars get the whole width.
        self.compact = w < 1000 * style.ZOOM or avail < 2 * table_h + 8
        plot_x0 = m + self.LABEL_W
        plot_x1 = w - m - 14 if self.compact else w - m - self.TABLE_W - 18
        header = self.HEADER_H + (self.COSTS_H if self.compact else 0)
        floor = 0.0 if self.compact else table_h
        by_group = {g: [b for b in self.bars if b.group == g] for g in GROUPS}
        need = {g: max(len(by_group[g]) + (1 if self.costs[g].earlier else 0), 1) for g in GROUPS}

        def band_heights(row_h: float) -> dict[str, float]:
            return {g: max(floor, header + need[g] * row_h + 6) for g in GROUPS}

        row_h = self.ROW_HEIGHTS[-1]
        for row_h in self.ROW_HEIGHTS:  # the largest rows that show every connection
            if sum(band_heights(row_h).values()) <= avail:
                break
        heights = band_heights(row_h)
        if sum(heights.values()) <= avail:  # room to spare: equal bands where possible
            half = avail / 2
            if all(v <= half for v in heights.values()):
                heights = {g: half for g in GROUPS}
            else:
                big = max(GROUPS, key=lambda g: heights[g])
                heights[big] = avail - sum(v for g, v in heights.items() if g != big)
        else:  # not all fit: each band its minimum, the rest shared by need
            least = max(floor, header + row_h + 6)
            spare = max(avail - 2 * least, 0)
            extra = {g: max(header + need[g] * row_h + 6 - least, 0) for g in GROUPS}
            total = sum(extra.values()) or 1
            heights = {g: least + spare * extra[g] / total for g in GROUPS}
        y = top
        self._bands = []
        self._hidden = {}
        self._header_h = header
        for b in self.bars:
            b.h = 0.0
        for g in GROUPS:
            rect = QRectF(m, y, w - 2 * m, heights[g])
            self._bands.append((g, rect))
            rows_fit = max(int((heights[g] - header - 6) // row_h), 1)
            bars = by_group[g]
            earlier = self.costs[g].earlier
            if len(bars) + (1 if earlier else 0) > rows_fit:
                keep = rows_fit - 1
                shown = bars[len(bars) - keep:] if keep > 0 else []
                earlier += len(bars) - len(shown)
            else:
                shown = bars
            self._hidden[g] = earlier
            ry = y + header + (row_h if earlier else 0)
            for b in shown:
                b.y, b.h = ry, row_h
                ry += row_h
            y += heights[g]
        # The shared time axis over the drawn bars.
        drawn = [b for b in self.bars if b.h > 0]
        now = self.cursor_ns or 0
        points: list[int] = []
        for b in drawn:
            points.append(b.start_ns)
            points.extend(b.requests)
            points.extend(t for t in (b.end_ns, b.tail_start_ns, b.tw_end_ns) if t is not None)
        t_start = min(points) if points else now - 1
        self.axis = TimeAxis(points, t_start, now, plot_x0, plot_x1)
        for b in drawn:
            b.x0 = self.axis.x(b.start_ns)
            b.x1 = self.axis.x(b.end_ns if b.end_ns is not None else now)
        self._plot = (plot_x0, plot_x1, top, bottom)

    @property
    def drawn_bars(self) -> list[Bar]:
        """The bars on screen, top to bottom (laid out for the current size)."""
        self._layout()
        return [b for b in self.bars if b.h > 0]

    def hidden(self, group: str) -> int:
        """Connections of ``group`` not drawn (the "+M earlier" line)."""
        self._layout()
        return self._hidden.get(group, 0)

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
        if x > self._size()[0] - 12 - self.TABLE_W:
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
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        w, h = self._size()
        if self.cursor_ns is None or not any(c.connections for c in self.costs.values()):
            p.setPen(style.colour(style.MUTED))
            p.setFont(style.font(1.3))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter,
                       self.tr("No connection yet at this point of the timeline"))
            return
        self._layout()
        x0, x1, top, bottom = self._plot
        self._paint_legend(p, w)
        axis = self.axis
        assert axis is not None
        for r in axis.breaks:  # a pale stripe where time was cut out
            p.fillRect(QRectF(r.x0 + 6, top, r.x1 - r.x0 - 12, bottom - top),
                       style.blend(style.GRID, style.BACKGROUND, 0.65))
        for g, rect in self._bands:
            self._paint_band(p, g, rect, x0, x1)
        self._paint_axis(p, x0, x1, bottom, top)
        self._paint_footer(p, w, h)

    def _paint_legend(self, p: QPainter, w: float) -> None:
        p.setFont(style.font(1.0))
        fm = QFontMetricsF(p.font())
        y, hh = 6.0, self.LEGEND_H - 12
        p.setPen(style.colour(style.MUTED))
        p.drawText(QRectF(12, y, self.LABEL_W - 10, hh), Qt.AlignmentFlag.AlignRight
                   | Qt.AlignmentFlag.AlignVCenter, self.tr("port"))
        x = 12.0 + self.LABEL_W
        for kind, text in (("bar", self.tr("open")),
                           ("half", self.tr("closing: client above, server below")),
                           ("tw", self.tr("TIME_WAIT")), ("req", self.tr("request"))):
            if kind == "bar":
                self._draw_open(p, QRectF(x, y + 4, 36, hh - 8))
                x += 44
            elif kind == "half":
                box = QRectF(x, y + 4, 36, hh - 8)
                self._draw_open(p, box)
                p.setPen(Qt.PenStyle.NoPen)
                for state, top in (("FIN_WAIT_1", box.top()), ("CLOSE_WAIT", box.center().y())):
                    p.setBrush(style.colour(style.STATE_COLOURS[state]))
                    p.drawRect(QRectF(box.left() + 10, top + 1, 26, box.height() / 2 - 2))
                x += 44
            elif kind == "tw":
                self._draw_tail(p, QRectF(x, y + 4, 36, hh - 8))
                x += 44
            else:
                self._draw_mark(p, x + 8, y + hh / 2, hh * 0.4)
                x += 22
            p.setPen(style.colour(style.FOREGROUND))
            p.drawText(QRectF(x, y, fm.horizontalAdvance(text) + 4, hh),
                       Qt.AlignmentFlag.AlignVCenter, text)
            x += fm.horizontalAdvance(text) + 30
        now = self.cursor_ns or 0
        p.setPen(style.colour(style.MUTED))
        for text in (self.tr("cursor: {0} after the first event"), self.tr("cursor: {0}")):
            text = text.format(fmt_duration(now - self.trace_start_ns))
            if x + fm.horizontalAdvance(text) < w - 12:
                p.drawText(QRectF(0, y, w - 12, hh), Qt.AlignmentFlag.AlignRight
                           | Qt.AlignmentFlag.AlignVCenter, text)
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

    def _paint_band(self, p: QPainter, g: str, rect: QRectF, x0: float, x1: float) -> None:
        p.setPen(QPen(style.colour(style.GRID), 1.5))
        p.drawLine(QPointF(rect.left(), rect.top()), QPointF(rect.right(), rect.top()))
        title = self.tr("Short connections") if g == SHORT else self.tr("Keep-alive connections")
        rule = (self.tr("one request each, then closed") if g == SHORT
                else self.tr("several requests on one connection"))
        p.setFont(style.font(1.15, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        fm = QFontMetricsF(p.font())
        title_w = fm.horizontalAdvance(title) + 4  # (not a fixed box: zoomed in, it grows)
        p.drawText(QRectF(rect.left(), rect.top() + 2, title_w, self.HEADER_H - 2),
                   Qt.AlignmentFlag.AlignVCenter, title)
        p.setFont(style.font(0.95))
        p.setPen(style.colour(style.MUTED))
        rule_x = rect.left() + title_w + 10
        p.drawText(QRectF(rule_x, rect.top() + 2, max(0.0, rect.right() - rule_x),
                          self.HEADER_H - 2), Qt.AlignmentFlag.AlignVCenter,
                   QFontMetricsF(p.font()).elidedText(rule, Qt.TextElideMode.ElideRight,
                                                      max(0.0, rect.right() - rule_x)))
        bars = [b for b in self.bars if b.group == g and b.h > 0]
        hidden = self._hidden.get(g, 0)
        row_h = bars[0].h if bars else 30.0
        top = rect.top() + self._header_h
        if self.compact:
            self._paint_cost_line(p, self.costs[g], QRectF(rect.left() + 12, rect.top()
                                                           + self.HEADER_H - 4, rect.width()
                                                           - 12, self.COSTS_H))
        p.setFont(style.font(0.95))
        p.setPen(style.colour(style.MUTED))
        if hidden:
            p.drawText(QRectF(rect.left() + 12, top, x1 - rect.left(), row_h),
                       Qt.AlignmentFlag.AlignVCenter,
                       self.tr("+{0} earlier connections, not drawn (counted in the costs)")
                       .format(hidden))
        elif not bars:
            p.drawText(QRectF(x0, top, x1 - x0, 34), Qt.AlignmentFlag.AlignVCenter,
                       self.tr("none yet"))
        for b in bars:
            self._paint_bar(p, b, rect.left(), x1)
        if not self.compact:
            self._paint_costs(p, self.costs[g], QRectF(
                rect.right() - self.TABLE_W, rect.top() + 6, self.TABLE_W,
                self.TABLE_LINES * self.TABLE_LINE + 10))

    def _paint_bar(self, p: QPainter, b: Bar, left: float, x1: float) -> None:
        axis = self.axis
        assert axis is not None
        if b.selected:
            p.fillRect(QRectF(left, b.y, x1 - left + 10, b.h), style.colour(style.SELECTED))
        p.setFont(style.font(1.0 if b.h >= 30 else 0.85, bold=b.selected, mono=True))
        p.setPen(style.colour(style.FOREGROUND))
        p.drawText(QRectF(left, b.y, self.LABEL_W - 12, b.h),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, b.label)
        pad = max(b.h * 0.14, 3.0)
        body = QRectF(b.x0, b.y + pad, max(b.x1 - b.x0, 3.0), b.h - 2 * pad)
        now = self.cursor_ns or 0
        if b.tw_start_ns is not None:
            tail = QRectF()
            t0 = b.tail_start_ns
            t1 = b.tw_end_ns if b.tw_end_ns is not None else now
            tx0, tx1 = axis.x(t0), axis.x(t1)
            tail = QRectF(tx0, body.y(), max(tx1 - tx0, 2.0), body.height())
            self._draw_tail(p, tail)
        self._draw_open(p, body)
        self._paint_closing(p, b, body, now)
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

    def _paint_closing(self, p: QPainter, b: Bar, body: QRectF, now: int) -> None:
        """The half-closed states on the bar, where they were: the client's in its upper
        half, the server's in its lower half, named where there is room. (On loopback
        most last microseconds and take no width; a CLOSE_WAIT a program leaves shows.)"""
        axis = self.axis
        assert axis is not None
        p.setFont(style.font(0.75, bold=True))
        fm = QFontMetricsF(p.font())
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
            if fm.horizontalAdvance(state) + 8 <= strip.width() and fm.height() <= half + 2:
                p.setPen(style.text_on(fill))
                p.drawText(strip, Qt.AlignmentFlag.AlignCenter, state)

    def _paint_countdown(self, p: QPainter, b: Bar, tail: QRectF) -> None:
        approx = "" if b.tw_source == "observed" else "≈"
        side = self.tr("both ends") if b.tw_both else \
            self.tr("server") if b.tw_side == "server" else self.tr("client")
        left = f"{approx}{b.tw_left_s:.0f} s"
        p.setFont(style.font(0.85 if b.h >= 30 else 0.75, bold=True))
        fm = QFontMetricsF(p.font())
        inner = tail.adjusted(max(b.x1 - tail.left(), 0) + 6, 0, -6, 0)
        for text in (self.tr("{0} in TIME_WAIT, {1} left").format(side, left),
                     self.tr("{0}, {1} left").format(side, left), left):
            if fm.horizontalAdvance(text) <= inner.width():
                p.setPen(style.colour(style.INK_LIGHT))  # on the TIME_WAIT tail, any theme
                p.drawText(inner, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
                return

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
        y = r.top() + 5
        for label, value in self._cost_lines(c):
            line = QRectF(r.left() + 12, y, r.width() - 24, self.TABLE_LINE)
            p.setFont(style.font(0.95))
            p.setPen(style.colour(style.FOREGROUND))
            p.drawText(line, Qt.AlignmentFlag.AlignVCenter, label)
            p.setFont(style.font(1.05, bold=True, mono=True))
            p.drawText(line, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, value)
            y += self.TABLE_LINE

    def _paint_cost_line(self, p: QPainter, c: Costs, r: QRectF) -> None:
        per = c.per_request
        how = self._handshake_how(c)
        ratio = "" if per is None else fmt_ratio(per)
        long = [self.tr("{0} connections").format(c.connections),
                self.tr("{0} requests").format(c.requests),
                self.tr("{0} handshake segments").format(c.handshake_segments)
                + (f" ({how})" if how else "")
                + (self.tr(", {0} per request").format(ratio) if ratio else ""),
                self.tr("{0} in TIME_WAIT").format(c.time_wait)]
        short = [self.tr("{0} conn.").format(c.connections),
                 self.tr("{0} req.").format(c.requests),
                 self.tr("{0} handshake segs").format(c.handshake_segments)
                 + (self.tr(" ({0}/req.)").format(ratio) if ratio else ""),
                 self.tr("{0} TIME_WAIT").format(c.time_wait)]
        p.setFont(style.font(0.9, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        fm = QFontMetricsF(p.font())
        text = "  ·  ".join(long)
        if fm.horizontalAdvance(text) > r.width():
            text = "  ·  ".join(short)
        p.drawText(r, Qt.AlignmentFlag.AlignVCenter, fm.elidedText(
            text, Qt.TextElideMode.ElideRight, r.width()))

    def _paint_axis(self, p: QPainter, x0: float, x1: float, y: float, top: float) -> None:
        axis = self.axis
        assert axis is not None
        y += 8
        fg = style.colour(style.FOREGROUND)
        p.setFont(style.font(0.85))
        fm = QFontMetricsF(p.font())
        taken: list[tuple[float, float]] = []  # label extents, so that none overlap

        def label(x: float, text: str, colour: str) -> None:
            tw = fm.horizontalAdvance(text)
            lx = min(max(x - tw / 2, 4.0), x1 + 40 - tw)
            if any(lx < b + 12 and lx + tw > a - 12 for a, b in taken):
                return
            taken.append((lx, lx + tw))
            p.setPen(style.colour(colour))
            p.drawText(QRectF(lx, y + 9, tw + 2, fm.height() + 2), Qt.AlignmentFlag.AlignLeft, text)

        for r in axis.runs:
            if r.is_break:
                mid = (r.x0 + r.x1) / 2
                p.setPen(QPen(fg, 1.6))
                for dx in (-4, 4):
                    p.drawLine(QPointF(mid + dx - 4, y + 8), QPointF(mid + dx + 4, y - 8))
                # (first, before the ticks; a break too close to another one goes unlabelled)
                label(mid, self.tr("+{0}").format(fmt_duration(r.t1 - r.t0)), style.MUTED)
            else:
                p.setPen(QPen(fg, 1.6))
                p.drawLine(QPointF(r.x0, y), QPointF(r.x1, y))
        for r in axis.runs:  # ticks, each run to its own scale
            if r.is_break or r.x1 - r.x0 < 30:
                continue
            step = _nice_step(100 / _scale(r))
            base = self.trace_start_ns
            t = base + math.ceil((r.t0 - base) / step) * step
            for _ in range(100):
                if t > r.t1:
                    break
                x = r.x(t)
                p.setPen(QPen(fg, 1.2))
                p.drawLine(QPointF(x, y), QPointF(x, y + 6))
                label(x, fmt_tick(t - base, step), style.MUTED)
                t += step
        xc = axis.x(self.cursor_ns or 0)  # the cursor: the right edge of what happened
        p.setPen(QPen(fg, 1.5, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(xc, top), QPointF(xc, y))

    def _paint_footer(self, p: QPainter, w: float, h: float) -> None:
        s, k = self.costs[SHORT], self.costs[KEEP_ALIVE]
        if s.per_request is not None and k.per_request is not None:
            text = self.tr("Handshake segments per request: short {0}, keep-alive {1}."
                           "  Keep-alive pays the handshake once.").format(
                               fmt_ratio(s.per_request), fmt_ratio(k.per_request))
        else:
            text = self.tr("Keep-alive pays the handshake once; short connections pay it "
                           "for every request.")
        p.setFont(style.font(1.0, bold=True))
        p.setPen(style.colour(style.FOREGROUND))
        fm = QFontMetricsF(p.font())
        if fm.horizontalAdvance(text) > w - 24:  # a narrow window: the lesson only
            text = self.tr("Keep-alive pays the handshake once.")
        p.drawText(QRectF(12, h - self.FOOTER_H, w - 24, self.FOOTER_H),
                   Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)


def fmt_ratio(x: float) -> str:
    """3.0, 0.6, 0.15: one decimal, two when one would round a small ratio away."""
    text = f"{x:.2f}"
    return text.removesuffix("0")


def fmt_tick(ns: int, step: int) -> str:
    """A tick's time since the first event, with as many decimals as the step needs."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale or unit == "µs":
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
