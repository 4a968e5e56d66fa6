"""The Qt binding itself: a release that miscounts references kills long sessions."""
from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QLabel, QTableWidget


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12: "
                    "its reference count cannot run out")
def test_calls_that_return_nothing_keep_none_alive(qtbot) -> None:  # type: ignore[no-untyped-def]
    """PySide6 6.12.0 decremented None's count on every void call: after some
    hundred thousand (minutes of a live window) the process died with
    "Fatal Python error: none_dealloc"."""
    label, table = QLabel(), QTableWidget(3, 3)
    qtbot.addWidget(label)
    qtbot.addWidget(table)
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")  # returns nothing
        table.item(1, 1)  # returns None: no item there
    assert abs(sys.getrefcount(None) - before) < 50
