"""The sequence view: handshake and teardown of one connection as arrows between two lanes."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import Event
from tests.conftest import port_with_a_time_wait
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.views.sequence import MIN_ROWS, Arrow, SequenceView, _human_bytes

ROOT = Path(__file__).resolve().parents[2]
CONN = "10.0.0.1:50000>10.0.0.2:80"
OTHER = "10.0.0.1:50002>10.0.0.2:80"
ISN_C, ISN_S = 1_000_000, 3_000_000_000
MAX_LAG = 4 + 4  # segments: the few kept waiting, and one batch's worth


class Trace:
    """Builds events by hand, one microsecond apart."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, kind: str, conn: str | None, src: str = "server", **data: object) -> int:
        n = len(self.events)
        self.events.append(Event(n + 1, 1_000_000_000 + n * 1_000, src, kind, conn, -1, 1, data))
        return n

    def seg(self, sender: str, flags: str, seq: int, ack: int = 0, length: int = 0,
            conn: str = CONN, origin: str = "captured") -> int:
        client_port = int(conn.split(">")[0].rsplit(":", 1)[1])
        ports = (client_port, 80) if sender == "client" else (80, client_port)
        return self.add("packet", conn, "capture", sport=ports[0], dport=ports[1], flags=flags,
                        tcp_seq=seq % (1 << 32), ack=ack % (1 << 32), len=length, win=512,
                        origin=origin)

    def state(self, side: str, state: str, previous: str, conn: str = CONN,
              source: str = "observed", **extra: object) -> int:
        return self.add("tcp_state", conn, "kernel", side=side, state=state, previous=previous,
                        source=source, **extra)

    def handshake(self, conn: str = CONN) -> None:
        c, s = ISN_C, ISN_S
        self.seg("client", "SYN", c, conn=conn)
        self.state("client", "SYN_SENT", "CLOSED", conn)
        self.seg("server", "SYN|ACK", s, c + 1, conn=conn)
        self.state("server", "SYN_RECV", "LISTEN", conn)
        self.seg("client", "ACK", c + 1, s + 1, conn=conn)
        self.state("client", "ESTABLISHED", "SYN_SENT", conn)
        self.state("server", "ESTABLISHED", "SYN_RECV", conn)

    def exchange(self, requests: int = 1, conn: str = CONN) -> tuple[int, int]:
        """Requests of 100 bytes, responses of 500; returns the next (client, server) seq."""
        c, s = ISN_C + 1, ISN_S + 1
        for _ in range(requests):
            self.seg("client", "PSH|ACK", c, s, 100, conn=conn)
            self.seg("server", "ACK", s, c + 100, conn=conn)
            self.seg("server", "PSH|ACK", s, c + 100, 500, conn=conn)
            self.seg("client", "ACK", c + 100, s + 500, conn=conn)
            c, s = c + 100, s + 500
        return c, s


def three_segment_close(t: Trace, c: int, s: int) -> None:
    t.state("client", "FIN_WAIT_1", "ESTABLISHED")
    t.seg("client", "FIN|ACK", c, s)
    t.state("server", "CLOSE_WAIT", "ESTABLISHED")
    t.state("server", "LAST_ACK", "CLOSE_WAIT")
    t.seg("server", "FIN|ACK", s, c + 1)
    t.state("client", "TIME_WAIT", "FIN_WAIT_1", expires_ms=60_000)
    t.seg("client", "ACK", c + 1, s + 1)
    t.state("server", "CLOSED", "LAST_ACK")


def four_segment_close(t: Trace, c: int, s: int) -> None:
    t.state("client", "FIN_WAIT_1", "ESTABLISHED")
    t.seg("client", "FIN|ACK", c, s)
    t.seg("server", "ACK", s, c + 1)
    t.state("server", "CLOSE_WAIT", "ESTABLISHED")
    t.state("client", "FIN_WAIT_2", "FIN_WAIT_1")
    t.state("server", "LAST_ACK", "CLOSE_WAIT")
    t.seg("server", "FIN|ACK", s, c + 1)
    t.state("client", "TIME_WAIT", "FIN_WAIT_2", expires_ms=60_000)
    t.seg("client", "ACK", c + 1, s + 1)
    t.state("server", "CLOSED", "LAST_ACK")


def full(four: bool = False) -> Trace:
    t = Trace()
    t.add("listen", None, host="10.0.0.2", port=80, backlog=128, reuseaddr=True)
    t.handshake()
    c, s = t.exchange(1)
    (four_segment_close if four else three_segment_close)(t, c, s)
    return t


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = SequenceView()
    qtbot.addWidget(v)
    v.resize(1280, 720)
    return v


def shown(view: SequenceView, timeline: Timeline, index: int) -> SequenceView:
    """Moved by hand, as stepping and the slider do: not live."""
    timeline.live = False
    timeline.seek(index)
    view.show_state(timeline)
    return view


def bytes_once(arrows: list[Arrow]) -> int:
    """The bytes ``arrows`` carried, each byte of a sender's stream once: the union of
    their (relative) seq ranges, side by side."""
    total = 0
    for side in ("client", "server"):
        reach: int | None = None
        for a in sorted((a for a in arrows if a.sender == side and a.length),
                        key=lambda a: a.seq):
            total += max(0, a.seq + a.length - (a.seq if reach is None else max(a.seq, reach)))
            reach = max(reach or 0, a.seq + a.length)
    return total


def index_of(t: Trace, kind: str, **match: object) -> int:
    return next(i for i, e in enumerate(t.events)
                if e.kind == kind and all(e.data.get(k) == v for k, v in match.items()))


def test_arrows_labels_and_numbers(view: SequenceView) -> None:
    t = full()
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 1)
    assert view.conn == CONN and "50000" in view.title_text and "80" in view.title_text
    assert [a.flags for a in view.arrows] == ["SYN", "SYN|ACK", "ACK", "PSH|ACK", "ACK",
                                              "PSH|ACK", "ACK", "FIN|ACK", "FIN|ACK", "ACK"]
    assert [a.direction for a in view.arrows[:3]] == ["client→server", "server→client",
                                                      "client→server"]
    assert [a.kind for a in view.arrows] == ["control", "control", "ack", "data", "ack", "data",
                                             "ack", "control", "control", "ack"]
    # Relative numbers, as Wireshark shows them: seq and ack from each side's ISN.
    assert view.relative and view.relative_box.isChecked()
    assert view.arrows[0].label == "SYN  seq=0 len=0"  # no ACK flag: no ack number
    assert view.arrows[1].label == "SYN|ACK  seq=0 ack=1 len=0"
    assert view.arrows[3].numbers == "seq=1 ack=1 len=100"
    assert view.arrows[5].numbers == "seq=1 ack=101 len=500"
    assert view.arrows[-1].numbers == "seq=102 ack=502 len=0"
    assert all(a.origin == "captured" for a in view.arrows)
    assert view.badges == ["packets: captured", "states: observed"]
    # The checkbox switches to the numbers on the wire.
    view.relative_box.click()
    assert not view.relative
    assert view.arrows[0].label == f"SYN  seq={ISN_C} len=0"
    assert view.arrows[1].numbers == f"seq={ISN_S} ack={ISN_C + 1} len=0"
    assert view.arrows[-1].ack == ISN_S + 502
    view.set_relative(True)
    assert view.relative_box.isChecked() and view.arrows[1].ack == 1
    # Each arrow has a row of its own, in order, going down the page.
    rows = [a.row for a in view.arrows]
    assert rows == sorted(rows) and len(set(rows)) == len(rows)
    assert all(b.y0 > a.y1 for a, b in zip(view.arrows, view.arrows[1:]))
    assert all(a.y1 > a.y0 for a in view.arrows)  # time passes while a segment travels
    assert view.arrows[0].elapsed_ms == 0 and view.arrows[-1].elapsed_ms > 0


def test_states_change_at_the_right_moment_and_stepping_back_undraws(view: SequenceView) -> None:
    t = full()
    tl = Timeline(EventLog(t.events))
    syn = index_of(t, "packet", flags="SYN")
    shown(view, tl, syn)
    assert [a.flags for a in view.arrows] == ["SYN"]
    assert view.client_state == "—" and view.marks == []  # not reported yet
    shown(view, tl, syn + 1)
    assert view.client_state == "SYN_SENT" and view.lane_states("client") == ["SYN_SENT"]
    established = index_of(t, "tcp_state", side="server", state="ESTABLISHED")
    shown(view, tl, established)
    assert (view.client_state, view.server_state) == ("ESTABLISHED", "ESTABLISHED")
    assert [a.flags for a in view.arrows] == ["SYN", "SYN|ACK", "ACK"]
    # A state change sits between the segments that surround it.
    mark = next(m for m in view.marks if m.side == "server" and m.state == "SYN_RECV")
    assert mark.row == 1 and view.arrows[1].y1 < mark.y < view.arrows[2].y0 + 40
    end = len(t.events) - 1
    shown(view, tl, end)
    assert view.lane_states("client") == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT"]
    assert view.lane_states("server") == ["SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK",
                                          "CLOSED"]
    assert view.client_state == "TIME_WAIT" and view.server_state == "CLOSED"
    assert "TIME_WAIT" in view.client_state_text and "60.0 s" in view.client_state_text
    ys = [m.y for m in view.marks if m.side == "server"]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    # Stepping back un-draws: the teardown disappears, states go back.
    fin = index_of(t, "packet", flags="FIN|ACK")
    shown(view, tl, fin - 1)
    assert [a.flags for a in view.arrows][-1] == "ACK" and len(view.arrows) == 7
    assert view.client_state == "FIN_WAIT_1" and view.server_state == "ESTABLISHED"
    assert "TIME_WAIT" not in view.lane_states("client")
    shown(view, tl, -1)
    assert view.arrows == [] and view.conn is None and view.message


def test_three_segment_caption_only_when_the_fin_rides_on_the_ack(view: SequenceView) -> None:
    t = full()
    tl = Timeline(EventLog(t.events))
    client_fin = index_of(t, "packet", flags="FIN|ACK")
    shown(view, tl, client_fin)
    assert view.teardown == "" and "rode on" not in view.caption
    server_fin = client_fin + 3
    assert t.events[server_fin].data["flags"] == "FIN|ACK"
    shown(view, tl, server_fin)
    assert view.teardown == "three"
    assert "server's FIN rode on the ACK" in view.caption and "delayed ACK" in view.caption
    assert [a.note for a in view.arrows].count("piggyback") == 1
    assert view.arrows[-1].note == "piggyback" and view.arrows[-1].sender == "server"
    shown(view, tl, len(t.events) - 1)
    assert view.teardown == "three"
    # Four segments: a pure ACK first, the FIN later. No such caption.
    t4 = full(four=True)
    tl4 = Timeline(EventLog(t4.events))
    shown(view, tl4, index_of(t4, "tcp_state", side="client", state="FIN_WAIT_2"))
    assert view.teardown == "half-closed" and "rode on" not in view.caption
    shown(view, tl4, len(t4.events) - 1)
    assert [a.flags for a in view.arrows][-4:] == ["FIN|ACK", "ACK", "FIN|ACK", "ACK"]
    assert view.teardown == "four" and "rode on" not in view.caption
    assert "Four segments" in view.caption
    assert not any(a.note for a in view.arrows)
    assert view.lane_states("client")[-3:] == ["FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]


def test_data_after_a_fin_is_a_half_close(view: SequenceView) -> None:
    t = Trace()
    t.handshake()
    c, s = t.exchange(1)
    t.seg("client", "FIN|ACK", c, s)
    t.seg("server", "PSH|ACK", s, c + 1, 500)  # the server still sends: it acknowledges the FIN
    t.seg("client", "ACK", c + 1, s + 500)
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 1)
    assert view.teardown == "half-closed" and "may still send" in view.caption
    t.seg("server", "FIN|ACK", s + 500, c + 1)
    t.seg("client", "ACK", c + 1, s + 501)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert view.teardown == "half-close" and "went on sending" in view.caption
    assert "rode on" not in view.caption


def test_a_reset_is_a_warning(view: SequenceView) -> None:
    t = Trace()
    t.handshake()
    c, s = t.exchange(1)
    t.seg("client", "RST|ACK", c, s)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert view.arrows[-1].kind == "reset" and view.teardown == "reset"
    assert "RST" in view.caption and "client reset" in view.caption


def test_selection_and_the_newest_connection(view: SequenceView) -> None:
    t = Trace()
    t.handshake(CONN)
    t.handshake(OTHER)
    t.seg("client", "PSH|ACK", ISN_C + 1, ISN_S + 1, 100, conn=CONN)  # the older one talks last
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 1)
    assert view.conn == OTHER and view.conn_reason == "newest"  # the newest connection
    assert [a.flags for a in view.arrows] == ["SYN", "SYN|ACK", "ACK"]
    view.select(CONN)
    assert view.conn == CONN and view.conn_reason == "selected"
    assert [a.flags for a in view.arrows] == ["SYN", "SYN|ACK", "ACK", "PSH|ACK"]
    shown(view, tl, 3)  # before OTHER began: the selection holds
    assert view.conn == CONN and len(view.arrows) == 2
    view.select(None)
    shown(view, tl, len(t.events) - 1)
    assert view.conn == OTHER
    view.select("10.9.9.9:1>10.0.0.2:80")  # selected, but without segments (yet)
    assert view.arrows == [] and view.message and view.conn_reason == "selected"


def test_a_new_segment_travels_and_stepping_back_removes_it(qtbot, view: SequenceView) -> None:  # type: ignore[no-untyped-def]
    t = full()
    tl = Timeline(EventLog(t.events))
    synack = index_of(t, "packet", flags="SYN|ACK")
    shown(view, tl, synack - 1)
    assert not view.animating  # the first picture does not animate
    shown(view, tl, synack)  # forward by one: the SYN|ACK travels
    assert view.animating
    arrow = view.arrows[-1]
    assert arrow.flags == "SYN|ACK" and view.progress_of(arrow) < 1
    assert view.progress_of(view.arrows[0]) == 1
    view.grab()  # painting mid-flight is fine
    qtbot.waitUntil(lambda: not view.animating, timeout=3000)
    assert view.progress_of(view.arrows[-1]) == 1
    shown(view, tl, synack + 2)
    assert view.animating
    shown(view, tl, synack - 1)  # back: no animation, the arrows are gone at once
    assert not view.animating and [a.flags for a in view.arrows] == ["SYN"]
    shown(view, tl, len(t.events) - 1)  # a jump: everything drawn, nothing travels
    assert not view.animating and len(view.arrows) == 10


def test_live_a_connection_that_arrives_in_one_batch_is_told_segment_by_segment(qtbot, view: SequenceView) -> None:  # type: ignore[no-untyped-def]
    """On loopback a whole connection lands in one 33 ms batch: live, its segments still
    travel one after another, and the lane states keep pace with the segment on its way."""
    t = full()
    listen = t.events[:1]
    tl = Timeline(EventLog(listen))
    assert tl.live
    view.show()  # (hidden, a view stops its journeys: it catches up when shown)
    view.show_state(tl)
    assert view.conn is None
    tl.add(t.events[1:])  # the whole connection at once, as a live batch brings it
    view.show_state(tl)
    assert view.animating and view.conn == CONN
    assert [a.flags for a in view.arrows] == ["SYN"]  # the rest wait their turn
    assert view.client_state == "SYN_SENT" and view.server_state == "—"
    assert view.caption == ""
    seen = {len(view.arrows)}
    qtbot.waitUntil(lambda: seen.add(len(view.arrows)) or not view.animating, timeout=8000)
    assert seen >= {1, 4, 10}  # it went through the middle, not straight to the end
    assert len(view.arrows) == 10 and all(view.progress_of(a) == 1 for a in view.arrows)
    assert view.client_state == "TIME_WAIT" and view.server_state == "CLOSED"
    assert view.teardown == "three"
    # Stepping by hand is not live: a jump draws everything at once, as before.
    tl.live = False
    shown(view, tl, 0)
    shown(view, tl, len(t.events) - 1)
    assert not view.animating and len(view.arrows) == 10


def test_live_holds_a_connection_until_its_segments_have_arrived(qtbot, view: SequenceView) -> None:  # type: ignore[no-untyped-def]
    t = full()
    first = len(t.events)
    t.handshake(OTHER)  # a newer connection comes in while the first is still on its way
    tl = Timeline(EventLog(t.events[:1]))
    view.show()
    view.show_state(tl)
    tl.add(t.events[1:first])
    view.show_state(tl)
    assert view.conn == CONN and view.animating
    tl.add(t.events[first:])
    view.show_state(tl)
    assert view.conn == CONN and view.conn_reason == "held"  # not flicking mid-story
    qtbot.waitUntil(lambda: view.conn == OTHER, timeout=8000)
    assert view.animating and [a.flags for a in view.arrows] == ["SYN"]  # its turn, from its SYN
    qtbot.waitUntil(lambda: not view.animating, timeout=8000)
    assert [a.flags for a in view.arrows] == ["SYN", "SYN|ACK", "ACK"]
    assert view.server_state == "ESTABLISHED"


def test_live_a_busy_connection_is_followed_and_does_not_hold_the_view(qtbot, view: SequenceView,  # type: ignore[no-untyped-def]
                                                                      monkeypatch) -> None:
    """A connection streaming faster than segments can travel is followed a few segments
    behind, as stepping follows it, and lets go at once for a newer connection."""
    import visualizer.views.sequence as sequence
    from visualizer.views.sequence import MAX_ANIMATED_LIVE
    # The hold's time limit out of the way: only being busy can let the newer one in (a
    # bound on the wall clock would also pass, or fail, with the machine's load).
    monkeypatch.setattr(sequence, "HOLD_S", 3600.0)
    t = Trace()
    t.add("listen", None, host="10.0.0.2", port=80, backlog=128, reuseaddr=True)
    t.handshake()
    c, s = ISN_C + 1, ISN_S + 1
    other_at = -1
    for k in range(30):
        t.seg("client", "PSH|ACK", c, s, 100)
        t.seg("server", "ACK", s, c + 100)
        c += 100
        if k == 10:
            other_at = len(t.events)
            t.handshake(OTHER)
    view.show()
    tl = Timeline(EventLog(t.events[:1]))
    view.show_state(tl)
    other_seen = switched = None
    busy_seen = False
    for start in range(1, len(t.events), 4):  # a live batch every 33 ms
        tl.add(t.events[start:start + 4])
        view.show_state(tl)
        if other_seen is None and start + 4 > other_at:
            other_seen = start
        if switched is None and view.conn == OTHER:
            switched = start
        if view.conn == CONN:  # followed closely, not minutes of journeys behind
            drawn = len(view.arrows)
            at_cursor = sum(1 for e in t.events[:start + 4]
                            if e.kind == "packet" and e.conn == CONN)
            # Retelling, at most a retelling's worth behind; once it is seen to be busy,
            # a few segments only.
            limit = MAX_LAG if view._busy else MAX_ANIMATED_LIVE + 4
            assert at_cursor - drawn <= limit, (at_cursor, drawn, view._busy)
            busy_seen = busy_seen or view._busy
        qtbot.wait(33)
    assert other_seen is not None and busy_seen
    # Busy: let go for the newer connection while the busy one still streams (its batches
    # still coming, its journeys still queued); held, the view would keep the busy one on
    # screen as long as its segments kept travelling. Counted in batches, not seconds.
    assert switched is not None and switched >= other_seen, (other_seen, switched)
    assert view.conn == OTHER


def test_live_deselecting_lets_the_newest_in_at_once(qtbot, view: SequenceView) -> None:  # type: ignore[no-untyped-def]
    t = full()
    t.handshake(OTHER)
    view.show()
    tl = Timeline(EventLog(t.events[:1]))
    view.show_state(tl)
    view.select(CONN)
    tl.add(t.events[1:])
    view.show_state(tl)
    assert view.conn == CONN and view.conn_reason == "selected" and view.animating
    view.select(None)
    assert view.conn == OTHER and view.conn_reason in ("newest", "held")


def test_zoomed_in_on_a_small_screen_rows_keep_room_for_their_labels(view: SequenceView) -> None:
    """200 % on a 1280x720 slide: rather than rows closer than their labels are tall
    (labels over arrows), the picture is set smaller, never below 100 %'s type."""
    from PySide6.QtGui import QFontMetricsF
    from visualizer.views import style
    t = full()
    tl = Timeline(EventLog(t.events))
    try:
        for zoom in (2.0, 3.0):
            style.set_zoom(zoom)
            view.apply_theme()
            view.resize(1268, 470)  # the view's part of a 720-pixel slide, under a caption
            view.show()
            shown(view, tl, len(t.events) - 1)
            fonts = view._fonts()
            label = QFontMetricsF(fonts["flags"]).height()
            assert view._geo.row_h >= label, (zoom, view._geo.row_h, label)
            assert view._scale >= 1 / zoom - 1e-9  # never below 100 %'s type
            widest = QFontMetricsF(fonts["ms"]).horizontalAdvance("0000.00")
            assert view._geo.ms_right >= widest  # the time column is not cut at the left
            view.grab()
    finally:
        style.set_zoom(1.0)
        view.apply_theme()


def test_long_connections_fold_the_middle_and_keep_both_ends(view: SequenceView) -> None:
    t = Trace()
    t.handshake()
    c, s = t.exchange(12)  # 48 data segments and their ACKs
    three_segment_close(t, c, s)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert len(view.arrows) == 3 + 48 + 3
    drawn = [a for a in view.arrows if not view._is_folded(a)]
    flags = [a.flags for a in drawn]
    assert flags[:3] == ["SYN", "SYN|ACK", "ACK"] and flags[-3:] == ["FIN|ACK", "FIN|ACK", "ACK"]
    assert len(view.elisions) == 1 and view.elisions[0].count == 54 - len(drawn)
    assert "more segments" in view.elisions[0].text
    rows = len(drawn) + len(view.elisions)
    assert 8 <= rows <= 16
    assert view.teardown == "three"  # the caption reads every segment, folded or not
    # Rows stay legible: at least 36 px apart, inside the view.
    ys = [a.y0 for a in drawn]
    assert min(b - a for a, b in zip(ys, ys[1:])) >= 30 and ys[-1] < 720
    # A smaller window folds more, and still shows both ends.
    view.resize(1100, 480)
    drawn = [a.flags for a in view.arrows if not view._is_folded(a)]
    assert drawn[:3] == ["SYN", "SYN|ACK", "ACK"] and drawn[-3:] == ["FIN|ACK", "FIN|ACK", "ACK"]


def test_derived_packets_and_inferred_states_are_badged(view: SequenceView) -> None:
    t = Trace()
    t.add("packet", CONN, "engine", sport=50000, dport=80, flags="SYN", tcp_seq=0, ack=0, len=0,
          win=None, origin="derived", relative=True, sender="client")
    t.add("packet", CONN, "engine", sport=80, dport=50000, flags="SYN|ACK", tcp_seq=0, ack=1,
          len=0, win=None, origin="derived", relative=True, sender="server")
    t.state("server", "ESTABLISHED", "CLOSED", source="inferred", via=["SYN_RECV"])
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert view.badges == ["packets: derived", "states: inferred"]
    assert view.marks[0].via == ("SYN_RECV",)
    view.set_relative(False)  # derived numbers have no ISN: they stay relative, and say so
    assert view.arrows[1].numbers == "seq=0 ack=1 len=0"
    assert "relative" in view.badges[0]


def test_export_png_and_svg(view: SequenceView, tmp_path: Path) -> None:
    t = full()
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    png, svg = tmp_path / "s.png", tmp_path / "s.svg"
    view.export(png)
    view.export(svg)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    text = svg.read_text()
    assert "SYN" in text and "FIN|ACK" in text and "TIME_WAIT" in text


def record(tmp_path: Path, name: str, *args: str) -> Path:
    trace = tmp_path / f"{name}.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode", "epoll",
                    *args, "--exit-after-load", "--trace", str(trace)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    return trace


def last_state(timeline: Timeline, conn: str, side: str) -> str | None:
    states = [e.data["state"] for e in timeline.log
              if e.conn == conn and e.kind == "tcp_state" and e.data.get("side") == side]
    return states[-1] if states else None


@pytest.mark.parametrize("packets,states", [("auto", "auto"), ("derived", "inferred")])
def test_live_run(view: SequenceView, tmp_path: Path, packets: str, states: str) -> None:
    # The server closes each connection itself (policy close), before the run ends.
    trace = record(tmp_path, packets, "--packets", packets, "--states", states, "--policy",
                   "close", "--load=--clients 1 --requests 2 --think 20")
    tl, _, _ = open_trace(trace)
    tl.seek(len(tl.log) - 1)
    view.show_state(tl)
    conns = tl.log.connection_ids()
    assert view.conn in conns and view.conn == conns[-1]
    flags = [a.flags for a in view.arrows]
    assert flags[:3] == ["SYN", "SYN|ACK", "ACK"]
    assert [a.direction for a in view.arrows[:3]] == ["client→server", "server→client",
                                                      "client→server"]
    assert any("FIN" in a.flags and a.sender == "client" for a in view.arrows)
    assert any("FIN" in a.flags and a.sender == "server" for a in view.arrows)
    assert view.arrows[0].label.startswith("SYN  seq=0 ")  # relative, from the ISN
    assert view.teardown in ("three", "four")
    assert bool("rode on" in view.caption) == (view.teardown == "three")
    origin = {a.origin for a in view.arrows}
    assert origin == ({"derived"} if packets == "derived" else origin & {"captured", "derived"})
    # Each lane ends where the trace says its end went, and walks the textbook's states
    # from the segments, captured or derived: the server closes first.
    assert_lane_ends_as_traced(view, tl)
    assert next(a.sender for a in view.arrows if "FIN" in a.flags) == "server"
    assert view.lane_states("server") == ["SYN_RECV", "ESTABLISHED", "FIN_WAIT_1",
                                          "FIN_WAIT_2", "TIME_WAIT"]
    assert view.lane_states("client") == ["SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK",
                                          "CLOSED"]
    assert "TIME_WAIT" in view.server_state_text
    # The load's first connection, selected, shows its own handshake and states too.
    # (Not conns[0]: a socket of an earlier test's server on the same port, still in
    # TIME_WAIT, is named first when the observer finds it at its start.)
    first = next(c for c in conns if any(e.conn == c and e.kind == "connect" for e in tl.log))
    view.select(first)
    assert view.conn == first and [a.flags for a in view.arrows][:3] == ["SYN", "SYN|ACK", "ACK"]
    assert_lane_ends_as_traced(view, tl)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the kernel observer that finds older sockets reads Linux's sock_diag")
def test_a_socket_older_than_the_recording_says_so(view: SequenceView, tmp_path: Path,
                                                   qtbot) -> None:  # type: ignore[no-untyped-def]
    """An earlier server's connection, in TIME_WAIT on the port the recording's server
    takes: the observer finds it at its start. Selected, it has no segments, and the
    view says they came before the trace (not "yet"); the load's connections are whole."""
    port = port_with_a_time_wait()
    trace = record(tmp_path, "older", "--port", str(port), "--policy", "close",
                   "--load=--clients 1 --requests 1")
    tl, _, _ = open_trace(trace)
    tl.seek(len(tl.log) - 1)
    view.show_state(tl)
    older = [c for c in tl.log.connection_ids()
             if not any(e.conn == c and e.kind in ("connect", "accept") for e in tl.log)]
    assert len(older) == 1, tl.log.connection_ids()
    view.select(older[0])
    assert view.arrows == []
    assert view.message.startswith("This socket was on the server's port before the recording")
    assert view.server_state == "TIME_WAIT"
    loaded = next(c for c in tl.log.connection_ids() if c != older[0])
    view.select(loaded)
    assert [a.flags for a in view.arrows][:3] == ["SYN", "SYN|ACK", "ACK"]
    assert view.message == ""
    # The window's connections table says so too, and counts the load's as before.
    from PySide6.QtCore import QSettings

    from visualizer.app import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    assert window.load_trace(str(trace))
    window.timeline.seek(len(window.timeline.log) - 1)
    window._refresh()
    rows = {window.connections.item(r, 0).toolTip().split("\n")[0]:
            [window.connections.item(r, c).text() for c in range(5)]
            for r in range(window.connections.rowCount())}
    assert rows[older[0]][1:] == ["—", "TIME_WAIT", "before the trace", "—"], rows
    assert "before the recording began" in window.connections.item(
        list(rows).index(older[0]), 0).toolTip()
    packets = sum(1 for e in tl.log if e.conn == loaded and e.kind == "packet")
    assert rows[loaded][3:] == ["1", str(packets)] and packets >= 7, rows


def assert_lane_ends_as_traced(view: SequenceView, tl: Timeline) -> None:
    assert view.conn is not None
    for side in ("client", "server"):
        expected = last_state(tl, view.conn, side)
        if expected is None:  # observed, but the run was over before the kernel was asked
            assert getattr(view, f"{side}_state") == "—" and view.lane_states(side) == []
        else:
            assert getattr(view, f"{side}_state") == expected == view.lane_states(side)[-1]


def test_kernel_checks_badge_the_states_and_wait_for_an_early_report(view: SequenceView) -> None:
    t = Trace()
    # The tracepoint reports the client's SYN_SENT a few µs before the segment that
    # dates it; a poll later contradicts the server's state.
    t.add("state_check", CONN, "kernel", side="client", state="SYN_SENT", previous="CLOSED",
          source="traced", verdict="confirms")
    t.handshake()
    t.add("state_check", CONN, "kernel", side="server", state="CLOSE_WAIT",
          previous="ESTABLISHED", source="observed", verdict="contradicts",
          inferred="ESTABLISHED")
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    marks = {(m.side, m.state): m for m in view.marks}
    assert marks[("client", "SYN_SENT")].check == "✓"
    assert marks[("client", "SYN_SENT")].checked_by == "traced"
    assert marks[("client", "SYN_SENT")].text == "SYN_SENT ✓"
    assert marks[("client", "ESTABLISHED")].check == ""  # nobody said
    assert marks[("server", "ESTABLISHED")].check == "✗ CLOSE_WAIT"
    assert view.server_state_text.endswith("✗ CLOSE_WAIT")
    assert any("checked: observed + traced" in b for b in view.badges)


def test_a_retransmitted_segment_is_marked_and_a_reset_says_the_kernels_reason(
        view: SequenceView) -> None:
    t = Trace()
    t.seg("client", "SYN", ISN_C)
    t.seg("client", "SYN", ISN_C)  # the first was dropped: sent again a second later
    t.seg("server", "SYN|ACK", ISN_S, ISN_C + 1)
    t.seg("client", "ACK", ISN_C + 1, ISN_S + 1)
    t.seg("client", "PSH|ACK", ISN_C + 1, ISN_S + 1, 100)
    t.seg("client", "PSH|ACK", ISN_C + 1, ISN_S + 1, 100)  # and this one too
    t.add("reset", CONN, "kernel", side="client", direction="sent", state="ESTABLISHED",
          reason="TCP_ABORT_ON_CLOSE", source="traced")
    t.seg("client", "RST|ACK", ISN_C + 101, ISN_S + 1)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert [a.retransmission for a in view.arrows] == [False, True, False, False, False, True,
                                                       False]
    assert view.teardown == "reset" and "TCP_ABORT_ON_CLOSE" in view.caption
    view.grab()  # painted with its marks
    # The same port pair used again (derived numbers start at 0 every time): a new
    # connection, nothing of it a retransmission.
    t = Trace()
    for _ in range(2):
        for sender, flags, seq, ack, length in (
                ("client", "SYN", 0, 0, 0), ("server", "SYN|ACK", 0, 1, 0),
                ("client", "ACK", 1, 1, 0), ("client", "PSH|ACK", 1, 1, 90),
                ("server", "FIN|ACK", 1, 91, 0), ("client", "FIN|ACK", 91, 2, 0)):
            t.seg(sender, flags, seq, ack, length, origin="derived")
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert not any(a.retransmission for a in view.arrows)


def test_a_large_derived_write_is_one_honest_aggregate(view: SequenceView) -> None:
    t = Trace()
    for sender, flags, seq, ack in (("client", "SYN", 0, 0), ("server", "SYN|ACK", 0, 1),
                                    ("client", "ACK", 1, 1)):
        t.seg(sender, flags, seq, ack, origin="derived")
    t.events[-1].data["relative"] = True
    t.seg("client", "PSH|ACK", 1, 1, 90, origin="derived")
    big = t.seg("server", "PSH|ACK", 1, 91, 1 << 20, origin="derived")
    t.events[big].data["aggregate"] = True
    ack = t.seg("client", "ACK", 91, 1 + (1 << 20), origin="derived")
    t.events[ack].data["aggregate"] = True
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert [a.aggregate for a in view.arrows] == [False] * 4 + [True, True]
    assert view.arrows[4].length == 1 << 20
    view.grab()


def test_a_segment_the_labs_rule_dropped_stops_on_its_way(view: SequenceView) -> None:
    t = Trace()
    t.seg("client", "SYN", ISN_C)
    lost = t.seg("server", "SYN|ACK", ISN_S, ISN_C + 1)
    t.events[lost].data["dropped"] = "drop-synack"
    t.seg("server", "SYN|ACK", ISN_S, ISN_C + 1)  # resent a second later: it arrives
    t.seg("client", "ACK", ISN_C + 1, ISN_S + 1)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert [a.dropped for a in view.arrows] == ["", "drop-synack", "", ""]
    assert [a.retransmission for a in view.arrows] == [False, False, True, False]
    view.grab()


# ---------------------------------------------------------------- presentation mode
# The first lesson, recorded for real, presented as a lecturer does: its step 8 is the
# whole connection (handshake, request, response, the three-segment teardown), step 2
# the handshake's first two segments (step 3, its last ACK, stands on the state diagram).
TEARDOWN, HANDSHAKE = 7, 1


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):  # type: ignore[no-untyped-def]
    from visualizer.lessons import all_lessons, prepare
    return prepare(all_lessons()["first-request"], tmp_path_factory.mktemp("lesson"))


@pytest.fixture
def presenting(qtbot, tmp_path: Path, lesson):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from visualizer.app import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("language", "en")
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.open_lesson(lesson)
    try:
        yield window
    finally:
        window.presentation.leave()
        window.presentation.set_zoom(1.0, persist=False)
        window.close()


def slide(window, zoom: float, size: tuple[int, int] = (1280, 720),  # type: ignore[no-untyped-def]
          step: int = TEARDOWN) -> SequenceView:
    """The lesson's ``step`` in the presentation layout of a ``size`` slide at ``zoom``."""
    from PySide6.QtCore import QSize

    from visualizer import presentation
    window.presentation.set_zoom(zoom, persist=False)
    window.go_to_step(step)
    presentation.slide_layout(window, QSize(*size))
    view = window.views["sequence"]
    assert view.isVisible() and view.conn is not None
    return view


def pixels(view: SequenceView, key: str) -> float:
    """A font's size in pixels as drawn (the painter scales the picture by ``_scale``)."""
    return view._fonts()[key].pointSizeF() * view.logicalDpiY() / 72 * view._scale


def audited(view: SequenceView):  # type: ignore[no-untyped-def]
    from visualizer.textaudit import TextAudit
    with TextAudit() as audit:
        view.grab()
    return audit


def test_presenting_the_type_follows_the_zoom_all_of_it(presenting) -> None:  # type: ignore[no-untyped-def]
    """200 % on a 1280 x 720 projector: segments' labels, states and lanes twice as large
    as at 100 % (they grew 1.4 times at most), the picture folding what no longer fits."""
    sizes = {}
    for zoom in (1.0, 2.0):
        view = slide(presenting, zoom)
        sizes[zoom] = {key: pixels(view, key) for key in ("flags", "numbers", "pill", "lane")}
    for key, small in sizes[1.0].items():
        assert 1.9 <= sizes[2.0][key] / small <= 2.1, (key, sizes)
    assert sizes[1.0]["flags"] >= 14 and sizes[2.0]["flags"] >= 28, sizes
    # A larger screen, larger type at the same zoom: the view's size, as the I/O view's.
    big = slide(presenting, 1.0, (1920, 1080))
    assert pixels(big, "flags") >= 1.3 * sizes[1.0]["flags"]


def test_presenting_shows_the_response_when_it_fits(presenting) -> None:  # type: ignore[no-untyped-def]
    """125 %: the whole connection fits, so the response's data is drawn, not folded as
    "… 3 more segments (1 with data, 2.1 kB) …". At 200 % it no longer fits: the fold
    says what it holds, and the teardown at the cursor stays whole."""
    view = slide(presenting, 1.25)
    data = [a for a in view.arrows if a.length > 0]
    assert len(data) >= 2  # the request and the response
    assert view.elisions == [] and not any(view._is_folded(a) for a in view.arrows)
    view = slide(presenting, 2.0)
    assert view.elisions and len(view.arrows) == view._count
    for fold in view.elisions:
        inside = view.arrows[fold.first:fold.last + 1]
        assert all(view._is_folded(a) for a in inside)
        assert (fold.count, fold.data_segments, fold.data_bytes) == (
            len(inside), sum(a.length > 0 for a in inside), bytes_once(inside))
        control = tuple(dict.fromkeys(a.flags for a in inside if {"SYN", "FIN", "RST"}
                                      & set(a.flags.split("|"))))
        assert fold.controls == control  # a folded SYN or FIN is named in the words
        assert all(flags.replace("|", "|\u2060") in fold.text for flags in control)
    assert [a.flags for a in view.arrows[-3:]] == ["FIN|ACK", "FIN|ACK", "ACK"]
    assert not any(view._is_folded(a) for a in view.arrows[-3:])


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_presenting_at_200_percent_no_text_is_cut_or_on_another(presenting, size) -> None:  # type: ignore[no-untyped-def]
    """The audit finds nothing (it found the fold's '⋮' cut, the fold's words on a
    label, badges gone), and every badge and state is said somewhere."""
    for step in (TEARDOWN, HANDSHAKE):
        view = slide(presenting, 2.0, size, step)
        audit = audited(view)
        assert [str(f) for f in audit.findings()] == [], step
        drawn = [d.text for d in audit.drawn]
        assert all(badge in drawn for badge in view.badges), (view.badges, drawn)
        for m in view.marks:  # each state: its own label, or named over the fold's
            assert any(m.state in text for text in drawn), m.state


def test_presenting_a_fold_and_the_labels_keep_apart(presenting) -> None:  # type: ignore[no-untyped-def]
    """200 %: no segment's label reaches into a fold's row (the fold's words stood on the
    FIN|ACK under it), and the fold's words stay in their row."""
    from PySide6.QtCore import QRectF
    view = slide(presenting, 2.0)
    geo, scale = view._geo, view._scale
    audit = audited(view)
    labels = {a.flags for a in view.arrows} | {a.numbers for a in view.arrows}
    inks = [d.rect for d in audit.drawn if d.text in labels]
    assert inks
    for fold in view.elisions:
        top, bottom = geo.row_tops[fold.row], geo.row_tops[fold.row + 1]
        band = QRectF(geo.client_x * scale, top * scale, (geo.server_x - geo.client_x) * scale,
                      (bottom - top) * scale)
        assert not any(band.intersects(ink) for ink in inks), fold.text
        words = [d.rect for d in audit.drawn if d.text == fold.text]
        assert words and all(band.adjusted(0, -1, 0, 1).contains(r) for r in words)


def test_presenting_states_keep_their_moment_through_a_fold(presenting) -> None:  # type: ignore[no-untyped-def]
    """Every state change touches its lane after the segment before it and before the
    next one, drawn or folded: one that came while folded segments went, beside their
    fold (not after it), named over the label that stands there."""
    view = slide(presenting, 2.0)
    geo = view._geo
    arrows = view.arrows

    def band(a: object) -> tuple[float, float]:
        r = view.row_of(a)  # type: ignore[arg-type]  # (a folded arrow: its fold's row)
        return geo.row_tops[r], geo.row_tops[r + 1] if r + 1 < len(geo.row_tops) else 1e9

    inside = 0
    for m in view.marks:
        k = sum(1 for a in arrows if a.index < m.index) - 1  # the segment before it
        if k >= 0:
            before = arrows[k]
            low = band(before)[0] if view._is_folded(before) else max(before.y0, before.y1)
            assert m.y > low, (m.state, m.side)
        if k + 1 < len(arrows):
            after = arrows[k + 1]
            high = band(after)[1] if view._is_folded(after) else min(after.y0, after.y1)
            assert m.y < high, (m.state, m.side)
            inside += k >= 0 and view._is_folded(before) and view._is_folded(after)
    assert inside  # (the handshake's states came during the fold)
    assert view.lane_states("client")[-1] == view.client_state
    assert view.lane_states("server")[-1] == view.server_state


def test_zoomed_in_window_folds_are_not_cut(view: SequenceView) -> None:
    """In the window, 200 % on a small view: the fold's '⋮' (drawn in a box lower than the
    glyph) and its words are not cut, and no text lies on another."""
    from visualizer.views import style
    t = Trace()
    t.handshake()
    c, s = t.exchange(3)
    three_segment_close(t, c, s)
    try:
        style.set_zoom(2.0)
        view.apply_theme()
        view.resize(1268, 470)
        view.show()
        shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
        assert view.elisions
        audit = audited(view)
        assert [str(f) for f in audit.findings()] == []
        assert "⋮" in [d.text for d in audit.drawn]
    finally:
        style.set_zoom(1.0)
        view.apply_theme()


# ---------------------------------------------------------------- folds: what, how many, how fast
def folds_of(keep: list[int], n: int) -> list[tuple[int, int]]:
    bounds = [-1, *keep, n]
    return [(a + 1, b - 1) for a, b in zip(bounds, bounds[1:]) if b > a + 1]


def test_a_fold_hides_two_segments_or_more_and_every_row_is_used() -> None:
    """Only what does not fit folds: a segment that would fold alone takes the row its
    fold would have taken, drawn ("… 1 more segments …" hid one that fitted); the rows
    never outnumber the room, and all of it is used."""
    keep = SequenceView._keep(33, [6, 13, 24], 32)
    assert 5 in keep and all(last > first for first, last in folds_of(keep, 33)), keep
    rng = random.Random(7)
    for _ in range(3000):
        n = rng.randint(1, 60)
        control = sorted(rng.sample(range(n), rng.randint(0, min(8, n))))
        capacity = rng.randint(2, n + 2)
        keep = SequenceView._keep(n, control, capacity)
        folds = folds_of(keep, n)
        assert all(last > first for first, last in folds), (n, control, capacity, folds)
        assert len(keep) + len(folds) == min(n, capacity), (n, control, capacity, keep)
        if capacity >= MIN_ROWS:  # the handshake first, whatever else
            assert set(range(min(3, n))) <= set(keep), (n, control, capacity, keep)


def clustered_controls() -> Trace:
    """Data with three SYNs close together in the middle: the SYNs, the segment after
    each and the latest keep rows, and one data segment is left between them."""
    t = Trace()
    t.handshake()
    c, s = ISN_C + 1, ISN_S + 1
    for k in range(29):
        if k in (16, 17, 20):
            t.seg("client", "SYN", c)
        else:
            t.seg("client", "PSH|ACK", c, s, 100)
            c += 100
    return t


@pytest.mark.parametrize("height", [450, 520])
def test_a_segment_that_fits_is_drawn_not_folded_alone(view: SequenceView, height: int) -> None:
    t = clustered_controls()
    view.resize(1280, height)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert view.elisions
    assert all(fold.count >= 2 for fold in view.elisions), [f.text for f in view.elisions]
    assert not view._is_folded(view.arrows[22]) and view.arrows[22].row >= 0
    assert len(view._geo.row_tops) == len(view._drawn) + len(view.elisions)


def test_no_fold_says_one_more_segments(view: SequenceView, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """"… 1 more segments …" never: whatever the choice of rows left one segment alone
    between kept ones, it is drawn (the row is the same), and a fold says two or more."""
    t = Trace()
    t.handshake()
    c, s = t.exchange(12)
    three_segment_close(t, c, s)
    alone, run = 5, (20, 21, 22)
    monkeypatch.setattr(SequenceView, "_keep", staticmethod(
        lambda n, control, capacity: [k for k in range(n) if k != alone and k not in run]))
    view.resize(1100, 480)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert [(f.first, f.last, f.count) for f in view.elisions] == [(20, 22, 3)]
    assert view.elisions[0].text.startswith("… 3 more segments (")
    assert not view._is_folded(view.arrows[alone]) and view.arrows[alone] in view._drawn
    assert view.arrows[alone].row == view.row_of(view.arrows[alone]) >= 0
    assert not any(" 1 more segment" in f.text for f in view.elisions)


def test_a_fold_counts_each_byte_once(view: SequenceView) -> None:
    """A retransmission carries bytes already counted (the same seq range), as does a
    resend that takes part of the segment before it along: a fold counts them once,
    each side's stream on its own, across the 32-bit wrap too."""
    t = Trace()
    isn_c = (1 << 32) - 1000  # the client's stream wraps in the middle of the fold
    c, s = isn_c + 1, ISN_S + 1
    t.seg("client", "SYN", isn_c)
    t.seg("server", "SYN|ACK", ISN_S, c)
    t.seg("client", "ACK", c, s)
    for k in range(20):
        t.seg("client", "PSH|ACK", c, s, 100)
        if k in (5, 9):  # lost: sent again
            t.seg("client", "PSH|ACK", c, s, 100)
        if k == 12:  # sent again with the second half of the segment before
            t.seg("client", "PSH|ACK", c - 50, s, 150)
        if k == 14:  # the server's answer, and again (its seq range overlaps the client's)
            t.seg("server", "PSH|ACK", s, c + 100, 300)
            t.seg("server", "PSH|ACK", s, c + 100, 300)
            s += 300
        c += 100
    three_segment_close(t, c, s)
    view.resize(1100, 480)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert view.elisions
    resent = 0
    for fold in view.elisions:
        inside = view.arrows[fold.first:fold.last + 1]
        resent += sum(a.retransmission for a in inside)
        assert fold.data_bytes == bytes_once(inside), fold.text
        assert fold.text.endswith(f"{fold.data_segments} with data, "
                                  f"{_human_bytes(fold.data_bytes)}) …"), fold.text
    assert resent >= 3  # (the fold holds the retransmissions)
    big = max(view.elisions, key=lambda f: f.count)
    inside = view.arrows[big.first:big.last + 1]
    assert sum(a.length for a in inside) - big.data_bytes >= 3 * 100  # counted once
    # The whole connection folded at once (the fewest rows): every byte once.
    everything = bytes_once(view.arrows)
    assert everything == 20 * 100 + 300
    data = view._data
    assert data is not None and data.bytes_once(0, len(view.arrows) - 1) == everything


def test_bytes_once_is_the_union_of_the_seq_ranges() -> None:
    """Any run of segments: their bytes once, each side's own, whatever was carried
    again (whole, in part, by several, late into a gap), as the ranges' union says."""
    from visualizer.views.sequence import _Connection
    rng = random.Random(11)
    for trial in range(40):
        t = Trace()
        isn = {"client": rng.choice([ISN_C, (1 << 32) - 700]), "server": ISN_S}
        sent = {"client": 0, "server": 0}
        for side in ("client", "server"):  # (the ISN: seq 0 relative, the bytes from 1)
            t.seg(side, "SYN" if side == "client" else "SYN|ACK", isn[side])
        for _ in range(rng.randint(5, 60)):
            side = rng.choice(["client", "server"])
            if sent[side] and rng.random() < 0.35:  # carried again: any stretch before
                at = rng.randrange(sent[side])
                length = rng.randint(1, sent[side] - at + 300)
            else:
                at = sent[side] + (rng.randint(1, 300) if rng.random() < 0.1 else 0)  # a gap
                length = rng.randint(1, 400)
            sent[side] = max(sent[side], at + length)
            t.seg(side, "PSH|ACK", isn[side] + 1 + at, 0, length)
        log = EventLog(t.events)
        data = _Connection(CONN)
        data.update(log)
        arrows = data.arrows_upto(True, len(data.segments))
        for first in range(len(arrows)):
            for last in range(first, len(arrows)):
                assert data.bytes_once(first, last) == bytes_once(arrows[first:last + 1]), (
                    trial, first, last)


def long_connection(segments: int) -> Trace:
    t = Trace()
    t.handshake()
    c, s = ISN_C + 1, ISN_S + 1
    for _ in range(segments):
        t.seg("server", "PSH|ACK", s, c, 1000)
        s += 1000
    three_segment_close(t, c, s)
    return t


def test_folding_a_long_connection_costs_the_rows_it_draws(view: SequenceView, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A frame folds a few times over: each fold costs the rows it draws, not the
    segments it hides (75 000 segments took 39 ms a frame at 200 % when every folded
    arrow was given its fold's row, 7.5 ms before)."""
    from visualizer.views import sequence
    t = long_connection(10_000)
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 1)  # (decoded and the arrows made: once)
    writes = {"row": 0, "folds": 0}

    def counting(arrow: Arrow, name: str, value: object) -> None:
        writes["row"] += name == "row"
        object.__setattr__(arrow, name, value)

    fold = SequenceView._fold

    def folding(self: SequenceView, capacity: int) -> list[tuple[str, int, int]]:
        writes["folds"] += 1
        return fold(self, capacity)

    monkeypatch.setattr(sequence.Arrow, "__setattr__", counting)
    monkeypatch.setattr(SequenceView, "_fold", folding)
    for back in range(1, 6):
        shown(view, tl, len(t.events) - 1 - back)
    assert writes["folds"] >= 5 and view.elisions
    rows = len(view._geo.row_tops)
    assert writes["row"] <= writes["folds"] * 2 * rows, writes  # not 10 000 a fold
    # Folded arrows know their fold from the rows' first segments.
    middle = view.arrows[5_000]
    assert middle.row == -1 and view._is_folded(middle)
    assert view.row_of(middle) == next(e.row for e in view.elisions if e.first <= 5_000 <= e.last)


def test_the_rows_that_fit_are_searched_not_counted_down(view: SequenceView, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Where the first guess is far off (a state label after each of the latest
    segments), the layout finds the rows that fit in a few tries, not one a row."""
    t = Trace()
    t.handshake()
    c, s = ISN_C + 1, ISN_S + 1
    states = ["ESTABLISHED", "CLOSE_WAIT"]
    for k in range(300):
        t.seg("client", "PSH|ACK", c, s, 100)
        c += 100
        if k >= 200:
            t.state("server", states[(k + 1) % 2], states[k % 2])
    tries: list[list[int]] = []
    fold, layout_at = SequenceView._fold, SequenceView._layout_at

    def folding(self: SequenceView, capacity: int) -> list[tuple[str, int, int]]:
        tries[-1].append(capacity)
        return fold(self, capacity)

    def laying_out(self: SequenceView, *args: object, **kwargs: object) -> bool:
        tries.append([])
        return layout_at(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SequenceView, "_fold", folding)
    monkeypatch.setattr(SequenceView, "_layout_at", laying_out)
    view.resize(1280, 2000)
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert tries
    for capacities in tries:
        assert len(capacities) <= 2 * capacities[0].bit_length() + 3, capacities
    most = tries[-1][0]  # (far off: one a row would take more tries than that)
    assert most - len(view._geo.row_tops) > 2 * most.bit_length() + 3, tries


def test_state_pills_are_inked_as_every_view_inks_them(view: SequenceView) -> None:
    """The state's name on its colour: the ink style.text_on gives (the lifecycle and I/O
    views' own), dark on ESTABLISHED's green (5.5:1; white was 3.4:1)."""
    from PySide6.QtGui import QColor

    from visualizer.textaudit import TextAudit
    from visualizer.views import style
    t = Trace()
    t.handshake()
    t.exchange(1)
    view.show()
    shown(view, Timeline(EventLog(t.events)), len(t.events) - 1)
    assert view.client_state == view.server_state == "ESTABLISHED"
    with TextAudit() as audit:
        image = view.grab().toImage()
    fill = style.state_colour("ESTABLISHED")
    ink = style.text_on(fill)
    assert ink == QColor(style.INK_DARK)
    drawn = [d.rect.toAlignedRect() for d in audit.drawn if d.text == "ESTABLISHED"]
    assert len(drawn) >= 4  # the two lanes' labels and the two states over them

    def far(c: QColor, d: QColor) -> int:
        return abs(c.red() - d.red()) + abs(c.green() - d.green()) + abs(c.blue() - d.blue())

    for rect in drawn:
        pixels = [image.pixelColor(x, y) for x in range(rect.left(), rect.right() + 1)
                  for y in range(rect.top(), rect.bottom() + 1)
                  if image.rect().contains(x, y)]
        inked = max(pixels, key=lambda c: far(c, fill))  # the ink: farthest from the fill
        assert far(inked, ink) < 60, (rect, inked.name())


def test_a_capture_gap_is_said_where_it_was_not_drawn_over(view: SequenceView) -> None:
    """Frames the capture lost while the connection was open (its ``dropped`` event says
    when: ``from_ns`` to ``until_ns``): a badge says how many, the first segment drawn
    after the gap says so, and the caption names the span in the connection's own
    times. A gap before the connection began, or one only at a later cursor, says nothing."""
    t = Trace()
    t.add("listen", None, host="10.0.0.2", port=80, backlog=128, reuseaddr=True)
    early = t.add("dropped", None, "capture", count=7, sink="capture",
                  from_ns=1_000, until_ns=2_000)  # long before this connection
    t.handshake()
    c, s = t.exchange(1)
    before = t.seg("client", "PSH|ACK", c, s, 100)
    lost_from = t.events[before].t_ns
    after = t.seg("server", "PSH|ACK", s, c + 100, 500)
    gap = t.add("dropped", None, "capture", count=41, sink="capture", from_ns=lost_from,
                until_ns=t.events[after].t_ns)
    t.add("dropped", None, "trace", count=3, sink="trace")  # another sink: not the wire's
    tl = Timeline(EventLog(t.events))
    shown(view, tl, gap - 1)  # the gap not said yet: nothing to mark
    assert view.gap_frames == 0 and not view.after_gap
    assert not any("capture lost" in b for b in view.badges)
    shown(view, tl, gap)
    assert view.gap_frames == 41 and early >= 0  # the early gap and the trace's: not these
    assert any(b.startswith("⚠ the capture lost 41 frames") for b in view.badges)
    (after_key,) = view.after_gap
    arrow = next(a for a in view.arrows if a.key == after_key)
    assert arrow.index == after and "after frames the capture lost" in view._note(arrow)[0]
    start = min(e.t_ns for e in t.events if e.kind == "packet")
    lo, hi = (lost_from - start) / 1e6, (t.events[after].t_ns - start) / 1e6
    assert f"The capture lost frames at {lo:.3f}–{hi:.3f} ms" in view.caption
    assert "up to this connection's first segment" not in view.caption
    view.grab()  # and it paints


def test_a_gap_that_ends_at_the_first_segment_is_said_before_it(view: SequenceView) -> None:
    """A gap whose first frame after is this connection's SYN: nothing of it was drawn
    over, but an earlier SYN (sent again since) may have been lost; the caption says how
    long the gap ran up to the SYN, not a span of 0.000–0.000 ms."""
    t = Trace()
    t.add("listen", None, host="10.0.0.2", port=80, backlog=128, reuseaddr=True)
    syn_at = 1_000_000_000 + (len(t.events) + 1) * 1_000  # (the Trace's clock: 1 µs apart)
    t.add("dropped", None, "capture", count=12, sink="capture", from_ns=syn_at - 250_000_000,
          until_ns=syn_at)
    t.handshake()  # its SYN: the gap's first frame after
    assert t.events[2].kind == "packet" and t.events[2].t_ns == syn_at
    t.exchange(1)
    tl = Timeline(EventLog(t.events))
    shown(view, tl, len(t.events) - 1)
    assert view.gap_frames == 12
    assert "The capture lost frames for 250.0 ms up to this connection's first segment " \
        "drawn" in view.caption, view.caption
    assert "The capture lost frames at" not in view.caption


def test_a_folds_words_wider_than_its_box_wrap_anywhere_not_cut(view: SequenceView) -> None:
    """A run of words that cannot break where words break (Chinese around a joined
    "SYN|ACK）……"), wider than the fold's box: wrapped anywhere, it fits; at words alone
    it would stick out of the box and be cut (a CI run at 200 %, 1920 x 1080: 788 px in 784)."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QFontMetricsF

    from visualizer.views import style
    from visualizer.views.sequence import _elision_flags
    text = "……另有 14 个报文段（8 个带数据，7.7 kB；其中有 SYN, SYN|\u2060ACK）……"
    try:
        style.set_zoom(2.0)
        view.apply_theme()
        em = QFontMetricsF(view._fonts()["elided"])
        words = int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter)
        for width in (180.0, 220.0, 260.0):
            assert em.boundingRect(QRectF(0, 0, width, 1e6), words, text).width() > width + 2
            got = em.boundingRect(QRectF(0, 0, width, 1e6), _elision_flags(em, text, width), text)
            assert got.width() <= width + 1.5, (width, got.width())
        wide = 2 * em.horizontalAdvance(text)  # (room for all of it: wrapped at words, as ever)
        assert _elision_flags(em, text, wide) == words
    finally:
        style.set_zoom(1.0)
        view.apply_theme()
