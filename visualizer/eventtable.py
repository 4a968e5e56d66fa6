"""The event log as a Qt table: every event of the timeline, filterable."""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

from PySide6.QtCore import (QT_TRANSLATE_NOOP, QAbstractTableModel, QModelIndex,
                            QPersistentModelIndex, Qt)

from engine.events import Event

from .model import EventLog

# The headings, translated where shown (lupdate finds them here).
COLUMNS = ("#", QT_TRANSLATE_NOOP("EventTableModel", "time (ms)"),
           QT_TRANSLATE_NOOP("EventTableModel", "source"),
           QT_TRANSLATE_NOOP("EventTableModel", "kind"),
           QT_TRANSLATE_NOOP("EventTableModel", "connection"),
           QT_TRANSLATE_NOOP("EventTableModel", "fd"),
           QT_TRANSLATE_NOOP("EventTableModel", "details"))
Index = QModelIndex | QPersistentModelIndex


def details(e: Event) -> str:
    return "  ".join(f"{k}={v}" for k, v in e.data.items())


class EventTableModel(QAbstractTableModel):
    """Rows are log indices that pass the filter; appending keeps them in step."""

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self.log = log
        self.rows: list[int] | range = range(0)  # a range while unfiltered: no list of 1M ints
        self.filter_text = ""
        # Structured criteria, answered from the log's columns (no decoding).
        self.criteria: dict[str, Any] = {}
        self._t0: int | None = None

    def set_log(self, log: EventLog) -> None:
        self.beginResetModel()
        self.log = log
        self._t0 = None
        self._refilter()
        self.endResetModel()

    def matches(self, e: Event) -> bool:
        """Words all present in kind, source, connection, fd or details."""
        if not self.filter_text:
            return True
        hay = f"{e.kind} {e.src} {e.conn} fd={e.fd} {details(e)}".lower()
        return all(word in hay for word in self.filter_text.lower().split())

    def set_filter(self, text: str) -> None:
        self.beginResetModel()
        self.filter_text = text.strip()
        self._refilter()
        self.endResetModel()

    def set_criteria(self, *, kind: str | None = None, src: str | None = None,
                     conn: str | None = None, fd: int | None = None) -> None:
        """Only events of this kind, source, connection and fd (None: any)."""
        criteria = {k: v for k, v in (("kinds", [kind] if kind else None), ("src", src),
                                      ("conn", conn), ("fd", fd)) if v is not None}
        if criteria == self.criteria:
            return
        self.beginResetModel()
        self.criteria = criteria
        self._refilter()
        self.endResetModel()

    def _select(self, start: int) -> list[int]:
        """Indices from ``start`` that pass the criteria and the text."""
        if self.criteria:
            found = self.log.indices(start=start, **self.criteria).tolist()
        else:
            found = list(range(start, len(self.log)))
        if self.filter_text:
            log = self.log
            found = [i for i in found if self.matches(log[i])]
        return found

    def _refilter(self) -> None:
        if not self.filter_text and not self.criteria:
            self.rows = range(len(self.log))
        else:
            self.rows = self._select(0)

    def sync(self, changed_from: int | None) -> None:
        """Bring the rows up to date after the log grew (or merged from ``changed_from``)."""
        if changed_from is None:
            return
        if self.rows and changed_from <= self.rows[-1]:
            self.beginResetModel()
            self._refilter()
            self.endResetModel()
            return
        if isinstance(self.rows, range):
            count = len(self.log) - len(self.rows)
            if count > 0:
                first = len(self.rows)
                self.beginInsertRows(QModelIndex(), first, first + count - 1)
                self.rows = range(len(self.log))
                self.endInsertRows()
            return
        new = self._select(changed_from)
        if new:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self.rows.extend(new)
            self.endInsertRows()

    def row_of(self, log_index: int) -> int:
        if isinstance(self.rows, range):
            return max(0, min(log_index, len(self.rows) - 1))
        return max(0, bisect_right(self.rows, log_index) - 1)

    # Qt --------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.tr(COLUMNS[section])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        i = self.rows[index.row()]
        e = self.log[i]
        if self._t0 is None and len(self.log):
            self._t0 = self.log[0].t_ns
        col = index.column()
        if col == 0:
            return i
        if col == 1:
            return f"{(e.t_ns - (self._t0 or 0)) / 1e6:.3f}"
        if col == 2:
            return e.src
        if col == 3:
            return e.kind
        if col == 4:
            return e.conn or ""
        if col == 5:
            return "" if e.fd < 0 else e.fd
        return details(e)
