"""The ``http`` view: one request's bytes, cut by the lecture's regular
expression and by the real parser, side by side with its response.

The lecture finds the path with ``re.match(r"^[^/]+(/[^\\s]*)", first_line)``;
SockScope's server parses with httptools. The view shows both on the same
bytes, and where each leads: the file the lecture's server would open (and
the status that gives, when the recording says it) beside the file this server
looked for and the status it answered. They agree on ``GET /index.html
HTTP/1.1``; they part ways on an absolute-form target (``GET http://host/x``,
where the expression's group starts at the first slash it meets) and on a
query string (``/x?a=b``, not a file name).

Only the recording is read, never the disk: the site it was served from (its
``--root``) is not in the trace. The lecture's status is given where this
server looked for the same file and answered (found, or no such file); else "?".

Every text here is laid out by the view itself, line by line (``_flow``): a
line breaks at a space, or after a header's CR LF, never inside a token
("HTTP/1.1", "GMT", a URL). A token wider than its box makes the type smaller
(down to 100 %'s size); one wider still is cut in its middle with "…", the
whole text in the box's tooltip. Bytes no font can draw (a PNG's ``\\x89``,
NUL, control characters) are shown as Python escapes, ``\\x89PNG\\r\\n\\x1a``.
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable, Iterable
from urllib.parse import unquote_to_bytes

from PySide6.QtCore import QT_TRANSLATE_NOOP, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import (QGridLayout, QLabel, QSizePolicy, QTextBrowser, QVBoxLayout,
                               QWidget)

from engine.events import Event

from ..model import Timeline
from ..model.text import header_value
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
    status: int | None = None  # the recorded answer's (None: none recorded up to the cursor)
    length: int | None = None
    response_head: str = ""
    preview: str = ""
    refused: str = ""  # the parser's reason, when the bytes were refused (no request)
    refused_status: int | None = None  # the status the parser's error event recorded
    file_error: str = ""  # a file error this answer was recorded with: its errno ("?" unknown)
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
    if d.get("status") is not None:
        ex.refused_status = int(d["status"])
    if response is not None:  # only an answer recorded (up to the cursor) is shown
        r = response.data
        ex.status, ex.length = int(r.get("status", 0)), int(r.get("length", 0))
        ex.response_head = str(r.get("head") or "")
        ex.preview = str(r.get("preview") or "")
    return ex


# ---------------------------------------------------------------- where each leads
@dataclass(frozen=True)
class Named:
    """What this server makes of a request-target before it looks at the disk (as
    engine/static.py's Site._resolve reads it): the file it names, and the rule by which
    it answers without looking, if one applies."""
    file: str | None  # under the root; None: the target names no path (or is not known)
    rule: str = ""  # engine/static.py's reason ("dotfile", "'..' in path"...), "" if none


def server_named(target: str) -> Named:
    """The file a target names on this server: the target's path (an absolute URL's path,
    the query string left out), %-decoded to bytes and read as UTF-8 (a byte that is not
    shown as \\xNN), a folder's index.html; and the rule, if any, by which this server
    answers without looking: "'..' in path" (403), a dotfile, a NUL, a backslash, a path
    not UTF-8, a reserved character (404). The target as recorded: its bytes as latin-1."""
    try:
        raw = target.encode("latin-1")
    except UnicodeEncodeError:  # not a recorded target's bytes: not known
        return Named(None)
    if raw == b"*":
        return Named(None, "asterisk form")
    try:
        import httptools
    except ImportError:  # no parser here: not known
        return Named(None)
    try:
        path = httptools.parse_url(raw).path or b"/"
    except Exception:  # noqa: BLE001 (httptools' invalid URL error)
        return Named(None, "unparsable target")
    if not path.startswith(b"/"):
        return Named(None, "relative target")
    decoded = unquote_to_bytes(path)
    text = decoded.decode("utf-8", "backslashreplace")
    file = text + "index.html" if text.endswith("/") else text
    if b"\x00" in decoded:
        return Named(file, "NUL byte in path")
    if b"\\" in decoded:
        return Named(file, "backslash in path")
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return Named(file, "path is not UTF-8")
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            return Named(file, "'..' in path")
        if segment.startswith("."):
            return Named(file, "dotfile")
        if ":" in segment or any(ord(c) < 32 for c in segment):
            return Named(file, "reserved character in path")
    return Named(file)


def server_file(target: str) -> str | None:
    """The file this server looks for (``server_named``'s file). None if unparsable."""
    return server_named(target).file


def lecture_file(group: str | None) -> str | None:
    """What the lecture's server appends to "./html": group(1), "/" made /index.html."""
    if group is None:
        return None
    return "/index.html" if group == "/" else group


def climbs_out(file: str) -> bool:
    """Whether "./html" + ``file`` leaves ./html by its ".." ("/a/../b" stays inside)."""
    depth = 0
    for segment in file.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment not in ("", "."):
            depth += 1
    return False


@dataclass
class Outcome:
    """Where the lecture's expression leads: the file its server opens and what it answers."""
    file: str | None  # "./html" + this (None: no match)
    status: int | None  # None: the recording does not say
    outside: bool = False  # the file lies outside ./html ("..")
    checked: bool = False  # known from the lesson's look at the served site (site_check)


FOUND = (200, 206, 304, 416)  # answers only a file found gets (a range, a cache check)
ABSENT = ("", "ENOENT", "ENOTDIR")  # a 404's file error (none: the look-up found nothing)


def lecture_outcome(ex: Exchange, checks: dict[str, bool] | None = None) -> Outcome:
    """Where group(1) leads, from the recording alone. The lecture's server opens
    "./html" + group(1): a name that climbs out of ./html is a path traversal, whatever the
    site holds. Its status is known only where this server looked for the same file and
    its answer is recorded: found (200, 206, 304 or 416: the lecture's server knows no
    caching nor ranges, it sends the file, 200), or no such file (404). Otherwise None: a
    404 by this server's own rules (a dotfile, a NUL...) says nothing of the file; what
    another name gives, only the site that was served knows, and the trace does not
    record it, unless a lesson looked when it recorded (``checks``: "./html/..." → whether
    that file was there, from its site_check events)."""
    out = _lecture_outcome(ex)
    if out.file is not None and out.status is None and not out.outside and checks and \
            "./html" + out.file in checks:
        return Outcome(out.file, 200 if checks["./html" + out.file] else 404, checked=True)
    return out


def _lecture_outcome(ex: Exchange) -> Outcome:
    file = lecture_file(ex.regex_group)
    if file is None:
        return Outcome(None, None)
    if climbs_out(file):
        return Outcome(file, None, outside=True)
    if ex.refused or not ex.path or ex.status is None:
        return Outcome(file, None)
    named = server_named(ex.path)
    if named.file != file or named.rule:
        return Outcome(file, None)
    if ex.status in FOUND:
        return Outcome(file, 200)
    if ex.status == 404 and ex.file_error in ABSENT:
        return Outcome(file, 404)
    return Outcome(file, None)


# ---------------------------------------------------------------- bytes as text
_PRINTABLE = set(range(0x20, 0x7F))


def _escape(ch: str) -> str:
    """A character shown as Python writes it in a bytes or str literal."""
    code = ord(ch)
    named = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\"}
    if ch in named:
        return named[ch]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def drawable(ch: str, font: QFont | None = None) -> bool:
    """A character a reader sees as itself: not a control or format character, not a
    surrogate or unassigned, and one the font (with its fallbacks) has."""
    if unicodedata.category(ch)[0] == "C" and ch not in "\t":
        return False
    if ch == "\t":
        return False  # shown as \t: a tab's width is no one's guess
    if font is not None and ord(ch) > 0x7E and not QFontMetricsF(font).inFont(ch):
        return False
    return True


def decode_body(preview: str, content_type: str = "") -> tuple[str | None, bytes]:
    """The body's first bytes (a latin-1 string, byte for byte) as text when they are
    text (UTF-8, a sequence cut at the end forgiven), else None; and the bytes."""
    raw = preview.encode("latin-1", "replace")
    ctype = content_type.lower()
    textual = ctype.startswith("text/") or any(
        word in ctype for word in ("json", "xml", "javascript", "ecmascript", "svg"))
    binary = bool(ctype) and not textual
    if binary:
        return None, raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 3 or exc.reason != "unexpected end of data":
            return None, raw
        text = raw[:exc.start].decode("utf-8", "replace")
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\r\n\t")
    if not ctype and controls:  # no type said, and not text
        return None, raw
    return text, raw


# ---------------------------------------------------------------- laying out text
@dataclass(frozen=True)
class Run:
    """Characters in one style."""
    text: str
    colour: str = ""
    bold: bool = False
    background: str = ""


@dataclass(frozen=True)
class Piece:
    """A word (runs never broken apart), or a break: spaces (they end a line that breaks
    there) or "" (a break between two words written together)."""
    runs: tuple[Run, ...]
    space: bool = False

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)


def word(*runs: Run) -> Piece:
    return Piece(tuple(r for r in runs if r.text))


def gap(text: str = " ") -> Piece:
    return Piece((Run(text),) if text else (), space=True)


SOFT = gap("")  # a break where no space is

# Han, kana, hangul, full-width forms: a line may break between any two of them...
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
# ...but not before these (a full stop or a closing bracket never starts a line)
_CLOSING = set("，。、：；！？）」』】》〉’”…,.:;!?)]}%")


def words(text: str, colour: str = "", bold: bool = False, background: str = "") -> list[Piece]:
    """Plain text as words and breaks: at spaces, and between two CJK characters."""
    out: list[Piece] = []
    for part in re.split(r"( +)", text):
        if not part:
            continue
        if part.startswith(" "):
            out.append(gap(part))
            continue
        chunks: list[str] = []
        for ch in part:  # a CJK character is a word of its own (punctuation stays put)
            if chunks and (_CJK.match(ch) or _CJK.match(chunks[-1][-1])) and \
                    ch not in _CLOSING:
                chunks.append(ch)
            elif chunks:
                chunks[-1] += ch
            else:
                chunks.append(ch)
        for i, chunk in enumerate(chunks):
            if i:
                out.append(SOFT)
            out.append(word(Run(chunk, colour, bold, background)))
    return out


def template(text: str, args: list[list[Piece]], colour: str = "",
             bold: bool = False) -> list[Piece]:
    """A translated sentence with {0}, {1}... replaced by ``args`` (pieces of their own)."""
    out: list[Piece] = []
    for i, part in enumerate(re.split(r"\{(\d)\}", text)):
        if i % 2:
            k = int(part)
            out.extend(args[k] if k < len(args) else words("{" + part + "}"))
        else:
            out.extend(words(part, colour, bold))
    return out


Measure = Callable[[Iterable[Run]], float]


def measurer(font: QFont) -> Measure:
    """The width of runs in ``font`` (each run's text measured once)."""
    regular = QFontMetricsF(font)
    heavy = QFont(font)
    heavy.setBold(True)
    bold = QFontMetricsF(heavy)
    seen: dict[tuple[str, bool], float] = {}

    def advance(text: str, is_bold: bool) -> float:
        width = seen.get((text, is_bold))
        if width is None:
            width = seen[text, is_bold] = (bold if is_bold else regular).horizontalAdvance(text)
        return width

    def measure(runs: Iterable[Run]) -> float:
        return sum(advance(r.text, r.bold) for r in runs)
    return measure


def _elide(piece: Piece, width: float, measure: Measure) -> Piece:
    """A word cut in its middle ("…") to ``width``, its start and end kept."""
    chars = [(c, i) for i, r in enumerate(piece.runs) for c in r.text]
    dots = Run("…", style.MUTED)

    def build(keep: int) -> Piece:
        head, tail = chars[:(keep + 1) // 2], chars[len(chars) - keep // 2:] if keep > 1 else []
        runs: list[Run] = []
        for part in (head, None, tail):
            if part is None:
                runs.append(dots)
                continue
            for c, i in part:
                r = piece.runs[i]
                if runs and runs[-1] is not dots and runs[-1].colour == r.colour and \
                        runs[-1].bold == r.bold and runs[-1].background == r.background:
                    runs[-1] = Run(runs[-1].text + c, r.colour, r.bold, r.background)
                else:
                    runs.append(Run(c, r.colour, r.bold, r.background))
        return Piece(tuple(runs))

    lo, hi = 0, len(chars) - 1  # characters kept: the most that fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(build(mid).runs) <= width:
            lo = mid
        else:
            hi = mid - 1
    return build(lo)


def _split(piece: Piece, width: float, first: float, measure: Measure) -> list[Piece]:
    """A word too long for any line cut into lines' worths (the body's bytes only)."""
    out: list[Piece] = []
    runs: list[Run] = []
    room = first
    for r in piece.runs:
        for c in r.text:
            trial = runs + [Run(c, r.colour, r.bold, r.background)]
            if runs and measure(trial) > room:
                out.append(Piece(tuple(runs)))
                runs, room = [Run(c, r.colour, r.bold, r.background)], width
            elif runs and runs[-1].colour == r.colour and runs[-1].bold == r.bold and \
                    runs[-1].background == r.background:
                runs[-1] = Run(runs[-1].text + c, r.colour, r.bold, r.background)
            else:
                runs.append(Run(c, r.colour, r.bold, r.background))
    if runs:
        out.append(Piece(tuple(runs)))
    return out


def flow(pieces: list[Piece], width: float, measure: Measure, long: str = "elide",
         indent: Piece | None = None) -> tuple[list[list[Piece]], bool]:
    """Lines of at most ``width``: breaks at spaces (the spaces a line breaks at are
    not drawn) and soft breaks only. A word wider than a line is cut in its middle (``long="elide"``)
    or, for a body's bytes, split (``"split"``). Lines after the first start with
    ``indent``. Returns the lines, and whether anything was cut."""
    lines: list[list[Piece]] = [[]]
    filled = False  # the line holds a word
    x = 0.0
    pending: list[Piece] = []
    cut = False
    indent_w = measure(indent.runs) if indent is not None else 0.0
    for p in pieces:
        if p.space:
            pending.append(p)
            continue
        w = measure(p.runs)
        spaces = sum(measure(q.runs) for q in pending)
        if filled and x + spaces + w > width:
            # the line breaks at these spaces: they are where it breaks (drawn, they
            # would make it wider than its box)
            lines.append([indent] if indent is not None else [])
            x, filled, pending, spaces = indent_w, False, [], 0.0
        room = width - x - spaces
        if w > room and not filled:
            if long == "split":
                parts = _split(p, width - indent_w, room, measure)
                for i, part in enumerate(parts):
                    if i:
                        lines.append([indent] if indent is not None else [])
                        x = indent_w
                    else:
                        lines[-1].extend(pending)
                        x += spaces
                    lines[-1].append(part)
                    x += measure(part.runs)
                filled, pending = True, []
                continue
            p = _elide(p, room, measure)
            cut = True
            w = measure(p.runs)
        lines[-1].extend(pending)
        lines[-1].append(p)
        x += spaces + w
        filled, pending = True, []
    lines[-1].extend(pending)
    return lines, cut


def _run_html(r: Run) -> str:
    # one space between words as it is; more, or at an end, kept as &nbsp; (HTML would
    # fold them): the bytes' own spaces all show
    text = re.sub(r"^ | (?= )| $", "&nbsp;", html.escape(r.text, quote=False))
    if r.bold:
        text = f"<b>{text}</b>"
    css = (f"color:{r.colour};" if r.colour else "") + \
        (f"background-color:{r.background};" if r.background else "")
    return f'<span style="{css}">{text}</span>' if css else text


def _joined(runs: Iterable[Run]) -> list[Run]:
    """Runs of one style (and the plain spaces between them) as one run."""
    out: list[Run] = []
    for r in runs:
        if out and not r.text.strip(" ") and not r.background and not out[-1].background:
            out[-1] = Run(out[-1].text + r.text, out[-1].colour, out[-1].bold)
        elif out and (out[-1].colour, out[-1].bold, out[-1].background) == \
                (r.colour, r.bold, r.background):
            out[-1] = Run(out[-1].text + r.text, r.colour, r.bold, r.background)
        else:
            out.append(r)
    return out


def lines_html(lines: list[list[Piece]]) -> str:
    return "<br>".join("".join(_run_html(r) for r in _joined(r for p in line for r in p.runs))
                       for line in lines)


def line_height(font: QFont, text: str) -> float:
    """A line's height in ``font``: taller where Chinese is drawn in the CJK font."""
    height = QFontMetricsF(font).lineSpacing()
    if _CJK.search(text):
        cjk = QFont(font)
        cjk.setFamilies([*style.CJK_SANS[:1], *cjk.families()])
        height = max(height, QFontMetricsF(cjk).lineSpacing())
    return height


def plain(lines: list[list[Piece]]) -> list[str]:
    return ["".join(p.text for p in line) for line in lines]


@dataclass
class Para:
    """A paragraph of a box: logical lines (each laid out on its own), how a word wider
    than the box is treated, and its margins."""
    lines: list[list[Piece]]
    long: str = "elide"
    indent: Piece | None = None
    before: int = 0  # margin above, px
    name: str = ""  # "status", "head", "body"...: what tests and the fit look for


def crlf_lines(text: str, colour: str = "", font: QFont | None = None) -> list[list[Piece]]:
    """Raw head bytes, line by line, each line's CR LF shown at its end as "\\r\\n",
    glued to its last word (a line never starts with it, nor splits it)."""
    out: list[list[Piece]] = []
    for line, end in re.findall(r"([^\r\n]*)(\r\n|\n|\r|$)", text):
        if not line and not end:
            continue
        pieces = words("".join(c if drawable(c, font) else _escape(c) for c in line), colour)
        if end:
            marker = Run(_escape(end[0]) + (_escape(end[1]) if len(end) > 1 else ""),
                         style.MUTED)
            trailing = []
            while pieces and pieces[-1].space:  # "odd  \r\n": the spaces stay with it
                trailing.insert(0, pieces.pop())
            runs = (pieces.pop().runs if pieces else ()) + tuple(
                r for t in trailing for r in t.runs) + (marker,)
            pieces.append(Piece(runs))
        out.append(pieces)
    return out


def body_pieces(preview: str, content_type: str, font: QFont | None) -> tuple[
        list[list[Piece]], bool]:
    """A body's first bytes: as text when they are text (its lines, CR LF shown), else
    as Python writes bytes: printable ASCII as itself, the rest as \\xNN. Returns the
    lines and whether the bytes were binary."""
    text, raw = decode_body(preview, content_type)
    if text is not None:
        lines: list[list[Piece]] = []
        for line, end in re.findall(r"([^\r\n]*)(\r\n|\n|\r|$)", text):
            if not line and not end:
                continue
            pieces: list[Piece] = []
            for part in re.split(r"( +)", line):
                if not part:
                    continue
                if part.startswith(" "):
                    pieces.append(gap(part))
                    continue
                runs = [Run(c) if drawable(c, font) else Run(_escape(c), style.MUTED)
                        for c in part]
                pieces.extend(words_of(runs))
            if end:
                marker = Run("".join(_escape(c) for c in end), style.MUTED)
                if pieces and not pieces[-1].space:
                    pieces[-1] = Piece(pieces[-1].runs + (marker,))
                else:
                    pieces.append(Piece((marker,)))
            lines.append(pieces)
        return lines, False
    pieces = []
    printable = ""
    for b in raw:
        if b in _PRINTABLE and b != 0x5C:
            printable += chr(b)
            continue
        if printable:
            pieces.extend(words(printable))
            pieces.append(SOFT)
            printable = ""
        pieces.append(word(Run(_escape(chr(b)), style.MUTED)))
        pieces.append(SOFT)
    if printable:
        pieces.extend(words(printable))
    return [pieces], True


def words_of(runs: list[Run]) -> list[Piece]:
    """Characters (some of them escapes) as one word, CJK characters each their own."""
    out: list[Piece] = []
    current: list[Run] = []
    for r in runs:
        if _CJK.match(r.text) and current:
            out.extend([_merged(current), SOFT])
            current = []
        current.append(r)
    if current:
        out.append(_merged(current))
    return out


class TextBox(QTextBrowser):
    """A box whose lines the view lays out (``paras``): it never wraps on its own, and
    lays its paragraphs out again at its own width whenever that changes."""

    def __init__(self) -> None:
        super().__init__()
        self.paras: list[Para] = []
        self.whole = ""  # the text in full (the tooltip, when a word had to be cut)
        self.cut = False
        self._laid_at: object = None
        self.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        # the lines are laid out to fit (a word too long is cut): no sideways scrolling
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def room(self, width: float | None = None) -> float:
        """The width the lines may take in a box ``width`` wide (this one's by default):
        frame, margins and a scroll bar's room (it may come) left out."""
        width = self.width() if width is None else width
        bar = self.verticalScrollBar().sizeHint().width()
        return width - 2 * self.frameWidth() - bar - 2 * self.document().documentMargin() - 2

    def laid_out(self, room: float, upto: str | None = None, font: QFont | None = None
                 ) -> tuple[list[tuple[Para, list[str]]], bool]:
        """Each paragraph's lines at ``room`` in ``font`` (the box's own by default): those
        before paragraph ``upto`` and two lines of it, when given, as plain text; and
        whether a word had to be cut."""
        measure = measurer(font or self.font())
        out = []
        cut = False
        for para in self.paras:
            lines: list[str] = []
            for line in para.lines:
                laid, c = flow(line, room, measure, para.long, para.indent)
                lines.extend(plain(laid))
                cut |= c
            if para.name == upto:
                out.append((para, lines[:2]))
                break
            out.append((para, lines))
        return out, cut

    def height_for(self, width: float, upto: str | None = None) -> float:
        """The height this box needs at ``width`` to show its paragraphs (up to two lines
        of paragraph ``upto``)."""
        return self.fits(width, upto)[0]

    def fits(self, width: float, upto: str | None = None, font: QFont | None = None
             ) -> tuple[float, bool]:
        """The height this box needs at ``width`` in ``font`` (up to two lines of paragraph
        ``upto``), and whether a word would have to be cut there (too long for any line)."""
        font = font or self.font()
        laid, cut = self.laid_out(self.room(width), upto, font)
        return sum(sum(line_height(font, line) for line in lines) + para.before
                   for para, lines in laid) + \
            2 * self.document().documentMargin() + 2 * self.frameWidth() + 2, cut

    def show_paras(self, paras: list[Para], whole: str) -> None:
        """What to show; laid out by ``lay_out`` (the view's fit, once it chose the type)."""
        self.paras, self.whole = paras, whole
        self._laid_at = None

    def lay_out(self, force: bool = False) -> None:
        key = (self.width(), self.font().key())
        if key == self._laid_at and not force:
            return
        self._laid_at = key  # type: ignore[assignment]
        measure = measurer(self.font())
        room = self.room()
        parts = []
        self.cut = False
        for para in self.paras:
            lines: list[list[Piece]] = []
            for line in para.lines:
                laid, cut = flow(line, room, measure, para.long, para.indent)
                self.cut |= cut
                lines.extend(laid)
            parts.append(f'<p style="margin-top:{para.before}px; margin-bottom:0px">'
                         f'{lines_html(lines)}</p>')
        self.setHtml("".join(parts))
        self.setToolTip(self.whole if self.cut else "")

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().resizeEvent(event)
        if self.paras or self.document().characterCount() > 1:
            self.lay_out()

    def block_rect(self, name: str):  # type: ignore[no-untyped-def]
        """Where paragraph ``name`` is, in the viewport's coordinates (None if absent)."""
        index = next((i for i, p in enumerate(self.paras) if p.name == name), None)
        if index is None:
            return None
        block = self.document().findBlockByNumber(index)
        rect = self.document().documentLayout().blockBoundingRect(block)
        return rect.translated(-self.horizontalScrollBar().value(),
                               -self.verticalScrollBar().value())


def _status_text(status: int) -> str:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    return f"{status} {phrase}".strip()


class HttpView(View):
    name = "http"
    title = QT_TRANSLATE_NOOP("View", "HTTP")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.exchange: Exchange | None = None
        self.outcome: Outcome | None = None
        self._key: tuple | None = None
        self._shown = False  # self.exchange is what the boxes show
        self.type_factor = 1.0  # below 1 when the words would not fit (zoomed in)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        # the words take the height they need: the boxes give way, never the words
        self.heading.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        # The expression and the two outcomes: lines laid out here (never wrapped by Qt,
        # which breaks "/index.html?lang=zh" after its "?")
        self.regex_label = QLabel()
        self.compare_label = QLabel()
        for label in (self.regex_label, self.compare_label):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(False)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.regex_pieces: list[Piece] = []
        self.compare_rows: list[list[Piece]] = []
        self.request_box = TextBox()
        self.headers_box = TextBox()
        self.response_box = TextBox()
        # The answer's body has a box of its own under the request's bytes (a short head
        # leaves room there): the answer's status and head take their column from top to
        # bottom, and the body's first bytes show at once, zoomed in too.
        self.body_box = TextBox()
        self.answer: list[Para] = []
        self.answer_whole = ""
        self.titles = titles = [QLabel(), QLabel(), QLabel()]
        for t in titles:
            t.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._set_words()
        self._style()
        self.grid = grid = QGridLayout()
        grid.addWidget(titles[0], 0, 0)
        grid.addWidget(titles[1], 0, 1)
        grid.addWidget(titles[2], 0, 2)
        grid.addWidget(self.request_box, 1, 0)
        grid.addWidget(self.headers_box, 1, 1, 2, 1)
        grid.addWidget(self.response_box, 1, 2, 2, 1)
        grid.addWidget(self.body_box, 2, 0)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.regex_label)
        layout.addWidget(self.compare_label)
        layout.addLayout(grid, 1)
        self._stretch(3)
        self._show_nothing()

    def _style(self) -> None:
        """Fonts and colours from ``style`` (again when the theme or the zoom changes)."""
        self.setStyleSheet(f"HttpView {{background:{style.BACKGROUND};}} "
                           f"QLabel {{color:{style.FOREGROUND};}}")
        self._fonts(self.type_factor)
        for box in self.boxes:
            box.setStyleSheet(f"background:{style.BACKGROUND};color:{style.FOREGROUND};"
                              f"border:{max(1, round(style.pen(1)))}px solid {style.GRID}")

    # Narrower than this many characters of the boxes' type a column (a request line,
    # "GET /index.html HTTP/1.1"), and the parsed headers (which the raw bytes show
    # too) give their room to the bytes and the answer: zoomed in, or half of a pair.
    MIN_COLUMN_CHARS = 24
    # The columns' shares: three or two of them; while the request is not answered, its
    # bytes take the answer's room ("not answered yet" needs little).
    STRETCH = {3: (5, 4, 5), 2: (4, 0, 6)}
    STRETCH_UNANSWERED = {3: (6, 5, 3), 2: (7, 0, 3)}

    def _shares(self, columns: int) -> tuple[int, int, int]:
        answered = any(p.name == "status" for p in self.answer)
        return (self.STRETCH if answered or self.exchange is None
                else self.STRETCH_UNANSWERED)[columns]

    @property
    def columns(self) -> int:
        """How many of the three boxes are shown (3, or 2 when cramped)."""
        return 2 if self.headers_box.isHidden() else 3

    @property
    def boxes(self) -> tuple[TextBox, ...]:
        return (self.request_box, self.headers_box, self.response_box, self.body_box)

    @property
    def body_holder(self) -> TextBox:
        """The box that shows the answer's body."""
        return self.body_box

    def _stretch(self, columns: int) -> None:
        for col, stretch in enumerate(self._shares(columns)):
            self.grid.setColumnStretch(col, stretch)

    def _show_answer(self) -> None:
        """The answer's status and head in its box, its body in the body's."""
        cut = next((i for i, p in enumerate(self.answer) if p.name == "body label"),
                   len(self.answer))
        self.response_box.show_paras(self.answer[:cut], self.answer_whole)
        body = self.answer[cut:]
        if body:
            body = [Para(body[0].lines, body[0].long, body[0].indent, 0, body[0].name),
                    *body[1:]]
        self.body_box.show_paras(body, self.answer_whole)

    @staticmethod
    def _type(f: float) -> dict[str, QFont]:
        """The view's fonts at ``f`` times their size."""
        return {"heading": style.font(1.3 * f, bold=True),
                "regex": style.font(1.2 * f, mono=True), "compare": style.font(1.0 * f),
                "title": style.font(1.0 * f, bold=True), "box": style.font(1.1 * f, mono=True)}

    def _fonts(self, f: float) -> None:
        fonts = self._type(f)
        self.heading.setFont(fonts["heading"])
        self.regex_label.setFont(fonts["regex"])
        self.compare_label.setFont(fonts["compare"])
        for t in self.titles:
            t.setFont(fonts["title"])
        for box in self.boxes:
            box.setFont(fonts["box"])

    def _label_lines(self, label: QLabel, rows: list[list[Piece]], width: float,
                     font: QFont | None = None) -> tuple[list[list[Piece]], bool]:
        measure = measurer(font or label.font())
        lines: list[list[Piece]] = []
        cut = False
        for row in rows:
            laid, c = flow(row, width, measure)
            lines.extend(laid)
            cut |= c
        return lines, cut

    def _box_widths(self, width: float) -> dict[TextBox, float]:
        """Each column's box's width in a view ``width`` wide (the grid's shares)."""
        columns = self.columns
        boxes = (self.request_box, self.headers_box, self.response_box)
        stretch = dict(zip(boxes, self._shares(columns)))
        shown = [b for b in boxes if stretch[b]]
        spacing = max(0, self.grid.horizontalSpacing())
        room = width - spacing * (len(shown) - 1)
        total = sum(stretch[b] for b in shown)
        return {b: room * stretch[b] / total for b in shown}

    def _fixed(self, width: float, f: float) -> tuple[float, bool]:
        """The height above the boxes at ``width`` in type ``f`` (the heading, the
        expression, the outcomes, the titles; margins and spacing), and whether a word of
        the expression's line or of the outcomes would be cut there."""
        fonts = self._type(f)
        labels = QFontMetricsF(fonts["heading"]).boundingRect(
            QRectF(0, 0, width, 1e6), int(Qt.TextFlag.TextWordWrap), self.heading.text()).height()
        cut = False
        for label, rows, font in ((self.regex_label, [self.regex_pieces], fonts["regex"]),
                                  (self.compare_label, self.compare_rows, fonts["compare"])):
            lines, c = self._label_lines(label, rows, width, font)
            cut |= c
            if any(lines):
                labels += sum(line_height(font, text) for text in plain(lines))
        title = max(line_height(fonts["title"], t.text()) for t in self.titles)
        layout = self.layout()
        margins = layout.contentsMargins()
        return labels + title + margins.top() + margins.bottom() + \
            4 * max(0, layout.spacing()) + max(0, self.grid.verticalSpacing()), cut

    def _needed(self, width: float, f: float) -> tuple[float, bool]:
        """The height the words take at ``width`` in type ``f``: what is above the boxes,
        and each column's text (the request's bytes with the first lines of the answer's
        body under them, the parsed headers, the answer's status and head): what must fit
        before the view is readable. And whether a word (a token of the bytes, a URL)
        would be cut there: then the type is made smaller first, as long as it may."""
        widths = self._box_widths(width)
        spacing = max(0, self.grid.verticalSpacing())
        fixed, cut = self._fixed(width, f)
        font = self._type(f)["box"]
        columns = []
        for box, w in widths.items():
            need, c = box.fits(w, font=font)
            cut |= c
            if box is self.request_box and self.body_box.paras:
                body, c = self.body_box.fits(w, "body", font)
                need += spacing + body
                cut |= c
            columns.append(need)
        return fixed + max(columns, default=0.0), cut

    def _fits(self, width: float, f: float) -> bool:
        need, cut = self._needed(width, f)
        return need <= self.height() and not cut

    def _fit(self) -> None:
        # Zoomed in on a small screen, the words would not fit: the type is set smaller
        # until the words, the request's bytes and the answer's head and first bytes of
        # its body fit, never below 100 %'s size.
        margins = self.layout().contentsMargins()
        width = max(self.width() - margins.left() - margins.right(), 100)
        floor = min(1.0, 1.0 / style.ZOOM)
        char = QFontMetricsF(self._type(1.0)["box"]).horizontalAdvance("M")
        cramped = (width - 20) / 3 < self.MIN_COLUMN_CHARS * char
        self.headers_box.setVisible(not cramped)
        self.titles[1].setVisible(not cramped)
        self._stretch(2 if cramped else 3)
        # The largest type that fits (within 2 %): often the one of the exchange before.
        last = min(1.0, max(floor, self.type_factor))
        if self._fits(width, 1.0):
            f = 1.0
        elif floor >= 1.0 or not self._fits(width, floor):
            f = floor
        elif self._fits(width, last) and (last >= 1.0 or not self._fits(width, last * 1.02)):
            f = last
        else:
            lo, hi = floor, 1.0  # lo fits, hi does not
            for _ in range(8):  # bounded bisection: to within 0.4 % of the range
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if self._fits(width, mid) else (lo, mid)
            f = lo
        self._fonts(f)
        self.type_factor = f
        self._lay_out_labels(width)
        # the request's bytes their whole height (up to half the column), the body the rest
        body = bool(self.body_box.paras)
        self.body_box.setVisible(body)
        w = self._box_widths(width)[self.request_box]
        column = self.height() - self._fixed(width, f)[0]
        if body:
            need = self.request_box.height_for(w) + 4
            spacing = max(0, self.grid.verticalSpacing())
            if need + spacing + self.body_box.height_for(w) > column:  # not both whole:
                # the request at least half the column, the body at least its first lines
                need = min(need, max(column / 2, column - spacing -
                                     self.body_box.height_for(w, "body")))
            self.request_box.setFixedHeight(int(max(60.0, need)))
        else:
            self.request_box.setMinimumHeight(0)
            self.request_box.setMaximumHeight(16777215)
        self.grid.setRowStretch(1, 0 if body else 1)
        self.grid.setRowStretch(2, 1 if body else 0)
        for box in self.boxes:
            box.lay_out()  # (once: unless its width or its type changed, it is as it is)
        # the new type's sizes now, not at the next turn of the event loop (a picture may
        # be taken before it)
        self.layout().activate()

    def _lay_out_labels(self, width: float | None = None) -> None:
        if width is None:
            margins = self.layout().contentsMargins()
            width = max(self.width() - margins.left() - margins.right(), 100)
        for label, rows in ((self.regex_label, [self.regex_pieces]),
                            (self.compare_label, self.compare_rows)):
            lines, cut = self._label_lines(label, rows, width)
            label.setText(lines_html(lines) if any(lines) else "")
            whole = "\n".join("".join(p.text for p in row) for row in rows)
            label.setToolTip(whole if cut else "")

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def apply_theme(self) -> None:
        self._style()
        self._key = None  # the text carries the colours: written again
        self._shown = False
        super().apply_theme()
        self._fit()

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
        if at is not None and ex.status == 404:  # a file error it was answered for (errno)
            before = [int(i) for i in responses if last < i < at]
            for i in log.indices(conn=request.conn, kinds=["error"], src="server",
                                 start=(before[-1] if before else last) + 1,
                                 stop=at)[-8:].tolist():
                if log[i].data.get("what") == "file":
                    ex.file_error = str(log[i].data.get("errno") or "?")
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
            if error.data.get("status") is None or error.data.get("what") == "file":
                continue  # not a refusal (a file error is a request's: its answer's errno)
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
        log = timeline.log
        self._site_checks = {str(log[i].data.get("path")): bool(log[i].data.get("exists"))
                             for i in log.indices(kinds=["site_check"],
                                                  stop=timeline.cursor + 1).tolist()}
        exchange = self.find(timeline)
        if exchange is not None and exchange == self.exchange and self._shown:
            return  # the cursor moved on, the exchange is the same: nothing to lay out
        self.exchange = exchange
        self._shown = exchange is not None
        if exchange is None:
            self._show_nothing()
        else:
            self._show(exchange)
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
        self._shown = False
        if self.timeline is None:
            self._show_nothing()
        super().retranslate()

    # ------------------------------------------------------------ drawing
    def _show_nothing(self) -> None:
        self.outcome = None
        self.heading.setText(self.tr("No request yet at this point of the timeline"))
        self.regex_pieces = []
        self.compare_rows = [words(self.tr("Send one with the traffic buttons, or open the "
                                           "URL in a browser."))]
        for box in self.boxes:
            box.show_paras([], "")
        self.answer, self.answer_whole = [], ""
        self._lay_out_labels()

    def _request_line_pieces(self, ex: Exchange) -> list[Piece]:
        """The request line as words, the expression's group marked (as the lecture's
        re.match cuts it)."""
        line = ex.request_line
        a, b = ex.regex_span or (-1, -1)
        out: list[Piece] = []
        at = 0
        for part in re.split(r"( +)", line):
            if not part:
                continue
            if part.startswith(" "):
                out.append(gap(part))
            else:
                runs = []
                for i, c in enumerate(part, start=at):
                    inside = a <= i < b
                    text = c if drawable(c) else _escape(c)
                    runs.append(Run(text, style.BLACK if inside else "", inside,
                                    style.YELLOW if inside else ""))
                out.append(_merged(runs))
            at += len(part)
        return out

    def _outcome_rows(self, ex: Exchange) -> list[list[Piece]]:
        """Where each reading leads: the lecture's group(1) and the file its server would
        open, with the answer that gives; the parser's target, the file this server
        looked for and its answer."""
        self.outcome = out = lecture_outcome(ex, getattr(self, "_site_checks", None))

        def shown(text: str) -> str:  # a NUL, a control character: as an escape
            return "".join(c if drawable(c) else _escape(c) for c in text)

        def bold(text: str, colour: str = "") -> list[Piece]:
            return [word(Run(shown(text), colour, True))]

        def mono(text: str) -> list[Piece]:
            return [word(Run(shown(text)))]
        if ex.regex_group is None:
            lecture = template(self.tr("group(1): {0}"),
                               [bold(self.tr("no match"), style.VERMILION)])
        else:
            if out.outside:
                then = words(self.tr("outside ./html: a path traversal"), style.VERMILION,
                             True)
            elif out.status == 404:
                then = bold("404", style.VERMILION) + [gap()] + \
                    words(self.tr("no such file"), style.MUTED)
            elif out.status is not None:
                then = bold(_status_text(out.status), style.GREEN if out.status < 400
                            else style.VERMILION)
            else:  # what it answers is not in the recording
                then = [word(Run("?", style.MUTED, True)), gap()] + \
                    words(self.tr("(the recording does not say)"), style.MUTED)
            if out.checked:  # where that came from: the lesson looked, not this server
                then = then + [gap()] + words(self.tr("(the site, looked at when recorded)"),
                                              style.MUTED)
            lecture = template(self.tr("group(1): {0} → the lecture's server opens {1} → {2}"),
                               [bold(ex.regex_group), mono("./html" + (out.file or "")), then])
        if ex.status is None:
            answer = words(self.tr("not answered yet"), style.MUTED)
        else:
            answer = bold(_status_text(ex.status),
                          style.GREEN if ex.status < 400 else style.VERMILION)
        if ex.refused:
            server = template(self.tr("httptools: {0} → {1}"), [
                words(self.tr("refused: {0}").format(ex.refused), style.VERMILION, True),
                answer])
        else:
            same = [word(Run(self.tr("the same"), style.GREEN, True))] if ex.agree else \
                [word(Run(self.tr("they differ"), style.VERMILION, True))]
            named = server_named(ex.path)
            looked = mono("./html" + named.file) if named.file else words("?")
            if named.rule and named.file is None:  # "*", a relative or unparsable target
                server = template(
                    self.tr("httptools: {0} ({1}) → this server names no file → {2}"),
                    [bold(ex.path), same, answer])
            elif named.rule:  # answered without a look at the disk (engine/static.py)
                server = template(
                    self.tr("httptools: {0} ({1}) → this server refuses the name {2} → {3}"),
                    [bold(ex.path), same, looked, answer])
            else:
                server = template(
                    self.tr("httptools: {0} ({1}) → this server looks for {2} → {3}"),
                    [bold(ex.path), same, looked, answer])
        return [lecture, server]

    def _show(self, ex: Exchange) -> None:
        client, _, server = ex.conn.partition(">")
        ports = client.rsplit(":", 1)[-1], server.rsplit(":", 1)[-1]
        if ex.refused:  # the status the parser's error recorded (its answer may not be sent yet)
            self.heading.setText(self.tr("Refused with {0} on connection {1} → {2}: the parser "
                                         "said no").format(ex.refused_status, *ports))
        else:
            self.heading.setText(self.tr("Request {0} of {1} on connection {2} → {3}").format(
                ex.number, ex.of, *ports))
        self.regex_pieces = [word(Run('re.match(r"^[^/]+(/[^\\s]*)",', style.MUTED)), gap()] + \
            self._request_line_pieces(ex)
        self.compare_rows = self._outcome_rows(ex)

        # the request's bytes
        font = self.request_box.font()
        raw = crlf_lines(ex.head, font=font) if ex.head else [self._request_line_pieces(ex)]
        request = [Para(raw, name="head")]
        if ex.truncated:
            request.append(Para([words(self.tr("… cut at 2,048 characters"), style.MUTED)],
                                before=6, name="cut"))
        self.request_box.show_paras(request, ex.head or ex.request_line)

        # the headers as parsed
        if ex.refused:
            said = self.tr("The parser stopped here and the server answered with an error "
                           "instead: {0}").format(ex.refused)
            parsed = [Para([words(said, style.VERMILION)], name="refused")]
        else:
            first = words(ex.method) + [gap(), word(Run(ex.path, bold=True)), gap(),
                                        word(Run("HTTP/" + ex.version))]
            rows = []
            for n, v in ex.headers:
                name = word(Run(n + ":", style.CLIENT, True))
                value = [word(Run("".join(c if drawable(c) else _escape(c) for c in w.text)))
                         if not w.space else w for w in words(v)]
                rows.append([name, gap()] + value)
            keep = {True: self.tr("keep-alive"), False: self.tr("close after this answer"),
                    None: "—"}[ex.keep_alive]
            parsed = [Para([first], name="line"),
                      Para(rows, indent=word(Run("  ")), before=6, name="headers"),
                      Para([words(self.tr("connection: {0}").format(keep), style.MUTED)],
                           before=6, name="connection")]
        self.headers_box.show_paras(parsed, "\n".join(f"{n}: {v}" for n, v in ex.headers))

        # the answer
        if ex.status is None:
            answer = [Para([words(self.tr("not answered yet"), style.MUTED)], name="waiting")]
        else:
            colour = style.GREEN if ex.status < 400 else style.VERMILION
            size = self.tr("{0} bytes of body").format(ex.length)
            answer = [Para([[word(Run(str(ex.status), colour, True))] +
                            words(" · " + size, colour)], name="status")]
            if ex.undelivered:
                lost = self.tr("not delivered: the client had gone ({0})").format(ex.undelivered)
                answer.append(Para([words(lost, style.VERMILION, True)], before=4, name="lost"))
            note = self._status_note(ex.status)
            if note:
                answer.append(Para([words(note, style.MUTED)], before=4, name="note"))
            if ex.response_head:  # the head as sent (none recorded: none made up)
                answer.append(Para(crlf_lines(ex.response_head, font=font), before=6,
                                   name="head"))
            if ex.preview:
                ctype = header_value(ex.response_head, "Content-Type")
                body, binary = body_pieces(ex.preview, ctype, self.response_box.font())
                more = (ex.length or 0) - len(ex.preview.encode("latin-1", "replace"))
                label = self.tr("response body, first bytes (binary: \\xNN is one byte):") if binary \
                    else self.tr("response body, first bytes:")
                answer.append(Para([words(label, style.MUTED)], before=6, name="body label"))
                if more > 0:
                    body[-1] = body[-1] + [gap()] + words(
                        "… " + self.tr("{0} bytes more").format(more), style.MUTED)
                answer.append(Para(body, long="split", name="body"))
        self.answer, self.answer_whole = answer, ex.response_head + ex.preview
        self._show_answer()

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


def _merged(runs: list[Run]) -> Piece:
    """Runs of one style joined: one word."""
    out: list[Run] = []
    for r in runs:
        if out and (out[-1].colour, out[-1].bold, out[-1].background) == \
                (r.colour, r.bold, r.background):
            out[-1] = Run(out[-1].text + r.text, r.colour, r.bold, r.background)
        else:
            out.append(r)
    return Piece(tuple(out))
