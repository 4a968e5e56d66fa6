"""The pictures. Each module holds one view; ``VIEWS`` lists them in tab order."""
from __future__ import annotations

import importlib

from .base import View

# name -> module; the names are what ``sockscope replay --view NAME`` takes.
VIEW_MODULES = ("sequence", "lifecycle", "io", "plots", "http", "sockets")


def view_classes() -> list[type[View]]:
    """The view classes, in tab order."""
    classes = []
    for name in VIEW_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue  # not built yet
        classes.extend(c for c in vars(module).values()
                       if isinstance(c, type) and issubclass(c, View) and c.name == name)
    return classes


__all__ = ["View", "view_classes", "VIEW_MODULES"]
