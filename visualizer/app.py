"""SockScope's main window: drive the engine, record, pause, step, rewind, replay.

Every picture renders ``timeline.state`` at the cursor; the window keeps no
history of its own. Events from the child processes reach the GUI thread in
one place only: ``_drain``, on a 33 ms timer.
"""
from __future__ import annotations

import gc
import heapq
import os
from collections.abc import Callable
import shutil
import signal
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit
from pathlib import Path

from PySide6.QtCore import (QT_TRANSLATE_NOOP, QCoreApplication, QEvent, QLocale, QSettings, Qt,
                            QTimer, QUrl)
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QFileDialog, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QMainWindow, QMessageBox,
                               QPushButton, QSpinBox, QSplitter, QTableView, QTableWidget,
                               QTableWidgetItem, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from engine.events import KINDS, SOURCES, Event
from engine.lab import FAULTS, faults_available, lab_available
from engine.modes import REGISTRY
from engine.modes import variants as mode_variants
from engine.server import DEFAULT_PORT, default_mode
from engine.trace import TraceError, TraceWriter

from . import i18n
from .attach import Attachment
from .eventtable import EventTableModel
from .host import EngineHost, EngineSettings
from .model import Timeline, open_trace
from .model.index import EventIndex
from .model.moments import moment_at
from .model.reader import Reading
from .model.state import check_badge
from .model.timeline import spacing_for
from .momentbanner import MomentBanner
from .presentation import Presentation
from .qtapp import application, quit_on_signals
from .timeslider import TimelineSlider
from .choices import ChoiceRow, lettered
from .lessons import LANGS, Lesson, LessonError, Prepared, all_lessons, prepare
from .lessons.files import load as load_lesson_file
from .views import View, style, view_classes
from .views.base import redraw_after

# The labels below are English keys (settings and tests use them); the window shows
# them translated, in its context ("MainWindow"): QT_TRANSLATE_NOOP marks them for lupdate.
# The modes come from the engine's registry, in the lecture's order; the label of a
# mode with two triggers says which ("epoll (edge)"). These are the words lupdate sees.
MODE_WORDS = (QT_TRANSLATE_NOOP("MainWindow", "one client at a time"),
              QT_TRANSLATE_NOOP("MainWindow", "a process per connection"),
              QT_TRANSLATE_NOOP("MainWindow", "threaded"),
              QT_TRANSLATE_NOOP("MainWindow", "gevent"),
              QT_TRANSLATE_NOOP("MainWindow", "non-blocking polling"),
              QT_TRANSLATE_NOOP("MainWindow", "select"),
              QT_TRANSLATE_NOOP("MainWindow", "poll"),
              QT_TRANSLATE_NOOP("MainWindow", "epoll (level)"),
              QT_TRANSLATE_NOOP("MainWindow", "epoll (edge)"),
              QT_TRANSLATE_NOOP("MainWindow", "selectors"),
              QT_TRANSLATE_NOOP("MainWindow", "asyncio"))
MODES = [(f"{REGISTRY[m].label} ({t})" if len(REGISTRY[m].triggers) > 1 else REGISTRY[m].label,
          m, t) for m, t in mode_variants()]
LAG_SHOWN_S = 0.5  # behind the engine by this much or more: said beside Live
SPEEDS = [("0.01x", 0.01), ("0.1x", 0.1), ("0.5x", 0.5), ("1x", 1.0), ("2x", 2.0),
          (QT_TRANSLATE_NOOP("MainWindow", "1 event/s"), -1),
          (QT_TRANSLATE_NOOP("MainWindow", "5 events/s"), -5),
          (QT_TRANSLATE_NOOP("MainWindow", "20 events/s"), -20)]
TRAFFIC = [(QT_TRANSLATE_NOOP("MainWindow", "One request"), ["--requests", "1", "--short"]),
           (QT_TRANSLATE_NOOP("MainWindow", "Short"), ["--short", "--requests", "1"]),
           (QT_TRANSLATE_NOOP("MainWindow", "Keep-alive"), ["--requests", "5"]),
           (QT_TRANSLATE_NOOP("MainWindow", "Pipelined"), ["--requests", "8", "--pipeline", "4"]),
           (QT_TRANSLATE_NOOP("MainWindow", "Aborting"), ["--abort"]),
           (QT_TRANSLATE_NOOP("MainWindow", "Half-closing"),
            ["--half-close", "--requests", "2"]),
           (QT_TRANSLATE_NOOP("MainWindow", "Slow"), ["--slow", "--slow-interval", "0.1"])]
# What each lab fault teaches (engine.lab.FAULTS' words, marked here for translation;
# tests/qt/test_i18n.py checks that they are the engine's words still).
FAULT_LESSONS = (
    QT_TRANSLATE_NOOP("MainWindow", "the client's SYN is lost: it retransmits after about 1 s "
                      "(SYN_SENT meanwhile)"),
    QT_TRANSLATE_NOOP("MainWindow", "the server's SYN-ACK is lost: the server retransmits it "
                      "(SYN_RECV meanwhile)"),
    QT_TRANSLATE_NOOP("MainWindow", "the handshake's final ACK is lost: the client is "
                      "ESTABLISHED, the server still SYN_RECV until the client's data (or the "
                      "SYN-ACK retransmission) fixes it"),
    QT_TRANSLATE_NOOP("MainWindow", "the client's FIN is lost: it retransmits it; the server "
                      "reads end-of-file late"),
    QT_TRANSLATE_NOOP("MainWindow", "the server's FIN is lost: it stays in FIN_WAIT_1 and "
                      "retransmits"),
)


def short_id(conn_id: str) -> str:
    """"client port → server port": what tells connections apart on one machine."""
    client, _, server = conn_id.partition(">")
    return f"{client.rsplit(':', 1)[-1]} → {server.rsplit(':', 1)[-1]}" if server else conn_id


class DrainPace:
    """How many waiting events the window takes per tick of its 33 ms timer: as many as
    it folds in ``budget`` seconds, from what an event cost in the last ticks. Under a
    load the engine makes more events than the window can fold; taken all at once they
    made frames of 1.6 s (median, 6.1 s at the 95th percentile, under wrk). Taken at
    this pace, frames keep their rate and the rest waits, whole, in the channel (on disk
    past 64 MB): the window then shows the engine's past, and says how far behind it is."""

    def __init__(self, budget: float = 0.010, first: int = 2000, least: int = 200) -> None:
        self.budget, self.first, self.least = budget, first, least
        self.per_event: float | None = None  # seconds to take one event, smoothed

    def limit(self) -> int:
        if self.per_event is None:
            return self.first
        return max(self.least, round(self.budget / self.per_event))

    def took(self, count: int, seconds: float) -> None:
        if count < 50:  # too few to say what one costs (a tick's fixed cost dominates)
            return
        cost = seconds / count
        self.per_event = cost if self.per_event is None else 0.7 * self.per_event + 0.3 * cost


FOLDED_AT_OPEN = 200_000  # events: a trace this long opens at its end (folded in under a second)
SHOWN_WHILE_READ = 64 << 20  # bytes: a longer trace is shown as soon as its first part is read


def open_for_window(path: str) -> tuple[Timeline, list[str], Reading | None]:
    """A trace as the window opens it, with what reading it said and, for a long one, its
    reading still going on. Read by every core; folded to its end when that is quick.
    A file of more than ``SHOWN_WHILE_READ`` bytes is shown at its start
    as soon as its first part is read: the rest comes in the background, and is folded
    as the cursor goes and while the window waits (``MainWindow._fold_tick``)."""
    if os.path.getsize(path) > SHOWN_WHILE_READ:
        reading = Reading.start(path)
        if reading is not None:
            reading.take(wait=True)
            if not reading.failed:
                timeline = Timeline(reading.log, every=spacing_for(reading.estimated_events))
                timeline.live = False
                return timeline, [], reading
            reading.close()
            reading.log.close()
    timeline, _, problems = open_trace(path, fold=FOLDED_AT_OPEN)
    return timeline, problems, None


def tune_gc() -> None:
    """Fewer collections: the timeline allocates an event tuple and a dict every few
    microseconds, and a full collection over a big session stalls frames for
    70-250 ms. Nothing the window keeps builds cycles; they are rare and small."""
    gc.set_threshold(50_000, 20, 100)


def _state_cell(conn, side: str) -> str:  # type: ignore[no-untyped-def]
    """An end's state for the connections table: ✓ or ✗ when the kernel confirmed or
    contradicted it, * when it is inferred and the kernel has not said (yet)."""
    text = getattr(conn, side)
    source = getattr(conn, f"{side}_source")
    gone = conn.client_gone if side == "client" else conn.closed_ns is not None
    if source is None and text == "CLOSED" and not gone:
        return "—"  # nothing reported this end yet (a server end before its SYN|ACK)
    badge = check_badge(conn, side)
    if badge is not None:
        mark, _, said = badge
        return f"{text} {mark}" + (f" {said}" if mark == "✗" else "")
    return text + ("*" if source == "inferred" else "")


class MainWindow(QMainWindow):
    def __init__(self, *, engine: bool = True, settings: QSettings | None = None) -> None:
        super().__init__()
        tune_gc()
        self.setWindowTitle("SockScope")
        self.setAcceptDrops(True)
        self.qsettings = settings or QSettings("SockScope", "SockScope")
        i18n.install(QApplication.instance(), self.language)  # before any word is read
        self._stopped: tuple[object, str] | None = None  # the engine's exit: code, messages
        self._engine_lab = False
        # Replaying, the toolbar shows the recording's settings; the live ones wait here.
        self._live_settings: EngineSettings | None = None
        self._shown_settings: tuple[int, int] | None = None  # the mode, listen events shown
        self.timeline = Timeline.live()
        self.host: EngineHost | None = None
        self.recorded = 0
        self._rate_window: list[tuple[float, int]] = []
        self._engine_exit_reported = False
        # (log, its length then, what was found): found again when either changed
        self._marks_for: tuple[object, int, list[int]] = (None, -1, [])
        self._modes = EventIndex(("mode",))  # the log's mode events, kept up to date
        self._gaps_for: tuple[object, int, list[tuple[int, int, int]]] = (None, -1, [])
        self._draw_due = 0.0  # live: when the pictures are drawn again (a dear drawing waits)
        self._view_every: tuple[str, float] = ("", 0.0)  # the shown view's redraw period
        self._view_owed = False
        self.pace = DrainPace()
        self.waiting = 0  # events that arrived and wait to be taken (the window is behind)
        self.behind: tuple[float, int, int] | None = None  # how far (s), last, newest t_ns
        self.table_model = EventTableModel(self.timeline.log)
        self._build()
        # View menu: presentation mode (F5), theme, zoom (visualizer/presentation.py)
        self.presentation = Presentation(self)
        self.drain_timer = QTimer(self)
        self.drain_timer.setInterval(33)
        self.drain_timer.timeout.connect(self._drain)
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._play_tick)
        self._reading: tuple[Reading, str, tuple[Timeline, str]] | None = None  # a long trace's
        self.fold_timer = QTimer(self)  # an opened trace read and folded ahead, a slice a tick
        self.fold_timer.setInterval(40)
        self.fold_timer.timeout.connect(self._fold_tick)
        self._play_started: tuple[float, int] | None = None
        geometry = self.qsettings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        if engine:
            self.start_engine(self._saved_engine_settings())
        else:  # replaying a trace: nothing to drive
            for bar in (self.engine_bar, self.traffic_bar):
                bar.setEnabled(False)
                bar.setToolTip(self.tr("Replaying a recorded trace"))
            self.gate_box.setEnabled(False)
        self.drain_timer.start()

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        menu = self.menuBar().addMenu(self.tr("&File"))
        open_action = QAction(self.tr("&Open trace…"), self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._open_dialog)
        save_action = QAction(self.tr("&Save session as trace…"), self)
        save_action.setShortcut(QKeySequence.StandardKey.Save)
        save_action.triggered.connect(self._save_dialog)
        export_action = QAction(self.tr("&Export view as picture…"), self)
        export_action.setShortcut(QKeySequence("Ctrl+E"))
        export_action.triggered.connect(self._export_dialog)
        menu.addAction(export_action)
        compare_action = QAction(self.tr("&Compare modes side by side…"), self)
        compare_action.triggered.connect(self.open_compare)
        menu.addAction(compare_action)
        self.compare_action = compare_action
        self.compare_window = None
        quit_action = QAction(self.tr("&Quit"), self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        # A lesson written as a file (sockscope lessons --template prints one).
        lesson_file_action = QAction(self.tr("Open &lesson file…"), self)
        lesson_file_action.triggered.connect(self._open_lesson_dialog)
        self.lesson_file_action = lesson_file_action
        # An engine elsewhere (serve --control HOST:PORT): watched and stepped here (attach.py).
        self.attach_action = QAction(self.tr("&Attach to an engine…"), self)
        self.attach_action.triggered.connect(self._attach_dialog)
        self.detach_action = QAction(self.tr("&Detach (back to the local engine)"), self)
        self.detach_action.triggered.connect(lambda: self.start_engine(self._current_settings()))
        self.detach_action.setEnabled(False)
        for a in (open_action, lesson_file_action, self.attach_action, self.detach_action,
                  save_action, quit_action):
            menu.addAction(a)
        self.file_menu = menu
        self.open_action, self.save_action = open_action, save_action
        self.export_action, self.quit_action = export_action, quit_action
        # Lessons: each records a real run (a few seconds, off the GUI thread), then opens.
        self.lessons_menu = self.menuBar().addMenu(self.tr("L&essons"))
        self.lesson_actions: dict[str, QAction] = {}
        for name, known in all_lessons().items():
            action = QAction(f"{known.section}  {known.title.get(i18n.current()) or name}", self)
            action.triggered.connect(lambda _=False, n=name: self.start_lesson(n))
            self.lessons_menu.addAction(action)
            self.lesson_actions[name] = action
        self.lessons_menu.addSeparator()
        self.leave_lesson_action = QAction(self.tr("Back to the live server"),
                                           self)
        self.leave_lesson_action.triggered.connect(self.leave_lesson)
        self.leave_lesson_action.setEnabled(False)
        self.lessons_menu.addAction(self.leave_lesson_action)
        self._recording: tuple[threading.Thread, dict] | None = None
        self._recording_timer = QTimer(self)
        self._recording_timer.setInterval(100)
        self._recording_timer.timeout.connect(self._lesson_recorded)
        # Each language by its own name; switching happens at once (set_language).
        self.language_menu = self.menuBar().addMenu(self.tr("&Language"))
        self.language_group = QActionGroup(self)
        for lang, name in i18n.LANGUAGES.items():
            action = QAction(name, self)
            action.setCheckable(True)
            action.setData(lang)
            action.setChecked(lang == i18n.current())
            action.triggered.connect(lambda _=False, lang=lang: self.set_language(lang))
            self.language_group.addAction(action)
            self.language_menu.addAction(action)

        self.engine_bar = engine_bar = QToolBar(self.tr("Engine"), self)
        engine_bar.setObjectName("engine")
        self.mode_box = QComboBox()
        for label, _, _ in MODES:
            self.mode_box.addItem(self.tr(label))
        for i, (_, mode, _) in enumerate(MODES):  # what this system cannot run: greyed out
            if not REGISTRY[mode].available()[0]:
                self.mode_box.model().item(i).setEnabled(False)
        self.mode_box.setCurrentIndex(self._mode_index(default_mode()))
        self._mode_tips()
        self.policy_box = QComboBox()
        self.policy_box.addItems(["keep-alive", "close"])
        self.backlog_box = QSpinBox()
        self.backlog_box.setRange(0, 65535)
        self.backlog_box.setValue(4096)
        self.backlog_box.setPrefix(self.tr("backlog "))
        self.reuse_box = QCheckBox("SO_REUSEADDR")
        self.reuse_box.setChecked(True)
        self.pause_box = QSpinBox()
        self.pause_box.setRange(0, 1000)
        self.pause_box.setValue(1)
        self.pause_box.setPrefix(self.tr("sweep pause "))
        self.pause_box.setSuffix(" ms")
        # Only the non-blocking loop sweeps: elsewhere the box would change nothing.
        self.mode_box.currentIndexChanged.connect(self._sweep_applies)
        self._sweep_applies()
        lab_ok, lab_reason = self._lab_status = lab_available()
        self.lab_box = QCheckBox(self.tr("Lab"))
        self.lab_box.setEnabled(lab_ok)
        self.lab_box.setToolTip(
            self.tr("A private network namespace: real packets captured without root; only "
                    "SockScope's own clients reach it") if lab_ok
            else self.tr("The lab is not available: {0}").format(lab_reason))
        self.fault_box = QComboBox()
        self.fault_box.addItem(self.tr("no fault"), None)
        faults_ok, faults_reason = self._faults_status = faults_available()
        for name, (_, lesson) in FAULTS.items():
            self.fault_box.addItem(name, name)
            self.fault_box.setItemData(self.fault_box.count() - 1, self.tr(lesson),
                                       Qt.ItemDataRole.ToolTipRole)
        self.fault_box.setEnabled(False)
        self.fault_box.setToolTip(self.tr("In the lab, drop one segment") if faults_ok
                                  else faults_reason)
        self.lab_box.toggled.connect(lambda on: self.fault_box.setEnabled(on and faults_ok))
        self.restart_button = QPushButton(self.tr("Apply (restart engine)"))
        self.restart_button.clicked.connect(self._apply_settings)
        self.url_label = QLabel()
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.browser_button = QPushButton(self.tr("Open in browser"))
        self.browser_button.clicked.connect(self._open_browser)
        for w in (self.mode_box, self.policy_box, self.backlog_box, self.reuse_box,
                  self.pause_box, self.lab_box, self.fault_box, self.restart_button, self.url_label, self.browser_button):
            engine_bar.addWidget(w)
        self.addToolBar(engine_bar)

        self.traffic_bar = traffic_bar = QToolBar(self.tr("Traffic"), self)
        traffic_bar.setObjectName("traffic")
        self.count_box = QSpinBox()
        self.count_box.setRange(1, 1000)
        self.count_box.setValue(3)
        self.count_box.setPrefix(self.tr("clients "))
        traffic_bar.addWidget(self.count_box)
        self.traffic_buttons: dict[str, QPushButton] = {}
        for label, args in TRAFFIC:
            button = QPushButton(self.tr(label))
            button.clicked.connect(lambda _=False, a=args, l=label: self.run_traffic(l, a))
            traffic_bar.addWidget(button)
            self.traffic_buttons[label] = button
        self.addToolBarBreak()
        self.addToolBar(traffic_bar)

        self.banner = QLabel()
        self.banner.setStyleSheet("background:#fde68a;color:#111;padding:6px;font-weight:bold")
        self.banner.hide()
        self.banner_button = QPushButton(self.tr("Restart engine"))
        self.banner_button.clicked.connect(lambda: self.start_engine(self._current_settings()))
        self.banner_button.hide()

        self.connections = QTableWidget(0, 5)
        self.connections.setHorizontalHeaderLabels(
            [self.tr("ports"), self.tr("client"), self.tr("server"), self.tr("requests"),
             self.tr("packets")])
        self.connections.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.connections.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText(self.tr("words: GET, 404, 54321…"))
        self.filter_edit.textChanged.connect(self.table_model.set_filter)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.clicked.connect(self._row_clicked)
        log_panel = QWidget()
        log_layout = QVBoxLayout(log_panel)
        log_layout.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        self.kind_filter = QComboBox()
        self.kind_filter.addItem(self.tr("every kind"), None)
        for kind in sorted(KINDS):
            self.kind_filter.addItem(kind, kind)
        self.source_filter = QComboBox()
        self.source_filter.addItem(self.tr("every source"), None)
        for src in SOURCES:
            self.source_filter.addItem(src, src)
        self.fd_filter = QSpinBox()
        self.fd_filter.setRange(-1, 1 << 20)
        self.fd_filter.setValue(-1)
        self.fd_filter.setSpecialValueText(self.tr("every fd"))
        self.fd_filter.setPrefix("fd ")
        self.conn_filter = QCheckBox(self.tr("selected connection only"))
        for box in (self.kind_filter, self.source_filter):
            box.currentIndexChanged.connect(self._apply_filters)
        self.fd_filter.valueChanged.connect(self._apply_filters)
        self.conn_filter.toggled.connect(self._apply_filters)
        for w in (self.kind_filter, self.source_filter, self.fd_filter, self.conn_filter):
            filters.addWidget(w)
        filters.addWidget(self.filter_edit, 1)
        log_layout.addLayout(filters)
        log_layout.addWidget(self.table)
        splitter = QSplitter()
        splitter.addWidget(self.connections)
        splitter.addWidget(log_panel)
        splitter.setSizes([500, 780])
        self.connections.cellClicked.connect(self._connection_clicked)

        self.view_tabs = QTabWidget()
        self.views: dict[str, View] = {}
        for cls in view_classes():
            view = cls()
            view.connection_selected.connect(self.select_connection)
            self.views[cls.name] = view
            self.view_tabs.addTab(view, QCoreApplication.translate("View", cls.title))
        self.view_tabs.currentChanged.connect(self._view_chosen)
        self.moment_banner = MomentBanner(self)  # a key moment, said above the view
        self.selected: str | None = None
        # A lesson's narration, above the pictures (hidden outside lessons).
        self.lesson: Prepared | None = None
        self.lesson_step = -1
        self.lesson_asking = False  # presenting: the step's question alone is on screen
        self.lesson_revealed = False  # presenting: and its right choice is marked
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setFont(style.font(1.5))
        self.caption.setStyleSheet(f"background:{style.SELECTED};color:{style.FOREGROUND};"
                                   "padding:10px")
        self.caption_step = QLabel()
        self.caption_step.setFont(style.font(1.2, bold=True))
        # How the recording ran the server, where a step depends on it ("sockscope serve
        # --never-close"): a footnote under the words, not a flag inside them.
        self.caption_note = QLabel()
        self.caption_note.setFont(style.font(0.9, mono=True))
        self.caption_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption_note.hide()
        caption_box = QWidget()
        caption_row = QHBoxLayout(caption_box)
        caption_row.setContentsMargins(0, 0, 0, 0)
        caption_row.addWidget(self.caption_step)
        words = QVBoxLayout()
        words.setContentsMargins(0, 0, 0, 0)
        words.setSpacing(2)
        words.addWidget(self.caption)
        # A question's choices: a student picks one and the window checks it.
        self.choice_row = ChoiceRow()
        words.addWidget(self.choice_row)
        words.addWidget(self.caption_note)
        caption_row.addLayout(words, 1)
        self.caption_box = caption_box
        caption_box.hide()
        view_area = QWidget()
        view_layout = QVBoxLayout(view_area)
        view_layout.setContentsMargins(0, 0, 0, 0)
        view_layout.addWidget(caption_box)
        # The views with the key moment's banner above them: presenting moves them together.
        self.view_column = QWidget()
        column = QVBoxLayout(self.view_column)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self.moment_banner)
        column.addWidget(self.view_tabs, 1)
        view_layout.addWidget(self.view_column, 1)
        self.main_split = QSplitter(Qt.Orientation.Vertical)
        self.main_split.addWidget(view_area)
        self.main_split.addWidget(splitter)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setSizes([560, 240])

        controls = QWidget()
        row = QHBoxLayout(controls)
        self.live_button = QPushButton(self.tr("Live"))
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.toggled.connect(self._set_live)
        # Beside Live, while the window is behind its engine: how far, in the engine's
        # seconds (big enough for the back of a room; the status bar says the count).
        self.lag_label = QLabel()
        self.lag_label.setObjectName("lag")
        self.lag_label.setStyleSheet("QLabel#lag { color: #b45309; font-weight: bold; }")
        self.lag_label.hide()
        self.play_button = QPushButton(self.tr("Play"))
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._set_playing)
        self.back_button = QPushButton("◀")
        self.back_button.setToolTip(self.tr("Step back one event (Left, PageUp)"))
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button = QPushButton("▶")
        self.forward_button.setToolTip(self.tr("Step forward one event (Right, PageDown)"))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.speed_box = QComboBox()
        for label, _ in SPEEDS:
            self.speed_box.addItem(self.tr(label))
        self.speed_box.setCurrentIndex(3)
        self.slider = TimelineSlider()
        self.slider.setRange(-1, -1)
        self.slider.valueChanged.connect(self._slider_moved)
        self.position_label = QLabel()
        self.gate_box = QCheckBox(self.tr("Step the server"))
        self.gate_box.toggled.connect(self._set_gate)
        self.release_button = QPushButton(self.tr("Release one action"))
        self.release_button.clicked.connect(lambda: self.host and self.host.step(1))
        self.release_button.setEnabled(False)
        for w in (self.live_button, self.lag_label, self.play_button, self.back_button,
                  self.forward_button, self.speed_box, self.slider, self.position_label, self.gate_box,
                  self.release_button):
            row.addWidget(w, 1 if w is self.slider else 0)

        central = QWidget()
        layout = QVBoxLayout(central)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_button)
        layout.addLayout(banner_row)
        layout.addWidget(self.main_split, 1)
        layout.addWidget(controls)
        self.setCentralWidget(central)
        self.status_label = QLabel()
        # A normal widget, not a permanent one: a message (a trace's problems, "Saved N
        # events") shows in its place for its seconds, then the line comes back. (Made
        # permanent and stretched, it took the whole bar: every message was there, unseen.)
        self.statusBar().addWidget(self.status_label, 1)
        self.attachment = Attachment(self)

    # ------------------------------------------------------------ engine
    def _saved_engine_settings(self) -> EngineSettings:
        s = EngineSettings()
        mode = self.qsettings.value("mode")
        if mode:
            index = next((i for i, (label, _, _) in enumerate(MODES) if label == mode), 0)
            if self.mode_box.model().item(index).isEnabled():  # (epoll saved on Linux)
                self.mode_box.setCurrentIndex(index)
        return self._current_settings(base=s)

    def _mode_tips(self) -> None:
        """Why a mode is greyed out (epoll, where the system has none)."""
        for i, (_, mode, _) in enumerate(MODES):
            if not self.mode_box.model().item(i).isEnabled():
                tip = self.tr(
                    "epoll is Linux's; here the selectors mode does its work with what this "
                    "system has (kqueue on macOS, select on Windows)") if mode == "epoll" \
                    else REGISTRY[mode].available()[1]
                self.mode_box.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)

    @staticmethod
    def _mode_index(mode: str, trigger: str = "level") -> int:
        return next(i for i, (_, m, t) in enumerate(MODES) if (m, t) == (mode, trigger))

    def _current_settings(self, base: EngineSettings | None = None) -> EngineSettings:
        s = base or EngineSettings()
        _, s.mode, s.trigger = MODES[self.mode_box.currentIndex()]
        s.policy = self.policy_box.currentText()
        s.backlog = self.backlog_box.value()
        s.reuseaddr = self.reuse_box.isChecked()
        s.sweep_pause = self.pause_box.value() / 1000
        s.lab = self.lab_box.isEnabled() and self.lab_box.isChecked()
        s.fault = self.fault_box.currentData() if s.lab else None
        return s

    def start_engine(self, settings: EngineSettings) -> None:
        settings = self.attachment.leave(settings)  # attached: detach, the window's settings back
        old, self.host = self.host, EngineHost(settings)
        if old is not None:  # the old engine's last words (its closes, its exit) and what
            old.hand_over(self.host)  # still waits: taken first, at the window's pace
        self.host.start()
        self.host.wait_url(10)
        self._engine_exit_reported = False
        self.banner.hide()
        self.banner_button.hide()
        self.gate_box.setChecked(False)
        self._engine_lab = settings.lab
        self._show_url()
        self._say_why_moved()
        self.browser_button.setEnabled(not settings.lab)
        self.qsettings.setValue("mode", MODES[self.mode_box.currentIndex()][0])

    def _say_why_moved(self) -> None:
        """The server is not on its usual port: say why (TIME_WAIT is a lesson)."""
        host = self.host
        if host is None or not host.moved or not host.url:
            return
        port = urlsplit(host.url).port
        if host.moved == "time_wait":
            text = self.tr("Port {0} is held by TIME_WAIT sockets and SO_REUSEADDR is off, so "
                           "bind() would fail: the server moved to port {1}.")
        else:
            text = self.tr("Port {0} is taken by another program: the server is on port {1}.")
        self.statusBar().showMessage(text.format(DEFAULT_PORT, port), 20_000)

    def _show_url(self) -> None:
        url = (self.host.url if self.host else None) or self.tr("(not started)")
        if self._engine_lab:
            url += self.tr(" (in the lab)")
        self.url_label.setText(f"  {url}  ")
        self.browser_button.setToolTip(self.tr("A browser cannot reach the lab's private network")
                                       if self._engine_lab else "")

    def _apply_settings(self) -> None:
        """A change of settings restarts the engine; the timeline keeps everything.
        Attached, the engine there serves again with them."""
        if self.attachment.attached:
            self.attachment.apply(self._current_settings())
            return
        self.start_engine(self._current_settings())

    def _open_browser(self) -> None:
        if self.host and self.host.url:
            QDesktopServices.openUrl(QUrl(self.host.url))

    def run_traffic(self, label: str, args: list[str]) -> None:
        if self.host is None or not self.host.url:
            self.statusBar().showMessage(self.tr("No engine is running"), 5000)
            return
        clients = self.count_box.value() if label != "One request" else 1
        if self.gate_box.isChecked():  # stepped by hand: the clients wait as long as it takes
            args = [*args, "--timeout", "900"]
        self.host.run_traffic(["--clients", str(clients), *args])

    def _set_gate(self, on: bool) -> None:
        if self.host:
            self.host.set_stepping(on)
        self.release_button.setEnabled(on)

    # ------------------------------------------------------------ events
    def _drain(self) -> None:
        if self.host is None:
            self._update_status()
            return
        if self.host.url is None and self.host.remote is None:
            # A slow start (a loaded machine: the engine said where it serves after the
            # 10 s start_engine waited): the address shown as soon as it is said.
            self.host.poll_messages()
            if self.host.url is not None:
                self._show_url()
                self._say_why_moved()
        started = time.perf_counter()
        batch = self.host.drain(self.pace.limit())
        self.waiting = self.host.waiting()
        if batch:
            self.add_events(batch, time.perf_counter() - started)
        elif self._view_owed:  # a drawing skipped while busy is done when due, or at rest
            self._refresh()
        code = self.host.channel.exit_code if self.host.channel else None
        if code is not None and not self._engine_exit_reported:
            self._engine_exit_reported = True
            self._stopped = (_exit_words(code), _why_it_stopped(self.host.poll_messages()))
            self._show_stopped()
            self.banner.show()
            self.banner_button.show()
        self._update_status()

    def _show_stopped(self) -> None:
        if self._stopped is not None:
            self.banner.setText(self.tr("The engine stopped (exit code {0}). Nothing recorded "
                                        "is lost. {1}").format(*self._stopped))

    def add_events(self, batch: list[Event], parsed_in: float = 0.0) -> None:
        """Fold ``batch`` in and show it (``parsed_in``: what taking it cost, for the pace)."""
        self.recorded += len(batch)
        self._rate_window.append((time.monotonic(), len(batch)))
        started = time.perf_counter()
        self.timeline.add(batch)
        self.table_model.sync(self.timeline.log.changed_from)
        self.pace.took(len(batch), parsed_in + time.perf_counter() - started)  # not the drawing
        self._refresh()

    def load_trace(self, path: str) -> bool:
        """Replace the timeline with a recorded trace; a bad file gets a message."""
        try:
            timeline, problems, reading = open_for_window(path)
        except (OSError, TraceError) as exc:
            QMessageBox.warning(self, self.tr("Cannot open trace"), str(exc))
            return False
        self._replace_live()  # (a recording mixed with live events would be neither)
        shown = self.timeline, self.windowTitle()
        self.show_timeline(timeline, Path(path).name, problems)
        if reading is not None:
            self._reading = (reading, path, shown)  # (shown again if a later line is refused)
            self.fold_timer.start()
            self._update_status()
        return True

    def _stop_reading(self) -> None:
        if self._reading is not None:
            self._reading[0].close()
            self._reading = None

    def _take_read(self) -> None:
        """What the background reading of an opened trace brought since the last tick: into
        the log, the cursor where it was. A part it could not read (a bad line further on)
        is read again in order, which names the line: refused, the window shows again what
        it showed before."""
        reading, path, shown = self._reading  # type: ignore[misc]
        changed = reading.take_into(self.timeline)
        if reading.failed:
            self._stop_reading()
            try:
                timeline, _, problems = open_trace(path, fold=FOLDED_AT_OPEN)
            except (OSError, TraceError) as exc:
                self.show_timeline(shown[0], shown[1].removeprefix("SockScope — "))
                QMessageBox.warning(self, self.tr("Cannot open trace"), str(exc))
                return
            self.show_timeline(timeline, Path(path).name, problems)
            return
        if changed is not None:
            self.table_model.sync(changed)
        if reading.done:
            self._reading = None
            reading.close()
            if reading.problems:
                self.statusBar().showMessage("; ".join(reading.problems), 10000)
        if changed is not None or reading.done:
            self._refresh()

    def show_timeline(self, timeline: Timeline, name: str, problems: list[str] = ()) -> None:
        """Replace the timeline (a trace was opened, at its end, or a long one at its
        start: ``open_for_window``); what is not folded yet is folded in the background."""
        self.timeline = timeline
        gc.collect()
        gc.freeze()  # what was read stays: no collection needs to walk it again
        self.live_button.setChecked(False)
        self.table_model.set_log(self.timeline.log)
        if problems:
            self.statusBar().showMessage("; ".join(problems), 10000)
        self.setWindowTitle(f"SockScope — {name}" if name else "SockScope")
        self._stop_reading()
        self.fold_timer.stop()
        if not timeline.live and timeline.to_fold_ahead:
            self.fold_timer.start()
        if not timeline.live and timeline.cursor < 0 and len(timeline.log) and not problems:
            self.statusBar().showMessage(self.tr(
                "Opened at its start (End goes to its last event); the rest is worked out "
                "while you look"), 10000)
        self._refresh()

    def _fold_tick(self) -> None:
        """What the background reading brought (``_take_read``), and a slice of the opened
        trace folded ahead of the cursor (12 ms of a 40 ms tick: the window stays at its
        frame rate), until it is all read and every snapshot built."""
        if self._reading is not None:
            self._take_read()
        more = not self.timeline.live and self.timeline.fold_ahead(0.012)
        if not more and self._reading is None:
            self.fold_timer.stop()
        self._update_status()

    def save_trace(self, path: str) -> int:
        """Write the session as a trace. Raises OSError when the file cannot be made
        or the disk fills up before its end (the partial file then ends whole)."""
        with TraceWriter(path, header={"role": "session"}) as writer:
            for e in self.timeline.log:
                writer(e)
        if writer.failed is not None:
            raise OSError(writer.failed.errno, f"{writer.failed.strerror}: {path}: "
                          f"{writer.dropped} of {len(self.timeline.log)} events not saved")
        return len(self.timeline.log)

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Open trace"), "",
                                              self.tr("SockScope traces (*.jsonl);;All files (*)"))
        if path:
            self.load_trace(path)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Save session"), "session.jsonl",
                                              self.tr("SockScope traces (*.jsonl)"))
        if path:
            try:
                count = self.save_trace(path)
            except OSError as exc:
                QMessageBox.warning(self, self.tr("Cannot save"), str(exc))
                return
            self.statusBar().showMessage(self.tr("Saved {0} events").format(count), 5000)

    def _export_dialog(self) -> None:
        view = self.view_tabs.currentWidget()
        if not isinstance(view, View):
            return
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Export view"), f"{view.name}.png",
            self.tr("PNG picture (*.png);;SVG drawing (*.svg)"))
        if path:
            try:
                view.export(path)
            except OSError as exc:
                QMessageBox.warning(self, self.tr("Cannot export"), str(exc))
            else:
                self.statusBar().showMessage(self.tr("Wrote {0}").format(path), 5000)

    def dragEnterEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        urls = event.mimeData().urls()
        if urls:
            self.load_trace(urls[0].toLocalFile())

    # ------------------------------------------------------------ playback
    def _set_live(self, on: bool) -> None:
        self.timeline.live = on
        if on:
            self.play_button.setChecked(False)
            self.timeline.seek(len(self.timeline.log) - 1)
            self._refresh()

    def pause(self) -> None:
        """Any manual navigation pauses playing and leaves live."""
        self.play_button.setChecked(False)
        if self.live_button.isChecked():
            self.live_button.setChecked(False)

    def step(self, count: int) -> None:
        self.pause()
        self.timeline.step(count)
        self._refresh()

    def seek(self, index: int) -> None:
        self.pause()
        self.timeline.seek(index)
        self._refresh()

    def _set_playing(self, on: bool) -> None:
        if on:
            self.live_button.setChecked(False)
            self._play_started = None
            self.play_timer.start(20)
        else:
            self.play_timer.stop()

    def _play_tick(self) -> None:
        log, tl = self.timeline.log, self.timeline
        if tl.cursor >= len(log) - 1:
            self.play_button.setChecked(False)
            return
        _, speed = SPEEDS[self.speed_box.currentIndex()]
        now = time.monotonic()
        if self._play_started is None:
            self._play_started = (now, tl.cursor)
            self._play_base_t = log[max(tl.cursor, 0)].t_ns
        start_wall, start_index = self._play_started
        if speed < 0:  # event-paced: N events per second
            target = start_index + int((now - start_wall) * -speed)
        else:  # real time scaled: events microseconds apart need event pacing instead
            t = self._play_base_t + int((now - start_wall) * speed * 1e9)
            target = max(log.index_at_time(t), tl.cursor)
        if target != tl.cursor:
            tl.seek(min(target, len(log) - 1))
            self._refresh()

    def _slider_moved(self, value: int) -> None:
        if value != self.timeline.cursor and self.slider.isSliderDown():
            self.seek(value)

    def _row_clicked(self, index) -> None:  # type: ignore[no-untyped-def]
        self.seek(self.table_model.rows[index.row()])

    def _connection_clicked(self, row: int, _column: int) -> None:
        item = self.connections.item(row, 0)
        if item is not None:
            self.select_connection(item.toolTip())

    def select_connection(self, conn: str | None) -> None:
        """Select a connection in every view (and the table)."""
        self.selected = conn or None
        for view in self.views.values():
            view.select(self.selected)
        self.conn_filter.setToolTip(self.selected or self.tr("no connection selected"))
        if self.conn_filter.isChecked():
            self._apply_filters()

    def _apply_filters(self) -> None:
        fd = self.fd_filter.value()
        self.table_model.set_criteria(
            kind=self.kind_filter.currentData(), src=self.source_filter.currentData(),
            fd=fd if fd >= 0 else None,
            conn=self.selected if self.conn_filter.isChecked() and self.selected else None)

    # ------------------------------------------------------------ lessons
    @property
    def language(self) -> str:
        lang = self.qsettings.value("language")
        if lang in LANGS:
            return str(lang)
        return "zh_CN" if QLocale.system().name().startswith("zh") else "en"

    # ------------------------------------------------------------ languages
    def set_language(self, lang: str) -> None:
        """Show the window in ``lang`` ("en", "zh_CN") from now on, and remember it."""
        if lang not in i18n.LANGUAGES:
            raise ValueError(f"no language {lang!r}: {', '.join(i18n.LANGUAGES)}")
        self.qsettings.setValue("language", lang)
        i18n.install(QApplication.instance(), lang)  # LanguageChange: retranslate() ran
        for action in self.language_group.actions():
            action.setChecked(action.data() == lang)

    def changeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        if event.type() == QEvent.Type.LanguageChange and hasattr(self, "status_label"):
            self.retranslate()  # (not while _build runs: it reads the words itself)
        super().changeEvent(event)

    def retranslate(self) -> None:
        """The language changed: every word ``_build`` set once is set again (the views
        retranslate themselves), and the lesson's caption follows."""
        self.file_menu.setTitle(self.tr("&File"))
        self.open_action.setText(self.tr("&Open trace…"))
        self.lesson_file_action.setText(self.tr("Open &lesson file…"))
        self.attach_action.setText(self.tr("&Attach to an engine…"))
        self.detach_action.setText(self.tr("&Detach (back to the local engine)"))
        self.save_action.setText(self.tr("&Save session as trace…"))
        self.export_action.setText(self.tr("&Export view as picture…"))
        self.compare_action.setText(self.tr("&Compare modes side by side…"))
        self.quit_action.setText(self.tr("&Quit"))
        self.language_menu.setTitle(self.tr("&Language"))
        self.lessons_menu.setTitle(self.tr("L&essons"))
        for name, known in all_lessons().items():
            if name in self.lesson_actions:
                self.lesson_actions[name].setText(
                    f"{known.section}  {known.title.get(i18n.current()) or name}")
        self.leave_lesson_action.setText(self.tr("Back to the live server"))
        for action in self.language_group.actions():
            action.setChecked(action.data() == i18n.current())
        self.engine_bar.setWindowTitle(self.tr("Engine"))
        self.traffic_bar.setWindowTitle(self.tr("Traffic"))
        for bar in (self.engine_bar, self.traffic_bar):
            if bar.toolTip():
                bar.setToolTip(self.tr("Replaying a recorded trace"))
        for box in (self.mode_box, self.fault_box, self.kind_filter, self.source_filter,
                    self.speed_box):  # sized for the old words otherwise
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for i, (label, _, _) in enumerate(MODES):
            self.mode_box.setItemText(i, self.tr(label))
        self._mode_tips()
        self.backlog_box.setPrefix(self.tr("backlog "))
        self.pause_box.setPrefix(self.tr("sweep pause "))
        self._sweep_applies()
        lab_ok, lab_reason = self._lab_status
        self.lab_box.setText(self.tr("Lab"))
        self.lab_box.setToolTip(
            self.tr("A private network namespace: real packets captured without root; only "
                    "SockScope's own clients reach it") if lab_ok
            else self.tr("The lab is not available: {0}").format(lab_reason))
        self.fault_box.setItemText(0, self.tr("no fault"))
        for i in range(1, self.fault_box.count()):
            lesson = FAULTS.get(self.fault_box.itemData(i), ("", ""))[1]
            self.fault_box.setItemData(i, self.tr(lesson), Qt.ItemDataRole.ToolTipRole)
        faults_ok, faults_reason = self._faults_status
        self.fault_box.setToolTip(self.tr("In the lab, drop one segment") if faults_ok
                                  else faults_reason)
        self.restart_button.setText(self.tr("Apply (restart engine)"))
        self.browser_button.setText(self.tr("Open in browser"))
        if self.host is not None:
            self._show_url()
        self.count_box.setPrefix(self.tr("clients "))
        for label, button in self.traffic_buttons.items():
            button.setText(self.tr(label))
        self.banner_button.setText(self.tr("Restart engine"))
        self._show_stopped()
        self.connections.setHorizontalHeaderLabels(
            [self.tr("ports"), self.tr("client"), self.tr("server"), self.tr("requests"),
             self.tr("packets")])
        self.table_model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0,
                                                self.table_model.columnCount() - 1)
        self.filter_edit.setPlaceholderText(self.tr("words: GET, 404, 54321…"))
        self.kind_filter.setItemText(0, self.tr("every kind"))
        self.source_filter.setItemText(0, self.tr("every source"))
        self.fd_filter.setSpecialValueText(self.tr("every fd"))
        self.conn_filter.setText(self.tr("selected connection only"))
        if self.conn_filter.toolTip():
            self.conn_filter.setToolTip(self.selected or self.tr("no connection selected"))
        for i in range(self.view_tabs.count()):
            view = self.view_tabs.widget(i)
            if isinstance(view, View):
                self.view_tabs.setTabText(i, QCoreApplication.translate("View", view.title))
        self.live_button.setText(self.tr("Live"))
        self.play_button.setText(self.tr("Play"))
        self.back_button.setToolTip(self.tr("Step back one event (Left, PageUp)"))
        self.forward_button.setToolTip(self.tr("Step forward one event (Right, PageDown)"))
        for i, (label, _) in enumerate(SPEEDS):
            self.speed_box.setItemText(i, self.tr(label))
        self.gate_box.setText(self.tr("Step the server"))
        self.release_button.setText(self.tr("Release one action"))
        if self.lesson is not None and 0 <= self.lesson_step < len(self.lesson.steps):
            self.show_caption()
            self.setWindowTitle(f"SockScope — {self.lesson.lesson.title.get(self.language)}")
        self._update_status()

    def open_lesson(self, prepared: Prepared, step: int = 0) -> None:
        """Show a recorded lesson: its timeline, and its narration from step ``step``."""
        self.show_timeline(prepared.timeline, prepared.lesson.name, prepared.problems)
        self.lesson = prepared
        self.caption_box.show()
        self.setWindowTitle(f"SockScope — {prepared.lesson.title.get(self.language)}")
        self.go_to_step(step)

    def close_lesson(self) -> None:
        self.lesson = None
        self.caption_box.hide()

    def _attach_dialog(self) -> None:
        self.attachment.ask()

    def attach_engine(self, host: str, port: int, token: str) -> bool:
        """Drive and watch the engine whose control port is ``host:port`` (attach.py)."""
        return self.attachment.attach(host, port, token)

    def _open_lesson_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Open a lesson file"), "",
                                              self.tr("Lesson files (*.toml)"))
        if path:
            self.open_lesson_file(path)

    def open_lesson_file(self, path: str) -> bool:
        """Record the lesson a file describes, as the Lessons menu does; a file that
        cannot be used is refused with its line and what is wrong."""
        try:
            known = load_lesson_file(path)
        except LessonError as exc:
            QMessageBox.warning(self, self.tr("The lesson file cannot be used"), str(exc))
            return False
        self.start_lesson(known.name, known)
        return True

    def start_lesson(self, name: str, known: Lesson | None = None) -> None:
        """Record lesson ``name`` (a built-in one, or ``known``, read from a file) in the
        background; it opens when the run is done."""
        if self._recording is not None:
            return
        known = known or all_lessons()[name]
        result: dict = {"name": name, "dir": tempfile.mkdtemp(prefix="sockscope-lesson-")}

        def record() -> None:
            try:
                result["prepared"] = prepare(known, Path(result["dir"]))
            except (LessonError, OSError) as exc:
                result["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001  (a bug: said, not a dead thread)
                result["error"] = f"{known.name}: {type(exc).__name__}: {exc}"

        thread = threading.Thread(target=record, name=f"lesson-{name}", daemon=True)
        self._recording = (thread, result)
        thread.start()
        self._recording_timer.start()
        self.statusBar().showMessage(self.tr("Recording the lesson “{0}” on the real "
                                             "server…").format(known.title.get(self.language)))
        self.lessons_menu.setEnabled(False)

    def _lesson_recorded(self) -> None:
        if self._recording is None or self._recording[0].is_alive():
            return
        _, result = self._recording
        self._recording = None
        self._recording_timer.stop()
        self.lessons_menu.setEnabled(True)
        shutil.rmtree(result["dir"], ignore_errors=True)  # the timeline holds the events
        if "error" in result:
            self.statusBar().clearMessage()
            QMessageBox.warning(self, self.tr("The lesson could not run"), result["error"])
            return
        self._replace_live()  # the lesson's own run replaces the live server's
        self.statusBar().clearMessage()
        self.open_lesson(result["prepared"])

    def _replace_live(self) -> None:
        """A recorded timeline (a lesson's, a trace) takes the live server's place: the
        engine stops, the controls that drive it rest, and an open lesson closes.
        Lessons → Back to the live server starts it again."""
        self.close_lesson()
        if self.host is not None:
            self.host.stop(take=False)  # what it had not shown is not shown now
            self.host = None
        for bar in (self.engine_bar, self.traffic_bar):
            bar.setEnabled(False)
            bar.setToolTip(self.tr("Replaying a recorded trace"))
        self.gate_box.setEnabled(False)
        self.leave_lesson_action.setEnabled(True)

    def _show_moment(self) -> None:
        """The key moment at the cursor (EADDRINUSE, a SYN sent again, bytes epoll will
        not report again), in a banner over the view shown; none, no banner."""
        self.moment_banner.show_on(self.view_tabs.currentWidget(),
                                   moment_at(self.timeline.log, self.timeline.cursor))

    def _show_recorded_settings(self) -> None:
        """Replaying a recording (a lesson, a trace), the engine's toolbar shows what the
        recording ran with at the cursor (its latest mode and listen events: a lesson may
        run several engines), not the live server's settings; it rests, and the live
        settings come back with the live server. Nothing here is saved."""
        if self.host is not None:
            return
        log, cursor = self.timeline.log, self.timeline.cursor
        found = []
        for kind in ("mode", "listen"):
            before = log.indices(kinds=[kind], src="server", stop=cursor + 1)
            if len(before):
                found.append(int(before[-1]))
            else:
                after = log.indices(kinds=[kind], src="server")
                found.append(int(after[0]) if len(after) else -1)
        key = (found[0], found[1])
        if key == (-1, -1) or key == self._shown_settings:
            return
        if self._live_settings is None:
            self._live_settings = self._current_settings()
        self._shown_settings = key
        shown: dict = {}
        if found[0] >= 0:
            d = log[found[0]].data
            shown.update(mode=str(d.get("mode")), trigger=str(d.get("trigger") or "level"),
                         sweep_pause=d.get("sweep_pause"))
            if d.get("policy") in ("keep-alive", "close"):
                shown["policy"] = str(d["policy"])
        if found[1] >= 0:
            d = log[found[1]].data
            shown.update(backlog=d.get("backlog"), reuseaddr=d.get("reuseaddr"))
        self.show_engine_settings(shown, self.tr(
            "What the recording ran with (here at the cursor); Lessons → Back to the live "
            "server for yours"))

    def show_engine_settings(self, shown: dict, why: str) -> None:
        """Settings that are not the window's (a recording's, an attached engine's) in the
        engine toolbar, greyed, with ``why`` as its tooltip: ``shown`` holds mode, trigger,
        policy, backlog, reuseaddr and sweep_pause, each left as it is when absent or None.
        Nothing is sent to an engine and nothing is saved."""
        widgets = (self.mode_box, self.policy_box, self.backlog_box, self.reuse_box,
                   self.pause_box, self.lab_box)
        for w in widgets:
            w.blockSignals(True)
        try:
            if shown.get("mode") is not None:
                mode, trigger = shown["mode"], shown.get("trigger") or "level"
                index = next((i for i, (_, m, t) in enumerate(MODES)
                              if m == mode and t == trigger), -1)
                if index < 0:  # a mode with one trigger
                    index = next((i for i, (_, m, _t) in enumerate(MODES) if m == mode), -1)
                if index >= 0:
                    self.mode_box.setCurrentIndex(index)
            if shown.get("policy") is not None:
                self.policy_box.setCurrentText(str(shown["policy"]))
            if shown.get("sweep_pause") is not None:
                self.pause_box.setValue(round(float(shown["sweep_pause"]) * 1000))
            if shown.get("backlog") is not None:
                self.backlog_box.setValue(int(shown["backlog"]))
            if shown.get("reuseaddr") is not None:
                self.reuse_box.setChecked(bool(shown["reuseaddr"]))
            self.lab_box.setChecked(False)
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._sweep_applies()
        self.engine_bar.setEnabled(False)
        self.engine_bar.setToolTip(why)

    def _put_live_settings_back(self) -> None:
        s, self._live_settings, self._shown_settings = self._live_settings, None, None
        if s is None:
            return
        self.mode_box.setCurrentIndex(self._mode_index(s.mode, s.trigger or "level"))
        self.policy_box.setCurrentText(s.policy)
        self.backlog_box.setValue(s.backlog)
        self.reuse_box.setChecked(s.reuseaddr)
        self.pause_box.setValue(round(s.sweep_pause * 1000))
        self.lab_box.setChecked(s.lab)
        if s.fault is not None:
            self.fault_box.setCurrentIndex(max(0, self.fault_box.findData(s.fault)))

    def leave_lesson(self) -> None:
        """Back to the live server, with a fresh timeline."""
        self.close_lesson()
        self._put_live_settings_back()
        self.leave_lesson_action.setEnabled(False)
        for bar in (self.engine_bar, self.traffic_bar):
            bar.setEnabled(True)
            bar.setToolTip("")
        self.gate_box.setEnabled(True)
        self.show_timeline(Timeline.live(), "")
        self.setWindowTitle("SockScope")
        self.live_button.setChecked(True)
        self.start_engine(self._current_settings())

    def go_to_step(self, k: int, ask: bool = False, reveal: bool = False) -> None:
        """Step ``k`` of the lesson: its cursor, its view, its connection, its words;
        ``ask``: its question alone (presenting), the picture still the step's own;
        ``reveal``: and its right choice marked."""
        lesson = self.lesson
        if lesson is None:
            return
        k = max(0, min(k, len(lesson.steps) - 1))
        self.lesson_step = k
        self.lesson_asking = bool(ask and lesson.question(k))
        self.lesson_revealed = bool(reveal and self.lesson_asking and lesson.choices(k)
                                    and lesson.steps[k].answer is not None)
        step = lesson.steps[k]
        if step.conn is not None:
            self.select_connection(step.conn(self.timeline.log))
        self.show_view(step.view)
        self.caption_step.setText(f"{k + 1} / {len(lesson.steps)}")
        self.show_caption()
        self.seek(lesson.at[k])

    def show_caption(self) -> None:
        """The step's words. In the window: the narration and its question. Presenting,
        a step that asks takes two key presses: first what it shows (the narration), then
        the question alone, before the next step shows the answer."""
        lesson, k = self.lesson, self.lesson_step
        if lesson is None or not 0 <= k < len(lesson.steps):
            return
        choices = lesson.choices(k, self.language)
        answer = lesson.steps[k].answer
        if not self.presentation.active:
            text = lesson.text(k, self.language)
        elif self.lesson_asking:
            text = self.tr("Question: {0}").format(lesson.question(k, self.language))
            if choices:
                text += "\n" + lettered(choices, answer, self.lesson_revealed,
                                         self.tr("{0} (right)"), whole=True)
        else:
            text = lesson.narration(k, self.language)
        self.caption.setText(text)
        # In the window a student picks and is told at once; presenting, the caption
        # holds the choices and a key reveals the answer.
        self.choice_row.set_question(choices if not self.presentation.active else [],
                                     answer, (self.tr("Right: {0}"),
                                              self.tr("Not this one: the answer is {0}")))
        self.caption.setProperty("asking", self.lesson_asking and self.presentation.active)
        note = lesson.steps[k].footnote
        self.caption_note.setText(self.tr("Recorded with: {0}").format(note) if note else "")
        self.caption_note.setVisible(bool(note) and not self.lesson_asking)
        self.presentation.style_caption()

    def show_view(self, name: str) -> bool:
        view = self.views.get(name)
        if view is None:
            return False
        if self.view_tabs.indexOf(view) < 0:  # beside the tabs: presenting a pair
            return self.presentation.show_view(view)
        self.view_tabs.setCurrentWidget(view)
        return True

    def keyPressEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        key = event.key()
        if self.lesson is not None and key in (Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
            self.go_to_step(self.lesson_step + (1 if key == Qt.Key.Key_PageDown else -1))
            return
        if key == Qt.Key.Key_Space:
            self.play_button.toggle()
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_PageDown):
            self.step(1)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_PageUp):
            self.step(-1)
        elif key == Qt.Key.Key_Home:
            self.seek(0)
        elif key == Qt.Key.Key_End:
            self.seek(len(self.timeline.log) - 1)
        else:
            super().keyPressEvent(event)

    # ------------------------------------------------------------ rendering
    def _refresh(self) -> None:
        """Show the timeline at its cursor. Live, what costs more than half a frame to
        draw (the view and its paint, the key moment, the connections: ten thousand
        sockets, or a load test's stream) is drawn again only after four times what it
        took, from the newest state then, so that the window keeps its frame rate: it may
        sample what it draws, never what it records. Paused, stepping or replaying,
        every change is drawn."""
        tl = self.timeline
        self.slider.blockSignals(True)  # code moves the slider: no feedback loop
        self.slider.setRange(-1, len(tl.log) - 1)
        self.slider.setValue(tl.cursor)
        self.slider.blockSignals(False)
        self.position_label.setText(f"{tl.cursor + 1} / {len(tl.log)}")
        self._show_recorded_settings()
        now = time.monotonic()
        streaming = tl.live and self.host is not None  # (a trace or a lesson is drawn whole)
        if streaming and now < self._draw_due:
            self._view_owed = True  # drawn when due, even if no new event comes by then
            self._update_status()
            return
        started = time.perf_counter()
        self.slider.set_marks(self._restart_marks(), self._capture_gaps())
        self._show_moment()
        state = tl.state
        # The newest 200 (of maybe ten thousand), oldest first
        conns = heapq.nlargest(200, state.connections.values(), key=lambda c: c.opened_ns or 0)
        conns.reverse()
        self.connections.setRowCount(len(conns))
        for r, c in enumerate(conns):
            client, server = _state_cell(c, "client"), _state_cell(c, "server")
            earlier = c.earlier
            cells = (short_id(c.id), client, server,
                     self.tr("before the trace") if earlier else str(c.requests),
                     "—" if earlier else str(c.packets))
            for col, text in enumerate(cells):
                item = self.connections.item(r, col)
                if item is None:
                    item = QTableWidgetItem(text)
                    self.connections.setItem(r, col, item)
                elif item.text() != text:
                    item.setText(text)
                if col == 0:
                    item.setToolTip(c.id + ("\n" + self.tr(
                        "On the server's port before the recording began (an earlier "
                        "connection): the kernel observer found it at its start.")
                        if earlier else ""))
        if not tl.live and self.table_model.rows and tl.cursor < 0:
            self.table.clearSelection()  # before the first event: no row is the cursor's
        elif not tl.live and self.table_model.rows:
            self.table.selectRow(self.table_model.row_of(tl.cursor))
        elif tl.live and self.table_model.rows:
            # Live, the event log follows the newest rows, as the views follow the newest
            # event; stepping or replaying, it shows the cursor's row instead (above).
            self.table.scrollToBottom()
        self._draw_view(streaming)
        self.presentation.refresh(tl)  # a presented pair's second view
        every = redraw_after(time.perf_counter() - started) if streaming else 0.0
        self._draw_due = now + every
        view = self.view_tabs.currentWidget()
        self._view_every = (view.name if isinstance(view, View) else "", every)
        self._view_owed = False
        self._update_status()

    def _sweep_applies(self) -> None:
        sweeps = MODES[self.mode_box.currentIndex()][1] == "nonblocking"
        self.pause_box.setEnabled(sweeps)
        self.pause_box.setToolTip(
            self.tr("The non-blocking loop's pause between sweeps over its sockets (0: a busy "
                    "loop)") if sweeps else
            self.tr("Only the non-blocking mode sweeps its sockets; this mode waits in the "
                    "kernel instead"))

    def open_compare(self) -> None:
        """The Compare window: this window's mode beside epoll (or threaded beside epoll),
        each a fresh engine of its own; the live server here runs on."""
        from .compare_window import CompareWindow
        if self.compare_window is not None and self.compare_window.isVisible():
            self.compare_window.raise_()
            return
        mode = (self._live_settings or self._current_settings()).mode
        specs = [mode if mode != "epoll" else "threaded", "epoll"]
        self.compare_window = CompareWindow(specs)
        self.compare_window.show()

    def _view_chosen(self, _index: int) -> None:
        """Another view in front: drawn at once, even live behind a dear drawing."""
        self._draw_due = 0.0
        self._refresh()

    def _draw_view(self, streaming: bool = False) -> None:
        """Draw the shown view; streaming, painted at once, so that what its paint costs
        counts in when it is drawn again (``_refresh``)."""
        view = self.view_tabs.currentWidget()
        if not isinstance(view, View):
            return
        view.show_state(self.timeline)
        if streaming:
            view.repaint()

    def _restart_marks(self) -> list[int]:
        """Where the engine (re)started: its ``mode`` events, marked on the slider."""
        log = self.timeline.log
        if self._marks_for[:2] == (log, len(log)):
            return self._marks_for[2]
        modes = self._modes
        modes.update(log)  # (what the log added since: millions of events are not read again)
        marks = modes.idx[modes.src == log.sources.codes.get("server", -1)].tolist()
        self._marks_for = (log, len(log), marks)
        return marks

    def _capture_gaps(self) -> list[tuple[int, int, int]]:
        """Where the capture lost frames, as log indices: from the last event at or before
        the gap's start to the first at or after its end, with the frames lost."""
        log = self.timeline.log
        if self._gaps_for[:2] == (log, len(log)):
            return self._gaps_for[2]
        gaps: list[tuple[int, int, int]] = []
        for lo, hi, frames in log.capture_gaps():
            first = max(0, log.index_at_time(lo))
            last = min(len(log) - 1, log.index_at_time(hi - 1) + 1)
            gaps.append((first, max(first, last), frames))
        self._gaps_for = (log, len(log), gaps)
        return gaps

    def _update_status(self) -> None:
        now = time.monotonic()
        self._rate_window = [(t, n) for t, n in self._rate_window if now - t < 2.0]
        rate = sum(n for _, n in self._rate_window) / 2.0
        state = self.timeline.state
        mode = state.mode.get("mode", "—")
        if state.mode.get("trigger"):
            mode += f" ({state.mode['trigger']})"
        url = self.host.url if self.host and self.host.url else "—"
        lost = str(state.dropped)
        if state.dropped:  # and which source lost them: the capture's frames are not events
            names = {"capture": self.tr("capture"), "trace": self.tr("trace"),
                     "kernel-side": self.tr("kernel side"), "control": self.tr("control port"),
                     "tracepoint": self.tr("tracepoint"),
                     "derive": self.tr("derived segments")}
            lost += " (" + ", ".join(f"{names.get(sink, sink)} {n}"
                                     for sink, n in state.dropped_by.items() if n) + ")"
        text = self.tr(
            "mode: {0}   URL: {1}   open connections: {2}   events/s: {3:.0f}   "
            "dropped: {4}").format(mode, url, state.open_connections, rate, lost)
        view = self.view_tabs.currentWidget()
        name, every = self._view_every
        if self.timeline.live and every and isinstance(view, View) and view.name == name:
            text += "   " + self.tr("this view: redrawn every {0:.1f} s to keep up").format(every)
        self.behind = self._behind()  # (what the status bar and the label say)
        lag = self.behind[0] if self.behind is not None else None
        if self.waiting and self.host is not None:
            if lag is not None:
                text += "   " + self.tr(
                    "behind the engine: {0:.1f} s, {1} events waiting, none lost").format(
                    lag, f"{self.waiting:,}")
            else:
                text += "   " + self.tr("behind the engine: {0} events waiting, none lost"
                                        ).format(f"{self.waiting:,}")
        if lag is not None and lag >= LAG_SHOWN_S and self.timeline.live:
            self.lag_label.setText(self.tr("{0:.1f} s behind").format(lag))
            self.lag_label.setToolTip(self.tr(
                "The picture is the engine's past: its newest event came {0:.1f} s after "
                "the last one the window took. {1} events wait, none lost; the window takes "
                "them as fast as it can draw.").format(lag, f"{self.waiting:,}"))
            self.lag_label.show()
        else:
            self.lag_label.hide()
        failed = self.timeline.log.spill_failed
        if failed is not None:  # nothing is lost, but memory now grows with the session
            text += "   " + self.tr("the disk refused the session's spill file ({0}): "
                                    "events now kept in memory").format(
                failed.strerror or failed)
        if self._reading is not None:
            reading = self._reading[0]
            text += "   " + self.tr("reading: {0:.0f} % ({1} events)").format(
                100 * reading.position / max(1, reading.size), f"{len(reading.log):,}")
        elif self.fold_timer.isActive():
            text += "   " + self.tr("states worked out: {0:.0f} %").format(
                100 * self.timeline.folded / max(1, len(self.timeline.log)))
        self.status_label.setText(text)

    def _behind(self) -> tuple[float, int, int] | None:
        """While events wait: the engine's seconds between the newest event that came and
        the last one taken, with those two times (None when none waits, or nothing was
        taken yet)."""
        if not self.waiting or self.host is None or not len(self.timeline.log):
            return None
        newest = self.host.newest_ns()
        if newest is None:
            return None
        last = int(self.timeline.log.times[-1])
        return max(0.0, (newest - last) / 1e9), last, newest

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        self.qsettings.setValue("geometry", self.saveGeometry())
        self.drain_timer.stop()
        self.play_timer.stop()
        self.fold_timer.stop()
        self._stop_reading()
        if self._recording is not None:  # a lesson still recording: let its run finish
            self._recording[0].join(30)
            shutil.rmtree(self._recording[1]["dir"], ignore_errors=True)
            self._recording = None
        if self.host:
            self.host.stop(take=False)  # closing: nothing left to show it in
            self.host = None
        if self.compare_window is not None:  # its engines end with this window
            self.compare_window.close()
        super().closeEvent(event)


def dispose(window: QMainWindow) -> None:
    """Destroy the window now, while Qt is whole: left to the garbage collector at
    interpreter exit, its pyqtgraph scenes would be torn down after Qt's and crash."""
    window.close()
    # What closing wrote (the geometry) goes to its file now: a picture's throwaway
    # settings folder is removed next, and a later write would make it again (left in /tmp).
    settings = getattr(window, "qsettings", None)
    if settings is not None:
        settings.sync()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def main(argv: list[str] | None = None) -> int:
    app = application()
    window = MainWindow()
    window.show()
    quit_on_signals(app, window)
    code = app.exec()
    dispose(window)
    return code


def lesson(name: str, step: int | None = None, lang: str | None = None,
           screenshot: str | None = None, workdir: str | None = None, *,
           present: bool = False, question: bool = False, gif: str | None = None,
           steps: str | None = None,
           theme: str | None = None, zoom: float | None = None,
           handout: str | None = None, reveal: bool = False) -> int:
    """``sockscope lesson NAME``: record the lesson, open it at a step; with --screenshot,
    write that step's picture (PNG, or SVG of the view; with ``present``, the presentation
    layout at 1280 x 720) and exit; with --gif, steps ``steps`` ("A-B") as an animated
    GIF; with ``handout``, the lesson as a PDF (``lang`` "both": each step in English,
    then in Chinese). ``theme`` and ``zoom`` (1.0 = 100 %) apply without being
    remembered."""
    import tempfile

    from . import presentation

    from .cli import chosen_lesson
    from .lessons import LessonError, prepare
    chosen, code = chosen_lesson(name)
    if chosen is None:
        return code
    if handout:  # said before the recording, not after it
        from .handout import unwritable
        problem = unwritable(handout)
        if problem:
            print(f"sockscope lesson: {problem}", file=sys.stderr)
            return 1
    app = application()
    with tempfile.TemporaryDirectory(prefix="sockscope-lesson-") as tmp:
        try:
            prepared = prepare(chosen, Path(workdir or tmp))
        except (LessonError, OSError) as exc:  # OSError: a full disk under the recording
            print(f"sockscope lesson: {exc}", file=sys.stderr)
            return 1
        settings = _window_settings("SockScope-lesson",
                                    Path(tmp) if screenshot or gif or handout else None)
        if lang and lang != "both":
            settings.setValue("language", lang)
        window = MainWindow(engine=False, settings=settings)
        window.resize(1600, 1000)
        window.show()
        count = len(prepared.steps)
        if step is not None and not 1 <= step <= count:
            print(f"sockscope lesson: {name} has steps 1 to {count}", file=sys.stderr)
            dispose(window)
            return 2
        if theme:
            window.presentation.set_theme(theme, persist=False)
        if zoom:
            window.presentation.set_zoom(zoom, persist=False)
        window.open_lesson(prepared, (step or 1) - 1)
        if question:
            asking = [str(k + 1) for k in range(count) if prepared.question(k)]
            if not prepared.question((step or 1) - 1):
                print(f"sockscope lesson: step {step} of {name} asks nothing; the steps that "
                      f"ask: {', '.join(asking)}", file=sys.stderr)
                dispose(window)
                return 2
            if reveal and not prepared.choices((step or 1) - 1):
                offering = [str(k + 1) for k in range(count) if prepared.choices(k)]
                print(f"sockscope lesson: step {step} of {name} offers no choices; the steps "
                      f"that do: {', '.join(offering) or 'none'}", file=sys.stderr)
                dispose(window)
                return 2
            window.go_to_step((step or 1) - 1, ask=True, reveal=reveal)
        if handout:
            return _handout(app, window, prepared, handout,
                            ["en", "zh_CN"] if lang == "both" else [window.language], steps)
        if gif:
            try:
                chosen = presentation.parse_steps(steps, count)
            except ValueError as exc:
                print(f"sockscope lesson: {exc}", file=sys.stderr)
                dispose(window)
                return 2
            try:
                frames = presentation.export_gif(window, gif, chosen)
            except OSError as exc:
                print(f"sockscope lesson: cannot write {gif}: {exc}", file=sys.stderr)
                dispose(window)
                return 1
            print(f"wrote {gif}: {frames} frames")
            dispose(window)
            return 0
        if screenshot:
            def write() -> None:
                if present:
                    presentation.export_page(window, screenshot)
                elif screenshot.lower().endswith(".svg"):
                    window.view_tabs.currentWidget().export(screenshot)
                else:
                    _save(window, screenshot)
            return _picture_and_exit(app, window, "lesson", write)
        if present:
            window.presentation.enter()
        code = app.exec()
        dispose(window)
        return code


def _handout(app: QApplication, window: MainWindow, prepared, path: str,  # type: ignore[no-untyped-def]
             langs: list[str], steps: str | None) -> int:
    """``sockscope lesson NAME --handout OUT.pdf``: write it, say so, close the window."""
    from .handout import write_handout
    from .presentation import parse_steps
    try:
        chosen = parse_steps(steps, len(prepared.steps))
    except ValueError as exc:
        print(f"sockscope lesson: {exc}", file=sys.stderr)
        dispose(window)
        return 2
    app.processEvents()
    for view in window.views.values():
        view.settle()
    try:
        pages = write_handout(window, prepared, path, langs, chosen)
    except OSError as exc:
        print(f"sockscope lesson: {exc}", file=sys.stderr)
        dispose(window)
        return 1
    print(f"wrote {path}: {pages} pages")
    dispose(window)
    return 0


def _exit_words(code: int) -> str:
    """An exit code as a person reads it: a negative one is the signal that ended it."""
    if code < 0:
        try:
            return f"{code}, {signal.Signals(-code).name}"
        except ValueError:
            return str(code)
    return str(code)


def _why_it_stopped(messages: list[str]) -> str:
    """What the engine last said that explains its end: its error or traceback lines,
    not its banner or its stepping help (a killed engine says nothing)."""
    telling = [m for m in messages if m and (m.startswith("sockscope") or any(  # its errors
        word in m for word in ("Error", "error", "Traceback", "failed", "cannot", "refused")))]
    return " | ".join(telling[-3:])


def _picture_and_exit(app: QApplication, window: QMainWindow, command: str,
                      write: Callable[[], None]) -> int:
    """Settle the views (no segment mid-flight), ``write`` the picture, close the
    window; the exit code: 0, or 1 with the reason when it cannot be written."""
    app.processEvents()
    for view in window.views.values():
        view.settle()
    app.processEvents()
    try:
        write()
    except OSError as exc:
        print(f"sockscope {command}: {exc}", file=sys.stderr)
        return_code = 1
    else:
        return_code = 0
    dispose(window)
    return return_code


def _save(window: QMainWindow, path: str) -> None:
    if not window.grab().save(path):
        raise OSError(f"cannot write {path} (does its folder exist? is the suffix "
                      f".png, .jpg or .bmp?)")


def _window_settings(name: str, scratch: Path | None) -> QSettings:
    """The window's own settings file; for a picture that is made and gone (--screenshot,
    --gif), a throwaway one in ``scratch``: a render never writes the user's settings."""
    if scratch is not None:
        return QSettings(str(scratch / f"{name}.ini"), QSettings.Format.IniFormat)
    return QSettings("SockScope", name)


def replay(path: str, seek: int | None = None, screenshot: str | None = None,
           view: str | None = None) -> int:
    """``sockscope replay``: open a trace; with --screenshot, write the picture and exit."""
    app = application()
    try:
        if seek is None:  # the picture at its end, as ever: read in order, folding as it reads
            timeline, _, problems = open_trace(path)
        else:  # (read by every core; the seek folds up to its event)
            timeline, _, problems = open_trace(path, fold=False)
    except (OSError, TraceError) as exc:
        print(f"sockscope replay: {exc}", file=sys.stderr)
        return 1
    for problem in problems:  # read, with a loss said: a truncated last line
        print(f"sockscope replay: {path}: {problem}", file=sys.stderr)
    scratch = tempfile.TemporaryDirectory(prefix="sockscope-replay-") if screenshot else None
    window = MainWindow(engine=False, settings=_window_settings(
        "SockScope-replay", Path(scratch.name) if scratch else None))
    window.show_timeline(timeline, Path(path).name, problems)
    if view and not window.show_view(view):
        print(f"sockscope replay: no view named {view!r} (views: "
              f"{', '.join(window.views) or 'none'})", file=sys.stderr)
        dispose(window)
        return 2
    if seek is not None:
        window.seek(seek)
    window.show()
    if screenshot:
        return _picture_and_exit(app, window, "replay", lambda: _save(window, screenshot))
    code = app.exec()
    dispose(window)
    return code
