"""The lesson machinery, with the first lesson: recorded for real, walked step by step."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from visualizer.app import MainWindow
from visualizer.lessons import LANGS, all_lessons, prepare
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from tests.qt.conftest import engine_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def first(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["first-request"], tmp_path_factory.mktemp("lesson"))


def test_every_lesson_is_narrated_in_both_languages() -> None:
    lessons = all_lessons()
    assert "first-request" in lessons
    for lesson in lessons.values():
        for text in (lesson.title, lesson.summary):
            assert all(text.get(lang) for lang in LANGS), lesson.name


def test_a_recording_whose_steps_differ_from_the_list_says_so(first, tmp_path: Path
                                                             ) -> None:  # type: ignore[no-untyped-def]
    """What ``sockscope lessons`` says (N steps) is what the recording gives; where a
    recording differs, the lesson still opens and says so (a problem line)."""
    import dataclasses
    assert len(first.steps) == first.lesson.count() == 10
    again = prepare(first.lesson, tmp_path, trace=first.trace)  # an earlier recording, taken
    assert again.at == first.at and not [p for p in again.problems if "steps" in p]
    wrong = dataclasses.replace(first.lesson, length=lambda: 11)
    told = prepare(wrong, tmp_path, trace=first.trace)
    assert "first-request: this recording has 10 steps; sockscope lessons said 11" in told.problems


def test_first_request_walks_from_syn_to_time_wait(qtbot, first, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = first.timeline.log
    steps = first.steps
    assert all(s.text.get("en") and s.text.get("zh_CN") for s in steps)
    assert first.at == sorted(first.at)
    # A step on a segment stands on the segment and the states it caused (dated with it).
    segment = [max(i for i in range(at + 1) if log[i].kind == "packet") for at in first.at[:2]]
    assert [log[i].data["flags"] for i in segment] == ["SYN", "SYN|ACK"]
    for i, at in zip(segment, first.at[:2]):
        assert all(log[k].kind == "tcp_state" and log[k].t_ns == log[i].t_ns
                   for k in range(i + 1, at + 1))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "zh_CN")
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.open_lesson(first)
    assert window.caption_box.isVisible() and "SYN_SENT" in window.caption.text()
    assert "客户端" in window.caption.text()
    assert window.timeline.cursor == first.at[0]
    seen_views = []
    for k in range(len(steps)):  # a presentation clicker: PageDown
        assert window.caption_step.text() == f"{k + 1} / {len(steps)}"
        assert window.timeline.cursor == first.at[k]
        assert window.view_tabs.currentWidget().name == steps[k].view
        seen_views.append(steps[k].view)
        if k == 2:  # the handshake's last ACK: both ends ESTABLISHED on the diagram
            diagram = window.view_tabs.currentWidget()
            assert diagram.name == "diagram"
            assert {m.state for m in diagram.markers.values()} == {"ESTABLISHED"}
            assert [e.key[2] for e in diagram.last_edges.values()] == ["rcv SYN|ACK",
                                                                      "rcv ACK"]
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.lesson_step == len(steps) - 1  # stays on the last step
    assert {"sequence", "http", "lifecycle", "diagram"} <= set(seen_views)
    # The last: both ends' whole paths on the state diagram, the server closing first.
    diagram = window.view_tabs.currentWidget()
    assert diagram.name == "diagram"
    diagram.show_state(window.timeline)
    assert diagram.walked("server") == ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT_1",
                                        "FIN_WAIT_2", "TIME_WAIT"]
    assert diagram.walked("client") == ["CLOSED", "SYN_SENT", "ESTABLISHED", "CLOSE_WAIT",
                                        "LAST_ACK", "CLOSED"]
    assert "状态图" in window.caption.text()
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.lesson_step == len(steps) - 2 and window.timeline.cursor == first.at[-2]
    window.close()


def test_lessons_command_lists_and_renders(tmp_path: Path) -> None:
    listed = subprocess.run([sys.executable, "-m", "visualizer.cli", "lessons"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert listed.returncode == 0 and names[0] == "first-request"
    out = tmp_path / "step2.png"
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                           "--step", "2", "--lang", "en", "--screenshot", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 20_000
    bad = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "nothing"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no lesson named 'nothing'" in bad.stderr


def test_a_lesson_from_the_menu_replaces_the_live_server_and_gives_it_back(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    engine_url(qtbot, window)
    titles = [a.text() for a in window.lessons_menu.actions() if a.text()]
    assert len(titles) >= 10 and "The first request" in titles[0]
    window.lesson_actions["first-request"].trigger()  # records off the GUI thread
    assert not window.lessons_menu.isEnabled() and "Recording" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.lesson is not None, timeout=30_000)
    assert window.host is None and not window.engine_bar.isEnabled()
    assert window.caption_box.isVisible() and window.lesson_step == 0
    assert window.timeline.log[window.timeline.cursor].data.get("flags") == "SYN"
    window.leave_lesson()
    assert window.lesson is None and not window.caption_box.isVisible()
    assert engine_url(qtbot, window) and window.engine_bar.isEnabled()
    assert len(window.timeline.log) < 20  # a fresh timeline for the live server
    window.close()


def test_the_teardown_step_says_what_this_recording_shows(first) -> None:  # type: ignore[no-untyped-def]
    """Step 7 asks the class to count; step 8 answers from the recording itself: the
    number of teardown segments (the textbook draws four), the server's states, and
    TIME_WAIT's fixed 60 s on Linux, checked against the trace, in both languages."""
    from visualizer.lessons.base import fin, first_conn, sender
    log = first.timeline.log
    conn = first_conn(log)
    start = fin(log, conn)
    assert start is not None and sender(log[start]) == "server"
    segments = [log[i] for i in range(start, len(log))
                if log[i].kind == "packet" and log[i].conn == conn]
    n = len(segments)
    ask_en, ask_zh = first.text(6), first.text(6, "zh_CN")
    assert "four" in ask_en and ask_en.rstrip().endswith("?")
    assert "四个" in ask_zh and ask_zh.rstrip().endswith("？")
    answer_en, answer_zh = first.text(7), first.text(7, "zh_CN")
    numerals = {3: "三", 4: "四", 5: "五"}
    assert f"took {n} segments" in answer_en
    assert f"用了{numerals[n]}个报文段" in answer_zh
    flags = ", ".join(str(e.data["flags"]) for e in segments)
    assert f"({flags})" in answer_en and f"（{flags}）" in answer_zh
    if n == 3:  # the client's FIN rode on its ACK: one segment, FIN_WAIT_2 for no time
        client_fin = next(e for e in segments[1:] if "FIN" in str(e.data["flags"]))
        assert sender(client_fin) == "client" and "ACK" in client_fin.data["flags"]
        at_once = {e.data["state"] for e in log if e.kind == "tcp_state" and e.conn == conn
                   and e.data.get("side") == "server" and e.t_ns == client_fin.t_ns}
        assert {"FIN_WAIT_2", "TIME_WAIT"} <= at_once
        assert "not the textbook's four" in answer_en and "而不是教科书上的四个" in answer_zh
    assert "60 s" in answer_en and "60 秒" in answer_zh and "2 MSL" in answer_en
    timers = [e.data["expires_ms"] for e in log if e.kind == "state_check" and e.conn == conn
              and e.data.get("state") == "TIME_WAIT" and e.data.get("timer") == "time_wait"]
    for left in timers:  # where sock_diag saw it: the kernel's own TIME_WAIT timer
        assert 50_000 < left <= 60_000, left
    assert "四次挥手" not in first.lesson.summary["zh_CN"]


def test_notes_print_every_step_of_a_real_recording() -> None:
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "first-request",
                           "--notes", "--lang", "zh_CN"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    paragraphs = [p for p in done.stdout.split("\n\n") if p.strip()]
    assert paragraphs[0].startswith("第一个请求")
    steps = paragraphs[1:]
    assert [p.split(". ", 1)[0] for p in steps] == [str(k) for k in range(1, len(steps) + 1)]
    assert "SYN_SENT" in steps[0] and "TIME_WAIT" in steps[7] and "个报文段" in steps[7]
    # Step 7 asks, on a line of its own; the others ask nothing.
    asking = [k for k, p in enumerate(steps) if "\n   问题：" in p]
    assert asking == [6] and steps[6].rstrip().endswith("这次用了几个？")
    unknown = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", "nope",
                              "--notes"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no lesson named" in unknown.stderr


@pytest.mark.parametrize("recorded", ['first'])
def test_captions_keep_one_vocabulary_and_ask(recorded, request) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: no command-line flag in the words (a footnote has them), the Chinese
    terms the reviewer chose (主动关闭方, 边缘, 管线化（pipelining）...), one SYN_SENT, and
    at least one question, answered by the step after it."""
    check_vocabulary(request.getfixturevalue(recorded))
