"""Lessons on requests and connections: the first request (3.1), pages, pictures
and a 404 (3.3), short vs keep-alive connections (3.7–3.8), and the regular
expression that cuts the path out of the request line (1)."""
from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from .base import Engine, LessonError
from .files import FILES
from .files import load as load_file

# ---------------------------------------------------------------- first-request
# Written as a lesson file (files/first-request.toml): the format anyone can use.
FIRST_REQUEST = load_file(FILES / "first-request.toml")

LESSONS = [FIRST_REQUEST]


# ---------------------------------------------------------------- serve in the background
# How the recordings watch the kernel: states polled every millisecond (observed
# where sock_diag answers, else inferred), packets captured where allowed, else
# derived. Tests replace it to record as an unprivileged machine would.
OBSERVING: tuple[str, ...] = ("--kernel-interval", "0.001")


class _Served(Engine):
    """``sockscope serve --port 0`` running in the background while a scenario drives
    it: ready once it says where it serves and that it records (the kernel observer
    and the capture run by then: nothing of the scenario is missed)."""

    def __init__(self, workdir: Path, name: str, *options: str, control: bool = False,
                 timeout: float = 15.0) -> None:
        super().__init__(workdir, name, "--port", "0", *options,
                         *(["--control"] if control else []), control=control)
        self.options = options  # serve's options (a script may read its --mode)
        self.after_stop: list[Callable[[], None]] = []  # a script's, once the engine is gone
        self.stop_timeout = 10.0  # seconds it may take to stop (10,000 threads: more)
        first = self.wait_for(lambda line: True, timeout)
        match = re.search(r" at (http://\S+/)", first)
        if match is None:
            self.kill()
            raise LessonError(f"{name}: serve said {first!r}, not where it serves")
        self.url = match.group(1)
        self.wait_for(lambda line: line.startswith("recording events to"), timeout)

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def wait_loads(self, count: int, timeout: float = 15.0) -> None:
        self.wait_for(lambda line: line.startswith("connections opened:"), timeout, count)

    def stop(self, timeout: float | None = None) -> Path:
        """Stop it (it finishes its trace); the trace, or LessonError if it failed."""
        code = self.finish(self.stop_timeout if timeout is None else timeout)
        if code not in (0, -signal.SIGINT):
            raise LessonError(f"{self.name}: the engine failed ({code}): "
                              f"{self.stderr().strip()[-300:]}")
        return self.trace

    quit = stop


# ---------------------------------------------------------------- static-pages
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-extensions",
                 "--virtual-time-budget=3000")


def _chromium() -> str | None:
    """Debian's chromium (or another Chromium) on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")


def browse(browser: str, url: str, workdir: Path, lesson: str) -> None:
    """Headless Chromium loads ``url`` (its page, stylesheet, pictures) with a profile of
    its own, thrown away after; LessonError if it fails or takes over a minute."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))
    try:
        done = subprocess.run([browser, *BROWSER_FLAGS, f"--user-data-dir={profile}",
                               "--dump-dom", url],
                              check=False, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise LessonError(f"{lesson}: chromium did not finish loading {url}") from exc
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if done.returncode != 0:
        raise LessonError(f"{lesson}: chromium failed ({done.returncode}) on {url}: "
                          f"{done.stderr.strip()[-300:]}")


# Written as a lesson file (files/static-pages.toml): headless Chromium where it runs,
# the built-in clients in its place where it does not.
STATIC_PAGES = load_file(FILES / "static-pages.toml")
LESSONS.append(STATIC_PAGES)


# ---------------------------------------------------------------- keep-alive
# Written as a lesson file (files/keep-alive.toml).
KEEP_ALIVE = load_file(FILES / "keep-alive.toml")
LESSONS.append(KEEP_ALIVE)


# ---------------------------------------------------------------- regex
# Written as a lesson file (files/regex.toml; its client is scripts.py's lecture-targets).
def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded: it closes after its answer)."""
    chunks = []
    for _ in range(1000):
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


REGEX = load_file(FILES / "regex.toml")

LESSONS.append(REGEX)
