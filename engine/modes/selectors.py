"""selectors: the portable multiplexer (kqueue on macOS/BSD, select on Windows,
epoll on Linux), level-triggered like the lecture's select() server. The
default mode where epoll does not exist. The loop is the readiness loop of
select and poll (``engine.modes.readiness``); only the multiplexer differs.
"""
from __future__ import annotations

from .readiness import Multiplexer, ReadinessServer, SelectorsMux


class SelectorsServer(ReadinessServer):
    mode = "selectors"

    def make_mux(self) -> Multiplexer:
        return SelectorsMux()
