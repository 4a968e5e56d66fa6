"""The window opens a long trace at its start and folds the rest while the user looks.

A real recording, read by the worker processes (the threshold made small, as a
million-event trace meets it), opened with File → Open's ``load_trace``: the cursor
stays before the first event, the status bar says how much is folded, the
timer folds ahead a slice a tick until every snapshot is built, and End then
shows what folding from the start shows.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from tests.conftest import record_derived
import visualizer.app as app_module
import visualizer.model.reader as reader
from visualizer.app import MainWindow
from visualizer.model import open_trace


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_derived(tmp_path_factory.mktemp("long") / "run.jsonl", requests=250)


def test_a_long_trace_opens_at_its_start_and_is_folded_while_it_shows(
        qtbot, tmp_path: Path, recorded: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(app_module, "FOLDED_AT_OPEN", 100)
    monkeypatch.setattr(reader, "PARALLEL_FROM", 0)
    monkeypatch.setattr(reader, "PART", 20_000)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    w.show()
    assert w.load_trace(str(recorded))
    n = len(w.timeline.log)
    assert n > 5000 and len(w.timeline.log._decoded) < 50  # read by the workers (no events)
    assert w.timeline.cursor == -1 and w.position_label.text() == f"0 / {n}"
    assert w.fold_timer.isActive() and "folded: " in w.status_label.text()
    assert "opened at its start" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not w.fold_timer.isActive(), timeout=30_000)
    assert w.timeline.cursor == -1 and w.timeline.folded == n // 1000 * 1000
    assert "folded: " not in w.status_label.text()
    folded, _, _ = open_trace(recorded, workers=1)
    w.seek(n - 1)
    assert w.timeline.state == folded.state and len(folded.state.connections) == 3
    assert w.position_label.text() == f"{n} / {n}"


def test_a_short_trace_still_opens_at_its_end(qtbot, tmp_path: Path, recorded: Path) -> None:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(w)
    assert w.load_trace(str(recorded))
    n = len(w.timeline.log)
    assert w.timeline.cursor == n - 1 and not w.fold_timer.isActive()
