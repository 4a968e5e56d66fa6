"""The pictures. Each module holds one view; ``view_classes`` gives them in tab order."""
from __future__ import annotations

from .base import View


def view_classes() -> list[type[View]]:
    """The view classes, in tab order. Their ``name`` is what ``replay --view NAME`` takes."""
    # Imported here, not at the top: the views import Qt's graphics and pyqtgraph,
    # which ``views.style`` and ``views.base`` users do not need.
    from .diagram import DiagramView
    from .http import HttpView
    from .io import IoView
    from .lifecycle import LifecycleView
    from .plots import PlotsView
    from .sequence import SequenceView
    from .sockets import SocketsView
    return [SequenceView, LifecycleView, IoView, PlotsView, HttpView, SocketsView, DiagramView]


__all__ = ["View", "view_classes"]
