"""Sockets: what ``ss -tan`` would print for the server's port at the cursor.

One row for the listening socket (Recv-Q: the accept queue's length, Send-Q:
the backlog, as ``ss`` shows them) and two rows per connection: the server's
end (local = the server's address) and the client's end, which on a lab
machine is a socket of this machine too (local = the client's address).
Sockets that are CLOSED at the cursor are not listed.

Where each row comes from is said in its Source column:

* ``observed``: the kernel was asked (sock_diag, /proc); the queues and the
  timer are the kernel's, as of that socket's last reported change (the
  observer reports changes of state, so a queue may have moved since), and
  the timer counts down from there;
* ``inferred``: the state follows from the programs' own calls; the kernel was
  not asked, so queues are unknown ("—") and a TIME_WAIT countdown assumes
  Linux's 60 s (marked "≈");
* ``—``: nobody reported a TCP state; the row shows what the server's own
  calls imply (accept() returned: ESTABLISHED), or "unknown" when the trace
  has no TCP states at all, which the view then says in words.
"""
from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

import numpy as np
from PySide6.QtCore import QT_TRANSLATE_NOOP, QAbstractTableModel, QModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..model.index import Decoded, EventIndex
from ..model.lifecycle import TIME_WAIT_S
from ..model.state import check_badge
from . import style
from .base import View

# ss's names and order (the kernel's state numbers; LISTEN first, as ss lists it).
SS_NAMES = {
    "LISTEN": "LISTEN", "ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECV",
    "FIN_WAIT_1": "FIN-WAIT-1", "FIN_WAIT_2": "FIN-WAIT-2", "TIME_WAIT": "TIME-WAIT",
    "CLOSE": "CLOSE", "CLOSE_WAIT": "CLOSE-WAIT", "LAST_ACK": "LAST-ACK", "CLOSING": "CLOSING",
}
ORDER = {s: i for i, s in enumerate(
    ("LISTEN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT",
     "CLOSE", "CLOSE_WAIT", "LAST_ACK", "CLOSING"))}
UNKNOWN = "UNKNOWN"
TIMER_NAMES = {"time_wait": "timewait", "retransmit": "on", "keepalive": "keepalive",
               "probe": "persist"}
# ss's headings (translated where shown, in the view's context).
COLUMNS = (QT_TRANSLATE_NOOP("SocketsView", "State"), QT_TRANSLATE_NOOP("SocketsView", "Recv-Q"),
           QT_TRANSLATE_NOOP("SocketsView", "Send-Q"),
           QT_TRANSLATE_NOOP("SocketsView", "Local Address:Port"),
           QT_TRANSLATE_NOOP("SocketsView", "Peer Address:Port"),
           QT_TRANSLATE_NOOP("SocketsView", "Timer"), QT_TRANSLATE_NOOP("SocketsView", "Source"))
# The address headings when every address is on one host and the rows show ports only.
PORT_COLUMNS = {3: QT_TRANSLATE_NOOP("SocketsView", "Local Port"),
                4: QT_TRANSLATE_NOOP("SocketsView", "Peer Port")}
# The State and Source cells' words that are translated (the rest is ss's own).
CELL_WORDS = (QT_TRANSLATE_NOOP("SocketsView", "unknown"),
              QT_TRANSLATE_NOOP("SocketsView", "observed"),
              QT_TRANSLATE_NOOP("SocketsView", "inferred"),
              QT_TRANSLATE_NOOP("SocketsView", "traced"))
# A socket older than the recording: said after its source, so no one takes it for one
# of the trace's own connections.
EARLIER = QT_TRANSLATE_NOOP("SocketsView", "(before the trace)")
EARLIER_TIP = QT_TRANSLATE_NOOP("SocketsView", "On the server's port before the recording began "
                                               "(an earlier connection): the kernel observer "
                                               "found it at its start.")
SIDES = ("client", "server")
_ROOT = QModelIndex()  # the table's (invalid) root index


@dataclass
class SocketRow:
    state: str  # the TCP state's name (ESTABLISHED, TIME_WAIT, LISTEN, UNKNOWN...)
    recv_q: str
    send_q: str
    local: str
    peer: str
    timer: str
    source: str  # "observed", "inferred" or "—"
    conn: str | None = None  # None: the listening socket
    side: str | None = None  # "server" / "client"
    order: tuple = ()  # where ss would list it
    check: str = ""  # the kernel's word on the state: "✓ traced", "✗ observed: CLOSE_WAIT"...
    earlier: bool = False  # on the port before the recording began (an earlier server's)

    def __post_init__(self) -> None:
        self.ss_state = SS_NAMES.get(self.state, "unknown" if self.state == UNKNOWN
                                     else self.state)

    def cells(self) -> tuple[str, ...]:
        source = f"{self.source} {self.check}" if self.check else self.source
        if self.earlier:
            source = f"{source} {EARLIER}"
        return (self.ss_state, self.recv_q, self.send_q, self.local, self.peer, self.timer,
                source)


def fmt_left(ms: float) -> str:
    """A timer's time left, the way ss prints it (rounded to what reads at a glance)."""
    if ms < 1000:
        return f"{max(ms, 0):.0f}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.0f}s"
    return f"{int(s // 60)}min{int(s % 60)}s" if s % 60 >= 1 else f"{int(s // 60)}min"


def _split(conn_id: str) -> tuple[str, str]:
    client, _, server = conn_id.partition(">")
    return client, server


def _port(address: str) -> int:
    try:
        return int(address.rsplit(":", 1)[-1])
    except ValueError:
        return 0


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def _without_host(address: str, host: str) -> str:
    """":7890" for "127.0.0.1:7890" when the host is ``host``; "*:*" stays."""
    return address[len(host):] if address.startswith(host + ":") else address


def _tcp(data: dict) -> tuple:
    return (data.get("side"), str(data.get("state")), data.get("source"), data.get("expires_ms"),
            data.get("timer"), data.get("rqueue"), data.get("wqueue"))


class SocketTable(QAbstractTableModel):
    """The rows as a Qt model: large monospaced type, the state coloured."""

    def __init__(self, view: SocketsView) -> None:
        super().__init__(view)
        self.view = view
        self.rows: list[SocketRow] = []
        self.selected: str | None = None
        self.host: str | None = None  # the one host every address has: shown once, not per row
        self.set_scale(1.15)

    def set_scale(self, scale: float) -> None:
        """The cells' type size (the view shrinks it a little in a narrow window)."""
        self.scale = scale
        self._font = style.font(scale, mono=True)
        self._bold = style.font(scale, bold=True, mono=True)

    def set_rows(self, rows: list[SocketRow], selected: str | None) -> None:
        self.beginResetModel()
        self.rows, self.selected = rows, selected
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = _ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = _ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]  # noqa: N802
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.view.heading(section, self.host)
            if role == Qt.ItemDataRole.FontRole:
                return style.font(min(1.0, self.scale), bold=True)
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int((Qt.AlignmentFlag.AlignRight if section in (1, 2)
                            else Qt.AlignmentFlag.AlignLeft) | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        row = self.rows[index.row()]
        col = index.column()
        selected = row.conn is not None and row.conn == self.selected
        if role == Qt.ItemDataRole.DisplayRole:
            text = row.cells()[col]
            if col in (3, 4) and self.host is not None:
                return _without_host(text, self.host)
            if col == 6 and (row.check or row.earlier):  # each word translated
                words = f"{row.source} {row.check}" if row.check else row.source
                said = " ".join(_translated(self.view, w) for w in words.split(" "))
                return f"{said} {self.view.tr(EARLIER)}" if row.earlier else said
            return self.view.tr(text) if col in (0, 6) and text in CELL_WORDS else text
        if role == Qt.ItemDataRole.FontRole:
            return self._bold if selected or col == 0 else self._font
        if role == Qt.ItemDataRole.BackgroundRole:
            if col == 0 and row.state != UNKNOWN:
                return QColor(style.state_colour(row.state))
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 0 and row.state != UNKNOWN:
                return QColor(_text_on(style.STATE_COLOURS.get(row.state, style.GREY)))
            if col in (0, 6) and row.source == "—" or row.state == UNKNOWN:
                return QColor(style.MUTED)
            if col == 6 and (row.source == "inferred" or row.earlier):
                return QColor(style.MUTED)
            return QColor(style.FOREGROUND)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            align = Qt.AlignmentFlag.AlignRight if col in (1, 2) else Qt.AlignmentFlag.AlignLeft
            return int(align | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if row.earlier:
                return row.conn + "\n" + self.view.tr(EARLIER_TIP)
            return row.conn
        if role == SELECTED_ROLE:
            return selected
        return None


class Cell(QStyledItemDelegate):
    """Paints a cell itself (style sheets would hide the state's colour): the state as
    a coloured chip, the selected connection's rows on the selection colour."""

    PAD = 14

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        r = QRectF(option.rect)
        painter.save()
        background = index.data(Qt.ItemDataRole.BackgroundRole)
        selected = bool(index.data(SELECTED_ROLE))
        if selected:
            painter.fillRect(r, QColor(style.SELECTED))
        painter.setPen(QPen(QColor(style.GRID), 1))
        painter.drawLine(r.bottomLeft(), r.bottomRight())
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        painter.setFont(index.data(Qt.ItemDataRole.FontRole))
        fm = QFontMetricsF(painter.font())
        align = Qt.AlignmentFlag(int(index.data(Qt.ItemDataRole.TextAlignmentRole)))
        inner = r.adjusted(self.PAD, 0, -self.PAD, 0)
        if background is not None:
            chip = QRectF(r.left() + 6, r.top() + 4, r.width() - 12, r.height() - 8)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(background)
            painter.drawRoundedRect(chip, 5, 5)
            inner = chip.adjusted(self.PAD - 6, 0, -(self.PAD - 6), 0)
        painter.setPen(index.data(Qt.ItemDataRole.ForegroundRole) or QColor(style.FOREGROUND))
        painter.drawText(inner, align, fm.elidedText(text, Qt.TextElideMode.ElideRight,
                                                     inner.width()))
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        return QSize(80, int(36 * style.ZOOM))


SELECTED_ROLE = Qt.ItemDataRole.UserRole + 1


def _translated(view: "SocketsView", word: str) -> str:
    """A Source cell's word in the window's language ("observed:" keeps its colon)."""
    base = word.rstrip(":")
    return view.tr(base) + word[len(base):] if base in CELL_WORDS else word


def _text_on(background: str) -> str:
    """Black or white, whichever reads on ``background`` (in any theme)."""
    return style.text_on(background).name()


class SocketsView(View):
    name = "sockets"
    title = QT_TRANSLATE_NOOP("View", "Sockets")

    KINDS = ("tcp_state", "state_check", "accept_queue", "connect", "close")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._index = EventIndex(self.KINDS)
        self._decoded = Decoded()
        self._sides = np.empty(0, np.int8)  # per index entry: 0 client, 1 server, -1 other
        self._sides_filled = 0
        self._key: tuple | None = None
        # What is drawn (plain data, for tests).
        self.rows: list[SocketRow] = []
        self.counts: dict[str, int] = {}  # ss state name -> sockets
        self.states_recorded = True  # any tcp_state at or before the cursor
        self.header_text = ""
        self.notice_text = ""
        self._scroll_pending = False  # a selection whose rows are to be brought into sight

        self.setAutoFillBackground(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(6)
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setFont(style.font(1.0))
        self.notice.setStyleSheet(f"color: {style.FOREGROUND}")
        self.notice.hide()
        self.table_model = SocketTable(self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(36)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        head = self.table.horizontalHeader()
        head.setHighlightSections(False)
        head.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # sized in _fit_columns:
        head.setStretchLastSection(True)  # measuring every row's cells would be slow
        self.table.setShowGrid(False)
        self.table.setItemDelegate(Cell(self.table))
        self.table.clicked.connect(self._clicked)
        layout.addWidget(self.header)
        layout.addWidget(self.notice)
        layout.addWidget(self.table, 1)
        self.empty = QLabel()
        self._set_words()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty, 1)
        self.empty.hide()
        self._style()

    def _style(self) -> None:
        """What ``style`` gives (theme, zoom), set on the widgets."""
        pal = self.palette()
        pal.setColor(self.backgroundRole(), QColor(style.BACKGROUND))
        self.setPalette(pal)
        self.header.setFont(style.font(1.3, bold=True))
        self.header.setStyleSheet(f"color: {style.FOREGROUND}")
        self._style_header()
        self.empty.setFont(style.font(1.2))
        self.empty.setStyleSheet(f"color: {style.MUTED}")

    def _style_header(self) -> None:
        """The headings: the base size, or the cells' when they had to shrink below it."""
        scale = min(1.0, self.table_model.scale)
        head = self.table.horizontalHeader()
        head.setMinimumHeight(int(34 * style.ZOOM * scale))
        head.setFont(style.font(scale, bold=True))
        self.table.setStyleSheet(
            f"QTableView {{ background: {style.BACKGROUND}; color: {style.FOREGROUND};"
            f" border: none; }}"
            f" QHeaderView::section {{ background: {style.BACKGROUND}; color: {style.MUTED};"
            f" border: none; border-bottom: 2px solid {style.FOREGROUND}; padding: 0 14px;"
            f" font-weight: bold; font-size: {style.BASE_POINT_SIZE * scale:.0f}pt; }}")

    def _set_words(self) -> None:
        self.empty.setText(self.tr("No socket on the server's port at this point"))

    def retranslate(self) -> None:
        self._set_words()
        self.table_model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)
        self._key = None  # the header, the notice and the cells' words are read again
        self._widths = None  # the headings' widths changed
        super().retranslate()

    def apply_theme(self) -> None:
        self._style()
        self.table_model.set_scale(self.table_model.scale)  # the fonts, at the new size
        self.table.verticalHeader().setDefaultSectionSize(
            int(36 * style.ZOOM * self.table_model.scale / 1.15))
        self._key = None
        self._widths = None
        super().apply_theme()

    # ------------------------------------------------------------ input
    def _clicked(self, index: QModelIndex) -> None:
        if 0 <= index.row() < len(self.rows):
            conn = self.rows[index.row()].conn
            if conn is not None:
                self.connection_selected.emit(conn)

    def click_row(self, row: int) -> None:
        """What a click on ``row`` does (for tests and keyboard use)."""
        self._clicked(self.table_model.index(row, 0))

    def select(self, conn: str | None) -> None:
        self.selected = conn
        self.table_model.set_rows(self.rows, conn)
        self._scroll_pending = conn is not None
        self._scroll_to_selected()

    def _scroll_to_selected(self) -> None:
        """Bring a newly selected connection's rows into sight, once: when it is selected,
        or (selected before its rows existed, as a lesson's step does) when they appear."""
        if not self._scroll_pending:
            return
        for k, row in enumerate(self.rows):
            if row.conn is not None and row.conn == self.selected:
                self.table.updateGeometries()  # the rows just set: the scroll range now
                last = max(j for j, r in enumerate(self.rows) if r.conn == self.selected)
                self.table.scrollTo(self.table_model.index(last, 0),
                                    QAbstractItemView.ScrollHint.EnsureVisible)
                self.table.scrollTo(self.table_model.index(k, 0),
                                    QAbstractItemView.ScrollHint.EnsureVisible)
                self._scroll_pending = False
                break

    # ------------------------------------------------------------ model
    def show_state(self, timeline) -> None:  # type: ignore[no-untyped-def]
        self.timeline = timeline
        log = timeline.log
        key = (id(log), len(log), timeline.cursor)
        if key != self._key:
            self._key = key
            self._compute(timeline)
            self.table_model.set_rows(self.rows, self.selected)
            self._fit_columns()
            self._show_text()
        elif self.table_model.selected != self.selected:
            self.table_model.set_rows(self.rows, self.selected)
        self._scroll_to_selected()
        self.update()

    def _latest(self, log, cursor: int):  # type: ignore[no-untyped-def]
        """The latest tcp_state entry of each (connection, side) at or before the cursor:
        an array indexed by 2 * connection code + side (0 client, 1 server), -1: none."""
        ix = self._index
        ix.update(log)
        m = ix.upto(cursor)
        # Sides are decoded once per event (entries the log did not move are kept).
        keep = min(self._sides_filled, ix.first_new)
        n = len(ix.idx)
        sides = np.full(n, -1, np.int8)
        sides[:keep] = self._sides[:keep]
        tcp_code = log.kinds.codes.get("tcp_state", -2)
        check_code = log.kinds.codes.get("state_check", -2)
        if m > keep:
            kinds = ix.kind[keep:m]
            todo = np.flatnonzero((kinds == tcp_code) | (kinds == check_code)) + keep
            dec, t, seq = self._decoded, ix.t, ix.seq
            for pos in todo.tolist():
                side = dec.get(log, int(ix.idx[pos]), int(t[pos]), int(seq[pos]), _tcp)[0]
                sides[pos] = 0 if side == "client" else 1 if side == "server" else -1
        self._sides, self._sides_filled = sides, max(keep, m)
        # The latest report of each end, a state or the kernel's check of one: the
        # observed ones carry the queues and timers.
        is_tcp = ((ix.kind[:m] == tcp_code) | (ix.kind[:m] == check_code)) & (sides[:m] >= 0)
        pos = np.flatnonzero(is_tcp)
        keys = ix.conn[pos].astype(np.int64) * 2 + sides[pos]
        latest = np.full(2 * len(log.conns.names), -1, np.int64)
        if len(keys):  # the last entry of each key: the first one, read backwards
            uniq, first_back = np.unique(keys[::-1], return_index=True)
            latest[uniq] = pos[len(pos) - 1 - first_back]
        return latest, m

    def _compute(self, timeline) -> None:  # type: ignore[no-untyped-def]
        log, cursor, state = timeline.log, timeline.cursor, timeline.state
        self.rows, self.counts = [], {}
        self.states_recorded = False
        if cursor < 0:
            return
        ix = self._index
        latest, m = self._latest(log, cursor)
        kc, sc = log.kinds.codes, log.sources.codes
        now = int(log.column("t_ns")[cursor])
        K, C, S = ix.kind[:m], ix.conn[:m], ix.src[:m]
        self.states_recorded = bool((K == kc.get("tcp_state", -2)).any())
        # The client's own calls (when its events are recorded): connected, closed.
        n_codes = len(log.conns.names)
        client_src = sc.get("client", -2)
        connected = np.zeros(n_codes, bool)
        connected[C[(K == kc.get("connect", -2)) & (S == client_src)]] = True
        client_closed = np.zeros(n_codes, bool)
        client_closed[C[(K == kc.get("close", -2)) & (S == client_src)]] = True
        dec = self._decoded

        idx_col, t_col, seq_col = ix.idx, ix.t, ix.seq

        def report(pos: int) -> tuple:
            return dec.get(log, int(idx_col[pos]), int(t_col[pos]), int(seq_col[pos]), _tcp)

        rows: list[SocketRow] = []
        listen = state.listen
        if listen:
            host, port = str(listen.get("host", "")), listen.get("port", "")
            local = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            aq = np.flatnonzero(K == kc.get("accept_queue", -2))
            recv_q, source = "—", "—"
            if len(aq):
                length, backlog = state.accept_queue
                recv_q, send_q = str(length), str(backlog)
                source = str(log[int(ix.idx[aq[-1]])].data.get("source") or "—")
            send_q = str(state.accept_queue[1] or listen.get("backlog", "—"))
            rows.append(SocketRow("LISTEN", recv_q, send_q, local, "*:*", "", source,
                                  order=(0, 0, 0, 0)))
        codes = log.conns.codes
        no_states = "tcp_state" not in log.kinds.codes  # the trace has none at all
        for conn in state.connections.values():
            if conn.client in ("CLOSED", "CLOSE") and conn.server in ("CLOSED", "CLOSE") \
                    and conn.client_source and conn.server_source:
                continue  # both ends gone (most connections, once they are over)
            code = codes.get(conn.id)
            if code is None:
                continue
            client_addr, server_addr = _split(conn.id)
            ports = (_port(client_addr), _port(server_addr))
            for s, side in enumerate(SIDES):
                if s == 0:
                    tcp_state, source = conn.client, conn.client_source
                else:
                    tcp_state, source = conn.server, conn.server_source
                if source is not None and tcp_state in ("CLOSED", "CLOSE"):
                    continue
                pos = int(latest[2 * code + s])
                recv_q = send_q = timer = "—"
                if source is None:
                    # Nobody reported a state: what the end's own calls imply.
                    if side == "server":
                        if not conn.open:
                            continue
                    elif not connected[code] or client_closed[code]:
                        continue
                    if no_states:
                        tcp_state = UNKNOWN
                    source = "—"
                    timer = ""
                elif pos >= 0:
                    _, reported, by, expires, timer_name, rq, wq = report(pos)
                    waited_ms = (now - int(t_col[pos])) / 1e6
                    if by == "observed" and reported == tcp_state:
                        recv_q = "—" if rq is None else str(rq)
                        send_q = "—" if wq is None else str(wq)
                        timer = ""
                        if timer_name and timer_name != "off" and expires is not None:
                            left = expires - waited_ms
                            if left > 0 or timer_name == "time_wait":
                                timer = f"{TIMER_NAMES.get(timer_name, timer_name)} " \
                                        f"{fmt_left(left)}"
                    else:
                        timer = ""
                        if tcp_state == "TIME_WAIT":
                            left = TIME_WAIT_S * 1000 - waited_ms
                            if left <= 0:
                                continue  # the kernel's timer ran out: the socket is gone
                            timer = f"timewait ≈{fmt_left(left)}"
                if tcp_state in ("CLOSED", "CLOSE"):
                    continue
                if s:
                    local, peer, order = server_addr, client_addr, (ports[1], ports[0])
                else:
                    local, peer, order = client_addr, server_addr, ports
                badge = check_badge(conn, side)
                check = ""
                if badge is not None:
                    mark, by, said = badge
                    check = f"{mark} {by}" + (f": {said}" if mark == "✗" else "")
                rows.append(SocketRow(tcp_state, recv_q, send_q, local, peer, timer,
                                      str(source), conn.id, side,
                                      (1, ORDER.get(tcp_state, 99)) + order, check,
                                      conn.earlier))
        rows.sort(key=attrgetter("order"))  # like ss: the listener, then by state and ports
        self.rows = rows
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.ss_state] = counts.get(r.ss_state, 0) + 1
        self.counts = counts

    SCALES = (1.15, 1.05, 0.95, 0.85)
    ZOOMED_SCALES = (0.75, 0.65, 0.55, 0.45)

    def _fit_columns(self) -> None:
        """Column widths from the longest text (monospaced: characters times one advance),
        at the largest type size with which every column fits the width: first whole
        addresses at the usual sizes; then, when every address is on one host, the rows
        give ports and the notice names the host; then, zoomed in (a projector at
        200 %), smaller type still, never below 100 %'s smallest."""
        cells = [r.cells() for r in self.rows]
        room = self.width() - 24 - 20  # margins, a scroll bar
        hosts = {_host(a) for c in cells for a in (c[3], c[4]) if a != "*:*"}
        one = next(iter(hosts)) if len(hosts) == 1 else None
        zoomed = [k for k in self.ZOOMED_SCALES if k * style.ZOOM >= self.SCALES[-1]]
        tries = [(None, k) for k in self.SCALES]
        if one is not None:
            tries += [(one, k) for k in (*self.SCALES, *zoomed)]
        else:
            tries += [(None, k) for k in zoomed]
        longest: dict[str | None, list[int]] = {}
        for host, scale in tries:
            if host not in longest:
                shown = cells if host is None else \
                    [c[:3] + (_without_host(c[3], host), _without_host(c[4], host)) + c[5:]
                     for c in cells]
                longest[host] = [max(map(len, column)) for column in zip(*shown)] \
                    if shown else [0] * len(COLUMNS)
            title = QFontMetricsF(style.font(min(1.0, scale), bold=True))
            char = QFontMetricsF(style.font(scale, bold=True, mono=True)).horizontalAdvance("M")
            titles = [title.horizontalAdvance(self.heading(c, host)) for c in range(len(COLUMNS))]
            widths = [int(max(n * char, t) + 2 * Cell.PAD + 8)
                      for n, t in zip(longest[host], titles)]
            if sum(widths) <= room:
                break
        if host != self.table_model.host:
            self.table_model.host = host
            self.table_model.set_rows(self.rows, self.selected)
            self.table_model.headerDataChanged.emit(Qt.Orientation.Horizontal, 3, 4)
            if self.timeline is not None:
                self._show_text()  # the notice names the host
        if scale != self.table_model.scale:
            self.table_model.set_scale(scale)
            self.table.verticalHeader().setDefaultSectionSize(
                int(36 * style.ZOOM * scale / 1.15))
            self._style_header()
        if widths != getattr(self, "_widths", None):
            self._widths = widths
            for col, w in enumerate(widths):
                self.table.setColumnWidth(col, w)

    def heading(self, column: int, host: str | None = None) -> str:
        """A column's heading, translated: with ``host``, the addresses' say "Port"."""
        if host is not None and column in PORT_COLUMNS:
            return self.tr(PORT_COLUMNS[column])
        return self.tr(COLUMNS[column])

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().resizeEvent(event)
        self._fit_columns()
        # A new size (presentation mode, an export at 1280 x 720) may hide the selection.
        self._scroll_pending = self.selected is not None
        self._scroll_to_selected()

    def _state_names(self) -> list[tuple[str, str]]:
        """(TCP state, ss name) of the states counted, in ss order."""
        seen: dict[str, str] = {}
        for r in self.rows:
            seen.setdefault(r.ss_state, r.state)
        return [(state, name) for name, state in seen.items()]

    def _show_text(self) -> None:
        parts = [f"{name} {n}" for name, n in self.counts.items()]
        self.header_text = " · ".join(parts) if parts else ""
        chips = []
        for r_state, name in self._state_names():
            if r_state == UNKNOWN:
                unknown = self.tr("unknown")
                chips.append(f'<span style="color:{style.MUTED}">{unknown}</span>'
                             f'&nbsp;{self.counts[name]}')
                continue
            colour = style.STATE_COLOURS.get(r_state, style.GREY)
            chips.append(f'<span style="background:{colour};color:{_text_on(colour)}">'
                         f'&nbsp;{name}&nbsp;</span>&nbsp;{self.counts[name]}')
        self.header.setText("&nbsp;&nbsp;&nbsp;".join(chips))
        sources = {r.source for r in self.rows if r.conn is not None}
        log = self.timeline.log if self.timeline is not None else None
        notice = ""
        if not self.states_recorded and log is not None:
            if "tcp_state" not in log.kinds.codes:
                notice = self.tr(
                    "This trace has no TCP states: they were not recorded (--states off). "
                    "Listed: the listening socket and the sockets the programs hold open, "
                    "from their own calls; their TCP states are unknown.")
            else:
                notice = self.tr("No TCP state reported yet at this point of the trace. "
                                 "Listed: the sockets the programs hold open, from their own "
                                 "calls.")
        elif "inferred" in sources and any(r.check for r in self.rows):
            notice = self.tr("States from the segments, each change placed at its segment. "
                             "✓ or ✗: what the kernel said of it (traced: its tracepoint, "
                             "every transition; observed: a sock_diag poll). Queues and timers "
                             "as the kernel last reported them.")
        elif "inferred" in sources and "observed" not in sources:
            notice = self.tr("States inferred from the segments or the programs' own calls "
                             "(the kernel was not asked): queues unknown, TIME_WAIT countdowns "
                             "assume Linux's 60 s.")
        elif "observed" in sources:
            notice = self.tr("Observed: states, queues and timers as the kernel last reported "
                             "them for each socket.")
            if "—" in sources:
                notice += " " + self.tr("Source —: not reported (yet); the state follows from "
                                        "accept() or connect().")
        if self.table_model.host is not None and self.rows:
            notice = (notice + " " if notice else "") + self.tr(
                "Every socket here is on {0}: the addresses show its ports only.").format(
                self.table_model.host)
        self.notice_text = notice
        warn = not self.states_recorded
        self.notice.setFont(style.font(1.05 if warn else 0.95, bold=warn))
        self.notice.setStyleSheet(
            f"background: {style.SELECTED}; color: {style.FOREGROUND}; padding: 8px;"
            f" border-left: 6px solid {style.WASTE};" if warn
            else f"color: {style.MUTED}; padding: 0 2px;")
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        self.table.setVisible(bool(self.rows))
        self.empty.setVisible(not self.rows)
