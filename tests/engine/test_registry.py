"""One registry of modes (engine/modes/__init__.py) feeds the engine, the command line,
the tests and the window: a mode named there runs everywhere, one missing is nowhere."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import build_parser
from engine.modes import REGISTRY, mode, picture, variants
from engine.server import MODES, Server, ServerConfig, create_server
from tests.conftest import ALL_MODES

ROOT = Path(__file__).resolve().parents[2]
PICTURES = {"readiness", "threads", "sweep", "single", "coroutines", "processes"}  # the io view's


def test_every_entry_names_a_server_of_its_own() -> None:
    assert MODES == tuple(REGISTRY) and len(MODES) >= 7
    for name, spec in REGISTRY.items():
        cls = spec.load()
        assert issubclass(cls, Server) and cls.mode == name and cls._run is not Server._run
        assert spec.picture in PICTURES and spec.triggers and spec.section
        assert picture(name) == spec.picture
    assert picture("a mode from elsewhere") == ""
    assert [v for v in variants() if v[0] == "epoll"] == [("epoll", "level"), ("epoll", "edge")]
    assert set(ALL_MODES) == {v for v in variants() if REGISTRY[v[0]].available()[0]}


def test_the_command_line_offers_exactly_the_registry() -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    (choices,) = [a.choices for a in serve._actions if a.dest == "mode"]
    assert tuple(choices) == MODES
    done = subprocess.run([sys.executable, "-m", "engine", "serve", "--mode", "carrier-pigeon"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "invalid choice" in done.stderr and "single" in done.stderr


def test_an_unknown_or_unavailable_mode_is_refused_by_name(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError,
                       match="unknown mode 'x': choose one of single, processes, threaded"):
        ServerConfig(mode="x", port=0).check()
    with pytest.raises(ValueError, match="unknown mode"):
        mode("x")
    spec = REGISTRY["poll"]
    monkeypatch.setitem(REGISTRY, "poll", type(spec)(**{**spec.__dict__,
                        "available": lambda: (False, "this system has no poll()")}))
    with pytest.raises(ValueError, match="poll mode cannot run here: this system has no poll"):
        create_server(ServerConfig(mode="poll", port=0))


def test_the_trace_says_which_picture_to_draw() -> None:
    from engine import MemorySink, Probe
    for name in ("single", "select", "poll"):
        sink = MemorySink()
        probe = Probe("server")
        probe.add_sink(sink)
        server = create_server(ServerConfig(mode=name, port=0), probe).start()
        server.stop()
        (said,) = [e.data for e in sink.events if e.kind == "mode"]
        assert said["mode"] == name and said["picture"] == REGISTRY[name].picture
        assert said["multiplexer"] == (None if name == "single" else name)
