"""The lecture's other servers, written as lesson files (files/*.toml), recorded for real:

- processes (3.4's remark on processes): fork() gives the child a copy of the
  connected socket's descriptor; the kernel closes the socket (FIN) only when the
  last descriptor is closed. With and without the bug of a parent that keeps its copy.
- gevent (3.5): a greenlet per connection on one OS thread; a recv() that would block
  parks the greenlet, and the hub's epoll_wait wakes it.
- asyncio: a task per connection; the event loop's callbacks read for the tasks'
  streams, and the tasks parse and answer.
"""
from __future__ import annotations

import os

from .files import FILES
from .files import load as load_file


# --------------------------------------------------------------------------- processes
# Written as a lesson file (files/processes.toml).
def _needs_fork() -> tuple[bool, str]:
    if not hasattr(os, "fork"):
        return False, "this system has no fork() (Windows)"
    return True, ""


PROCESSES = load_file(FILES / "processes.toml")


# --------------------------------------------------------------------------- gevent, asyncio
# Written as lesson files (files/gevent.toml, files/asyncio.toml).
def _needs_gevent() -> tuple[bool, str]:
    from engine.modes import REGISTRY
    return REGISTRY["gevent"].available()


GEVENT = load_file(FILES / "gevent.toml")
ASYNCIO = load_file(FILES / "asyncio.toml")

LESSONS = [PROCESSES, GEVENT, ASYNCIO]
