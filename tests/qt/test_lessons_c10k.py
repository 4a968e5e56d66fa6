"""The C10K lesson: ten thousand idle clients, recorded for real four times (a thread
each, select, poll, epoll); every number a caption gives is read back from the trace."""
from __future__ import annotations

import bisect
import collections
import os
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from visualizer.lessons import all_lessons, prepare
from engine.modes.readiness import FD_SETSIZE
from visualizer.lessons.scripts import IDLE
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from lesson_window import unfit  # tests/qt/
from lesson_window import runs, walk  # tests/qt/

ROOT = Path(__file__).resolve().parents[2]  # (the checkout's code, not an installed copy)
pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="the lesson runs epoll")


@pytest.fixture(scope="module")
def c10k(tmp_path_factory):  # type: ignore[no-untyped-def]
    ok, reason = all_lessons()["c10k"].needs()
    if not ok:
        pytest.skip(reason)
    return prepare(all_lessons()["c10k"], tmp_path_factory.mktemp("c10k"))


def samples(log, span) -> list:  # type: ignore[no-untyped-def]
    return [log[i] for i in range(span[0], span[1] + 1) if log[i].kind == "cpu"]


def test_a_thread_each_costs_threads_memory_and_switches(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    spans = runs(log)
    assert list(spans) == ["threaded", "select", "poll", "epoll"]
    threaded = samples(log, spans["threaded"])
    epoll = samples(log, spans["epoll"])
    most = max(e.data["threads"] for e in threaded)
    assert most >= IDLE  # a thread per idle client, as the kernel counts them
    assert max(e.data["threads"] for e in epoll) <= 8
    assert max(e.data["rss_mb"] for e in threaded) > 2 * max(e.data["rss_mb"] for e in epoll)
    step = log[c10k.at[0]]
    assert step.kind == "cpu" and step.data["threads"] == most
    # of the samples with the most threads, the one with the most memory (the first)
    fullest = max(e.data["rss_mb"] for e in threaded if e.data["threads"] == most)
    assert step.data["rss_mb"] == fullest
    text = c10k.text(0)
    assert f"the process has {most:,} threads and {step.data['rss_mb']:,.0f} MB" in text
    switched = threaded[-1].data["switches"] - threaded[0].data["switches"]
    assert switched > 0 and f"switched {switched:,} times" in text
    assert f"{most:,} 个线程" in c10k.text(0, "zh_CN")


def test_select_refuses_every_fd_past_fd_setsize(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    run = runs(log)["select"]
    accepts = [i for i in range(run[0], run[1] + 1)
               if log[i].kind == "accept" and log[i].src == "server"]
    refusals = [i for i in range(run[0], run[1] + 1) if log[i].kind == "error"
                and log[i].data.get("what") == "fd_setsize"]
    # Each refusal is recorded right after its accept (the latest accept is its own).
    assert all(log[accepts[bisect.bisect_left(accepts, i) - 1]].conn == log[i].conn
               for i in refusals)
    # The caption counts the idle clients (the first 10,000 accepted), not the load's:
    # by place, not by address (a load client may reuse a refused client's port).
    idle = accepts[:IDLE]
    refused = [i for i in refusals if i < idle[-1] + 2]
    assert len(refused) == sum(1 for i in idle if log[i].fd >= FD_SETSIZE)
    assert len(refused) >= IDLE - FD_SETSIZE
    assert all(log[i].fd >= FD_SETSIZE for i in refused)
    first = log[c10k.at[1]]
    assert c10k.at[1] == refused[0] and first.fd >= FD_SETSIZE
    # Each one is answered 503 on its own connection, then closed.
    for i in refused[:50]:
        answer = next(j for j in range(i + 1, len(log)) if log[j].kind == "response")
        assert log[answer].data["status"] == 503 and log[answer].conn == log[i].conn
    assert f"From fd {first.fd} on" in c10k.text(1)
    assert f"{len(refused):,} of the {IDLE:,} clients refused" in c10k.text(1)


def test_poll_holds_them_and_scans_them_all(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    e = log[c10k.at[2]]
    assert e.kind == "wait" and e.data["call"] == "poll" and e.data["fds"] > IDLE
    assert f"this one {e.data['fds']:,} fds, to report {len(e.data['ready'])} ready" \
        in c10k.text(2)


def test_epoll_holds_them_on_its_interest_list(c10k) -> None:  # type: ignore[no-untyped-def]
    log = c10k.timeline.log
    run = runs(log)["epoll"]
    i = c10k.at[3]
    e = log[i]
    assert e.kind == "epoll_wait" and e.data["ready"] and "fds" not in e.data
    interest = sum({"ADD": 1, "DEL": -1}.get(log[j].data.get("op"), 0)
                   for j in range(run[0], i) if log[j].kind == "epoll_ctl")
    assert interest > IDLE
    assert f"{interest:,} fds on the interest list" in c10k.text(3)
    # The summary: a thread each against epoll, the numbers of the two runs' samples.
    found = re.search(r"costs ([\d,]+) threads and ([\d,]+) MB against epoll's ([\d,]+) and "
                      r"([\d,]+) MB", c10k.text(4))
    assert found, c10k.text(4)
    threads, _, epoll_threads, _ = (int(n.replace(",", "")) for n in found.groups())
    assert threads >= IDLE and epoll_threads <= 8


def test_the_window_walks_it(qtbot, c10k, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def check(k: int, lang: str, view) -> None:  # type: ignore[no-untyped-def]
        if k == 0:
            assert view.mode == "threaded"
            assert len(view.lanes) + view.hidden_lanes >= IDLE
        if k == 2:
            assert view.call == "poll()" and view.scanned > IDLE
        if k == 3:
            assert view.mode == "epoll" and len(view.interest) > IDLE
    walk(qtbot, c10k, tmp_path, check)


def test_captions_keep_one_vocabulary_and_ask(c10k) -> None:  # type: ignore[no-untyped-def]
    check_vocabulary(c10k)


@pytest.mark.parametrize("name", ["c10k"])
def test_every_step_fits_at_200_percent(qtbot, request, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Presentation layout at 200 %, both languages, 1280x720 and 1920x1080: no text cut,
    past its view's edge or on another text (measured against its box)."""
    found = unfit(qtbot, request.getfixturevalue(name), tmp_path)
    assert not found, "\n".join(found[:40])


def test_the_idle_clients_are_held_until_the_engine_stops(c10k) -> None:  # type: ignore[no-untyped-def]
    """The idle clients hold their connections, silent, until the engine has stopped: in
    each run that holds them all, no idle client closed first; the server closed them
    as it stopped (only the load's two clients closed their own)."""
    log = c10k.timeline.log
    for mode in ("threaded", "poll", "epoll"):
        first, last = runs(log)[mode]
        reasons = collections.Counter(log[i].data.get("reason") for i in range(first, last + 1)
                                      if log[i].kind == "close" and log[i].src == "server")
        assert reasons["server stopping"] >= IDLE, (mode, reasons)
        assert reasons["peer closed"] <= 2, (mode, reasons)


@pytest.mark.skipif(not shutil.which("prlimit"), reason="needs prlimit (util-linux)")
def test_where_the_descriptors_cannot_be_had_it_is_refused_saying_why(tmp_path: Path) -> None:
    """The idle-10k script needs 10,000 descriptors in the lesson's own process: under a
    hard limit of 2,048 the lesson is refused with the limit, before anything runs."""
    done = subprocess.run(["prlimit", "--nofile=2048:2048", sys.executable, "-m",
                           "visualizer.cli", "lesson", "c10k", "--notes"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 1, done.stderr
    assert "c10k cannot run here: 10,000 connections need 10,000 descriptors at each end" \
        in done.stderr and "2048" in done.stderr
    assert "Traceback" not in done.stderr
    # Asked first (the window greys the lesson out, saying why), before any engine runs.
    asked = subprocess.run(["prlimit", "--nofile=2048:2048", sys.executable, "-c",
                            "from visualizer.lessons import all_lessons; "
                            "print(all_lessons()['c10k'].needs())"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith("(False, '10,000 connections need 10,000 descriptors"), \
        asked.stdout
