"""The one QApplication of a ``sockscope`` command, and how a terminal stops it.

- Qt's offscreen platform says "This plugin does not support propagateSizeHints()"
  for every window it shows: a fact about the platform, not about SockScope, said on
  every render. That one message is dropped; every other one is printed as Qt would.
- Ctrl+C (SIGINT) and SIGTERM close the window the way its close button does (its
  engine and every client it started stop with it) and end the event loop. Python
  runs a signal's handler only between bytecodes, and Qt's loop runs none while it
  waits: a short timer gives it those moments. Those moments may fall in the middle of
  any of the window's own code (a drain of the engine's events, with its locks held),
  so the handler closes nothing itself: it asks the loop to close the window as soon
  as the code it interrupted has returned.
"""
from __future__ import annotations

import signal
import sys

from PySide6.QtCore import QtMsgType, QTimer, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QWidget

QUIET = ("This plugin does not support propagateSizeHints()",)
_KEEP: list = []


def _messages(kind: QtMsgType, context: object, message: str) -> None:
    if message in QUIET:
        return
    print(message, file=sys.stderr)


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        qInstallMessageHandler(_messages)
        app = QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    return app


def quit_on_signals(app: QApplication, window: QWidget) -> None:
    """SIGINT and SIGTERM close ``window`` and end ``app``'s loop, within a fifth of a
    second, with no traceback."""
    def close() -> None:
        window.close()
        app.quit()

    def stop(signum: int, frame: object) -> None:
        QTimer.singleShot(0, app, close)  # not now: the code this interrupted comes first

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    tick = QTimer(app)
    tick.timeout.connect(lambda: None)  # Python code runs: pending signals are handled
    tick.start(200)
    _KEEP.append(tick)
