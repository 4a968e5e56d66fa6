"""The built-in lessons, in the lecture's order."""
from __future__ import annotations

from .base import LANGS, Lesson, LessonError, Prepared, Step, prepare

ORDER = ("first-request", "static-pages", "single", "processes", "threads", "gevent",
         "nonblocking", "keep-alive", "epoll", "scan", "asyncio", "c10k", "time-wait", "close-wait",
         "backlog", "regex")


def all_lessons() -> dict[str, Lesson]:
    """name -> Lesson, in ``ORDER``."""
    from . import basics, c10k, kernel, models, scan, servers, single  # each defines LESSONS
    found = {lesson.name: lesson for module in (basics, single, servers, models, scan, c10k,
                                                kernel)
             for lesson in module.LESSONS}
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: rank.get(kv[0], len(rank))))


__all__ = ["LANGS", "Lesson", "LessonError", "Prepared", "Step", "prepare", "all_lessons",
           "ORDER"]
