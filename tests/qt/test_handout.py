"""The printable handout: ``sockscope lesson NAME --handout OUT.pdf`` (visualizer/handout.py).

The keep-alive lesson, recorded once for this module (the fixture of
test_lessons_basics), written as a PDF; the PDF read back with poppler's
pdftotext, pdffonts and pdftoppm: a title page and a page per step (per
language), each step's caption and question as text, Chinese text that reads
as the characters written, fonts embedded, a picture on every step's page. And
the command itself, as a process: what it writes and what it refuses.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from visualizer.handout import write_handout
import test_lessons_basics  # tests/qt/
from lesson_window import lesson_window  # tests/qt/

ROOT = Path(__file__).resolve().parents[2]
POPPLER = all(shutil.which(tool) for tool in ("pdftotext", "pdffonts", "pdftoppm"))
keep_alive = test_lessons_basics.keep_alive  # the lesson recorded once (for this module)
pytestmark = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext...) not installed")


def pages(pdf: Path) -> list[str]:
    """The PDF's text, page by page."""
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          check=True).stdout.decode("utf-8")
    return text.split("\f")[:-1]  # a form feed ends each page


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def fonts(pdf: Path) -> list[list[str]]:
    out = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()[2:]
    return [line.split() for line in out]


def inked(pdf: Path, page: int, tmp_path: Path) -> tuple[float, float]:
    """How much of page ``page``'s picture area (under the header, over the caption) is
    not paper, and how much of it is in colour (the views' palette; text is black):
    rendered at 30 dpi."""
    stem = tmp_path / f"p{page}"
    subprocess.run(["pdftoppm", "-r", "30", "-f", str(page), "-l", str(page), "-png",
                    "-singlefile", str(pdf), str(stem)], check=True)
    with Image.open(f"{stem}.png") as image:
        w, h = image.size
        area = image.convert("RGB").crop((int(w * 0.06), int(h * 0.13), int(w * 0.94),
                                          int(h * 0.6)))
        size = area.width * area.height
        ink = sum(area.convert("L").histogram()[:235]) / size
        colour = sum(area.convert("HSV").split()[1].histogram()[80:]) / size
        return ink, colour


def test_a_title_page_then_each_step_with_its_caption_and_picture(  # type: ignore[no-untyped-def]
        qtbot, keep_alive, tmp_path: Path) -> None:
    prepared = keep_alive
    n = len(prepared.steps)
    window = lesson_window(qtbot, prepared, "en", tmp_path)
    window.go_to_step(2)
    out = tmp_path / "keep-alive.pdf"
    assert write_handout(window, prepared, out, ["en"]) == n + 1
    text = pages(out)
    assert len(text) == n + 1
    lesson = prepared.lesson
    title = flat(text[0])
    for said in (lesson.title["en"], f"Section {lesson.section}", lesson.summary["en"]):
        assert flat(said) in title
    asked = 0
    for k in range(n):
        page = flat(text[k + 1])
        assert flat(prepared.narration(k, "en")) in page, (k, text[k + 1])
        assert flat(f"Step {k + 1} of {n}") in page and flat(lesson.title["en"]) in page
        question = prepared.question(k, "en")
        if question:
            asked += 1
            assert flat("Question: " + question) in page
        ink, colour = inked(out, k + 2, tmp_path)
        assert ink > 0.12 and colour > 0.005, f"step {k + 1}: no picture ({ink}, {colour})"
    assert asked  # the lesson asks (step 7): the question is on its page
    ink, colour = inked(out, 1, tmp_path)  # (the measure: the title page has no picture)
    assert ink < 0.1 and colour == 0
    assert all(f[-5] == "yes" for f in fonts(out))  # every font embedded
    # The window as it was: its step, its language, its caption, not presenting.
    assert window.lesson_step == 2 and window.language == "en"
    assert not window.presentation.active and window.caption_box.isVisible()


def test_both_languages_each_step_in_english_then_in_chinese(  # type: ignore[no-untyped-def]
        qtbot, keep_alive, tmp_path: Path) -> None:
    prepared = keep_alive
    n = len(prepared.steps)
    window = lesson_window(qtbot, prepared, "en", tmp_path)
    out = tmp_path / "both.pdf"
    assert write_handout(window, prepared, out, ["en", "zh_CN"]) == 2 * n + 1
    text = pages(out)
    assert len(text) == 2 * n + 1
    title = flat(text[0])
    for lang in ("en", "zh_CN"):
        assert flat(prepared.lesson.title[lang]) in title
        assert flat(prepared.lesson.summary[lang]) in title
    for k in range(n):
        en, zh = flat(text[1 + 2 * k]), flat(text[2 + 2 * k])
        assert flat(prepared.narration(k, "en")) in en
        assert flat(prepared.narration(k, "zh_CN")) in zh, (k, text[2 + 2 * k])
        assert flat(f"第 {k + 1} 步，共 {n} 步") in zh
        if prepared.question(k):
            assert flat("问题：" + prepared.question(k, "zh_CN")) in zh
    # The characters written, not the CJK radicals that share their glyphs (长, not ⻓).
    assert "长连接" in text[0] and not re.search("[\u2e80-\u2fdf\t]", "".join(text))
    cjk = [f for f in fonts(out) if "CJK" in f[0]]
    assert cjk and all(f[-5] == "yes" for f in cjk)  # a font with the glyphs, embedded
    assert window.language == "en"


def test_a_path_that_cannot_be_written_raises_and_leaves_the_window(  # type: ignore[no-untyped-def]
        qtbot, keep_alive, tmp_path: Path) -> None:
    window = lesson_window(qtbot, keep_alive, "en", tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(OSError, match="cannot write"):
        write_handout(window, keep_alive, tmp_path / "a-file" / "x.pdf", ["en"])
    assert not window.presentation.active and window.lesson_step == 0


def sockscope(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visualizer.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=env)


def test_the_command_writes_the_handout_and_refuses_what_it_cannot(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}  # offscreen by itself
    env["XDG_CONFIG_HOME"] = str(config)
    out = tmp_path / "x.pdf"
    done = sockscope("lesson", "keep-alive", "--handout", str(out), "--lang", "en", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out}: {len(pages(out))} pages"
    assert len(pages(out)) == 9  # keep-alive: 8 steps and the title page
    assert "Traceback" not in done.stderr
    assert not any(config.rglob("*")), "a handout wrote the user's settings"
    bad = sockscope("lesson", "keep-alive", "--handout", str(tmp_path / "x.png"), env=env)
    assert bad.returncode == 2 and "should end in .pdf" in bad.stderr
    assert not (tmp_path / "x.png").exists()
    nowhere = tmp_path / "no-such-folder" / "x.pdf"
    refused = sockscope("lesson", "keep-alive", "--handout", str(nowhere), env=env)
    assert refused.returncode == 1 and f"cannot write {nowhere}" in refused.stderr
    assert "Traceback" not in refused.stderr
    both = sockscope("lesson", "keep-alive", "--handout", str(out), "--gif",
                     str(tmp_path / "x.gif"), env=env)
    assert both.returncode == 2 and "not with --gif" in both.stderr
    alone = sockscope("lesson", "keep-alive", "--lang", "both", env=env)
    assert alone.returncode == 2 and "--lang both goes with --handout" in alone.stderr
