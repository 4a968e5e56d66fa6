"""One place for what the pictures look like on a projector.

Large type, few colours, each with a meaning. The colours are the Okabe–Ito
palette, which colour-blind viewers tell apart. Views take colours and fonts
from here only, so that a theme (issue: lecture mode) changes them all.

Themes and zoom change this module's values in place: ``set_theme("dark")``
swaps the neutrals (background, text, grid, muted, selection) and leaves the
Okabe–Ito colours as they are; ``set_zoom(2.0)`` doubles ``BASE_POINT_SIZE``.
Views read the values when they paint (``style.BACKGROUND``, never a copy
taken at import), and ``View.apply_theme`` redoes what a view set up once.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont

# Okabe–Ito
BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#7F7F7F"

BACKGROUND = "#FFFFFF"
FOREGROUND = "#111111"
MUTED = "#6B6B6B"
GRID = "#D9D9D9"
SELECTED = "#FFF4BF"  # behind the selected connection
LINE = 1.0  # pen widths are multiplied by this (the projector theme draws thicker)

# Text on a coloured fill (a state pill, a highlighter): these, whatever the theme.
INK_DARK = "#111111"
INK_LIGHT = "#FFFFFF"

# The neutrals of each theme; the colours that carry a meaning never change.
THEMES: dict[str, dict[str, object]] = {
    # the screen's default: what the window always had
    "light": {"BACKGROUND": "#FFFFFF", "FOREGROUND": "#111111", "MUTED": "#6B6B6B",
              "GRID": "#D9D9D9", "SELECTED": "#FFF4BF", "LINE": 1.0, "DARK": False},
    # a projector washes out greys and thin lines: pure black on pure white, darker
    # greys, a stronger highlight, pens half as thick again
    "projector": {"BACKGROUND": "#FFFFFF", "FOREGROUND": "#000000", "MUTED": "#3D3D3D",
                  "GRID": "#A6A6A6", "SELECTED": "#FFE66B", "LINE": 1.5, "DARK": False},
    # a dark room, a bright screen: light text on near-black
    "dark": {"BACKGROUND": "#121417", "FOREGROUND": "#F2F2F2", "MUTED": "#B4B4B4",
             "GRID": "#454A50", "SELECTED": "#5A4B00", "LINE": 1.25, "DARK": True},
}
THEME = "light"
DARK = False

# What a colour means, everywhere.
CLIENT = BLUE  # the client's side, its segments and requests
SERVER = VERMILION  # the server's side
DATA = GREEN  # bytes that carry a request or a response
WAIT = GREY  # idle, waiting, blocked
WASTE = ORANGE  # work that found nothing: EAGAIN, empty sweeps
CONTROL = PURPLE  # SYN / FIN / RST, epoll_ctl

# TCP states by phase: opening, open, closing, gone.
STATE_COLOURS = {
    "LISTEN": GREY, "SYN_SENT": SKY, "SYN_RECV": SKY, "ESTABLISHED": GREEN,
    "FIN_WAIT_1": ORANGE, "FIN_WAIT_2": ORANGE, "CLOSE_WAIT": YELLOW, "CLOSING": ORANGE,
    "LAST_ACK": ORANGE, "TIME_WAIT": PURPLE, "CLOSED": GREY,
}

# Event kinds (rasters, logs).
KIND_COLOURS = {
    "accept": GREEN, "connect": GREEN, "recv": BLUE, "send": VERMILION, "eagain": ORANGE,
    "close": BLACK, "shutdown": BLACK, "epoll_ctl": PURPLE, "epoll_wait": GREY,
    "request": SKY, "response": YELLOW, "packet": PURPLE, "tcp_state": GREY, "error": VERMILION,
}

BASE_SIZE = 14  # points: readable from the back of a classroom at 100 % zoom
BASE_POINT_SIZE: float = BASE_SIZE  # BASE_SIZE times the zoom: what views use
ZOOM = 1.0
ZOOM_RANGE = (1.0, 3.0)


def set_theme(name: str) -> str:
    """Make ``name`` ("light", "projector", "dark") the theme: the neutrals, the pen
    factor and the colours derived from them change here, in place. Unknown names
    fall back to "light". Returns the theme's name."""
    global BACKGROUND, FOREGROUND, MUTED, GRID, SELECTED, LINE, THEME, DARK
    if name not in THEMES:
        name = "light"
    t = THEMES[name]
    BACKGROUND, FOREGROUND = str(t["BACKGROUND"]), str(t["FOREGROUND"])
    MUTED, GRID, SELECTED = str(t["MUTED"]), str(t["GRID"]), str(t["SELECTED"])
    LINE, DARK, THEME = float(t["LINE"]), bool(t["DARK"]), name  # type: ignore[arg-type]
    # Closing is "black" on a light page: the text colour on any page.
    for kind in ("close", "shutdown"):
        KIND_COLOURS[kind] = FOREGROUND if DARK else BLACK
    return name


def set_zoom(factor: float) -> float:
    """Scale every font by ``factor`` (1.0 to 3.0: 100 % to 300 %); returns it, clamped."""
    global ZOOM, BASE_POINT_SIZE
    ZOOM = max(ZOOM_RANGE[0], min(ZOOM_RANGE[1], float(factor)))
    size = round(BASE_SIZE * ZOOM, 1)
    BASE_POINT_SIZE = int(size) if size.is_integer() else size
    return ZOOM


def pen(width: float) -> float:
    """A pen width for the theme (thicker on a projector)."""
    return width * LINE


def text_on(fill: str | QColor, threshold: float = 0.45) -> QColor:
    """Dark ink on a light fill, white on a dark one, whatever the theme."""
    c = QColor(fill)
    luminance = 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF()
    return QColor(INK_DARK if luminance > threshold else INK_LIGHT)


# Chinese text: DejaVu has no Han glyphs, so Qt falls back to a font that has them.
# Named here so that the fallback is a Simplified Chinese cut (fontconfig would offer
# Noto Sans CJK JP first, whose 直 or 门 look Japanese); a machine skips the ones it lacks.
# Linux: fonts-noto-cjk (Debian, Ubuntu), google-noto-sans-cjk-fonts (Fedora).
CJK_SANS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC",
            "Microsoft YaHei")
CJK_MONO = ("Noto Sans Mono CJK SC", *CJK_SANS)


def blend(a: str, b: str, t: float) -> QColor:
    """``a`` moved ``t`` (0 to 1) of the way towards ``b``: a paler (in the dark theme,
    darker) shade of a neutral."""
    ca, cb = QColor(a), QColor(b)
    return QColor.fromRgbF(ca.redF() + (cb.redF() - ca.redF()) * t,
                           ca.greenF() + (cb.greenF() - ca.greenF()) * t,
                           ca.blueF() + (cb.blueF() - ca.blueF()) * t)


def font(scale: float = 1.0, bold: bool = False, mono: bool = False) -> QFont:
    f = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
    f.setFamilies([f.family(), *(CJK_MONO if mono else CJK_SANS)])
    if mono:
        f.setStyleHint(QFont.StyleHint.Monospace)
    f.setPointSizeF(BASE_POINT_SIZE * scale)
    f.setBold(bold)
    return f


def colour(name: str) -> QColor:
    return QColor(name)


def state_colour(state: str | None) -> QColor:
    return QColor(STATE_COLOURS.get(state or "CLOSED", GREY))


def kind_colour(kind: str) -> QColor:
    return QColor(KIND_COLOURS.get(kind, GREY))

# I/O view: an fd that the previous epoll_wait reported too (highlighter, black text).
AGAIN = YELLOW

# Something went wrong: a reset, an error (the colour errors already have).
WARNING = VERMILION


def aligned(box: QRectF, w: float, h: float, flags: int) -> tuple[float, float]:
    """The top left of a ``w`` x ``h`` line drawn in ``box`` with alignment ``flags``
    (what QPainter.drawText does with them)."""
    flags = int(flags)
    if flags & int(Qt.AlignmentFlag.AlignRight):
        x = box.right() - w
    elif flags & int(Qt.AlignmentFlag.AlignHCenter):
        x = box.center().x() - w / 2
    else:
        x = box.x()
    if flags & int(Qt.AlignmentFlag.AlignBottom):
        y = box.bottom() - h
    elif flags & int(Qt.AlignmentFlag.AlignVCenter):
        y = box.center().y() - h / 2
    else:
        y = box.y()
    return x, y
