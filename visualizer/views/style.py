"""One place for what the pictures look like on a projector.

Large type, few colours, each with a meaning. The colours are the Okabe–Ito
palette, which colour-blind viewers tell apart. Views take colours and fonts
from here only, so that a theme (issue: lecture mode) changes them all.
"""
from __future__ import annotations

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

BASE_POINT_SIZE = 14  # readable from the back of a classroom at 100 % zoom


def font(scale: float = 1.0, bold: bool = False, mono: bool = False) -> QFont:
    f = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
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
