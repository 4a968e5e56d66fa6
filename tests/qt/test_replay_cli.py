"""``sockscope replay TRACE --view NAME`` with a view no window has: exit code 2
(README) and a message naming the views there are, never a window left open or a
picture written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.qt.test_keys import record
from visualizer.views import view_classes

ROOT = Path(__file__).resolve().parents[2]
VIEWS = [cls.name for cls in view_classes()]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("replay") / "run.jsonl")


def replay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "visualizer.cli", "replay", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("picture", [True, False], ids=["screenshot", "window"])
def test_an_unknown_view_exits_2_naming_the_views(trace: Path, tmp_path: Path,
                                                  picture: bool) -> None:
    assert len(VIEWS) >= 5 and "sequence" in VIEWS
    png = tmp_path / "shot.png"
    proc = replay(tmp_path, str(trace), "--view", "no-such-view",
                  *(["--screenshot", str(png)] if picture else []))
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    assert f"sockscope replay: no view named 'no-such-view' (views: {', '.join(VIEWS)})" \
        in proc.stderr, proc.stderr
    assert not png.exists()


def test_a_known_view_is_shown(trace: Path, tmp_path: Path) -> None:
    """The same command with a view that exists draws it and exits 0: the 2 above is the
    view's name, not the command."""
    png = tmp_path / "shot.png"
    proc = replay(tmp_path, str(trace), "--view", VIEWS[-1], "--screenshot", str(png))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert png.stat().st_size > 1000


def test_a_picture_leaves_nothing_in_the_temporary_folder(trace: Path, tmp_path: Path) -> None:
    """`replay --screenshot` and `lesson --screenshot` keep their throwaway settings in a
    temporary folder: written before it goes, not after (it came back, left in /tmp)."""
    own = tmp_path / "tmp"
    own.mkdir()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), QT_QPA_PLATFORM="offscreen",
               TMPDIR=str(own))
    for args in (["replay", str(trace), "--screenshot", str(tmp_path / "r.png")],
                 ["lesson", str(ROOT / "visualizer/lessons/files/template.toml"), "--step", "1",
                  "--screenshot", str(tmp_path / "l.png")]):
        done = subprocess.run([sys.executable, "-m", "visualizer.cli", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert sorted(p.name for p in own.iterdir()) == [], args[0]
