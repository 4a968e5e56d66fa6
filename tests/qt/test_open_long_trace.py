"""The window opens a long trace at its start, shows it as soon as its first part is read,
and reads and folds the rest while the user looks.

A real recording, read by the worker processes in small parts (the thresholds made
small, as a million-event trace meets them), opened with File → Open's
``load_trace``: the cursor stays before the first event while the log grows, the
status bar says how far the reading is, then how much is folded, and End shows what folding from the start shows. A bad line further on is found
after the window showed the start: refused naming its line, as a small file's is,
and the window shows again what it showed before.
"""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

import visualizer.app as app_module
import visualizer.model.reader as reader
from tests.conftest import record_derived
from tests.qt.conftest import replay_window
from visualizer.app import MainWindow
from visualizer.model import open_trace


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_derived(tmp_path_factory.mktemp("long") / "run.jsonl", requests=250)


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(app_module, "FOLDED_AT_OPEN", 100)
    monkeypatch.setattr(app_module, "SHOWN_WHILE_READ", 0)
    monkeypatch.setattr(reader, "PARALLEL_FROM", 0)
    monkeypatch.setattr(reader, "PART", 30_000)
    w = replay_window(qtbot, tmp_path, monkeypatch)
    yield w
    w.close()


def test_a_long_trace_is_shown_at_its_start_and_read_and_folded_while_it_shows(
        qtbot, window: MainWindow, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    w = window
    total = len(recorded.read_bytes().splitlines()) - 2  # (the header and the end line)
    assert w.load_trace(str(recorded))
    assert w._reading is not None and 0 < len(w.timeline.log) < total  # the first part
    assert w.timeline.cursor == -1 and w.position_label.text().startswith("0 / ")
    assert "reading: " in w.status_label.text() and w.fold_timer.isActive()
    assert "Opened at its start" in w.statusBar().currentMessage()
    assert not w.table.selectionModel().selectedRows()  # (no event is the cursor's yet)
    # The message is on the screen, where the status line was (drawn: dark pixels on the
    # left of the bar), and the line comes back after it.
    QApplication.processEvents()
    assert not w.status_label.isVisible() and ink(w.statusBar().grab().toImage()) > 200
    w.statusBar().clearMessage()
    assert w.status_label.isVisible()
    qtbot.waitUntil(lambda: w._reading is None, timeout=30_000)
    assert len(w.timeline.log) == total and w.position_label.text() == f"0 / {total}"
    qtbot.waitUntil(lambda: not w.fold_timer.isActive(), timeout=30_000)
    assert "states worked out: " not in w.status_label.text() and "reading: " not in w.status_label.text()
    assert w.timeline.cursor == -1 and w.timeline.folded == total // 1000 * 1000
    folded, _, _ = open_trace(recorded, workers=1)
    w.seek(total - 1)
    assert w.timeline.state == folded.state and len(folded.state.connections) == 3
    assert w.position_label.text() == f"{total} / {total}"
    assert [r.row() for r in w.table.selectionModel().selectedRows()] == [total - 1]


def ink(image) -> int:  # type: ignore[no-untyped-def]
    """Dark pixels in the left half of a picture (text drawn there)."""
    return sum(1 for y in range(image.height()) for x in range(0, image.width() // 2, 2)
               if image.pixelColor(x, y).lightness() < 100)


def test_a_bad_line_found_while_reading_is_refused_and_what_was_shown_comes_back(
        qtbot, window: MainWindow, recorded: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = window
    short = record_derived(tmp_path / "short.jsonl", requests=2, clients=1)
    app_module.SHOWN_WHILE_READ = 1 << 40  # (the first one opened at once)
    assert w.load_trace(str(short)) and w._reading is None
    before = len(w.timeline.log)
    app_module.SHOWN_WHILE_READ = 0
    lines = recorded.read_bytes().splitlines(keepends=True)
    number = len(lines) * 4 // 5  # far past the first part
    row = orjson.loads(lines[number - 1])
    row["fd"] = "nine"
    lines[number - 1] = orjson.dumps(row) + b"\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines))
    assert w.load_trace(str(bad))  # shown: its first part is whole
    assert w._reading is not None and w.windowTitle().endswith("bad.jsonl")
    qtbot.waitUntil(lambda: bool(w.warnings), timeout=30_000)
    (title, text), = w.warnings
    assert title == "Cannot open trace" and f"line {number}:" in text and "field 'fd'" in text
    assert w._reading is None and len(w.timeline.log) == before
    assert w.windowTitle().endswith("short.jsonl")


def test_a_short_trace_still_opens_at_its_end(qtbot, tmp_path: Path, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    assert w.load_trace(str(recorded))
    n = len(w.timeline.log)
    assert w.timeline.cursor == n - 1 and not w.fold_timer.isActive() and w._reading is None
    assert "Opened at its start" not in w.statusBar().currentMessage()
    # A timeline folded to its end, shown at an early step (as a lesson is): nothing to fold
    # ahead (its last stretch, shorter than a snapshot's, is folded as the cursor goes),
    # and nothing said of opening at the start.
    timeline, _, _ = open_trace(recorded, workers=1)
    assert n % timeline.every and n > timeline.every
    timeline.seek(5)
    w.statusBar().clearMessage()
    w.show_timeline(timeline, "a lesson")
    assert not w.fold_timer.isActive() and not w.statusBar().currentMessage()
