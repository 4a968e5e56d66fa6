"""The lifecycle view: bars, requests, TIME_WAIT tails and the short vs keep-alive costs."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QFont, QPainter, QTextLayout

from engine.events import Event
from engine.trace import iter_lines
from visualizer import i18n
from visualizer.model import EventLog, Timeline
from visualizer.model.lifecycle import GROUPS, KEEP_ALIVE, SHORT, TimeAxis
from visualizer.textaudit import TextAudit
from visualizer.views import style, view_classes
from visualizer.views.lifecycle import LifecycleView

ROOT = Path(__file__).resolve().parents[2]
SERVER = "127.0.0.1:7890"
A = f"127.0.0.1:40001>{SERVER}"  # short, packets captured, the server waits in TIME_WAIT
B = f"127.0.0.1:40002>{SERVER}"  # keep-alive (3 requests), no packets, client TIME_WAIT
C = f"127.0.0.1:40003>{SERVER}"  # one request asking keep-alive, still open
D = f"127.0.0.1:40004>{SERVER}"  # asks keep-alive, the response refuses: short


class Trace:
    """Events written by hand, times in microseconds."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, t_us: float, src: str, kind: str, conn: str | None = None, **data) -> int:  # type: ignore[no-untyped-def]
        self.events.append(Event(len(self.events) + 1, int(t_us * 1000), src, kind, conn, -1, 0,
                                 data))
        return len(self.events) - 1

    def packet(self, t_us: float, conn: str, flags: str, to_server: bool = True,
               length: int = 0) -> int:
        client_port, server_port = int(conn.split(">")[0].rsplit(":", 1)[1]), 7890
        sport, dport = (client_port, server_port) if to_server else (server_port, client_port)
        return self.add(t_us, "capture", "packet", conn, sport=sport, dport=dport, flags=flags,
                        tcp_seq=0, ack=0, len=length, win=65535, origin="captured")

    def state(self, t_us: float, conn: str, side: str, state: str, source: str = "observed",
              expires_ms: int | None = None) -> int:
        return self.add(t_us, "kernel", "tcp_state", conn, side=side, state=state,
                        previous=None, source=source, timer="time_wait" if expires_ms else "off",
                        expires_ms=expires_ms, rqueue=0, wqueue=0)


def request(tr: Trace, t: float, conn: str, keep_alive: bool) -> int:
    return tr.add(t, "server", "request", conn, method="GET", path="/", version="1.1",
                  keep_alive=keep_alive, head="GET / HTTP/1.1\r\n\r\n")


def response(tr: Trace, t: float, conn: str, keep_alive: bool) -> int:
    head = f"HTTP/1.1 200 OK\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    return tr.add(t, "server", "response", conn, status=200, length=10, path="/", head=head,
                  preview="")


@pytest.fixture
def synthetic():  # type: ignore[no-untyped-def]
    tr = Trace()
    at: dict[str, int] = {}
    tr.add(0, "server", "listen", None, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    # A: short, with its handshake captured.
    at["A syn"] = tr.packet(1000, A, "SYN")
    at["A synack"] = tr.packet(1010, A, "SYN|ACK", to_server=False)
    at["A ack"] = tr.packet(1020, A, "ACK")
    tr.add(1030, "client", "connect", A, peer=SERVER)
    at["A accept"] = tr.add(1040, "server", "accept", A, peer="127.0.0.1:40001")
    tr.packet(1050, A, "PSH|ACK", length=80)  # data: not a handshake segment
    at["A request"] = request(tr, 1100, A, False)
    response(tr, 1200, A, False)
    at["A close"] = tr.add(1300, "server", "close", A, reason="keep-alive off")
    at["A client close"] = tr.add(1400, "client", "close", A, reason="short")
    at["A tw"] = tr.state(1500, A, "server", "TIME_WAIT", expires_ms=60000)
    tr.state(1510, A, "client", "CLOSED")
    # B: keep-alive, three requests, no packets recorded, inferred states.
    at["B connect"] = tr.add(2000, "client", "connect", B, peer=SERVER)
    tr.add(2010, "server", "accept", B, peer="127.0.0.1:40002")
    for k in range(3):
        at[f"B request {k}"] = request(tr, 2100 + 100 * k, B, True)
        response(tr, 2150 + 100 * k, B, True)
    at["B client close"] = tr.add(2500, "client", "close", B, reason="done")
    at["B close"] = tr.add(2600, "server", "close", B, reason="peer closed")
    at["B tw"] = tr.state(2610, B, "client", "TIME_WAIT", source="inferred")
    tr.state(2620, B, "server", "CLOSED", source="inferred")
    # C: one request that asks to keep the connection; still open.
    tr.add(3000, "client", "connect", C, peer=SERVER)
    tr.add(3010, "server", "accept", C, peer="127.0.0.1:40003")
    at["C request"] = request(tr, 3100, C, True)
    response(tr, 3150, C, True)
    # D: asks for keep-alive, the server refuses (--policy close).
    tr.add(4000, "client", "connect", D, peer=SERVER)
    tr.add(4010, "server", "accept", D, peer="127.0.0.1:40004")
    at["D request"] = request(tr, 4100, D, True)
    at["D response"] = response(tr, 4150, D, False)
    tr.add(4200, "server", "close", D, reason="keep-alive off")
    at["D client close"] = tr.add(4300, "client", "close", D, reason="server closed")
    # 20 s later: the TIME_WAIT countdowns have moved on.
    at["later"] = tr.add(20_004_300, "server", "epoll_wait", None, timeout=-1, ready=[])
    # 61 s after B's inferred TIME_WAIT began: the kernel's timer has run out.
    at["much later"] = tr.add(64_000_000, "server", "epoll_wait", None, timeout=-1, ready=[])
    timeline = Timeline(EventLog(tr.events))
    return timeline, at


def show(view: LifecycleView, timeline: Timeline, index: int) -> None:
    timeline.seek(index)
    view.show_state(timeline)


def bar(view: LifecycleView, conn: str):  # type: ignore[no-untyped-def]
    found = [b for b in view.bars if b.conn == conn]
    return found[0] if found else None


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = LifecycleView()
    qtbot.addWidget(v)
    v.resize(1280, 720)
    return v


def test_registered() -> None:
    assert LifecycleView in view_classes()
    assert LifecycleView.name == "lifecycle" and LifecycleView.title


def test_bars_marks_and_costs_follow_the_cursor(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    tl, at = synthetic
    us = 1000
    show(view, tl, 0)
    assert view.bars == [] and view.costs[SHORT].connections == 0
    # The first SYN opens the bar; the handshake is counted segment by segment.
    show(view, tl, at["A syn"])
    a = bar(view, A)
    assert a is not None and a.start_ns == 1000 * us and a.end_ns is None and a.group == SHORT
    assert a.label == "40001"
    assert view.costs[SHORT].handshake_segments == 1
    show(view, tl, at["A synack"])
    assert view.costs[SHORT].handshake_segments == 2
    show(view, tl, at["A request"])
    a = bar(view, A)
    assert a.requests == [1100 * us] and a.end_ns is None
    costs = view.costs[SHORT]
    assert (costs.connections, costs.requests, costs.handshake_segments) == (1, 1, 3)
    assert costs.handshake_origin == "captured" and costs.handshake_assumed == 0
    assert costs.still_open == 1 and costs.total_ns == 100 * us  # so far: to the cursor
    # Closed by both ends; then the server's TIME_WAIT tail with its countdown.
    show(view, tl, at["A client close"])
    a = bar(view, A)
    assert a.end_ns == 1400 * us and a.tw_start_ns is None
    show(view, tl, at["A tw"])
    a = bar(view, A)
    assert (a.tw_side, a.tw_start_ns, a.tw_end_ns) == ("server", 1500 * us, None)
    assert a.tw_left_s == pytest.approx(60.0)
    assert a.tail_start_ns == 1400 * us  # the tail starts where the bar ends
    assert view.costs[SHORT].time_wait == 1
    # B: several requests -> keep-alive; no packets: 3 handshake segments assumed.
    show(view, tl, at["B request 1"])
    b = bar(view, B)
    assert b.group == KEEP_ALIVE and b.requests == [2100 * us, 2200 * us]
    ka = view.costs[KEEP_ALIVE]
    assert (ka.connections, ka.requests, ka.handshake_segments, ka.handshake_assumed) == (1, 2, 3, 1)
    # Its first request alone: already keep-alive (it asked to keep the connection).
    show(view, tl, at["B request 0"])
    assert bar(view, B).group == KEEP_ALIVE
    # The end: every connection in its group.
    show(view, tl, at["D client close"])
    assert view.groups == {SHORT: [A, D], KEEP_ALIVE: [B, C]}
    s, k = view.costs[SHORT], view.costs[KEEP_ALIVE]
    assert (s.connections, s.requests, s.handshake_segments) == (2, 2, 6)
    assert (s.handshake_counted, s.handshake_assumed) == (1, 1)
    assert (k.connections, k.requests, k.handshake_segments) == (2, 4, 6)
    assert s.per_request == 3.0 and k.per_request == 1.5
    assert s.first_open_ns == 1000 * us and s.last_close_ns == 4300 * us and s.still_open == 0
    assert s.total_ns == 3300 * us
    assert k.still_open == 1 and k.total_ns == (4300 - 2000) * us  # C: still open, to the cursor
    assert s.time_wait == 1 and k.time_wait == 1
    b = bar(view, B)
    assert (b.tw_side, b.tw_source, b.end_ns) == ("client", "inferred", 2620 * us)
    assert bar(view, C).end_ns is None and bar(view, C).requests == [3100 * us]
    # 20 s on: the countdowns moved with the cursor.
    show(view, tl, at["later"])
    assert bar(view, A).tw_left_s == pytest.approx(40.0, abs=0.01)
    assert bar(view, B).tw_left_s == pytest.approx(40.0, abs=0.01)  # ≈: 60 s assumed
    # Past 60 s: the inferred TIME_WAIT is over (its end is the kernel's timer, not seen).
    show(view, tl, at["much later"])
    b = bar(view, B)
    assert b.tw_end_ns == b.tw_start_ns + 60_000_000_000 and b.tw_left_s is None
    assert view.costs[KEEP_ALIVE].time_wait == 0
    assert bar(view, A).tw_left_s == 0.0  # observed: waits for the kernel to say CLOSED


def test_stepping_back_undraws(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    tl, at = synthetic
    show(view, tl, len(tl.log) - 1)
    assert {b.conn for b in view.bars} == {A, B, C, D}
    show(view, tl, at["B connect"])
    assert {b.conn for b in view.bars} == {A, B}
    assert bar(view, B).requests == [] and bar(view, B).group == SHORT  # short until proven
    assert bar(view, A).tw_side == "server"
    show(view, tl, at["A close"])
    a = bar(view, A)
    assert a.tw_side is None and a.end_ns is None  # the client has not closed yet
    assert view.costs[SHORT].time_wait == 0
    show(view, tl, at["D request"])
    assert bar(view, D).group == KEEP_ALIVE  # asked, and no answer yet
    show(view, tl, at["D response"])
    assert bar(view, D).group == SHORT  # the response said Connection: close
    show(view, tl, at["A syn"] - 1)
    assert view.bars == []


def test_sockets_older_than_the_trace_are_not_counted(view) -> None:  # type: ignore[no-untyped-def]
    tr = Trace()
    old = f"127.0.0.1:39999>{SERVER}"  # an earlier server's TIME_WAIT on the same port
    tr.add(5, "kernel", "tcp_state", old, side="client", state="TIME_WAIT", previous=None,
           source="observed", timer="time_wait", expires_ms=30000, rqueue=0, wqueue=0)
    tr.add(1000, "server", "accept", A, peer="127.0.0.1:40001")
    request(tr, 1100, A, False)
    tl = Timeline(EventLog(tr.events))
    show(view, tl, len(tl.log) - 1)
    assert view.groups == {SHORT: [A], KEEP_ALIVE: []}
    assert view.costs[SHORT].time_wait == 0


def test_select_and_click(view, synthetic, qtbot) -> None:  # type: ignore[no-untyped-def]
    tl, _ = synthetic
    show(view, tl, len(tl.log) - 1)
    view.select(B)
    assert [b.conn for b in view.bars if b.selected] == [B]
    b = next(x for x in view.drawn_bars if x.conn == B)
    assert view.conn_at(b.x0 + 2, b.y + b.h / 2) == B
    with qtbot.waitSignal(view.connection_selected, timeout=1000) as sig:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                         pos=QPoint(int(b.x0) + 3, int(b.y + b.h / 2)))
    assert sig.args == [B]
    view.select(None)
    assert not any(b.selected for b in view.bars)


def test_zoomed_in_on_a_small_screen_the_bars_keep_their_room(view, synthetic, qtbot) -> None:  # type: ignore[no-untyped-def]
    """300 % on a 1280x720 slide: the picture is set smaller (never below 100 % type)
    rather than bands with no room for a bar; clicks still find their bar."""
    from visualizer.views import style
    tl, _ = synthetic
    try:
        style.set_zoom(3.0)
        view.apply_theme()
        view.resize(1268, 470)
        view.show()
        show(view, tl, len(tl.log) - 1)
        k = view.canvas_scale
        assert 1 / 3 - 1e-9 <= k < 1
        drawn = view.drawn_bars
        assert {b.group for b in drawn} == {"short", "keep-alive"}
        assert all(b.h >= view.ROW_HEIGHTS[-1] for b in drawn)
        b = next(x for x in drawn if x.conn == B)
        with qtbot.waitSignal(view.connection_selected, timeout=1000) as sig:
            qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                             pos=QPoint(int((b.x0 + 3) * k), int((b.y + b.h / 2) * k)))
        assert sig.args == [B]
        view.grab()
    finally:
        style.set_zoom(1.0)
        view.apply_theme()
    assert view.canvas_scale == 1.0


def test_many_connections_stay_readable_and_fast(view) -> None:  # type: ignore[no-untyped-def]
    tr = Trace()
    n = 1000
    for k in range(n):
        conn = f"127.0.0.1:{20000 + k}>{SERVER}"
        t = 1000 + k * 100
        tr.packet(t, conn, "SYN")
        tr.packet(t + 1, conn, "SYN|ACK", to_server=False)
        tr.packet(t + 2, conn, "ACK")
        tr.add(t + 3, "server", "accept", conn, peer=conn.split(">")[0])
        request(tr, t + 10, conn, keep_alive=False)
        response(tr, t + 20, conn, keep_alive=False)
        tr.add(t + 30, "server", "close", conn, reason="keep-alive off")
        tr.state(t + 40, conn, "server", "TIME_WAIT", expires_ms=60000)
    tl = Timeline(EventLog(tr.events))
    show(view, tl, len(tl.log) - 1)
    s = view.costs[SHORT]
    assert (s.connections, s.requests, s.handshake_segments, s.time_wait) == (n, n, 3 * n, n)
    drawn = view.drawn_bars
    assert 5 <= len(drawn) <= 40
    assert view.hidden(SHORT) == n - len(drawn)
    assert drawn[-1].conn == f"127.0.0.1:{20000 + n - 1}>{SERVER}"  # the latest rows
    assert all(b.y + b.h <= view.height() for b in drawn)
    # Stepping costs a few milliseconds (generous bound: the machine is shared).
    worst = 0.0
    for k in range(20):
        tl.seek(len(tl.log) - 2 - (k % 2))
        t0 = time.perf_counter()
        view.show_state(tl)
        worst = max(worst, time.perf_counter() - t0)
    assert worst < 0.1
    view.grab()


def test_time_axis_cuts_idle_gaps() -> None:
    ms = 1_000_000
    # Two bursts of 2 ms, 10 s apart, then 5 s of TIME_WAIT up to the cursor.
    burst = [0, ms // 2, ms, 2 * ms]
    points = burst + [10_000 * ms + t for t in burst]
    axis = TimeAxis(points, 0, 15_000 * ms, 100, 900)
    breaks = axis.breaks
    assert [(b.t0, b.t1) for b in breaks] == [(2 * ms, 10_000 * ms), (10_002 * ms, 15_000 * ms)]
    assert axis.x(2 * ms) - axis.x(0) > 100  # each burst is wide enough to read
    assert axis.x(10_002 * ms) - axis.x(10_000 * ms) > 100
    xs = [axis.x(t) for t in range(0, 15_000 * ms, 7 * ms)]
    assert xs == sorted(xs) and xs[0] == 100 and axis.x(15_000 * ms) == pytest.approx(900)
    # Steady traffic: one linear axis, nothing cut.
    plain = TimeAxis(list(range(0, 10 * ms, ms // 4)), 0, 10 * ms, 0, 1000)
    assert plain.breaks == [] and plain.x(5 * ms) == pytest.approx(500)
    # An idle keep-alive connection open across the gap does not stop the cut:
    # nothing happens in it (its bar is drawn through the break).
    idle = TimeAxis([0, ms, 5_000 * ms, 5_001 * ms], 0, 20_000 * ms, 0, 1000)
    assert len(idle.breaks) == 2


def test_export_png_and_svg(view, synthetic, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tl, _ = synthetic
    show(view, tl, len(tl.log) - 1)
    view.export(tmp_path / "l.png")
    view.export(tmp_path / "l.svg")
    assert (tmp_path / "l.png").stat().st_size > 5000
    svg = (tmp_path / "l.svg").read_text()
    shapes = sum(svg.count(tag) for tag in ("<path", "<polygon", "<polyline", "<rect"))
    assert "<svg" in svg and shapes > 20 and svg.count("<text") > 20 and "40001" in svg
    assert "Keep-alive connections" in svg


# ---------------------------------------------------------------- live engine
def _serve(path: Path, load: str, *extra: str) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode",
                             "epoll", f"--load={load}", "--trace", str(path), *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, linger: float = 0.4) -> str:  # type: ignore[type-arg]
    """Wait for the load to finish, let the kernel observer see TIME_WAIT, then stop."""
    out = []
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    for line in proc.stdout:  # bounded: the server prints a few lines, then the summary
        out.append(line)
        if line.startswith("statuses") or time.monotonic() > deadline:
            break
    time.sleep(linger)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    return "".join(out) + rest


def run_pair(tmp: Path, *extra: str) -> tuple[Path, Path]:
    """A short and a keep-alive run, side by side (two servers: one --load each)."""
    short, keep = tmp / "short.jsonl", tmp / "keep.jsonl"
    procs = [_serve(short, "--clients 3 --requests 1 --short", *extra),
             _serve(keep, "--clients 2 --requests 5", *extra)]
    outs = [_finish(p) for p in procs]
    assert "requests: 3 ok" in outs[0], outs[0]
    assert "requests: 10 ok" in outs[1], outs[1]
    return short, keep


def merged(*paths: Path) -> Timeline:
    events = []
    for path in paths:
        items = iter_lines(path, [])
        next(items)  # the header
        events += [e for e, _ in items]
    return Timeline(EventLog(events))


@pytest.mark.parametrize("options", [(), ("--states", "inferred", "--packets", "derived")],
                         ids=["auto", "inferred-derived"])
def test_live_short_vs_keep_alive(view, tmp_path: Path, options) -> None:  # type: ignore[no-untyped-def]
    tl = merged(*run_pair(tmp_path, *options))
    show(view, tl, len(tl.log) - 1)
    s, k = view.costs[SHORT], view.costs[KEEP_ALIVE]
    assert (s.connections, s.requests) == (3, 3)
    assert (k.connections, k.requests) == (2, 10)
    # Keep-alive pays the handshake once per connection; short ones once per request.
    assert s.handshake_segments == 9 and k.handshake_segments == 6
    assert s.per_request == 3.0 and k.per_request == pytest.approx(0.6)
    assert s.still_open == 0 and k.still_open == 0 and 0 < s.total_ns < 5_000_000_000
    # Every connection left a socket in TIME_WAIT (the end that closed first).
    assert s.time_wait >= 3 and k.time_wait >= 2
    drawn = view.drawn_bars
    assert len(drawn) == 5
    assert all(b.tw_side in ("client", "server") and b.tw_left_s is not None for b in drawn)
    assert sorted(len(b.requests) for b in drawn) == [1, 1, 1, 5, 5]
    # Back to before the first keep-alive connection (the two runs went side by side):
    # it and its costs are gone, the short ones opened before it are still there.
    first_keep = min(b.start_ns for b in drawn if b.group == KEEP_ALIVE)
    earlier_short = sum(1 for b in drawn if b.group == SHORT and b.start_ns < first_keep)
    tl.seek(tl.log.index_at_time(first_keep - 1))
    view.show_state(tl)
    assert view.costs[KEEP_ALIVE].connections == 0
    assert view.costs[SHORT].connections == earlier_short
    assert all(b.start_ns < first_keep for b in view.bars)


# ---------------------------------------------------------------- sizes, words, the axis
@contextmanager
def zoom(view: LifecycleView, factor: float):  # type: ignore[no-untyped-def]
    """The view at ``factor`` (2.0: 200 %), as the zoom menu sets it; 100 % after."""
    try:
        style.set_zoom(factor)
        view.apply_theme()
        yield
    finally:
        style.set_zoom(1.0)
        view.apply_theme()


@contextmanager
def language(qapp, lang: str):  # type: ignore[no-untyped-def]
    try:
        i18n.install(qapp, lang)
        yield
    finally:
        i18n.install(qapp, "en")


def audit(view: LifecycleView) -> TextAudit:
    """One paint of the view, every text measured (``.findings()``, ``.drawn``)."""
    view.show()
    with TextAudit() as a:
        view.grab()
    return a


def texts(view: LifecycleView) -> list[str]:
    return [d.text for d in audit(view).drawn]


def close_wait_trace(confirmed: tuple[int, ...] = ()) -> tuple[Timeline, list[str]]:
    """The close-wait lesson's run as its recording has it: three keep-alive clients a
    quarter of a second apart, each closing first; the server never calls close(), so
    each of its ends sits in CLOSE_WAIT (inferred from the segments) until the server
    stops 1.2 s later. ``confirmed``: the connections whose CLOSE_WAIT the kernel's
    tracepoint confirms (a state_check)."""
    tr = Trace()
    conns = [f"127.0.0.1:{37228 + 4 * k}>{SERVER}" for k in range(3)]
    stop = 1_841_000
    for k, conn in enumerate(conns):
        t = 138_000 + 248_000 * k
        tr.packet(t, conn, "SYN")
        tr.packet(t + 15, conn, "SYN|ACK", to_server=False)
        tr.packet(t + 30, conn, "ACK")
        tr.add(t + 5, "client", "connect", conn, peer=SERVER)
        tr.add(t + 40, "server", "accept", conn, peer=conn.split(">")[0])
        request(tr, t + 700, conn, True)
        response(tr, t + 800, conn, True)
        tr.add(t + 1290, "client", "close", conn, reason="done")
        tr.state(t + 1300, conn, "client", "FIN_WAIT_1", source="inferred")
        tr.state(t + 1300, conn, "server", "CLOSE_WAIT", source="inferred")
        if k in confirmed:
            tr.add(t + 1310, "kernel", "state_check", conn, side="server", state="CLOSE_WAIT",
                   previous="ESTABLISHED", source="traced", verdict="confirms")
        tr.state(t + 41_000, conn, "client", "FIN_WAIT_2", source="inferred")
    for k, conn in enumerate(conns):
        t = stop + 50 * k
        tr.add(t, "server", "close", conn, reason="server stopping")
        tr.state(t + 1, conn, "server", "LAST_ACK", source="inferred")
        tr.state(t + 1, conn, "client", "TIME_WAIT", source="inferred")
        tr.state(t + 20, conn, "server", "CLOSED", source="inferred")
    tr.add(1_849_700, "server", "epoll_wait", None, timeout=-1, ready=[])
    return Timeline(EventLog(tr.events)), conns


def many(n_short: int, n_keep: int) -> Timeline:
    """``n_short`` short connections, then ``n_keep`` keep-alive ones still open."""
    tr = Trace()
    for k in range(n_short):
        conn = f"127.0.0.1:{20000 + k}>{SERVER}"
        t = 1000 + k * 100
        tr.packet(t, conn, "SYN")
        tr.packet(t + 1, conn, "SYN|ACK", to_server=False)
        tr.packet(t + 2, conn, "ACK")
        tr.add(t + 3, "server", "accept", conn, peer=conn.split(">")[0])
        request(tr, t + 10, conn, keep_alive=False)
        response(tr, t + 20, conn, keep_alive=False)
        tr.add(t + 30, "server", "close", conn, reason="keep-alive off")
        tr.state(t + 40, conn, "server", "TIME_WAIT", expires_ms=60000)
    for k in range(n_keep):
        conn = f"127.0.0.1:{30000 + k}>{SERVER}"
        t = 500_000 + k * 100
        tr.add(t, "server", "accept", conn, peer=conn.split(">")[0])
        for j in range(3):
            request(tr, t + 10 + j, conn, keep_alive=True)
    return Timeline(EventLog(tr.events))


def bursts() -> Timeline:
    """Short connections in three bursts, 0.3 s and 1.7 s apart; the cursor 5 s later."""
    tr = Trace()
    for k, start in enumerate((1000, 1150, 301_000, 301_150, 2_001_000, 2_001_150)):
        conn = f"127.0.0.1:{41000 + k}>{SERVER}"
        tr.packet(start, conn, "SYN")
        tr.packet(start + 1, conn, "SYN|ACK", to_server=False)
        tr.packet(start + 2, conn, "ACK")
        tr.add(start + 3, "server", "accept", conn, peer=conn.split(">")[0])
        request(tr, start + 10, conn, keep_alive=False)
        response(tr, start + 20, conn, keep_alive=False)
        tr.add(start + 30, "server", "close", conn, reason="keep-alive off")
        tr.add(start + 35, "client", "close", conn, reason="short")
        tr.state(start + 40, conn, "server", "TIME_WAIT", expires_ms=60000)
    tr.add(7_000_000, "server", "epoll_wait", None, timeout=-1, ready=[])
    return Timeline(EventLog(tr.events))


def test_a_close_wait_that_lasts_is_drawn_and_named_on_every_bar(view) -> None:  # type: ignore[no-untyped-def]
    """The close-wait lesson's last step: each server end sat in CLOSE_WAIT from its
    client's FIN until the server stopped. Every bar shows that span, named, from where
    it began to where it ended (the second it lasted is a break of the axis the strip
    runs through); "≈" where only the segments said so, none where the kernel agreed."""
    tl, conns = close_wait_trace(confirmed=(1,))
    for size, factor in (((1256, 490), 1.0), ((1900, 780), 1.0), ((1256, 490), 2.0)):
        with zoom(view, factor):
            view.resize(*size)
            show(view, tl, len(tl.log) - 1)
            drawn = view.drawn_bars
            assert [b.conn for b in drawn] == conns
            k = view.canvas_scale
            labels = [d for d in audit(view).drawn if d.text.endswith("CLOSE_WAIT")]
            rows = []
            for d in labels:
                x, y = d.rect.center().x() / k, d.rect.center().y() / k
                b = next(b for b in drawn if b.y <= y < b.y + b.h)
                wait = next(s for s in b.closing if s[:2] == ("server", "CLOSE_WAIT"))
                assert view.axis.x(wait[2]) <= x <= view.axis.x(wait[3]), (size, factor)
                assert y >= b.y + b.h / 2  # the server's half: the lower one
                rows.append((b.conn, d.text))
            assert sorted(rows) == [(conns[0], "≈CLOSE_WAIT"), (conns[1], "CLOSE_WAIT"),
                                    (conns[2], "≈CLOSE_WAIT")], (size, factor)


def test_rows_use_the_height_there_is(view) -> None:  # type: ignore[no-untyped-def]
    """Many connections: the band that needs few rows takes no more than it needs, the
    other draws rows of the smallest size down to its bottom (no room is left for one
    more), and what is not drawn is counted."""
    for n_short, n_keep in ((30, 2), (2, 30), (30, 30)):
        tl = many(n_short, n_keep)
        for size, factor in (((1280, 500), 1.0), ((1900, 700), 1.0), ((1900, 700), 2.0)):
            with zoom(view, factor):
                view.resize(*size)
                show(view, tl, len(tl.log) - 1)
                drawn = view.drawn_bars
                where = (n_short, n_keep, size, factor)
                total = {SHORT: n_short, KEEP_ALIVE: n_keep}
                for g in GROUPS:
                    rows = [b for b in drawn if b.group == g]
                    assert len(rows) + view.hidden(g) == total[g], where
                    band, top = view.band(g), view.rows_top(g)
                    assert all(b.y >= top and b.y + b.h <= band.bottom() for b in rows), where
                    used = top + len(rows) * view.row_h + view.BAND_PAD
                    if view.hidden(g):
                        assert view.row_h == view.ROW_HEIGHTS[-1], where
                        assert band.bottom() - used < view.row_h, where  # full
                    elif any(view.hidden(o) for o in GROUPS):
                        floor = 0 if view.compact else view.TABLE_LINES * view.TABLE_LINE + \
                            0.8 * view.EM  # (wide: the band holds its cost table)
                        assert band.bottom() <= max(used, band.top() + floor) + 1, where
                assert view.hidden(SHORT) + view.hidden(KEEP_ALIVE) < n_short + n_keep - 3
    # 1280 x 500 at 100 %: 30 + 2 connections, twelve rows (there were eight).
    with zoom(view, 1.0):
        view.resize(1280, 500)
        show(view, many(30, 2), len(many(30, 2).log) - 1)
        assert len(view.drawn_bars) >= 12 and view.hidden(KEEP_ALIVE) == 0


def test_counts_say_one_connection_not_one_connections(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    """The costs' line (a small window): each count with its noun in the singular or the
    plural, in words (no "conn.", no "req.")."""
    tl, at = synthetic
    view.resize(800, 450)  # compact: the costs on one line under each band's title

    def counts() -> list[list[str]]:  # each band's line, count by count
        lines = [t for t in texts(view) if "  ·  " in t]
        assert view.compact and lines
        return [[part.split(" (")[0].split(",")[0] for part in t.split("  ·  ")][:3]
                for t in lines]  # (a narrow window may leave the TIME_WAIT count out)

    show(view, tl, at["A syn"])
    assert counts() == [["1 connection", "0 requests", "1 handshake segment"]]
    show(view, tl, at["A request"])
    assert counts() == [["1 connection", "1 request", "3 handshake segments"]]
    show(view, tl, at["D client close"])
    assert counts() == [["2 connections", "2 requests", "6 handshake segments"],
                        ["2 connections", "4 requests", "6 handshake segments"]]


def test_hidden_rows_are_counted_in_the_singular_too(view) -> None:  # type: ignore[no-untyped-def]
    tl = many(4, 1)
    with zoom(view, 2.0):
        view.resize(1256, 490)
        show(view, tl, len(tl.log) - 1)
        assert view.hidden(SHORT) == 1
        said = texts(view)
        assert any(t.startswith("+1 earlier connection,") or t == "+1 earlier, not drawn"
                   for t in said), said


def test_the_time_axis_says_what_it_skipped_and_its_labels_stand_apart(view) -> None:  # type: ignore[no-untyped-def]
    """Each break of the axis says in words how long it skips; ticks and those words
    never touch (an em between two on a line) and never leave the picture."""
    tl = bursts()
    for factor, size in ((1.0, (1280, 720)), (2.0, (1900, 780)), (2.0, (1256, 490))):
        with zoom(view, factor):
            view.resize(*size)
            show(view, tl, len(tl.log) - 1)
            assert len(view.drawn_bars) >= 4
            axis = view.axis
            assert len(axis.breaks) >= 2
            a = audit(view)
            assert a.findings() == []
            k = view.canvas_scale
            bottom = view._plot[3] * k
            below = [d for d in a.drawn if d.rect.top() >= bottom and d.rect.bottom()
                     < view.height() - view.FOOTER_H * k]
            skipped = [d for d in below if d.text.endswith(" skipped")]
            assert len(skipped) == len(axis.breaks), [d.text for d in below]
            for r, d in zip(axis.breaks, sorted(skipped, key=lambda d: d.rect.left())):
                assert abs(d.rect.center().x() / k - (r.x0 + r.x1) / 2) < d.rect.width()
            ticks = [d for d in below if d not in skipped]
            assert len(ticks) >= 2
            # Ticks as far apart as their labels need: every tick has its label.
            assert all(labelled for _, _, labelled in view.ticks), (factor, size, view.ticks)
            for line in (ticks, skipped):
                line = sorted(line, key=lambda d: d.rect.left())
                for left, right in zip(line, line[1:]):
                    if abs(left.rect.top() - right.rect.top()) < 1:
                        assert right.rect.left() - left.rect.right() >= 0.5 * view.EM * k, \
                            (factor, size, left.text, right.text)


def test_no_text_is_cut_or_overlaps_at_200_percent(view, qapp, synthetic, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """At 100 % and zoomed in (200 %), on the slides' two sizes, in English and in
    Chinese: no text of the view is cut, crosses its edge or lies on another (a short
    and a keep-alive run, recorded; the close-wait run; the hand-written trace as its
    connections come and go; three bursts)."""
    recorded = merged(*run_pair(tmp_path))
    close_wait, _ = close_wait_trace()
    hand, at = synthetic
    three = bursts()
    cases = [(recorded, len(recorded.log) - 1), (close_wait, len(close_wait.log) - 1),
             (three, len(three.log) - 1)]
    cases += [(hand, at[name]) for name in ("A syn", "A tw", "B request 1", "D client close",
                                            "later")]
    for factor in (1.0, 2.0):
        for lang in ("en", "zh_CN"):
            with zoom(view, factor), language(qapp, lang):
                for size in ((1256, 490), (1900, 780)):
                    view.resize(*size)
                    for tl, index in cases:
                        show(view, tl, index)
                        assert view.drawn_bars
                        found = audit(view).findings()
                        assert not found, (factor, lang, size, index, [str(f) for f in found])


@contextmanager
def painted_text():  # type: ignore[no-untyped-def]
    """Every text drawn in a box while open: (font, box, flags, text), the box in the
    painter's own units (the picture's)."""
    calls: list[tuple[QFont, QRectF, int, str]] = []
    original = QPainter.drawText

    def draw(painter: QPainter, *args):  # type: ignore[no-untyped-def]
        if len(args) >= 3 and isinstance(args[0], (QRectF, QRect)) and isinstance(args[2], str):
            calls.append((QFont(painter.font()), QRectF(args[0]), int(args[1]), args[2]))
        return original(painter, *args)

    QPainter.drawText = draw  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        QPainter.drawText = original  # type: ignore[method-assign]


def ink_of(font: QFont, text: str, box: QRectF, flags: int) -> QRectF:
    """Where Qt puts the ink of one line of ``text`` drawn in ``box``: from the glyphs
    of every font the line uses (a Chinese fallback font is taller than DejaVu)."""
    layout = QTextLayout(text, font)
    layout.beginLayout()
    line = layout.createLine()
    line.setLineWidth(1e6)
    layout.endLayout()
    ink = QRectF()
    for run in layout.glyphRuns():
        for glyph, at in zip(run.glyphIndexes(), run.positions()):
            ink = ink.united(run.rawFont().boundingRect(glyph).translated(at))
    w, h = line.naturalTextWidth(), line.height()
    x = box.right() - w if flags & int(Qt.AlignmentFlag.AlignRight) else \
        box.center().x() - w / 2 if flags & int(Qt.AlignmentFlag.AlignHCenter) else box.x()
    y = box.bottom() - h if flags & int(Qt.AlignmentFlag.AlignBottom) else \
        box.center().y() - h / 2 if flags & int(Qt.AlignmentFlag.AlignVCenter) else box.y()
    return ink.translated(x, y)


def test_keys_and_countdowns_keep_to_their_places_zoomed_in_chinese(view, qapp, synthetic) -> None:  # type: ignore[no-untyped-def]
    """The keep-alive lesson's last step in Chinese at 200 %: the legend's keys stand
    clear of their words and of each other, and each TIME_WAIT countdown's ink lies on
    its tail (white on purple: off the tail it cannot be read)."""
    tl, at = synthetic
    with zoom(view, 2.0), language(qapp, "zh_CN"):
        for size in ((1256, 490), (1900, 780)):
            view.resize(*size)
            show(view, tl, at["later"])
            view.show()
            with painted_text() as drawn:
                view.grab()
            boxes = [r for pair in view.legend for r in pair]
            assert len(view.legend) == 4
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    assert not a.intersects(b), (size, a, b)
            top, bottom = view._plot[2:]
            countdowns = [d for d in drawn if d[3].endswith(" s")
                          and top < d[1].center().y() < bottom]  # on the bars
            assert len(countdowns) == 2, [d[3] for d in drawn]
            for font, box, flags, text in countdowns:
                ink = ink_of(font, text, box, flags)
                b = next(b for b in view.drawn_bars if b.y <= ink.center().y() < b.y + b.h)
                body_top = b.y + max(b.h * 0.1, 2.0)
                body_h = b.h - 2 * max(b.h * 0.1, 2.0)
                tail = (body_top + 0.14 * body_h, body_top + 0.86 * body_h)
                assert tail[0] - 1 <= ink.top() and ink.bottom() <= tail[1] + 1, \
                    (size, text, (ink.top(), ink.bottom()), tail)


def test_where_the_capture_lost_frames_a_hatched_band_says_so(view) -> None:  # type: ignore[no-untyped-def]
    """The capture's ``dropped`` event says when it lost frames (its last frame before,
    its first after): from the moment it is known, a hatched band in the warning colour
    covers that span over every bar, with how many frames; the bars there may miss
    segments. Another sink's loss has no span: no band."""
    tr = Trace()
    tr.add(0, "server", "listen", None, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    for k, conn in enumerate((A, B)):
        t = 1000 + 3000 * k
        tr.packet(t, conn, "SYN")
        tr.add(t + 10, "server", "accept", conn, peer=conn.split(">")[0])
        request(tr, t + 100, conn, True)
        response(tr, t + 200, conn, True)
    before = tr.add(3000, "server", "epoll_wait", None, timeout=-1, ready=[])
    lost = tr.add(4500, "engine", "dropped", None, count=1438, sink="capture",
                  from_ns=1_500_000, until_ns=2_500_000)
    tr.add(4600, "engine", "dropped", None, count=7, sink="trace")
    end = tr.add(6000, "server", "epoll_wait", None, timeout=-1, ready=[])
    tl = Timeline(EventLog(tr.events))
    show(view, tl, before)
    assert view.gaps == []  # not known yet at the cursor
    show(view, tl, lost)
    assert view.gaps == [(1_500_000, 2_500_000, 1438)]
    show(view, tl, end)
    assert view.gaps == [(1_500_000, 2_500_000, 1438)]  # the trace's own loss: no band
    image = view.grab().toImage()
    k = view.canvas_scale
    (r,) = view.gap_rects
    assert view.axis is not None
    assert r.left() == pytest.approx(view.axis.x(1_500_000)) and \
        r.right() == pytest.approx(view.axis.x(2_500_000))
    # To scale: nothing was captured there (that is the loss), yet no break cuts it out.
    assert all(b.x1 <= r.left() + 1 or b.x0 >= r.right() - 1 for b in view.axis.breaks)
    def warm(x: int, least: int, upto: float = 1.0) -> list[int]:  # rows in that colour there
        return [y for y in range(round(r.top() * k), round((r.top() + r.height() * upto) * k))
                if (c := image.pixelColor(x, y)).red() - c.blue() > least and c.red() > 180]

    # Its edges, in the warning colour (anti-aliased: over a column or two), from the
    # plot's top to its bottom; between them the hatch; none of it beside the band.
    for edge in (r.left(), r.right()):
        rows = set().union(*(warm(int(edge * k) + dx, 100) for dx in (-1, 0, 1)))
        assert len(rows) > r.height() * k * 0.8, (len(rows), r)
    assert len(warm(int(r.center().x() * k), 20)) > 20
    assert not warm(int(r.left() * k) - 12, 20, 0.85)  # (above the label: it may run on)
    assert not warm(int(r.right() * k) + 12, 20, 0.85)
    painted = audit(view)
    assert any("the capture lost 1,438 frames here" in d.text for d in painted.drawn), \
        [d.text for d in painted.drawn]
    assert not painted.findings(), painted.findings()  # (the label is whole, in the view)


def test_a_span_the_axis_must_keep_is_never_cut_however_quiet() -> None:
    """A burst in the first 2 µs, nothing captured until 1 ms (the capture lost it), a
    bar there: quiet as it is, the lost span stays on the axis to scale, where without
    it the axis cuts it out."""
    points = [0, 1000, 2000, 1_000_000, 1_001_000]
    cut = TimeAxis(points, 0, 1_002_000, 0, 1000)
    assert any(r.is_break and r.t0 <= 2000 and r.t1 >= 1_000_000 for r in cut.runs)
    kept = TimeAxis(points, 0, 1_002_000, 0, 1000, keep=[(2000, 1_000_000)])
    assert not any(r.is_break and r.t0 < 1_000_000 and r.t1 > 2000 for r in kept.runs)
    assert kept.x(1_000_000) - kept.x(2000) == pytest.approx(1000 * 998_000 / 1_002_000)


def test_gaps_that_touch_on_the_screen_are_one_band_with_their_sum(view) -> None:  # type: ignore[no-untyped-def]
    """A thousand tiny gaps (a capture that keeps losing a frame or two) are not a
    thousand labels on top of each other: those that touch on the screen are one band,
    labelled with the frames of all of them."""
    tr = Trace()
    tr.add(0, "server", "listen", None, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    tr.packet(1000, A, "SYN")
    tr.add(1010, "server", "accept", A, peer="127.0.0.1:40001")
    request(tr, 1100, A, True)
    for k in range(1000):  # 1 µs gaps, 1 µs apart, from 2 ms on
        tr.add(5000 + k, "engine", "dropped", None, count=2, sink="capture",
               from_ns=2_000_000 + 2000 * k, until_ns=2_001_000 + 2000 * k)
    response(tr, 6500, A, True)
    tl = Timeline(EventLog(tr.events))
    show(view, tl, len(tr.events) - 1)
    assert len(view.gaps) == 1000
    painted = audit(view)
    assert len(view.gap_rects) < 10
    labels = [d.text for d in painted.drawn if "frames" in d.text]
    assert labels and all("2,000" in t for t in labels) and len(labels) == len(view.gap_rects)



def test_a_state_named_in_its_strip_is_never_cut(qapp) -> None:  # type: ignore[no-untyped-def]
    """A closing state's name drawn in its strip, for every strip width around the name's
    own and at every scale the view tries, in English and in Chinese: where the view
    finds room, the text audit (Qt's own metrics, and its clipping) finds nothing cut.
    (A series run found "CLOSE_WAIT" 1.7 px wider than its strip: the view allowed the
    advance a pixel of slack its layout's ink had room for and Qt's did not.)"""
    from PySide6.QtGui import QImage

    from visualizer.views.lifecycle import _ink_centred
    image = QImage(400, 60, QImage.Format.Format_ARGB32)
    drawn = 0
    for lang in ("en", "zh_CN"):
        with language(qapp, lang):
            for name in ("CLOSE_WAIT", "FIN_WAIT_2", "≈LAST_ACK", "TIME_WAIT"):
                for scale in (0.95, 0.85, 0.75, 0.65):
                    font = style.font(scale, bold=True)
                    p = QPainter(image)
                    p.setFont(font)
                    with TextAudit() as a:
                        for quarter in range(-12, 13):
                            advance = QTextLayout(name, font)
                            advance.beginLayout()
                            line = advance.createLine()
                            advance.endLayout()
                            inner = QRectF(10, 10, line.naturalTextWidth() + quarter / 4, 16)
                            box = _ink_centred(font, name, inner)
                            if box is not None:
                                drawn += 1
                                p.drawText(box, Qt.AlignmentFlag.AlignHCenter
                                           | Qt.AlignmentFlag.AlignTop, name)
                    p.end()
                    assert a.findings() == [], (lang, name, scale,
                                                [str(f) for f in a.findings()])
    assert drawn  # (room was found, in some widths)
