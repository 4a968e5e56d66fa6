"""The picture ``sockscope compare --png`` draws: one slide, six small bar charts.

Drawn with QPainter on an image (no window), 1920x1080, type sized for a projector:
throughput, tail latency, the engine's CPU, its threads, its memory, and its syscalls
per request, one bar per mode in the same colour in every chart. A mode whose run had
errors says how many beside its name in red: its bars are not the whole story.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

WIDTH, HEIGHT = 1920, 1080
# Okabe and Ito's palette: told apart with any colour vision, and in grey.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#999999", "#7F3C8D", "#11A579"]

TEXT = {
    "en": {
        "title": "The same load, each I/O model",
        "req_s": ("Requests per second", "higher is better"),
        "p99_ms": ("p99 latency, ms", "the slowest 1 %; lower is better"),
        "cpu_pct": ("Engine CPU, %", "of one core, during the load"),
        "threads": ("OS threads", "the most at once"),
        "rss_mb": ("Memory, MB", "the most at once (PSS, children included)"),
        "syscalls_per_request": ("Syscalls per request", "the engine's own, counted"),
        "errors": "{n} errors",
        "none": "—",
        "scale_title": "As idle connections grow",
        "idle_axis": "idle keep-alive connections (log scale)",
        "with_errors": "ringed in red: a run with errors",
        "footer": "Measured by sockscope compare on this machine ({cpus} cores); each engine "
                  "records its own events.",
    },
    "zh_CN": {
        "title": "同样的负载，不同的 I/O 模型",
        "req_s": ("每秒请求数", "越高越好"),
        "p99_ms": ("p99 延迟，毫秒", "最慢的 1%；越低越好"),
        "cpu_pct": ("服务器 CPU，%", "占一个核心，负载期间"),
        "threads": ("操作系统线程数", "同时最多"),
        "rss_mb": ("内存，MB", "同时最多（PSS，含子进程）"),
        "syscalls_per_request": ("每个请求的系统调用数", "服务器自己记录的"),
        "errors": "{n} 个错误",
        "none": "—",
        "scale_title": "空闲连接越来越多时",
        "idle_axis": "空闲长连接数（对数坐标）",
        "with_errors": "红圈：这次运行有错误",
        "footer": "由 sockscope compare 在本机（{cpus} 核）测得；每个服务器都记录自己的事件。",
    },
}
_KEEP: list = []
PANELS = ["req_s", "p99_ms", "cpu_pct", "threads", "rss_mb", "syscalls_per_request"]


def _number(value: float | int) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _slide(title: str, subtitle: str, words: dict):  # type: ignore[no-untyped-def]
    """A white 1920x1080 image with its title, subtitle and footer drawn, a painter on it,
    and a font maker (pixel size, bold)."""
    if "QT_QPA_PLATFORM" not in os.environ and not os.environ.get("DISPLAY") \
            and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a picture needs no screen
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter

    if QGuiApplication.instance() is None:  # fonts need one; it lives as long as we do
        _KEEP.append(QGuiApplication([]))
    image = QImage(WIDTH, HEIGHT, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)

    def font(px: int, bold: bool = False) -> QFont:
        f = QFont()
        f.setPixelSize(px)
        f.setBold(bold)
        return f

    left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    p.setPen(QColor("#1a1a1a"))
    p.setFont(font(52, True))
    p.drawText(QRectF(60, 24, WIDTH - 120, 70), left, title)
    p.setFont(font(30))
    p.setPen(QColor("#666666"))
    p.drawText(QRectF(60, 92, WIDTH - 120, 44), left, subtitle)
    p.drawText(QRectF(60, HEIGHT - 52, WIDTH - 120, 36), left,
               words["footer"].format(cpus=os.cpu_count()))
    return image, p, font


def render(rows: Sequence, subtitle: str, out: Path | str, lang: str = "en") -> None:
    """Draw ``rows`` (``engine.compare.Row``) and write a PNG to ``out``."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QPen

    words = TEXT.get(lang, TEXT["en"])
    image, p, font = _slide(words["title"], subtitle, words)
    ink, faint, red = QColor("#1a1a1a"), QColor("#666666"), QColor("#C0002B")

    colours = {row.mode: QColor(PALETTE[i % len(PALETTE)]) for i, row in enumerate(rows)}
    top, bottom, left, gap = 160, HEIGHT - 70, 60, 50
    cols, lines = 3, 2
    pw = (WIDTH - 2 * left - (cols - 1) * gap) / cols
    ph = (bottom - top - (lines - 1) * 30) / lines
    label_w = 230
    for n, key in enumerate(PANELS):
        x = left + (n % cols) * (pw + gap)
        y = top + (n // cols) * (ph + 30)
        heading, hint = words[key]
        p.setPen(ink)
        p.setFont(font(30, True))
        p.drawText(QRectF(x, y, pw, 38), Qt.AlignmentFlag.AlignLeft
                   | Qt.AlignmentFlag.AlignVCenter, heading)
        p.setPen(faint)
        p.setFont(font(22))
        p.drawText(QRectF(x, y + 36, pw, 28), Qt.AlignmentFlag.AlignLeft
                   | Qt.AlignmentFlag.AlignVCenter, hint)
        values = [getattr(r, key) for r in rows]
        top_value = max([v for v in values if v is not None] + [0]) or 1
        bar_area = QRectF(x + label_w, y + 72, pw - label_w - 150, ph - 82)
        slot = bar_area.height() / max(1, len(rows))
        bar_h = min(46.0, slot * 0.72)
        for k, (row, value) in enumerate(zip(rows, values)):
            cy = bar_area.top() + slot * k + slot / 2
            p.setPen(ink)
            p.setFont(font(26, True))
            name_rect = QRectF(x, cy - slot / 2, label_w - 14, slot)
            p.drawText(name_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       row.mode)
            errors = words["errors"].format(n=f"{row.errors:,}") \
                if key == "req_s" and row.errors else ""
            if value is None:
                p.setPen(faint)
                p.setFont(font(26))
                p.drawText(QRectF(bar_area.left() + 8, cy - bar_h / 2, 200, bar_h),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           words["none"])
                continue
            w = max(3.0, bar_area.width() * float(value) / top_value)
            p.fillRect(QRectF(bar_area.left(), cy - bar_h / 2, w, bar_h), colours[row.mode])
            p.setPen(red if errors else ink)
            p.setFont(font(26, bool(errors)))
            p.drawText(QRectF(bar_area.left() + w + 10, cy - bar_h / 2, 400, bar_h),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       _number(value) + (f"  ({errors})" if errors else ""))
        p.setPen(QPen(QColor("#bbbbbb"), 2))
        p.drawLine(int(bar_area.left()), int(bar_area.top()), int(bar_area.left()),
                   int(bar_area.bottom()))
    p.end()
    if not image.save(str(out), "PNG"):
        raise OSError(f"cannot write {out}")


def _nice_top(value: float) -> float:
    """The axis top: the least of 1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8 or 10 times a power
    of ten that is at least ``value`` (its quarters are then round numbers too)."""
    import math
    power = 10 ** math.floor(math.log10(value))
    return next(round(k * power, 9) for k in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10)
                if round(k * power, 9) >= value)


SCALE_PANELS = ["rss_mb", "threads", "p99_ms", "cpu_pct"]


def render_scale(rows: Sequence, subtitle: str, out: Path | str, lang: str = "en") -> None:
    """Draw how each mode's memory, threads, latency and CPU grow with the number of idle
    connections (``row.idle_asked``, on a log axis); write a PNG to ``out``."""
    import math

    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QPen

    words = TEXT.get(lang, TEXT["en"])
    image, p, font = _slide(words["scale_title"], subtitle, words)
    left_align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    ink, faint, grid, red = QColor("#1a1a1a"), QColor("#666666"), QColor("#dddddd"), \
        QColor("#C0002B")
    modes = list(dict.fromkeys(r.mode for r in rows))
    colours = {m: QColor(PALETTE[i % len(PALETTE)]) for i, m in enumerate(modes)}
    points = sorted({int(r.idle_asked) for r in rows})
    # The legend, one line across: each mode's colour and name, then what a red ring means.
    x = 60.0
    p.setFont(font(28, True))
    for m in modes:
        p.fillRect(QRectF(x, 152, 34, 22), colours[m])
        p.setPen(ink)
        p.drawText(QRectF(x + 44, 140, 300, 46), left_align, m)
        x += 44 + p.fontMetrics().horizontalAdvance(m) + 40
    p.setPen(QPen(red, 4))
    p.drawEllipse(QPointF(x + 12, 163), 11, 11)
    p.setPen(faint)
    p.setFont(font(24))
    p.drawText(QRectF(x + 34, 140, 600, 46), left_align, words["with_errors"])

    def xpos(n: int, area: QRectF) -> float:
        lo, hi = math.log10(max(points[0], 1)), math.log10(max(points[-1], 1))
        if hi <= lo:
            return area.center().x()
        return area.left() + (math.log10(max(n, 1)) - lo) / (hi - lo) * area.width()

    top, bottom, left, gap = 210, HEIGHT - 80, 60, 70
    pw = (WIDTH - 2 * left - gap) / 2
    ph = (bottom - top - 40) / 2
    for k, key in enumerate(SCALE_PANELS):
        x0 = left + (k % 2) * (pw + gap)
        y0 = top + (k // 2) * (ph + 40)
        p.setPen(ink)
        p.setFont(font(30, True))
        heading, hint = words[key]
        p.drawText(QRectF(x0, y0, pw, 38), left_align, heading)
        p.setPen(faint)
        p.setFont(font(22))
        p.drawText(QRectF(x0, y0 + 34, pw, 28), left_align, hint)
        area = QRectF(x0 + 110, y0 + 80, pw - 150, ph - 140)
        values = [getattr(r, key) for r in rows if getattr(r, key) is not None]
        most = _nice_top(max(values + [0]) or 1)
        # grid and the y labels: 0, a quarter... the largest value
        p.setFont(font(22))
        for g in range(5):
            y = area.bottom() - g / 4 * area.height()
            p.setPen(QPen(grid, 2))
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.setPen(faint)
            p.drawText(QRectF(x0, y - 16, 100, 32), Qt.AlignmentFlag.AlignRight
                       | Qt.AlignmentFlag.AlignVCenter, _number(most * g / 4))
        for n in points:  # the x ticks: the numbers of idle connections measured
            x = xpos(n, area)
            p.setPen(QPen(grid, 2))
            p.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
            p.setPen(faint)
            p.drawText(QRectF(x - 80, area.bottom() + 6, 160, 30), Qt.AlignmentFlag.AlignCenter,
                       f"{n:,}")
        if k >= 2:
            p.drawText(QRectF(area.left(), area.bottom() + 34, area.width(), 30),
                       Qt.AlignmentFlag.AlignCenter, words["idle_axis"])
        for m in modes:
            line = sorted(((int(r.idle_asked), getattr(r, key), r.errors) for r in rows
                           if r.mode == m and getattr(r, key) is not None))
            pts = [(QPointF(xpos(n, area), area.bottom() - float(v) / most * area.height()), e)
                   for n, v, e in line]
            p.setPen(QPen(colours[m], 5))
            for (a, _), (b, _) in zip(pts, pts[1:]):
                p.drawLine(a, b)
            for at, errors in pts:
                p.setPen(QPen(red, 4) if errors else QPen(colours[m], 2))
                p.setBrush(colours[m])
                p.drawEllipse(at, 9 if errors else 7, 9 if errors else 7)
            p.setBrush(Qt.BrushStyle.NoBrush)
    p.end()
    if not image.save(str(out), "PNG"):
        raise OSError(f"cannot write {out}")


def draw(rows: Sequence, subtitle: str, out: Path | str, lang: str = "en",
         scale: bool = False) -> None:
    """``sockscope compare --png``: the bars of one run, or the lines of a --scale series."""
    (render_scale if scale else render)(rows, subtitle, out, lang=lang)
