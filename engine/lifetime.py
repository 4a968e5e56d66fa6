"""A child process that must not outlive the one that started it."""
from __future__ import annotations

import sys


def die_with_parent() -> None:
    """For ``preexec_fn``, on Linux: the child gets SIGTERM when its parent dies, however it
    dies (SIGKILL included), and is never left serving on its own. Elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
