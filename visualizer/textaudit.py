"""Text measured against its box, for the tests and the lesson renders.

While a :class:`TextAudit` is open, every ``QPainter.drawText`` call made from Python
(every view here, and pyqtgraph's axes and items) is measured before it is drawn, in
the painter's own font:

- **cut**: drawn in a rectangle that clips (no ``TextDontClip``) and the text needs more
  room than the rectangle has: a label the picture cuts;
- **edge**: drawn partly outside its widget's visible area (a label cut by the edge of
  the view; text wholly outside, scrolled away, is not a finding);
- **overlap**: two different texts drawn on top of each other on the same page.

:func:`widget_findings` does the same for the labels Qt paints itself (QLabel): a
one-line label wider than its box, or a wrapped one taller than its box.

Open it around one paint of the page (``page.grab()``): every text is then drawn
once, where it shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QFontMetricsF, QPainter
from PySide6.QtWidgets import QAbstractButton, QAbstractScrollArea, QLabel, QWidget

from .views import style

SLACK = 1.5  # px: rounding, antialiasing, a font's side bearing


@dataclass
class Finding:
    kind: str  # "cut", "edge", "overlap"
    text: str
    where: str  # the widget's class (and object name)
    need: tuple[float, float]  # width, height the text needs
    box: tuple[float, float]  # width, height it was given (or is visible)
    at: tuple[float, float] = (0.0, 0.0)  # its top-left, page coordinates

    def __str__(self) -> str:
        text = self.text.replace("\n", "⏎")
        if len(text) > 60:
            text = text[:57] + "…"
        return (f"{self.kind}: {text!r} in {self.where} at {self.at[0]:.0f},{self.at[1]:.0f}: "
                f"needs {self.need[0]:.0f}×{self.need[1]:.0f}, has {self.box[0]:.0f}×"
                f"{self.box[1]:.0f}")


@dataclass
class _Drawn:
    text: str
    rect: QRectF  # page coordinates, the text's own extent
    where: str
    device: int


def _ink(fm: QFontMetricsF, text: str, box: QRectF, flags: int) -> QRectF:
    """Where one line of ``text`` puts ink when drawn in ``box`` with ``flags``."""
    x, y = style.aligned(box, fm.horizontalAdvance(text), fm.height(), flags)
    return fm.tightBoundingRect(text).translated(x, y + fm.ascent())


def _name(device: Any) -> str:
    name = type(device).__name__
    obj = device.objectName() if isinstance(device, QWidget) else ""
    return f"{name}({obj})" if obj else name


def _visible(device: Any) -> QRectF | None:
    if not isinstance(device, QWidget):
        return None
    region = device.visibleRegion()
    return QRectF(region.boundingRect()) if not region.isEmpty() else QRectF(device.rect())


class TextAudit:
    """``with TextAudit() as audit: page.grab()`` then ``audit.findings()``."""

    def __init__(self) -> None:
        self.drawn: list[_Drawn] = []
        self.found: list[Finding] = []
        self._original: Any = None

    def __enter__(self) -> TextAudit:
        self._original = QPainter.drawText
        original, audit = self._original, self

        def drawText(painter: QPainter, *args: Any) -> Any:  # noqa: N802 (Qt's name)
            try:
                audit._measure(painter, args)
            except Exception:  # never let the audit break a paint
                pass
            return original(painter, *args)

        QPainter.drawText = drawText  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        QPainter.drawText = self._original  # type: ignore[method-assign]

    def _measure(self, p: QPainter, args: tuple) -> None:
        text = next((a for a in args if isinstance(a, str)), None)
        if not text or not text.strip():
            return
        fm = QFontMetricsF(p.font())
        device = p.device()
        where = _name(device)
        first = args[0]
        if isinstance(first, (QRectF, QRect)):
            box = QRectF(first)
            flags = int(args[1]) if len(args) >= 3 and not isinstance(args[1], str) \
                else int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            need = fm.boundingRect(box, flags, text)
            clips = not flags & int(Qt.TextFlag.TextDontClip)
            if "\n" not in text and not flags & int(Qt.TextFlag.TextWordWrap):
                ink = _ink(fm, text, box, flags)  # one line: what must show is its ink
                over = not box.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(ink)
                size = (ink.width(), ink.height())
                need = ink
            else:
                over = need.width() > box.width() + SLACK or need.height() > box.height() + SLACK
                size = (need.width(), need.height())
            if clips and over:
                page = p.deviceTransform().mapRect(box)
                self.found.append(Finding("cut", text, where, size, (box.width(), box.height()),
                                          (page.x(), page.y())))
            extent = need.intersected(box) if clips else need
        else:
            if isinstance(first, (QPointF, QPoint)):
                x, y = float(first.x()), float(first.y())
            else:
                x, y = float(args[0]), float(args[1])
            extent = fm.tightBoundingRect(text).translated(x, y)  # drawn on a baseline
        local = p.worldTransform().mapRect(extent)
        visible = _visible(device)
        if visible is not None and not local.intersects(visible):
            return  # scrolled away: not on the page
        if visible is not None and isinstance(device.parent(), QAbstractScrollArea):
            # a list scrolls: a row half shown at its top or bottom is what scrolling is
            visible = QRectF(visible.x(), local.y(), visible.width(), local.height())
        if visible is not None and local.intersects(visible) and not visible.adjusted(
                -SLACK, -SLACK, SLACK, SLACK).contains(local):
            page = p.deviceTransform().mapRect(extent)
            inside = local.intersected(visible)
            self.found.append(Finding("edge", text, where, (local.width(), local.height()),
                                      (inside.width(), inside.height()), (page.x(), page.y())))
        self.drawn.append(_Drawn(text, p.deviceTransform().mapRect(extent), where, id(device)))

    def overlaps(self) -> list[Finding]:
        """Pairs of different texts drawn over each other (each pair once)."""
        out: list[Finding] = []
        seen: set[tuple[str, str]] = set()
        drawn = sorted(self.drawn, key=lambda d: d.rect.top())
        for i, a in enumerate(drawn):
            for b in drawn[i + 1:]:
                if b.rect.top() >= a.rect.bottom():
                    break
                if a.text == b.text:
                    continue  # the same words drawn twice (a shadow, a repaint)
                common = a.rect.intersected(b.rect)
                smaller = min(a.rect.height(), b.rect.height())
                if common.width() > 2 * SLACK and common.height() > 0.3 * smaller:
                    key = (a.text, b.text)
                    if key in seen:
                        continue
                    seen.add(key)
                    out.append(Finding("overlap", f"{a.text} / {b.text}", a.where,
                                       (a.rect.width(), a.rect.height()),
                                       (common.width(), common.height()),
                                       (common.x(), common.y())))
        return out

    def findings(self) -> list[Finding]:
        return self.found + self.overlaps()


def widget_findings(root: QWidget) -> list[Finding]:
    """The labels and buttons under ``root`` (shown ones) whose text does not fit."""
    out: list[Finding] = []
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisible() or w.width() <= 0:
            continue
        if isinstance(w, QLabel) and w.text():
            text = w.text()
            if w.textFormat() == Qt.TextFormat.RichText or "<" in text:
                continue  # rich text lays itself out; its size hint is not its need
            box = w.contentsRect()
            fm = QFontMetricsF(w.font())
            if w.wordWrap():
                need_h = w.heightForWidth(w.width())
                if need_h > w.height() + SLACK:
                    out.append(_widget_finding(w, text, (box.width(), need_h), box))
            else:
                need_w = max(fm.horizontalAdvance(s) for s in text.split("\n"))
                if need_w > box.width() + SLACK:
                    out.append(_widget_finding(w, text, (need_w, fm.height()), box))
        elif isinstance(w, QAbstractButton) and w.text():
            hint = w.sizeHint()
            if hint.width() > w.width() + SLACK and w.sizePolicy().horizontalPolicy() != \
                    w.sizePolicy().Policy.Ignored:
                out.append(_widget_finding(w, w.text(), (hint.width(), hint.height()), w.rect()))
    return out


def _widget_finding(w: QWidget, text: str, need: tuple[float, float], box: Any) -> Finding:
    at = w.mapTo(w.window(), w.rect().topLeft())
    return Finding("cut", text, _name(w), need, (box.width(), box.height()),
                   (float(at.x()), float(at.y())))
