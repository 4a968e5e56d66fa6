"""C10K (after lecture 3.9): ten thousand idle keep-alive clients, held four ways (a
thread per connection, select, poll, epoll). Written as a lesson file (files/c10k.toml):
its clients are the ``idle-10k`` script (scripts.py), what each server pays is read
from its own ``cpu`` samples and its waits."""
from __future__ import annotations

from .files import FILES
from .files import load as load_file

C10K = load_file(FILES / "c10k.toml")

LESSONS = [C10K]
