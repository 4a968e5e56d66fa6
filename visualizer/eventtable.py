"""The event log as a Qt table: every event of the timeline, filterable."""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from engine.events import Event

from .model import EventLog

COLUMNS = ("#", "time (ms)", "source", "kind", "connection", "fd", "details")
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

    def _refilter(self) -> None:
        if not self.filter_text:
            self.rows = range(len(self.log))
        else:
            self.rows = [i for i, e in enumerate(self.log) if self.matches(e)]

    def sync(self, changed_from: int | None) -> None:
        """Bring the rows up to date after the log grew (or merged from ``changed_from``)."""
        if changed_from is None:
            return
        if self.rows and changed_from <= self.rows[-1]:
            self.beginResetModel()
            self._refilter()
            self.endResetModel()
            return
        if not self.filter_text:
            count = len(self.log) - len(self.rows)
            if count > 0:
                first = len(self.rows)
                self.beginInsertRows(QModelIndex(), first, first + count - 1)
                self.rows = range(len(self.log))
                self.endInsertRows()
            return
        new = [i for i in range(changed_from, len(self.log)) if self.matches(self.log[i])]
        if new:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            assert isinstance(self.rows, list)
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
