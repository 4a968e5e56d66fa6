"""What every source lost is counted and said: the capture's frames that its kernel buffer
had no room for, in the trace, in serve's summary, and in the window's status bar."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from PySide6.QtCore import QSettings

from engine.capture.live import can_capture
from engine.events import Event
from visualizer.app import MainWindow
from tests.conftest import child_pids, lines_until
from visualizer.model.state import ServerState, apply
from visualizer.views.diagram import DiagramView
from visualizer.views.lifecycle import LifecycleView
from visualizer.views.sequence import SequenceView

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine"]
capture_ok, capture_why = can_capture()


def test_the_state_counts_what_each_sink_lost() -> None:
    state = ServerState()
    for seq, (sink, count) in enumerate([("capture", 3), ("trace", 2), ("capture", 4)]):
        apply(state, Event(seq, seq, "engine", "dropped", None, -1, 0,
                           {"count": count, "sink": sink}))
    assert state.dropped == 9 and state.dropped_by == {"capture": 7, "trace": 2}
    earlier = state.clone()
    apply(state, Event(9, 9, "engine", "dropped", None, -1, 0, {"count": 1, "sink": "trace"}))
    assert earlier.dropped_by == {"capture": 7, "trace": 2}  # a snapshot is not changed later


@pytest.mark.skipif(not capture_ok and not os.environ.get("CI"),
                    reason=f"the capture's losses need live capture (root or CAP_NET_RAW): "
                           f"{capture_why}")
def test_frames_the_capture_had_no_room_for_are_counted_and_said(qtbot, tmp_path: Path
                                                                 ) -> None:  # type: ignore[no-untyped-def]
    """The kernel side stopped (SIGSTOP) while clients run: its ring (2 MiB, the least)
    fills and the kernel drops frames. Once it runs again, and one more request comes,
    the capture's ``dropped`` event carries the kernel's count into the trace, and when
    they were lost (from the last frame before to the first after); serve's
    summary says it; a window replaying the trace says it in its status bar, by source,
    in English and in Chinese, and its sequence view says the connection is not whole."""
    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--trace", str(trace),
                             "--capture-buffer", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _, url = lines_until(proc, "recording events")
        (side,) = child_pids(proc.pid)
        stopped_at = time.monotonic_ns()
        os.kill(side, signal.SIGSTOP)
        try:
            done = subprocess.run([*CLI, "load", url, "--clients", "2", "--requests", "1500"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
        finally:
            continued_at = time.monotonic_ns()
            os.kill(side, signal.SIGCONT)
        # One more request: its frames are the first after the gap, and say where it ended.
        after = subprocess.run([*CLI, "load", url, "--requests", "1"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
        assert after.returncode == 0, after.stdout + after.stderr
        deadline = time.monotonic() + 15  # the capture reads the kernel's count every second
        while time.monotonic() < deadline and b'"sink":"capture"' not in trace.read_bytes():
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    *rows, end = [orjson.loads(line) for line in trace.read_bytes().splitlines()[1:]]
    gaps = [r for r in rows if r["kind"] == "dropped" and r["sink"] == "capture"]
    lost = sum(r["count"] for r in gaps)
    assert lost > 0, out
    assert end["end"]["lost"] == {"capture": lost}  # the trace's last line says it too
    # Where they were lost: after the kernel side stopped (its ring filled while it
    # could not read), until some time after it went on; no frame captured in between.
    packets = [r["t_ns"] for r in rows if r["kind"] == "packet"]
    for gap in gaps:
        assert stopped_at <= gap["from_ns"] <= continued_at <= gap["until_ns"], gap
        assert not [t for t in packets if gap["from_ns"] + 1000 < t < gap["until_ns"] - 1000]
        # from the last frame before the gap to the first after it (the one more request's)
        assert min(abs(t - gap["from_ns"]) for t in packets) <= 1000
        assert min(abs(t - gap["until_ns"]) for t in packets) <= 1000
    summary = out.strip().splitlines()[-1]
    assert f"the capture lost {lost} frames: the kernel's packet buffer was full)" in summary
    assert "events recorded (0 dropped;" in summary  # the trace itself lost nothing
    for language, said in (("en", f"dropped: {lost} (capture {lost})"),
                           ("zh_CN", f"丢弃：{lost} (抓包 {lost})")):
        settings = QSettings(str(tmp_path / f"{language}.ini"), QSettings.Format.IniFormat)
        settings.setValue("language", language)
        window = MainWindow(engine=False, settings=settings)
        qtbot.addWidget(window)
        assert window.load_trace(str(trace))
        window._update_status()  # (the drain timer's, at once)
        assert said in window.status_label.text(), window.status_label.text()
        assert sum(n for _, _, n in window.slider.gaps) == lost  # the band on the slider
        if language == "en":  # the newest connection: the one more request's, whose SYN
            sequence = window.findChild(SequenceView)  # was the first frame after the gap
            window.view_tabs.setCurrentWidget(sequence)
            sequence.show_state(window.timeline)
            assert sequence.gap_frames == lost, sequence.badges
            assert any(b.startswith("⚠ the capture lost") for b in sequence.badges)
            assert "up to this connection's first segment drawn: an earlier try of it" in \
                sequence.caption, sequence.caption
            # The lifecycle view bands the same spans over its bars, each with its count.
            lifecycle = window.findChild(LifecycleView)
            window.view_tabs.setCurrentWidget(lifecycle)
            lifecycle.show_state(window.timeline)
            lifecycle.grab()
            assert lifecycle.gaps == [(g["from_ns"], g["until_ns"], g["count"]) for g in gaps]
            assert len(lifecycle.gap_rects) == len(gaps)
            # The state diagram of the same connection: its states may miss some too.
            diagram = window.findChild(DiagramView)
            window.view_tabs.setCurrentWidget(diagram)
            diagram.show_state(window.timeline)
            assert diagram.conn == sequence.conn and diagram.gap_frames == lost
            assert diagram.badges[0] == f"⚠ the capture lost {lost:,} frames meanwhile"
        window.close()


def _recvs(first: int, count: int) -> list[Event]:
    return [Event(n, 10_000 + n, "server", "recv", f"127.0.0.1:{40000 + n % 9}>127.0.0.1:80",
                  7, 1, {"bytes": 93}) for n in range(first, first + count)]


def test_a_live_window_spills_and_says_when_the_disk_refuses(qtbot, tmp_path: Path
                                                             ) -> None:  # type: ignore[no-untyped-def]
    """A live window keeps its events' text in a spill file, not in memory. When the
    disk refuses it (here a file-size limit, EFBIG: what a full disk does to a write),
    no event is lost, and the status bar says the events are now kept in memory."""
    import resource
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    log = window.timeline.log
    assert log.data_where == "spill"
    window.add_events(_recvs(1, 500))
    before = log.nbytes
    window.add_events(_recvs(501, 500))
    assert log.nbytes - before < 70 * 500  # the columns grew, not the text
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the spill is past 4 kB
    try:
        window.add_events(_recvs(1001, 500))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    window._update_status()
    assert "the disk refused the session's spill file (File too large)" in \
        window.status_label.text(), window.status_label.text()
    log._decoded.clear()
    assert [e.seq for e in log] == list(range(1, 1501))
    assert log[-1].data == {"bytes": 93} and log[0].data == {"bytes": 93}
    window.close()


def test_the_slider_bands_where_the_capture_lost_frames(qtbot, tmp_path: Path
                                                         ) -> None:  # type: ignore[no-untyped-def]
    """The capture's gap (from its last frame before to its first after) is a band on
    the seek slider, shared by every view: from the last event at its start to the
    first at its end; the tooltip counts the frames; other sinks' losses (no span)
    are no band."""
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    events = _recvs(1, 100)  # t_ns 10,001 ... 10,100
    events.append(Event(101, 10_100, "engine", "dropped", None, -1, 0,
                        {"count": 1438, "sink": "capture", "from_ns": 10_020,
                         "until_ns": 10_060}))
    events.append(Event(102, 10_100, "engine", "dropped", None, -1, 0,
                        {"count": 5, "sink": "trace"}))
    window.add_events(events)
    log = window.timeline.log
    (first, last, lost), = window.slider.gaps
    assert lost == 1438
    assert log[first].t_ns == 10_020 and log[last].t_ns == 10_060
    assert "the capture lost 1,438 frames there" in window.slider.toolTip()
    window.slider.resize(600, 30)
    image = window.slider.grab().toImage()  # the band is drawn, between its two ends
    x = (window.slider.mark_x(first) + window.slider.mark_x(last)) // 2
    colour = image.pixelColor(x, 2)
    assert colour.red() > 200 and colour.blue() < 150, colour.name()
    window.close()
