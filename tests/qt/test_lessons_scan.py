"""The scan lesson (lecture 3.9): select, poll and epoll recorded for real with the
same clients; every number a caption gives is recomputed from the trace."""
from __future__ import annotations

import select
import statistics
from pathlib import Path

import pytest

from visualizer.lessons import all_lessons, prepare
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from lesson_window import unfit  # tests/qt/
from lesson_window import runs, walk  # tests/qt/

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="the lesson runs epoll")
CLIENTS = 100  # the file's load: --clients 100


@pytest.fixture(scope="module")
def scan(tmp_path_factory):  # type: ignore[no-untyped-def]
    return prepare(all_lessons()["scan"], tmp_path_factory.mktemp("scan"))


def watched(log, span, upto: int, kinds: tuple[str, ...]) -> int:  # type: ignore[no-untyped-def]
    """The watched set at ``upto``, replayed from the run's ADDs and DELs."""
    n = 0
    for i in range(span[0], upto):
        e = log[i]
        if e.src == "server" and e.kind in kinds:
            n += {"ADD": 1, "DEL": -1}.get(e.data.get("op"), 0)
    return n


def test_select_and_poll_are_handed_the_whole_set_every_call(scan) -> None:  # type: ignore[no-untyped-def]
    log = scan.timeline.log
    spans = runs(log)
    assert list(spans) == ["select", "poll", "epoll"]
    for k, mode in ((0, "select"), (2, "poll")):
        i = scan.at[k]
        e = log[i]
        assert e.kind == "wait" and e.data["call"] == mode
        assert e.data["fds"] == watched(log, spans[mode], i, ("interest",)) == CLIENTS + 2
        n = e.data["fds"]
        if mode == "select":  # step 1 says how many select() is handed
            assert f"all {n} watched fds" in scan.text(0)
        else:  # step 3, poll: the same whole set, and how many of them were ready
            assert f"same whole set, {n} fds" in scan.text(2)
            assert f"{len(e.data['ready'])} ready here" in scan.text(2)
    waits = [i for i in range(*spans["select"]) if log[i].kind == "wait"]
    calls, scanned = len(waits), sum(log[i].data["fds"] for i in waits)
    ready = sum(len(log[i].data["ready"] or ()) for i in waits)
    assert f"{calls:,} calls to select() were handed {scanned:,} fds to report {ready:,} " \
        f"ready ones: {scanned / ready:,.0f} fds looked at" in scan.text(1)
    assert f"{scanned:,} 个 fd" in scan.text(1, "zh_CN")


def test_epoll_is_handed_no_set(scan) -> None:  # type: ignore[no-untyped-def]
    log = scan.timeline.log
    spans = runs(log)
    i = scan.at[3]
    e = log[i]
    assert e.kind == "epoll_wait" and "fds" not in e.data  # nothing handed in to count
    interest = watched(log, spans["epoll"], i, ("epoll_ctl",))
    assert interest == CLIENTS + 2
    adds = [j for j in range(*spans["epoll"]) if log[j].kind == "epoll_ctl"
            and log[j].data["op"] == "ADD" and log[j].conn]
    assert len({log[j].fd for j in adds}) == len(adds) == CLIENTS  # each added once
    assert scan.text(3).startswith("None.")
    assert f"stays in the kernel ({interest} fds now)" in scan.text(3)
    assert f"only those: {len(e.data['ready'])} here" in scan.text(3)
    waits = [j for j in range(*spans["epoll"]) if log[j].kind == "epoll_wait"]
    middle = statistics.median(len(log[j].data["ready"] or ()) for j in waits)
    assert f"(a median of {middle:g} per call over {len(waits):,} calls)" in scan.text(3)
    assert scan.question(2) and "epoll_wait" in scan.question(2)


def test_the_window_walks_it(qtbot, scan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def check(k: int, lang: str, view) -> None:  # type: ignore[no-untyped-def]
        if k in (0, 2):
            assert view.scanned == CLIENTS + 2 and view.call in ("select()", "poll()")
        if k == 3:
            assert view.mode == "epoll" and view.scanned is None
            assert len(view.interest) == CLIENTS + 2
            # numbered within epoll's own run, not after select's and poll's calls
            log = scan.timeline.log
            first = runs(log)["epoll"][0]
            assert view.wait_number == len([i for i in range(first, scan.at[k] + 1)
                                            if log[i].kind == "epoll_wait"])
    walk(qtbot, scan, tmp_path, check)


def test_captions_keep_one_vocabulary_and_ask(scan) -> None:  # type: ignore[no-untyped-def]
    check_vocabulary(scan)


@pytest.mark.parametrize("name", ["scan"])
def test_every_step_fits_at_200_percent(qtbot, request, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Presentation layout at 200 %, both languages, 1280x720 and 1920x1080: no text cut,
    past its view's edge or on another text (measured against its box)."""
    found = unfit(qtbot, request.getfixturevalue(name), tmp_path)
    assert not found, "\n".join(found[:40])
