"""Lessons on the I/O models: a thread per connection (3.4–3.5), non-blocking
polling (3.6) and epoll, level vs edge (3.9), each written as a lesson file."""
from __future__ import annotations

from .files import FILES
from .files import load as load_file


# ---------------------------------------------------------------- threads (3.4–3.5)
# Written as a lesson file (files/threads.toml).
THREADS = load_file(FILES / "threads.toml")


# ---------------------------------------------------------------- nonblocking (3.6)
# Written as a lesson file (files/nonblocking.toml).
NONBLOCKING = load_file(FILES / "nonblocking.toml")


# ---------------------------------------------------------------- epoll (3.9)
# Written as a lesson file (files/epoll.toml).
EPOLL = load_file(FILES / "epoll.toml")


def _epoll_needs() -> tuple[bool, str]:
    import select
    if not hasattr(select, "epoll"):
        return False, ("epoll is a Linux interface and this system has none (elsewhere "
                       "SockScope's selectors mode does the same work with kqueue or select)")
    return True, ""


LESSONS = [THREADS, NONBLOCKING, EPOLL]
