"""The basics lessons after the first request: static-pages, keep-alive and regex.

Each is recorded for real (module-scoped), checked, asserted from its log, and
walked in the window with PageDown in both languages while the views are
asked whether they show what the caption says. The same lessons are also
recorded as an unprivileged machine would record them (states inferred from
the calls, packets derived), and static-pages without a browser.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from visualizer.app import MainWindow
from visualizer.lessons import ORDER, Prepared, all_lessons, basics, prepare, scripts
from visualizer.model.lifecycle import KEEP_ALIVE, SHORT
from visualizer.model.text import header_value
from lesson_vocabulary import check as check_vocabulary  # tests/qt/
from lesson_window import unfit  # tests/qt/

ROOT = Path(__file__).resolve().parents[2]
UNPRIVILEGED = ("--states", "inferred", "--packets", "derived")
CJK = re.compile(r"[\u4e00-\u9fff]")


# What the static-pages recording shows, found here independently of its file.
MISSING = "/missing.html"  # the file's second browser client (and its fallback)
_IMAGE = re.compile(r"\.(png|svg|bmp|jpe?g|gif|ico|webp)$", re.IGNORECASE)


def _is_image(path: str) -> bool:
    return bool(_IMAGE.search(path.split("?", 1)[0]))


def _browser_ran(log) -> bool:  # type: ignore[no-untyped-def]
    """Did a real browser make the requests (its User-Agent says Chrome)?"""
    return any(e.kind == "request" and e.src == "server" and "Chrome" in (
        header_value(str(e.data.get("head") or ""), "User-Agent") or "") for e in log)


def _page_conns(log, before: int) -> list[str]:  # type: ignore[no-untyped-def]
    """The connections accepted before ``before``, in order."""
    seen: list[str] = []
    for i in range(min(before, len(log))):
        e = log[i]
        if e.kind == "accept" and e.src == "server" and e.conn is not None \
                and e.conn not in seen:
            seen.append(e.conn)
    return seen


def _most_open(log, stop: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(the most server connections open at once before ``stop``, the index where first)."""
    open_now, best, at = 0, 0, -1
    for i in range(min(stop, len(log))):
        e = log[i]
        if e.src == "server" and e.kind in ("accept", "close"):
            open_now += 1 if e.kind == "accept" else -1
            if open_now > best:
                best, at = open_now, i
    return best, at


def _prepare(name: str, workdir: Path, observing: tuple[str, ...] | None = None,
             browser: bool = True) -> Prepared:
    with pytest.MonkeyPatch.context() as mp:
        if observing is not None:
            mp.setattr(basics, "OBSERVING", observing)
        if not browser:
            mp.setattr(basics, "_chromium", lambda: None)
        return prepare(all_lessons()[name], workdir)


@pytest.fixture(scope="module")
def static(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepare("static-pages", tmp_path_factory.mktemp("static"))


@pytest.fixture(scope="module")
def keep_alive(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepare("keep-alive", tmp_path_factory.mktemp("keep"))


@pytest.fixture(scope="module")
def regex(tmp_path_factory):  # type: ignore[no-untyped-def]
    return _prepare("regex", tmp_path_factory.mktemp("regex"))


@pytest.fixture
def window(qtbot, tmp_path):  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(engine=False, settings=settings)
    w.resize(1600, 1000)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def walk(qtbot, window, prepared: Prepared, look=None) -> None:  # type: ignore[no-untyped-def]
    """Every step with PageDown, in both languages; ``look(k, view)`` checks the picture."""
    steps = prepared.steps
    assert 5 <= len(steps) <= 10
    assert prepared.at == sorted(prepared.at)
    for lang in ("en", "zh_CN"):
        window.qsettings.setValue("language", lang)
        window.open_lesson(prepared)
        for k in range(len(steps)):
            text = prepared.text(k, lang)
            assert window.lesson_step == k
            assert window.caption_step.text() == f"{k + 1} / {len(steps)}"
            assert window.caption.text() == text
            assert bool(CJK.search(text)) == (lang == "zh_CN"), text
            assert window.timeline.cursor == prepared.at[k]
            view = window.view_tabs.currentWidget()
            assert view.name == steps[k].view
            if look is not None and lang == "en":
                look(k, view)
            qtbot.keyClick(window, Qt.Key.Key_PageDown)
        assert window.lesson_step == len(steps) - 1


def responses(log, where=lambda d: True) -> list:  # type: ignore[no-untyped-def]
    return [log[int(i)] for i in log.indices(kinds=["response"], src="server")
            if where(log[int(i)].data)]


def requests(log) -> list:  # type: ignore[no-untyped-def]
    return [log[int(i)] for i in log.indices(kinds=["request"], src="server")]


def test_the_basics_are_listed_in_the_lecture_order() -> None:
    names = list(all_lessons())
    assert {"first-request", "static-pages", "keep-alive", "regex"} <= set(names)
    ranks = [ORDER.index(n) for n in names if n in ORDER]
    assert ranks == sorted(ranks)
    for name in ("static-pages", "keep-alive", "regex"):
        lesson = all_lessons()[name]
        assert all(lesson.title.get(k) and lesson.summary.get(k) for k in ("en", "zh_CN"))
    listed = subprocess.run([sys.executable, "-m", "visualizer.cli", "lessons"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0
    shown = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert shown.index("static-pages") < shown.index("keep-alive") < shown.index("regex")


# ---------------------------------------------------------------- static-pages
def test_static_pages_loads_a_page_its_pictures_and_a_404(qtbot, window, static) -> None:  # type: ignore[no-untyped-def]
    log = static.timeline.log
    browser = basics._chromium() is not None
    assert _browser_ran(log) == browser
    paths = {e.data["path"]: e.data["status"] for e in responses(log)}
    assert paths.get("/") == 200 and paths.get(MISSING) == 404
    assert paths.get("/css/style.css") == 200
    assert any(_is_image(p) and s == 200 for p, s in paths.items())
    heads = [e.data.get("head", "") for e in requests(log)]
    agent = "HeadlessChrome" if browser else "sockscope-load"
    assert all(agent in h for h in heads), heads[0]
    conns = {e.conn for e in log if e.kind == "accept" and e.src == "server"}
    assert len(conns) >= 3  # the page's connections, then the 404's
    most, _ = _most_open(log, len(log))
    assert most >= 2  # several at once
    first = static.text(0, "en")
    assert first.startswith("A real browser" if browser else "No Chromium on this machine")

    seen: dict[str, int] = {}

    def look(k, view):  # type: ignore[no-untyped-def]
        text = static.text(k, "en")
        if view.name == "http":
            ex = view.exchange
            assert ex is not None and ex.status is not None
            if "404 Not Found" in text:
                assert ex.status == 404 and ex.path == MISSING
                assert ex.response_head.startswith("HTTP/1.1 404 Not Found")
                seen["404"] = k
            elif "binary" in text:
                assert ex.status == 200 and "Content-Type: image/" in ex.response_head
                assert f"Content-Length: {ex.length}" in ex.response_head
                seen["image"] = k
            elif "index.html for /" in text:
                assert ex.path == "/" and ex.status == 200
                assert "Content-Type: text/html" in ex.response_head
                seen["page"] = k
            elif "style.css" in text:
                assert ex.path == "/css/style.css" and "text/css" in ex.response_head
        elif view.name == "sockets":
            open_server = [r for r in view.rows if r.side == "server" and r.conn
                           and r.state == "ESTABLISHED"]
            number = int(re.search(r"(\d+) connections", text).group(1))
            assert len(open_server) == number >= 2
            seen["parallel"] = k
        elif view.name == "lifecycle":
            opened = sum(c.connections for c in view.costs.values())
            assert opened >= 2 and opened == len(_page_conns(log, window.timeline.cursor
                                                                    + 1))
            seen["page conns"] = k
        elif view.name == "sequence" and k == 0:
            flags = [a.flags for a in view.arrows]
            assert flags[:3] == ["SYN", "SYN|ACK", "ACK"]

    walk(qtbot, window, static, look)
    assert {"page", "image", "404", "parallel", "page conns"} <= set(seen)
    assert seen["page"] < seen["404"]


def test_static_pages_without_a_browser_unprivileged(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    prepared = _prepare("static-pages", tmp_path, UNPRIVILEGED, browser=False)
    log = prepared.timeline.log
    assert not _browser_ran(log)
    assert prepared.text(0, "en").startswith("No Chromium on this machine")
    assert "没有 Chromium" in prepared.text(0, "zh_CN")
    origins = {e.data.get("origin") for e in log if e.kind == "packet"}
    assert origins == {"derived"}
    assert {e.data.get("source") for e in log if e.kind == "tcp_state"} == {"inferred"}
    # The built-in clients fetched the stylesheet and the pictures side by side.
    assert _most_open(log, len(log))[0] >= 3
    walk(qtbot, window, prepared)


# ---------------------------------------------------------------- keep-alive
KEEP_ALIVE_N = 4  # requests in each run (files/keep-alive.toml's clients)


def _server_conns(log) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Each connection the server accepted, with the log indices of its requests."""
    conns: dict[str, list[int]] = {}
    for i in range(len(log)):
        e = log[i]
        if e.src == "server" and e.kind in ("accept", "request"):
            conns.setdefault(str(e.conn), [])
            if e.kind == "request":
                conns[str(e.conn)].append(i)
    return conns


def _runs(log) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """(the short run's connections, the keep-alive run's), by what the requests asked."""
    short, kept = [], []
    for conn, requests in _server_conns(log).items():
        if requests and all(not log[i].data.get("keep_alive") for i in requests):
            short.append(conn)
        elif requests:
            kept.append(conn)
    return short, kept


def test_keep_alive_against_short_connections(qtbot, window, keep_alive) -> None:  # type: ignore[no-untyped-def]
    log = keep_alive.timeline.log
    n = KEEP_ALIVE_N
    short, kept = _runs(log)
    conns = _server_conns(log)
    assert len(short) == n and all(len(conns[c]) == 1 for c in short)
    assert len(kept) == 1 and len(conns[kept[0]]) == n
    # The clients' own side agrees: n + 1 connect() calls in all.
    assert sum(1 for e in log if e.kind == "connect" and e.src == "client") == n + 1
    assert all(not log[i].data["keep_alive"] for c in short for i in conns[c])
    assert all(log[i].data["keep_alive"] for i in conns[kept[0]])
    for e in responses(log):
        assert f"\r\nContent-Length: {e.data['length']}\r\n" in e.data["head"]
    ka = kept[0]
    # Step 2 stands on the short run's end: its connections' last event before the
    # keep-alive connection's first (not an engine sample in the pause after it).
    ka_first = min(i for i in range(len(log)) if log[i].conn == ka)
    short_end = max(i for i in range(ka_first) if log[i].conn in short)
    assert keep_alive.steps[1].find(log) == short_end
    looked = []

    def look(k, view):  # type: ignore[no-untyped-def]
        text = keep_alive.text(k, "en")
        looked.append(view.name)
        if view.name == "sequence":
            syns = [a for a in view.arrows if a.flags == "SYN"]
            assert len(syns) == 1  # one connection, one handshake
            if k == 0:
                assert view.conn == short[0]
                assert any("FIN" in a.flags for a in view.arrows)
                assert sum(1 for a in view.arrows if a.kind == "data") == 2  # request, answer
            else:
                assert view.conn == ka
                assert any(a.kind == "data" and a.sender == "client" for a in view.arrows)
            if "whole keep-alive" in text:
                assert any("FIN" in a.flags for a in view.arrows)
        elif view.name == "lifecycle":
            s, ka_costs = view.costs[SHORT], view.costs[KEEP_ALIVE]
            assert (s.connections, s.requests) == (n, n)
            assert s.handshake_segments == 3 * n
            if k == len(keep_alive.steps) - 1:
                assert (ka_costs.connections, ka_costs.requests) == (1, n)
                assert ka_costs.handshake_segments == 3
            else:
                assert ka_costs.connections == 0
        elif view.name == "http":
            ex = view.exchange
            assert ex.conn == ka and ex.keep_alive is True
            assert f"Content-Length: {ex.length}" in ex.response_head
            assert "Connection: keep-alive" in ex.response_head
            assert ex.number == (2 if "second request" in text else 1)

    walk(qtbot, window, keep_alive, look)
    views = [s.view for s in keep_alive.steps]
    assert looked == views
    assert {"sequence", "lifecycle", "http"} <= set(views)
    assert any("Content-Length" in keep_alive.text(k) and "defeats keep-alive"
               in keep_alive.text(k) for k in range(len(views)))


def test_keep_alive_unprivileged(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    prepared = _prepare("keep-alive", tmp_path, UNPRIVILEGED)
    log = prepared.timeline.log
    assert {e.data.get("origin") for e in log if e.kind == "packet"} == {"derived"}
    walk(qtbot, window, prepared)
    last = prepared.text(len(prepared.steps) - 1, "en")
    assert f"{KEEP_ALIVE_N} handshakes" in last
    # Segments derived from the calls are said to be so (captured none, derived some).
    assert prepared.text(0).endswith("teardown (derived from the calls: these segments were "
                                     "not captured).")
    assert "由系统调用推导" in prepared.text(0, "zh_CN")


# ---------------------------------------------------------------- regex
def test_regex_reads_the_request_line(qtbot, window, regex) -> None:  # type: ignore[no-untyped-def]
    log = regex.timeline.log
    targets = [e.data["path"] for e in requests(log)]
    port = log[int(log.indices(kinds=["listen"])[0])].data["port"]
    assert targets == scripts.lecture_targets(port)
    assert all(e.data["status"] == (403 if e.data["path"] == scripts.TRAVERSAL_TARGET else 200)
               for e in responses(log))
    groups = {t: scripts.LECTURE_RE.match(f"GET {t} HTTP/1.1").group(1) for t in targets}
    assert groups["/"] == "/" and groups["/index.html"] == "/index.html"
    assert groups[f"http://127.0.0.1:{port}/index.html"] == f"//127.0.0.1:{port}/index.html"
    assert groups[scripts.QUERY_TARGET] == scripts.QUERY_TARGET
    assert groups[scripts.TRAVERSAL_TARGET] == scripts.TRAVERSAL_TARGET

    seen = []

    def look(k, view):  # type: ignore[no-untyped-def]
        ex = view.exchange
        assert ex is not None and view.name == "http"
        seen.append(ex.path)
        if ex.path.startswith("http://"):
            assert ex.regex_group == f"//127.0.0.1:{port}/index.html" and not ex.agree
            assert "they differ" in view.compare_label.text()
        else:
            assert ex.agree and ex.regex_group == ex.path
            assert "the same" in view.compare_label.text()
        if ex.status is not None:
            assert ex.status == (403 if ex.path == scripts.TRAVERSAL_TARGET else 200)
        # What the lecture's server answers: 404 for the names it opens that the site
        # lacks (the lesson looked at the site when it recorded, and the view says so),
        # 200 where this server found the same file, and no status for the traversal.
        out = view.outcome
        if ex.path in (scripts.QUERY_TARGET, f"http://127.0.0.1:{port}/index.html"):
            assert (out.status, out.checked) == (404, True), ex.path
        elif ex.path == scripts.TRAVERSAL_TARGET:
            assert out.outside and out.status is None
        elif ex.status is not None:
            assert (out.status, out.checked) == (200, False), ex.path

    walk(qtbot, window, regex, look)
    checks = [e for e in log if e.kind == "site_check"]
    assert {e.data["path"]: e.data["exists"] for e in checks} == {
        "./html/index.html": True, f"./html//127.0.0.1:{port}/index.html": False,
        "./html" + scripts.QUERY_TARGET: False}
    assert set(seen) == set(targets)


def test_regex_unprivileged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    prepared = _prepare("regex", tmp_path, UNPRIVILEGED)
    assert len(prepared.steps) == 8
    assert "absolute URL" in prepared.text(3, "en")


def test_keep_alive_says_http11_is_persistent_by_default(keep_alive) -> None:  # type: ignore[no-untyped-def]
    """keep-alive step 3, checked against the recorded request: HTTP/1.1 is persistent by
    default, the short run said Connection: close and this one does not; what the client
    really sent (Connection: keep-alive, an HTTP/1.0 header) is said as such."""
    log = keep_alive.timeline.log
    at = keep_alive.at[2]
    request = max(i for i in range(at + 1) if log[i].kind == "request" and log[i].src == "server")
    data = log[request].data
    head = data["head"].lower()
    assert data["version"] == "1.1" and "connection: close" not in head
    shorts = [log[i].data["head"].lower() for i in range(request)
              if log[i].kind == "request" and log[i].src == "server"]
    assert shorts and all("connection: close" in h for h in shorts)
    en, zh = keep_alive.text(2), keep_alive.text(2, "zh_CN")
    assert "no Connection: close" in en and "HTTP/1.1 keeps a connection open by default" in en
    assert "不再带 Connection: close" in zh and "HTTP/1.1 默认就保持连接" in zh
    said = "connection: keep-alive" in head
    assert ("the HTTP/1.0 header" in en) == said and ("HTTP/1.0 的 Connection: keep-alive" in zh) == said


def test_regex_asks_before_the_absolute_url_and_claims_no_more_than_a_plain_path(regex) -> None:  # type: ignore[no-untyped-def]
    ask_en, ask_zh = regex.text(2), regex.text(2, "zh_CN")
    assert "plain path" in ask_en and "what a browser sends" not in ask_en
    assert ask_en.rstrip().endswith("?") and ask_zh.rstrip().endswith("？")
    log = regex.timeline.log
    absolute = [log[i].data["path"] for i in range(len(log))
                if log[i].kind == "request" and str(log[i].data.get("path", "")).startswith("http")]
    assert absolute and absolute[0] in ask_en and absolute[0] in ask_zh


def test_static_pages_corrects_the_short_connection_myth_only_when_it_saw_reuse(static) -> None:  # type: ignore[no-untyped-def]
    """"Websites mostly use short connections" is dated: step 6 says so when (and only
    when) the recorded browser sent more than one request on a connection."""
    log = static.timeline.log
    upto = static.at[5]
    per_conn: dict[str, int] = {}
    for i in range(upto + 1):
        e = log[i]
        if e.kind == "request" and e.src == "server":
            per_conn[e.conn] = per_conn.get(e.conn, 0) + 1
    reused = any(n > 1 for n in per_conn.values())
    en, zh = static.text(5), static.text(5, "zh_CN")
    assert ("short connections: that is dated" in en) == reused
    assert ("这个说法已经过时了" in zh) == reused
    if reused:
        assert "carried more than one request" in en


def test_keep_alive_asks_before_the_side_by_side_and_the_answer_is_counted(keep_alive) -> None:  # type: ignore[no-untyped-def]
    """Step 7 asks how many handshake segments the short run cost; step 8 answers, and the
    number it gives is the recording's: every short connection's SYN, SYN|ACK, ACK."""
    import re
    log = keep_alive.timeline.log
    ask_en, ask_zh = keep_alive.text(6), keep_alive.text(6, "zh_CN")
    assert ask_en.rstrip().endswith("?") and "？" in ask_zh
    answer = keep_alive.text(7)
    handshakes, segments = map(int, re.search(r"cost (\d+) handshakes \((\d+) segments\)",
                                              answer).groups())
    accepts = [log[i].conn for i in range(len(log))
               if log[i].kind == "accept" and log[i].src == "server"]
    short = accepts[:-1]  # the keep-alive connection is the last one accepted
    assert handshakes == len(short)
    syns = [log[i] for i in range(len(log)) if log[i].kind == "packet"
            and log[i].conn in short and log[i].data["flags"] in ("SYN", "SYN|ACK")]
    if syns:  # with packets: a SYN and a SYN|ACK per short connection, then its ACK
        assert len(syns) == 2 * len(short) and segments == 3 * len(short)


def test_static_pages_asks_before_it_shows_the_parallel_connections(static) -> None:  # type: ignore[no-untyped-def]
    import re
    if basics._chromium() is None:
        pytest.skip("no Chromium on this machine: the lesson's clients are the built-in "
                    "ones, which open no parallel connections to ask about")
    texts = [static.text(k) for k in range(len(static.steps))]
    answered = next(k for k, t in enumerate(texts) if "does not fetch one file after another" in t)
    ask = answered - 1  # the question comes on the step just before, wherever that falls
    assert texts[ask].rstrip().endswith("?") and static.text(ask, "zh_CN").rstrip().endswith("？")
    assert "one after another on one connection?" in texts[ask]
    answer = texts[ask + 1]
    opened = int(re.search(r"opens (\d+) connections", answer).group(1))
    log = static.timeline.log
    accepted = {log[i].conn for i in range(static.at[ask + 1] + 1)
                if log[i].kind == "accept" and log[i].src == "server"}
    assert opened >= 2 and len(accepted) >= opened


def test_keep_alive_names_the_lectures_404_without_content_length(keep_alive) -> None:  # type: ignore[no-untyped-def]
    """The lecture's 3.8 server sends Content-Length on its 200 only (its 404 has none);
    this server's answers in the recording all carry it, as the caption says."""
    en, zh = keep_alive.text(4), keep_alive.text(4, "zh_CN")
    assert "its 404 still has none" in en and "404 included" in en
    assert "它的 404 仍然没有" in zh and "404 也不例外" in zh
    log = keep_alive.timeline.log
    heads = [log[i].data["head"] for i in range(len(log))
             if log[i].kind == "response" and log[i].src == "server"]
    assert heads and all("Content-Length:" in h for h in heads)


@pytest.mark.parametrize("recorded", ['static', 'keep_alive', 'regex'])
def test_captions_keep_one_vocabulary_and_ask(recorded, request) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: no command-line flag in the words (a footnote has them), the Chinese
    terms the reviewer chose (主动关闭方, 边缘, 管线化（pipelining）...), one SYN_SENT, and
    at least one question, answered by the step after it."""
    check_vocabulary(request.getfixturevalue(recorded))


def test_regex_ends_on_the_lecture_path_traversal(regex) -> None:  # type: ignore[no-untyped-def]
    """Issue 12's hook: the lecture opens "./html" + group(1), so GET /../web_server.py
    reads its own source; this server answered 403, as the last step says."""
    log = regex.timeline.log
    last_step = len(regex.steps) - 1
    answer = log[regex.at[last_step]]
    assert answer.kind == "response" and answer.data["path"] == scripts.TRAVERSAL_TARGET
    assert answer.data["status"] == 403
    request = next(log[i] for i in range(regex.at[last_step]) if log[i].kind == "request"
                   and log[i].data.get("path") == scripts.TRAVERSAL_TARGET)
    group = scripts.LECTURE_RE.match(str(request.data["head"]).split("\r\n", 1)[0]).group(1)
    assert group == scripts.TRAVERSAL_TARGET
    en, zh = regex.text(last_step), regex.text(last_step, "zh_CN")
    assert f"./html{group}" in en and f"./html{group}" in zh
    assert "403 Forbidden" in en and "403 Forbidden" in zh and "路径穿越" in zh


@pytest.mark.parametrize("name", ["static", "keep_alive", "regex"])
def test_every_step_fits_at_200_percent(qtbot, request, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Presentation layout at 200 %, both languages, 1280x720 and 1920x1080: no text cut,
    past its view's edge or on another text (measured against its box)."""
    found = unfit(qtbot, request.getfixturevalue(name), tmp_path)
    assert not found, "\n".join(found[:40])
