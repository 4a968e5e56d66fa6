"""The built-in lessons, in the lecture's order."""
from __future__ import annotations

from .base import LANGS, Lesson, LessonError, Prepared, Step, prepare

ORDER = ("first-request", "static-pages", "single", "processes", "threads", "gevent",
         "nonblocking", "keep-alive", "epoll", "scan", "asyncio", "c10k", "time-wait", "close-wait",
         "backlog", "lost-ack", "regex")


def all_lessons() -> dict[str, Lesson]:
    """name -> Lesson, in ``ORDER``."""
    from . import basics, c10k, kernel, models, scan, servers, single  # each defines LESSONS
    found = {lesson.name: lesson for module in (basics, single, servers, models, scan, c10k,
                                                kernel)
             for lesson in module.LESSONS}
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def find_lesson(name: str) -> Lesson | None:
    """A built-in lesson by name, or the lesson a file describes (a path ending in .toml,
    or with a folder in it); None when no built-in lesson has that name. A file that
    cannot be used raises ``LessonFileError`` (its path, line, and what is wrong)."""
    from .files import is_file, load
    if is_file(name):
        return load(name)
    return all_lessons().get(name)


__all__ = ["LANGS", "Lesson", "LessonError", "Prepared", "Step", "prepare", "all_lessons",
           "find_lesson", "ORDER"]
