"""The window's channel to an engine elsewhere (``serve --control HOST:PORT``): the
same interface as the child process's channel. A real engine, real sockets."""
from __future__ import annotations

import time

from tests.engine import test_control
from tests.engine.test_control import QUIET, get
from visualizer.channel import SocketChannel
from visualizer.host import URL_RE

# The control tests' fixtures: engines started with a control port, killed at the end.
engine, engines = test_control.engine, test_control.engines


def _until(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_socket_channel_streams_events_sends_commands_and_sees_the_end(engine) -> None:
    e = engine("--control", ":0", "--step", *QUIET)
    channel = SocketChannel(e.host, e.port, e.token)
    try:
        channel.send("c")  # before the engine accepted: sent once it does
        assert channel.attached.wait(10) and channel.exit_code is None
        assert channel.header is not None and channel.header["url"] == e.url
        assert any((m := URL_RE.search(line)) and m.group(1) == e.url
                   for line in channel.messages)  # where host.py reads the engine's URL
        assert get(e.url) == 200  # "c" arrived: nothing is held
        assert _until(lambda: any(ev.kind == "response" for ev in list(channel.events)))
        kinds = [ev.kind for ev in channel.drain()]
        assert kinds[:2] == ["mode", "listen"] and channel.bad_lines == 0
        channel.send("q")
        assert e.proc.wait(15) == 0
        assert _until(lambda: channel.exit_code == 0)
        assert any("thread_exit" == ev.kind for ev in channel.drain(limit=10**9))
    finally:
        channel.stop()


def test_socket_channel_stop_only_detaches_and_a_wrong_token_is_exit_1(engine) -> None:
    e = engine("--control", ":0", *QUIET)
    channel = SocketChannel(e.host, e.port, e.token)
    assert channel.attached.wait(10)
    channel.stop()
    assert e.wait_for("control: 127.0.0.1:").endswith("attached")
    assert "detached" in e.wait_for("control: 127.0.0.1:")
    assert e.proc.poll() is None and get(e.url) == 200  # the engine runs on
    start = time.monotonic()
    wrong = SocketChannel(e.host, e.port, "z" * 20)
    assert time.monotonic() - start < 0.5  # never blocks its caller (the window)
    assert _until(lambda: wrong.exit_code == 1)
    assert wrong.refused == "token" and not wrong.attached.is_set()
    assert any("refused" in m for m in wrong.messages)
    wrong.send("q")  # nowhere to go: ignored
    wrong.stop()
    assert e.proc.poll() is None
