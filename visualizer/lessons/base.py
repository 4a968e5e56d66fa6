"""Lessons: scenarios that retell the lecture on a real server, step by step.

A lesson records a real run (``record`` starts the engine and its clients,
or a script of its own, and writes a trace), then narrates it: each
``Step`` finds the event it talks about in the recorded log, names the view
that shows it best and says what to look at, in English and in Chinese. The
window walks the steps with PageDown/PageUp (what a presentation clicker
sends). ``check`` states what the run must show for the lesson to be true
(tests call it: lesson 7 really hits EADDRINUSE...).

No Qt here: lessons are recorded, checked and listed headless.
"""
from __future__ import annotations

import codecs
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.events import Event

from ..model import EventLog, Timeline, open_trace

REPO = Path(__file__).resolve().parents[2]
LANGS = ("en", "zh_CN")
Text = dict  # {"en": "...", "zh_CN": "..."}


class LessonError(RuntimeError):
    """The run did not show what the lesson teaches (or could not be recorded)."""


@dataclass
class Step:
    text: Text  # the narration, per language
    find: Callable[[EventLog], int | None]  # the log index the step puts the cursor on
    view: str = "sequence"  # the view that shows it
    conn: Callable[[EventLog], str | None] | None = None  # the connection to select
    # What the class is asked to predict at the end of the step; the next step answers.
    # Presenting, it comes alone, on a key press of its own, before that answer.
    question: Text | None = None
    # The answers the class picks from (each a Text), and the right one's index: the
    # window checks a student's pick; presenting, the next key shows which was right.
    choices: list[Text] | None = None
    answer: int | None = None
    # The command line behind what the step shows, when it is not the default one
    # ("sockscope serve --never-close"): shown under the caption, never inside it.
    footnote: str | None = None


@dataclass
class Lesson:
    name: str
    title: Text
    section: str  # where it is in the lecture, e.g. "3.1"
    summary: Text  # one line: what it teaches
    record: Callable[[Path], Path]  # runs the scenario into a directory; returns the trace
    steps: Callable[[EventLog], list[Step]]
    check: Callable[[EventLog], None] = lambda log: None  # raises LessonError if not shown
    needs: Callable[[], tuple[bool, str]] = lambda: (True, "")  # can this machine run it?
    # Its number of steps, said before it is recorded (sockscope lessons): a number, or
    # what this machine will give (static-pages has a step more where Chromium runs).
    length: int | Callable[[], int] = 0

    def count(self) -> int:
        """The number of steps a recording on this machine gives."""
        return self.length() if callable(self.length) else self.length


@dataclass
class Prepared:
    """A recorded lesson: its timeline and its steps, each resolved to a log index."""
    lesson: Lesson
    timeline: Timeline
    trace: Path
    steps: list[Step] = field(default_factory=list)
    at: list[int] = field(default_factory=list)  # the log index of each step
    problems: list[str] = field(default_factory=list)

    def narration(self, k: int, lang: str = "en") -> str:
        """What step ``k`` shows and says, without its question."""
        t = self.steps[k].text
        return t.get(lang) or t["en"]

    def question(self, k: int, lang: str = "en") -> str | None:
        """What step ``k`` asks the class to predict (None if it asks nothing)."""
        q = self.steps[k].question
        return (q.get(lang) or q["en"]) if q else None

    def choices(self, k: int, lang: str = "en") -> list[str]:
        """The answers step ``k``'s question offers (none if it offers none)."""
        return [c.get(lang) or c["en"] for c in self.steps[k].choices or ()]

    def text(self, k: int, lang: str = "en") -> str:
        """The step's whole caption: the narration, then the question if it asks one."""
        said, asked = self.narration(k, lang), self.question(k, lang)
        if not asked:
            return said
        return said + ("" if lang.startswith("zh") else " ") + asked


LETTERS = "ABCDEF"  # a question's choices, lettered


def lettered(choices: list[str], answer: int | None = None, revealed: bool = False,
             mark: str = "{0} (right)", whole: bool = False) -> str:
    """The choices as a line of text, "A. ACK    B. SYN|ACK    C. FIN"; revealed, the right
    one marked ("✔ B. SYN|ACK (right)"; ``mark`` in the caption's language, "{0}（正确）")
    and the others kept, so that the class sees what it chose among. ``whole``: each
    choice's spaces do not break (a caption that wraps does so between choices)."""
    parts = []
    for k, choice in enumerate(choices):
        text = f"{LETTERS[k]}. {choice}"
        if revealed and k == answer:
            text = "✔ " + mark.format(text)
        parts.append(text.replace(" ", "\u00a0") if whole else text)
    return "    ".join(parts)


def prepare(lesson: Lesson, workdir: Path, trace: Path | None = None) -> Prepared:
    """Record the lesson's run (or take ``trace``, an earlier recording of it), check it
    teaches its point, resolve its steps."""
    if trace is None:
        ok, reason = lesson.needs()
        if not ok:
            raise LessonError(f"{lesson.name} cannot run here: {reason}")
        trace = lesson.record(Path(workdir))
    timeline, _, problems = open_trace(trace)
    log = timeline.log
    lost = [e for e in log if e.kind == "dropped" and e.data.get("sink") == "trace"]
    if lost:  # a recording with a hole would teach from half the story
        why = lost[-1].data.get("detail") or lost[-1].data.get("reason") or "the disk fell behind"
        raise LessonError(f"{lesson.name}: the recording lost "
                          f"{sum(int(e.data.get('count', 0)) for e in lost)} events ({why}); "
                          f"free some disk space and run it again")
    lesson.check(log)
    steps = lesson.steps(log)
    problems = list(problems)
    if lesson.count() and len(steps) != lesson.count():  # the list said otherwise: say so
        problems.append(f"{lesson.name}: this recording has {len(steps)} steps; "
                        f"sockscope lessons said {lesson.count()}")
    at: list[int] = []
    for k, step in enumerate(steps):
        index = step.find(log)
        if index is None:
            raise LessonError(f"{lesson.name}: step {k + 1} found nothing to show "
                              f"({step.text['en'][:60]}…)")
        at.append(max(settled(log, index), at[-1] if at else -1))  # never backwards
    return Prepared(lesson, timeline, trace, steps, at, problems)


_CAUSED = frozenset({"tcp_state", "state_check"})


def settled(log: EventLog, index: int) -> int:
    """A step on a segment shows the segment *and* the states it caused: the receiver's
    change is dated at the segment itself, one event later in the log. So the cursor
    goes past the state events of that connection at the segment's very time that it
    caused (a receiver's: a sender's change belongs to the segment it sends next)."""
    if index < 0 or index >= len(log) or log[index].kind != "packet":
        return index
    e = log[index]
    k = index
    while k + 1 < len(log):
        nxt = log[k + 1]
        if nxt.t_ns != e.t_ns or nxt.kind not in _CAUSED or nxt.conn != e.conn \
                or str(nxt.data.get("trigger", "rcv")).startswith("snd"):
            break
        k += 1
    return k


# ---------------------------------------------------------------- recording
class Engine:
    """A ``sockscope serve`` child a scenario drives: its output read line by line
    with bounded waits, its standard error in a file beside the trace, commands on
    its standard input (``control``). A thread reads the output pipe (Windows cannot
    wait on a pipe with select()); it ends when the child's output does."""

    def __init__(self, workdir: Path, name: str, *options: str, control: bool = False,
                 trace: bool = True) -> None:
        self.name = name
        self.trace = Path(workdir) / f"{name}.jsonl"
        self.err_path = Path(workdir) / f"{name}.err"
        args = [sys.executable, "-m", "engine", "serve", *options]
        if trace:
            args += ["--trace", str(self.trace)]
        self.output = ""
        self._err = open(self.err_path, "w")
        # Windows stops a child with Ctrl+Break sent to its own process group (SIGINT
        # cannot be sent there); elsewhere with SIGINT.
        group = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) if os.name == "nt" else 0
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.PIPE if control else subprocess.DEVNULL,
                                     creationflags=group)
        assert self.proc.stdout is not None
        self._eof = False
        self._chunks: queue.Queue[bytes] = queue.Queue()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._reader = threading.Thread(target=self._pump, args=(self.proc.stdout,),
                                        name=f"lesson-{name}-output", daemon=True)
        self._reader.start()

    def _pump(self, stream) -> None:  # type: ignore[no-untyped-def]
        """The reader thread: the child's output in chunks, then b"" at its end."""
        while True:
            try:
                chunk = stream.read1(65536)
            except (OSError, ValueError):  # closed under us (the child was killed)
                chunk = b""
            self._chunks.put(chunk)
            if not chunk:
                return

    @property
    def lines(self) -> list[str]:
        """The complete lines printed so far."""
        return self.output.split("\n")[:-1]

    def _read(self, timeout: float) -> None:
        if self._eof:
            time.sleep(min(timeout, 0.01))
            return
        try:
            chunk = self._chunks.get(timeout=max(0.0, timeout))
            while True:
                if not chunk:
                    self._eof = True
                    self.output += self._decoder.decode(b"", final=True)
                    return
                self.output += self._decoder.decode(chunk)
                chunk = self._chunks.get_nowait()  # and whatever else has come
        except queue.Empty:
            return

    def wait_for(self, wanted: str | Callable[[str], bool], timeout: float = 20.0,
                 count: int = 1) -> str:
        """The ``count``-th printed line that is ``wanted`` (or contains it), waiting,
        bounded; the engine is killed if it never comes."""
        match = (lambda line: wanted in line) if isinstance(wanted, str) else wanted
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if match(line)]
            if len(found) >= count:
                return found[count - 1]
            left = deadline - time.monotonic()
            if left <= 0 or (self._eof and self.proc.poll() is not None):
                self.kill()
                raise LessonError(f"{self.name}: the engine did not say what was expected "
                                  f"({wanted!r}; exit {self.proc.returncode}): "
                                  f"{self.stderr()[-300:]}{self.output[-300:]}")
            self._read(min(left, 0.2))

    def command(self, text: str) -> None:
        """A line on its standard input: a step, ``c``, ``load OPTIONS``, ``q``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 20.0, stop: bool = True) -> int:
        """Stop it (``q`` on stdin, else SIGINT) unless it stops by itself; its exit code."""
        if stop and self.proc.poll() is None:
            if self.proc.stdin is not None:
                try:
                    self.command("q")
                except OSError:
                    pass
            else:
                self.proc.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGINT)
                                      if os.name == "nt" else signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None or not self._eof:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise LessonError(f"{self.name}: the engine did not stop in {timeout:g} s")
            self._read(min(left, 0.2))
        return self._close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._close()

    def _close(self) -> int:
        self._reader.join(5)  # the child is gone: its output has ended, or ends now
        for f in (self.proc.stdout, self.proc.stdin):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._err.close()
        return int(self.proc.returncode)

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:  # the scenario failed before stopping it
            self.kill()


# ---------------------------------------------------------------- finding
def find(log: EventLog, kind: str | None = None, *, src: str | None = None,
         conn: str | None = None, nth: int = 0, after: int = -1,
         where: Callable[[Event], bool] | None = None) -> int | None:
    """The log index of the ``nth`` event (from 0; -1 the last) matching, after ``after``."""
    candidates = log.indices(kinds=[kind] if kind else None, src=src, conn=conn,
                             start=after + 1)
    if where is not None:
        candidates = [int(i) for i in candidates if where(log[int(i)])]
    else:
        candidates = [int(i) for i in candidates]
    try:
        return candidates[nth]
    except IndexError:
        return None


def packet(log: EventLog, flags: str, *, conn: str | None = None, nth: int = 0,
           after: int = -1) -> int | None:
    """The ``nth`` segment with exactly these flags ("SYN", "FIN|ACK"...)."""
    return find(log, "packet", conn=conn, nth=nth, after=after,
                where=lambda e: e.data.get("flags") == flags)


def first_conn(log: EventLog, src: str = "server") -> str | None:
    i = find(log, "accept", src=src)
    return log[i].conn if i is not None else None


def sender(e: Event) -> str:
    """Which end sent a packet: the server's port is the connection's second half."""
    server_port = int(str(e.conn).rsplit(":", 1)[1])
    return "server" if e.data.get("sport") == server_port else "client"


def fin(log: EventLog, conn: str | None, nth: int = 0) -> int | None:
    return find(log, "packet", conn=conn, nth=nth,
                where=lambda e: "FIN" in str(e.data.get("flags")))


def first_fin_side(log: EventLog, conn: str) -> str | None:
    """The end that sent the connection's first FIN: from its packets (captured or
    derived), else from whichever end's close() came first."""
    i = fin(log, conn)
    if i is not None:
        return sender(log[i])
    i = find(log, "close", conn=conn)
    return log[i].src if i is not None else None
