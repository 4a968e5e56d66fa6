"""The banner above the shown view that says a key moment out loud (model/moments.py):
a failed bind (EADDRINUSE), a SYN sent again, bytes edge-triggered epoll will not
report again. It sits between the caption and the view (it covers nothing), in the
view's large type, with where the fact comes from; gone when the moment has passed."""
from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QLabel, QWidget

from .model.moments import Moment
from .views import style

def words(m: Moment) -> tuple[str, str]:
    """The banner's headline and the line that says where it comes from."""
    n = m.numbers
    if m.kind == "eaddrinuse":
        head = QCoreApplication.translate(
            "MomentBanner", "bind() failed: EADDRINUSE: port {0} is still taken").format(
            n.get("port"))
        if n.get("reuseaddr") is False:
            head += QCoreApplication.translate("MomentBanner", " (SO_REUSEADDR off)")
    elif m.kind == "syn_resent" and n.get("after_s") is not None:
        head = QCoreApplication.translate(
            "MomentBanner", "SYN sent again after {0:.1f} s (try {1}): no SYN|ACK came "
                            "back").format(n["after_s"], n["count"])
    elif m.kind == "syn_resent":
        head = QCoreApplication.translate(
            "MomentBanner", "The client's kernel sent its SYN again: no SYN|ACK came back")
    else:
        head = QCoreApplication.translate(
            "MomentBanner", "{0} bytes left unread in fd {1}: edge-triggered epoll will not "
                            "report them again").format(n.get("bytes"), n.get("fd"))
    if m.source == "captured":
        source = QCoreApplication.translate("MomentBanner", "from the captured packets")
    elif m.source == "traced":
        source = QCoreApplication.translate("MomentBanner", "the kernel said so (tracepoint)")
    elif m.source == "observed":
        source = QCoreApplication.translate("MomentBanner", "the kernel said so")
    else:
        source = QCoreApplication.translate("MomentBanner", "from the recorded events")
    return head, source


class MomentBanner(QLabel):
    """One per window; ``show_on(view, moment)`` places it over the view shown."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("moment-banner")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.moment: Moment | None = None
        self.hide()

    def show_on(self, view: QWidget | None, moment: Moment | None) -> None:
        """Say ``moment`` (None: hide), its type sized to ``view`` as the views size theirs."""
        self.moment = moment
        if view is None or moment is None:
            self.hide()
            return
        head, source = words(moment)
        self.setText(f"{head} · {source}")
        colour = style.SERVER if moment.kind == "eaddrinuse" else style.WASTE
        # As large as the views' type, but never more than a sixth of the room: the
        # view under it is the picture.
        room = max(1, (self.parentWidget() or view).height())
        scale = max(0.9, min(1.6, view.width() / 1280, view.height() / 720))
        font = style.font(scale, True)
        for _ in range(8):
            fm = QFontMetricsF(font)
            width = max(1.0, view.width() - 3 * fm.height())
            lines = -(-fm.horizontalAdvance(self.text()) // width)
            if (lines + 0.6) * fm.lineSpacing() <= room / 6 or font.pointSizeF() <= 7:
                break
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        if font != self.font():
            self.setFont(font)
        pad = max(4, round(QFontMetricsF(font).height() * 0.25))
        sheet = (f"QLabel#moment-banner {{ background: {colour}; color: "
                 f"{style.text_on(style.colour(colour)).name()}; padding: {pad}px {2 * pad}px; "
                 "border-radius: 6px; }")
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)
        self.show()
