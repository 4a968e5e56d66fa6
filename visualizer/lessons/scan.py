"""select and poll against epoll (lecture 3.9): the same hundred keep-alive clients
served three times. Written as a lesson file (files/scan.toml): select() and poll()
are handed every watched fd on every call; epoll keeps the interest list in the
kernel (the file counts it from epoll_ctl's ADDs and DELs) and hands back the ready
fds only."""
from __future__ import annotations

from .files import FILES
from .files import load as load_file

SCAN = load_file(FILES / "scan.toml")

LESSONS = [SCAN]
