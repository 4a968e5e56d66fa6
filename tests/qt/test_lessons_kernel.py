"""Lessons 7-9, recorded for real: TIME_WAIT and SO_REUSEADDR, CLOSE_WAIT left by a
server that never closes, and the backlog of a server that does not accept. Each is
checked, asserted from its log, and walked in the window in both languages."""
from __future__ import annotations

import re

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.kernel.observer import KernelObserver
from visualizer.lessons import LANGS, LessonError, all_lessons, basics, prepare
from visualizer.model import EventLog
from visualizer.lessons.base import first_fin_side
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from lesson_window import unfit  # tests/qt/
from lesson_window import lesson_window  # tests/qt/

pytestmark = pytest.mark.skipif(not KernelObserver.available()[0],
                                reason="these lessons read TCP states from the kernel")


# The backlog lesson's file: listen(1), five clients (files/backlog.toml, scripts.py).
BACKLOG = 1
BACKLOG_CLIENTS = 5


def _capture_plan() -> str:
    """Where the backlog lesson can capture real packets: "lab", "lo" or "none"."""
    from engine.capture.live import can_capture
    from engine.lab import lab_available
    if lab_available()[0]:
        return "lab"
    if can_capture()[0]:
        return "lo"
    return "none"


def _retransmitted_syns(log: EventLog) -> list[tuple[str, int, int]]:
    """(connection, first SYN, its retransmission with the same sequence number)."""
    first: dict[str, tuple[int, object]] = {}
    out = []
    for i in log.indices(kinds=["packet"]):
        e = log[int(i)]
        if e.data.get("flags") != "SYN" or e.data.get("origin") != "captured":
            continue
        seen = first.get(str(e.conn))
        if seen is None:
            first[str(e.conn)] = (int(i), e.data.get("tcp_seq"))
        elif seen[1] == e.data.get("tcp_seq") and str(e.conn) not in [c for c, _, _ in out]:
            out.append((str(e.conn), seen[0], int(i)))
    return out


def _prepare(name: str, tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()[name], tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def time_wait(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepare("time-wait", tmp_path_factory)


@pytest.fixture(scope="module")
def close_wait(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepare("close-wait", tmp_path_factory)


@pytest.fixture(scope="module")
def backlog(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepare("backlog", tmp_path_factory)


@pytest.fixture(scope="module")
def lost_ack(tmp_path_factory):  # type: ignore[no-untyped-def]
    ok, why = all_lessons()["lost-ack"].needs()
    if not ok:
        pytest.skip(why)
    return _prepare("lost-ack", tmp_path_factory)


def _events(log, kind, **data):  # type: ignore[no-untyped-def]
    return [(i, log[i]) for i in range(len(log)) if log[i].kind == kind
            and all(log[i].data.get(k) == v for k, v in data.items())]


def _walk(qtbot, prepared, lang: str, tmp_path: Path, at_step=None):  # type: ignore[no-untyped-def]
    """Open the lesson, press PageDown through every step; ``at_step(k, window)`` checks
    the view each step shows. Returns the captions seen."""
    window = lesson_window(qtbot, prepared, lang, tmp_path)
    captions = []
    steps = prepared.steps
    for k in range(len(steps)):
        assert window.caption_step.text() == f"{k + 1} / {len(steps)}"
        assert window.timeline.cursor == prepared.at[k]
        view = window.view_tabs.currentWidget()
        assert view.name == steps[k].view
        view.show_state(window.timeline)
        captions.append(window.caption.text())
        # A step's command line is a footnote under the words, in the window's language.
        note = steps[k].footnote
        assert window.caption_note.isVisible() == bool(note)
        if note:
            label = "录制时使用：" if lang == "zh_CN" else "Recorded with: "
            assert window.caption_note.text() == label + note
        if at_step is not None:
            at_step(k, window, view)
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.lesson_step == len(steps) - 1
    window.close()
    return captions


def _common(prepared) -> None:  # type: ignore[no-untyped-def]
    steps = prepared.steps
    assert 5 <= len(steps) <= 10
    assert prepared.at == sorted(prepared.at)
    assert all(s.text.get("en") and s.text.get("zh_CN") for s in steps)
    for text in (prepared.lesson.title, prepared.lesson.summary):
        assert all(text.get(lang) for lang in LANGS)


# ---------------------------------------------------------------- 7. time-wait
def test_time_wait_restart_really_fails_with_eaddrinuse(time_wait) -> None:  # type: ignore[no-untyped-def]
    log = time_wait.timeline.log
    _common(time_wait)
    (fail_at, fail), = _events(log, "error", what="EADDRINUSE")
    assert fail.data["errno"] == "EADDRINUSE" and fail.data["exit_code"] == 1
    assert fail.data["reuseaddr"] is False
    assert "Address already in use" in fail.data["detail"] and "EADDRINUSE" in fail.data["detail"]
    port = fail.data["port"]
    listens = _events(log, "listen")
    assert [e.data["port"] for _, e in listens] == [port, port]  # the first run and the restart
    assert listens[0][0] < fail_at < listens[1][0] and listens[1][1].data["reuseaddr"] is True
    # Recorded by the second engine itself, in its own trace, as it gave up.
    assert fail.src == "server" and fail.data["port"] == port
    # TIME_WAIT on the side that closed first: the server's for the short connections,
    # the client's for the keep-alive one; each from the segments, and the kernel's polls
    # confirmed every one of them (or reported it, for the sockets already there).
    waits = {(e.conn, e.data["side"]) for _, e in _events(log, "tcp_state", state="TIME_WAIT")}
    accepted = [e.conn for _, e in _events(log, "accept")]
    assert len(accepted) == 3
    assert {side for conn, side in waits if conn in accepted[:2]} == {"server"}
    assert {side for conn, side in waits if conn == accepted[2]} == {"client"}
    assert {e.data["source"] for _, e in _events(log, "tcp_state")} == {"inferred", "observed"}
    confirmed = {(e.conn, e.data["side"]) for _, e in _events(log, "state_check", state="TIME_WAIT")
                 if e.data["source"] == "observed" and e.data["verdict"] == "confirms"}
    assert waits <= confirmed | {(e.conn, e.data["side"]) for _, e in _events(
        log, "tcp_state", state="TIME_WAIT") if e.data["source"] == "observed"}
    assert {(c, s) for c, s in waits if c in accepted} <= confirmed
    for conn, closer in zip(accepted, ("server", "server", "client")):
        assert first_fin_side(log, conn) == closer


def test_time_wait_walks_in_both_languages(qtbot, time_wait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = time_wait.timeline.log
    fail_step = next(k for k, i in enumerate(time_wait.at) if log[i].kind == "error")
    port = log[time_wait.at[fail_step]].data["port"]

    def check(k, window, view):  # type: ignore[no-untyped-def]
        if k == fail_step:  # the failed restart: both TIME_WAIT sockets are still there
            assert view.name == "lifecycle" and view.costs["short"].time_wait == 2
            assert {b.tw_side for b in view.bars} == {"server"}
        if view.name == "diagram":  # the keep-alive connection: the client closes first
            client, server = view.markers["client"], view.markers["server"]
            if time_wait.question(k):  # its FIN is out: which end will wait?
                assert (client.state, server.state) == ("FIN_WAIT_1", "CLOSE_WAIT")
            else:  # the answer lights: TIME_WAIT on the client's side, counting down
                assert (client.state, server.state) == ("TIME_WAIT", "CLOSED")
                assert view.walked("client")[-3:] == ["FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
                assert client.countdown and "TIME_WAIT" in view.caption
        if k == len(time_wait.steps) - 1:  # like ss: who holds which TIME_WAIT
            # (Those of the lesson's own connections: like ss, the view lists every socket
            # on the port, an earlier test's server's TIME_WAIT among them.)
            own = {e.conn for e in log if e.kind in ("accept", "connect")}
            rows = [r for r in view.rows if r.state == "TIME_WAIT" and r.conn in own]
            local_ports = sorted(int(r.local.rsplit(":", 1)[1]) == port for r in rows)
            assert local_ports == [False, True, True]  # one client's end, two server's
            # The server's, reported by the restarted server's kernel observer; the
            # client's, from the segments and confirmed by a poll.
            assert {r.source for r in rows} <= {"observed", "inferred"}
            assert all(r.check == "✓ observed" for r in rows if r.source == "inferred")

    english = _walk(qtbot, time_wait, "en", tmp_path, check)
    chinese = _walk(qtbot, time_wait, "zh_CN", tmp_path)
    assert "EADDRINUSE" in english[fail_step] and "EADDRINUSE" in chinese[fail_step]
    # The lecture's hook: its first server (3.1) sets no SO_REUSEADDR; the error the
    # recording shows is the one a student meets, in the words the OS prints.
    assert "Lecture 3.1's first server sets no SO_REUSEADDR" in english[fail_step]
    assert "讲义 3.1 的第一个服务器没有设置 SO_REUSEADDR" in chinese[fail_step]
    assert "Address already in use" in english[fail_step] and "Address already in use" in chinese[fail_step]
    assert "SO_REUSEADDR" in chinese[fail_step + 1] and "服务器" in chinese[1]
    assert any("client's side" in c for c in english)
    assert {s.view for s in time_wait.steps} >= {"sequence", "lifecycle", "sockets", "diagram"}


def test_time_wait_with_derived_packets(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What a student without capture rights records: derived packets, the same point."""
    monkeypatch.setattr(basics, "OBSERVING", (*basics.OBSERVING, "--packets", "derived"))
    prepared = prepare(all_lessons()["time-wait"], tmp_path)
    log = prepared.timeline.log
    packets = _events(log, "packet")
    assert packets and {e.data["origin"] for _, e in packets} == {"derived"}
    assert "derived" in prepared.text(0) and "推导" in prepared.text(0, "zh_CN")


# ---------------------------------------------------------------- 8. close-wait
def test_close_wait_persists_while_the_server_runs(close_wait) -> None:  # type: ignore[no-untyped-def]
    log = close_wait.timeline.log
    _common(close_wait)
    # Each server end's CLOSE_WAIT from the segments (at the client's FIN), and the
    # kernel's polls confirmed it.
    waits = _events(log, "tcp_state", state="CLOSE_WAIT", side="server", source="inferred")
    conns = {e.conn for _, e in waits}
    assert len(conns) == 3
    confirmed = {e.conn for _, e in _events(log, "state_check", state="CLOSE_WAIT",
                                            side="server", source="observed",
                                            verdict="confirms")}
    assert confirmed == conns
    stop = min(i for i, e in _events(log, "close")
               if e.data["reason"].startswith("server stopping"))
    for conn in conns:
        assert _events(log, "error", what="never_closed") and any(
            e.conn == conn for _, e in _events(log, "error", what="never_closed"))
        # No close() before the server stopped, and no other state of the server's end.
        closes = [i for i, e in _events(log, "close") if e.conn == conn and e.src == "server"]
        assert len(closes) == 1 and closes[0] >= stop
        later = [e.data["state"] for i, e in _events(log, "tcp_state", side="server")
                 if e.conn == conn and i < stop]
        assert later[-1] == "CLOSE_WAIT"
        assert any(e.conn == conn for _, e in _events(log, "tcp_state", side="client",
                                                       state="FIN_WAIT_2"))
    last_wait = max(i for i, _ in waits)
    held = 1.2  # files/close-wait.toml: the server runs on 1.2 s after its clients
    assert (log[stop].t_ns - log[last_wait].t_ns) / 1e9 > 0.8 * held


def test_close_wait_walks_in_both_languages(qtbot, close_wait, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def check(k, window, view):  # type: ignore[no-untyped-def]
        if view.name == "sockets":
            rows = [r for r in view.rows if r.state == "CLOSE_WAIT"]
            assert len(rows) == 3 and {(r.source, r.check) for r in rows} == {
                ("inferred", "✓ observed")}
            # The queues, as the kernel's last poll said (a number, not "—"): 0, or 1 when
            # that poll came before the server read the FIN's end-of-file.
            assert all(r.recv_q in ("0", "1") for r in rows)
        if k == 3:  # the first connection on the state diagram, both ends confirmed
            assert view.name == "diagram"
            markers = view.markers
            assert (markers["client"].state, markers["server"].state) == ("FIN_WAIT_2",
                                                                          "CLOSE_WAIT")
            assert markers["server"].check == "✓" and view.walked("server") == [
                "LISTEN", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT"]

    english = _walk(qtbot, close_wait, "en", tmp_path, check)
    chinese = _walk(qtbot, close_wait, "zh_CN", tmp_path)
    assert any("never calls close()" in c for c in english)
    assert any("CLOSE_WAIT" in c and "close()" in c for c in chinese)
    assert "io" in {s.view for s in close_wait.steps}


def test_close_wait_needs_the_observer(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(KernelObserver, "available",
                        staticmethod(lambda backend="auto": (False, "no sock_diag here")))
    ok, reason = all_lessons()["close-wait"].needs()
    assert not ok and "observer" in reason and "no sock_diag here" in reason
    with pytest.raises(LessonError, match="cannot run here"):
        prepare(all_lessons()["close-wait"], tmp_path)


# ---------------------------------------------------------------- 9. backlog
def test_backlog_fills_and_the_syn_is_retransmitted(backlog) -> None:  # type: ignore[no-untyped-def]
    log = backlog.timeline.log
    _common(backlog)
    queue = [e.data for _, e in _events(log, "accept_queue")]
    assert max(d["length"] for d in queue) == BACKLOG + 1
    assert {d["backlog"] for d in queue} == {BACKLOG}
    assert queue[-1]["length"] == 0  # drained
    lengths = [d["length"] for d in queue]
    full = lengths.index(max(lengths))
    assert BACKLOG in lengths[full:]  # seen shrinking one by one
    assert len(_events(log, "response", status=200)) == BACKLOG_CLIENTS
    # lab = "auto": recorded in the lab where this machine has one (the engine says so)
    from engine.trace import read_trace
    argv = read_trace(backlog.trace).header.get("argv", [])
    assert ("--lab" in argv) == (_capture_plan() == "lab"), argv
    if _capture_plan() != "none":
        retrans = _retransmitted_syns(log)
        assert retrans
        _, first, again = retrans[0]
        assert log[first].data["tcp_seq"] == log[again].data["tcp_seq"]
        assert 0.9 < (log[again].t_ns - log[first].t_ns) / 1e9 < 1.5  # the 1 s timeout
        # ...sent again while the server was still held: it had accepted no one yet
        first_accept = min(e.t_ns for _, e in _events(log, "accept") if e.src == "server")
        assert log[again].t_ns < first_accept


def test_backlog_walks_in_both_languages(qtbot, backlog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen = set()

    def check(k, window, view):  # type: ignore[no-untyped-def]
        seen.add(view.name)
        if view.name == "sockets" and "Recv-Q" in window.caption.text():
            listen = next(r for r in view.rows if r.state == "LISTEN")
            assert (listen.recv_q, listen.send_q) == (str(BACKLOG + 1),
                                                      str(BACKLOG))
            assert any(r.state == "SYN_SENT" for r in view.rows)
            # The caption counts the clients the picture shows waiting, no more.
            said = re.search(r"(\d+) clients are left in SYN_SENT", window.caption.text())
            if said:
                assert int(said.group(1)) == sum(r.state == "SYN_SENT" for r in view.rows)
        if view.name == "sequence" and "retransmission" in window.caption.text():
            syns = [a for a in view.arrows if a.flags == "SYN"]
            assert len(syns) >= 2 and len({a.seq for a in syns}) == 1  # resent as is
        if view.name == "plots":
            assert len(view.queue_data[1]) and max(view.queue_data[1]) == \
                BACKLOG + 1

    english = _walk(qtbot, backlog, "en", tmp_path, check)
    chinese = _walk(qtbot, backlog, "zh_CN", tmp_path)
    assert {"io", "sequence", "sockets", "plots"} <= seen
    assert any("retransmission" in c for c in english) == \
        (_capture_plan() != "none")
    assert any("backlog" in c and "队列" in c for c in chinese)


def test_backlog_without_capture_says_so(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Unprivileged and no lab: observed queue lengths only, worded accordingly."""
    import engine.lab
    monkeypatch.setattr(engine.lab, "lab_available", lambda: (False, "no lab here"))
    monkeypatch.setattr(basics, "OBSERVING", (*basics.OBSERVING, "--packets", "derived"))
    prepared = prepare(all_lessons()["backlog"], tmp_path)
    log = prepared.timeline.log
    assert {e.data["origin"] for _, e in _events(log, "packet")} == {"derived"}
    texts = [prepared.text(k) for k in range(len(prepared.steps))]
    assert any("not captured here" in t for t in texts)
    assert not any("packets captured" in t for t in texts)
    assert any("SYN_SENT (observed)" in t for t in texts)


def test_lessons_are_listed_in_the_lecture_order() -> None:
    names = list(all_lessons())
    assert [n for n in names if n in ("time-wait", "close-wait", "backlog", "lost-ack")] == \
        ["time-wait", "close-wait", "backlog", "lost-ack"]


# ---------------------------------------------------------------- narration (issue 12)
def _step_of(prepared, needle: str) -> int:  # type: ignore[no-untyped-def]
    return next(k for k in range(len(prepared.steps)) if needle in prepared.text(k))


def _asks(prepared, k: int) -> None:  # type: ignore[no-untyped-def]
    assert prepared.text(k).rstrip().endswith("?")
    assert prepared.text(k, "zh_CN").rstrip().endswith("？")


def test_time_wait_narration_states_what_the_recording_shows(time_wait) -> None:  # type: ignore[no-untyped-def]
    log = time_wait.timeline.log
    zh = [time_wait.text(k, "zh_CN") for k in range(len(time_wait.steps))]
    assert not any("先关闭的一方" in t or "先发 FIN 的一方" in t for t in zh)
    assert "主动关闭方" in time_wait.lesson.summary["zh_CN"]
    listens = _events(log, "listen")
    accepted = [e.conn for _, e in _events(log, "accept")]
    # SO_REUSEADDR releases nothing; bind() passes over TIME_WAIT sockets that had it too,
    # and these had it: the first server's listener set it, its accepted sockets inherit it.
    k = _step_of(time_wait, "Restarted with SO_REUSEADDR")
    en, cn = time_wait.text(k), time_wait.text(k, "zh_CN")
    assert "releases nothing" in en and "only if those sockets had SO_REUSEADDR too" in en
    assert "什么也不释放" in cn and "本身也设置了 SO_REUSEADDR" in cn
    assert "release them" not in en and "立即释放资源”，" not in cn
    assert listens[0][1].data["reuseaddr"] is True
    assert "inherit it from the listener" in en and "继承" in cn
    restart = listens[1][0]
    kept = [e.conn for i, e in _events(log, "tcp_state", state="TIME_WAIT", side="server")
            if i >= restart]
    assert kept and set(kept) <= set(accepted[:2])  # still there after the restart
    # A question, answered by the next step: TIME_WAIT on the client's side.
    ask = _step_of(time_wait, "Which end will be left waiting")
    _asks(time_wait, ask)
    en, cn = time_wait.text(ask + 1), time_wait.text(ask + 1, "zh_CN")
    assert "TIME_WAIT is on the client's side" in en and "passive closer" in en
    assert "TIME_WAIT 在客户端一侧" in cn and "主动关闭方" in cn and "被动关闭方" in cn
    sides = {e.data["side"] for _, e in _events(log, "tcp_state", state="TIME_WAIT")
             if e.conn == accepted[2]}
    assert sides == {"client"}
    # TIME_WAIT on the server's port does not hurt accept(); a client's ephemeral ports do.
    en, cn = time_wait.text(len(time_wait.steps) - 1), time_wait.text(
        len(time_wait.steps) - 1, "zh_CN")
    assert "accept() does not suffer" in en and "ephemeral ports" in en
    assert "accept() 并不受影响" in cn and "临时端口" in cn
    (took, _), = [(i, e) for i, e in _events(log, "accept") if e.conn == accepted[2]]
    for conn in kept:  # accepted while the server's TIME_WAIT sockets were there
        tw = min(i for i, e in _events(log, "tcp_state", state="TIME_WAIT", side="server")
                 if e.conn == conn and i >= restart)
        gone = [i for i, e in _events(log, "tcp_state", state="CLOSED", side="server")
                if e.conn == conn and i > tw]
        assert tw < took and (not gone or gone[0] > took)
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    client_port = int(accepted[2].split(">")[0].rsplit(":", 1)[1])
    assert low <= client_port <= high  # the client's TIME_WAIT holds an ephemeral port


def test_close_wait_narration_states_what_the_recording_shows(close_wait) -> None:  # type: ignore[no-untyped-def]
    log = close_wait.timeline.log
    ask = _step_of(close_wait, "what state is the server's end in now?")
    _asks(close_wait, ask)
    assert "CLOSE_WAIT" not in close_wait.text(ask) + close_wait.text(ask, "zh_CN")
    en, cn = close_wait.text(ask + 1), close_wait.text(ask + 1, "zh_CN")
    assert "CLOSE_WAIT" in en and "passive closer" in en
    assert "CLOSE_WAIT" in cn and "被动关闭方" in cn and "主动关闭方" in cn
    last = len(close_wait.steps) - 1
    en, cn = close_wait.text(last), close_wait.text(last, "zh_CN")
    assert "always means" not in en
    for said in ("last file descriptor", "fork()", "dup()", "shutdown(SHUT_WR)",
                 "multi-process"):
        assert said in en, said
    for said in ("最后一个文件描述符", "fork()", "dup()", "shutdown(SHUT_WR)", "多进程"):
        assert said in cn, said
    # The fact: CLOSE_WAIT on the server's side, and no close() nor shutdown() of it
    # before the server stopped.
    stop = min(i for i, e in _events(log, "close")
               if e.data["reason"].startswith("server stopping"))
    conns = {e.conn for _, e in _events(log, "tcp_state", state="CLOSE_WAIT")}
    assert conns and {e.data["side"] for _, e in _events(log, "tcp_state", state="CLOSE_WAIT")} \
        == {"server"}
    for conn in conns:
        assert not [i for i, e in _events(log, "close") + _events(log, "shutdown")
                    if e.conn == conn and e.src == "server" and i < stop]


def test_backlog_narration_states_what_the_recording_shows(backlog) -> None:  # type: ignore[no-untyped-def]
    log = backlog.timeline.log
    n = BACKLOG
    ask = _step_of(backlog, "an RST or silence?")
    _asks(backlog, ask)
    assert "RST" in backlog.text(ask, "zh_CN")
    assert "RST" in backlog.text(ask + 1) and "RST" not in [
        e.data.get("flags") for _, e in _events(log, "packet")]
    # The accept queue holds backlog + 1; the backlog is listen()'s, capped by somaxconn.
    k = _step_of(backlog, "Recv-Q is")
    en, cn = backlog.text(k), backlog.text(k, "zh_CN")
    assert "somaxconn" in en and "backlog + 1" in en
    assert "somaxconn" in cn and "backlog + 1" in cn and "全连接队列（accept 队列）" in cn
    queue = [e.data for _, e in _events(log, "accept_queue")]
    assert max(d["length"] for d in queue) <= n + 1
    assert f"Recv-Q is {max(d['length'] for d in queue)}" in en
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert {d["backlog"] for d in queue} == {min(n, somaxconn)}
    # Two queues; a queued connection is ESTABLISHED, its request in, before any accept().
    two = _step_of(backlog, "Two queues")
    en, cn = backlog.text(two), backlog.text(two, "zh_CN")
    assert "SYN queue" in en and "ESTABLISHED" in en and "before any accept()" in en
    assert "半连接队列（SYN 队列）" in cn and "全连接队列（accept 队列）" in cn
    first_accept = min(i for i, _ in _events(log, "accept"))
    conn = backlog.steps[two].conn(log)
    assert any(e.conn == conn and i < first_accept for i, e in _events(
        log, "state_check", side="server", state="ESTABLISHED", verdict="confirms"))
    assert "request already waits" in en and "请求也已经在里面等着" in cn
    assert any(e.conn == conn and i < first_accept for i, e in _events(log, "send")
               if e.src == "client")
    # The SYN retries: the intervals the caption states are the recording's.
    if _capture_plan() == "none":
        pytest.skip("the SYN retries are seen in captured packets only (root, or the lab)")
    k = _step_of(backlog, "Its SYN was sent")
    en, cn = backlog.text(k), backlog.text(k, "zh_CN")
    conn = backlog.steps[k].conn(log)
    syns = [e for _, e in _events(log, "packet", flags="SYN", origin="captured")
            if e.conn == conn]
    syns = [e for e in syns if e.data["tcp_seq"] == syns[0].data["tcp_seq"]]
    gaps = [(b.t_ns - a.t_ns) / 1e9 for a, b in zip(syns, syns[1:])]
    said = [float(x) for x in re.search(r"times, ([\d. s,]+) apart", en).group(1)
            .replace(" s", "").split(",")]
    said_zh = [float(x) for x in re.search(r"间隔依次为 ([\d. 秒、]+)：", cn).group(1)
               .replace(" 秒", "").split("、")]
    assert said == said_zh and len(said) == len(gaps)
    assert f"sent {len(syns)} times" in en and f"一共发了 {len(syns)} 次" in cn
    for x, gap in zip(said, gaps):
        assert abs(x - gap) < 0.06, (said, gaps)
    assert "6.5" in en and "tcp_syn_linear_timeouts" in en and "6.5" in cn
    if "linear" in en:
        assert all(0.8 < g < 1.4 for g in gaps) and "线性" in cn
    elif "the wait doubles" in en:
        assert all(1.6 < b / a < 2.5 for a, b in zip(gaps, gaps[1:])) and "加倍" in cn


@pytest.mark.parametrize("recorded", ['time_wait', 'close_wait', 'backlog', 'lost_ack'])
def test_captions_keep_one_vocabulary_and_ask(recorded, request) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: no command-line flag in the words (a footnote has them), the Chinese
    terms the reviewer chose (主动关闭方, 边缘, 管线化（pipelining）...), one SYN_SENT, and
    at least one question, answered by the step after it."""
    check_vocabulary(request.getfixturevalue(recorded))


def test_the_planted_bug_and_the_close_policy_are_footnotes(time_wait, close_wait) -> None:  # type: ignore[no-untyped-def]
    """The flags the recordings ran with are named under the steps that depend on them."""
    assert [s.footnote for s in time_wait.steps if s.footnote] == ["sockscope serve --policy close"]
    assert [s.footnote for s in close_wait.steps if s.footnote] == ["sockscope serve --never-close"]


def test_key_moments_get_a_banner_above_the_view(qtbot, time_wait, backlog,
                                                 tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What the captions say happened, the window says above the view at that step:
    the failed restart's EADDRINUSE, the SYN sent again; and nothing on a step without."""
    from visualizer.model.moments import moment_at
    log = time_wait.timeline.log
    (fail_at, fail), = _events(log, "error", what="EADDRINUSE")
    at = [moment_at(log, i) for i in time_wait.at]
    step = next(k for k, m in enumerate(at) if m is not None)
    assert at[step].kind == "eaddrinuse" and at[step].index == fail_at
    assert at[step].numbers == {"port": fail.data["port"], "reuseaddr": False}
    restart = _events(log, "listen")[1][0]
    assert moment_at(log, restart) is None  # the restart with SO_REUSEADDR: moment over
    assert moment_at(log, fail_at - 1) is None
    for lang in LANGS:
        window = lesson_window(qtbot, time_wait, lang, tmp_path)
        window.go_to_step(step)
        banner = window.moment_banner
        assert banner.isVisible() and "EADDRINUSE" in banner.text()
        assert str(fail.data["port"]) in banner.text()
        assert banner.geometry().bottom() < window.view_tabs.geometry().top()  # covers nothing
        window.go_to_step(step - 1)
        assert not banner.isVisible()
        window.close()
    if _capture_plan() == "none":
        pytest.skip("the SYN sent again is seen in captured packets only (root, or the lab)")
    blog = backlog.timeline.log
    _, first, again = _retransmitted_syns(blog)[0]
    m = moment_at(blog, again)
    assert m is not None and m.kind == "syn_resent" and m.conn == blog[again].conn
    assert m.source == "captured"  # the backlog lesson records captured packets here
    assert m.numbers["count"] == 2
    assert m.numbers["after_s"] == pytest.approx((blog[again].t_ns - blog[first].t_ns) / 1e9)
    assert moment_at(blog, first) is None or moment_at(blog, first).index < first


@pytest.mark.parametrize("name", ["time_wait", "close_wait", "backlog", "lost_ack"])
def test_every_step_fits_at_200_percent(qtbot, request, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Presentation layout at 200 %, both languages, 1280x720 and 1920x1080: no text cut,
    past its view's edge or on another text (measured against its box)."""
    found = unfit(qtbot, request.getfixturevalue(name), tmp_path)
    assert not found, "\n".join(found[:40])


def test_close_wait_with_derived_packets(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without capture rights the FINs are derived from the calls, and the captions say
    so (files/close-wait.toml's [[steps.when]] on captured = 0); the states stay observed."""
    monkeypatch.setattr(basics, "OBSERVING", (*basics.OBSERVING, "--packets", "derived"))
    prepared = prepare(all_lessons()["close-wait"], tmp_path)
    log = prepared.timeline.log
    assert {e.data["origin"] for _, e in _events(log, "packet")} == {"derived"}
    assert prepared.text(0).endswith("sends a FIN (derived).")
    assert "报文推导所得" in prepared.text(0, "zh_CN")
    last = len(prepared.steps) - 1
    assert "FINs go out (derived)" in prepared.text(last)
    assert "CLOSE_WAIT (observed)" in prepared.text(4)


# ---------------------------------------------------------------- 10. lost-ack
def test_lost_ack_walks_the_diagram_in_both_languages(qtbot, lost_ack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The lab drops the handshake's last ACK: at each step the diagram stands both ends
    where the recording's states say, the question comes before the server's kernel
    resends its SYN,ACK, and the server is ESTABLISHED only once the second ACK is in."""
    log = lost_ack.timeline.log
    lost = [i for i, e in _events(log, "packet") if e.data.get("dropped") == "drop-ack"]
    synacks = [i for i, e in _events(log, "packet", flags="SYN|ACK")]
    assert len(lost) == 1 and len(synacks) >= 2 and synacks[0] < lost[0] < synacks[1]
    seen = []

    def check(k, window, view):  # type: ignore[no-untyped-def]
        if view.name != "diagram":
            return
        server, client = view.markers["server"].state, view.markers["client"].state
        seen.append((client, server, [(lp.state, lp.flags) for lp in view.loops]))
        conn = view.conn
        state = window.timeline.state.connections[conn]
        assert (client, server) == (state.client, state.server)

    _walk(qtbot, lost_ack, "en", tmp_path, check)
    assert seen == [("ESTABLISHED", "SYN_RECV", []),  # the SYN,ACK's step, and the states it caused
                    ("ESTABLISHED", "SYN_RECV", []),  # the ACK lost; the question: what next?
                    ("ESTABLISHED", "SYN_RECV", [("SYN_RECV", "SYN|ACK")]),
                    ("ESTABLISHED", "ESTABLISHED", [("SYN_RECV", "SYN|ACK")])]
    assert lost_ack.question(1) and not lost_ack.question(2)
    chinese = _walk(qtbot, lost_ack, "zh_CN", tmp_path)
    assert "SYN_RECV" in chinese[2] and "重发" in chinese[2]
