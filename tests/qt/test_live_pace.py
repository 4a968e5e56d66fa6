"""The live window under more events than it can fold: it takes them at its pace, draws
what it can, says how far behind it is, and loses none. A real engine and real clients."""
from __future__ import annotations

import time
import urllib.request

from visualizer.app import DrainPace, MainWindow


def test_the_pace_takes_what_folds_in_its_budget() -> None:
    pace = DrainPace(budget=0.010, first=2000, least=200)
    assert pace.limit() == 2000  # nothing measured yet
    pace.took(10, 1.0)  # too few to say what one costs
    assert pace.limit() == 2000
    pace.took(1000, 0.010)  # 10 µs an event: 1,000 in 10 ms
    assert pace.limit() == 1000
    pace.took(1000, 0.100)  # slower now: smoothed, 0.7 × 10 µs + 0.3 × 100 µs
    assert pace.limit() == round(0.010 / 37e-6) == 270
    pace.took(1000, 10.0)
    assert pace.limit() == 200  # never less than ``least`` a tick


class _Source:
    """A stopped channel's stand-in: real lines waiting in a real backlog."""

    def __init__(self, first: int, count: int) -> None:
        from tests.model.test_backlog import line
        from visualizer.channel import Backlog
        self.events = Backlog()
        self.events.put_block(b"".join(line(n) for n in range(first, first + count)))

    exit_code = None  # (running, as far as the host can tell)
    reading = False  # (its lines all put)

    def drain(self, limit: int) -> list:  # type: ignore[type-arg]
        return self.events.take_events(limit)

    def stop(self) -> None:
        pass


def test_stopped_engines_are_taken_oldest_first_a_whole_limit_a_tick() -> None:
    """Two engines stopped while the window was behind (two Applies in a row), then the
    running one: each tick takes the limit whole, from the oldest group on, and a group
    is taken only once every older one is done."""
    from visualizer.host import EngineHost
    host = EngineHost()
    first, second, running = _Source(1, 300), _Source(1000, 200), _Source(5000, 5000)
    host.retired = [[first], [second]]
    host.traffic = [running]  # (a running source: what drain takes after the stopped ones)
    batch = host.drain(1000)
    assert len(batch) == 1000 and not host.retired
    assert [e.seq for e in batch] == [*range(1, 301), *range(1000, 1200), *range(5000, 5500)]
    assert len(host.drain(1000)) == 1000 and host.waiting() == 3500


def test_a_window_behind_a_flood_takes_it_at_its_pace_says_so_and_loses_nothing(
        qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A pace of 60 events a tick against four clients' 1,200 requests (the engine's
    events and the clients', from two processes): every tick takes about its limit,
    the status bar says how many wait, and once the load ends every event is there, in
    the engine's and the clients' unbroken sequences."""
    host = window.host
    assert host is not None
    qtbot.waitUntil(lambda: bool(window.timeline.state.listen), timeout=10_000)
    window.pace = DrainPace(budget=1e-9, first=60, least=60)  # (never more than 60)
    ticks: list[tuple[int, int, int]] = []  # (limit, taken, waiting then)
    real = host.drain

    def drain(limit: int | None = None) -> list:  # type: ignore[type-arg]
        waiting = host.waiting()
        batch = real(limit)
        ticks.append((limit, len(batch), waiting))
        return batch

    host.drain = drain  # type: ignore[method-assign]
    said: list[str] = []
    # (the label, what it says, the newest event taken then: the log is kept in time order)
    lags: list[tuple[str, tuple[float, int, int] | None, int]] = []

    def look() -> None:
        said.append(window.status_label.text())
        log = window.timeline.log
        lags.append((window.lag_label.text() if window.lag_label.isVisibleTo(window) else "",
                     window.behind, int(log.times[-1]) if len(log) else 0))

    window.count_box.setValue(4)
    window.run_traffic("Keep-alive", ["--requests", "300"])
    qtbot.waitUntil(lambda: look() or
                    sum(1 for e in window.timeline.log if e.kind == "response") == 1200
                    and window.waiting == 0, timeout=120_000)
    # How far behind, in the engine's seconds: the newest event that came (a real event's
    # time, found in the log once all is taken) less the last one taken; beside Live
    # from half a second, as the status bar says it; gone once nothing waits.
    times = {int(t) for t in window.timeline.log.times}
    shown = [(text, said_lag, taken) for text, said_lag, taken in lags if text]
    assert shown, lags[-5:]
    for text, said_lag, taken in shown:
        assert said_lag is not None
        lag, last, newest = said_lag
        assert last == taken and newest in times and lag == (newest - last) / 1e9 >= 0.5
        assert text == f"{lag:.1f} s behind"
    assert any(f"behind the engine: {said_lag[0]:.1f} s, " in t  # type: ignore[index]
               for t in said for _, said_lag, _ in shown)
    assert not window.lag_label.isVisibleTo(window) and window.behind is None
    behind = [(limit, taken, waiting) for limit, taken, waiting in ticks if waiting > 200]
    assert len(behind) > 20, ticks[-5:]  # it did fall behind, for many ticks
    # Each tick took its limit, give or take one per source (two: the engine, the load).
    assert all(limit - 2 <= taken <= limit + 2 for limit, taken, _ in behind), behind[:10]
    assert any("behind the engine:" in text and "events waiting, none lost" in text
               for text in said)
    assert "behind the engine" not in window.status_label.text()
    log = window.timeline.log
    # Each process numbers its events from 1 (the kernel side from 2**40): none missing.
    for name, mine in (("engine", lambda e: e.src != "client" and e.seq < 1 << 40),
                       ("load", lambda e: e.src == "client"),
                       ("kernel side", lambda e: e.seq >= 1 << 40)):
        seqs = sorted(e.seq for e in log if mine(e))
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else name == \
            "kernel side", (name, [s for s in range(seqs[0], seqs[-1]) if s not in set(seqs)][:5])
    assert window.timeline.cursor == len(log) - 1  # live: at the newest


def test_streaming_a_dear_drawing_waits_four_times_what_it_took(
        qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """A drawing of 100 ms (ten thousand sockets, a projector at 200 %) is not done again
    for four times that; the stream rests, and it is done, from the newest state."""
    qtbot.waitUntil(lambda: bool(window.timeline.state.listen), timeout=10_000)
    window.drain_timer.stop()  # the ticks are this test's
    view = window.view_tabs.currentWidget()
    drawn: list[int] = []
    real = view.show_state

    def dear(timeline) -> None:  # type: ignore[no-untyped-def]
        drawn.append(len(timeline.log))
        time.sleep(0.1)
        real(timeline)

    view.show_state = dear  # type: ignore[method-assign]
    assert window.timeline.live and window.host is not None  # streaming
    started = time.monotonic()
    window._refresh()
    assert drawn and window._draw_due - started >= 0.4
    assert "this view: redrawn every 0.4 s to keep up" in window.status_label.text() or \
        "this view: redrawn every 0.5 s to keep up" in window.status_label.text()
    if time.monotonic() < window._draw_due:  # (a machine that stalled 300 ms: not judged)
        window._refresh()
        assert len(drawn) == 1 and window._view_owed
    qtbot.waitUntil(lambda: time.monotonic() >= window._draw_due, timeout=5_000)
    host = window.host
    real_drain = host.drain
    host.drain = lambda limit=None: []  # type: ignore[method-assign]  # the stream rests
    try:
        window._drain()  # nothing new: what was owed is drawn
    finally:
        host.drain = real_drain  # type: ignore[method-assign]
    assert len(drawn) == 2 and not window._view_owed
    window.show_view("plots")  # another view chosen: drawn at once, whatever was due
    assert window.view_tabs.currentWidget().name == "plots" and not window._view_owed
    assert window._draw_due <= time.monotonic() + 1.0
    window.show_view(view.name)
    assert len(drawn) == 3
    window.live_button.setChecked(False)  # paused: every change is drawn
    window.step(-1)
    window.step(1)
    assert len(drawn) == 5


def test_closing_a_window_far_behind_drops_what_waits_unread(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """After a long load test millions of lines may wait: closing the window used to
    parse them all at once (a five-minute wrk run: 24 GB, and the kernel's OOM killer).
    Nobody will see them: they are dropped unread, the engine ends all the same."""
    host = window.host
    assert host is not None and host.channel is not None
    parsed = far_behind(qtbot, window)
    engine = host.channel.proc
    window.close()
    assert engine.poll() is not None  # the engine ended
    assert sum(parsed) <= 10 * 4  # a tick or so, never what waited


def test_a_restart_far_behind_takes_the_old_engines_events_first_at_the_pace(
        qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """Apply (restart engine) while thousands of the old engine's events wait: they used
    to be parsed in one batch (after a load test, millions: the window froze, or worse).
    Now they wait on, unparsed, and are taken first, a tick's worth at a time; every one
    arrives, all before the new engine's first event, and the new engine serves."""
    host = window.host
    assert host is not None
    qtbot.waitUntil(lambda: bool(window.timeline.state.listen), timeout=10_000)
    window.pace = DrainPace(budget=1e-9, first=60, least=60)
    window.count_box.setValue(4)
    window.run_traffic("Keep-alive", ["--requests", "300"])
    # Wait until every client is done (the clients' channels have ended) and much waits.
    qtbot.waitUntil(lambda: window.waiting > 3000 and all(
        t.exit_code is not None for t in host.traffic), timeout=60_000)
    old_pid = host.channel.proc.pid
    ticks: list[tuple[int, int]] = []  # (taken, waiting before), from the restart on
    window.start_engine(window._current_settings())
    new = window.host
    assert new is not host and new.channel is not None and new.channel.proc.pid != old_pid
    assert new.waiting() > 2000  # handed over, nothing parsed
    # The old engine and its clients had stopped: their newest line is their last.
    old_last = max(source.events.newest_ns for group in new.retired for source in group
                   if source.events.newest_ns is not None)
    real = new.drain
    # Each batch taken while the old ones waited: its times, and whether they still wait.
    while_retired: list[tuple[list[int], bool]] = []

    def drain(limit: int | None = None) -> list:  # type: ignore[type-arg]
        waiting, retired = new.waiting(), bool(new.retired)
        batch = real(limit)
        ticks.append((len(batch), waiting))
        if retired:
            while_retired.append(([e.t_ns for e in batch], bool(new.retired)))
        return batch

    new.drain = drain  # type: ignore[method-assign]
    log = window.timeline.log
    qtbot.waitUntil(lambda: sum(1 for e in log if e.kind == "response") == 1200
                    and sum(1 for e in log if e.kind == "listen") == 2
                    and window.waiting == 0, timeout=120_000)
    assert len(ticks) > 30 and max(taken for taken, _ in ticks) <= 62, ticks[:10]
    # The old engine's and its clients' events first: a batch taken while they waited holds
    # the new engine's (all of whose events come after the old one stopped) only after
    # the last of them, in the tick that took that last one.
    assert len(while_retired) > 30
    for times, still in while_retired:
        new_from = next((k for k, t in enumerate(times) if t > old_last), len(times))
        assert all(t > old_last for t in times[new_from:]), "old after new in one batch"
        assert new_from == len(times) or not still, "the new engine's while the old waited"
    assert any(e.t_ns > old_last for e in log)  # (and the new engine's did come, after)
    assert not new.retired  # the old engine's files closed once taken
    qtbot.waitUntil(lambda: bool(new.url), timeout=10_000)
    with urllib.request.urlopen(new.url, timeout=10) as answer:  # the new engine serves
        assert answer.status == 200


def far_behind(qtbot, window: MainWindow) -> list[int]:  # type: ignore[no-untyped-def]
    """The window's engine under four clients' 1,200 requests, the window taking 10 events
    a tick, until more than 3,000 wait; from then on every event its sources parse is
    counted in the list returned (a number per take)."""
    host = window.host
    assert host is not None and host.channel is not None
    qtbot.waitUntil(lambda: bool(window.timeline.state.listen), timeout=10_000)
    window.pace = DrainPace(budget=1e-9, first=10, least=10)
    window.count_box.setValue(4)
    window.run_traffic("Keep-alive", ["--requests", "300"])
    qtbot.waitUntil(lambda: window.waiting > 3000, timeout=60_000)
    parsed: list[int] = []
    for channel in [host.channel, *host.traffic]:
        real = channel.events.take_events

        def counted(limit: int, real=real) -> list:  # type: ignore[no-untyped-def,type-arg]
            events = real(limit)
            parsed.append(len(events))
            return events

        channel.events.take_events = counted  # type: ignore[method-assign]
    return parsed
