"""The http view: a request's bytes, the lecture's expression and the parser, its answer."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.events import Event
from visualizer.model import EventLog, Timeline, open_trace
from visualizer.views.http import HttpView

ROOT = Path(__file__).resolve().parents[2]
CONN = "127.0.0.1:50000>127.0.0.1:7890"
OTHER = "127.0.0.1:50001>127.0.0.1:7890"


def ev(seq: int, kind: str, conn: str = CONN, **data) -> Event:  # type: ignore[no-untyped-def]
    return Event(seq, seq * 1000, "server", kind, conn, 7, 1, data)


def exchange_events() -> list[Event]:
    head1 = "GET /index.html HTTP/1.1\r\nHost: x\r\nuSeR-agent:   odd  \r\n\r\n"
    head2 = "GET http://127.0.0.1:7890/robots.txt HTTP/1.1\r\nHost: y\r\n\r\n"
    return [
        ev(1, "accept", peer="127.0.0.1:50000"),
        ev(2, "request", method="GET", path="/index.html", version="1.1", keep_alive=True,
           head=head1),
        ev(3, "response", status=200, length=300, path="/index.html",
           head="HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n", preview="<!doctype html>"),
        ev(4, "request", method="GET", path="http://127.0.0.1:7890/robots.txt", version="1.1",
           keep_alive=False, head=head2),
        ev(5, "accept", OTHER, peer="127.0.0.1:50001"),
        ev(6, "request", OTHER, method="GET", path="/", version="1.0", keep_alive=False,
           head="GET / HTTP/1.0\r\n\r\n"),
        ev(7, "response", status=200, length=20, path="http://127.0.0.1:7890/robots.txt",
           head="HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", preview="User-agent: *"),
    ]


def test_request_cut_by_the_lecture_and_the_parser(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = HttpView()
    qtbot.addWidget(view)
    timeline = Timeline(EventLog(exchange_events()))
    timeline.live = False
    timeline.seek(0)
    view.show_state(timeline)
    assert view.exchange is None and "No request" in view.heading.text()
    timeline.seek(1)  # the first request, not yet answered
    view.show_state(timeline)
    ex = view.exchange
    assert ex is not None and ex.request_line == "GET /index.html HTTP/1.1"
    assert ex.regex_group == "/index.html" and ex.agree
    assert ex.headers == [("Host", "x"), ("uSeR-agent", "odd")]  # the bytes as sent
    assert ex.status is None and "not answered" in view.response_box.toPlainText()
    assert "\\r\\n" in view.request_box.toPlainText()  # CR LF made visible
    timeline.seek(2)
    view.show_state(timeline)
    assert view.exchange.status == 200 and "<!doctype html>" in view.response_box.toPlainText()
    assert "285 bytes more" in view.response_box.toPlainText()
    # An absolute-form target: the expression and the parser part ways.
    timeline.seek(3)
    view.show_state(timeline)
    ex = view.exchange
    assert ex.number == 2 and ex.regex_group == "//127.0.0.1:7890/robots.txt"
    assert not ex.agree and "they differ" in view.compare_label.text()
    # Selecting the other connection shows its request; "/" is the lecture's index.html.
    timeline.seek(6)
    view.select(OTHER)
    assert view.exchange.conn == OTHER and view.exchange.agree
    assert "./html/index.html" in view.compare_label.text()
    view.select(None)
    assert view.exchange.conn == OTHER  # the latest request overall
    view.select(CONN)
    assert view.exchange.status == 200 and "User-agent" in view.exchange.preview
    # Stepping back un-draws.
    timeline.seek(0)
    view.show_state(timeline)
    assert view.exchange is None


def test_live_request_bytes_and_answer(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.jsonl"
    subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--states", "off",
                    "--packets", "off", "--load=--clients 1 --requests 2 --path /index.html",
                    "--exit-after-load", "--trace", str(trace)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    timeline, _, _ = open_trace(trace)
    view = HttpView()
    qtbot.addWidget(view)
    view.resize(1280, 720)
    view.show_state(timeline)
    ex = view.exchange
    assert ex is not None and ex.number == 2 and ex.of == 2
    assert ex.request_line.startswith("GET /index.html HTTP/1.1") and ex.agree
    assert ex.head.endswith("\r\n\r\n") and any(n.lower() == "host" for n, _ in ex.headers)
    body = (ROOT / "html" / "index.html").read_bytes()
    assert ex.status == 200 and ex.length == len(body)
    assert ex.response_head.startswith("HTTP/1.1 200 OK")
    assert f"Content-Length: {len(body)}" in ex.response_head
    assert ex.preview == body[:64].decode("latin-1")
    png, svg = tmp_path / "http.png", tmp_path / "http.svg"
    view.export(png)
    view.export(svg)
    assert png.stat().st_size > 5000
    assert "index.html" in svg.read_text(encoding="utf-8", errors="replace")


def test_a_cramped_view_gives_the_parsed_headers_room_to_the_bytes(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A projector at 200 % on 1280x720: three boxes would wrap every line after a few
    characters; the parsed headers (the bytes show them too) step aside."""
    from visualizer.views import style
    view = HttpView()
    qtbot.addWidget(view)
    view.resize(1280, 720)
    view.show()
    timeline = Timeline(EventLog(exchange_events()))
    timeline.live = False
    timeline.seek(2)
    view.show_state(timeline)
    assert view.columns == 3 and view.headers_box.isVisible()
    narrow = view.request_box.width()
    try:
        style.set_zoom(2.0)
        view.apply_theme()
        view.show_state(timeline)
        assert view.columns == 2
        assert not view.headers_box.isVisible() and not view.titles[1].isVisible()
        assert view.request_box.isVisible() and view.response_box.isVisible()
        # the bytes got the room (once the layout has run)
        qtbot.waitUntil(lambda: view.request_box.width() > narrow * 1.3, timeout=3000)
        assert "Host" in view.request_box.toPlainText()  # and still show the headers
    finally:
        style.set_zoom(1.0)
        view.apply_theme()
    assert view.columns == 3 and view.headers_box.isVisible()


def test_a_refused_request_shows_its_bytes_and_the_parsers_reason(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A real server refuses garbage with 400 and serves on: the view shows the refused
    bytes, the parser's reason and the 400; the next good request takes its place."""
    import socket
    from tests.conftest import read_to_eof, running_server
    view = HttpView()
    qtbot.addWidget(view)
    with running_server("epoll") as (server, sink):
        with socket.create_connection(server.address[:2], timeout=10) as bad:
            bad.sendall(b"GARBAGE\r\n\r\n")
            answer = read_to_eof(bad)
        assert answer.startswith(b"HTTP/1.1 400")
        with socket.create_connection(server.address[:2], timeout=10) as good:
            good.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_to_eof(good).startswith(b"HTTP/1.1 200")
        assert sink.wait_for(lambda ev: sum(e.kind == "response" for e in ev) >= 2, 10)
    events = list(sink.events)
    timeline = Timeline(EventLog(events))
    timeline.live = False
    log = timeline.log
    refused = next(i for i in range(len(log)) if log[i].kind == "error"
                   and "status" in log[i].data)
    answered = next(i for i in range(refused, len(log)) if log[i].kind == "response")
    timeline.seek(answered)
    view.show_state(timeline)
    ex = view.exchange
    assert ex is not None and ex.refused and ex.status == 400
    assert ex.request_line == "GARBAGE" and ex.regex_group is None  # the lecture's: no match
    assert "GARBAGE" in view.request_box.toPlainText()
    assert "Refused with 400" in view.heading.text()
    assert "refused" in view.compare_label.text() and "400" in view.response_box.toPlainText()
    timeline.seek(len(log) - 1)  # the good request after it
    view.show_state(timeline)
    assert not view.exchange.refused and view.exchange.path == "/index.html"
    assert view.exchange.status == 200


def test_zoomed_in_on_a_small_screen_the_words_do_not_overlap(qtbot) -> None:  # type: ignore[no-untyped-def]
    """300 % on a 1280x720 slide: the type is set smaller (never below 100 %) until the
    heading, the expression and the comparison each get their whole height."""
    from visualizer.views import style
    view = HttpView()
    qtbot.addWidget(view)
    timeline = Timeline(EventLog(exchange_events()))
    timeline.live = False
    timeline.seek(2)
    try:
        style.set_zoom(3.0)
        view.apply_theme()
        view.resize(1268, 470)
        view.show()
        view.show_state(timeline)
        qtbot.waitUntil(lambda: view.request_box.height() > 0, timeout=2000)
        qtbot.wait(50)  # the layout has run
        assert 1 / 3 - 1e-9 <= view.type_factor < 1
        labels = (view.heading, view.regex_label, view.compare_label)
        for label in labels:
            assert label.height() >= label.heightForWidth(label.width()) - 1, label.text()
        for upper, lower in zip(labels, labels[1:]):
            assert upper.geometry().bottom() < lower.geometry().top()
    finally:
        style.set_zoom(1.0)
        view.apply_theme()
    assert view.type_factor == 1.0


def test_an_answer_whose_send_failed_says_it_was_not_delivered(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = HttpView()
    qtbot.addWidget(view)
    events = exchange_events()[:3] + [
        ev(4, "error", what="reset", detail="send: Connection reset by peer")]
    timeline = Timeline(EventLog(events))
    timeline.live = False
    timeline.seek(2)  # the answer queued, its fate not yet known
    view.show_state(timeline)
    assert view.exchange.status == 200 and not view.exchange.undelivered
    assert "not delivered" not in view.response_box.toPlainText()
    timeline.seek(3)
    view.show_state(timeline)
    assert view.exchange.undelivered == "send: Connection reset by peer"
    assert "not delivered: the client had gone" in view.response_box.toPlainText()


def test_a_browser_revisiting_the_site_shows_its_304s(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """HTTP caching as a lecturer shows it: headless Chromium loads the demo site, then
    comes back with the same profile. The second visit asks again (the server says
    ``Cache-Control: no-cache``) with the validators it kept, and gets 304s; the http
    view shows one with its If-None-Match and says what it means."""
    import os
    import shutil

    import pytest

    from tests.conftest import running_server
    from tests.engine.test_browser import CHROMIUM, load_in_chromium
    if CHROMIUM is None:
        if os.environ.get("CI"):
            raise AssertionError("CI must install Debian's chromium")
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    assert shutil.which(CHROMIUM)
    with running_server("epoll") as (server, sink):
        load_in_chromium(server.url, tmp_path / "profile")
        first = len(sink.of_kind("response"))
        assert first >= 3
        load_in_chromium(server.url, tmp_path / "profile")
        assert sink.wait_for(lambda evs: any(
            e.kind == "response" and e.data["status"] == 304 for e in evs), 10)
        events = list(sink.events)
    answers = [e.data for e in events if e.kind == "response"]
    assert all(a["status"] == 200 for a in answers[:first]), answers[:first]
    revisit = answers[first:]
    assert revisit and all(a["status"] in (200, 304) for a in revisit), revisit
    not_modified = [a for a in revisit if a["status"] == 304]
    assert {a["path"] for a in not_modified} & {"/css/style.css", "/js/app.js"}, revisit
    timeline = Timeline(EventLog(events))
    timeline.live = False
    at = next(i for i, e in enumerate(events)
              if e.kind == "response" and e.data["status"] == 304)
    timeline.seek(at)
    view = HttpView()
    qtbot.addWidget(view)
    view.resize(1280, 720)
    view.show_state(timeline)
    ex = view.exchange
    assert ex is not None and ex.status == 304 and ex.length == 0
    assert any(n.lower() in ("if-none-match", "if-modified-since") for n, _ in ex.headers)
    shown = view.response_box.toPlainText()
    assert "Not Modified" in shown and "HTTP caching" in shown and "ETag:" in shown
