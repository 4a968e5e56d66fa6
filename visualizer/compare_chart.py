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
        "footer": "由 sockscope compare 在本机（{cpus} 核）测得；每个服务器都记录自己的事件。",
    },
}
_KEEP: list = []
PANELS = ["req_s", "p99_ms", "cpu_pct", "threads", "rss_mb", "syscalls_per_request"]


def _number(value: float | int) -> str:
    if isinstance(value, int) or value == 0:
        return f"{int(value):,}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(rows: Sequence, subtitle: str, out: Path | str, lang: str = "en") -> None:
    """Draw ``rows`` (``engine.compare.Row``) and write a PNG to ``out``."""
    if "QT_QPA_PLATFORM" not in os.environ and not os.environ.get("DISPLAY") \
            and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a picture needs no screen
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen

    if QGuiApplication.instance() is None:  # fonts need one; it lives as long as we do
        _KEEP.append(QGuiApplication([]))
    words = TEXT.get(lang, TEXT["en"])
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

    ink, faint, red = QColor("#1a1a1a"), QColor("#666666"), QColor("#C0002B")
    p.setPen(ink)
    p.setFont(font(52, True))
    p.drawText(QRectF(60, 24, WIDTH - 120, 70), Qt.AlignmentFlag.AlignLeft
               | Qt.AlignmentFlag.AlignVCenter, words["title"])
    p.setFont(font(30))
    p.setPen(faint)
    p.drawText(QRectF(60, 92, WIDTH - 120, 44), Qt.AlignmentFlag.AlignLeft
               | Qt.AlignmentFlag.AlignVCenter, subtitle)
    p.drawText(QRectF(60, HEIGHT - 52, WIDTH - 120, 36), Qt.AlignmentFlag.AlignLeft
               | Qt.AlignmentFlag.AlignVCenter, words["footer"].format(cpus=os.cpu_count()))

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
