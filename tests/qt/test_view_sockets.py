"""The sockets view: an ``ss -tan`` of the server's port at the cursor."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from engine.events import Event
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.views import style, view_classes
from visualizer.views.sockets import SELECTED_ROLE, SocketsView

ROOT = Path(__file__).resolve().parents[2]
SERVER = "127.0.0.1:7890"
A = f"127.0.0.1:40001>{SERVER}"  # observed: the client closes first and waits in TIME_WAIT
B = f"127.0.0.1:40002>{SERVER}"  # inferred: the server closes first


class Trace:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, t_us: float, src: str, kind: str, conn: str | None = None, **data) -> int:  # type: ignore[no-untyped-def]
        self.events.append(Event(len(self.events) + 1, int(t_us * 1000), src, kind, conn, -1, 0,
                                 data))
        return len(self.events) - 1

    def state(self, t_us: float, conn: str, side: str, state: str, source: str = "observed",
              timer: str = "off", expires_ms: int | None = 0, rq: int | None = 0,
              wq: int | None = 0) -> int:
        if source == "inferred":
            return self.add(t_us, "kernel", "tcp_state", conn, side=side, state=state,
                            previous=None, source=source, trigger="x", via=[])
        return self.add(t_us, "kernel", "tcp_state", conn, side=side, state=state, previous=None,
                        source=source, timer=timer, expires_ms=expires_ms, rqueue=rq, wqueue=wq)


@pytest.fixture
def synthetic():  # type: ignore[no-untyped-def]
    tr = Trace()
    at: dict[str, int] = {}
    at["listen"] = tr.add(0, "server", "listen", None, host="127.0.0.1", port=7890, backlog=128,
                          reuseaddr=True)
    at["queue"] = tr.add(10, "kernel", "accept_queue", None, length=2, backlog=128,
                         source="observed")
    tr.add(100, "client", "connect", A, peer=SERVER)
    at["A accept"] = tr.add(110, "server", "accept", A, peer="127.0.0.1:40001")
    at["A estab"] = tr.state(120, A, "server", "ESTABLISHED", rq=5, wq=0)
    at["A client estab"] = tr.state(130, A, "client", "ESTABLISHED", timer="retransmit",
                                    expires_ms=200, rq=0, wq=10)
    tr.add(140, "kernel", "accept_queue", None, length=0, backlog=128, source="observed")
    at["A client close"] = tr.add(1000, "client", "close", A, reason="done")
    at["A fin"] = tr.state(1100, A, "client", "FIN_WAIT_2")
    at["A close wait"] = tr.state(1110, A, "server", "CLOSE_WAIT", rq=1)
    at["A close"] = tr.add(1200, "server", "close", A, reason="peer closed")
    at["A tw"] = tr.state(1300, A, "client", "TIME_WAIT", timer="time_wait", expires_ms=60000)
    at["A closed"] = tr.state(1310, A, "server", "CLOSED", expires_ms=None, rq=None, wq=None)
    # B: states inferred from the calls: the server closes first.
    tr.add(2000, "client", "connect", B, peer=SERVER)
    tr.state(2001, B, "client", "ESTABLISHED", source="inferred")
    at["B accept"] = tr.add(2010, "server", "accept", B, peer="127.0.0.1:40002")
    tr.state(2011, B, "server", "ESTABLISHED", source="inferred")
    tr.add(2100, "server", "close", B, reason="keep-alive off")
    tr.state(2101, B, "server", "FIN_WAIT_1", source="inferred")
    tr.add(2200, "client", "close", B, reason="short")
    at["B tw"] = tr.state(2201, B, "server", "TIME_WAIT", source="inferred")
    at["B closed"] = tr.state(2202, B, "client", "CLOSED", source="inferred")
    at["18 s"] = tr.add(18_001_300, "server", "epoll_wait", None, timeout=-1, ready=[])
    at["61 s"] = tr.add(61_002_300, "server", "epoll_wait", None, timeout=-1, ready=[])
    return Timeline(EventLog(tr.events)), at


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = SocketsView()
    qtbot.addWidget(v)
    v.resize(1280, 720)
    return v


def show(view: SocketsView, timeline: Timeline, index: int) -> list[tuple[str, ...]]:
    timeline.seek(index)
    view.show_state(timeline)
    return [r.cells() for r in view.rows]


LISTEN_ROW = ("LISTEN", "2", "128", "127.0.0.1:7890", "*:*", "", "observed")


def test_registered() -> None:
    assert SocketsView in view_classes()
    assert SocketsView.name == "sockets" and SocketsView.title


def test_rows_follow_the_cursor(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    tl, at = synthetic
    assert show(view, tl, at["listen"]) == [("LISTEN", "—", "128", "127.0.0.1:7890", "*:*", "",
                                              "—")]
    assert show(view, tl, at["queue"]) == [LISTEN_ROW]  # ss: Recv-Q = the accept queue
    # Accepted, nothing reported about it yet: both ends from the calls, source "—".
    assert show(view, tl, at["A accept"]) == [
        LISTEN_ROW,
        ("ESTAB", "—", "—", "127.0.0.1:7890", "127.0.0.1:40001", "", "—"),
        ("ESTAB", "—", "—", "127.0.0.1:40001", "127.0.0.1:7890", "", "—"),
    ]
    assert show(view, tl, at["A client estab"])[1:] == [
        ("ESTAB", "5", "0", "127.0.0.1:7890", "127.0.0.1:40001", "", "observed"),
        ("ESTAB", "0", "10", "127.0.0.1:40001", "127.0.0.1:7890", "on 200ms", "observed"),
    ]
    assert view.header_text == "LISTEN 1 · ESTAB 2"
    # The client closed first: FIN-WAIT-2 and CLOSE-WAIT, sorted by state as ss does.
    rows = show(view, tl, at["A close wait"])
    assert [r[0] for r in rows] == ["LISTEN", "FIN-WAIT-2", "CLOSE-WAIT"]
    assert rows[2] == ("CLOSE-WAIT", "1", "0", "127.0.0.1:7890", "127.0.0.1:40001", "",
                       "observed")
    # TIME_WAIT on the client's end; the server's end is CLOSED: not listed.
    rows = show(view, tl, at["A closed"])
    assert rows == [("LISTEN", "0", "128", "127.0.0.1:7890", "*:*", "", "observed"),
                    ("TIME-WAIT", "0", "0", "127.0.0.1:40001", "127.0.0.1:7890",
                     "timewait 60s", "observed")]
    assert view.counts == {"LISTEN": 1, "TIME-WAIT": 1}
    # B, inferred: the server closed first and waits; queues unknown, 60 s assumed.
    rows = show(view, tl, at["B closed"])
    assert ("TIME-WAIT", "—", "—", "127.0.0.1:7890", "127.0.0.1:40002", "timewait ≈60s",
            "inferred") in rows
    assert view.header_text == "LISTEN 1 · TIME-WAIT 2"
    # The countdowns run with the cursor...
    rows = show(view, tl, at["18 s"])
    assert [r[5] for r in rows if r[0] == "TIME-WAIT"] == ["timewait ≈42s", "timewait 42s"]
    # ... and an inferred TIME_WAIT is gone after 60 s (the observed one waits for the kernel).
    rows = show(view, tl, at["61 s"])
    assert [(r[3], r[5]) for r in rows if r[0] == "TIME-WAIT"] == [("127.0.0.1:40001",
                                                                    "timewait 0ms")]


def test_stepping_back_undraws(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    tl, at = synthetic
    show(view, tl, len(tl.log) - 1)
    rows = show(view, tl, at["A tw"])
    assert [r[0] for r in rows] == ["LISTEN", "TIME-WAIT", "CLOSE-WAIT"]
    rows = show(view, tl, at["A estab"])
    assert rows[1] == ("ESTAB", "5", "0", "127.0.0.1:7890", "127.0.0.1:40001", "", "observed")
    assert rows[2][6] == "—"  # the client's end: not reported yet
    assert show(view, tl, at["listen"])[1:] == []
    assert show(view, tl, -1) == []


def test_colours_selection_and_click(view, synthetic, qtbot) -> None:  # type: ignore[no-untyped-def]
    tl, at = synthetic
    show(view, tl, at["A close wait"])
    model = view.table_model
    for k, row in enumerate(view.rows):
        cell = model.index(k, 0)
        assert model.data(cell, Qt.ItemDataRole.BackgroundRole) == QColor(
            style.STATE_COLOURS[row.state])
    view.select(A)
    selected = [bool(model.data(model.index(k, 3), SELECTED_ROLE)) for k in range(len(view.rows))]
    assert selected == [False, True, True]  # both ends of A, not the listening socket
    view.select(None)
    with qtbot.waitSignal(view.connection_selected, timeout=1000) as sig:
        view.click_row(2)
    assert sig.args == [A]
    with qtbot.assertNotEmitted(view.connection_selected):
        view.click_row(0)  # the listening socket is no connection


def test_a_narrow_view_shows_ports_only_and_names_the_one_host(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    """A projector at 200 % on 1280x720: the addresses would not fit; every socket is on
    127.0.0.1, so the rows show ports and the notice says which host."""
    tl, at = synthetic
    show(view, tl, at["A tw"])
    model = view.table_model
    assert model.host is None and "127.0.0.1" not in view.notice_text
    locals_ = [r.local for r in view.rows]
    assert len(locals_) >= 3 and all(a.startswith("127.0.0.1:") for a in locals_)
    assert [model.index(r, 3).data() for r in range(model.rowCount())] == locals_
    try:
        style.set_zoom(2.0)
        view.apply_theme()
        show(view, tl, at["A tw"])  # still 1280 wide: whole addresses no longer fit
        assert model.host == "127.0.0.1"
        assert model.headerData(3, Qt.Orientation.Horizontal) == "Local Port"
        assert [model.index(r, 3).data() for r in range(model.rowCount())] == \
            [a[len("127.0.0.1"):] for a in locals_]
        assert model.index(0, 3).data() == ":7890" and model.index(0, 4).data() == "*:*"
        assert "127.0.0.1" in view.notice_text
        assert [r.local for r in view.rows] == locals_  # the data keeps the whole address
        widths = [view.table.columnWidth(c) for c in range(7)]
        assert sum(widths) <= view.width()  # it fits now
    finally:
        style.set_zoom(1.0)
        view.apply_theme()
    show(view, tl, at["A tw"])
    assert model.host is None and model.index(0, 3).data() == "127.0.0.1:7890"
    assert model.headerData(3, Qt.Orientation.Horizontal) == "Local Address:Port"
    assert "127.0.0.1" not in view.notice_text


def test_narrowing_shrinks_the_type_before_the_addresses_lose_their_host(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    tl, at = synthetic
    model = view.table_model
    view.show()  # (a hidden widget hears of its new size only when shown)
    seen = []
    for width in range(1400, 600, -20):  # bounded: 40 widths
        view.resize(width, 720)
        show(view, tl, at["A tw"])
        seen.append((width, model.host, model.scale))
    first_ports = next((k for k, (_, host, _) in enumerate(seen) if host is not None), -1)
    assert first_ports > 0, seen
    assert seen[0][2] == SocketsView.SCALES[0]  # wide: the largest type, whole addresses
    assert seen[first_ports - 1][1] is None
    assert seen[first_ports - 1][2] == SocketsView.SCALES[-1], seen  # smallest first, then ports
    assert seen[first_ports][2] > SocketsView.SCALES[-1]  # ports only: larger type again


def test_a_selection_made_before_its_rows_exist_is_brought_into_sight_once(view, synthetic) -> None:  # type: ignore[no-untyped-def]
    """A lesson's step selects its connection, then moves the cursor: the table scrolls to
    it, at any size; later updates do not pull the table back where the user scrolled."""
    tl, at = synthetic
    view.resize(1280, 260)  # room for about two rows
    view.show()
    show(view, tl, at["listen"])
    view.select(B)  # no row of B yet
    show(view, tl, at["B tw"])
    table = view.table

    def visible(conn: str) -> bool:
        rows = [k for k, r in enumerate(view.rows) if r.conn == conn]
        port = table.viewport().rect()
        return bool(rows) and all(
            port.contains(table.visualRect(view.table_model.index(k, 0))) for k in rows)

    assert table.verticalScrollBar().maximum() > 0  # it had to scroll
    assert visible(B)
    table.verticalScrollBar().setValue(0)  # the user scrolls back up
    show(view, tl, at["18 s"])  # a later moment, B still listed
    assert table.verticalScrollBar().value() == 0
    view.resize(1280, 250)  # a new size brings the selection back into sight
    assert visible(B)


def test_no_states_recorded_says_so(view) -> None:  # type: ignore[no-untyped-def]
    tr = Trace()
    tr.add(0, "server", "listen", None, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    tr.add(100, "client", "connect", A, peer=SERVER)
    tr.add(110, "server", "accept", A, peer="127.0.0.1:40001")
    tl = Timeline(EventLog(tr.events))
    rows = show(view, tl, len(tl.log) - 1)
    assert not view.states_recorded
    assert "no TCP states" in view.notice_text and view.notice.isVisibleTo(view)
    assert [r[0] for r in rows] == ["LISTEN", "unknown", "unknown"]  # no guess shown as a fact
    assert all(r[6] == "—" for r in rows)
    tr.add(200, "server", "close", A, reason="x")
    tr.add(210, "client", "close", A, reason="x")
    tl = Timeline(EventLog(tr.events))
    assert [r[0] for r in show(view, tl, len(tl.log) - 1)] == ["LISTEN"]


def test_thousand_connections_fast(view) -> None:  # type: ignore[no-untyped-def]
    tr = Trace()
    tr.add(0, "server", "listen", None, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    n = 1000
    for k in range(n):
        conn = f"127.0.0.1:{20000 + k}>{SERVER}"
        t = 100 + 50 * k
        tr.add(t, "client", "connect", conn, peer=SERVER)
        tr.add(t + 1, "server", "accept", conn, peer=conn.split(">")[0])
        tr.state(t + 2, conn, "server", "ESTABLISHED")
        tr.state(t + 3, conn, "client", "ESTABLISHED")
        if k % 2:
            tr.add(t + 10, "client", "close", conn, reason="done")
            tr.state(t + 11, conn, "client", "TIME_WAIT", timer="time_wait", expires_ms=60000)
            tr.add(t + 12, "server", "close", conn, reason="peer closed")
            tr.state(t + 13, conn, "server", "CLOSED")
    tl = Timeline(EventLog(tr.events))
    show(view, tl, len(tl.log) - 1)
    assert view.counts == {"LISTEN": 1, "ESTAB": n, "TIME-WAIT": n // 2}
    worst = 0.0
    for k in range(20):
        tl.seek(len(tl.log) - 2 - (k % 2))
        t0 = time.perf_counter()
        view.show_state(tl)
        worst = max(worst, time.perf_counter() - t0)
    assert worst < 0.1
    view.select(f"127.0.0.1:{20000 + n - 1}>{SERVER}")  # scrolls to it
    view.grab()


def test_export_png_and_svg(view, synthetic, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tl, at = synthetic
    show(view, tl, at["B closed"])
    view.export(tmp_path / "s.png")
    view.export(tmp_path / "s.svg")
    assert (tmp_path / "s.png").stat().st_size > 5000
    svg = (tmp_path / "s.svg").read_text()
    assert "<svg" in svg and "TIME-WAIT" in svg and "127.0.0.1:40002" in svg


# ---------------------------------------------------------------- live engine
def run(path: Path, load: str, *extra: str, linger: float = 0.4) -> str:
    """serve with --load; once the load is done, let the kernel be seen, then stop."""
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0", "--mode",
                             "epoll", f"--load={load}", "--trace", str(path), *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)
        if line.startswith("statuses") or time.monotonic() > deadline:
            break
    time.sleep(linger)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    return "".join(out) + rest


@pytest.mark.parametrize("options", [(), ("--states", "inferred", "--packets", "off")],
                         ids=["auto", "inferred"])
def test_live_time_wait_on_the_side_that_closed_first(view, tmp_path: Path, options) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "short.jsonl"
    out = run(path, "--clients 3 --requests 1 --short", *options)
    assert "requests: 3 ok" in out, out
    tl, _, _ = open_trace(path)
    log = tl.log
    # Who closed first: the sender of the first FIN where packets were captured (the
    # close events are emitted just before close(): two ends closing within microseconds
    # may be logged in the other order), else the first close() event.
    first_closer: dict[str, str] = {}
    for i in log.indices(kinds=["packet"]).tolist():
        e = log[i]
        if "FIN" in e.data["flags"] and e.data.get("origin") == "captured":
            client_port = int(e.conn.split(">")[0].rsplit(":", 1)[1])
            first_closer.setdefault(e.conn, "client" if e.data["sport"] == client_port
                                    else "server")
    for i in log.indices(kinds=["close"]).tolist():
        e = log[i]
        first_closer.setdefault(e.conn, e.src)
    assert len(first_closer) == 3
    # While the server runs (up to its loop's end), its listening socket is there.
    loop_end = int(log.indices(kinds=["thread_exit"], src="server")[-1])
    rows = show(view, tl, loop_end - 1)
    assert rows[0][0] == "LISTEN" and rows[0][4] == "*:*"
    listening = rows[0]
    rows = show(view, tl, len(log) - 1)
    assert all(r[0] != "LISTEN" for r in rows)  # stopped: no listening socket any more
    waiting = {(r.conn, r.side) for r in view.rows if r.state == "TIME_WAIT"}
    for conn, side in first_closer.items():
        assert (conn, side) in waiting, (conn, side, view.rows)
    assert all(r.source in ("observed", "inferred") for r in view.rows if r.state == "TIME_WAIT")
    assert all(r.timer.startswith("timewait") for r in view.rows if r.state == "TIME_WAIT")
    assert view.counts["TIME-WAIT"] >= 3
    if not options and any(r.source == "observed" for r in view.rows):
        assert listening[1:3] == ("0", "4096")  # the kernel's accept queue and backlog
    # Step back before the first close: nobody waits yet.
    first_close = int(log.indices(kinds=["close"])[0])
    show(view, tl, first_close - 1)
    # (Only this run's connections: port 0 may hand out a port that an earlier server
    # left TIME_WAIT sockets on, and the observer rightly reports them from the start.)
    assert not any(r.state == "TIME_WAIT" and r.conn in first_closer for r in view.rows)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the kernel observer that finds older sockets reads Linux's sock_diag")
def test_a_socket_older_than_the_recording_is_listed_as_such(view, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An earlier server's connection in TIME_WAIT on the port the recording's server takes:
    listed as ``ss`` would list it, its source saying it was there before the trace (and
    its tooltip why), in the muted colour; the load's own sockets are not marked."""
    from tests.conftest import port_with_a_time_wait
    port = port_with_a_time_wait()
    path = tmp_path / "older.jsonl"
    out = run(path, "--clients 1 --requests 1", "--port", str(port), "--policy", "close")
    assert "requests: 1 ok" in out, out
    tl, _, _ = open_trace(path)
    opened = {e.conn for e in tl.log if e.kind in ("connect", "accept")}
    show(view, tl, len(tl.log) - 1)
    older = [r for r in view.rows if r.conn is not None and r.conn not in opened]
    assert older and all(r.earlier for r in older), view.rows
    assert not [r for r in view.rows if r.conn in opened and r.earlier]
    model = view.table.model()
    k = view.rows.index(older[0])
    assert model.data(model.index(k, 6)) == "observed (before the trace)"
    assert "before the recording began" in model.data(model.index(k, 0),
                                                      Qt.ItemDataRole.ToolTipRole)
    assert model.data(model.index(k, 6), Qt.ItemDataRole.ForegroundRole) == QColor(style.MUTED)
