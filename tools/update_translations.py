#!/usr/bin/env python3
"""Bring the translations up to date with the source, and compile them.

    python3 tools/update_translations.py            # lupdate, then lrelease
    python3 tools/update_translations.py --release  # lrelease only (after translating)

1. ``pyside6-lupdate`` reads every ``self.tr("...")``,
   ``QCoreApplication.translate("Context", "...")`` and
   ``QT_TRANSLATE_NOOP("Context", "...")`` in ``SOURCES`` and merges them into
   ``assets/i18n/sockscope_<lang>.ts``: new strings arrive unfinished, strings
   gone from the source are dropped. Translate the unfinished ones (Qt
   Linguist, or any editor: fill ``<translation>`` and remove
   ``type="unfinished"``).
2. ``pyside6-lrelease`` compiles each ``.ts`` into
   ``visualizer/i18n/sockscope_<lang>.qm``, which the package ships.

Commit both files. ``tests/qt/test_i18n.py`` fails while a string lupdate
finds is missing from the ``.ts`` or unfinished there, or the ``.qm`` does not
say what the ``.ts`` says.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every file with words the window shows (English is the source language).
# Every module of the window (a new one is read without being listed: the pointer's
# and the attach dialog's words were missed once when each module was named here).
SOURCES = ["visualizer/*.py", "visualizer/views/*.py"]
LANGUAGES = ("zh_CN",)
TS_DIR = ROOT / "assets" / "i18n"
QM_DIR = ROOT / "visualizer" / "i18n"


def sources() -> list[Path]:
    files: list[Path] = []
    for pattern in SOURCES:
        files.extend(sorted(ROOT.glob(pattern)))
    return files


def ts_file(lang: str) -> Path:
    return TS_DIR / f"sockscope_{lang}.ts"


def qm_file(lang: str) -> Path:
    return QM_DIR / f"sockscope_{lang}.qm"


def tool(name: str) -> str:
    """pyside6-lupdate / pyside6-lrelease: on PATH, else the binary inside PySide6."""
    found = shutil.which(f"pyside6-{name}")
    if found:
        return found
    import PySide6
    for candidate in (Path(PySide6.__file__).parent / name,
                      Path(PySide6.__file__).parent / f"{name}.exe"):
        if candidate.exists():
            return str(candidate)
    sys.exit(f"pyside6-{name} not found: pip install PySide6-Essentials")


def lupdate(ts: Path) -> None:
    """Merge the source's strings into ``ts`` (created if missing)."""
    ts.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool("lupdate"), "-silent", "-no-obsolete", "-locations", "none",
                    *(str(p.relative_to(ROOT)) for p in sources()), "-ts", str(ts)],
                   cwd=ROOT, check=True)


def lrelease(ts: Path, qm: Path) -> None:
    subprocess.run([tool("lrelease"), "-silent", str(ts), "-qm", str(qm)], cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", action="store_true", help="compile only (no lupdate)")
    args = parser.parse_args(argv)
    for lang in LANGUAGES:
        ts = ts_file(lang)
        if not args.release:
            lupdate(ts)
        lrelease(ts, qm_file(lang))
        text = ts.read_text(encoding="utf-8")
        unfinished = text.count('type="unfinished"')
        print(f"{ts.relative_to(ROOT)}: {text.count('<message>')} strings, "
              f"{unfinished} unfinished -> {qm_file(lang).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
