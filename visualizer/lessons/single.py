"""The lecture's first server (3.1, 3.3): one client at a time. Written as a lesson file
(files/single.toml): its clients are the ``slow-and-queued`` script (scripts.py), its
steps anchored by what the events are."""
from __future__ import annotations

from .files import FILES
from .files import load as load_file

SINGLE = load_file(FILES / "single.toml")

LESSONS = [SINGLE]
