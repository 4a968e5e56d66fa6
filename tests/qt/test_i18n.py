"""Languages: the Chinese catalogue is complete and current, the window switches at once.

The catalogue is checked against the source as it is today: ``pyside6-lupdate``
reads the source again into a scratch file, and every string it finds must be
translated in ``assets/i18n/sockscope_zh_CN.ts`` (a new ``self.tr("...")``
fails here until ``tools/update_translations.py`` has run and the string is
translated). An AST pass catches words lupdate cannot see: ``tr`` inside an
f-string, or called on anything but ``self``.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QLocale, QSettings, Qt, QTranslator
from PySide6.QtGui import QFontDatabase, QTextLayout
from PySide6.QtWidgets import (QAbstractButton, QComboBox, QLabel, QLineEdit, QMenu,
                               QTabWidget, QToolBar, QWidget)

from engine.lab import FAULTS
from visualizer import app as app_module
from visualizer import i18n
from visualizer.app import FAULT_LESSONS, MainWindow
from visualizer.lessons import Lesson, Prepared, Step
from visualizer.model import Timeline
from visualizer.views import style

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "assets" / "i18n" / "sockscope_zh_CN.ts"


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("update_translations",
                                                  ROOT / "tools" / "update_translations.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def messages(ts: Path) -> dict[tuple[str, str], ET.Element]:
    """(context, source) -> the <translation> element."""
    root = ET.parse(ts).getroot()
    return {(c.findtext("name") or "", m.findtext("source") or ""): m.find("translation")
            for c in root.iter("context") for m in c.iter("message")}


def settings_for(tmp_path: Path, lang: str | None, name: str = "s.ini") -> QSettings:
    s = QSettings(str(tmp_path / name), QSettings.Format.IniFormat)
    if lang:
        s.setValue("language", lang)
    return s


# ---------------------------------------------------------------- the catalogue
def test_every_entry_is_translated() -> None:
    entries = messages(TS)
    assert len(entries) > 250
    unfinished = [k for k, t in entries.items()
                  if t is None or t.get("type") is not None or not (t.text or "").strip()]
    assert not unfinished, f"untranslated in {TS.name}: {unfinished}"


def test_the_catalogue_holds_what_lupdate_finds_today(tmp_path: Path) -> None:
    tool = _tool()
    fresh = tmp_path / "fresh.ts"
    tool.lupdate(fresh)
    found, committed = set(messages(fresh)), set(messages(TS))
    new = sorted(found - committed)
    gone = sorted(committed - found)
    assert not new, ("strings not in the catalogue (run tools/update_translations.py and "
                     f"translate them): {new}")
    assert not gone, f"strings the source no longer has (run the tool again): {gone}"


def _tr_calls(path: Path) -> tuple[set[tuple[str, str]], list[str]]:
    """The literal strings ``path`` translates, with their context, and the calls lupdate
    would miss or file under a wrong context."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[tuple[str, str]] = set()
    bad: list[str] = []

    def text(node: ast.AST) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
            else None

    def visit(node: ast.AST, cls: str) -> None:
        if isinstance(node, ast.ClassDef):
            cls = node.name
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            args = [text(a) for a in node.args]
            if name == "tr" and args and args[0] is not None:
                on_self = isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) \
                    and fn.value.id == "self"
                if on_self:
                    found.add((cls, args[0]))
                else:  # lupdate files it under "" or the expression's text
                    bad.append(f"{path.name}:{node.lineno}: tr() not called on self")
            elif name in ("translate", "QT_TRANSLATE_NOOP") and len(args) >= 2 \
                    and args[0] is not None and args[1] is not None:
                found.add((args[0], args[1]))
        for child in ast.iter_child_nodes(node):
            visit(child, cls)

    visit(tree, "")
    return found, bad


def test_lupdate_sees_every_translated_literal() -> None:
    """A ``self.tr("...")`` inside an f-string, or ``tr = self.tr; tr("...")``, is
    translated at run time but lupdate never sees it: the Chinese would be missing."""
    committed = set(messages(TS))
    missing, bad = [], []
    for path in _tool().sources():
        found, wrong = _tr_calls(path)
        missing += [f"{path.name}: {k}" for k in sorted(found - committed)]
        bad += wrong
    assert not bad, bad
    assert not missing, missing


def test_translations_keep_placeholders_markup_and_mnemonics() -> None:
    for (context, source), t in messages(TS).items():
        translation = t.text or ""
        where = f"{context}: {source!r} -> {translation!r}"
        assert sorted(re.findall(r"\{[^}]*\}", source)) == \
            sorted(re.findall(r"\{[^}]*\}", translation)), where
        assert sorted(re.findall(r"<[^>]+>", source)) == \
            sorted(re.findall(r"<[^>]+>", translation)), where
        assert ("&" in source.replace("&nbsp;", "")) == \
            ("&" in translation.replace("&nbsp;", "")), where
        assert source.endswith(" ") == translation.endswith(" "), where  # prefixes


def test_the_compiled_catalogue_says_what_the_ts_says(qapp) -> None:  # type: ignore[no-untyped-def]
    translator = QTranslator()
    assert translator.load(str(i18n.catalogue("zh_CN")))
    stale = [(c, s) for (c, s), t in messages(TS).items()
             if translator.translate(c, s) != (t.text or "")]
    assert not stale, f"recompile (tools/update_translations.py --release): {stale[:5]}"


def test_fault_lessons_are_the_engines_words() -> None:
    assert set(FAULT_LESSONS) == {lesson for _, lesson in FAULTS.values()}


def test_the_package_ships_the_catalogue() -> None:
    import tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "visualizer.i18n" in config["packages"]
    assert "*.qm" in config["package-data"]["visualizer.i18n"]
    assert (ROOT / "visualizer" / "i18n" / "__init__.py").exists()


# ---------------------------------------------------------------- the window
def texts(root: QWidget) -> dict[str, object]:
    """Every word a widget tree shows, keyed by where it is (for comparing windows)."""
    out: dict[str, object] = {}
    for w in [root, *root.findChildren(QWidget)]:
        path = []
        p: QWidget | None = w
        while p is not None:  # where it is: its index among its parent's children
            parent = p.parentWidget()
            path.append(str(parent.children().index(p)) if parent is not None else "")
            p = parent
        key = "/".join(reversed(path)) + ":" + type(w).__name__
        item: dict[str, object] = {"tip": w.toolTip()}
        if isinstance(w, (QAbstractButton, QLabel)):
            item["text"] = w.text()
        elif isinstance(w, QComboBox):
            item["items"] = [(w.itemText(i), w.itemData(i, Qt.ItemDataRole.ToolTipRole))
                             for i in range(w.count())]
        elif isinstance(w, QLineEdit):
            item["placeholder"] = w.placeholderText()
        elif isinstance(w, QTabWidget):
            item["tabs"] = [w.tabText(i) for i in range(w.count())]
        elif isinstance(w, QMenu):
            item["menu"] = [w.title(), [a.text() for a in w.actions()]]
        elif isinstance(w, QToolBar):
            item["title"] = w.windowTitle()
        if hasattr(w, "prefix"):
            item["spin"] = [w.prefix(), w.suffix(), w.specialValueText()]  # type: ignore[attr-defined]
        if hasattr(w, "model") and callable(w.model) and w.model() is not None \
                and hasattr(w, "horizontalHeader"):
            model = w.model()  # type: ignore[attr-defined]
            item["header"] = [model.headerData(c, Qt.Orientation.Horizontal)
                              for c in range(model.columnCount())]
        out[key] = item
    return out


def has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def menu_titles(w: MainWindow) -> list[str]:
    return [a.text() for a in w.menuBar().actions()]


def tab_labels(w: MainWindow) -> list[str]:
    return [w.view_tabs.tabText(i) for i in range(w.view_tabs.count())]


def test_the_window_speaks_chinese_and_switches_back(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = settings_for(tmp_path, "zh_CN")
    w = MainWindow(engine=False, settings=s)
    qtbot.addWidget(w)
    w.show()
    assert w.language == "zh_CN" and i18n.current() == "zh_CN"
    assert menu_titles(w)[0] == "文件(&F)" and "语言/Language(&L)" in menu_titles(w)
    assert w.open_action.text() == "打开跟踪记录(&O)…"
    assert tab_labels(w)[:2] == ["握手与挥手", "生命周期"]
    assert w.traffic_buttons["Keep-alive"].text() == "长连接"
    assert w.mode_box.itemText(w._mode_index("epoll")) == "epoll（水平触发）"
    assert w.mode_box.itemText(0) == "一次一个客户端"  # the lecture's first server, first
    assert w.live_button.text() == "实时" and w.play_button.text() == "播放"
    assert w.table_model.headerData(1, Qt.Orientation.Horizontal) == "时间 (ms)"
    qtbot.waitUntil(lambda: bool(w.status_label.text()))  # the drain timer writes it
    assert w.status_label.text().startswith("模式：")
    views = w.views
    assert views["plots"].follow_box.text() == "跟随游标"
    assert views["sequence"].relative_box.text() == "相对 seq/ack"
    # The Language menu offers each language by its own name, the current one checked.
    assert {a.text(): a.isChecked() for a in w.language_group.actions()} == \
        {"English": False, "中文": True}

    english = next(a for a in w.language_group.actions() if a.data() == "en")
    english.trigger()  # what choosing Language → English does
    assert s.value("language") == "en" and i18n.current() == "en"
    assert menu_titles(w)[0] == "&File" and "&Language" in menu_titles(w)
    assert w.open_action.text() == "&Open trace…"
    assert tab_labels(w)[:2] == ["Handshake and teardown", "Lifecycle"]
    assert w.traffic_buttons["Keep-alive"].text() == "Keep-alive"
    assert w.mode_box.itemText(w._mode_index("epoll")) == "epoll (level)"
    assert w.live_button.text() == "Live"
    assert w.table_model.headerData(1, Qt.Orientation.Horizontal) == "time (ms)"
    assert w.status_label.text().startswith("mode: ")
    assert views["plots"].follow_box.text() == "Follow the cursor"
    assert views["sequence"].relative_box.text() == "Relative seq/ack"
    assert {a.text(): a.isChecked() for a in w.language_group.actions()} == \
        {"English": True, "中文": False}
    assert not any(has_han(str(v)) for v in texts(w).values()
                   if "中文" not in str(v))  # nothing Chinese left but the menu item

    w.set_language("zh_CN")
    assert tab_labels(w)[:2] == ["握手与挥手", "生命周期"] and w.live_button.text() == "实时"
    w.close()


def test_switching_reads_like_a_window_made_in_that_language(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """retranslate() sets every word _build set: a window switched to Chinese shows
    what a window made in Chinese shows, and back."""
    def words(w: MainWindow) -> dict[str, object]:
        w._update_status()  # (the drain timer's, at once)
        return texts(w)

    made_zh = MainWindow(engine=False, settings=settings_for(tmp_path, "zh_CN", "a.ini"))
    qtbot.addWidget(made_zh)
    chinese = words(made_zh)
    made_en = MainWindow(engine=False, settings=settings_for(tmp_path, "en", "b.ini"))
    qtbot.addWidget(made_en)
    english = words(made_en)
    assert words(made_zh) == english  # the whole application switched (one translator)
    made_en.set_language("zh_CN")
    assert words(made_en) == chinese
    assert words(made_zh) == chinese
    assert chinese != english
    for w in (made_zh, made_en):
        w.close()


def test_the_system_locale_decides_by_default(qtbot, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Chinese:
        @staticmethod
        def system() -> QLocale:
            return QLocale("zh_CN")

    monkeypatch.setattr(app_module, "QLocale", Chinese)
    w = MainWindow(engine=False, settings=settings_for(tmp_path, None))
    qtbot.addWidget(w)
    assert w.language == "zh_CN" and tab_labels(w)[0] == "握手与挥手"
    w.close()
    monkeypatch.undo()
    w = MainWindow(engine=False, settings=settings_for(tmp_path, None, "t.ini"))
    qtbot.addWidget(w)
    assert w.language == ("zh_CN" if QLocale.system().name().startswith("zh") else "en")
    w.close()


def test_qt_own_dialog_words_follow(qapp) -> None:  # type: ignore[no-untyped-def]
    i18n.install(qapp, "zh_CN")
    assert QCoreApplication.translate("QPlatformTheme", "Cancel") == "取消"
    i18n.install(qapp, "en")
    assert QCoreApplication.translate("QPlatformTheme", "Cancel") == "Cancel"


# ---------------------------------------------------------------- lessons
def _hand_made_lesson(tmp_path: Path) -> Prepared:
    lesson = Lesson(name="words", title={"en": "Words", "zh_CN": "词语"}, section="0",
                    summary={"en": "", "zh_CN": ""}, record=lambda d: d,
                    steps=lambda log: [])
    steps = [Step(text={"en": "The client sends a SYN.", "zh_CN": "客户端发出 SYN。"},
                  find=lambda log: None, view="sequence"),
             Step(text={"en": "The server answers SYN|ACK.", "zh_CN": "服务器回复 SYN|ACK。"},
                  find=lambda log: None, view="lifecycle")]
    return Prepared(lesson=lesson, timeline=Timeline(), trace=tmp_path / "none.jsonl",
                    steps=steps, at=[-1, -1])


def test_the_lesson_caption_follows_the_language(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = MainWindow(engine=False, settings=settings_for(tmp_path, "zh_CN"))
    qtbot.addWidget(w)
    w.show()
    w.open_lesson(_hand_made_lesson(tmp_path))
    assert w.caption.text() == "客户端发出 SYN。" and w.windowTitle() == "SockScope — 词语"
    w.set_language("en")
    assert w.caption.text() == "The client sends a SYN." and w.windowTitle() == "SockScope — Words"
    assert w.lesson_step == 0  # switching does not move the lesson
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.caption.text() == "The server answers SYN|ACK."
    w.set_language("zh_CN")
    assert w.caption.text() == "服务器回复 SYN|ACK。" and w.lesson_step == 1
    w.close()


# ---------------------------------------------------------------- fonts
def test_chinese_is_drawn_with_a_simplified_chinese_font(qapp) -> None:  # type: ignore[no-untyped-def]
    """No empty boxes: every Han character of the views' type has a glyph, from a
    Simplified Chinese cut where one is installed (not fontconfig's Japanese first)."""
    families = QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese)
    if not families:
        pytest.skip("no Chinese font installed (Debian/Ubuntu: fonts-noto-cjk)")
    i18n.install(qapp, "en")  # the application font gets its Chinese fallbacks
    text = "直连接门：握手与挥手"
    for font in (style.font(), style.font(1.3, bold=True), style.font(mono=True), qapp.font()):
        layout = QTextLayout(text, font)
        layout.beginLayout()
        layout.createLine()
        layout.endLayout()
        runs = layout.glyphRuns()
        assert runs
        for run in runs:
            raw = run.rawFont()
            assert 0 not in run.glyphIndexes(), f"tofu in {raw.familyName()}"
            if "Noto Sans CJK SC" in families:
                assert raw.familyName().lower().endswith("cjk sc"), raw.familyName()


# ---------------------------------------------------------------- the views' own words
def _handshake_timeline() -> Timeline:
    """A handshake by hand: segments (captured) and the states the kernel reported."""
    from engine.events import Event
    conn = "10.0.0.1:50000>10.0.0.2:80"
    events: list[Event] = []

    def add(kind: str, src: str, **data: object) -> None:
        n = len(events)
        events.append(Event(n + 1, 1_000_000_000 + n * 1_000, src, kind, conn, -1, 1, data))

    def seg(sender: str, flags: str, seq: int, ack: int = 0) -> None:
        ports = (50000, 80) if sender == "client" else (80, 50000)
        add("packet", "capture", sport=ports[0], dport=ports[1], flags=flags, tcp_seq=seq,
            ack=ack, len=0, win=512, origin="captured")

    seg("client", "SYN", 1000)
    add("tcp_state", "kernel", side="client", state="SYN_SENT", previous="CLOSED",
        source="observed")
    seg("server", "SYN|ACK", 5000, 1001)
    add("tcp_state", "kernel", side="server", state="SYN_RECV", previous="LISTEN",
        source="observed")
    seg("client", "ACK", 1001, 5001)
    timeline = Timeline()
    timeline.add(events)
    return timeline


def test_the_views_words_follow_shown_or_not(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Words a view keeps from show_state (titles, badges, notices) are read again: at once
    in the view on screen, when shown in the others."""
    w = MainWindow(engine=False, settings=settings_for(tmp_path, "zh_CN"))
    qtbot.addWidget(w)
    w.show()
    w.show_timeline(_handshake_timeline(), "hand-made")
    w.show_view("sequence")
    sequence, sockets = w.views["sequence"], w.views["sockets"]
    assert sequence.title_text == "连接 50000 → 80"
    assert sequence.badges == ["数据包：抓包", "状态：观测"]
    w.show_view("sockets")
    assert sockets.notice_text.startswith("观测：")
    assert sockets.table_model.headerData(0, Qt.Orientation.Horizontal) == "状态"
    w.set_language("en")
    assert sockets.notice_text.startswith("Observed: ")  # on screen: at once
    assert sockets.table_model.headerData(0, Qt.Orientation.Horizontal) == "State"
    w.show_view("sequence")  # hidden while switching: read again when shown
    assert sequence.title_text == "Connection 50000 → 80"
    assert sequence.badges == ["packets: captured", "states: observed"]
    w.close()
