"""Issue 12's vocabulary, checked on every caption of a real recording (each lesson
module's tests call ``check`` on the lessons it records)."""
from __future__ import annotations

import re

from visualizer.lessons import LANGS

FLAG = re.compile(r"(?<![\w-])--[a-z]")  # a command-line flag: a footnote's business
# Words the reviewer asked to replace, and with what.
NOT_IN_ZH = {"先关闭的一方": "主动关闭方", "被关闭的一方": "被动关闭方", "边沿": "边缘",
             "流水线": "管线化（pipelining）", "chunked 编码": "分块传输编码（chunked）",
             "文件结束": "读到 EOF（recv() 返回 0）", "SYN-SENT": "SYN_SENT",
             "先发 FIN 的一方": "主动关闭方"}
NOT_IN_EN = {"SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV"}
# Where a term appears in Chinese, it comes with its English name the first time.
GLOSSED = {"管线化": "管线化（pipelining）", "分块传输编码": "分块传输编码（chunked）",
           "无头": "无头（headless）", "全连接队列": "全连接队列（accept 队列）",
           "半连接队列": "半连接队列（SYN 队列）"}


def captions(prepared) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Every step's words (narration and question) and the title and summary, per language."""
    lesson = prepared.lesson
    out: dict[str, list[str]] = {}
    for lang in LANGS:
        out[lang] = [lesson.title[lang], lesson.summary[lang],
                     *(prepared.text(k, lang) for k in range(len(prepared.steps)))]
    return out


def check(prepared) -> None:  # type: ignore[no-untyped-def]
    said = captions(prepared)
    name = prepared.lesson.name
    for lang, texts in said.items():
        for k, text in enumerate(texts):
            assert not FLAG.search(text), f"{name} [{lang}] #{k}: a flag in the words: {text}"
            for bad, good in (NOT_IN_ZH if lang == "zh_CN" else NOT_IN_EN).items():
                assert bad not in text, f"{name} [{lang}] #{k}: {bad!r}, say {good!r}: {text}"
    zh = "".join(said["zh_CN"])
    for term, glossed in GLOSSED.items():
        if term in zh:
            assert glossed in zh, f"{name}: {term} without its English name ({glossed})"
    # Every lesson asks at least once, never on its last step (the next one answers).
    asking = [k for k in range(len(prepared.steps)) if prepared.question(k)]
    assert asking, f"{name} asks the class nothing"
    assert asking[-1] < len(prepared.steps) - 1, f"{name} asks on its last step"
    for k in asking:
        assert prepared.question(k, "en").endswith("?"), (name, k)
        assert prepared.question(k, "zh_CN").endswith("？"), (name, k)
        assert prepared.question(k, "en") not in prepared.narration(k, "en")
    check_choices(prepared)
    check_each_picture_at_its_moment(prepared)


def check_each_picture_at_its_moment(prepared) -> None:  # type: ignore[no-untyped-def]
    """Each step's picture stands at its own event (settled: the states its segment
    caused), never pushed later because a step before it stood later: a caption about
    a SYN|ACK over a picture of the connection's teardown is worse than no picture."""
    from visualizer.lessons.base import settled
    log = prepared.timeline.log
    for k, step in enumerate(prepared.steps):
        own = settled(log, step.find(log))
        assert prepared.at[k] == own, (prepared.lesson.name, k + 1, prepared.at[k], own,
                                       log[prepared.at[k]].kind, log[own].kind)


# Lessons that ask with choices (issue 16: at least four), the right choice, and the
# words of the next step's narration that answer it: the answer in the lesson agrees with
# what the recording then shows.
CHOICES = {"single": ("when A is done", "Only when A is done"),
           "close-wait": ("CLOSE_WAIT", "is in CLOSE_WAIT"),
           "threads": ("only the one blocked on that socket", "Only one"),
           "epoll": ("no: they are not new", "are not new"),
           "processes": ("yes", "Yes: the child's close() closed the last descriptor"),
           "two-requests": ("SYN|ACK", "SYN|ACK, sent by the server's kernel"),
           "lost-ack": ("SYN_RECV still: it sends its SYN,ACK again and waits",
                        "sends its SYN,ACK again")}


def check_choices(prepared) -> None:  # type: ignore[no-untyped-def]
    name = prepared.lesson.name
    offering = [k for k in range(len(prepared.steps)) if prepared.steps[k].choices]
    for k in offering:
        step = prepared.steps[k]
        assert prepared.question(k), f"{name} #{k}: choices without a question"
        assert 2 <= len(step.choices) <= 6 and step.answer is not None, (name, k)
        assert 0 <= step.answer < len(step.choices), (name, k)
        for lang in LANGS:
            assert len(set(prepared.choices(k, lang))) == len(step.choices), (name, k, lang)
    if name in CHOICES:
        right, answered = CHOICES[name]
        assert offering, f"{name} offers no choices"
        k = offering[0]
        assert prepared.choices(k)[prepared.steps[k].answer] == right, name
        assert answered in prepared.narration(k + 1), (name, prepared.narration(k + 1))
