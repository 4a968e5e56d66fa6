"""File → Attach to an engine…: drive and watch an engine running elsewhere.

A lecturer's engine runs on a Linux VM or in a container (``sockscope serve
--control HOST:PORT``, which prints ``control: HOST:PORT  token: TOKEN``); the
window attaches to its control port, directly or through an SSH tunnel
(``ssh -L 7891:127.0.0.1:7891 user@vm``). ``AttachDialog`` asks for the host,
the port and the token (the host and the port are remembered in the window's
settings, never the token). ``Attachment`` does the rest for the window:

* attaching (``EngineHost.attach``) waits for the engine's answer without
  freezing the window; a refused token or nothing listening is said in a
  message box and the local engine runs on, untouched;
* accepted, the local engine stops and the timeline starts afresh (the other
  machine's clock is not this one's: their events would not interleave); the
  engine toolbar shows the attached engine's settings, and Apply serves its
  port again with the toolbar's (``restart OPTIONS`` over the port: mode,
  trigger, policy, backlog, SO_REUSEADDR, sweep pause; its lab and its site stay
  its own); the toolbar then follows the engine's own ``mode`` and ``listen``
  events; stepping goes over the socket; the traffic buttons run the clients
  inside the attached engine;
* the status bar says "attached to HOST:PORT", then that the attached engine
  ended (``q`` on its side, or the VM gone);
* File → Detach (or the banner's button once it ended) goes back to a local
  engine, with the window's own settings and a fresh timeline.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QSettings, Qt, QTimer
from PySide6.QtWidgets import (QApplication, QCheckBox, QDialog, QDialogButtonBox, QFormLayout,
                               QLabel, QLineEdit, QMessageBox, QSpinBox, QVBoxLayout, QWidget)

from engine.control import TOKEN_MIN, ControlError, parse_address

from .host import AttachError, EngineHost, EngineSettings, remote_settings
from .model import Timeline

if TYPE_CHECKING:
    from .app import MainWindow

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7891  # the control port the README's examples use


class AttachDialog(QDialog):
    """Host, port and token of an engine's control port."""

    def __init__(self, parent: QWidget | None, settings: QSettings) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle(self.tr("Attach to an engine"))
        self.help = QLabel(self.tr(
            "An engine started elsewhere with <code>sockscope serve --control HOST:PORT</code> "
            "prints its control port and its token. Through an SSH tunnel, attach to "
            "127.0.0.1 and the tunnel's local port."))
        self.help.setWordWrap(True)
        # Wide enough that the command in the help keeps its options on one line.
        self.help.setMinimumWidth(self.help.fontMetrics().horizontalAdvance(
            "sockscope serve --control HOST:PORT") * 3 // 2)
        self.host_edit = QLineEdit(str(settings.value("attach/host") or DEFAULT_HOST))
        self.port_box = QSpinBox()
        self.port_box.setRange(1, 65535)
        try:
            self.port_box.setValue(int(settings.value("attach/port") or DEFAULT_PORT))
        except (TypeError, ValueError):
            self.port_box.setValue(DEFAULT_PORT)
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText(self.tr("the token the engine printed"))
        self.show_box = QCheckBox(self.tr("Show"))
        self.show_box.toggled.connect(lambda on: self.token_edit.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
        token_row = QWidget()
        row = QVBoxLayout(token_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.token_edit)
        row.addWidget(self.show_box)
        form = QFormLayout()
        form.addRow(self.tr("Host"), self.host_edit)
        form.addRow(self.tr("Control port"), self.port_box)
        form.addRow(self.tr("Token"), token_row)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                        QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(self.tr("Attach"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.help)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        for edit in (self.host_edit, self.token_edit):
            edit.textChanged.connect(self._check)
        self._check()
        (self.token_edit if self.host_edit.text() else self.host_edit).setFocus()

    def _check(self) -> None:
        """Attach only with a host and a token that can be one (16 characters or more)."""
        ok = bool(self.host_edit.text().strip()) and len(self.token_edit.text()) >= TOKEN_MIN
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def values(self) -> tuple[str, int, str]:
        """(host, port, token); a host typed as HOST:PORT brings its port."""
        text, port = self.host_edit.text().strip(), self.port_box.value()
        if text.startswith("[") or text.count(":") == 1:
            try:
                text, port = parse_address(text, DEFAULT_HOST)
            except ControlError:
                pass
        return text, port or self.port_box.value(), self.token_edit.text().strip()

    def accept(self) -> None:
        host, port, _ = self.values()
        self.settings.setValue("attach/host", host)  # never the token
        self.settings.setValue("attach/port", port)
        super().accept()


class Attachment(QObject):
    """The window's side of an attached engine (see the module's words)."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.status = QLabel()  # "attached to HOST:PORT", in the status bar
        self.status.setStyleSheet("font-weight:bold")
        self.status.hide()
        window.statusBar().addPermanentWidget(self.status)
        self.timer = QTimer(self)
        self.timer.setInterval(150)
        self.timer.timeout.connect(self._watch)
        self.last_message = ""  # the last refusal said (tests read it too)
        self._told = -1  # the last mode or listen event the toolbar shows
        self._lab_enabled = True  # the Lab box as it was before attaching

    @property
    def attached(self) -> str | None:
        """The control port attached to, or None."""
        host = self.window.host
        return host.remote if host is not None else None

    def ask(self) -> None:
        """The dialog, then the attaching."""
        dialog = AttachDialog(self.window, self.window.qsettings)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.attach(*dialog.values())

    def attach(self, host: str, port: int, token: str) -> bool:
        """Attach the window to the engine at ``host:port``; False (said in a message box)
        when it refused or nothing answered: the window is then as it was."""
        w = self.window
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        engine = w.host if w.host is not None else EngineHost(w._live_settings or
                                                               w._current_settings())
        w.statusBar().showMessage(self.tr("Attaching to {0}…").format(address))
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:  # (a refused token is answered after a second or more: the window draws on)
            engine.attach(host, port, token, idle=lambda: QCoreApplication.processEvents(
                QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 20))
        except AttachError as exc:
            QApplication.restoreOverrideCursor()
            w.statusBar().clearMessage()
            self.last_message = self._refusal(address, exc)
            QMessageBox.warning(w, self.tr("Cannot attach"), self.last_message)
            return False
        QApplication.restoreOverrideCursor()
        self._show_attached(engine)  # (the local engine's last events go with its timeline)
        return True

    def _refusal(self, address: str, exc: AttachError) -> str:
        if exc.why == "token":
            return self.tr("The engine at {0} refused the token. Copy the token from the line "
                           "“control: …  token: …” the engine printed.").format(address)
        if exc.why == "busy":
            return self.tr("The engine at {0} is busy (too many windows attached or "
                           "attaching); try again later.").format(address)
        if exc.why == "unreachable":
            return self.tr("Nothing answers at {0} ({1}). Is the engine running with "
                           "--control, and the SSH tunnel open?").format(address, exc.detail)
        if exc.why == "timeout":
            return self.tr("The engine at {0} did not answer.").format(address)
        return self.tr("The engine at {0} refused to attach ({1}): is it SockScope's control "
                       "port, of this version?").format(address, exc.why)

    def _show_attached(self, engine: EngineHost) -> None:
        w = self.window
        # Whatever the window showed (its engine, a lesson, a trace): the attached engine now.
        w.close_lesson()
        if w._live_settings is not None:  # a recording's settings were shown: the window's back
            w._put_live_settings_back()
        live = w._current_settings()
        w.host = engine
        w.leave_lesson_action.setEnabled(True)  # back to the local engine, as Detach
        for bar in (w.engine_bar, w.traffic_bar):
            bar.setEnabled(True)
            bar.setToolTip("")
        w.gate_box.setEnabled(True)
        self._lab_enabled = w.lab_box.isEnabled()
        w._engine_exit_reported = False
        w.banner.hide()
        w.banner_button.hide()
        w._engine_lab = False
        # Its clock is another machine's: the timeline starts afresh.
        w.show_timeline(Timeline.live(), engine.remote or "")
        w.live_button.setChecked(True)
        self._show_settings(engine.settings)
        w._live_settings = live  # (Back to the live server, Detach: the window's own)
        self._told = -1
        w._shown_settings = None
        w.gate_box.blockSignals(True)  # the engine's stepping as it is: nothing sent
        w.gate_box.setChecked(engine.stepping)
        w.gate_box.blockSignals(False)
        w.release_button.setEnabled(engine.stepping)
        w._show_url()
        w.traffic_bar.setToolTip(self.tr(
            "Attached: the clients run inside the attached engine, against its own URL {0}")
            .format(engine.remote_url or "—"))
        w.detach_action.setEnabled(True)
        w.statusBar().showMessage(self.tr(
            "Attached to {0}. Traffic runs inside it, against {1}; its web page from here: "
            "{2} (through an SSH tunnel, forward that port as well).").format(engine.remote, engine.remote_url or "—", engine.url or "—"), 20_000)
        self._watch()
        self.timer.start()

    def _show_settings(self, s: EngineSettings) -> None:
        """The attached engine's settings in the toolbar; Apply changes them there. Its
        lab is its own (set when it was started)."""
        w = self.window
        w.show_engine_settings(
            {"mode": s.mode, "trigger": s.trigger, "policy": s.policy, "backlog": s.backlog,
             "reuseaddr": s.reuseaddr, "sweep_pause": s.sweep_pause}, "")
        w.engine_bar.setEnabled(True)
        w.engine_bar.setToolTip(self.tr(
            "The attached engine's settings: Apply serves its port again with these"))
        w.lab_box.setEnabled(False)
        w.fault_box.setEnabled(False)

    def apply(self, settings: EngineSettings) -> None:
        """Apply, attached: the engine there stops its server and serves its port again
        with the toolbar's settings; the toolbar then shows what it says it runs."""
        w = self.window
        w.host.restart(settings)
        w.statusBar().showMessage(self.tr(
            "The attached engine at {0} serves again as {1}: its events say when").format(
                self.attached, settings.mode), 10_000)

    def _follow_settings(self) -> None:
        """A new mode or listen event from the attached engine (a restart: this window's,
        another's, or a fallback it said): the toolbar shows what it runs now."""
        w = self.window
        log = w.timeline.log
        modes = log.indices(kinds=["mode"], src="server")
        listens = log.indices(kinds=["listen"], src="server")
        if not len(modes) or not len(listens):
            return
        latest = max(int(modes[-1]), int(listens[-1]))
        if latest <= self._told or int(listens[-1]) < int(modes[-1]):
            return  # nothing new, or its listen event is still to come
        self._told = latest
        kept = w.host.settings
        now = remote_settings(None, log[int(modes[-1])].data, log[int(listens[-1])].data)
        now.lab, now.fault, now.root = kept.lab, kept.fault, kept.root
        w.host.settings = now
        self._show_settings(now)

    def _watch(self) -> None:
        """While attached: the status bar's words, and the attached engine's end."""
        w = self.window
        address = self.attached
        if address is None:  # detached, or a trace or a lesson took its place
            self.timer.stop()
            self.status.hide()
            w.detach_action.setEnabled(False)
            w.banner_button.setText(QCoreApplication.translate("MainWindow", "Restart engine"))
            return
        channel = w.host.channel if w.host is not None else None
        ended = channel is None or channel.exit_code is not None
        if not ended:
            self._follow_settings()
        text = (self.tr("the attached engine at {0} ended").format(address) if ended
                else self.tr("attached to {0}").format(address))
        if self.status.text() != text:
            self.status.setText(text)
        self.status.show()
        back = self.tr("Back to the local engine")
        if w.banner_button.text() != back:
            w.banner_button.setText(back)
        if ended and w.banner.isVisible():
            said = self.tr("The attached engine at {0} ended (it stopped, or the connection to "
                           "it was lost). Nothing recorded is lost: File → Attach to an "
                           "engine… again, or back to the local engine.").format(address)
            if w.banner.text() != said:
                w.banner.setText(said)

    def leave(self, settings: EngineSettings) -> EngineSettings:
        """Before a local engine starts (Detach, the banner's button, Back to the live
        server): detach, put the window's own settings back, start the timeline afresh.
        The settings the local engine starts with are returned."""
        w = self.window
        host = w.host
        if host is None or host.remote is None:
            return settings
        host.stop(take=False)  # detaches: the engine there runs on (its unread lines
        # are dropped, never parsed: the timeline starts afresh)
        w.host = None
        restored = w._live_settings is not None
        w._put_live_settings_back()
        w.leave_lesson_action.setEnabled(False)
        w.engine_bar.setEnabled(True)
        w.engine_bar.setToolTip("")
        w.lab_box.setEnabled(self._lab_enabled)
        w.fault_box.setEnabled(w._faults_status[0] and w.lab_box.isEnabled() and
                               w.lab_box.isChecked())
        w.traffic_bar.setToolTip("")
        w.show_timeline(Timeline.live(), "")  # (its clock is not the attached engine's)
        w.setWindowTitle("SockScope")
        w.live_button.setChecked(True)
        self._watch()
        return w._current_settings() if restored else settings
