"""A damaged trace, the way a user opens one: ``sockscope replay FILE --view V
--screenshot OUT.png`` and the window's File → Open (``MainWindow.load_trace``).

A field of the wrong type or range is refused with exit code 1 (README) and a
message naming the line and the field, never a traceback from the view that
would have drawn it; a trace cut short opens with what was recovered, said on
standard error and in the status bar; a capture is recognised, with the command
that turns it into a trace.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from tests.engine.test_trace_read import (BAD_VALUES, IDS, record_trace, tcp_frames, with_value,
                                          write_pcap, write_pcapng)
from tests.qt.conftest import replay_window
from visualizer.app import MainWindow
from visualizer.views import view_classes

ROOT = Path(__file__).resolve().parents[2]
VIEWS = [cls.name for cls in view_classes()]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_trace(tmp_path_factory.mktemp("recorded") / "run.jsonl")


def replay(path: Path, view: str, png: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "visualizer.cli", "replay", str(path), "--view",
                           view, "--screenshot", str(png)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def refused(proc: subprocess.CompletedProcess[str], png: Path, line: int, field: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert f"line {line}:" in proc.stderr and f"field {field!r}" in proc.stderr, proc.stderr
    assert proc.stderr.startswith("sockscope replay: ") and not png.exists()


# ------------------------------------------------------------ sockscope replay
@pytest.mark.parametrize("kind,field,value,view", BAD_VALUES, ids=IDS)
def test_replay_refuses_a_wrong_value_in_the_view_it_broke(trace: Path, tmp_path: Path,
                                                           kind: str, field: str, value: Any,
                                                           view: str) -> None:
    bad, png = tmp_path / "bad.jsonl", tmp_path / "shot.png"
    line = with_value(trace, bad, kind, field, value)
    refused(replay(bad, view, png), png, line, field)


@pytest.mark.parametrize("view", VIEWS)
def test_replay_refuses_a_huge_fd_in_every_view(trace: Path, tmp_path: Path, view: str) -> None:
    bad, png = tmp_path / "bad.jsonl", tmp_path / "shot.png"
    line = with_value(trace, bad, "recv", "fd", 1e300)
    refused(replay(bad, view, png), png, line, "fd")


def test_replay_of_a_cut_trace_says_what_it_recovered(trace: Path, tmp_path: Path) -> None:
    data = trace.read_bytes()
    lines = data.count(b"\n")  # the last line's number (the header is line 1)
    cut, png = tmp_path / "cut.jsonl", tmp_path / "shot.png"
    cut.write_bytes(data[:-30])
    proc = replay(cut, "sequence", png)
    assert proc.returncode == 0 and png.exists(), proc.stderr
    assert f"recovered {lines - 2} events; line {lines} was cut short" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("fmt", ["pcapng", "pcap"])
def test_replay_of_a_capture_points_to_import(tmp_path: Path, fmt: str) -> None:
    capture, png = tmp_path / f"lo.{fmt}", tmp_path / "shot.png"
    if fmt == "pcapng":
        write_pcapng(capture)
    else:
        write_pcap(capture, tcp_frames())
    proc = replay(capture, "sequence", png)
    assert proc.returncode == 1 and not png.exists()
    assert f"this is a {fmt} capture, not a trace: turn it into one with " \
           f"`sockscope import {capture} --trace OUT.jsonl`" in proc.stderr, proc.stderr
    assert "empty file" not in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------ the window's File → Open
@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return replay_window(qtbot, tmp_path, monkeypatch)


def draw_every_view(w: MainWindow) -> None:
    """Each view in front, at the end and at a few cursors, painted (pytest-qt fails the
    test on an exception raised inside Qt's paint calls)."""
    for name in w.views:
        assert w.show_view(name)
        for index in (len(w.timeline.log) - 1, 0, len(w.timeline.log) // 2):
            w.seek(index)
            QApplication.processEvents()
        w.views[name].settle()
        w.grab()


@pytest.mark.parametrize("kind,field,value,view", BAD_VALUES, ids=IDS)
def test_open_refuses_a_wrong_value_and_keeps_what_it_showed(window: MainWindow, trace: Path,
                                                             tmp_path: Path, kind: str,
                                                             field: str, value: Any,
                                                             view: str) -> None:
    assert window.load_trace(str(trace))
    shown = len(window.timeline.log)
    bad = tmp_path / "bad.jsonl"
    line = with_value(trace, bad, kind, field, value)
    assert not window.load_trace(str(bad))
    assert len(window.warnings) == 1
    title, text = window.warnings[0]
    assert title == "Cannot open trace"
    assert f"line {line}:" in text and f"field {field!r}" in text, text
    assert len(window.timeline.log) == shown and window.windowTitle().endswith("run.jsonl")
    window.show_view(view)
    draw_every_view(window)


def test_open_of_a_cut_trace_says_what_it_recovered(window: MainWindow, trace: Path,
                                                    tmp_path: Path) -> None:
    data = trace.read_bytes()
    lines = data.count(b"\n")
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[:-30])
    assert window.load_trace(str(cut)) and not window.warnings
    assert len(window.timeline.log) == lines - 2
    message = window.statusBar().currentMessage()
    assert f"recovered {lines - 2} events; line {lines} was cut short" in message, message
    draw_every_view(window)


@pytest.mark.parametrize("fmt", ["pcapng", "pcap"])
def test_open_of_a_capture_points_to_import(window: MainWindow, tmp_path: Path, fmt: str) -> None:
    capture = tmp_path / f"lo.{fmt}"
    if fmt == "pcapng":
        write_pcapng(capture)
    else:
        write_pcap(capture, tcp_frames())
    assert not window.load_trace(str(capture))
    text = window.warnings[0][1]
    assert f"this is a {fmt} capture, not a trace: turn it into one with " \
           f"`sockscope import {capture} --trace OUT.jsonl`" in text, text
