"""A lesson as a printed handout: ``sockscope lesson NAME --handout OUT.pdf``.

One A4 landscape page per step, after a title page (the lesson's title, its
section of the lecture and its summary). A step's page has a header (the
lesson's title, "Step k of N"), the step's picture and, under it, the step's
caption as real PDF text (selectable, searchable), its question when it asks
one ("Question: ...") and the command line behind it when it is not the
default one.

The picture is the presentation layout without its caption (the caption is the
text under it, at a size made for paper): the step's view, or the pair, with
the key moment's banner, drawn at twice its pixels for print. With both
languages, each step has its English page and then its Chinese page, each
picture in its page's language (the views' own words are translated too); the
title page holds both.
"""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QMarginsF, QPoint, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (QColor, QFont, QFontDatabase, QFontMetricsF, QImage, QPageLayout,
                           QPageSize, QPainter, QPdfWriter, QPen)
from PySide6.QtWidgets import QApplication

from .lessons.base import lettered
from .views import style

if TYPE_CHECKING:
    from .app import MainWindow
    from .lessons import Prepared

RESOLUTION = 300  # dots per inch of the PDF's drawing
MARGIN_MM = 12.0
PICTURE = QSize(1280, 600)  # the views' area drawn for a page (window pixels), at least
TALLEST = 860  # and at most this tall: taller when the caption leaves the room
PIXELS = 2  # drawn at this many pixels per window pixel: sharp on paper
CAPTION_PT = 13.0  # the caption's type; smaller (down to MIN_CAPTION_PT) if it is long
MIN_CAPTION_PT = 9.0
LEAST_PICTURE = 0.45  # of the page's height, before the caption's type gets smaller

# The page's own words, in the lesson's language (as ``sockscope lesson --notes``).
WORDS = {
    "en": {"step": "Step {0} of {1}", "question": "Question: ", "recorded": "Recorded with: ",
           "section": "Section {0}", "steps": "{0} steps", "made": "SockScope lesson {0}"},
    "zh_CN": {"step": "第 {0} 步，共 {1} 步", "question": "问题：", "recorded": "录制时使用：",
              "section": "第 {0} 节", "steps": "共 {0} 步", "made": "SockScope 课程 {0}"},
}


def words(lang: str) -> dict[str, str]:
    return WORDS["zh_CN" if lang.startswith("zh") else "en"]


def unwritable(path: str | Path) -> str | None:
    """Why ``path`` cannot be written (before a lesson is recorded for it), or None."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return f"cannot write {path}: it is a folder"
    if not folder.is_dir():
        return f"cannot write {path}: there is no folder {folder}"
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None


def text_font(lang: str, points: float, bold: bool = False) -> QFont:
    """Type for paper: DejaVu Sans, and a Simplified Chinese cut for the Han characters.
    (Latin first on Chinese pages too: the CJK font's Latin letters and digits next to
    Latin words take substituted glyphs that Qt's PDF cannot map back to characters, so
    they would be missing from the PDF's text.)"""
    f = QFont()
    f.setFamilies(["DejaVu Sans", *style.CJK_SANS])
    f.setPointSizeF(points)
    f.setBold(bold)
    for tag in ("liga", "clig"):  # "fi" as two letters: the PDF's text is searched, copied
        f.setFeature(QFont.Tag(tag), 0)
    return f


class _Page:
    """Drawing one page of the PDF: lengths in millimetres, turned into the device's dots."""

    def __init__(self, writer: QPdfWriter, painter: QPainter) -> None:
        self.painter = painter
        self.dots = writer.resolution() / 25.4  # per millimetre
        self.width, self.height = writer.width(), writer.height()  # inside the margins

    def mm(self, length: float) -> float:
        return length * self.dots

    def text_height(self, text: str, font: QFont, width: float) -> float:
        if not text:
            return 0.0
        metrics = QFontMetricsF(font, self.painter.device())
        return metrics.boundingRect(QRectF(0, 0, width, 1e7), int(Qt.TextFlag.TextWordWrap),
                                    text).height()

    def text(self, y: float, text: str, font: QFont, colour: str = "#000000",
             align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft, x: float = 0.0,
             width: float | None = None) -> float:
        """``text`` wrapped at ``width`` from (``x``, ``y``); returns the y under it."""
        width = self.width - x if width is None else width
        height = self.text_height(text, font, width)
        if text:
            self.painter.setFont(font)
            self.painter.setPen(QColor(colour))
            self.painter.drawText(QRectF(x, y, width, height),
                                  int(align | Qt.AlignmentFlag.AlignTop
                                      | Qt.TextFlag.TextWordWrap), text)
        return y + height

    def rule(self, y: float) -> None:
        self.painter.setPen(QPen(QColor("#808080"), self.mm(0.25)))
        self.painter.drawLine(QPointF(0, y), QPointF(self.width, y))


def _picture(window: MainWindow, size: QSize = PICTURE) -> QImage:
    """The current step's views (the presentation layout's, without the caption) as a
    picture ``PIXELS`` times as dense as the window draws it."""
    from .presentation import _settle
    p = window.presentation
    page = p._page
    if page is None or not p.active:
        raise RuntimeError("not in the presentation layout")
    window.caption_box.hide()  # the caption is the page's own text
    for _ in range(2):  # the window around the page: as big as the page needs
        window.resize(size + (window.size() - page.size()))
        QApplication.instance().processEvents()
    _settle(window)
    image = QImage(page.size() * PIXELS, QImage.Format.Format_RGB32)
    image.setDevicePixelRatio(PIXELS)
    image.fill(QColor(style.BACKGROUND))
    painter = QPainter(image)
    try:
        page.render(painter, QPoint(0, 0))
    finally:
        painter.end()
    return image


def _header(page: _Page, left: str, right: str, lang: str) -> float:
    font = text_font(lang, 9.5)
    room = page.width * 0.75
    page.text(0, left, font, "#404040", width=room)
    page.text(0, right, font, "#404040", Qt.AlignmentFlag.AlignRight, x=room,
              width=page.width - room)
    y = max(page.text_height(left, font, room), page.text_height(right, font, page.width))
    y += page.mm(1.5)
    page.rule(y)
    return y + page.mm(4)


def _title_page(page: _Page, prepared: Prepared, langs: list[str]) -> None:
    lesson = prepared.lesson
    y = page.mm(30) if len(langs) == 1 else page.mm(14)
    for n, lang in enumerate(langs):
        said = words(lang)
        if n:
            y += page.mm(8)
            page.rule(y)
            y += page.mm(10)
        title = lesson.title.get(lang) or lesson.title["en"]
        summary = lesson.summary.get(lang) or lesson.summary["en"]
        y = page.text(y, title, text_font(lang, 30 if len(langs) == 1 else 24, bold=True))
        y += page.mm(5)
        y = page.text(y, said["section"].format(lesson.section) + "   ·   "
                      + said["steps"].format(len(prepared.steps)),
                      text_font(lang, 14), "#404040")
        y += page.mm(7)
        y = page.text(y, summary, text_font(lang, 17))
    page.text(page.height - page.mm(8), words(langs[0])["made"].format(lesson.name),
              text_font(langs[0], 9), "#606060")


def _step_page(page: _Page, window: MainWindow, prepared: Prepared, k: int,
               lang: str) -> None:
    said = words(lang)
    lesson = prepared.lesson
    top = _header(page, lesson.title.get(lang) or lesson.title["en"],
                  said["step"].format(k + 1, len(prepared.steps)), lang)
    narration, asked = prepared.narration(k, lang), prepared.question(k, lang)
    note = prepared.steps[k].footnote
    gap = page.mm(4)
    points = CAPTION_PT
    while True:  # the caption's type: smaller only if the picture would get too small
        fonts = (text_font(lang, points), text_font(lang, points, bold=True),
                 text_font(lang, max(8.0, points * 0.72)))
        choices = prepared.choices(k, lang)
        if asked and choices:  # on paper, the choices; the answer is the next page's
            asked += "\n" + lettered(choices)
        blocks = [(narration, fonts[0], "#000000"),
                  ((said["question"] + asked) if asked else "", fonts[1], "#000000"),
                  ((said["recorded"] + note) if note else "", fonts[2], "#505050")]
        text_h = sum(page.text_height(t, f, page.width) + (page.mm(2.5) if t else 0)
                     for t, f, _ in blocks)
        room = page.height - top - gap - text_h
        if room >= page.height * LEAST_PICTURE or points <= MIN_CAPTION_PT:
            break
        points = max(MIN_CAPTION_PT, points - 1)
    window.go_to_step(k)
    room = max(room, page.mm(20))
    # The views drawn as tall as the page has room for (within reason), then scaled to it.
    tall = round(PICTURE.width() * room / page.width)
    size = QSize(PICTURE.width(), max(PICTURE.height(), min(TALLEST, tall)))
    image = _picture(window, size)
    scale = min(page.width / size.width(), room / size.height())
    w, h = size.width() * scale, size.height() * scale
    target = QRectF((page.width - w) / 2, top, w, h)
    page.painter.drawImage(target, image)
    page.painter.setPen(QPen(QColor("#B0B0B0"), page.mm(0.2)))
    page.painter.drawRect(target)
    y = top + h + gap
    for text, font, colour in blocks:
        if text:
            y = page.text(y, text, font, colour) + page.mm(2.5)


def write_handout(window: MainWindow, prepared: Prepared, path: str | Path,
                  langs: list[str], steps: list[int] | None = None) -> int:
    """Write the lesson ``prepared`` (open in ``window``, or opened there) as a PDF at
    ``path``: a title page, then each step (``steps``, from 0; default all) in each of
    ``langs`` ("en", "zh_CN"), a step's languages one after the other. Returns the
    number of pages. Raises OSError when the file cannot be written. The window is
    left as it was (its language, layout, step)."""
    if not langs:
        raise ValueError("no language to write the handout in")
    steps = list(range(len(prepared.steps))) if steps is None else list(steps)
    if window.lesson is not prepared:
        window.open_lesson(prepared)
    first_lang, first_step = window.language, window.lesson_step
    caption_hidden = window.caption_box.isHidden()
    size = window.size()
    writer = QPdfWriter(str(path))
    writer.setResolution(RESOLUTION)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Landscape,
                                     QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
                                     QPageLayout.Unit.Millimeter))
    title = prepared.lesson.title
    writer.setTitle(" / ".join(dict.fromkeys(title.get(lang) or title["en"] for lang in langs)))
    writer.setCreator("SockScope")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write {path}")
    presentation = window.presentation
    was_presenting = presentation.active
    pages = 0
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        page = _Page(writer, painter)
        _title_page(page, prepared, langs)
        pages = 1
        if not was_presenting:
            presentation.enter(fullscreen=False)
        for view in window.views.values():
            if hasattr(view, "throttle"):
                view.throttle = False  # every plot drawn at once
        window.show()
        for k in steps:
            for lang in langs:
                if window.language != lang:
                    window.set_language(lang)
                if not writer.newPage():
                    raise OSError(f"cannot write {path}: no new page")
                _step_page(page, window, prepared, k, lang)
                pages += 1
    finally:
        painter.end()
        if window.language != first_lang:
            window.set_language(first_lang)
        if not was_presenting:
            presentation.leave()
        window.caption_box.setHidden(caption_hidden)
        window.resize(size)
        window.go_to_step(first_step)
        QApplication.instance().processEvents()
    if not Path(path).is_file():
        raise OSError(f"cannot write {path}")
    searchable(path, _unicode_fixes(langs))
    return pages


# ---------------------------------------------------------------- the PDF's text
# Qt's PDF maps each glyph back to the lowest code point that the font maps to it: Noto
# Sans CJK draws 长 and the radical ⻓ (U+2ED3) with one glyph, 用 and ⽤ (U+2F64), and the
# space and the tab, so the PDF's text would read "⻓连接" and "\t": a search for 长连接
# would find nothing, a copy would paste radicals. ``searchable`` puts the right code
# points in the PDF's ToUnicode maps, in place (same length: no offset moves).
_CMAP = re.compile(rb"begincmap.*?endcmap", re.S)
_ARRAY = re.compile(rb"\[[^\]]*\]")
_CODE = re.compile(rb"<([0-9A-Fa-f]{4})>")
_ONE = re.compile(rb"^(<([0-9A-Fa-f]{4})> <\2> )<([0-9A-Fa-f]{4})>", re.M)  # <c> <c> <u>


def _unicode_fixes(langs: list[str]) -> dict[int, int]:
    """Code point -> the one the text meant: the blanks, and each CJK radical the CJK
    fonts draw with a unified ideograph's glyph, that ideograph."""
    from PySide6.QtGui import QRawFont
    fixes = {0x09: 0x20, 0x0A: 0x20, 0x0D: 0x20}
    radicals = "".join(chr(c) for c in range(0x2E80, 0x2FE0))
    ideographs = "".join(chr(c) for c in range(0x3400, 0xA000))
    for bold in (False, True):
        raw = QRawFont.fromFont(text_font("zh_CN", 12, bold), QFontDatabase.WritingSystem
                                .SimplifiedChinese)
        if not raw.isValid():
            continue
        first: dict[int, int] = {}
        for c, g in zip(range(0x3400, 0xA000), raw.glyphIndexesForString(ideographs)):
            if g:
                first.setdefault(g, c)
        for c, g in zip(range(0x2E80, 0x2FE0), raw.glyphIndexesForString(radicals)):
            if g in first:
                fixes.setdefault(c, first[g])
    for c in range(0x2F00, 0x2FD6):  # Kangxi radicals: Unicode's own equivalents
        same = unicodedata.normalize("NFKC", chr(c))
        if same != chr(c):
            fixes.setdefault(c, ord(same))
    return fixes


def _fix_codes(chunk: bytes, fixes: dict[int, int]) -> bytes:
    def one(m: re.Match) -> bytes:
        code = int(m.group(1), 16)
        return b"<%04X>" % fixes[code] if code in fixes else m.group(0)
    return _CODE.sub(one, chunk)


def searchable(path: str | Path, fixes: dict[int, int]) -> int:
    """Correct the code points of the PDF's ToUnicode maps (uncompressed, as Qt writes
    them) by ``fixes``; returns how many maps changed."""
    path = Path(path)
    data = path.read_bytes()
    changed = 0

    def cmap(m: re.Match) -> bytes:
        nonlocal changed
        body = m.group(0)
        if b"beginbfrange" not in body and b"beginbfchar" not in body:
            return body
        # the code points only: in a range's array, or a range of one (never the glyphs')
        new = _ARRAY.sub(lambda a: _fix_codes(a.group(0), fixes), body)
        new = _ONE.sub(lambda o: o.group(1) + _fix_codes(o.group(0)[len(o.group(1)):], fixes),
                       new)
        changed += new != body
        return new

    fixed = _CMAP.sub(cmap, data)
    if changed:
        assert len(fixed) == len(data)
        path.write_bytes(fixed)
    return changed
