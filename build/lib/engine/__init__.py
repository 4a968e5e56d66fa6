"""SockScope's engine: a real static web server whose every step is recorded.

It never imports Qt: ``sockscope serve`` and ``sockscope load`` run headless,
and tests run a server in-process with an in-memory sink.
"""
from .events import Event, MemorySink, Probe
from .server import MODES, Server, ServerConfig, create_server

__all__ = ["Event", "MemorySink", "Probe", "MODES", "Server", "ServerConfig", "create_server"]
__version__ = "0.1.0"
