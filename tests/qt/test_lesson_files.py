"""Lesson files (visualizer/lessons/files.py): the template runs as it is, step by step
in both languages, with its questions' choices checked in the window and revealed by a
key presenting; a broken file is refused with its line; the built-in first-request
lesson is such a file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from visualizer.lessons import LANGS, all_lessons, prepare
from visualizer.lessons.files import FILES, TEMPLATE, LessonFile, LessonFileError, load
from visualizer.lessons.base import LessonError
from lesson_window import lesson_window  # tests/qt/

ROOT = Path(__file__).resolve().parents[2]


def sockscope(*args: str, cwd: Path = ROOT, timeout: float = 120
              ) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(Path(cwd) / ".config")}
    return subprocess.run([sys.executable, "-m", "visualizer.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def template(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The template as `sockscope lessons --template` prints it, recorded for real."""
    folder = tmp_path_factory.mktemp("template")
    done = sockscope("lessons", "--template", cwd=folder)
    assert done.returncode == 0 and done.stdout == TEMPLATE.read_text(encoding="utf-8")
    path = folder / "mine.toml"
    path.write_text(done.stdout, encoding="utf-8")
    return prepare(load(path), folder)


def test_the_template_runs_as_it_is_and_finds_each_step_by_what_it_is(template) -> None:  # type: ignore[no-untyped-def]
    """Six steps, each on the event its anchor names, whatever its number in this run."""
    log = template.timeline.log
    assert len(template.steps) == template.lesson.count() == 6 and not template.problems
    from visualizer.lessons.base import settled
    found = [step.find(log) for step in template.steps]  # the cursor then goes past the
    assert template.at == [settled(log, i) for i in found]  # states a segment caused
    events = [log[i] for i in found]
    assert events[0].kind == "packet" and events[0].data["flags"] == "SYN"
    assert events[1].kind == "packet" and events[1].data["flags"] == "SYN|ACK"
    requests = [i for i in range(len(log)) if log[i].kind == "request" and log[i].src == "server"]
    assert found[2] == requests[0] and found[3] == requests[1]
    assert log[requests[0]].conn == log[requests[1]].conn  # one connection, two requests
    fin = next(i for i in range(len(log)) if log[i].kind == "packet"
               and "FIN" in log[i].data["flags"].split("|"))
    assert events[4].kind == "packet" and found[4] == fin
    assert found[5] == len(log) - 1
    # The words carry this recording's numbers.
    syn_ack = found[1]
    since = round((log[requests[0]].t_ns - log[syn_ack].t_ns) / 1e6)
    assert f"{since} ms after the handshake" in template.text(2)
    assert f"{since} 毫秒" in template.text(2, "zh_CN")
    assert "read 2 requests on 1 connection(s)" in template.text(3)
    # Facts: a field of a moment's event, milliseconds between two moments, a count.
    answers = [i for i in range(len(log)) if log[i].kind == "response" and log[i].src == "server"]
    assert f"carries {log[answers[0]].data['length']} bytes of body" in template.text(2)
    between = (log[requests[1]].t_ns - log[requests[0]].t_ns) / 1e6
    assert f", {between:,.0f} ms after the first" in template.text(3)
    assert f"and sent {len(answers)} answers" in template.text(3) and len(answers) == 2
    from visualizer.lessons.base import first_fin_side
    closer = first_fin_side(log, log[requests[0]].conn)
    assert f"The {closer} sent the first FIN" in template.text(4)
    assert {"client": "客户端", "server": "服务器"}[closer] in template.text(4, "zh_CN")
    # Its questions offer choices, with the right one known.
    assert template.lesson.count() == 6
    assert template.choices(0) == ["ACK", "SYN|ACK", "FIN"] and template.steps[0].answer == 1
    assert template.choices(3, "zh_CN") == ["客户端", "服务器"]


def with_facts(facts: str) -> str:
    """The template's text with ``facts`` (TOML lines) first in its [facts] table."""
    return TEMPLATE.read_text(encoding="utf-8").replace("[facts]\n", "[facts]\n" + facts)


def _with_moments(moments: str) -> LessonFile:
    """The template with its [moments] table replaced."""
    text = TEMPLATE.read_text(encoding="utf-8")
    start, end = text.index("[moments]\n"), text.index("\n# Facts:")
    text = text[:start] + "[moments]\n" + moments + "\n" + text[end:]
    text = text.replace('[facts]\n', '[facts]\n# ').replace('body = {', '# body = {') \
        .replace('between = {', '# between = {').replace('answers = {', '# answers = {')
    text = text.replace(" Its answer carries {body} bytes of body.", "").replace(
        "它的响应带有 {body} 字节的响应体。", "").replace(", {between:,.0f} ms after the first", "") \
        .replace("，比第一个晚 {between:,.0f} 毫秒", "").replace(" and sent {answers} answers", "") \
        .replace("，发出了 {answers} 个响应", "")
    text = text.replace('at = "first_request"', 'at = { kind = "end" }').replace(
        'at = "second_request"', 'at = { kind = "end" }')
    return LessonFile(Path("moments.toml"), text)


def test_moments_stand_on_each_other(template) -> None:  # type: ignore[no-untyped-def]
    """Each way a moment can be found, on the template's real recording, against what
    the log holds: by another moment's connection, after one (or the latest of several),
    before one, any kind, the last match, a range, and the first of a list found."""
    log = template.timeline.log
    n = len(log)
    requests = [i for i in range(n) if log[i].kind == "request" and log[i].src == "server"]
    recvs = [i for i in range(n) if log[i].kind == "recv" and log[i].src == "server"]
    lesson = _with_moments("""req = { kind = "request", src = "server" }
req2 = { kind = "request", src = "server", after = "req" }
second = { kind = "request", src = "server", nth = 2 }
just_before = { kind = "any", before = "req2", nth = -1 }
last_read = { kind = "recv", src = "server", conn = "req", nth = -1 }
big_read = { kind = "recv", src = "server", bytes = { min = 1 }, nth = -1 }
empty_read = { kind = "recv", src = "server", bytes = { max = 0 } }
after_both = { kind = "recv", src = "server", after = ["req", "req2"] }
missing = { kind = "request", src = "server", nth = 3 }
after_none = { kind = "recv", after = "missing" }
after_some = { kind = "request", src = "server", after = ["missing", "req"] }
fallback = [{ kind = "request", nth = 5 }, { kind = "response", src = "server" }]
either_kind = { kind = ["response", "request"], src = "server", nth = 2 }
one_of = { kind = "recv", src = "server", bytes = [-1, 0] }
not_first = { kind = "request", src = "server", not = { seq = [-5, -6] }, after = "req" }
not_empty = { kind = "recv", src = "server", not = { bytes = 0 }, nth = -1 }
biggest = { kind = "recv", src = "server", largest = "bytes" }
with_conn = { kind = "any", src = "server", conn = true }
with_length = { kind = "response", src = "server", has_header = "content-length" }
without_length = { kind = "response", src = "server", lacks_header = "Content-Length" }
without_cookie = { kind = "response", src = "server", lacks_header = "Set-Cookie" }
slashed = { kind = "request", src = "server", path = { prefix = "/" } }
queried = { kind = "request", src = "server", path = { contains = "?" } }
elsewhere = { kind = "request", src = "server", path = { prefix = "/nosuch" } }
halfway = { midway = ["req", "req2"] }
from_req2 = { kind = "request", src = "server", from = "req2" }
after_req2 = { kind = "request", src = "server", after = "req2" }
another = { kind = "request", src = "server", other_than = "req" }
in_range = { moment = "req2", after = "req" }
out_of_range = { moment = "req", after = "req2" }
wrong_kind = { moment = "req", kind = "response" }
either = [{ moment = "req", after = "req2" }, "req2"]""")
    m = lesson.resolve(log)
    assert m["req"] == requests[0] and m["req2"] == m["second"] == requests[1]
    assert m["just_before"] == requests[1] - 1
    mine = [i for i in recvs if log[i].conn == log[requests[0]].conn]
    assert m["last_read"] == mine[-1]
    assert m["big_read"] == [i for i in recvs if log[i].data["bytes"] >= 1][-1] != recvs[-1]
    assert m["empty_read"] == next(i for i in recvs if log[i].data["bytes"] <= 0)
    assert m["after_both"] == next(i for i in recvs if i > requests[1])
    assert m["missing"] is None and m["after_none"] is None  # a missing moment finds nothing
    assert m["after_some"] == requests[1]  # after the latest the recording has
    assert m["fallback"] == next(i for i in range(n) if log[i].kind == "response")
    # several kinds: any of them; a list of values: any of them; not = { ... }
    answers = [i for i in range(n) if log[i].kind == "response" and log[i].src == "server"]
    assert m["either_kind"] == sorted(requests + answers)[1]
    assert m["one_of"] == next(i for i in recvs if log[i].data["bytes"] in (0, -1))
    assert m["not_first"] == requests[1]
    assert m["not_empty"] == [i for i in recvs if log[i].data["bytes"] != 0][-1] != recvs[-1]
    most = max(log[i].data["bytes"] for i in recvs)  # the first read of the most bytes
    assert m["biggest"] == next(i for i in recvs if log[i].data["bytes"] == most)
    assert m["with_conn"] == next(i for i in range(n) if log[i].src == "server"
                                  and log[i].conn is not None)
    # a text field's shape: its start, what it holds
    assert m["slashed"] == requests[0] and m["queried"] is None and m["elsewhere"] is None
    # midway: the first event from the time halfway between two moments
    t = log.column("t_ns")
    middle = (int(t[requests[0]]) + int(t[requests[1]])) // 2
    assert m["halfway"] == next(i for i in range(n) if int(t[i]) >= middle)
    assert requests[0] < m["halfway"] <= requests[1]
    # from = a moment: it included; after: strictly later
    assert m["from_req2"] == requests[1] and m["after_req2"] is None
    # other_than: an event of another connection (the template opens only one)
    assert m["another"] is None
    # has_header / lacks_header: what the event's HTTP head holds (any case)
    assert all("\r\nContent-Length: " in log[i].data["head"] for i in answers)
    assert m["with_length"] == answers[0] and m["without_length"] is None
    assert m["without_cookie"] == answers[0]
    # moment = "name": that moment's event, if the other keys hold for it
    assert m["in_range"] == requests[1] and m["out_of_range"] is None
    assert m["wrong_kind"] is None and m["either"] == requests[1]


def requests_of(log) -> list[int]:  # type: ignore[no-untyped-def]
    return [i for i in range(len(log)) if log[i].kind == "request" and log[i].src == "server"]


def test_held_and_median_narrow_the_matches(template, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """most_held keeps the matches when the most were held (up events before it less
    down events before it), median the first whose field is the low median of those
    left; a held fact says how many were held just before a moment. Against the log."""
    import statistics
    log = template.timeline.log
    n = len(log)
    lesson = _with_moments("""req = { kind = "request", src = "server" }
busiest = { kind = "recv", src = "server", most_held = { up = { kind = "accept", src = "server" }, down = { kind = "response", src = "server" } } }
typical = { kind = "recv", after = "req", median = "bytes" }
both = { kind = "recv", src = "server", most_held = { up = { kind = "accept", src = "server" }, down = { kind = "close", src = "server" } }, median = "bytes" }
all_busy = { kind = "recv", src = "server", most_held = { up = { kind = "accept", src = "server" }, down = { kind = "close", src = "server" } }, nth = -1 }
none_read = { kind = "recv", src = "server", median = "nosuch" }
req2 = { kind = "request", src = "server", nth = 2 }
reported = { kind = "epoll_wait", src = "server", ready_has = "req" }
reported_after = { kind = "epoll_wait", src = "server", ready_has = "req", after = "req" }
not_ours = { kind = "any", src = ["client", "kernel"], nth = -1 }
from_latest = { kind = "request", src = "server", from = ["req2", "req"] }
""")
    m = lesson.resolve(log)
    recvs = [i for i in range(n) if log[i].kind == "recv" and log[i].src == "server"]

    def held(i: int, up: str, down: str) -> int:
        return sum(1 for j in range(i) if log[j].kind == up and log[j].src == "server") - \
            sum(1 for j in range(i) if log[j].kind == down and log[j].src == "server")
    counts = [held(i, "accept", "response") for i in recvs]
    top = [i for i, c in zip(recvs, counts) if c == max(counts)]
    assert m["busiest"] == top[0] != recvs[-1]
    assert len(set(counts)) > 1  # the recording tells them apart
    later = [i for i in range(m["req"] + 1, n) if log[i].kind == "recv"]  # both ends'
    middle = statistics.median_low(log[i].data["bytes"] for i in later)
    assert m["typical"] == next(i for i in later if log[i].data["bytes"] == middle) != later[0]
    opened = [held(i, "accept", "close") for i in recvs]
    left = [i for i, c in zip(recvs, opened) if c == max(opened)]
    low = statistics.median_low(log[i].data["bytes"] for i in left)
    assert m["both"] == next(i for i in left if log[i].data["bytes"] == low)
    assert m["all_busy"] == left[-1] == recvs[-1]  # nth picks among those left
    assert m["none_read"] is None
    # ready_has: an epoll_wait whose ready list holds that moment's fd
    fd = log[m["req"]].fd
    waits = [i for i in range(n) if log[i].kind == "epoll_wait" and log[i].src == "server"]
    holding = [i for i in waits if any(f == fd for f, _ in log[i].data["ready"] or ())]
    assert m["reported"] == holding[0] and m["reported_after"] == next(
        i for i in holding if i > m["req"])
    assert len(holding) < len(waits)  # (not every wait holds it: the test tells)
    # src = [...]: any of these sources; from = [...]: from the latest of them
    assert m["not_ours"] == max(i for i in range(n) if log[i].src in ("client", "kernel"))
    assert log[n - 1].src not in ("client", "kernel") or m["not_ours"] == n - 1
    assert m["from_latest"] == m["req2"] == requests_of(log)[1]
    facts = LessonFile(tmp_path / "h.toml", TEMPLATE.read_text(encoding="utf-8").replace(
        '[facts]\n', '[facts]\nopen_then = { held = { up = { kind = "request", src = "server" '
        '}, down = { kind = "close", src = "server" } }, at = "second_request" }\n'
        'two = { count = { kind = "request", src = "server" } }\n').replace(
        'answers = { count = { kind = "response", src = "server" } }\n',
        'answers = { count = { kind = "response", src = "server" } }\n'
        'fewer = { difference = ["body", "two"] }\n'))
    values = facts.values(log, facts.resolve(log))
    second = facts.resolve(log)["second_request"]
    assert values["two"] == 2 and values["fewer"] == values["body"] - 2  # a difference
    assert values["open_then"] == held(second, "request", "close") == 1  # (it excluded)


def test_facts_count_what_the_recording_holds(template, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Counts (of events, of distinct connections, times a factor), a header of a
    request's head, and an [[expect]] on a fact that the run does not meet, named by
    its line."""
    log = template.timeline.log
    text = with_facts(
        'reads = { count = { kind = "recv", src = "server" } }\n'
        'reading = { count = { kind = "recv", src = "server" }, distinct = "conn", times = 3 }\n'
        'agent = { header = "User-Agent", at = "first_request" }\n'
        'nothing = { header = "X-None", at = "first_request" }\n')
    lesson = LessonFile(tmp_path / "f.toml", text)
    values = lesson.values(log, lesson.resolve(log))
    recvs = [i for i in range(len(log)) if log[i].kind == "recv" and log[i].src == "server"]
    assert values["reads"] == len(recvs) > 1
    assert values["reading"] == 3 * len({log[i].conn for i in recvs}) == 3
    first = next(log[i] for i in range(len(log)) if log[i].kind == "request")
    agent = next(line.split(":", 1)[1].strip() for line in first.data["head"].split("\r\n")
                 if line.lower().startswith("user-agent:"))
    assert values["agent"] == agent and agent and values["nothing"] == ""
    wrong = text.replace('says = "two requests on the first connection"',
                         'says = "two requests on the first connection"\n[[expect]]\n'
                         'fact = "answers"\nmin = 3\nsays = "three answers"')
    line = wrong[:wrong.index('fact = "answers"\nmin = 3')].count("\n")
    with pytest.raises(Exception) as caught:
        LessonFile(tmp_path / "w.toml", wrong).check(log)
    assert f"w.toml:{line}: answers is 2, not at least 3 (three answers)" in str(caught.value)
    LessonFile(tmp_path / "r.toml", wrong.replace("min = 3", "min = 2")).check(log)
    # A field scaled; a list's field is its length, and a range counts its items.
    ready = text.replace('[moments]\n', '[moments]\nwoke = { kind = "epoll_wait", src = '
                         '"server", ready = { min = 1 } }\n').replace(
        '[facts]\n', '[facts]\nready_n = { field = "ready", at = "woke" }\n'
        'half = { field = "bytes", at = "read", scale = 0.5 }\n').replace(
        '[moments]\n', '[moments]\nread = { kind = "recv", src = "server" }\n')
    lf = LessonFile(tmp_path / "l.toml", ready)
    found = lf.resolve(log)
    woke = next(i for i in range(len(log)) if log[i].kind == "epoll_wait"
                and len(log[i].data["ready"]) >= 1)
    assert found["woke"] == woke and lf.values(log, found)["ready_n"] == len(
        log[woke].data["ready"])
    assert lf.values(log, found)["half"] == log[recvs[0]].data["bytes"] * 0.5
    # Sums, medians and maxima of a field over events; a ratio of two facts.
    sums = text.replace('[facts]\n', '[facts]\nread = { sum = "bytes", of = { kind = "recv", '
                        'src = "server" } }\nmid = { median = "bytes", of = { kind = "recv", '
                        'src = "server" } }\ntop = { max = "bytes", of = { kind = "recv", '
                        'src = "server" } }\nper = { ratio = ["read", "top"] }\n'
                        'absent = { max = "nosuch", of = { kind = "recv" } }\n'
                        'ones = { sum = "nosuch", of = { kind = "recv", src = "server" }, '
                        'missing = 1 }\n')
    sums = sums.replace('[facts]\n', '[facts]\nfirsts = { count = { kind = "recv", src = '
                        '"server", first_of_each = "conn" } }\nmost = { peak = { up = { kind = '
                        '"recv", src = "server" }, down = { kind = "send", src = "server" } } }\n'
                        'served = { durations = { from = { kind = "request", src = "server" }, '
                        'to = { kind = "response", src = "server" } }, how = "sum" }\n'
                        'spanned = { durations = { from = { kind = "request", src = "server" }, '
                        'to = { kind = "close", src = "server" } }, how = "extent" }\n')
    sums = sums.replace('[moments]\n', '[moments]\nbusiest = { peak = { up = { kind = "recv", '
                        'src = "server" }, down = { kind = "send", src = "server" } } }\n')
    agg = LessonFile(tmp_path / "a.toml", sums)
    got = agg.values(log, agg.resolve(log))
    sizes = [log[i].data["bytes"] for i in recvs]
    import statistics
    assert got["read"] == sum(sizes) and got["top"] == max(sizes)
    assert got["mid"] == statistics.median(sizes) and got["per"] == sum(sizes) / max(sizes)
    assert got["absent"] == "?" and got["ones"] == len(recvs)
    # first_of_each: one per connection; a peak (up events less down events, the most at
    # once, and where it was first); durations per connection, added up or as a clock.
    assert got["firsts"] == len({log[i].conn for i in recvs}) == 1 < len(recvs)
    edges = sorted([(i, 1) for i in recvs] + [(i, -1) for i in range(len(log))
                                              if log[i].kind == "send" and log[i].src == "server"])
    running, best, where = 0, 0, None
    for i, step in edges:
        running += step
        if running > best:
            best, where = running, i
    assert got["most"] == best >= 1 and agg.resolve(log)["busiest"] == where
    t = log.column("t_ns")
    asked = next(i for i in range(len(log)) if log[i].kind == "request")
    answered = next(i for i in range(len(log)) if log[i].kind == "response")
    closed = next(i for i in range(len(log)) if log[i].kind == "close" and log[i].src == "server")
    assert got["served"] == (int(t[answered]) - int(t[asked])) / 1e6
    assert got["spanned"] == (int(t[closed]) - int(t[asked])) / 1e6
    # A regular expression's first group, on the first line of a head or on a field;
    # two facts that must differ.
    rx = text.replace('[facts]\n', '[facts]\nverb = { regex = \'^(\\S+) \', on = "first_line", '
                      'at = "first_request" }\nanswered = { regex = \'^HTTP/\\S+ (\\d+)\', on = '
                      '"first_line", at = "first_answer" }\nbare = { regex = \'^/(.*)$\', on = '
                      '"path", at = "first_request" }\n')
    lr = LessonFile(tmp_path / "r.toml", rx)
    said = lr.values(log, lr.resolve(log))
    first = next(log[i] for i in range(len(log)) if log[i].kind == "request")
    assert said["verb"] == "GET" and said["answered"] == "200"
    assert said["bare"] == first.data["path"][1:]
    same = rx.replace('says = "two requests on the first connection"',
                      'says = "two requests on the first connection"\n[[expect]]\n'
                      'fact = "verb"\nunlike = "verb"\nsays = "twins"')
    with pytest.raises(Exception) as caught:
        LessonFile(tmp_path / "u.toml", same).check(log)
    assert "verb and verb are both 'GET' (twins)" in str(caught.value)
    LessonFile(tmp_path / "v.toml", same.replace('unlike = "verb"', 'unlike = "bare"')).check(log)
    # Seconds between moments; an [[expect]] that the recording has none of an event.
    timed = text.replace('[facts]\n', '[facts]\ngap = { seconds = ["first_request", '
                                     '"second_request"] }\n')
    gap = LessonFile(tmp_path / "s.toml", timed).values(log, lesson.resolve(log))["gap"]
    requests = [i for i in range(len(log)) if log[i].kind == "request"]
    assert gap == (log[requests[1]].t_ns - log[requests[0]].t_ns) / 1e9 > 0
    none = text.replace('says = "two requests on the first connection"',
                        'says = "two requests on the first connection"\n[[expect]]\n'
                        'none = { kind = "response", src = "server", status = 200 }\n'
                        'says = "no page found"')
    line = none[:none.index('none = { kind = "response"')].count("\n")
    with pytest.raises(Exception) as caught:
        LessonFile(tmp_path / "n.toml", none).check(log)
    assert f"n.toml:{line}: the recording has a 1. response from the server status=200 " \
           "(no page found)" in str(caught.value)
    LessonFile(tmp_path / "m.toml", none.replace("status = 200", "status = 500")).check(log)


def test_an_expect_on_moments_names_its_line(template, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = TEMPLATE.read_text(encoding="utf-8")
    wrong = text.replace('says = "two requests on the first connection"',
                         'says = "two requests on the first connection"\n[[expect]]\n'
                         'at = "second_request"\nbefore = "first_request"\n'
                         'says = "the second first"')
    line = wrong[:wrong.index('at = "second_request"\nbefore')].count("\n") + 1
    lesson = LessonFile(tmp_path / "w.toml", wrong)
    with pytest.raises(Exception) as caught:
        lesson.check(template.timeline.log)
    assert f"w.toml:{line - 1}: first_request came before second_request " \
           "(the second first)" in str(caught.value)


def test_what_a_lesson_needs_of_the_machine() -> None:
    from engine.kernel.observer import KernelObserver
    text = TEMPLATE.read_text(encoding="utf-8").replace("# needs = [", "needs = [")
    lesson = LessonFile(Path("n.toml"), text).lesson()
    import select
    ok, why = lesson.needs()
    kernel_ok = KernelObserver.available()[0]
    assert ok == (kernel_ok and hasattr(select, "epoll") and hasattr(os, "fork"))
    assert ok or why


def test_the_template_walks_in_both_languages(qtbot, template, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for lang in LANGS:
        window = lesson_window(qtbot, template, lang, tmp_path)
        for k, step in enumerate(template.steps):
            assert window.lesson_step == k and window.timeline.cursor == template.at[k]
            assert window.view_tabs.currentWidget().name == step.view
            assert template.narration(k, lang) in window.caption.text()
            qtbot.keyClick(window, Qt.Key.Key_PageDown)
        window.close()


def test_a_students_pick_is_checked(qtbot, template, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """In the window the choices are buttons; a wrong pick is told the answer, a right
    one is told it is right; a step without choices shows none."""
    window = lesson_window(qtbot, template, "en", tmp_path)
    row = window.choice_row
    assert row.isVisible() and [b.text() for b in row.buttons] == \
        ["A. ACK", "B. SYN|ACK", "C. FIN"]
    qtbot.mouseClick(row.buttons[0], Qt.MouseButton.LeftButton)
    assert row.right is False and row.verdict.text() == "Not this one: the answer is B. SYN|ACK"
    qtbot.mouseClick(row.buttons[1], Qt.MouseButton.LeftButton)
    assert row.right is True and row.verdict.text() == "Right: B. SYN|ACK"
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert not row.isVisible()
    window.close()
    window = lesson_window(qtbot, template, "zh_CN", tmp_path)
    window.go_to_step(3)
    assert [b.text() for b in window.choice_row.buttons] == ["A. 客户端", "B. 服务器"]
    window.close()


def test_presenting_the_next_key_reveals_the_right_choice(qtbot, template, tmp_path: Path
                                                          ) -> None:  # type: ignore[no-untyped-def]
    """Narration, then the question with its lettered choices, then the right one marked,
    then the next step; PageUp walks back the same beats."""
    window = lesson_window(qtbot, template, "en", tmp_path)
    window.presentation.enter(fullscreen=False)
    words = lambda: window.caption.text().replace("\u00a0", " ")  # noqa: E731
    seen = [words()]
    for _ in range(3):
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
        seen.append(words())
    # A choice is not broken across lines: its spaces do not break.
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert "✔\u00a0B.\u00a0SYN|ACK\u00a0(right)" in window.caption.text()
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert seen[0] == template.narration(0)
    assert seen[1].startswith("Question: What does the server's kernel send back?")
    assert "A. ACK    B. SYN|ACK    C. FIN" in seen[1] and "✔" not in seen[1]
    assert "✔ B. SYN|ACK (right)" in seen[2] and "A. ACK" in seen[2]
    assert window.lesson_step == 1 and seen[3] == template.narration(1)
    assert not window.choice_row.isVisible()  # presenting, the caption holds them
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.lesson_step == 0 and "✔ B. SYN|ACK" in words()
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert "✔" not in words() and "A. ACK" in words()
    window.presentation.leave()
    window.close()


def test_a_lesson_file_renders_a_step_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "step2.png"
    done = sockscope("lesson", str(path), "--step", "2", "--lang", "zh_CN", "--screenshot",
                     str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 10_000
    done = sockscope("lesson", str(path), "--step", "7", "--screenshot", str(out),
                     cwd=tmp_path)
    assert done.returncode == 2 and "has steps 1 to 6" in done.stderr


# ---------------------------------------------------------------- broken files
def _broken(old: str, new: str) -> tuple[str, int]:
    """The template with ``old`` replaced by ``new`` (once), and the line it is on."""
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    at = text.index(old)
    return text.replace(old, new, 1), text.count("\n", 0, at) + 1


BREAKS = {
    "toml": ('title = { en = "Two requests', 'title = { en = "Two requests"" '),
    "format": ("format = 1 ", "format = 2 "),
    "unknown key": ('view = "http"', 'veiw = "http"'),
    "view": ('view = "http"', 'view = "graph"'),
    "anchor kind": ('first_request = { kind = "request", src = "server", conn = 1 }',
                    'first_request = { kind = "requests", src = "server", conn = 1 }'),
    "nth": ('conn = 1, nth = 2 }\nsays', 'conn = 1, nth = 0 }\nsays'),
    "unknown moment": ('after = "first_request" }', 'after = "first_reqest" }'),
    "a moment named before it is written": (
        'first_request = { kind = "request", src = "server", conn = 1 }',
        'first_request = { kind = "request", src = "server", conn = "second_request" }'),
    "a step's moment": ('at = "second_request"', 'at = "second_requests"'),
    "range": ('length = { min = 1 }', 'length = { min = "1" }'),
    "fact": ('{ ms = ["first_request", "second_request"] }', '{ ms = ["first_request"] }'),
    "fact's moment": ('at = "first_answer" }', 'at = "last_answer" }'),
    "fact named as a placeholder": ('between = { ms', 'bytes = { ms'),
    "script": ('load = "--clients 1 --requests 2', 'script = "slow-and-queue"\n#'),
    "needs": ('format = 1 ', 'needs = ["gpu"]\nformat = 1 '),
    "runs beside an engine": ('[engine]\n', '[[runs]]\n[engine]\n'),
    "placeholder": ("{since_ms} ms after", "{since} ms after"),
    "placeholder's format": ("{since_ms} ms after", "{flags:d} ms after"),
    "a lone brace": ("{since_ms} ms after", "{since_ms ms after"),
    "answer": ("answer = 2", "answer = 4"),
    "load": ('load = "--clients 1', 'load = "--clientz 1'),
    "mode": ('mode = "default"', 'mode = "epol"'),
    "no english": ('en = "SYN|ACK, sent by', 'fr = "SYN|ACK, envoyé par'),
}


@pytest.mark.parametrize("what", list(BREAKS))
def test_a_broken_file_is_refused_with_its_line(what: str, tmp_path: Path) -> None:
    text, line = _broken(*BREAKS[what])
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LessonFileError) as caught:
        LessonFile(path)
    assert caught.value.line == line, (what, str(caught.value))
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_the_command_line_names_the_line_and_shows_no_traceback(tmp_path: Path) -> None:
    text, line = _broken(*BREAKS["load"])
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    for args in (("lesson", str(path), "--notes"), ("lesson", str(path), "--screenshot",
                                                     str(tmp_path / "x.png"))):
        done = sockscope(*args, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert f"{path}:{line}: load: unrecognized arguments: --clientz" in done.stderr
        assert "Traceback" not in done.stderr
    # The README quotes this refusal of the template's own line.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"mine.toml:{line}: load: unrecognized arguments: --clientz 1" in readme
    # Without a display too: the file is checked before any window is thought of.
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "visualizer.cli", "lesson", str(path)],
                          cwd=ROOT, env={**env, "XDG_CONFIG_HOME": str(tmp_path / ".config")},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"{path}:{line}: load" in done.stderr, done.stderr
    for bad, said in ((tmp_path / "missing.toml", "No such file"),
                      (tmp_path / "binary.toml", "not UTF-8")):
        if bad.name == "binary.toml":
            bad.write_bytes(b"\xff\xfe\x00format = 1")
        done = sockscope("lesson", str(bad), "--notes", cwd=tmp_path)
        assert done.returncode == 1 and said in done.stderr and "Traceback" not in done.stderr


def test_what_the_recording_must_show_is_checked_with_its_line(tmp_path: Path) -> None:
    """An [[expect]] the run does not meet refuses the lesson, naming the line."""
    text, line = _broken('at = { kind = "request", src = "server", conn = 1, nth = 2 }\nsays',
                         'at = { kind = "response", src = "server", status = 404 }\nsays')
    path = tmp_path / "wrong.toml"
    path.write_text(text, encoding="utf-8")
    done = sockscope("lesson", str(path), "--notes", cwd=tmp_path)
    assert done.returncode == 1
    assert f"{path}:{line - 1}: the recording has no 1. response from the server " \
           "status=404" in done.stderr


@pytest.mark.parametrize("name, steps, title", [("first-request", 10, "第一个请求"),
                                                 ("single", 6, "一次服务一个客户端")])
def test_the_built_in_lessons_written_as_files(name: str, steps: int, title: str) -> None:
    """The format is proved by built-in lessons read from their files, and `sockscope
    lessons --source NAME` prints the very file."""
    lesson = all_lessons()[name]
    assert getattr(lesson.record, "__self__", None) is not None
    assert lesson.record.__self__.path == FILES / f"{name}.toml"
    assert lesson.count() == steps and lesson.title["zh_CN"] == title
    done = sockscope("lessons", "--source", name)
    assert done.returncode == 0 and done.stdout == (FILES / f"{name}.toml").read_text(
        encoding="utf-8")


def test_the_built_in_first_lesson_is_checked_like_any_file() -> None:
    with pytest.raises(LessonFileError):  # and the format's checks apply to it
        LessonFile(FILES / "first-request.toml",
                   (FILES / "first-request.toml").read_text().replace('view = "io"',
                                                                      'view = "oi"'))


def test_the_template_keeps_the_lessons_vocabulary(template) -> None:  # type: ignore[no-untyped-def]
    """Its words and choices pass the checks every built-in lesson passes."""
    from lesson_vocabulary import check
    check(template)


def test_the_window_opens_a_lesson_file_and_refuses_a_broken_one(qtbot, tmp_path: Path
                                                                ) -> None:  # type: ignore[no-untyped-def]
    """File → Open lesson file… records it as the Lessons menu does; a broken file gets a
    message with its line, and nothing else changes."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from visualizer.app import MainWindow
    settings = QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine=False, settings=settings)
    qtbot.addWidget(window)
    window.show()
    assert window.lesson_file_action in window.file_menu.actions()
    text, line = _broken(*BREAKS["view"])
    broken = tmp_path / "broken.toml"
    broken.write_text(text, encoding="utf-8")
    said: list[str] = []

    def close_the_message() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            said.append(box.text())
            box.accept()
        else:
            QTimer.singleShot(50, close_the_message)

    QTimer.singleShot(50, close_the_message)
    assert window.open_lesson_file(str(broken)) is False
    assert said and said[0].startswith(f"{broken}:{line}: view is one of")
    assert window.lesson is None
    good = tmp_path / "mine.toml"
    good.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    assert window.open_lesson_file(str(good))
    qtbot.waitUntil(lambda: window.lesson is not None, timeout=60_000)
    assert window.lesson.lesson.name == "two-requests" and window.lesson_step == 0
    assert window.choice_row.isVisible()
    window.close()


def test_a_handout_prints_the_choices_without_the_answer(qtbot, template, tmp_path: Path
                                                         ) -> None:  # type: ignore[no-untyped-def]
    """On paper a question lists its choices, lettered, and does not mark the right one
    (the next page answers)."""
    import re
    import shutil
    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils (pdftotext) not installed")
    from visualizer.handout import write_handout
    window = lesson_window(qtbot, template, "en", tmp_path)
    out = tmp_path / "template.pdf"
    assert write_handout(window, template, out, ["en", "zh_CN"]) == 2 * 6 + 1
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(out), "-"], capture_output=True,
                          check=True).stdout.decode("utf-8").split("\f")
    flat = [re.sub(r"\s+", "", page) for page in text]
    assert "A.ACKB.SYN|ACKC.FIN" in flat[1] and "✔" not in text[1]  # step 1, English
    assert "A.客户端B.服务器" in flat[8]  # step 4, Chinese (title, then en, zh per step)
    assert "A.ACK" not in flat[3]  # step 2 asks nothing
    window.close()


def test_any_garbling_of_a_lesson_file_is_a_lesson_file_error() -> None:
    """Lines cut, dropped, tables inserted, values swapped for junk (500 seeded
    garblings): each file is read or refused with LessonFileError, nothing else."""
    import random
    lines = TEMPLATE.read_text(encoding="utf-8").splitlines()
    rng = random.Random(16)
    junk = ['"', "[", "{", "=", "0", "-1", "true", '"x"', "[1,2]", "{a=1}", "\x00", "🙂",
            "1e999", '"{x}"', '"{"', '"}"', "3.5", "[]", "{}", '"{fd:zh}"', '"{flags:d}"']
    tables = ["[[steps]]", "[steps.ask]", "[engine]", "[[clients]]", "[[expect]]",
              "[[steps.when]]", "x = 1"]
    refused = 0
    for _ in range(500):
        garbled = list(lines)
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(garbled))
            roll = rng.random()
            if roll < 0.3:
                del garbled[k]
            elif roll < 0.6 and "=" in garbled[k]:
                garbled[k] = garbled[k].split("=")[0] + "= " + rng.choice(junk)
            elif roll < 0.8:
                garbled.insert(k, rng.choice(tables))
            else:
                garbled[k] = garbled[k][:rng.randrange(len(garbled[k]) + 1)]
        try:
            LessonFile(Path("garbled.toml"), "\n".join(garbled))
        except LessonFileError as exc:
            refused += 1
            assert str(exc).startswith("garbled.toml")
    assert refused > 250  # most garblings break something, and each is said


def test_an_anchor_takes_every_kind_and_source_the_engine_emits() -> None:
    """The anchors' words are the engine's own vocabulary (engine/events.py KINDS), so a
    lesson can stand on any event a recording holds; a word outside it names its line."""
    from engine.events import KINDS
    old = 'at = { kind = "packet", flags = "SYN|ACK" }'
    for kind in KINDS:
        for src in ("server", "client", "kernel", "capture", "engine"):
            text, line = _broken(old, f'at = {{ kind = "{kind}", src = "{src}" }}')
            assert LessonFile(Path("k.toml"), text).steps[1].anchor.kind == kind
    text, line = _broken(old, 'at = { kind = "accept", src = "observer" }')
    with pytest.raises(LessonFileError) as caught:
        LessonFile(Path("k.toml"), text)
    assert caught.value.line == line and "src is server, client" in str(caught.value)


def test_the_revealed_choice_as_a_picture_from_the_command_line(tmp_path: Path) -> None:
    """`--question --reveal` draws the question's page with the right choice marked (a
    slide of its own); a step offering no choices is refused, naming those that do."""
    from PySide6.QtGui import QImage
    path = tmp_path / "mine.toml"
    path.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    shots = {}
    for name, extra in (("asked", []), ("revealed", ["--reveal"])):
        out = tmp_path / f"{name}.png"
        done = sockscope("lesson", str(path), "--step", "1", "--present", "--question",
                         *extra, "--screenshot", str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        shots[name] = QImage(str(out))
    assert shots["asked"].size() == shots["revealed"].size()
    assert shots["asked"] != shots["revealed"]  # the ✔ and "(right)" are drawn
    done = sockscope("lesson", str(path), "--step", "2", "--present", "--question", "--reveal",
                     "--screenshot", str(tmp_path / "x.png"), cwd=tmp_path)
    assert done.returncode == 2
    assert "step 2 of" in done.stderr and "asks nothing" in done.stderr  # it asks nothing at all
    done = sockscope("lesson", str(path), "--step", "1", "--reveal", cwd=tmp_path)
    assert done.returncode == 2 and "--reveal goes with --question" in done.stderr
    # first-request's step 7 asks (count the segments) but offers no choices.
    done = sockscope("lesson", "first-request", "--step", "7", "--present", "--question",
                     "--reveal", "--screenshot", str(tmp_path / "y.png"), cwd=tmp_path)
    assert done.returncode == 2 and "step 7 of first-request offers no choices; the steps " \
        "that do: none" in done.stderr, done.stderr


# Each refused with LessonFileError and a line, never another exception (a review's
# finds: types the checks did not expect, keys that could never hold, formats too wide).
REFUSED = {
    "needs not a name": ("format = 1 ", "needs = [[]]\nformat = 1 "),
    "script not a name": ('load = "--clients 1 --requests 2', 'script = []\n#'),
    "fault not a name": ("policy = \"keep-alive\"", "policy = \"keep-alive\"\nlab = true\nfault = []"),
    "root with a null byte": ("policy = \"keep-alive\"", "policy = \"keep-alive\"\nroot = \"a\\u0000b\""),
    "a format too wide": ("{since_ms} ms after", "{fd:99999999999} ms after"),
    "count of a moment's name": ('answers = { count = { kind = "response", src = "server" } }',
                                 'answers = { count = "first_request" }'),
    "flags_has not a flag": ('at = { kind = "packet", flags = "SYN|ACK" }',
                             'at = { kind = "packet", flags_has = 3 }'),
    "after a number": ('after = "first_request" }', 'after = 1 }'),
    "after previous in a moment": ('after = "first_request" }', 'after = "previous" }'),
    "a moment named previous": ("first_answer = {", "previous = {"),
    "min without a fact": ('says = "two requests on the first connection"',
                           'says = "two requests on the first connection"\nmin = 2'),
    "not on the source": ('length = { min = 1 } }', 'length = { min = 1 }, not = { src = "client" } }'),
    "a question's placeholder": ("en = \"What does the server's kernel send back?\"",
                                 "en = \"What does {nope} send back?\""),
    "format true": ("format = 1 ", "format = true "),
    "section a list": ('section = "3.8"', "section = []"),
    "load's --trace, abbreviated": ('load = "--clients 1 --requests 2',
                                    'load = "--tr=x --clients 1 --requests 2'),
    "end with keys": ('at = { kind = "end" }', 'at = { kind = "end", conn = 1 }'),
    "a regex that does not compile": ('body = { field = "length", at = "first_answer" }',
                                      'body = { regex = "(", on = "path", at = "first_answer" }'),
    "a regex without a group": ('body = { field = "length", at = "first_answer" }',
                                'body = { regex = "x", on = "path", at = "first_answer" }'),
    "a text test not a text": ('length = { min = 1 } }', 'path = { prefix = 1 } }'),
    "a text field formatted as a number": ('body = { field = "length", at = "first_answer" }',
                                           'body = { field = "path", at = "first_answer" }'),
    "median not a name": ('length = { min = 1 } }', 'length = { min = 1 }, median = 3 }'),
    "median with nth": ('length = { min = 1 } }', 'length = { min = 1 }, median = "length", nth = 2 }'),
    "most_held without down": ('length = { min = 1 } }',
                               'length = { min = 1 }, most_held = { up = { kind = "request" } } }'),
    "held without at": ('body = { field = "length", at = "first_answer" }',
                        'body = { held = { up = { kind = "request" }, down = { kind = "response" } } }'),
    "states not a source": ('policy = "keep-alive"', 'policy = "keep-alive"\nstates = "exact"'),
    "a regex that does not compile in matches": ('length = { min = 1 } }',
                                                 "length = { min = 1 }, path = { matches = '(' } }"),
    "each without distinct": ('answers = { count = { kind = "response", src = "server" } }',
                              'answers = { count = { kind = "response", src = "server" }, '
                              'each = { min = 2 } }'),
    "a header's contains empty": ('length = { min = 1 } }',
                                  'length = { min = 1 }, has_header = { name = "Server", contains = "" } }'),
    "wait on a browser": ('load = "--clients 1 --requests 2', 'browser = "/"\nwait = false\n#'),
    "otherwise without a browser": ('load = "--clients 1 --requests 2',
                                    'otherwise = []\nload = "--clients 1 --requests 2'),
    "a step that needs the browser, none": ('view = "http"', 'view = "http"\nneeds = ["browser"]'),
    "in_time not a boolean": ('view = "http"', 'view = "http"\nin_time = 1'),
    "keep without last_of_each": ('length = { min = 1 } }',
                                  'length = { min = 1 }, keep = { status = 200 } }'),
    "repeats not a name": ('length = { min = 1 } }', 'length = { min = 1 }, repeats = 3 }'),
    "gaps of a number": ('body = { field = "length", at = "first_answer" }',
                         'body = { gaps = 3 }'),
    "items of a count": ('answers = { count = { kind = "response", src = "server" } }',
                         'answers = { count = { kind = "response", src = "server" } }\n'
                         'more = { items = "answers", plus = 1 }'),
    "words without en": ('body = { field = "length", at = "first_answer" }',
                         'body = { words = [{ zh_CN = "字" }] }'),
    "words tested in an if": ('body = { field = "length", at = "first_answer" }',
                              'body = { words = [{ en = "a" }] }\n'
                              'other = { words = [{ if = { body = 1 }, en = "b" }] }'),
    "step not a boolean": ('policy = "keep-alive"', 'policy = "keep-alive"\nstep = 1'),
    "lab neither true nor auto": ('policy = "keep-alive"', 'policy = "keep-alive"\nlab = "maybe"'),
    "an expect's if on an unknown fact": ('says = "two requests on the first connection"',
                                          'says = "two requests on the first connection"\n'
                                          'if = { nosuch = 1 }'),
}


@pytest.mark.parametrize("what", list(REFUSED))
def test_what_the_checks_did_not_expect_is_refused_with_its_line(what: str) -> None:
    text, line = _broken(*REFUSED[what])
    if what == "a text field formatted as a number":
        text = text.replace("carries {body} bytes", "carries {body:,} bytes")
        line = text[:text.index("carries {body:,}")].count("\n") - 2  # the step's [[steps]]
    with pytest.raises(LessonFileError) as caught:
        LessonFile(Path("bad.toml"), text)
    assert caught.value.line is not None, (what, str(caught.value))
    # (a key written after the one replaced is on the next line; an [[expect]]'s own
    # problem is on its table's line)
    line += {"fault not a name": 2, "root with a null byte": 1, "min without a fact": -2,
             "states not a source": 1, "wait on a browser": 1,
             "a step that needs the browser, none": 1, "in_time not a boolean": 1,
             "items of a count": 1, "words tested in an if": 1, "step not a boolean": 1,
             "lab neither true nor auto": 1, "an expect's if on an unknown fact": 1,
             }.get(what, 0)
    if what not in ("a text field formatted as a number",):
        assert caught.value.line == line, (what, str(caught.value))


def test_lines_are_found_past_multi_line_captions_and_in_dotted_keys() -> None:
    text = TEMPLATE.read_text(encoding="utf-8").replace(
        'en = "The client connects: its kernel sends a SYN."',
        'en = """The client connects:\n[[steps]]\nat = 1\nits kernel sends a SYN."""')
    broken = text.replace('view = "http"', 'view = "graph"', 1)
    line = broken[:broken.index('view = "graph"')].count("\n") + 1
    with pytest.raises(LessonFileError) as caught:
        LessonFile(Path("m.toml"), broken)
    assert caught.value.line == line
    dotted = ('format = 1\ntitle = "t"\nengine.mode = "nope"\n[[steps]]\nat = { kind = "end" }\n'
              'en = "x"\n')
    with pytest.raises(LessonFileError) as caught:
        LessonFile(Path("d.toml"), dotted)
    assert caught.value.line == 3 and "mode 'nope'" in str(caught.value)


STEPS_IN_TIME = '''
[[steps]]
at = "second_request"
view = "http"
in_time = true
en = "second"

[[steps]]
at = "first_request"
view = "http"
in_time = true
en = "first"
[steps.ask]
previous = true
en = "Which came first?"
[[steps.when]]
if = { answers = 2 }
en = "first, of {answers}"
ask = { en = "Which came first, of {answers}?" }

[[steps]]
at = { kind = "request", src = "server", nth = 9 }
optional = true
en = "never shown"
'''


def test_largest_of_several_fields_breaks_ties_by_the_next() -> None:
    """largest = [a, b]: the largest a; of those, the largest b (an event without b
    counts lowest); of those, the first. On CPU samples as an engine writes them."""
    from engine.events import Event
    from visualizer.model import EventLog
    rows = [(3, 100.0), (5, 90.0), (5, None), (5, 120.5), (4, 300.0), (5, 120.5)]
    log = EventLog([Event(k + 1, 1000 * (k + 1), "server", "cpu", None, -1, 1,
                          {"percent": 1.0, "threads": threads, "rss_mb": rss})
                    for k, (threads, rss) in enumerate(rows)])
    lesson = _with_moments("""fullest = { kind = "cpu", largest = ["threads", "rss_mb"] }
busiest = { kind = "cpu", largest = "threads" }
heaviest = { kind = "cpu", largest = ["rss_mb", "threads"] }""")
    m = lesson.resolve(log)
    assert m["fullest"] == 3  # 5 threads, then the most memory: the first of two
    assert m["busiest"] == 1  # one field: the first with the most threads
    assert m["heaviest"] == 4


def test_steps_in_time_optional_and_asked_on_the_step_before(template) -> None:  # type: ignore[no-untyped-def]
    """in_time neighbours are shown in the order their events happened, whatever the
    file's order; a question with previous = true is asked on the step shown before
    its own (a [[steps.when]]'s ask in its words); an optional step whose anchor finds
    nothing is left out."""
    log = template.timeline.log
    text = TEMPLATE.read_text(encoding="utf-8") + STEPS_IN_TIME
    lesson = LessonFile(Path("t.toml"), text)
    steps = lesson.make_steps(log)
    requests = requests_of(log)
    assert len(steps) == len(lesson.steps) - 1 == 8  # (the optional one left out)
    assert [s.text["en"] for s in steps[-2:]] == ["first, of 2", "second"]
    assert [s.find(log) for s in steps[-2:]] == requests[:2]  # in time, never backwards
    assert steps[-3].question == {"en": "Which came first, of 2?"}
    assert steps[-2].question is None and steps[-3].choices is None
    # Not in time: the file's order stands.
    unsorted = LessonFile(Path("u.toml"), text.replace("in_time = true\n", ""))
    assert [s.text["en"] for s in unsorted.make_steps(log)[-2:]] == ["second", "first, of 2"]
    # The first step shown cannot have its question asked before it.
    first_asks = TEMPLATE.read_text(encoding="utf-8").replace(
        '[steps.ask]\nen = "What does the server\'s kernel send back?"',
        '[steps.ask]\nprevious = true\nen = "What does the server\'s kernel send back?"', 1)
    with pytest.raises(LessonError, match="asked on the step before it"):
        LessonFile(Path("f.toml"), first_asks).make_steps(log)


def test_header_texts_matches_none_held_and_each(template) -> None:  # type: ignore[no-untyped-def]
    """has_header = { name, contains }: the header's value holds the text; matches: a
    regular expression found in a text field; none_held: only events after which none
    are held; each (with distinct): the values with that many matches."""
    log = template.timeline.log
    n = len(log)
    lesson = _with_moments("""ours = { kind = "request", src = "server", has_header = { name = "User-Agent", contains = "sockscope" } }
chrome = { kind = "request", src = "server", has_header = { name = "User-Agent", contains = "Chrome" } }
no_chrome = { kind = "request", src = "server", lacks_header = { name = "User-Agent", contains = "Chrome" } }
root = { kind = "request", src = "server", path = { matches = '^/$' } }
html = { kind = "request", src = "server", path = { matches = '\\.html$' } }
all_closed = { kind = "close", src = "server", none_held = { up = { kind = "accept", src = "server" }, down = { kind = "close", src = "server" } } }
idle_read = { kind = "recv", src = "server", none_held = { up = { kind = "accept", src = "server" }, down = { kind = "close", src = "server" } } }""")
    m = lesson.resolve(log)
    requests = requests_of(log)
    assert m["ours"] == requests[0] and m["chrome"] is None and m["no_chrome"] == requests[0]
    assert log[requests[0]].data["path"] == "/" and m["root"] == requests[0]
    assert m["html"] is None
    closes = [i for i in range(n) if log[i].kind == "close" and log[i].src == "server"]
    assert m["all_closed"] == closes[0] and m["idle_read"] is None
    counted = LessonFile(Path("e.toml"), TEMPLATE.read_text(encoding="utf-8").replace(
        '[facts]\n', '[facts]\ntwice = { count = { kind = "request", src = "server" }, '
        'distinct = "conn", each = { min = 2 } }\nthrice = { count = { kind = "request", '
        'src = "server" }, distinct = "conn", each = { min = 3 } }\nclosed_all = { count = '
        '{ kind = "close", src = "server", none_held = { up = { kind = "accept", src = '
        '"server" }, down = { kind = "close", src = "server" } } } }\n'))
    values = counted.values(log, counted.resolve(log))
    assert values["twice"] == 1 and values["thrice"] == 0  # one connection, two requests
    assert values["closed_all"] == 1


def test_a_browser_client_runs_its_otherwise_clients_where_there_is_no_chromium(
        monkeypatch, template) -> None:  # type: ignore[no-untyped-def]
    """A browser client with otherwise = [...] needs no Chromium: its clients run in its
    place (a load with wait = false is started, not waited for); without otherwise the
    lesson needs Chromium, and a step that needs the browser is left out (and not
    counted) where it does not run."""
    from visualizer.lessons import basics
    text = TEMPLATE.read_text(encoding="utf-8").replace(
        '[[clients]]\nload = "--clients 1 --requests 2 --keep-alive --think 50"',
        '[[clients]]\nbrowser = "/"\notherwise = [{ load = "--path /", wait = false, '
        'pause = 0 }, { load = "--path /css/style.css" }]\n[[clients]]\n'
        'load = "--clients 1 --requests 2 --keep-alive --think 50"', 1)
    text += '\n[[steps]]\nat = { kind = "end" }\nneeds = ["browser"]\nen = "with a browser"\n'
    lesson = LessonFile(Path("b.toml"), text)
    clients = lesson.runs[0][1]
    monkeypatch.setattr(basics, "_chromium", lambda: None)
    assert lesson.needs() == (True, "")
    here = lesson._in_place(clients, None)
    assert [(kind, what) for kind, what, _ in here] == [
        ("start", "--path /"), ("load", "--path /css/style.css"),
        ("load", "--clients 1 --requests 2 --keep-alive --think 50")]
    assert lesson.length() == len(lesson.steps) - 1
    shown = lesson.make_steps(template.timeline.log)  # (its event is there: still left out)
    assert len(shown) == lesson.length() and shown[-1].text["en"] != "with a browser"
    assert lesson._in_place(clients, "/usr/bin/chromium")[0][0] == "browser"
    bare = LessonFile(Path("c.toml"), text.replace(
        'otherwise = [{ load = "--path /", wait = false, pause = 0 }, '
        '{ load = "--path /css/style.css" }]\n', ''))
    ok, why = bare.needs()
    assert not ok and "needs Chromium" in why
    monkeypatch.setattr(basics, "_chromium", lambda: "/usr/bin/chromium")
    assert lesson.length() == len(lesson.steps)
    assert lesson.make_steps(template.timeline.log)[-1].text["en"] == "with a browser"


RUNS = '''format = 1
name = "runs"
title = "Runs"
same_port = true

[[runs]]
engine = { mode = "epoll", policy = "close" }
clients = [{ load = "--clients 1 --requests 1 --short" }]

[[runs]]
engine = { mode = "epoll", reuseaddr = false }
fails = true

[[steps]]
at = { kind = "end" }
en = "The end."
'''


@pytest.mark.parametrize("old, new, says", [
    ("same_port = true", "same_port = 1", "same_port must be true or false"),
    ("fails = true", "fails = false", "fails = true: this run's engine must fail"),
    ("fails = true", 'fails = true\nclients = [{ load = "--requests 1" }]',
     "it has no clients"),
])
def test_runs_on_one_port_and_a_run_that_must_fail(old: str, new: str, says: str) -> None:
    """same_port = true: every run on one port; fails = true: a run whose engine must
    fail to start (time-wait's restart without SO_REUSEADDR). Each read as written, or
    refused with its line."""
    lesson = LessonFile(Path("r.toml"), RUNS)
    assert lesson.same_port and lesson.failing == {1}
    with pytest.raises(LessonFileError) as caught:
        LessonFile(Path("r.toml"), RUNS.replace(old, new))
    assert says in str(caught.value) and caught.value.line == RUNS[:RUNS.index(old)].count("\n") + 1
    first = RUNS.replace("[[runs]]\nengine = { mode = \"epoll\", policy = \"close\" }\n"
                         "clients = [{ load = \"--clients 1 --requests 1 --short\" }]\n\n", "")
    with pytest.raises(LessonFileError, match="a run before it"):
        LessonFile(Path("r.toml"), first)


SYNS = '''format = 1
name = "syns"
title = "SYNs"

[[clients]]
load = "--clients 1"

[moments]
released = { kind = "gate", state = ["released", "running"] }
again = { kind = "packet", flags = "SYN", repeats = "tcp_seq" }
first_syn_sent = { kind = "tcp_state", side = "client", state = "SYN_SENT", conn = "again" }
waiting = { kind = "tcp_state", side = "client", before = "released", last_of_each = "conn", keep = { state = "SYN_SENT" } }

[facts]
same = { count = { kind = "packet", conn = "again", flags = "SYN", same_as_first = "tcp_seq" } }
kept_out = { count = { kind = "tcp_state", side = "client", before = "released", last_of_each = "conn", keep = { state = "SYN_SENT" } } }
gaps = { gaps = { kind = "packet", conn = "again", flags = "SYN", same_as_first = "tcp_seq" } }
tries = { items = "gaps", plus = 1 }
joined = { gaps = [{ kind = "packet", conn = "again", flags = "FIN" }, ["first_syn_sent", { kind = "packet", conn = "again", flags = "SYN" }]] }
spacing = { words = [
  { if = { gaps = { count = 0 } }, en = "none" },
  { if = { gaps = { each = { min = 0.8, max = 1.4 } } }, en = "sent {tries} times, {gaps:.1f| s|, } apart", zh_CN = "发了 {tries} 次，间隔 {gaps:.1f| 秒|、}" },
  { en = "other" },
] }
captured = { words = [{ if = { same = { min = 9 } }, en = "many" }, { en = "few", zh_CN = "少" }] }

[[expect]]
if = { same = { min = 9 } }
at = { kind = "packet", flags = "RST" }
says = "asked only of a recording with nine SYNs"

[[steps]]
at = { kind = "end" }
en = "Its SYN was {spacing} ({captured})."
zh_CN = "它的 SYN {spacing}（{captured}）。"
[[steps.when]]
if = { kept_out = 0 }
at = "again"
view = "io"
en = "Nobody waited."
'''


def _syn_log():  # type: ignore[no-untyped-def]
    """Client A sends its SYN three times (the same sequence number, 1 s apart), then one
    of another number, and stays in SYN_SENT; B sends two SYNs of different numbers and
    gets in; then the gate opens."""
    from engine.events import Event
    from visualizer.model import EventLog
    s = 1_000_000_000
    a, b = "10.0.0.1:1>10.0.0.2:80", "10.0.0.1:2>10.0.0.2:80"
    rows = [(1 * s, "kernel", "tcp_state", a, {"side": "client", "state": "SYN_SENT"}),
            (1 * s + 1, "capture", "packet", a, {"flags": "SYN", "tcp_seq": 100}),
            (s + s // 2, "kernel", "tcp_state", b, {"side": "client", "state": "SYN_SENT"}),
            (s + s // 2 + 1, "capture", "packet", b, {"flags": "SYN", "tcp_seq": 200}),
            (2 * s + 1, "capture", "packet", a, {"flags": "SYN", "tcp_seq": 100}),
            (2 * s + s // 2, "capture", "packet", b, {"flags": "SYN", "tcp_seq": 201}),
            (2 * s + s // 2 + 5, "kernel", "tcp_state", b, {"side": "client",
                                                            "state": "ESTABLISHED"}),
            (3 * s + 1, "capture", "packet", a, {"flags": "SYN", "tcp_seq": 100}),
            (3 * s + s // 2 + 1, "capture", "packet", a, {"flags": "SYN", "tcp_seq": 999}),
            (4 * s, "server", "gate", None, {"state": "released", "action": "epoll_wait"})]
    return EventLog([Event(k + 1, t, src, kind, conn, -1, 1, data)
                     for k, (t, src, kind, conn, data) in enumerate(rows)])


def test_repeats_last_of_each_gaps_and_words(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """repeats: a match whose connection had one with that value before (a SYN sent
    again); same_as_first; last_of_each with keep (the clients still in SYN_SENT at the
    release); gaps (seconds between matches; a way that is a list joins moments' events
    and anchors' matches), items; words chosen by their if (a list fact tested by count,
    each, first, ratios) and written in each language; a list said item by item; a
    variant that stands elsewhere; an [[expect]] asked only where its if holds."""
    log = _syn_log()
    lesson = LessonFile(Path("syns.toml"), SYNS)
    m = lesson.resolve(log)
    assert m["again"] == 4 and m["waiting"] == 0  # A's second SYN; A's SYN_SENT, not B's
    v = lesson.values(log, m)
    assert v["same"] == 3 and v["kept_out"] == 1
    assert v["gaps"] == pytest.approx([1.0, 1.0]) and v["tries"] == 3
    assert v["joined"] == pytest.approx([1e-9, 1.0, 1.0, 0.5])  # its SYN_SENT, its SYNs
    lesson.check(log)  # (the RST it would want is asked only of nine SYNs)
    step, = lesson.make_steps(log)
    assert step.text == {"en": "Its SYN was sent 3 times, 1.0 s, 1.0 s apart (few).",
                         "zh_CN": "它的 SYN 发了 3 次，间隔 1.0 秒、1.0 秒（少）。"}
    assert step.find(log) == len(log) - 1 and step.view == "sequence"
    # Nobody left waiting: the variant stands at the SYN sent again, in the io view.
    released_early = LessonFile(Path("s.toml"), SYNS.replace(
        'released = { kind = "gate", state = ["released", "running"] }',
        'released = { kind = "tcp_state", state = "SYN_SENT" }'))
    step, = released_early.make_steps(log)
    assert step.text["en"] == "Nobody waited." and step.find(log) == 4 and step.view == "io"
    # An [[expect]] whose if holds is asked.
    strict = LessonFile(Path("e.toml"), SYNS.replace("same = { min = 9 }", "same = { min = 3 }"))
    with pytest.raises(LessonError, match="asked only of a recording with nine SYNs"):
        strict.check(log)
    from visualizer.lessons.files import _holds
    assert _holds([1.0, 2.1, 4.0], {"first": {"min": 0.8, "max": 1.4},
                                    "ratios": {"min": 1.6, "max": 2.5}, "count": {"min": 2}})
    assert not _holds([1.0, 1.0], {"ratios": {"min": 1.6}})
    assert _holds([], {"count": 0}) and not _holds([3.0], {"each": {"max": 1.4}})


def test_a_socket_older_than_the_recording_is_none_of_its_connections(
        template, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An earlier server's client end, in TIME_WAIT on the port the lesson's server took:
    the kernel observer finds it at its start (no previous state) and sees it end. Not
    one of the lesson's connections: not counted, not numbered (``conn = 1`` is still the
    lesson's first), its events matched by no moment."""
    from engine.events import Event
    from visualizer.model import EventLog
    log = template.timeline.log
    events = [log[i] for i in range(len(log))]
    server = next(e.data for e in events if e.kind == "listen")
    old = f"127.0.0.1:{server['port'] + 1 if server['port'] < 65535 else 1024}>127.0.0.1:" \
        f"{server['port']}"
    t0, t1 = events[0].t_ns, events[-1].t_ns
    seq = max(e.seq for e in events)
    events += [Event(seq + 1, t0 - 1, "kernel", "tcp_state", old, -1, 0,
                     {"side": "client", "state": "TIME_WAIT", "previous": None,
                      "source": "observed", "expires_ms": 1000}),
               Event(seq + 2, t1 + 1, "kernel", "tcp_state", old, -1, 0,
                     {"side": "client", "state": "CLOSED", "previous": "TIME_WAIT",
                      "source": "observed"})]
    with_older = EventLog(events)
    assert with_older.older_sockets() == {old} and not log.older_sockets()
    lesson = LessonFile(tmp_path / "o.toml", with_facts(
        'waits = { count = { kind = "tcp_state", state = "TIME_WAIT" }, '
        'distinct = ["conn", "side"] }\n'
        'firsts = { count = { kind = "any", conn = 1 }, distinct = "conn" }\n'
        'ends = { count = { kind = "tcp_state", state = "CLOSED" } }\n'))
    for moment, at in lesson.resolve(with_older).items():  # no moment on the older socket
        assert at is None or with_older[at].conn != old, moment
    values = lesson.values(log, lesson.resolve(log))
    assert lesson.values(with_older, lesson.resolve(with_older)) == values
    assert values["firsts"] == 1
    from visualizer.lessons.files import connections
    assert connections(with_older) == connections(log) and old not in connections(with_older)
    # A restarted server's observer finds the lesson's own earlier connection in TIME_WAIT
    # (no previous state either): it was opened in the recording, so it stays one of its.
    own = connections(log)[0]
    again = EventLog(events + [Event(seq + 3, t1 + 2, "kernel", "tcp_state", own, -1, 0,
                                     {"side": "server", "state": "TIME_WAIT",
                                      "previous": None, "source": "observed"})])
    assert again.older_sockets() == {old} and connections(again) == connections(log)
