"""The window's languages: English (the source text) and Simplified Chinese.

Every word the window and the views show goes through Qt's translations
(``self.tr`` / ``QCoreApplication.translate``); this package holds the
compiled Chinese catalogue, ``sockscope_zh_CN.qm``, built from
``assets/i18n/sockscope_zh_CN.ts`` by ``tools/update_translations.py``.
English needs no catalogue. Lesson narration is not here: lessons carry both
languages themselves (``visualizer/lessons``).

``install(app, lang)`` puts the translators for ``lang`` in place (and takes
the previous language's away); Qt then sends every widget a
``LanguageChange`` event, on which the window and the views re-read their
words (``retranslate``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QLibraryInfo, QLocale, QTranslator
from PySide6.QtGui import QFontInfo, QGuiApplication

from ..views import style

HERE = Path(__file__).resolve().parent
# What the Language menu offers: each language by its own name.
LANGUAGES = {"en": "English", "zh_CN": "中文"}
SOURCE = "en"  # the language of the source text

_translators: list[QTranslator] = []
_current = SOURCE
_fonts_done = False


def catalogue(lang: str) -> Path:
    """The compiled translations (.qm) of ``lang``."""
    return HERE / f"sockscope_{lang}.qm"


def current() -> str:
    """The language installed last (``en`` before any)."""
    return _current


def install(app: QCoreApplication | None, lang: str) -> str:
    """Translate the application into ``lang`` ("en" or "zh_CN"; anything else: English).

    Replaces what a previous call installed; Qt's own words (standard dialogs'
    buttons) come along when PySide6 ships Qt's catalogue for ``lang``. Returns the
    language now in place. Widgets get a ``LanguageChange`` event; it is delivered
    before this returns, so that the window reads in the new language at once.
    """
    global _current
    app = app or QCoreApplication.instance()
    if app is None:
        raise RuntimeError("install() needs a QApplication")
    _prefer_simplified_chinese_glyphs(app)
    lang = lang if lang in LANGUAGES else SOURCE
    if lang == _current:
        return lang
    for translator in _translators:
        app.removeTranslator(translator)
    _translators.clear()
    if lang != SOURCE:
        own = QTranslator(app)
        if not own.load(str(catalogue(lang))):  # a broken install: say so, stay in English
            print(f"sockscope: no translations for {lang}: {catalogue(lang)} is missing "
                  "(python3 tools/update_translations.py builds it)", file=sys.stderr)
            lang = SOURCE
    if lang != SOURCE:
        qt = QTranslator(app)
        if qt.load(QLocale(lang), "qtbase", "_",
                   QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
            _translators.append(qt)
        _translators.append(own)
        for translator in _translators:
            app.installTranslator(translator)
    _current = lang
    # Qt posts LanguageChange to the top-level widgets: deliver it now.
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LanguageChange)
    return lang


def _prefer_simplified_chinese_glyphs(app: QCoreApplication) -> None:
    """Han characters in the Simplified Chinese forms.

    The window's fonts (DejaVu Sans, the system's UI font) have no Chinese
    glyphs: Qt falls back to a font that has them, and on Linux fontconfig
    offers the Japanese cut of Noto Sans CJK first (Han unification: 直, 门,
    骨 then look Japanese). Naming the Chinese cuts as fallbacks of the
    application font (the views name them in ``style.font``) fixes that;
    families a machine lacks are skipped.
    """
    global _fonts_done
    if _fonts_done or not isinstance(app, QGuiApplication):
        return
    _fonts_done = True
    font = QGuiApplication.font()
    families = [QFontInfo(font).family()]
    font.setFamilies(families + [f for f in style.CJK_SANS if f not in families])
    QGuiApplication.setFont(font)


__all__ = ["LANGUAGES", "SOURCE", "catalogue", "current", "install"]
