"""The ``sockscope`` command: the window with no subcommand, ``replay`` for a
trace, the lessons, and every engine subcommand (serve, load, compare, idle, export,
import) as is.
Qt is imported only when a window is made, so ``serve`` and ``load`` stay
headless."""
from __future__ import annotations

import argparse
import os
import sys


WINDOW_COMMANDS = """\
window commands (each has its own --help):
  (none), window     the window, with its server on the default site
  lessons            list the built-in lessons
  lesson NAME|FILE   record a lesson (or a lesson file, .toml) and open it
                     (--screenshot, --gif, --handout, --notes: no window)
  replay TRACE       open a recorded trace (--screenshot: no window)
  compare --window   the modes side by side, live"""


def no_display() -> str | None:
    """Why a window cannot open here (a Linux session without X or Wayland, and no Qt
    platform chosen), or None. Qt itself would abort the process (exit 134)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM") \
            or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("sockscope: there is no display to open the window on (DISPLAY and "
            "WAYLAND_DISPLAY are unset). Run the server without a window: "
            "'sockscope serve'; or draw offscreen: QT_QPA_PLATFORM=offscreen "
            "(pictures: 'sockscope lesson NAME --screenshot OUT.png').")


def _window_or_say(problem: str | None) -> bool:
    if problem:
        print(problem, file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        from engine.cli import build_parser
        print(build_parser().format_help())
        print(WINDOW_COMMANDS)
        return 0
    if argv and argv[0] == "replay":
        parser = argparse.ArgumentParser(prog="sockscope replay",
                                         description="Open a recorded trace in the window.")
        parser.add_argument("trace")
        parser.add_argument("--view", default=None, help="the view to show")
        parser.add_argument("--seek", type=int, default=None, metavar="N",
                            help="put the cursor on event N")
        parser.add_argument("--screenshot", default=None, metavar="OUT.png",
                            help="write the window as a picture and exit")
        args = parser.parse_args(argv[1:])
        if args.screenshot and "QT_QPA_PLATFORM" not in os.environ and not os.environ.get("DISPLAY"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a picture needs no screen
        if not _window_or_say(no_display()):
            return 1
        from .app import replay
        return replay(args.trace, seek=args.seek, screenshot=args.screenshot, view=args.view)
    if argv and argv[0] == "lessons":
        parser = argparse.ArgumentParser(
            prog="sockscope lessons",
            description="List the built-in lessons, in the lecture's order: name, section of "
                        "the lecture, number of steps, title and what it teaches. "
                        "'sockscope lesson NAME' records one and opens it.")
        parser.add_argument("--template", action="store_true",
                            help="print a commented lesson file that runs as it is "
                                 "(sockscope lessons --template > mine.toml; sockscope "
                                 "lesson mine.toml)")
        parser.add_argument("--source", metavar="NAME",
                            help="print the file of a built-in lesson written as one, to "
                                 "copy and change (sockscope lessons --source single > "
                                 "mine.toml)")
        asked = parser.parse_args(argv[1:])
        if asked.template or asked.source:
            from .lessons.files import FILES, TEMPLATE
            shown = TEMPLATE
            if asked.source:
                shown = FILES / f"{asked.source}.toml"
                if asked.source == "template" or not shown.is_file():
                    written = sorted(f.stem for f in FILES.glob("*.toml") if f != TEMPLATE)
                    print(f"sockscope lessons: no built-in lesson file {asked.source!r} "
                          f"(written as files: {', '.join(written)})", file=sys.stderr)
                    return 2
            try:
                sys.stdout.write(shown.read_text(encoding="utf-8"))
                sys.stdout.flush()
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        from .lessons import all_lessons
        try:
            for lesson in all_lessons().values():
                print(f"{lesson.name:14} {lesson.section:9} {lesson.count():2} steps  "
                      f"{lesson.title['en']}: {lesson.summary['en']}", flush=True)
        except BrokenPipeError:  # | head: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if argv and argv[0] == "lesson":
        parser = argparse.ArgumentParser(prog="sockscope lesson",
                                         description="Record a lesson and open it.")
        parser.add_argument("name", help="a built-in lesson (sockscope lessons lists them) or "
                                         "a lesson file, PATH.toml (sockscope lessons "
                                         "--template prints one)")
        parser.add_argument("--step", type=int, default=None, metavar="K",
                            help="open at step K (from 1)")
        parser.add_argument("--lang", choices=["en", "zh_CN", "both"], default=None,
                            help="the window's language; with --handout, both: each step "
                                 "in English, then in Chinese")
        parser.add_argument("--screenshot", default=None, metavar="OUT.png|OUT.svg",
                            help="write the step as a picture (SVG: the view) and exit")
        parser.add_argument("--present", action="store_true",
                            help="presentation layout: full screen; with --screenshot, the "
                                 "caption and the view only, at 1280x720")
        parser.add_argument("--reveal", action="store_true",
                            help="with --question: the question's choices with the right one "
                                 "marked, as the next key shows them presenting")
        parser.add_argument("--question", action="store_true",
                            help="with --present: open on step K's question alone, as "
                                 "presenting shows it before the next step answers")
        parser.add_argument("--gif", default=None, metavar="OUT.gif",
                            help="write steps (--steps) as an animated GIF, 1280x720, 1.5 s "
                                 "a step, looping, and exit")
        parser.add_argument("--steps", default=None, metavar="A-B",
                            help="with --gif or --handout: the steps, from 1 (e.g. 1-5; "
                                 "default all)")
        parser.add_argument("--handout", default=None, metavar="OUT.pdf",
                            help="write the lesson as a printable PDF (A4 landscape: a title "
                                 "page, then each step's picture and caption) and exit")
        parser.add_argument("--theme", choices=["light", "projector", "dark"], default=None,
                            help="colours for this run (the window's View menu keeps one)")
        parser.add_argument("--zoom", type=int, default=None, metavar="PCT",
                            help="type size for this run, 100 to 300 (percent)")
        parser.add_argument("--notes", action="store_true",
                            help="print every step's caption as text, from a real recording "
                                 "(speaker notes, a handout's text) and exit; no window")
        args = parser.parse_args(argv[1:])
        if args.handout:
            others = [o for o, on in (("--screenshot", args.screenshot), ("--gif", args.gif),
                                      ("--present", args.present), ("--question", args.question),
                                      ("--notes", args.notes), ("--step", args.step is not None))
                      if on]
            if others:
                parser.error(f"--handout writes the whole lesson: not with {', '.join(others)}")
            if not args.handout.lower().endswith(".pdf"):
                parser.error(f"--handout writes a PDF: {args.handout!r} should end in .pdf")
        elif args.lang == "both":
            parser.error("--lang both goes with --handout")
        if args.notes:
            return notes(args.name, args.lang or "en")
        if args.zoom is not None and not 100 <= args.zoom <= 300:
            parser.error("--zoom takes 100 to 300 (percent)")
        if args.steps and not (args.gif or args.handout):
            parser.error("--steps goes with --gif or --handout")
        if args.question and not (args.present and args.step):
            parser.error("--question goes with --present and --step K")
        if args.reveal and not args.question:
            parser.error("--reveal goes with --question")
        if (args.screenshot or args.gif or args.handout) \
                and "QT_QPA_PLATFORM" not in os.environ \
                and not os.environ.get("DISPLAY"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from pathlib import Path

        from .lessons import LessonError
        from .lessons.files import LessonFile, is_file
        if is_file(args.name):  # a lesson file is read and checked before any window
            try:
                LessonFile(Path(args.name))
            except LessonError as exc:
                print(f"sockscope lesson: {exc}", file=sys.stderr)
                return 1
        if not _window_or_say(no_display()):
            return 1
        from .app import lesson
        return lesson(args.name, step=args.step, lang=args.lang, screenshot=args.screenshot,
                      present=args.present, question=args.question, reveal=args.reveal,
                      gif=args.gif,
                      steps=args.steps, theme=args.theme, handout=args.handout,
                      zoom=args.zoom / 100 if args.zoom else None)
    if argv and argv[0] == "compare":  # the engine's command, with the picture drawn here
        from engine.cli import build_parser, cmd_compare
        args = build_parser().parse_args(argv)
        if args.window:  # the modes side by side, live
            if not _window_or_say(no_display()):
                return 1
            from .compare_window import main as compare_window
            return compare_window([m.strip() for m in args.modes.split(",") if m.strip()])

        from .compare_chart import draw
        return cmd_compare(args, draw)
    if not argv or argv[0] in ("app", "window"):
        if not _window_or_say(no_display()):
            return 1
        from .app import main as app_main
        return app_main()
    from engine.cli import main as engine_main
    return engine_main(argv)


def chosen_lesson(name: str):  # type: ignore[no-untyped-def]
    """The lesson ``sockscope lesson NAME`` names (built in, or a lesson file) and 0; or
    None and the exit code, said on standard error: 1 for a lesson file that cannot be
    used (its line, what is wrong), 2 for a name no lesson has."""
    from .lessons import LessonError, find_lesson
    try:
        lesson = find_lesson(name)
    except LessonError as exc:
        print(f"sockscope lesson: {exc}", file=sys.stderr)
        return None, 1
    if lesson is None:
        print(f"sockscope lesson: no lesson named {name!r} (sockscope lessons lists them)",
              file=sys.stderr)
        return None, 2
    return lesson, 0


def notes(name: str, lang: str) -> int:
    """``sockscope lesson NAME --notes``: record the lesson (as the window would) and
    print each step's caption, one paragraph per step headed with its number, and the
    question a step asks on a line of its own ("Question: ...")."""
    import tempfile
    from pathlib import Path

    from .lessons import LessonError, prepare
    lesson, code = chosen_lesson(name)
    if lesson is None:
        return code
    with tempfile.TemporaryDirectory(prefix="sockscope-notes-") as tmp:
        try:
            prepared = prepare(lesson, Path(tmp))
        except (LessonError, OSError) as exc:
            print(f"sockscope lesson: {exc}", file=sys.stderr)
            return 1
    try:
        _print_notes(prepared, lang)
    except BrokenPipeError:  # | head: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print_notes(prepared, lang: str) -> None:  # type: ignore[no-untyped-def]
    from .lessons.base import lettered
    lesson = prepared.lesson
    title = lesson.title.get(lang) or lesson.title["en"]
    summary = lesson.summary.get(lang) or lesson.summary["en"]
    print(f"{title} ({lesson.section}): {summary}\n")
    zh = lang.startswith("zh")
    ask, how = ("问题：", "录制时使用：") if zh else ("Question: ", "Recorded with: ")
    offered, right = ("选项：", "{0}（正确）") if zh else ("Choices: ", "{0} (right)")
    for k in range(len(prepared.steps)):
        asked, note = prepared.question(k, lang), prepared.steps[k].footnote
        choices = prepared.choices(k, lang)
        print(f"{k + 1}. {prepared.narration(k, lang)}"
              + (f"\n   {ask}{asked}" if asked else "")
              + (f"\n   {offered}{lettered(choices, prepared.steps[k].answer, True, right)}"
                 if choices else "")
              + (f"\n   {how}{note}" if note else "") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
