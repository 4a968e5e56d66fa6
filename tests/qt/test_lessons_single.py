"""The single lesson (lecture 3.1): recorded for real, each caption's fact checked
against its trace, walked in the window in both languages."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.kernel.observer import KernelObserver
from visualizer.lessons import LANGS, all_lessons, prepare
from visualizer.lessons.base import find, packet
from visualizer.lessons import scripts as lesson
from visualizer.lessons.files import FILES, LessonFile
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from lesson_window import unfit  # tests/qt/
from lesson_window import lesson_window  # tests/qt/

pytestmark = pytest.mark.skipif(not KernelObserver.available()[0],
                                reason="the lesson observes the accept queue with sock_diag")


@pytest.fixture(scope="module")
def single(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["single"], tmp_path_factory.mktemp("single"))


def test_it_comes_after_static_pages_and_before_threads() -> None:
    names = list(all_lessons())
    assert names.index("static-pages") < names.index("single") < names.index("threads")
    assert all_lessons()["single"].section == "3.1"


def test_each_caption_says_what_its_trace_shows(single) -> None:  # type: ignore[no-untyped-def]
    log = single.timeline.log
    m = LessonFile(FILES / "single.toml").resolve(log)
    # One client at a time, in the recording: B accepted only after A was closed, though
    # it had connected (and sent its request) while A was served.
    assert m["b_sent"] < m["a_close"] < m["b_accept"] < m["b_response"]
    accepts = [i for i in log.indices(kinds=["accept"], src="server").tolist()]
    assert len(accepts) == 2 and log[accepts[1]].conn == log[m["b_accept"]].conn
    # Step 2: A's first read is its half request, to the byte.
    assert log[m["a_part"]].data["bytes"] == len(lesson.HEAD)
    assert f"({len(lesson.HEAD)} bytes" in single.text(1) and f"（{len(lesson.HEAD)} 字节" \
        in single.text(1, "zh_CN")
    # Step 3 stands on B's request on the wire, its handshake complete on both ends.
    assert single.at[2] >= m["b_sent"]
    single.timeline.seek(single.at[2])
    conn = single.timeline.state.connections[log[m["b_accept"]].conn]
    assert (conn.client, conn.server) == ("ESTABLISHED", "ESTABLISHED")
    assert log[m["b_sent"]].data["len"] == len(lesson.HEAD + lesson.REST)
    # Step 4: the queue the kernel reported, and the state the caption gives B there.
    queued = log[m["queued"]].data["length"]
    assert queued >= 1 and f"holds {queued} connection" in single.text(3)
    single.timeline.seek(single.at[3])
    assert single.timeline.state.connections[log[m["b_accept"]].conn].server == "ESTABLISHED"
    assert single.question(3) and single.question(3).endswith("When will the server read it?")
    # Steps 5-6: the wait, in ms, from B's connect to its accept.
    b = log[m["b_accept"]].conn
    connect = find(log, "connect", src="client", conn=b)
    came = connect if connect is not None else packet(log, "SYN|ACK", conn=b)
    assert came is not None and came == m["b_came"]
    waited = (log[m["b_accept"]].t_ns - log[came].t_ns) / 1e6
    assert waited >= lesson.DRIBBLE_S * 1000 * 0.9
    assert f"{waited:,.0f} ms after B connected" in single.text(4)
    assert f"{waited:,.0f} 毫秒" in single.text(4, "zh_CN") and f"{waited:,.0f} 毫秒" \
        in single.text(5, "zh_CN")


def test_the_window_walks_it_in_both_languages(qtbot, single, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for lang in LANGS:
        window = lesson_window(qtbot, single, lang, tmp_path)
        for k, step in enumerate(single.steps):
            assert window.lesson_step == k and window.timeline.cursor == single.at[k]
            view = window.view_tabs.currentWidget()
            assert view.name == step.view
            view.show_state(window.timeline)
            view.grab()
            if step.view == "io":
                assert view.picture == "single" and len(view.lanes) == 1
            if k == 3:  # the queue, as the io view draws it
                assert view.queue is not None and view.queue[0] >= 1
                assert view.lanes[0].activity == "recv_blocked"
            qtbot.keyClick(window, Qt.Key.Key_PageDown)
        window.close()


def test_captions_keep_one_vocabulary_and_ask(single) -> None:  # type: ignore[no-untyped-def]
    check_vocabulary(single)


@pytest.mark.parametrize("name", ["single"])
def test_every_step_fits_at_200_percent(qtbot, request, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Presentation layout at 200 %, both languages, 1280x720 and 1920x1080: no text cut,
    past its view's edge or on another text (measured against its box)."""
    found = unfit(qtbot, request.getfixturevalue(name), tmp_path)
    assert not found, "\n".join(found[:40])


def test_its_file_copied_and_run_on_threads_is_refused_where_it_says_why(tmp_path: Path
                                                                         ) -> None:
    """A lecturer copies the built-in lesson's file (sockscope lessons --source single)
    and runs it on a thread per connection: B is then accepted at once, so the
    recording no longer shows what the lesson says, and the refusal names the line."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / ".config")}

    def sockscope(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "visualizer.cli", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    source = sockscope("lessons", "--source", "single")
    assert source.returncode == 0 and source.stdout == (FILES / "single.toml").read_text(
        encoding="utf-8")
    text = source.stdout.replace('mode = "single"', 'mode = "threaded"')
    lines = text.splitlines()
    line = next(k for k, said in enumerate(lines, 1) if said == 'before = "b_accept"'
                and lines[k - 2] == 'at = "a_close"') - 2
    assert lines[line - 1] == "[[expect]]"
    mine = tmp_path / "mine.toml"
    mine.write_text(text, encoding="utf-8")
    done = sockscope("lesson", str(mine), "--notes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{mine}:{line}: b_accept came before a_close (B was accepted only after A was " \
           "finished)" in done.stderr and "Traceback" not in done.stderr
    assert sockscope("lessons", "--source", "nope").returncode == 2
    # The README quotes this very refusal: its line number is this file's.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"sockscope lesson: mine.toml:{line}: b_accept came before a_close" in readme
