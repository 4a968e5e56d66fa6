"""The timeline model: plain Python, no Qt (import-linter checks it).

``EventLog`` keeps every event from every source in time order; the reducers
in ``state`` fold events into the picture of the server at one moment;
``Timeline`` holds the cursor and snapshots, so that stepping back, seeking
and replay cost a bounded amount of folding. Views render ``Timeline.state``
and keep no history of their own.

Beside it, what the views compute from the log, shared and just as Qt-free:
``index`` (the log indices of some kinds, decoded values cached), ``series``
(values read from events, kept by log index), ``lifecycle`` (each connection's
first events, handshakes, bars and costs, the time axis) and ``text`` (ports,
durations, ready masks as the views write them).
"""
from .log import EventLog
from .state import ConnectionState, ServerState, apply
from .timeline import Timeline, open_trace

__all__ = ["EventLog", "ConnectionState", "ServerState", "apply", "Timeline", "open_trace"]
