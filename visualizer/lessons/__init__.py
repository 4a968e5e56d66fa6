"""The built-in lessons, in the lecture's order. ``LESSONS`` maps name -> Lesson."""
from __future__ import annotations

import importlib

from .base import LANGS, Lesson, LessonError, Prepared, Step, prepare

# Module per lesson group; each defines ``LESSONS``: a list of Lesson.
_MODULES = ("basics", "models", "kernel")
ORDER = ("first-request", "static-pages", "threads", "nonblocking", "keep-alive", "epoll",
         "time-wait", "close-wait", "backlog", "regex")


def all_lessons() -> dict[str, Lesson]:
    found: dict[str, Lesson] = {}
    for name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        for lesson in module.LESSONS:
            found[lesson.name] = lesson
    rank = {n: i for i, n in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: rank.get(kv[0], len(rank))))


__all__ = ["LANGS", "Lesson", "LessonError", "Prepared", "Step", "prepare", "all_lessons",
           "ORDER"]
