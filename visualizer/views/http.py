"""The ``http`` view: one request's bytes, cut by the lecture's regular
expression and by the real parser, side by side with its response.

The lecture finds the path with ``re.match(r"^[^/]+(/[^\\s]*)", first_line)``;
SockScope's server parses with httptools. The view shows both on the same
bytes: they agree on ``GET /index.html HTTP/1.1`` and part ways on an
absolute-form target (``GET http://host/x``), where the expression's group
starts at the first slash it meets.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import (QGridLayout, QLabel, QSizePolicy, QTextBrowser, QVBoxLayout,
                               QWidget)

from engine.events import Event

from ..model import Timeline
from . import style
from .base import View

LECTURE_RE = re.compile(r"^[^/]+(/[^\s]*)")


@dataclass
class Exchange:
    """What the view shows: one request and, once sent, its response."""
    conn: str
    number: int  # the request's number on its connection, from 1
    of: int  # requests on the connection up to the cursor
    method: str = ""
    path: str = ""  # what the parser (httptools) found
    version: str = ""
    keep_alive: bool | None = None
    head: str = ""  # the request head as received
    truncated: bool = False
    request_line: str = ""
    regex_group: str | None = None  # group 1 of the lecture's expression (None: no match)
    regex_span: tuple[int, int] | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None
    length: int | None = None
    response_head: str = ""
    preview: str = ""
    refused: str = ""  # the parser's reason, when the bytes were refused (no request)
    undelivered: str = ""  # the send failed (the client had gone): the reason

    @property
    def agree(self) -> bool:
        return self.regex_group is not None and self.regex_group == self.path


def parse_exchange(request: Event, response: Event | None, number: int, of: int) -> Exchange:
    d = request.data
    head = str(d.get("head") or "")
    ex = Exchange(str(request.conn), number, of, method=str(d.get("method", "")),
                  path=str(d.get("path", "")), version=str(d.get("version", "")),
                  keep_alive=d.get("keep_alive"), head=head,
                  truncated=bool(d.get("head_truncated")))
    lines = head.split("\r\n") if "\r\n" in head else head.split("\n")
    ex.request_line = lines[0] if head else f"{ex.method} {ex.path} HTTP/{ex.version}"
    m = LECTURE_RE.match(ex.request_line)
    if m:
        ex.regex_group, ex.regex_span = m.group(1), m.span(1)
    for line in lines[1:]:
        if not line:
            break
        name, sep, value = line.partition(":")
        if sep:
            ex.headers.append((name, value.strip()))
    if response is not None:
        r = response.data
        ex.status, ex.length = int(r.get("status", 0)), int(r.get("length", 0))
        ex.response_head = str(r.get("head") or "")
        ex.preview = str(r.get("preview") or "")
    return ex


def parse_refusal(error: Event, response: Event | None) -> Exchange:
    """Bytes the parser refused (an ``error`` event with a status): shown like a
    request, with the parser's reason in place of its result."""
    d = error.data
    head = str(d.get("head") or "")
    ex = Exchange(str(error.conn), 0, 0, head=head, truncated=bool(d.get("head_truncated")),
                  refused=str(d.get("detail") or d.get("what") or "refused"))
    lines = head.split("\r\n") if "\r\n" in head else head.split("\n")
    ex.request_line = lines[0] if head else ""
    m = LECTURE_RE.match(ex.request_line)
    if m:
        ex.regex_group, ex.regex_span = m.group(1), m.span(1)
    if response is not None:
        r = response.data
        ex.status, ex.length = int(r.get("status", 0)), int(r.get("length", 0))
        ex.response_head = str(r.get("head") or "")
        ex.preview = str(r.get("preview") or "")
    else:
        ex.status = int(d.get("status") or 400)
    return ex


def _visible(text: str) -> str:
    """HTML of raw text with CR and LF shown, as a lecturer points at them."""
    out = []
    for line in re.split(r"(\r\n|\n)", text):
        if line == "\r\n":
            out.append(f'<span style="color:{style.MUTED}">\\r\\n</span><br>')
        elif line == "\n":
            out.append(f'<span style="color:{style.MUTED}">\\n</span><br>')
        elif line:
            out.append(html.escape(line).replace(" ", "&nbsp;"))
    return "".join(out)


class HttpView(View):
    name = "http"
    title = QT_TRANSLATE_NOOP("View", "HTTP")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.exchange: Exchange | None = None
        self._key: tuple | None = None
        self.type_factor = 1.0  # below 1 when the words would not fit (zoomed in)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        self.regex_label = QLabel()
        self.regex_label.setTextFormat(Qt.TextFormat.RichText)
        self.regex_label.setWordWrap(True)
        self.compare_label = QLabel()
        self.compare_label.setTextFormat(Qt.TextFormat.RichText)
        self.compare_label.setWordWrap(True)
        self.request_box = self._browser()
        self.headers_box = self._browser()
        self.response_box = self._browser()
        self.titles = titles = [QLabel(), QLabel(), QLabel()]
        self._set_words()
        self._style()
        self.grid = grid = QGridLayout()
        grid.addWidget(titles[0], 0, 0)
        grid.addWidget(titles[1], 0, 1)
        grid.addWidget(titles[2], 0, 2)
        grid.addWidget(self.request_box, 1, 0)
        grid.addWidget(self.headers_box, 1, 1)
        grid.addWidget(self.response_box, 1, 2)
        for col, stretch in enumerate((5, 4, 5)):
            grid.setColumnStretch(col, stretch)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.regex_label)
        layout.addWidget(self.compare_label)
        layout.addLayout(grid, 1)
        self._show_nothing()

    def _browser(self) -> QTextBrowser:
        box = QTextBrowser()
        box.setLineWrapMode(QTextBrowser.LineWrapMode.WidgetWidth)
        box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        return box

    def _style(self) -> None:
        """Fonts and colours from ``style`` (again when the theme or the zoom changes)."""
        self.setStyleSheet(f"HttpView {{background:{style.BACKGROUND};}} "
                           f"QLabel {{color:{style.FOREGROUND};}}")
        self._fonts(self.type_factor)
        for box in (self.request_box, self.headers_box, self.response_box):
            box.setStyleSheet(f"background:{style.BACKGROUND};color:{style.FOREGROUND};"
                              f"border:{max(1, round(style.pen(1)))}px solid {style.GRID}")

    # Narrower than this many characters of the boxes' type a column (a request line,
    # "GET /index.html HTTP/1.1"), and the parsed headers (which the raw bytes show
    # too) give their room to the bytes and the answer: zoomed in, or half of a pair.
    MIN_COLUMN_CHARS = 24

    @property
    def columns(self) -> int:
        """How many of the three boxes are shown (3, or 2 when cramped)."""
        return 2 if self.headers_box.isHidden() else 3

    def _fonts(self, f: float) -> None:
        self.heading.setFont(style.font(1.3 * f, bold=True))
        self.regex_label.setFont(style.font(1.2 * f, mono=True))
        self.compare_label.setFont(style.font(1.0 * f))
        for t in self.titles:
            t.setFont(style.font(1.0 * f, bold=True))
        for box in (self.request_box, self.headers_box, self.response_box):
            box.setFont(style.font(1.1 * f, mono=True))

    def _needed(self, width: int) -> float:
        """The height the words above the boxes take at ``width``, with four lines of
        each box: what must fit before the view is readable."""
        labels = sum(label.heightForWidth(width) for label in
                     (self.heading, self.regex_label, self.compare_label))
        box_line = QFontMetricsF(self.request_box.font()).lineSpacing()
        title = QFontMetricsF(self.titles[0].font()).lineSpacing()
        return labels + title + 4 * box_line + 100  # margins, spacing, frames

    def _fit(self) -> None:
        # Zoomed in on a small screen, the labels would overlap: the type is set smaller
        # until the words and four lines of each box fit, never below 100 %'s size.
        width, floor = max(self.width() - 24, 100), min(1.0, 1.0 / style.ZOOM)
        f = 1.0
        self._fonts(f)
        for _ in range(12):  # bounded: 10 % smaller each time
            if self._needed(width) <= self.height() or f <= floor:
                break
            f = max(floor, f * 0.9)
            self._fonts(f)
        self.type_factor = f
        char = QFontMetricsF(self.request_box.font()).horizontalAdvance("M")
        room = self.width() - 40  # margins and spacing
        cramped = room / 3 < self.MIN_COLUMN_CHARS * char
        self.headers_box.setVisible(not cramped)
        self.titles[1].setVisible(not cramped)
        self.grid.setColumnStretch(1, 0 if cramped else 4)

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def apply_theme(self) -> None:
        self._style()
        self._fit()
        self._key = None  # the HTML carries the colours: written again
        super().apply_theme()

    # ------------------------------------------------------------ model
    def find(self, timeline: Timeline) -> Exchange | None:
        """The request to show: the selected connection's latest up to the cursor, else the latest."""
        log, stop = timeline.log, timeline.cursor + 1
        conn = self.selected
        requests = log.indices(kinds=["request"], src="server", stop=stop,
                               **({"conn": conn} if conn else {}))
        refusal = self._refusal(log, stop, conn, int(requests[-1]) if len(requests) else -1)
        if refusal is not None:
            return refusal
        if len(requests) == 0:
            return None
        last = int(requests[-1])
        request = log[last]
        mine = log.indices(conn=request.conn, kinds=["request"], src="server", stop=stop) \
            if not conn else requests
        responses = log.indices(conn=request.conn, kinds=["response"], src="server", stop=stop)
        number = len(mine)
        # Answers go out in order: the number-th response belongs to the number-th request,
        # unless a refusal (a 400 has no request event) came first: then match by path.
        at = int(responses[number - 1]) if len(responses) >= number else None
        if at is not None and log[at].data.get("path") != request.data.get("path"):
            later = [int(i) for i in responses if i > last]
            at = next((i for i in later
                       if log[i].data.get("path") == request.data.get("path")), None)
        ex = parse_exchange(request, log[at] if at is not None else None, number, len(mine))
        if at is not None:  # the answer queued: did its send reach the client?
            for i in log.indices(conn=request.conn, kinds=["error"], src="server",
                                 start=at + 1, stop=stop)[:8].tolist():
                if log[i].data.get("what") in ("reset", "epipe"):
                    ex.undelivered = str(log[i].data.get("detail") or log[i].data["what"])
                    break
        return ex

    @staticmethod
    def _refusal(log, stop: int, conn: str | None, after: int) -> Exchange | None:  # type: ignore[no-untyped-def]
        """The latest refused request after index ``after`` (bytes the parser turned
        away with a status), as an exchange with its answer; None if none."""
        errors = log.indices(kinds=["error"], src="server", start=after + 1, stop=stop,
                             **({"conn": conn} if conn else {}))
        for i in reversed(errors[-64:].tolist()):  # errors are few; a bounded look back
            error = log[i]
            if "status" not in error.data:
                continue
            answers = log.indices(conn=error.conn, kinds=["response"], src="server",
                                  start=i + 1, stop=stop)
            answer = next((log[int(k)] for k in answers
                           if log[int(k)].data.get("status") == error.data.get("status")), None)
            return parse_refusal(error, answer)
        return None

    def show_state(self, timeline: Timeline) -> None:
        self.timeline = timeline
        key = (id(timeline.log), len(timeline.log), timeline.cursor, self.selected)
        if key == self._key:
            return
        self._key = key
        self.exchange = self.find(timeline)
        if self.exchange is None:
            self._show_nothing()
        else:
            self._show(self.exchange)
        if style.ZOOM > 1:
            self._fit()  # other words, other heights

    def select(self, conn: str | None) -> None:
        self.selected = conn
        self._key = None
        if self.timeline is not None:
            self.show_state(self.timeline)

    def _set_words(self) -> None:
        for label, text in zip(self.titles, (self.tr("Request bytes, as received"),
                                             self.tr("Headers, as parsed"), self.tr("Response"))):
            label.setText(text)

    def retranslate(self) -> None:
        self._set_words()
        self._key = None  # the words of the exchange shown are read again
        if self.timeline is None:
            self._show_nothing()
        super().retranslate()

    # ------------------------------------------------------------ drawing
    def _show_nothing(self) -> None:
        self.heading.setText(self.tr("No request yet at this point of the timeline"))
        self.regex_label.setText("")
        self.compare_label.setText(self.tr("Send one with the traffic buttons, or open the "
                                           "URL in a browser."))
        for box in (self.request_box, self.headers_box, self.response_box):
            box.setHtml("")

    def _show(self, ex: Exchange) -> None:
        client, _, server = ex.conn.partition(">")
        ports = client.rsplit(":", 1)[-1], server.rsplit(":", 1)[-1]
        if ex.refused:
            self.heading.setText(self.tr("Refused with {0} on connection {1} → {2}: the parser "
                                         "said no").format(ex.status, *ports))
        else:
            self.heading.setText(self.tr("Request {0} of {1} on connection {2} → {3}").format(
                ex.number, ex.of, *ports))
        line = ex.request_line
        def text(part: str) -> str:
            return html.escape(part).replace(" ", "&nbsp;")

        if ex.regex_span:
            a, b = ex.regex_span
            shown = (text(line[:a]) + f'<span style="background-color:{style.YELLOW};'
                     f'color:{style.BLACK}"><b>{text(line[a:b])}</b></span>' + text(line[b:]))
        else:
            shown = text(line)
        self.regex_label.setText(f'<span style="color:{style.MUTED}">re.match(r"^[^/]+(/[^\\s]*)",'
                                 f'</span> {shown}')
        group = self.tr("no match") if ex.regex_group is None else ex.regex_group
        same, differ = self.tr("the same"), self.tr("they differ")
        verdict = (f'<span style="color:{style.GREEN}"><b>{same}</b></span>' if ex.agree else
                   f'<span style="color:{style.VERMILION}"><b>{differ}</b></span>')
        lecture_file = (ex.regex_group if ex.regex_group != "/" else "/index.html") \
            if ex.regex_group is not None else None
        if ex.refused:
            refused = self.tr("refused: {0}").format(html.escape(ex.refused))
            self.compare_label.setText(
                self.tr("group(1): <b>{0}</b> &nbsp;·&nbsp; httptools: {1}").format(
                    html.escape(group), f'<span style="color:{style.VERMILION}"><b>'
                                        f'{refused}</b></span>'))
        else:
            self.compare_label.setText(
                self.tr("group(1): <b>{0}</b> &nbsp;·&nbsp; httptools: <b>{1}</b> &nbsp;→&nbsp; "
                        "{2}{3}").format(
                    html.escape(group), html.escape(ex.path), verdict,
                    (self.tr(" &nbsp;·&nbsp; the lecture opens ./html{0}")
                     .format(html.escape(lecture_file)) if lecture_file else "")))
        raw = _visible(ex.head) if ex.head else html.escape(line)
        if ex.truncated:
            cut = self.tr("… cut at 2,048 characters")
            raw += f'<br><i style="color:{style.MUTED}">{cut}</i>'
        self.request_box.setHtml(raw)
        rows = "".join(f'<tr><td style="color:{style.CLIENT}"><b>{html.escape(n)}</b></td>'
                       f'<td>&nbsp;{html.escape(v)}</td></tr>' for n, v in ex.headers)
        keep = {True: self.tr("keep-alive"), False: self.tr("close after this answer"),
                None: "—"}[ex.keep_alive]
        connection = self.tr("connection: {0}").format(keep)
        if ex.refused:
            said = self.tr("The parser stopped here and the server answered with an error "
                           "instead: {0}").format(html.escape(ex.refused))
            self.headers_box.setHtml(f'<p style="color:{style.VERMILION}">{said}</p>')
        else:
            self.headers_box.setHtml(
                f'<p>{html.escape(ex.method)} <b>{html.escape(ex.path)}</b> HTTP/'
                f'{html.escape(ex.version)}</p><table>{rows}</table>'
                f'<p style="color:{style.MUTED}">{connection}</p>')
        if ex.status is None:
            waiting = self.tr("not answered yet")
            self.response_box.setHtml(f'<p style="color:{style.MUTED}">{waiting}</p>')
        else:
            head = _visible(ex.response_head) if ex.response_head else \
                html.escape(f"HTTP/1.1 {ex.status}")
            colour = style.GREEN if ex.status < 400 else style.VERMILION
            body = ""
            if ex.preview:
                more = (ex.length or 0) - len(ex.preview.encode("latin-1", "replace"))
                first, rest = self.tr("body, first bytes:"), self.tr("{0} bytes more").format(more)
                body = (f'<p style="color:{style.MUTED}">{first}</p>'
                        f'<p>{_visible(ex.preview)}'
                        + (f'<span style="color:{style.MUTED}"> … {rest}</span>'
                           if more > 0 else "") + "</p>")
            size = self.tr("{0} bytes of body").format(ex.length)
            lost = ""
            if ex.undelivered:
                lost = self.tr("not delivered: the client had gone ({0})").format(
                    html.escape(ex.undelivered))
                lost = f'<p style="color:{style.VERMILION}"><b>{lost}</b></p>'
            note = self._status_note(ex.status)
            note = f'<p style="color:{style.MUTED}"><i>{html.escape(note)}</i></p>' if note else ""
            self.response_box.setHtml(
                f'<p style="color:{colour}"><b>{ex.status}</b> · {size}</p>{lost}{note}'
                f'<p>{head}</p>{body}')

    def _status_note(self, status: int) -> str:
        """What an answer that is not the whole file means (HTTP caching and ranges)."""
        if status == 304:
            return self.tr("Not Modified: the client's copy is current (its If-None-Match matched "
                           "the ETag, or If-Modified-Since the Last-Modified), so no body is sent. "
                           "This is HTTP caching: a revisit costs a head, not the file.")
        if status == 206:
            return self.tr("Partial Content: only the bytes the Range header asked for, as a "
                           "video player or a resumed download asks.")
        if status == 416:
            return self.tr("Range Not Satisfiable: the range asked for starts past the end of "
                           "the file.")
        return ""
