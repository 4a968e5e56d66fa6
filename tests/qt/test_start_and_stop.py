"""What a newcomer meets first, as real processes: no display, Ctrl+C and SIGTERM, the
help, and renders that say nothing about Qt's offscreen platform."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "tests" / "data" / "v1-selectors.jsonl"


def sockscope(*args: str, env: dict | None = None, timeout: float = 60
              ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visualizer.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def headless(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland are Linux's")
@pytest.mark.parametrize("args", [[], ["window"], ["lesson", "first-request"],
                                  ["replay", str(TRACE)], ["compare", "--window"]])
def test_without_a_display_it_says_so_and_exits_1(tmp_path: Path, args: list[str]) -> None:
    done = sockscope(*args, env=headless(tmp_path), timeout=30)
    assert done.returncode == 1, (done.returncode, done.stderr[-500:])  # not 134, no core
    assert "there is no display" in done.stderr and "sockscope serve" in done.stderr
    assert "QT_QPA_PLATFORM=offscreen" in done.stderr and "Traceback" not in done.stderr


def test_a_picture_needs_no_display_and_says_nothing_of_qt(tmp_path: Path) -> None:
    out = tmp_path / "replay.png"
    done = sockscope("replay", str(TRACE), "--screenshot", str(out), env=headless(tmp_path))
    assert done.returncode == 0 and out.exists(), done.stderr
    assert "propagateSizeHints" not in done.stderr and done.stderr.strip() == ""


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for children")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_end_the_window_and_its_engine(tmp_path: Path, signum: int) -> None:
    # (PYTHONFAULTHANDLER: if the window hangs, SIGABRT makes it print every thread's stack)
    env = dict(headless(tmp_path), QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, "-m", "visualizer.cli"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        engines = _children(proc.pid)
        assert engines, "the window started no engine"
        time.sleep(1.0)  # the window at rest, its engine serving
        sent = time.monotonic()
        proc.send_signal(signum)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # where it hangs: every thread's stack
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"the window did not end within 20 s of the signal:\n{err[-6000:]}")
        assert time.monotonic() - sent < 10, err[-800:]
        assert proc.returncode == 0 and "Traceback" not in err, (proc.returncode, err[-800:])
        alive = [pid for pid in engines if os.path.exists(f"/proc/{pid}")]
        assert not alive, (alive, err[-800:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_help_names_every_command_and_lessons_has_a_usage() -> None:
    done = sockscope("--help", timeout=30)
    assert done.returncode == 0
    for command in ("serve", "load", "compare", "idle", "export", "import", "lessons",
                    "lesson NAME", "replay TRACE", "compare --window"):
        assert command in done.stdout, command
    usage = sockscope("lessons", "--help", timeout=30)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: sockscope lessons")
    assert "first-request" not in usage.stdout  # a usage, not the list


def test_lessons_says_how_many_steps_each_has() -> None:
    """The count is what this machine's recording gives (every lesson's fit test checks
    its recording against it)."""
    from visualizer.lessons import all_lessons
    listed = sockscope("lessons", timeout=30)
    assert listed.returncode == 0
    counts = {line.split()[0]: int(line.split()[2]) for line in listed.stdout.splitlines()
              if line.split()[3:4] == ["steps"]}
    assert counts == {name: lesson.count() for name, lesson in all_lessons().items()}
    assert counts["first-request"] == 10 and min(counts.values()) >= 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal")
def test_a_killed_window_takes_its_engine_with_it(tmp_path: Path) -> None:
    """SIGKILL runs no handler: the engine is told by the kernel (PR_SET_PDEATHSIG)."""
    env = dict(headless(tmp_path), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "visualizer.cli"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not _children(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    engines = _children(proc.pid)
    assert engines, "the window started no engine"
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") for p in engines) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{p}") for p in engines)


def test_renders_leave_the_users_settings_alone_and_come_out_the_same_size(
        qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A command-line picture never writes the user's settings (language, mode, window
    geometry), and the same command gives the same size of picture every time, whatever
    the window was left at."""
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QMainWindow
    config = tmp_path / "SockScope"
    config.mkdir()
    left = QMainWindow()  # a window the user left at 830 x 774
    qtbot.addWidget(left)
    left.resize(830, 774)
    left.show()
    for name in ("SockScope", "SockScope-replay", "SockScope-lesson"):
        user = QSettings(str(config / f"{name}.conf"), QSettings.Format.IniFormat)
        user.setValue("language", "zh_CN")
        user.setValue("mode", "poll")
        user.setValue("geometry", left.saveGeometry())
        user.sync()
    before = {p.name: p.read_bytes() for p in config.iterdir()}
    env = headless(tmp_path)  # XDG_CONFIG_HOME: this folder, the "user's"
    env["QT_QPA_PLATFORM"] = "offscreen"
    sizes = []
    for k in range(2):
        out = tmp_path / f"replay{k}.png"
        done = sockscope("replay", str(TRACE), "--screenshot", str(out), env=env)
        assert done.returncode == 0, done.stderr
        image = QImage(str(out))
        sizes.append((image.width(), image.height()))
    assert sizes[0] == sizes[1] == (1280, 800)
    out = tmp_path / "lesson.png"
    done = sockscope("lesson", "first-request", "--step", "2", "--lang", "en", "--zoom", "150",
                     "--theme", "dark", "--screenshot", str(out), env=env, timeout=120)
    assert done.returncode == 0 and out.exists(), done.stderr
    after = {p.name: p.read_bytes() for p in config.iterdir()}
    assert after == before  # nothing written, nothing added
