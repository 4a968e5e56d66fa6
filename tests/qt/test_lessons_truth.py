"""Truth in time: a lesson step shows the same states on every recording, the sequence
view and the connections table agree at every step, and a caption that names a state
names one the picture shows.

Each lesson is recorded several times for real (captured packets where this user may,
and as an unprivileged user gets them: derived from the calls), then walked step by step.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from visualizer.app import MainWindow, _state_cell
from visualizer.lessons import all_lessons, basics, prepare
from visualizer.lessons.base import Prepared

STATES = ("SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
          "CLOSING", "LAST_ACK", "TIME_WAIT", "CLOSED")
NAMED = re.compile(r"\b(" + "|".join(STATES) + r")\b")
RECORDINGS = {"first-request": 10, "close-wait": 3, "time-wait": 3}


@pytest.fixture(params=["auto", "derived"])
def packets(request, monkeypatch):  # type: ignore[no-untyped-def]
    """Record as this user may (auto), or as an unprivileged one would (derived)."""
    if request.param == "derived":
        monkeypatch.setattr(basics, "OBSERVING", (*basics.OBSERVING, "--packets", "derived"))
    return request.param


def walk(window: MainWindow, prepared: Prepared) -> list[tuple]:
    """Every step: (client, server) as the sequence view draws them and as the
    connections table lists them, which must agree; and the states named by the caption,
    which the picture must show (a lane's state or mark, or a connection's state)."""
    window.open_lesson(prepared)
    view = window.views["sequence"]
    log = prepared.timeline.log
    seen = []
    for k, step in enumerate(prepared.steps):
        window.go_to_step(k)
        conn = step.conn(log) if step.conn else None
        state = window.timeline.state.connections.get(conn) if conn else None
        view.select(conn)
        view.show_state(window.timeline)
        drawn = (view.client_state, view.server_state)
        if state is not None:
            table = (_state_cell(state, "client").split()[0].rstrip("*"),
                     _state_cell(state, "server").split()[0].rstrip("*"))
            assert drawn == table, (prepared.lesson.name, k + 1, drawn, table)
        else:
            table = None
        # What the step's picture shows: its connection's lanes and their marks; the views
        # of every connection (sockets, lifecycle) show every connection's states.
        shown = {m.state for m in view.marks} | set(drawn)
        if step.view in ("sockets", "lifecycle"):
            shown |= {s for c in window.timeline.state.connections.values()
                      for s in (c.client, c.server)}
        # (The narration's: a question names what the next step will show.)
        named = set(NAMED.findall(prepared.narration(k)))
        assert named <= shown, (prepared.lesson.name, k + 1, named - shown)
        seen.append((step.view, drawn, table))
    return seen


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_every_recording_shows_the_same_states(qtbot, tmp_path: Path, packets: str,  # type: ignore[no-untyped-def]
                                               name: str) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    window.show()
    walks = []
    for n in range(RECORDINGS[name]):
        workdir = tmp_path / f"{name}-{n}"
        workdir.mkdir()
        prepared = prepare(all_lessons()[name], workdir)
        walks.append(walk(window, prepared))
    first = walks[0]
    for n, other in enumerate(walks[1:], 2):
        assert other == first, f"{name}: recording {n} differs from the first ({packets})"
    if name == "first-request":
        # The handshake and the teardown, each end as the textbook has it, at its step.
        sequence = [drawn for view, drawn, _ in first if view == "sequence"]
        assert sequence == [("SYN_SENT", "—"), ("ESTABLISHED", "SYN_RECV"),
                            ("CLOSE_WAIT", "FIN_WAIT_1"), ("CLOSED", "TIME_WAIT")]
        # (the handshake's last ACK stands on the state diagram: both ends ESTABLISHED)
        assert [view for view, _, _ in first][2] == "diagram"
    window.close()
