"""The sequence view: handshake and teardown of one connection as arrows between two lanes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import Event
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.views.sequence import SequenceView

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


def test_live_a_busy_connection_is_followed_and_does_not_hold_the_view(qtbot, view: SequenceView) -> None:  # type: ignore[no-untyped-def]
    """A connection streaming faster than segments can travel is followed a few segments
    behind, as stepping follows it, and lets go at once for a newer connection."""
    import time
    from visualizer.views.sequence import HOLD_S, MAX_ANIMATED_LIVE
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
    other_seen = None
    busy_seen = False
    for start in range(1, len(t.events), 4):  # a live batch every 33 ms
        tl.add(t.events[start:start + 4])
        view.show_state(tl)
        if other_seen is None and start + 4 > other_at:
            other_seen = time.monotonic()
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
    qtbot.waitUntil(lambda: view.conn == OTHER, timeout=int(HOLD_S * 1000))
    assert time.monotonic() - other_seen < HOLD_S - 1  # busy: let go, not held to the limit


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
    # The first connection, selected, shows its own handshake and states too.
    view.select(conns[0])
    assert view.conn == conns[0] and [a.flags for a in view.arrows][:3] == ["SYN", "SYN|ACK", "ACK"]
    assert_lane_ends_as_traced(view, tl)


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
