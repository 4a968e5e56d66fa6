"""The state diagram: both ends of one connection walk RFC 9293's figure, checked step by
step against the state model, on real runs and on the lab's lost segments."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.kernel.segments import TRANSITIONS
from engine.lab import faults_available, lab_available
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.textaudit import TextAudit
from visualizer.views.diagram import EDGES, END, LABELS, NODE_AT, DiagramView
from tests.qt.test_view_sequence import Trace

ROOT = Path(__file__).resolve().parents[2]
SIDES = ("client", "server")


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = DiagramView()
    qtbot.addWidget(v)
    v.resize(1280, 720)
    return v


def shown(view: DiagramView, tl: Timeline, index: int) -> DiagramView:
    tl.live = False
    tl.seek(index)
    view.show_state(tl)
    return view


def record(folder: Path, name: str, *args: str) -> Path:
    trace = folder / f"{name}.jsonl"
    proc = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode",
                           "epoll", *args, "--exit-after-load", "--trace", str(trace)],
                          cwd=ROOT, capture_output=True, text=True, timeout=90,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and " ok, " in proc.stdout, proc.stdout + proc.stderr
    return trace


def walk_every_step(view: DiagramView, tl: Timeline, conn: str) -> list[int]:
    """Step through every event of ``conn``: at each, the markers stand where the state
    model says each end is, each on the arrow it came by, one transition at a time.
    Returns the indices stepped on."""
    view.select(conn)
    steps = tl.log.indices(conn=conn).tolist()
    walked = {side: 0 for side in SIDES}
    for i in steps:
        shown(view, tl, i)
        state = tl.state.connections.get(conn)
        assert state is not None
        for side in SIDES:
            if getattr(state, f"{side}_source") is None:
                assert side not in view.markers, (i, side)
                continue
            marker = view.markers[side]
            assert marker.state == getattr(state, side), (i, side, marker, view.walked(side))
            edge = view.last_edges[side]
            if edge is not None:
                assert edge.target == marker.node, (i, side, edge, marker)
            count = len(view.walked(side))
            assert count - walked[side] <= 1 or walked[side] == 0, (i, side, view.walked(side))
            walked[side] = count
    return steps


CLOSER = ["CLOSED", "SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
CLOSER_SERVER = ["LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
LAST = ["CLOSED", "SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
LAST_SERVER = ["LISTEN", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]


# ------------------------------------------------------------ one source for both
def test_every_transition_of_the_table_is_an_arrow_with_its_words() -> None:
    """The figure is drawn from the table the segments run: each (state, trigger) of it
    that is not a reset is an arrow between two placed states, with its label."""
    arrows = {(e.source, e.trigger): e for e in EDGES}
    for (state, trigger), target in TRANSITIONS.items():
        if "RST" in trigger:
            continue
        edge = arrows[(state, trigger)]
        assert edge.target == (END if target == "CLOSED" else target)
        assert edge.source in NODE_AT and edge.target in NODE_AT
        assert LABELS[(state, trigger)]
    assert {e.kind for e in EDGES} == {"rfc", "timer", "linux"}


def test_the_figure_is_drawn_whole_and_readable(view: DiagramView) -> None:
    """Empty, the view draws the figure alone: every state in its box, inside the view,
    no two boxes or labels on each other (the text audit), and says why no marker."""
    from visualizer.textaudit import TextAudit
    tl = Timeline(EventLog([]))
    view.show_state(tl)
    with TextAudit() as audit:
        view.grab()
    assert [str(f) for f in audit.findings()] == []
    assert "No TCP states yet" in view.message
    rects = view._geo.rects
    assert set(rects) == set(NODE_AT)
    for node, rect in rects.items():
        assert 0 <= rect.left() and rect.right() * view._scale <= view.width(), node
        others = [r for n, r in rects.items() if n != node]
        assert not any(rect.intersects(r) for r in others), node
    # every label of the table found a place
    assert all(e.key in view._geo.labels for e in EDGES), \
        [e.key for e in EDGES if e.key not in view._geo.labels]


# ------------------------------------------------------------ built by hand
def test_a_fin_riding_on_the_ack_is_linux_one_segment_arrow(view: DiagramView) -> None:
    """FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT at one segment: both steps are walked (one event
    each), and at the second the arrow drawn strong is the one the classic figure lacks."""
    t = Trace()
    t.handshake()
    c, s = t.exchange(1)
    t.state("client", "FIN_WAIT_1", "ESTABLISHED", source="inferred", trigger="snd FIN",
            segment="FIN|ACK")
    t.seg("client", "FIN|ACK", c, s)
    t.state("server", "CLOSE_WAIT", "ESTABLISHED", source="inferred", trigger="rcv FIN",
            segment="FIN|ACK")
    t.state("server", "LAST_ACK", "CLOSE_WAIT", source="inferred", trigger="snd FIN",
            segment="FIN|ACK")
    fin = t.seg("server", "FIN|ACK", s, c + 1)
    # one segment, two changes: same time as the segment
    for state, previous, trigger in (("FIN_WAIT_2", "FIN_WAIT_1", "rcv ACK"),
                                     ("TIME_WAIT", "FIN_WAIT_2", "rcv FIN")):
        n = t.state("client", state, previous, source="inferred", trigger=trigger,
                    segment="FIN|ACK")
        t.events[n] = t.events[n]._replace(t_ns=t.events[fin].t_ns)
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 2)  # at FIN_WAIT_2
    assert view.markers["client"].state == "FIN_WAIT_2"
    assert view.last_edges["client"].key == ("FIN_WAIT_1", "FIN_WAIT_2", "rcv ACK")
    shown(view, tl, len(t.events) - 1)  # at TIME_WAIT
    assert view.walked("client")[-3:] == ["FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
    edge = view.last_edges["client"]
    assert edge.kind == "linux" and (edge.source, edge.target) == ("FIN_WAIT_1", "TIME_WAIT")
    assert "One segment did both" in view.caption
    assert view.markers["client"].countdown == "≈60.0 s"  # inferred: Linux's 60 s, from now


def test_observed_states_walk_through_the_states_they_passed(view: DiagramView) -> None:
    """A poll's change names the states it skipped (``via``): the marker walks the
    figure's arrows through them; a poll's first look has no arrow to it."""
    t = Trace()
    t.state("server", "ESTABLISHED", None)  # the first look: already there
    t.state("server", "TIME_WAIT", "ESTABLISHED", via=["FIN_WAIT_1", "FIN_WAIT_2"],
            expires_ms=59_000)
    tl = Timeline(EventLog(t.events))
    shown(view, tl, 0)
    assert view.markers["server"].state == "ESTABLISHED" and not view.paths["server"]
    shown(view, tl, 1)
    assert view.walked("server") == ["ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
    assert all(s.edge.kind == "rfc" for s in view.paths["server"])
    assert view.markers["server"].countdown == "59.0 s"  # the kernel's own, no "≈"


def test_a_simultaneous_close_goes_through_closing(view: DiagramView) -> None:
    t = Trace()
    t.handshake()
    for side in SIDES:
        t.state(side, "FIN_WAIT_1", "ESTABLISHED", source="inferred", trigger="snd FIN",
                segment="FIN|ACK")
    for side in SIDES:
        t.state(side, "CLOSING", "FIN_WAIT_1", source="inferred", trigger="rcv FIN",
                segment="FIN|ACK")
    for side in SIDES:
        t.state(side, "TIME_WAIT", "CLOSING", source="inferred", trigger="rcv ACK",
                segment="ACK")
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 1)
    for side in SIDES:
        assert view.walked(side)[-3:] == ["FIN_WAIT_1", "CLOSING", "TIME_WAIT"]
    assert view.last_edges["server"].key == ("CLOSING", "TIME_WAIT", "rcv ACK")


# ------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("diagram")
    return {
        # the server closes first (policy close)
        "short": record(folder, "short", "--policy", "close",
                        "--load=--clients 1 --requests 1"),
        # keep-alive: the client closes when it is done
        "keep-alive": record(folder, "keep", "--load=--clients 1 --requests 2"),
        # the client shuts down writing, then reads a response larger than the buffers
        "half-close": record(folder, "half", "--load=--clients 1 --requests 1 --half-close "
                             "--path /images/big.bmp --timeout 20"),
        "abort": record(folder, "abort", "--load=--clients 1 --requests 1 --abort"),
    }


def last_conn(tl: Timeline) -> str:
    """The newest connection with states that the run's clients opened (not a socket of
    an earlier test's server on the same port, found in TIME_WAIT by the observer)."""
    opened = {e.conn for e in tl.log if e.kind in ("connect", "accept")}
    return [e.conn for e in tl.log if e.kind == "tcp_state" and e.conn in opened][-1]


@pytest.mark.parametrize("run,client,server", [
    ("short", LAST, CLOSER_SERVER),
    ("keep-alive", CLOSER, LAST_SERVER),
    ("half-close", CLOSER, LAST_SERVER),
])
def test_a_real_connection_walks_the_figure(view: DiagramView, runs, run: str,  # type: ignore[no-untyped-def]
                                            client: list[str], server: list[str]) -> None:
    tl, _, _ = open_trace(runs[run])
    conn = last_conn(tl)
    walk_every_step(view, tl, conn)
    assert view.walked("client") == client
    assert view.walked("server") == server
    closer = "server" if run == "short" else "client"
    # its last arrow: the one-segment close where the peer's FIN rode on its ACK
    steps = view.paths[closer]
    one_segment = steps[-1].t_ns == steps[-2].t_ns
    assert view.last_edges[closer].kind == ("linux" if one_segment else "rfc")
    assert view.markers[closer].state == "TIME_WAIT" and view.markers[closer].countdown
    assert "TIME_WAIT" in view.caption


def test_a_half_close_shows_the_client_waiting_while_the_server_sends(view: DiagramView,  # type: ignore[no-untyped-def]
                                                                      runs) -> None:
    """After the client's FIN was acknowledged, the server goes on sending its response:
    the diagram stands the client in FIN_WAIT_2 and the server in CLOSE_WAIT then."""
    tl, _, _ = open_trace(runs["half-close"])
    conn = last_conn(tl)
    log = tl.log
    client_fw2 = next(i for i in log.indices(conn=conn, kinds=["tcp_state"]).tolist()
                      if log[i].data["side"] == "client" and log[i].data["state"] == "FIN_WAIT_2")
    data = [i for i in log.indices(conn=conn, kinds=["packet"]).tolist()
            if i > client_fw2 and log[i].data.get("len") and "FIN" not in log[i].data["flags"]
            and log[i].data.get("sport") != int(conn.split(">")[0].rsplit(":", 1)[1])]
    assert data, "the server sent nothing after the client's FIN was acknowledged"
    view.select(conn)
    shown(view, tl, data[len(data) // 2])
    assert view.markers["client"].state == "FIN_WAIT_2"
    assert view.markers["server"].state == "CLOSE_WAIT"


def test_an_abort_takes_both_ends_to_closed_by_the_reset_arrow(view: DiagramView, runs) -> None:  # type: ignore[no-untyped-def]
    tl, _, _ = open_trace(runs["abort"])
    conn = last_conn(tl)
    walk_every_step(view, tl, conn)
    assert view.walked("client") == ["CLOSED", "SYN_SENT", "ESTABLISHED", "CLOSED"]
    assert view.walked("server") == ["LISTEN", "SYN_RECV", "ESTABLISHED", "CLOSED"]
    for side, trigger in (("client", "snd RST"), ("server", "rcv RST")):
        edge = view.last_edges[side]
        assert edge.kind == "reset" and edge.trigger == trigger and edge.target == END
    assert "A reset ends the connection" in view.caption
    assert not any(m.countdown for m in view.markers.values())  # no TIME_WAIT follows


def test_derived_segments_walk_the_same_figure(view: DiagramView, tmp_path: Path) -> None:
    """As an ordinary user sees it: segments derived from the syscalls, states from them."""
    trace = record(tmp_path, "derived", "--packets", "derived", "--states", "inferred",
                   "--policy", "close", "--load=--clients 1 --requests 1")
    tl, _, _ = open_trace(trace)
    conn = last_conn(tl)
    walk_every_step(view, tl, conn)
    assert view.walked("client") == LAST and view.walked("server") == CLOSER_SERVER
    assert "derived" in " ".join(view.badges)


# ------------------------------------------------------------ the lab's lost segments
LAB = (lab_available()[0] and faults_available()[0],
       f"{lab_available()[1]}; {faults_available()[1]}")


def lab_record(folder: Path, fault: str, load: str) -> Path:
    return record(folder, fault, "--lab", "--fault", fault, "--kernel-interval", "0.002",
                  f"--load={load}")


@pytest.mark.skipif(not LAB[0], reason=f"the lab's faults need: {LAB[1]}")
def test_a_lost_syn_loops_on_syn_sent(view: DiagramView, tmp_path: Path) -> None:
    tl, _, _ = open_trace(lab_record(tmp_path, "drop-syn", "--requests 1 --short"))
    conn = last_conn(tl)
    log = tl.log
    syns = [i for i in log.indices(conn=conn, kinds=["packet"]).tolist()
            if log[i].data["flags"] == "SYN"]
    assert len(syns) == 2
    view.select(conn)
    shown(view, tl, syns[1])  # the SYN again: the client still in SYN_SENT
    assert view.markers["client"].state == "SYN_SENT"
    assert [(lp.side, lp.state, lp.count) for lp in view.loops] == [("client", "SYN_SENT", 1)]
    assert "SYN again 1×" in view.caption
    walk_every_step(view, tl, conn)
    assert view.walked("client") == LAST and view.walked("server") == CLOSER_SERVER


@pytest.mark.skipif(not LAB[0], reason=f"the lab's faults need: {LAB[1]}")
def test_a_lost_ack_keeps_the_server_in_syn_recv_and_it_sends_again(view: DiagramView,
                                                                     tmp_path: Path) -> None:
    # the client waits 1.5 s before its request: the server resends its SYN|ACK first
    tl, _, _ = open_trace(lab_record(tmp_path, "drop-ack",
                                     "--requests 1 --wait-after-connect 1500"))
    conn = last_conn(tl)
    log = tl.log
    packets = log.indices(conn=conn, kinds=["packet"]).tolist()
    lost = next(i for i in packets if log[i].data.get("dropped") == "drop-ack")
    view.select(conn)
    shown(view, tl, lost)
    assert view.markers["client"].state == "ESTABLISHED"
    assert view.markers["server"].state == "SYN_RECV"  # the ACK never arrived
    again = next(i for i in packets if i > lost and log[i].data["flags"] == "SYN|ACK")
    shown(view, tl, again)
    assert view.markers["server"].state == "SYN_RECV"
    assert [(lp.side, lp.state, lp.flags) for lp in view.loops] == [("server", "SYN_RECV",
                                                                     "SYN|ACK")]
    assert "last ACK did not arrive" in view.caption
    walk_every_step(view, tl, conn)
    assert view.walked("server")[:3] == ["LISTEN", "SYN_RECV", "ESTABLISHED"]


# ------------------------------------------------------------ pictures
def test_export_png_and_svg(view: DiagramView, runs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tl, _, _ = open_trace(runs["short"])
    shown(view, tl, len(tl.log) - 1)
    view.export(tmp_path / "d.png")
    view.export(tmp_path / "d.svg")
    assert (tmp_path / "d.png").stat().st_size > 10_000
    text = (tmp_path / "d.svg").read_text()
    for word in ("ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "rcv FIN / snd ACK"):
        assert word in text, word


# ------------------------------------------------------------ moving, badges, themes
def test_a_step_forward_moves_the_marker_along_its_arrow(qtbot, view: DiagramView) -> None:  # type: ignore[no-untyped-def]
    """Stepping onto a change: the marker travels its arrow (half way, it stands on the
    arrow, not at either box); stepping back jumps; settle() ends the journey."""
    from tests.qt.test_view_sequence import ISN_C, ISN_S
    t = Trace()
    t.seg("client", "SYN", ISN_C)
    t.state("client", "SYN_SENT", "CLOSED", source="inferred", trigger="snd SYN")
    t.seg("server", "SYN|ACK", ISN_S, ISN_C + 1)
    t.state("server", "SYN_RECV", "LISTEN", source="inferred", trigger="snd SYN|ACK")
    t.state("client", "ESTABLISHED", "SYN_SENT", source="inferred", trigger="rcv SYN|ACK")
    tl = Timeline(EventLog(t.events))
    view.show()
    shown(view, tl, 3)
    view.settle()
    shown(view, tl, 4)  # the client: SYN_SENT → ESTABLISHED
    assert view.animating and view._moving == {"client"}
    view._animation.stop()
    view._progress = 0.5
    view._layout()
    fonts = view._fonts()
    pill, _ = view._pill("client", view.markers["client"], fonts)
    halfway = view._marker_at("client", view.markers["client"], pill.center())
    route = view._route_of(view.last_edges["client"])
    assert halfway != pill.center()
    xs, ys = [q.x() for q in route], [q.y() for q in route]
    assert min(xs) - 1 <= halfway.x() <= max(xs) + 1 and min(ys) - 1 <= halfway.y() <= max(ys) + 1
    view.settle()
    assert not view.animating
    shown(view, tl, 3)  # back: no journey
    assert not view.animating and view.markers["client"].state == "SYN_SENT"


def test_a_marker_carries_the_sequence_views_badge(qtbot, view: DiagramView) -> None:  # type: ignore[no-untyped-def]
    """The kernel's word on a state, the same in both pictures: a confirmation that came
    a few µs early (the tracepoint), and a poll that contradicts."""
    from tests.qt.test_view_sequence import CONN
    from visualizer.views.sequence import SequenceView
    t = Trace()
    t.add("state_check", CONN, "kernel", side="client", state="SYN_SENT", previous="CLOSED",
          source="traced", verdict="confirms")
    t.handshake()
    t.add("state_check", CONN, "kernel", side="client", state="ESTABLISHED",
          previous="SYN_SENT", source="traced", verdict="confirms")
    t.add("state_check", CONN, "kernel", side="server", state="CLOSE_WAIT",
          previous="ESTABLISHED", source="observed", verdict="contradicts")
    tl = Timeline(EventLog(t.events))
    sequence = SequenceView()
    qtbot.addWidget(sequence)
    sequence.resize(1280, 720)
    for i in range(len(t.events)):
        shown(view, tl, i)
        shown(sequence, tl, i)
        for side in SIDES:
            lane = [m for m in sequence.marks if m.side == side]
            if not lane:
                continue
            assert view.markers[side].check == lane[-1].check, (i, side)
    assert view.markers["client"].check == "✓" and view.markers["client"].checked_by == "traced"
    assert view.markers["server"].check == "✗ CLOSE_WAIT"


def test_dark_and_projector_themes_draw_the_figure_in_their_colours(view: DiagramView) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QColor

    from visualizer.views import style
    try:
        for theme in ("dark", "projector"):
            style.set_theme(theme)
            view.apply_theme()
            view.show_state(Timeline(EventLog([])))
            image = view.grab().toImage()
            assert QColor(image.pixel(3, image.height() // 2)).name() == \
                QColor(style.BACKGROUND).name(), theme
            rect = view._geo.rects["ESTABLISHED"]
            s = view._scale
            edge = QColor(image.pixel(int(rect.center().x() * s),
                                      int((rect.top() + 1) * s)))
            assert edge.name() != QColor(style.BACKGROUND).name(), theme  # the box is drawn
    finally:
        style.set_theme("light")


def test_the_port_pair_used_again_walks_from_the_start(view: DiagramView) -> None:
    """A new connection on the same port pair (the client's SYN anew, after the first
    ended): its ends start their walk again, from CLOSED and LISTEN, not from the
    first connection's end."""
    from tests.qt.test_view_sequence import ISN_C, ISN_S
    t = Trace()
    for isn in (ISN_C, ISN_C + 99_999):
        t.seg("client", "SYN", isn)
        t.state("client", "SYN_SENT", "CLOSED", source="inferred", trigger="snd SYN")
        t.seg("server", "SYN|ACK", ISN_S, isn + 1)
        t.state("server", "SYN_RECV", "LISTEN", source="inferred", trigger="snd SYN|ACK")
        t.state("client", "ESTABLISHED", "SYN_SENT", source="inferred", trigger="rcv SYN|ACK")
        t.state("server", "ESTABLISHED", "SYN_RECV", source="inferred", trigger="rcv ACK")
        t.state("client", "CLOSED", "ESTABLISHED", source="inferred", trigger="snd RST")
        t.state("server", "CLOSED", "ESTABLISHED", source="inferred", trigger="rcv RST")
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 3)  # the second connection, both ends ESTABLISHED
    assert view.walked("client") == ["CLOSED", "SYN_SENT", "ESTABLISHED"]
    assert view.walked("server") == ["LISTEN", "SYN_RECV", "ESTABLISHED"]
    assert all(s.edge.kind == "rfc" for side in SIDES for s in view.paths[side])


def test_a_capture_gap_while_the_connection_lived_is_badged(view: DiagramView) -> None:
    """States walked from segments the capture partly lost may miss some: from the
    moment the capture's ``dropped`` event says so, the diagram carries the sequence
    view's warning with the count. A gap before the connection, or another sink's loss,
    says nothing."""
    t = Trace()
    t.add("listen", None, host="10.0.0.2", port=80, backlog=128, reuseaddr=True)
    t.add("dropped", None, "capture", count=7, sink="capture", from_ns=1_000, until_ns=2_000)
    t.handshake()
    c, s = t.exchange(1)
    before = t.seg("client", "PSH|ACK", c, s, 100)
    after = t.seg("server", "PSH|ACK", s, c + 100, 500)
    gap = t.add("dropped", None, "capture", count=41, sink="capture",
                from_ns=t.events[before].t_ns, until_ns=t.events[after].t_ns)
    t.add("dropped", None, "trace", count=3, sink="trace")
    tl = Timeline(EventLog(t.events))
    shown(view, tl, gap - 1)
    assert view.conn is not None and view.gap_frames == 0
    assert not any("capture lost" in b for b in view.badges)
    shown(view, tl, len(t.events) - 1)
    assert view.gap_frames == 41
    assert view.badges[0] == "⚠ the capture lost 41 frames meanwhile"  # first: drawn
    view.grab()
    assert view.badges_drawn >= 1
    # More than the header holds: those that do not fit are not dropped unsaid.
    view.badges.append("checked: observed + traced, " * 4)
    with TextAudit() as audit:
        view.grab()
    drawn = [d.text for d in audit.drawn]
    assert 1 <= view.badges_drawn < len(view.badges), (view.badges_drawn, view.badges)
    assert view.badges[0] in drawn and "…" in drawn, drawn
