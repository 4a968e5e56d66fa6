"""The seek slider, with a mark wherever the engine (re)started."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider

from .views import style


class TimelineSlider(QSlider):
    def __init__(self) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.marks: list[int] = []
        self.setMinimumHeight(28)

    def set_marks(self, marks: list[int]) -> None:
        if marks != self.marks:
            self.marks = list(marks)
            self._set_tip()
            self.update()

    def _set_tip(self) -> None:
        self.setToolTip(self.tr("Marks: the engine started or restarted ({0})")
                        .format(len(self.marks)) if self.marks else "")

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
        if not self.marks or self.maximum() <= self.minimum():
            return
        painter = QPainter(self)
        painter.setPen(QPen(QColor(style.SERVER), 3))
        for index in self.marks:
            x = self.mark_x(index)
            painter.drawLine(x, 0, x, 7)
            painter.drawLine(x, self.height() - 7, x, self.height())
        painter.end()
