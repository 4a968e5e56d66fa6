"""The kernel's word on the states the segments gave: confirmed or contradicted.

``SegmentStates`` places every state change at its segment; the kernel can
be asked too, two ways: the ``sock:inet_sock_set_state`` tracepoint (root:
every transition, at the kernel's own time) and sock_diag polls (anyone: the
state a socket had at the poll). Their reports arrive as ``state_check``
events. ``StateChecks`` holds each one a moment (``hold``: the capture and
the tracepoint reader run in their own threads and may deliver after the
check) and then compares it with the states the segments gave that end:

- a traced transition *confirms* when the segments made that end enter the
  same state within ``TRACED_SLACK_NS`` (0.5 ms) of the kernel's time, or, for
  segments derived from the syscalls (dated by the calls, not by the wire),
  within ``DERIVED_SLACK_NS`` (a report where only the socket's form changes,
  LISTEN -> SYN_RECV or FIN_WAIT_2 -> FIN_WAIT_2, confirms a state held then);
- an observed state *confirms* when the segments had that end in that state at
  some moment of the dump that saw it (from ``seen_from_ns``, when the dump
  began, to the report; ``OBSERVED_WINDOW_NS`` where a report lacks it;
  ``DERIVED_SLACK_NS`` more on each side for derived segments);
- otherwise it *contradicts*, and carries ``inferred``: what the segments said.

Where the segments cannot speak, the kernel's word is the state: a report of
a connection the segments never showed, from the tracepoint (a remote
peer's; a capture that lost the SYN), and a socket gone (CLOSED) that no
segment explains (a timer gave up).

Each check is passed on with ``verdict`` ("confirms" / "contradicts") and, for
a contradiction, ``inferred``. A check of a connection the segments never
showed (no SYN seen) has no verdict.

The kernel observer reports plain ``tcp_state`` events (it does not know what
else runs). They are held the same moment, then: for a connection the segments
show, a report becomes a ``state_check`` and is judged; it stays a state where
only the poll can tell it, for a connection the segments never showed (its SYN
was before the capture began), for a socket that was already there when the
observer started (``previous`` None), and for TIME_WAIT's end (a timer, no
segment). Deciding after the hold, not as the report comes, matters: under
load the capture may deliver a connection's SYN after the poll that saw it.
Every other event passes straight through.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Callable

from ..clock import Clock
from ..events import Event

TRACED_SLACK_NS = 500_000
# Derived segments are dated by the calls that reveal them, and a loaded machine may
# report a call (a thread preempted after connect() returned) a good while late.
DERIVED_SLACK_NS = 250_000_000
OBSERVED_WINDOW_NS = 10_000_000
_HOLD_S = 0.1
_OVER = frozenset({"CLOSED", "TIME_WAIT"})
_REMEMBER = 20_000  # connections whose state history is kept


class StateChecks:
    """A sink for the segments' ``tcp_state`` events (``record``) and for the
    kernel's reports (``__call__``), forwarding to ``sinks``."""

    def __init__(self, sinks: list[Callable[[Event], None]], *, hold: float = _HOLD_S,
                 clock: Callable[[], int] | None = None) -> None:
        self.sinks = list(sinks)
        self.hold = hold
        # ``clock`` (ns): the time up to which the segments' states have been given (the
        # kernel side's process, fed the engine's events late): a report is judged once
        # it is ``hold`` past the report's own time by that clock, not by the wall's.
        self._clock_ns = clock
        # (conn, side) -> [(t_ns, state)], in time order
        self._history: OrderedDict[tuple[str, str], list[tuple[int, str]]] = OrderedDict()
        self._derived: set[tuple[str, str]] = set()  # ends whose states come from derived segments
        self._pending: deque[tuple[float, Event]] = deque()
        self._lock = threading.Lock()
        self._clock = Clock("sockscope-checks", hold / 4, self.flush,
                            lambda: self.flush(everything=True))
        self.verdicts = {"confirms": 0, "contradicts": 0, "none": 0}

    # ------------------------------------------------------------ input
    def record(self, event: Event) -> None:
        """The segments' state changes (sink of ``SegmentStates``' probe)."""
        if event.kind != "tcp_state" or event.conn is None:
            return
        side = event.data.get("side")
        key = (event.conn, str(side))
        with self._lock:
            history = self._history.get(key)
            if history is None:
                history = self._history[key] = []
                if len(self._history) > 2 * _REMEMBER:
                    self._derived.discard(self._history.popitem(last=False)[0])
            history.append((event.t_ns, str(event.data.get("state"))))
            if event.data.get("origin") == "derived":
                self._derived.add(key)
            if len(history) > 1 and history[-2][0] > event.t_ns:
                history.sort()

    def __call__(self, event: Event) -> None:
        if event.kind != "state_check" and not (
                event.kind == "tcp_state" and event.data.get("source") == "observed"):
            self._forward(event)
            return
        due = self._now() + self.hold
        if self._clock_ns is not None:  # (not before the report's own time by that clock)
            due = max(due, event.t_ns / 1e9 + self.hold)
        with self._lock:
            self._pending.append((due, event))

    def _now(self) -> float:
        """Seconds: the wall clock's, or the feed's where one was given."""
        return time.monotonic() if self._clock_ns is None else self._clock_ns() / 1e9

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "StateChecks":
        self._clock.start()
        return self

    def stop(self) -> None:
        """Stop the clock, then judge and pass on every check still held."""
        self._clock.stop()

    def flush(self, everything: bool = False) -> None:
        """Judge and pass on the checks held long enough (all of them at the end)."""
        now = self._now()
        while True:
            with self._lock:
                if not self._pending or (not everything and self._pending[0][0] > now):
                    return
                _, event = self._pending.popleft()
                judged = self._judge(event)
            self._forward(judged)

    # ------------------------------------------------------------ verdict
    def _judge(self, event: Event) -> Event:
        d = event.data
        key = (str(event.conn), str(d.get("side")))
        history = self._history.get(key)
        state, previous, t = d.get("state"), d.get("previous"), event.t_ns
        if history and state == "CLOSED" and _state_at(history, t) not in _OVER:
            # The socket is gone and no segment the segments saw explains it (a timer
            # gave up: FIN_WAIT_2's, a SYN's retries): the kernel's word is the state.
            return event._replace(kind="tcp_state")
        if event.kind == "tcp_state":  # the observer's: a check where the segments speak
            if not history or previous is None or (previous == "TIME_WAIT" and state == "CLOSED"):
                return event
            event = event._replace(kind="state_check")
        if not history:
            if d.get("source") == "traced":  # no segments of it (a remote peer's, a lost
                return event._replace(kind="tcp_state")  # capture): the kernel's own word
            self.verdicts["none"] += 1
            return event
        if d.get("source") == "traced":
            slack = DERIVED_SLACK_NS if key in self._derived else TRACED_SLACK_NS
            if d.get("kernel") == "TCP_CLOSE" and previous == "FIN_WAIT_2":
                # "Became a time-wait socket": in TIME_WAIT, or still in its FIN_WAIT2
                # sub-state when no FIN came (which only the segment tells).
                ok = bool({"FIN_WAIT_2", "TIME_WAIT"}
                          & _states_during(history, t - slack, t + slack))
            elif previous in (state, "LISTEN"):
                # The socket changed form, not state: a time-wait socket in FIN_WAIT2, the
                # full socket made from a half-open one (whose SYN_RECV began at its
                # SYN|ACK). The segments must have had that end in that state then.
                ok = state in _states_during(history, t - slack, t + slack)
            else:  # a transition: the segments made the same one at the same moment
                ok = any(s == state and t - slack <= when <= t + slack for when, s in history)
        else:  # a poll: the state some moment of its dump saw, up to the report
            seen = d.get("seen_from_ns")
            lo = int(seen) if isinstance(seen, int) and 0 < seen <= t else t - OBSERVED_WINDOW_NS
            hi = t
            if key in self._derived:  # segments the calls date: they may be that far off
                lo, hi = lo - DERIVED_SLACK_NS, hi + DERIVED_SLACK_NS
            ok = state in _states_during(history, lo, hi)
        if ok:
            self.verdicts["confirms"] += 1
            return event._replace(data={**d, "verdict": "confirms"})
        self.verdicts["contradicts"] += 1
        return event._replace(data={**d, "verdict": "contradicts",
                                    "inferred": _state_at(history, t)})

    def _forward(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:  # a broken sink must not stop the checks
                pass


def _state_at(history: list[tuple[int, str]], t: int) -> str | None:
    state = None
    for when, s in history:
        if when > t:
            break
        state = s
    return state


def _states_during(history: list[tuple[int, str]], lo: int, hi: int) -> set[str]:
    """Every state the end was in at some moment of [lo, hi]."""
    held = set()
    before = _state_at(history, lo)
    if before is not None:
        held.add(before)
    for when, s in history:
        if lo < when <= hi:
            held.add(s)
    return held


__all__ = ["StateChecks", "TRACED_SLACK_NS", "DERIVED_SLACK_NS", "OBSERVED_WINDOW_NS"]
