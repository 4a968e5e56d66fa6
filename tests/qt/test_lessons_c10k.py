"""The C10K lesson: ten thousand idle clients, recorded for real four times (a thread
each, select, poll, epoll); every number a caption gives is read back from the trace."""
from __future__ import annotations

import re
import select
from pathlib import Path

import pytest

from visualizer.lessons import all_lessons, prepare
from visualizer.lessons import c10k as lesson
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from lesson_window import unfit  # tests/qt/
from lesson_window import walk  # tests/qt/

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="the lesson runs epoll")


@pytest.fixture(scope="module")
def c10k(tmp_path_factory):  # type: ignore[no-untyped-def]
    ok, reason = lesson._needs()
    if not ok:
        pytest.skip(reason)
    return prepare(all_lessons()["c10k"], tmp_path_factory.mktemp("c10k"))


def samples(log, span) -> list:  # type: ignore[no-untyped-def]
    return [log[i] for i in range(span[0], span[1] + 1) if log[i].kind == "cpu"]


def test_a_thread_each_costs_threads_memory_and_switches(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    runs = lesson._runs(log)
    assert list(runs) == list(lesson.RUNS)
    threaded = samples(log, runs["threaded"])
    epoll = samples(log, runs["epoll"])
    most = max(e.data["threads"] for e in threaded)
    assert most >= lesson.IDLE  # a thread per idle client, as the kernel counts them
    assert max(e.data["threads"] for e in epoll) <= 8
    assert max(e.data["rss_mb"] for e in threaded) > 2 * max(e.data["rss_mb"] for e in epoll)
    step = log[c10k.at[0]]
    assert step.kind == "cpu" and step.data["threads"] == most
    text = c10k.text(0)
    assert f"the process has {most:,} threads and {step.data['rss_mb']:,.0f} MB" in text
    switched = threaded[-1].data["switches"] - threaded[0].data["switches"]
    assert switched > 0 and f"switched {switched:,} times" in text
    assert f"{most:,} 个线程" in c10k.text(0, "zh_CN")


def test_select_refuses_every_fd_past_fd_setsize(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    run = lesson._runs(log)["select"]
    everyone = [i for i in range(run[0], run[1] + 1) if log[i].kind == "error"
                and log[i].data.get("what") == "fd_setsize"]
    # The caption counts the idle clients (the first 10,000 accepted), not the load's two.
    accepted = [log[i].conn for i in range(run[0], run[1] + 1)
                if log[i].kind == "accept" and log[i].src == "server"]
    idle = set(accepted[:lesson.IDLE])
    refused = [i for i in everyone if log[i].conn in idle]
    assert len(refused) >= lesson.IDLE - lesson.FD_SETSIZE
    assert len(everyone) - len(refused) <= len(accepted) - lesson.IDLE  # the load's
    assert all(log[i].fd >= lesson.FD_SETSIZE for i in refused)
    first = log[c10k.at[1]]
    assert c10k.at[1] == refused[0] and first.fd >= lesson.FD_SETSIZE
    # Each one is answered 503 on its own connection, then closed.
    answered = {log[i].conn for i in range(run[0], run[1] + 1) if log[i].kind == "response"
                and log[i].data.get("status") == 503}
    assert {log[i].conn for i in refused} <= answered
    assert f"From fd {first.fd} on" in c10k.text(1)
    assert f"{len(refused):,} of the {lesson.IDLE:,} clients refused" in c10k.text(1)


def test_poll_holds_them_and_scans_them_all(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    e = log[c10k.at[2]]
    assert e.kind == "wait" and e.data["call"] == "poll" and e.data["fds"] > lesson.IDLE
    assert f"this one {e.data['fds']:,} fds, to report {len(e.data['ready'])} ready" \
        in c10k.text(2)


def test_epoll_holds_them_on_its_interest_list(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    run = lesson._runs(log)["epoll"]
    i = c10k.at[3]
    e = log[i]
    assert e.kind == "epoll_wait" and e.data["ready"] and "fds" not in e.data
    interest = sum({"ADD": 1, "DEL": -1}.get(log[j].data.get("op"), 0)
                   for j in range(run[0], i) if log[j].kind == "epoll_ctl")
    assert interest > lesson.IDLE
    assert f"{interest:,} fds on the interest list" in c10k.text(3)
    # The summary: a thread each against epoll, the numbers of the two runs' samples.
    found = re.search(r"costs ([\d,]+) threads and ([\d,]+) MB against epoll's ([\d,]+) and "
                      r"([\d,]+) MB", c10k.text(4))
    assert found, c10k.text(4)
    threads, _, epoll_threads, _ = (int(n.replace(",", "")) for n in found.groups())
    assert threads >= lesson.IDLE and epoll_threads <= 8


def test_the_window_walks_it(qtbot, c10k, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def check(k: int, lang: str, view) -> None:  # type: ignore[no-untyped-def]
        if k == 0:
            assert view.mode == "threaded"
            assert len(view.lanes) + view.hidden_lanes >= lesson.IDLE
        if k == 2:
            assert view.call == "poll()" and view.scanned > lesson.IDLE
        if k == 3:
            assert view.mode == "epoll" and len(view.interest) > lesson.IDLE
    walk(qtbot, c10k, tmp_path, check)


def test_captions_keep_one_vocabulary_and_ask(c10k) -> None:  # type: ignore[no-untyped-def]
    check_vocabulary(c10k)


@pytest.mark.parametrize("name", ["c10k"])
def test_every_step_fits_at_200_percent(qtbot, request, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Presentation layout at 200 %, both languages, 1280x720 and 1920x1080: no text cut,
    past its view's edge or on another text (measured against its box)."""
    found = unfit(qtbot, request.getfixturevalue(name), tmp_path)
    assert not found, "\n".join(found[:40])
