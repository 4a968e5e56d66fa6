"""A question's choices under a lesson's caption: predict, then see.

In a student's window a step that asks with choices shows them as buttons; a pick is
checked at once ("Right" / "Not this one: the answer is B"), and the pick stays until
the step changes. Presenting, the choices are part of the caption's text (``lettered``)
and the next key marks the right one (``lettered(..., revealed=True)``).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from .lessons.base import LETTERS, lettered
from .views import style

__all__ = ["ChoiceRow", "LETTERS", "lettered"]

class ChoiceRow(QWidget):
    """The buttons of one question's choices and the verdict on a pick."""

    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.buttons: list[QPushButton] = []
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.answer: int | None = None
        self.choice: int | None = None  # the student's pick, None before one
        self._choices: list[str] = []
        self._words = ("Right: {0}", "Not this one: the answer is {0}")
        self.hide()

    def set_question(self, choices: list[str], answer: int | None,
                     words: tuple[str, str]) -> None:
        """Show ``choices`` (none: hide); ``words``: the right and wrong verdicts, each
        with {0} for the right choice, in the window's language."""
        self._words = words
        if choices == self._choices and answer == self.answer:
            self._show_verdict()
            return
        for button in self.buttons:
            self._layout.removeWidget(button)
            button.deleteLater()
        self._layout.removeWidget(self.verdict)
        self.buttons = []
        self._choices, self.answer, self.choice = list(choices), answer, None
        for k, choice in enumerate(choices):
            button = QPushButton(f"{LETTERS[k]}. {choice}")
            button.setFont(style.font(1.1))
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, k=k: self.pick(k))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self._layout.addWidget(self.verdict, 1)
        self.verdict.setFont(style.font(1.1, bold=True))
        self._show_verdict()
        self.setVisible(bool(choices))

    def pick(self, k: int) -> None:
        """A student's pick: checked against the answer at once."""
        if not 0 <= k < len(self.buttons):
            return
        self.choice = k
        for j, button in enumerate(self.buttons):
            button.setChecked(j == k)
        self._show_verdict()
        self.picked.emit(k)

    @property
    def right(self) -> bool | None:
        """Whether the pick is the answer (None before a pick, or with no answer)."""
        if self.choice is None or self.answer is None:
            return None
        return self.choice == self.answer

    def _show_verdict(self) -> None:
        if self.choice is None or self.answer is None:
            self.verdict.setText("")
            return
        answer = f"{LETTERS[self.answer]}. {self._choices[self.answer]}"
        right, wrong = self._words
        ok = self.choice == self.answer
        self.verdict.setText((right if ok else wrong).format(answer))
        self.verdict.setStyleSheet(f"color:{style.DATA if ok else style.WARNING}")
