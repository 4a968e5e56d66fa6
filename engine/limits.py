"""The open-files limit: a server that holds ten thousand connections needs ten
thousand descriptors, and most systems start a process with a soft limit of 1,024."""
from __future__ import annotations

import sys

SPARE_FDS = 64  # beside the connections: listener, trace, pipes, the kernel's files


def raise_open_files(wanted: int) -> tuple[int, int, str | None]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit.

    Returns (soft before, soft now, a sentence if ``wanted`` descriptors still do not
    fit). Where there are no such limits (Windows), (0, 0, None)."""
    try:
        import resource
    except ImportError:
        return 0, 0, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = soft
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted, 1 << 20)
        if sys.platform == "darwin":  # macOS refuses more than OPEN_MAX per process
            target = min(target, 10_240)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                new = target
            except (ValueError, OSError):
                pass
    problem = None
    if new != resource.RLIM_INFINITY and new < wanted:
        problem = (f"the open-files limit is {new} (hard {hard}), fewer than the {wanted} "
                   f"descriptors asked for; raise it (ulimit -Hn, prlimit --nofile) or ask less")
    return soft, new, problem
