"""Qt tests: every widget a test made is gone before the next test starts.

A widget kept alive by a reference cycle (a lambda connected to its own
signal) would otherwise be destroyed at interpreter exit, after Qt has torn
down what it needs: pyqtgraph's scenes then crash the process, after every
test has passed."""
from __future__ import annotations

import gc
from typing import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication


@pytest.fixture(autouse=True)
def _widgets_die_with_their_test(qapp: QApplication) -> Iterator[None]:
    yield
    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
