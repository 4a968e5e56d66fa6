"""The Compare window: two or more engines side by side, fed the same load at once.

Each engine is a real ``sockscope serve`` of its own, on its own port, in the mode
chosen for it; each has its own timeline and its own I/O picture, and beside it the
numbers that tell the models apart, read from its own events as they come: answered
requests per second, the server's answer time, its CPU, its OS threads and memory
(its ``cpu`` samples), its open connections and errors. "Run on every engine" starts
the same built-in load against all of them in the same instant (and, with idle
connections asked for, that many silent keep-alive clients on each, held until the
next run or the window closes).

The second tab draws the scaling chart from real runs: ``sockscope compare --scale``
in a process of its own, its progress shown as it goes, its picture shown at the end.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import QEvent, QProcess, QSettings, Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QSpinBox, QTabWidget, QVBoxLayout,
                               QWidget)

from engine.modes import REGISTRY

from .host import EngineHost, EngineSettings
from .model import Timeline
from .views.base import redraw_after
from .views.io import IoView

WINDOW_S = 2.0  # the numbers are over the last two seconds of each engine's events
MOST_IDLE = 20_000  # the idle box's top
MOST_CLIENTS = 500
REPO = Path(__file__).resolve().parents[1]


def mode_and_trigger(text: str) -> tuple[str, str]:
    """"epoll-edge" -> ("epoll", "edge"); "threaded" -> ("threaded", "level")."""
    mode, _, trigger = text.partition("-")
    return mode, trigger or "level"


class EnginePane(QWidget):
    """One engine: its title, its live numbers, its I/O picture."""

    def __init__(self, spec: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        mode, trigger = mode_and_trigger(spec)
        # Idle clients stay an hour, and as many as the window can ask for fit (beyond
        # the engine's default 10,000, the load itself would be turned away with 503).
        self.host = EngineHost(EngineSettings(mode=mode, trigger=trigger, idle_timeout=3600,
                                              max_connections=MOST_IDLE + MOST_CLIENTS + 100))
        self.timeline = Timeline.live()
        self.view = IoView(self)
        self.title = QLabel(self)
        self.title.setStyleSheet("font-weight: bold; font-size: 16pt")
        self.numbers = QLabel(self)
        self.numbers.setTextFormat(Qt.TextFormat.PlainText)
        self.numbers.setStyleSheet("font-family: monospace; font-size: 12pt")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.numbers)
        layout.addWidget(self.view, 1)
        self.answered: deque[int] = deque()  # t_ns of each answer in the last WINDOW_S
        self.asked: dict[str, int] = {}  # connection -> t_ns of its request being answered
        self.times: deque[float] = deque(maxlen=2000)  # request -> response, ms
        self.last_cpu: dict = {}
        self.most_threads = 0
        self.errors = 0
        self.responses = 0
        self.idle: subprocess.Popen | None = None  # ``sockscope idle`` holding this many:
        self.idle_count = 0
        self.idle_said = ""  # its last line: held, refused, unanswered
        self.idle_ready = False
        self.pending: list[str] | None = None  # a load waiting for the idle clients
        self._due = 0.0
        self._owed = False

    def start(self) -> None:
        self.host.start()
        self.host.wait_url(15)
        url = self.host.url or self.tr("(not started)")
        self.title.setText(f"{self.spec}   {url}")

    def take(self) -> None:
        """New events: into the timeline, and into the numbers."""
        batch = self.host.drain()
        self._read_idle()
        if self.pending is not None and (not self.idle_count or self.idle_ready):
            self.host.run_traffic(self.pending)  # the idle clients are all there: now
            self.pending = None
        if batch:
            self.timeline.add(batch)
            for e in batch:
                if e.src != "server" and e.kind != "cpu":
                    continue
                if e.kind == "request":
                    self.asked[e.conn] = e.t_ns
                elif e.kind == "response":
                    self.responses += 1
                    if int(e.data.get("status") or 0) < 400:
                        self.answered.append(e.t_ns)
                    asked = self.asked.pop(e.conn, None)
                    if asked is not None:
                        self.times.append((e.t_ns - asked) / 1e6)
                elif e.kind == "error":
                    self.errors += 1
                elif e.kind == "cpu":
                    self.last_cpu = dict(e.data)
                    self.most_threads = max(self.most_threads, int(e.data.get("threads") or 0))
        now = time.monotonic()
        self._owed = self._owed or bool(batch)
        if self._owed and now >= self._due:
            started = time.perf_counter()
            self.view.show_state(self.timeline)
            cost = time.perf_counter() - started
            self._due = now + redraw_after(cost)  # as in the main window
            self._owed = False
        self.numbers.setText(self.describe())

    def _read_idle(self) -> None:
        """The idle clients' helper's lines: "idle: N held, R refused, U unanswered"."""
        if self.idle is None or self.idle.stdout is None:
            return
        while True:
            try:
                line = self.idle.stdout.readline()
            except (BlockingIOError, TypeError):  # nothing more yet
                return
            if not line:
                if self.idle.poll() is not None and not self.idle_ready:
                    self.idle_said = self.idle_said or self.tr("idle clients: the helper ended")
                    self.idle_ready = True  # the load goes on without them
                return
            self.idle_said = line.strip()
            self.idle_ready = True

    def rate(self) -> float:
        """Answered requests per second over the last WINDOW_S of this engine's clock."""
        if not self.answered:
            return 0.0
        newest = self.timeline.state.t_ns or self.answered[-1]
        while self.answered and self.answered[0] < newest - WINDOW_S * 1e9:
            self.answered.popleft()
        return len(self.answered) / WINDOW_S

    def describe(self) -> str:
        times = sorted(self.times)
        p50 = times[len(times) // 2] if times else None
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))] if times else None
        cpu = self.last_cpu
        lines = [
            self.tr("answered: {0:,.0f} req/s   ({1:,} responses)").format(self.rate(),
                                                                           self.responses),
            self.tr("answer time (server): p50 {0}  p99 {1}").format(
                f"{p50:.2f} ms" if p50 is not None else "—",
                f"{p99:.2f} ms" if p99 is not None else "—"),
            self.tr("CPU {0}   threads {1} (most {2})   memory {3}").format(
                f"{cpu['percent']:.0f} %" if "percent" in cpu else "—",
                f"{cpu['threads']:,}" if cpu.get("threads") is not None else "—",
                f"{self.most_threads:,}",
                f"{cpu['rss_mb']:,.0f} MB" if cpu.get("rss_mb") is not None else "—"),
            self.tr("open connections {0:,}   errors {1:,}").format(
                self.timeline.state.open_connections, self.errors)]
        if self.idle_count:
            lines.append(self.idle_said if self.idle_ready else
                         self.tr("opening {0:,} idle connections…").format(self.idle_count))
        return "\n".join(lines)

    def run(self, load: list[str], idle: int) -> None:
        """The load, once ``idle`` silent keep-alive clients are all open and answered
        (kept from the run before when it asked as many; held until the next run)."""
        if idle != self.idle_count or (self.idle is not None and self.idle.poll() is not None):
            self.stop_idle()
            if idle and self.host.url:
                self.idle = subprocess.Popen(
                    [sys.executable, "-m", "engine", "idle", self.host.url, "--connections",
                     str(idle)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, text=True)
                assert self.idle.stdout is not None
                os.set_blocking(self.idle.stdout.fileno(), False)
                self.idle_count, self.idle_ready, self.idle_said = idle, False, ""
        self.pending = load

    def stop_idle(self) -> None:
        if self.idle is not None:
            self.idle.terminate()  # SIGTERM: it lets go of them all, even while opening
            try:
                self.idle.wait(10)
            except subprocess.TimeoutExpired:
                self.idle.kill()
                self.idle.wait(5)
            if self.idle.stdout is not None:
                self.idle.stdout.close()
            self.idle = None
        self.idle_count, self.idle_ready, self.idle_said = 0, False, ""

    def stop(self) -> None:
        self.stop_idle()
        self.host.stop()


class CompareWindow(QWidget):
    """Engines side by side (``specs``: modes, ``epoll-edge`` for a trigger)."""

    def __init__(self, specs: list[str], settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        unknown = [s for s in specs if mode_and_trigger(s)[0] not in REGISTRY]
        if len(specs) < 2 or unknown:
            raise ValueError(f"compare needs two or more modes ({', '.join(REGISTRY)})"
                             + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        self.resize(1600, 900)
        self.tabs = QTabWidget(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        # --- live, side by side
        live = QWidget()
        bar = QHBoxLayout()
        self.clients = QSpinBox(minimum=1, maximum=500, value=10)
        self.requests = QSpinBox(minimum=1, maximum=100_000, value=200)
        self.idle = QSpinBox(minimum=0, maximum=20_000, value=0, singleStep=1000)
        self.style_box = QComboBox()
        self.style_box.addItem("", "--keep-alive")
        self.style_box.addItem("", "--short")
        self.run_button = QPushButton()
        self.run_button.clicked.connect(self.run_all)
        self.bar_labels = [QLabel(), QLabel(), QLabel()]
        for label, box in zip(self.bar_labels, (self.clients, self.requests, self.idle)):
            bar.addWidget(label)
            bar.addWidget(box)
        bar.addWidget(self.style_box)
        bar.addWidget(self.run_button)
        bar.addStretch(1)
        grid = QGridLayout()
        self.panes = [EnginePane(spec) for spec in specs]
        for k, pane in enumerate(self.panes):
            grid.addWidget(pane, 0, k)
        column = QVBoxLayout(live)
        column.addLayout(bar)
        column.addLayout(grid, 1)
        self.tabs.addTab(live, "")
        # --- the scaling chart, from real runs
        scaling = QWidget()
        top = QHBoxLayout()
        self.points = QLineEdit("10,100,1000,10000")
        self.measure_button = QPushButton()
        self.measure_button.clicked.connect(self.measure)
        self.points_label = QLabel()
        top.addWidget(self.points_label)
        top.addWidget(self.points, 1)
        top.addWidget(self.measure_button)
        self.progress = QPlainTextEdit(readOnly=True)
        self.progress.setMaximumHeight(140)
        self.chart = QLabel()
        self.chart.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.chart.setMinimumHeight(300)
        column = QVBoxLayout(scaling)
        column.addLayout(top)
        column.addWidget(self.progress)
        column.addWidget(self.chart, 1)
        self.tabs.addTab(scaling, "")
        self.measuring: QProcess | None = None
        self._work = Path(tempfile.mkdtemp(prefix="sockscope-compare-"))
        self.chart_path: Path | None = None
        self.retranslate()
        for pane in self.panes:
            pane.start()
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("SockScope: compare"))
        self.style_box.setItemText(0, self.tr("keep-alive"))
        self.style_box.setItemText(1, self.tr("short connections"))
        self.run_button.setText(self.tr("Run on every engine at once"))
        for label, text in zip(self.bar_labels, (self.tr("clients"), self.tr("requests each"),
                                                 self.tr("idle connections"))):
            label.setText(text)
        self.tabs.setTabText(0, self.tr("Side by side, live"))
        self.tabs.setTabText(1, self.tr("As connections grow"))
        self.measure_button.setText(self.tr("Measure (a few minutes)"))
        self.points_label.setText(self.tr("idle connections:"))
        if self.chart_path is None and self.measuring is None:
            self.chart.setText(self.tr("The chart comes from real runs: press Measure."))

    def changeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def tick(self) -> None:
        for pane in self.panes:
            pane.take()

    def load_args(self) -> list[str]:
        return ["--clients", str(self.clients.value()), "--requests",
                str(self.requests.value()), self.style_box.currentData()]

    def run_all(self) -> None:
        """The same load, started against every engine in the same instant."""
        load, idle = self.load_args(), self.idle.value()
        for pane in self.panes:
            pane.run(load, idle)

    def measure(self) -> None:
        """``sockscope compare --scale`` for these modes, in a process of its own."""
        if self.measuring is not None:
            return
        out = self._work / "scale.png"
        self.chart_path = None
        # (compare runs each mode with its default trigger: epoll and epoll-edge are one)
        modes = dict.fromkeys(mode_and_trigger(p.spec)[0] for p in self.panes)
        args = ["-m", "visualizer.cli", "compare", "--modes", ",".join(modes),
                "--scale", self.points.text().replace(" ", ""), "--png", str(out),
                "--clients", str(self.clients.value()), "--requests",
                str(self.requests.value())]
        proc = QProcess(self)
        proc.setWorkingDirectory(str(REPO))
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(
            lambda: self.progress.appendPlainText(
                bytes(proc.readAllStandardOutput()).decode(errors="replace").rstrip()))
        proc.finished.connect(lambda code, _status: self._measured(code, out))
        self.progress.clear()
        self.measure_button.setEnabled(False)
        self.measuring = proc
        proc.start(sys.executable, args)

    def _measured(self, code: int, out: Path) -> None:
        self.measuring = None
        self.measure_button.setEnabled(True)
        if out.exists():
            self.chart_path = out
            self.chart.setPixmap(QPixmap(str(out)).scaled(
                self.chart.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
        else:
            self.chart.setText(self.tr("No chart: the measurement ended with {0}.").format(code))

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        self.timer.stop()
        if self.measuring is not None:
            # SIGTERM: compare stops the engine it runs, and exits
            self.measuring.terminate()
            if not self.measuring.waitForFinished(30_000):
                self.measuring.kill()
                self.measuring.waitForFinished(5000)
        for pane in self.panes:
            pane.stop()
        shutil.rmtree(self._work, ignore_errors=True)
        super().closeEvent(event)


def main(specs: list[str]) -> int:
    from PySide6.QtCore import QLocale

    from . import i18n
    from .qtapp import application, quit_on_signals
    app = application()
    lang = QSettings("SockScope", "SockScope").value("language")
    if lang not in ("en", "zh_CN"):
        lang = "zh_CN" if QLocale.system().name().startswith("zh") else "en"
    i18n.install(app, str(lang))
    try:
        window = CompareWindow(specs)
    except ValueError as exc:
        print(f"sockscope compare: {exc}", file=sys.stderr)
        return 2
    window.show()
    quit_on_signals(app, window)
    code = app.exec()
    window.close()
    return code
