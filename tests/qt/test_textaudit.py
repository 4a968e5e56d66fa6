"""The text audit finds what a projector would show cut or piled up, and passes what fits."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFont, QPainter
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from visualizer.textaudit import TextAudit, widget_findings


class Painted(QWidget):
    def __init__(self, draw) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.draw = draw
        self.resize(300, 120)

    def paintEvent(self, _event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        p = QPainter(self)
        f = QFont()
        f.setPixelSize(20)
        p.setFont(f)
        self.draw(p)
        p.end()


def audit(draw) -> list:  # type: ignore[no-untyped-def]
    w = Painted(draw)
    w.show()
    with TextAudit() as a:
        w.grab()
    w.close()
    return a.findings()


def test_text_that_fits_is_no_finding(qtbot) -> None:  # type: ignore[no-untyped-def]
    assert audit(lambda p: (p.drawText(QRectF(10, 10, 200, 40), int(Qt.AlignmentFlag.AlignCenter),
                                       "fits"),
                            p.drawText(QPointF(10, 90), "also fits"))) == []


def test_a_label_wider_than_its_box_is_cut(qtbot) -> None:  # type: ignore[no-untyped-def]
    found = audit(lambda p: p.drawText(QRectF(10, 10, 40, 40), int(Qt.AlignmentFlag.AlignLeft),
                                       "much too long for it"))
    assert [f.kind for f in found] == ["cut"] and found[0].need[0] > 40


def test_a_label_lower_than_its_box_is_cut(qtbot) -> None:  # type: ignore[no-untyped-def]
    found = audit(lambda p: p.drawText(QRectF(10, 10, 200, 8), int(Qt.AlignmentFlag.AlignVCenter),
                                       "Tall"))
    assert [f.kind for f in found] == ["cut"]


def test_text_past_the_widget_edge(qtbot) -> None:  # type: ignore[no-untyped-def]
    found = audit(lambda p: p.drawText(QPointF(250, 60), "over the edge"))
    assert [f.kind for f in found] == ["edge"]


def test_two_texts_on_each_other(qtbot) -> None:  # type: ignore[no-untyped-def]
    found = audit(lambda p: (p.drawText(QPointF(10, 60), "first words"),
                             p.drawText(QPointF(40, 62), "second words")))
    assert [f.kind for f in found] == ["overlap"]


def test_a_qlabel_too_narrow(qtbot) -> None:  # type: ignore[no-untyped-def]
    top = QWidget()
    lay = QVBoxLayout(top)
    label = QLabel("a label far wider than the room it was given")
    label.setMinimumWidth(10)
    label.setMaximumWidth(60)
    lay.addWidget(label)
    top.show()
    qtbot.addWidget(top)
    assert [f.kind for f in widget_findings(top)] == ["cut"]
    label.setMaximumWidth(2000)
    top.resize(800, 100)
    qtbot.waitUntil(lambda: label.width() > 400, timeout=2000)
    assert widget_findings(top) == []
