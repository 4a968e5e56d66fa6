"""The I/O modes: one registry that the engine, the command line, the window and the
tests all read, and one module per mode holding only its loop (see ``engine.server``).

Adding a mode is one file here (a ``Server`` subclass with ``_run``) and one
``Mode`` entry below; the io view draws it with the picture the entry names.
"""
from __future__ import annotations

import importlib
import select
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..server import Server


def _always() -> tuple[bool, str]:
    return True, ""


def _needs(attr: str, why: str) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        return (True, "") if hasattr(select, attr) else (False, why)
    return check


@dataclass(frozen=True)
class Mode:
    name: str  # --mode NAME, the trace's mode event
    label: str  # the window's list (English; the window translates it)
    section: str  # where the lecture builds this server
    module: str  # engine.modes.<module>
    cls: str  # the Server subclass in it
    # What the io view draws: "readiness" (an interest set and what each wait
    # returned), "threads" (a lane per thread), "sweep" (every socket tried in turn),
    # "single" (the one client served, the others queued), "coroutines" (a lane per
    # greenlet or task, and the loop that runs them underneath), "processes" (the
    # parent and a lane per child, with each process's descriptors of the socket).
    picture: str
    triggers: tuple[str, ...] = ("level",)  # epoll alone has an edge
    available: Callable[[], tuple[bool, str]] = _always  # (runs here?, why not)
    # Each connection served by blocking calls: no TCP_NODELAY on its socket, so Nagle
    # shapes its segments (the deriver must know).
    blocking: bool = False
    concurrent: bool = True  # serves many clients at once (single does not, on purpose)

    def load(self) -> type[Server]:
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.cls)


REGISTRY: dict[str, Mode] = {m.name: m for m in (
    Mode("single", "one client at a time", "3.1", "single", "SingleServer", "single",
         blocking=True, concurrent=False),
    Mode("processes", "a process per connection", "3.4", "processes", "ProcessesServer",
         "processes", available=lambda: importlib.import_module(f"{__name__}.processes").available(),
         blocking=True),
    Mode("threaded", "threaded", "3.4", "threaded", "ThreadedServer", "threads",
         blocking=True),
    Mode("gevent", "gevent", "3.5", "greenlets", "GeventServer", "coroutines",
         available=lambda: importlib.import_module(f"{__name__}.greenlets").available(),
         blocking=True),
    Mode("nonblocking", "non-blocking polling", "3.6", "nonblocking", "NonBlockingServer",
         "sweep"),
    Mode("select", "select", "3.9", "readiness", "SelectServer", "readiness"),
    Mode("poll", "poll", "3.9", "readiness", "PollServer", "readiness",
         available=_needs("poll", "this system has no poll(): use selectors")),
    Mode("epoll", "epoll", "3.9", "epoll", "EpollServer", "readiness", ("level", "edge"),
         available=_needs("epoll", "epoll is Linux's: use selectors here")),
    Mode("selectors", "selectors", "3.9", "selectors", "SelectorsServer", "readiness"),
    # not in the lecture: what a student would write today
    Mode("asyncio", "asyncio", "3.9+", "aio", "AsyncioServer", "coroutines"),
)}


def mode(name: str) -> Mode:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}: choose one of {', '.join(REGISTRY)}") from None


def variants() -> list[tuple[str, str]]:
    """Every (mode, trigger) the engine runs: what tests and the window list."""
    return [(m.name, t) for m in REGISTRY.values() for t in m.triggers]


def picture(name: str) -> str:
    """The io view's picture for a mode named in a trace (a trace from a mode this
    version does not know gets the readiness picture if it waits, else none)."""
    found = REGISTRY.get(name)
    return found.picture if found is not None else ""
