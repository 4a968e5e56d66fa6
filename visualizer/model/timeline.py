"""The cursor over the event log, with snapshots so that seeking is cheap.

The state at index i is the snapshot at or before i, cloned, with the events
after it folded in. Snapshots are taken every ``every`` events as the cursor
passes them, and redone from the point a late batch changed the log.

Their number is bounded (``max_snaps``), so that a session of any length holds
a bounded history of states: past the bound, every other snapshot of the older
half goes. The newest half stays ``every`` apart; older ones are 2, 4, 8...
times as far apart, and a seek there folds more events (a rewind to minutes
ago, not a step). Folding through an old stretch puts its snapshots back, so
stepping about there soon costs ``every`` events again.
"""
from __future__ import annotations

import gc
import time
from bisect import bisect_right

import numpy as np

from .log import EventLog
from .state import ServerState, apply


_LONG = 50_000  # events: a fold this long runs without the cyclic collector
_SLICE = 500  # events fold_ahead folds between looks at the clock (about 1.5 ms)


def spacing_for(events: int, max_snaps: int = 2000) -> int:
    """Events between snapshots for a recorded trace of about ``events``: 1,000, or more
    (a multiple of 1,000) so that its snapshots stay under ``max_snaps`` with room to
    spare, evenly spaced (a live session's thinning would leave its start sparse: a
    seek there folding millions of events)."""
    return 1000 * max(1, -(-events // (900 * max_snaps)))


class Timeline:
    def __init__(self, log: EventLog | None = None, every: int = 1000,
                 max_snaps: int = 2000) -> None:
        self.log = log if log is not None else EventLog()
        self.every = every
        self.max_snaps = max(4, max_snaps)
        self._snap_index: list[int] = [-1]  # snapshot i holds the state after event _snap_index[i]
        self._snaps: list[ServerState] = [ServerState()]
        self._state = ServerState()
        self.cursor = -1  # the last event folded in; -1 before the first
        self.live = True  # follow the newest event as batches arrive
        self._ahead: tuple[int, ServerState] | None = None  # fold_ahead's state, and its place

    @classmethod
    def live(cls) -> "Timeline":
        """A timeline for a live session: its events' text is spilled to an unnamed
        file in the temporary folder (``TMPDIR``) as they arrive, so memory holds
        the columns, the snapshots and the newest events decoded, however long it runs."""
        return cls(EventLog(spill=True))

    # ------------------------------------------------------------ input
    def add(self, batch, lines=None, offsets=None) -> None:  # type: ignore[no-untyped-def]
        """Add events (any order); keep the cursor where it was, or at the end when live."""
        target = self.cursor
        self.log_changed(self.log.extend(batch, lines, offsets))
        self.seek(len(self.log) - 1 if self.live else target)

    def log_changed(self, changed: int) -> None:
        """The log holds other events from index ``changed`` on (a batch merged, or a
        trace's part read elsewhere): what was folded from there is folded again when
        the cursor next moves (``seek``; the cursor's place is the caller's to keep)."""
        self._ahead = None
        if changed <= self._snap_index[-1]:  # a late event rewrote folded history
            keep = bisect_right(self._snap_index, changed - 1)
            del self._snap_index[keep:], self._snaps[keep:]
        if self.cursor >= changed:  # the state at the cursor is stale: refold it
            self._state = self._snaps[-1].clone()
            self.cursor = self._snap_index[-1]

    # ------------------------------------------------------------ cursor
    @property
    def state(self) -> ServerState:
        return self._state

    def seek(self, index: int) -> ServerState:
        """Move the cursor to ``index`` (clamped) and return the state there."""
        index = max(-1, min(index, len(self.log) - 1))
        i = bisect_right(self._snap_index, index) - 1
        if index < self.cursor or self._snap_index[i] > self.cursor:
            # Back, or far ahead past a snapshot: start from the nearest one.
            self._state = self._snaps[i].clone()
            self.cursor = self._snap_index[i]
        if index - self.cursor > _LONG and gc.isenabled():
            gc.disable()  # a long fold makes events and snapshots, none in a cycle: the
            try:  # collector would only walk them again and again (a fifth of its time)
                return self._fold_to(index)
            finally:
                gc.enable()
        return self._fold_to(index)

    def _fold_to(self, index: int) -> ServerState:
        log, state = self.log, self._state
        every = self.every
        while self.cursor < index:
            # Fold up to the next snapshot boundary (or the target) in one go.
            first = self.cursor + 1
            last = min(index, first + every - 1 - first % every)
            for i, e in enumerate(log.events(first, last + 1), first):
                apply(state, e, i)
            self.cursor = last
            if last % every == every - 1:
                snaps = self._snap_index
                if last > snaps[-1]:
                    snaps.append(last)
                    self._snaps.append(state.clone())
                    if len(snaps) > self.max_snaps:
                        self._thin()
                else:  # an old stretch, thinned: put this one back (a fold never
                    # passes a snapshot: it starts from the nearest one before its target)
                    k = bisect_right(snaps, last)
                    snaps.insert(k, last)
                    self._snaps.insert(k, state.clone())
        return state

    def fold_ahead(self, budget: float) -> bool:
        """Build snapshots past the newest one, for about ``budget`` seconds (a few hundred
        events at least), without moving the cursor (an opened trace, folded while the
        window waits for its user: a seek there later starts from them). Returns whether
        a stretch remains."""
        log, every = self.log, self.every
        end = len(log) - 1
        newest = self._snap_index[-1]
        if end - newest < every:
            return False
        ahead = self._ahead  # (where it got to, its state), if still on from the newest
        at, state = ahead if ahead is not None and newest <= ahead[0] < newest + every \
            else (newest, self._snaps[-1].clone())
        deadline = time.perf_counter() + budget
        collecting = gc.isenabled()
        gc.disable()  # (as a long fold: nothing it makes is in a cycle)
        try:
            while True:
                stop = min(newest + every, at + _SLICE)  # (the next snapshot's place at most)
                for i, e in enumerate(log.events(at + 1, stop + 1), at + 1):
                    apply(state, e, i)
                at = stop
                if at == newest + every:
                    newest = at
                    self._snap_index.append(at)
                    self._snaps.append(state.clone())
                    if len(self._snap_index) > self.max_snaps:
                        self._thin()
                    if end - newest < every:
                        break
                if time.perf_counter() >= deadline:
                    break
        finally:
            if collecting:
                gc.enable()
        self._ahead = (at, state)
        return end - newest >= every

    @property
    def to_fold_ahead(self) -> bool:
        """Whether ``fold_ahead`` has a stretch to fold (a whole one past the newest snapshot)."""
        return len(self.log) - 1 - self._snap_index[-1] >= self.every

    @property
    def folded(self) -> int:
        """Events up to the newest snapshot (what a seek finds folded already)."""
        return max(self._snap_index[-1], self.cursor) + 1

    def _thin(self) -> None:
        """Drop every other snapshot of the older half (the first, before any event,
        stays): the newest half keeps its spacing."""
        newest = len(self._snap_index) - self.max_snaps // 2
        self._snap_index[1:newest] = self._snap_index[2:newest:2]
        self._snaps[1:newest] = self._snaps[2:newest:2]

    def step(self, count: int = 1) -> ServerState:
        return self.seek(self.cursor + count)

    def next_of(self, conn: str, direction: int = 1) -> int | None:
        """Index of the next (or previous) event of connection ``conn``."""
        mine = self.log.indices(conn=conn)
        if direction > 0:
            k = int(np.searchsorted(mine, self.cursor, side="right"))
            return int(mine[k]) if k < len(mine) else None
        k = int(np.searchsorted(mine, self.cursor, side="left")) - 1
        return int(mine[k]) if k >= 0 else None

def _bad_value(path, events, lines, exc: Exception):  # type: ignore[no-untyped-def]
    """The event of a batch whose fields the model cannot fold, as a ``TraceError``
    naming its line (found again in the file: this runs only when a fold failed)."""
    from engine.trace import TraceError
    culprit, reason = None, exc
    for event, raw in zip(events, lines):
        try:
            apply(ServerState(), event)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
            culprit, reason = (event, raw), error
            break
    if culprit is None:
        return TraceError(path, 0, f"an event with a field of the wrong type: {exc}")
    event, raw = culprit
    problem = f"a {event.kind!r} event with a field of the wrong type ({reason})"
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if line == raw:
                return TraceError(path, number, problem)
    return TraceError(path, 0, f"{problem}, seq {event.seq}")


def open_trace(path, batch: int = 16384, progress=None, fold: bool | int = True,  # type: ignore[no-untyped-def]
               workers: int | None = None, **parallel):
    """Read a trace into a new timeline.

    Returns ``(timeline, header, problems)``; raises ``TraceError`` naming the
    line of a corrupt file. ``progress(events_so_far)`` is called per batch.
    Reading streams: the file's events never exist all at once as objects, and
    their text stays in the file (the log reads a line again where it lies).
    With ``fold`` (``True``, or a number: when the trace has at most that many
    events) the cursor goes to the end, every snapshot built, and the file is
    read in order, folding as it reads (one parse of each line). Otherwise it
    stays before the first event, the events are folded only where the cursor
    goes (or ``Timeline.fold_ahead``), and a big file is read by worker
    processes (``reader``; ``workers=1``: never), which send back the log's
    columns: on two cores, about 40 % of the time in order.
    """
    timeline, header, problems = None, None, []
    if fold is not True and workers != 1:
        from .reader import read_parallel
        got = read_parallel(path, progress, workers, **parallel)
        if got is not None:
            log, header, problems = got
            timeline = Timeline(log, every=spacing_for(len(log)))
            timeline.live = False
    if timeline is None:
        timeline, header, problems = _read_in_order(path, batch, progress, fold is True)
    if fold is True or (fold is not False and len(timeline.log) <= fold):
        try:
            timeline.seek(len(timeline.log) - 1)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            log, first = timeline.log, timeline.cursor + 1  # (the fold stopped in this stretch)
            stop = min(len(log), first + timeline.every)
            raise _bad_value(path, log.events(first, stop),
                             [log.line(i) for i in range(first, stop)], exc) from None
    return timeline, header, problems


def _read_in_order(path, batch: int, progress, fold: bool):  # type: ignore[no-untyped-def]
    """``open_trace`` in this process, a batch at a time (folding as it reads with ``fold``)."""
    from engine.trace import iter_batches

    problems: list[str] = []
    items = iter_batches(path, problems, batch, offsets=True)  # each event checked as read
    header = next(items)
    timeline = Timeline(EventLog(backing=path))
    timeline.live = fold
    # Reading makes millions of short-lived tuples and dicts, none in a cycle:
    # the cyclic collector would only walk them again and again (a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for events, lines, starts in items:
            try:
                timeline.add(events, lines, starts)
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
                raise _bad_value(path, events, lines, exc) from None
            if progress is not None:
                progress(len(timeline.log))
    finally:
        if collecting:
            gc.enable()
    timeline.live = False
    return timeline, header, problems
