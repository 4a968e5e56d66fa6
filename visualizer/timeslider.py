"""The seek slider, with a mark wherever the engine (re)started, and a band over every
stretch where the capture lost frames (packets are missing there, in every view)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider

from .views import style


class TimelineSlider(QSlider):
    def __init__(self) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.marks: list[int] = []
        self.gaps: list[tuple[int, int, int]] = []  # (first index, last index, frames lost)
        self.setMinimumHeight(28)

    def set_marks(self, marks: list[int], gaps: list[tuple[int, int, int]] = ()) -> None:
        """``marks``: log indices where the engine (re)started; ``gaps``: the stretches
        (from the last event before to the first after) where the capture lost frames."""
        if marks != self.marks or list(gaps) != self.gaps:
            self.marks = list(marks)
            self.gaps = list(gaps)
            self._set_tip()
            self.update()

    def _set_tip(self) -> None:
        tips = []
        if self.marks:
            tips.append(self.tr("Marks: the engine started or restarted ({0})")
                        .format(len(self.marks)))
        if self.gaps:
            tips.append(self.tr("Orange bands: the capture lost {0} frames there; packets "
                                "are missing in every view").format(
                f"{sum(n for _, _, n in self.gaps):,}"))
        self.setToolTip("\n".join(tips))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() == QEvent.Type.LanguageChange:
            self._set_tip()
        super().changeEvent(event)

    def mark_x(self, index: int) -> int:
        """The x of log index ``index`` on the groove."""
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        return groove.x() + handle.width() // 2 + QStyle.sliderPositionFromValue(
            self.minimum(), self.maximum(), index, max(span, 1))

    def paintEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().paintEvent(event)
        if not (self.marks or self.gaps) or self.maximum() <= self.minimum():
            return
        painter = QPainter(self)
        band = QColor(style.WASTE)
        band.setAlpha(150)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(band))
        for first, last, _ in self.gaps:  # at least 4 px: a gap between two events shows
            a, b = self.mark_x(first), self.mark_x(last)
            painter.drawRect(min(a, b - 2), 0, max(4, b - a), self.height())
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(style.SERVER), 3))
        for index in self.marks:
            x = self.mark_x(index)
            painter.drawLine(x, 0, x, 7)
            painter.drawLine(x, self.height() - 7, x, self.height())
        painter.end()
