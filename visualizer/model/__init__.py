"""The timeline model: plain Python, no Qt (import-linter checks it).

``EventLog`` keeps every event from every source in time order; the reducers
in ``state`` fold events into the picture of the server at one moment;
``Timeline`` holds the cursor and snapshots, so that stepping back, seeking
and replay cost a bounded amount of folding. Views render ``Timeline.state``
and keep no history of their own.
"""
from .log import EventLog
from .state import ConnectionState, ServerState, apply
from .timeline import Timeline, open_trace

__all__ = ["EventLog", "ConnectionState", "ServerState", "apply", "Timeline", "open_trace"]
