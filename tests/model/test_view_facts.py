"""What the views compute from the log, without Qt: ``visualizer.model.index``,
``.lifecycle``, ``.series`` and ``.text``, read from an event log built by hand.

Two connections to 127.0.0.1:7890:

* ``S``, short: its handshake captured (SYN, SYN|ACK, ACK), one request that
  does not ask to keep the connection, the answer says ``Connection: close``;
  the server closes first and waits in TIME_WAIT (observed, the kernel's timer);
* ``K``, keep-alive: its packets derived, the SYN sent twice, three requests
  on the one connection; the client closes first and waits in TIME_WAIT
  (inferred from the calls).

Every test builds its own log (no fixtures): the last test runs them all again
in a fresh interpreter, where nothing may import Qt (pytest-qt imports it into
every pytest process, so only there can its absence be seen).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.events import Event
from visualizer.model import EventLog, Timeline
from visualizer.model.index import Decoded, EventIndex
from visualizer.model.lifecycle import (
    KEEP_ALIVE,
    SHORT,
    Facts,
    Handshakes,
    Lifecycles,
    TimeAxis,
)
from visualizer.model.series import EventSeries, kind_codes, last_index
from visualizer.model.text import client_port, fmt_duration, ready_mask_text, short_conn

ROOT = Path(__file__).resolve().parents[2]
SERVER = "127.0.0.1:7890"
S = f"127.0.0.1:40001>{SERVER}"
K = f"127.0.0.1:40002>{SERVER}"
US = 1000  # ns
MAIN = Lifecycles.KINDS


class Trace:
    """Events in the order written, times in microseconds; ``at[name]``: an event's index
    (the log keeps time order, and the events are written in time order)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.at: dict[str, int] = {}

    def add(self, t_us: float, src: str, kind: str, conn: str | None = None,  # type: ignore[no-untyped-def]
            name: str | None = None, fd: int = -1, **data) -> int:
        self.events.append(Event(len(self.events) + 1, int(t_us * US), src, kind, conn, fd, 0,
                                 data))
        if name:
            self.at[name] = len(self.events) - 1
        return len(self.events) - 1

    def packet(self, t_us: float, conn: str, flags: str, to_server: bool = True,
               length: int = 0, origin: str = "captured", name: str | None = None) -> int:
        port = int(client_port(conn))
        sport, dport = (port, 7890) if to_server else (7890, port)
        return self.add(t_us, "capture", "packet", conn, name, sport=sport, dport=dport,
                        flags=flags, tcp_seq=0, ack=0, len=length, win=65535, origin=origin)

    def state(self, t_us: float, conn: str, side: str, state: str, source: str,
              expires_ms: int | None = None) -> int:
        return self.add(t_us, "kernel", "tcp_state", conn, side=side, state=state,
                        previous="ESTABLISHED", source=source,
                        timer="time_wait" if expires_ms else "off", expires_ms=expires_ms,
                        rqueue=0, wqueue=0)

    def request(self, t_us: float, conn: str, keep_alive: bool, name: str | None = None) -> int:
        return self.add(t_us, "server", "request", conn, name, fd=7, method="GET", path="/",
                        version="1.1", keep_alive=keep_alive, head="GET / HTTP/1.1\r\n\r\n")

    def response(self, t_us: float, conn: str, keep_alive: bool) -> int:
        head = f"HTTP/1.1 200 OK\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        return self.add(t_us, "server", "response", conn, fd=7, status=200, length=10, path="/",
                        head=head, preview="")


def trace() -> Trace:
    tr = Trace()
    tr.add(0, "server", "listen", None, host="127.0.0.1", port=7890, backlog=128, reuseaddr=True)
    # S: short, handshake captured; a data segment and a later pure ACK are no handshake.
    tr.packet(1000, S, "SYN", name="S syn")
    tr.packet(1010, S, "SYN|ACK", to_server=False, name="S synack")
    tr.packet(1020, S, "ACK", name="S ack")
    tr.add(1030, "client", "connect", S, "S connect", fd=5, peer=SERVER)
    tr.add(1040, "server", "accept", S, "S accept", fd=7, peer="127.0.0.1:40001")
    tr.packet(1050, S, "PSH|ACK", length=80)
    tr.add(1060, "server", "recv", S, "S recv", fd=7, bytes=80)
    tr.request(1100, S, False, name="S request")
    tr.add(1150, "server", "send", S, "S send", fd=7, bytes=200, wanted=200)
    tr.add(1160, "client", "recv", S, fd=5, bytes=200)  # the client's: not the server's I/O
    tr.response(1200, S, False)
    tr.packet(1250, S, "ACK", to_server=False)
    tr.add(1300, "server", "close", S, "S close", fd=7, reason="keep-alive off")
    tr.add(1400, "client", "close", S, "S client close", fd=5, reason="short")
    tr.state(1500, S, "server", "TIME_WAIT", "observed", expires_ms=60_000)
    tr.state(1510, S, "client", "CLOSED", "observed")
    # K: keep-alive, derived packets, the SYN retransmitted.
    tr.packet(2000, K, "SYN", origin="derived", name="K syn")
    tr.packet(2005, K, "SYN", origin="derived")
    tr.packet(2010, K, "SYN|ACK", to_server=False, origin="derived")
    tr.packet(2020, K, "ACK", origin="derived")
    tr.add(2030, "client", "connect", K, "K connect", fd=6, peer=SERVER)
    tr.add(2040, "server", "accept", K, "K accept", fd=8, peer="127.0.0.1:40002")
    for k in range(3):
        tr.add(2090 + 100 * k, "server", "recv", K, fd=8, bytes=50)
        tr.request(2100 + 100 * k, K, True, name=f"K request {k}")
        tr.response(2150 + 100 * k, K, True)
        tr.add(2160 + 100 * k, "server", "send", K, fd=8, bytes=300, wanted=300)
    tr.add(2500, "client", "close", K, "K client close", fd=6, reason="done")
    tr.add(2600, "server", "close", K, "K close", fd=8, reason="peer closed")
    tr.state(2610, K, "client", "TIME_WAIT", "inferred")
    tr.state(2620, K, "server", "CLOSED", "inferred")
    # 20 s after S's TIME_WAIT began: 40 s of its 60 are left.
    tr.add(20_001_500, "server", "epoll_wait", None, "later", fd=4, timeout=-1,
           ready=[(7, 0x001 | 0x004)])
    return tr


def where(log: EventLog, kinds: tuple[str, ...]) -> list[int]:
    """The indices of ``kinds``, read event by event (not from the columns)."""
    return [i for i, e in enumerate(log) if e.kind in kinds]


# ---------------------------------------------------------------- index.py
def test_the_index_follows_the_log_as_it_grows_and_when_a_late_event_is_merged() -> None:
    tr = trace()
    cut = tr.at["K syn"]
    log = EventLog(tr.events[:cut])
    index = EventIndex(MAIN)
    index.update(log)
    assert index.idx.tolist() == where(log, MAIN)
    assert [log.kinds.names[k] for k in index.kind.tolist()] == [log[i].kind for i in index.idx]
    assert [log.conns.names[c] for c in index.conn.tolist()] == [log[i].conn for i in index.idx]
    assert [log.sources.names[s] for s in index.src.tolist()] == [log[i].src for i in index.idx]
    assert index.t.tolist() == [log[i].t_ns for i in index.idx]
    before = len(index.idx)
    # Appended: the entries kept, only the new ones read.
    log.extend(tr.events[cut:])
    index.update(log)
    assert index.first_new == before
    assert index.idx.tolist() == where(log, MAIN)
    assert index.upto(tr.at["S request"]) == len([i for i in where(log, MAIN)
                                                  if i <= tr.at["S request"]])
    # A late event (before S's close): everything from there read again, in place.
    n = len(index.idx)
    log.extend([Event(999, 1250 * US, "client", "close", S, 5, 0, {"reason": "late"})])
    index.update(log)
    assert index.first_new < n
    assert index.idx.tolist() == where(log, MAIN)
    assert index.t.tolist() == [log[i].t_ns for i in index.idx]
    assert len(index.idx) == n + 1


def test_decoded_reads_an_event_once_per_log() -> None:
    tr = trace()
    log = EventLog(tr.events)
    calls: list[int] = []
    decoded = Decoded()

    def extract(data: dict) -> tuple:
        calls.append(1)
        return (data["method"], data["keep_alive"])

    i = tr.at["S request"]
    e = log[i]
    assert decoded.get(log, i, e.t_ns, e.seq, extract) == ("GET", False)
    assert decoded.get(log, i, e.t_ns, e.seq, extract) == ("GET", False)
    assert len(calls) == 1
    other = EventLog(tr.events)  # another log: its own cache
    assert decoded.get(other, i, e.t_ns, e.seq, extract) == ("GET", False)
    assert len(calls) == 2


# ---------------------------------------------------------------- lifecycle.py: facts
def facts_of(log: EventLog) -> Facts:
    main, packets = EventIndex(MAIN), EventIndex(("packet",))
    main.update(log)
    packets.update(log)
    facts = Facts()
    facts.update(log, main, packets)
    return facts


def test_facts_are_each_connections_first_events() -> None:
    tr = trace()
    log = EventLog(tr.events)
    f = facts_of(log)
    code = log.conns.codes
    at = tr.at
    for conn, first_open, srv, cli, first_req, first_pkt in (
            (S, at["S connect"], at["S close"], at["S client close"], at["S request"],
             at["S syn"]),
            (K, at["K connect"], at["K close"], at["K client close"], at["K request 0"],
             at["K syn"])):
        c = code[conn]
        assert f.first_open[c] == first_open  # connect() came before accept()
        assert f.srv_close[c] == srv
        assert f.cli_close[c] == cli
        assert f.first_req[c] == first_req
        assert f.first_pkt[c] == first_pkt
        assert f.first_any[c] == first_pkt  # the SYN came before any call
        assert f.first_main[c] == first_open
    requests = where(log, ("request",))
    assert f.req_idx.tolist() == requests
    assert [log.conns.names[c] for c in f.req_conn.tolist()] == [S, K, K, K]
    assert f.tcp_idx.tolist() == where(log, ("tcp_state",))
    # Per connection, up to a cursor: K's requests before its third.
    of = Facts.of(f.req_idx, f.req_conn, np.array([code[K]]), f.n_codes, at["K request 1"])
    assert of == {code[K]: [at["K request 0"], at["K request 1"]]}


def test_facts_brought_up_to_date_batch_by_batch_equal_facts_read_at_once() -> None:
    tr = trace()
    whole = facts_of(EventLog(tr.events))
    log = EventLog()
    main, packets, facts = EventIndex(MAIN), EventIndex(("packet",)), Facts()
    for k in range(0, len(tr.events), 5):
        log.extend(tr.events[k:k + 5])
        main.update(log)
        packets.update(log)
        facts.update(log, main, packets)
    for name in Facts.FIRSTS:
        assert getattr(facts, name).tolist() == getattr(whole, name).tolist(), name
    assert facts.req_idx.tolist() == whole.req_idx.tolist()
    assert facts.handshakes.origin == whole.handshakes.origin


def test_handshakes_count_syn_synack_and_the_ack_that_completes_them() -> None:
    tr = trace()
    log = EventLog(tr.events)
    f = facts_of(log)
    hs = f.handshakes
    assert isinstance(hs, Handshakes)
    code = log.conns.codes
    last = log[len(log) - 1]
    counts = hs.count(last.t_ns, last.seq, f.n_codes)
    # S: SYN, SYN|ACK, ACK (not the data segment, not the later ACK); K: the SYN twice.
    assert counts[code[S]] == 3
    assert counts[code[K]] == 4
    assert hs.origin == {code[S]: "captured", code[K]: "derived"}
    synack = log[tr.at["S synack"]]
    assert hs.count(synack.t_ns, synack.seq, f.n_codes)[code[S]] == 2  # at the SYN|ACK


def test_the_handshakes_ack_is_the_clients_first_pure_ack() -> None:
    """Not a segment carrying data, not the server's ACK: those come before it here."""
    x = f"127.0.0.1:40009>{SERVER}"
    tr = Trace()
    tr.packet(10, x, "SYN")
    tr.packet(20, x, "SYN|ACK", to_server=False)
    tr.packet(30, x, "PSH|ACK", length=10)
    tr.packet(40, x, "ACK", to_server=False)
    tr.packet(50, x, "ACK")
    tr.packet(60, x, "ACK")  # after the handshake
    log = EventLog(tr.events)
    f = facts_of(log)
    c = log.conns.codes[x]
    assert [int(f.handshakes.count(e.t_ns, e.seq, f.n_codes)[c]) for e in log] == \
        [1, 2, 2, 2, 3, 3]


# ---------------------------------------------------------------- lifecycle.py: the picture
def lifecycles_at(tr: Trace, index: int, selected: str | None = None) -> Lifecycles:
    timeline = Timeline(EventLog(tr.events))
    timeline.seek(index)
    lc = Lifecycles()
    lc.compute(timeline, selected)
    return lc


def test_short_and_keep_alive_bands_with_their_costs() -> None:
    tr = trace()
    lc = lifecycles_at(tr, tr.at["later"], selected=S)
    assert lc.groups == {SHORT: [S], KEEP_ALIVE: [K]}
    assert lc.cursor_ns == 20_001_500 * US and lc.trace_start_ns == 0
    short, keep = lc.costs[SHORT], lc.costs[KEEP_ALIVE]
    assert (short.connections, short.requests, short.handshake_segments) == (1, 1, 3)
    assert (keep.connections, keep.requests, keep.handshake_segments) == (1, 3, 4)
    assert (short.handshake_origin, keep.handshake_origin) == ("captured", "derived")
    assert (short.handshake_counted, short.handshake_assumed) == (1, 0)
    assert short.per_request == 3.0 and keep.per_request == 4 / 3
    assert short.first_open_ns == 1000 * US and short.last_close_ns == 1400 * US
    assert short.total_ns == 400 * US and short.still_open == 0
    assert keep.total_ns == 600 * US  # its first SYN to the server's close
    assert (short.time_wait, keep.time_wait) == (1, 1)  # 20 s: both still wait


def test_bars_with_requests_and_time_wait_tails() -> None:
    tr = trace()
    lc = lifecycles_at(tr, tr.at["later"], selected=S)
    bars = {b.conn: b for b in lc.bars}
    s, k = bars[S], bars[K]
    assert (s.label, s.group, s.selected) == ("40001", SHORT, True)
    assert (s.start_ns, s.end_ns) == (1000 * US, 1400 * US)  # the SYN; the client's close()
    assert s.requests == [1100 * US]
    assert (s.tw_side, s.tw_source, s.tw_start_ns, s.tw_end_ns) == \
        ("server", "observed", 1500 * US, None)
    assert s.tw_left_s is not None and abs(s.tw_left_s - 40.0) < 1e-6  # the kernel's timer
    assert (k.label, k.group, k.selected) == ("40002", KEEP_ALIVE, False)
    assert k.requests == [2100 * US, 2200 * US, 2300 * US]
    # The server's inferred CLOSED (its last ACK) ends the bar: dated by the calls.
    assert (k.start_ns, k.end_ns) == (2000 * US, 2620 * US)
    assert (k.tw_side, k.tw_source) == ("client", "inferred")
    assert k.tail_start_ns == 2610 * US


def test_bars_carry_each_ends_closing_states_where_they_were() -> None:
    tr = trace()
    # K's teardown, as the segments place it: the client closes first; the server reads
    # end-of-file only later (CLOSE_WAIT), then closes (LAST_ACK) and is acknowledged.
    tr.state(2400, K, "client", "FIN_WAIT_1", "inferred")
    tr.state(2400, K, "server", "CLOSE_WAIT", "inferred")
    tr.state(2401, K, "client", "FIN_WAIT_2", "inferred")
    tr.state(2605, K, "server", "LAST_ACK", "inferred")
    tr.events.sort(key=lambda e: e.t_ns)
    k = {b.conn: b for b in lifecycles_at(tr, len(tr.events) - 1).bars}[K]
    assert k.closing == [("client", "FIN_WAIT_1", 2400 * US, 2401 * US),
                         ("server", "CLOSE_WAIT", 2400 * US, 2605 * US),
                         ("client", "FIN_WAIT_2", 2401 * US, 2610 * US),
                         ("server", "LAST_ACK", 2605 * US, 2620 * US)]
    # At a cursor inside it, the server is still in CLOSE_WAIT: the span is open.
    inside = next(i for i, e in enumerate(tr.events) if e.t_ns == 2500 * US)
    k = {b.conn: b for b in lifecycles_at(tr, inside).bars}[K]
    assert ("server", "CLOSE_WAIT", 2400 * US, None) in k.closing


def test_a_connection_is_short_until_a_request_keeps_it() -> None:
    tr = trace()
    at_accept = lifecycles_at(tr, tr.at["K accept"])
    assert at_accept.groups == {SHORT: [S, K], KEEP_ALIVE: []}
    still_open = {b.conn: b for b in at_accept.bars}[K]
    assert still_open.end_ns is None and still_open.requests == []
    assert at_accept.costs[SHORT].still_open == 1
    asked = lifecycles_at(tr, tr.at["K request 0"])  # one request asking to keep it
    assert asked.groups == {SHORT: [S], KEEP_ALIVE: [K]}
    reused = lifecycles_at(tr, tr.at["K request 1"])  # two requests: reused, so kept
    assert reused.groups == {SHORT: [S], KEEP_ALIVE: [K]}
    assert reused.costs[KEEP_ALIVE].requests == 2
    before = lifecycles_at(tr, tr.at["S syn"] - 1)
    assert before.bars == [] and before.groups == {SHORT: [], KEEP_ALIVE: []}


def test_a_request_asking_keep_alive_is_short_once_the_answer_refuses() -> None:
    r = f"127.0.0.1:40010>{SERVER}"
    tr = Trace()
    tr.add(10, "client", "connect", r, peer=SERVER)
    tr.add(20, "server", "accept", r, peer="127.0.0.1:40010")
    asked = tr.request(30, r, True)
    refused = tr.response(40, r, False)  # Connection: close (the server's --policy close)
    assert lifecycles_at(tr, asked).groups == {SHORT: [], KEEP_ALIVE: [r]}
    assert lifecycles_at(tr, refused).groups == {SHORT: [r], KEEP_ALIVE: []}


def test_the_time_axis_cuts_a_long_quiet_stretch() -> None:
    ms = 1_000_000
    axis = TimeAxis([0, ms, 2 * ms, 10_000 * ms, 10_001 * ms], 0, 10_001 * ms, 0, 1000)
    assert [(r.t0, r.t1) for r in axis.breaks] == [(2 * ms, 10_000 * ms)]
    xs = [axis.x(t) for t in (0, ms, 2 * ms, 10_000 * ms, 10_001 * ms)]
    assert xs == sorted(xs) and xs[0] == 0 and abs(xs[-1] - 1000) < 1e-6
    assert xs[2] - xs[0] > 100  # the burst is readable, not squashed by the 10 s gap


# ---------------------------------------------------------------- series.py
def test_a_series_reads_the_servers_events_once_and_slices_at_the_cursor() -> None:
    tr = trace()
    cut = tr.at["K syn"]
    log = EventLog(tr.events[:cut])
    series = EventSeries(["recv", "send"], value=lambda e: e.data.get("bytes", 0))
    series.update(log, len(log))
    assert series.complete
    assert series.idx.tolist() == [tr.at["S recv"], tr.at["S send"]]  # not the client's recv
    assert series.v[:, 0].tolist() == [80.0, 200.0]
    assert series.fd.tolist() == [7, 7]
    assert series.count(tr.at["S request"]) == 1 and series.count(tr.at["S send"]) == 2
    # Grown: only the new events read.
    log.extend(tr.events[cut:])
    series.update(log, len(log))
    server_io = [i for i, e in enumerate(log) if e.kind in ("recv", "send") and e.src == "server"]
    assert series.idx.tolist() == server_io
    assert series.v[:, 0].sum() == 80 + 200 + 3 * (50 + 300)
    assert series.count(tr.at["K request 1"]) == 5  # S's two, then recv, send, recv
    # A late event merged before S's send: read again from there.
    log.extend([Event(998, 1120 * US, "server", "send", S, 7, 0, {"bytes": 1, "wanted": 1})])
    series.update(log, len(log))
    server_io = [i for i, e in enumerate(log) if e.kind in ("recv", "send") and e.src == "server"]
    assert series.idx.tolist() == server_io
    assert series.v[:, 0].tolist()[:3] == [80.0, 1.0, 200.0]


def test_a_series_without_values_counts_and_any_source_reads_all() -> None:
    tr = trace()
    log = EventLog(tr.events)
    opened = EventSeries(["accept", "close"])
    opened.update(log, len(log))
    assert opened.idx.tolist() == [tr.at["S accept"], tr.at["S close"], tr.at["K accept"],
                                   tr.at["K close"]]
    assert opened.v[:, 0].tolist() == [1.0] * 4
    anyone = EventSeries(["recv"], src=None, value=lambda e: e.data["bytes"])
    anyone.update(log, len(log))
    assert anyone.v[:, 0].tolist() == [80.0, 200.0, 50.0, 50.0, 50.0]  # the client's too


def test_kind_codes_and_last_index() -> None:
    tr = trace()
    log = EventLog(tr.events)
    assert [log.kinds.names[c] for c in kind_codes(log, ["close", "nothing", "request"])] == \
        ["close", "request"]
    end = len(log)
    assert last_index(log, ["request"], end) == tr.at["K request 2"]
    assert last_index(log, ["request"], tr.at["K request 0"]) == tr.at["S request"]
    assert last_index(log, ["close"], end) == tr.at["K close"]  # the server's
    assert last_index(log, ["close"], end, src="client") == tr.at["K client close"]
    assert last_index(log, ["request"], tr.at["S request"]) == -1
    assert last_index(log, ["request"], end, before=tr.at["K request 2"] + 1) == -1
    assert last_index(log, ["epoll_wait"], end, no_conn=True) == tr.at["later"]
    assert last_index(log, ["nothing"], end) == -1


# ---------------------------------------------------------------- text.py
def test_how_the_views_write_ports_durations_and_masks() -> None:
    assert client_port(S) == "40001"
    assert client_port("[::1]:40005>[::1]:7890") == "40005"
    assert short_conn(S) == "40001 → 7890" and short_conn(None) == ""
    assert short_conn("odd") == "odd"
    assert [fmt_duration(ns) for ns in (250_000, 2_500_000, 45_000_000, 250_000_000,
                                        3_250_000_000, 42_000_000_000, 125_000_000_000)] == \
        ["250 µs", "2.50 ms", "45.0 ms", "250 ms", "3.25 s", "42.0 s", "2 min 5 s"]
    assert ready_mask_text(0x001 | 0x004) == "IN|OUT"
    assert ready_mask_text(0x001 | 0x2000) == "IN|RDHUP"
    assert ready_mask_text(3, selectors=True) == "IN|OUT"
    assert ready_mask_text(0) == "0"


# ---------------------------------------------------------------- no Qt (last)
_AGAIN = """
import runpy, sys
ns = runpy.run_path(sys.argv[1])
names = [n for n in ns if n.startswith("test_") and n != "test_nothing_here_imports_qt"]
for name in names:
    ns[name]()
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph", "shiboken6"))
assert not qt, qt
print("ran", len(names))
"""


def test_nothing_here_imports_qt() -> None:
    """Every test above again, in an interpreter that has not imported Qt (pytest-qt
    imports it into this one): afterwards, no Qt or pyqtgraph module is loaded."""
    proc = subprocess.run([sys.executable, "-c", _AGAIN, __file__], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = sum(1 for n, v in globals().items() if n.startswith("test_") and callable(v)) - 1
    assert proc.stdout.split() == ["ran", str(ran)]
    if "pytestqt" not in sys.modules:  # (run with -p no:pytest-qt) here too
        assert "PySide6" not in sys.modules
