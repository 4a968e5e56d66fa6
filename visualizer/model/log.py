"""An append-only log of events from every source, merged by time.

Events arrive in batches from several producers (the engine, the clients,
the kernel observer, derived packets dated in the past), each batch in its
own order. The log keeps one order, by ``(t_ns, seq)``. A batch that starts
after the last event is appended; one that reaches back is merged into the
tail, and ``changed_from`` tells the timeline which snapshots to redo.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Iterable, Sequence

from engine.events import Event


def _key(e: Event) -> tuple[int, int]:
    return (e[1], e[0])


class EventLog(Sequence[Event]):
    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._events: list[Event] = []
        self._times: list[int] = []  # t_ns of each event, for bisect
        self.changed_from: int | None = None  # lowest index rewritten by the last merge
        self.extend(events)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        return self._events[index]

    def extend(self, batch: Iterable[Event]) -> int:
        """Add a batch; returns the index from which the log changed."""
        new = sorted(batch, key=_key)
        if not new:
            self.changed_from = None
            return len(self._events)
        events, times = self._events, self._times
        if not events or _key(new[0]) >= _key(events[-1]):
            start = len(events)
            events.extend(new)
            times.extend(e[1] for e in new)
        else:
            start = bisect_right(times, new[0][1])
            while start > 0 and times[start - 1] == new[0][1] and \
                    _key(events[start - 1]) > _key(new[0]):
                start -= 1
            tail = sorted(events[start:] + new, key=_key)
            del events[start:], times[start:]
            events.extend(tail)
            times.extend(e[1] for e in tail)
        self.changed_from = start
        return start

    def index_at_time(self, t_ns: int) -> int:
        """Index of the last event at or before ``t_ns`` (-1 before the first)."""
        return bisect_right(self._times, t_ns) - 1

    @property
    def times(self) -> list[int]:
        return self._times
