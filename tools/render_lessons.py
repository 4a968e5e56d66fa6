"""Render every step of the lessons in presentation layout, in each language, zoom and
size, and measure every text against its box (visualizer.textaudit).

    python3 tools/render_lessons.py --out /tmp/renders            # all of it
    python3 tools/render_lessons.py --out /tmp/r --lessons epoll --zooms 200 --langs zh_CN

Each lesson is recorded once (``--cache DIR`` keeps the recordings for the next run);
the pictures are ``OUT/<lesson>/<lang>-<zoom>-<W>x<H>-<step>.png`` and
``OUT/findings.txt`` lists every text that is cut, crosses its view's edge or lies
on another one, picture by picture. Exit 1 when there is any finding.
Runs offscreen; the settings it writes are in a temporary folder, never the user's.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the recordings here and reuse them on the next run")
    parser.add_argument("--lessons", nargs="*", default=None)
    parser.add_argument("--langs", nargs="*", default=["en", "zh_CN"])
    parser.add_argument("--zooms", nargs="*", type=int, default=[100, 200])
    parser.add_argument("--sizes", nargs="*", default=["1280x720", "1920x1080"])
    parser.add_argument("--steps", default=None, help="e.g. 3-5 (from 1)")
    args = parser.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="sockscope-render-")
    from PySide6.QtCore import QSettings, QSize

    from visualizer import presentation
    from visualizer.app import MainWindow, dispose
    from visualizer.lessons import all_lessons, prepare
    from visualizer.qtapp import application
    from visualizer.textaudit import TextAudit, widget_findings

    application()
    lessons = all_lessons()
    names = args.lessons or list(lessons)
    args.out.mkdir(parents=True, exist_ok=True)
    report = (args.out / "findings.txt").open("w", encoding="utf-8")
    total = 0
    settings_dir = Path(os.environ["XDG_CONFIG_HOME"])
    for name in names:
        lesson = lessons[name]
        workdir = (args.cache / name) if args.cache else Path(tempfile.mkdtemp())
        workdir.mkdir(parents=True, exist_ok=True)
        cached = sorted(workdir.glob("*.jsonl")) if args.cache else []
        whole = workdir / f"{name}.jsonl"  # a lesson of several runs merges them into this
        trace = whole if whole in cached else cached[0] if len(cached) == 1 else None
        try:
            prepared = prepare(lesson, workdir, trace=trace)
        except Exception as exc:  # noqa: BLE001 (report and go on with the others)
            print(f"{name}: {exc}", file=sys.stderr)
            report.write(f"{name}: not recorded: {exc}\n")
            total += 1
            continue
        count = len(prepared.steps)
        print(f"{name}: {count} steps", flush=True)
        chosen = range(count)
        if args.steps:
            a, _, b = args.steps.partition("-")
            chosen = range(int(a) - 1, min(count, int(b or a)))
        (args.out / name).mkdir(exist_ok=True)
        for lang in args.langs:
            settings = QSettings(str(settings_dir / f"{name}-{lang}.ini"),
                                 QSettings.Format.IniFormat)
            settings.setValue("language", lang)
            window = MainWindow(engine=False, settings=settings)
            window.show()
            window.open_lesson(prepared, 0)
            for zoom in args.zooms:
                window.presentation.set_zoom(zoom / 100, persist=False)
                for size in args.sizes:
                    w, h = (int(v) for v in size.split("x"))
                    for k in chosen:
                        window.go_to_step(k)
                        page = presentation.slide_layout(window, QSize(w, h))
                        with TextAudit() as audit:
                            image = page.grab()
                        found = audit.findings() + widget_findings(page)
                        path = args.out / name / f"{lang}-{zoom}-{w}x{h}-{k + 1}.png"
                        image.save(str(path))
                        for f in found:
                            report.write(f"{path.relative_to(args.out)}: {f}\n")
                        total += len(found)
                    report.flush()
            dispose(window)
    report.close()
    print(f"{total} findings; {args.out / 'findings.txt'}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
