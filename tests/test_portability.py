"""macOS and Windows, as far as Linux can play them: an interpreter without the
POSIX-only modules Windows lacks (fcntl, resource, termios...), without epoll (macOS
and Windows have none) and without netlink. Every module the app and the engine
import must still import; the engine defaults to the portable selectors mode and
serves; the window greys epoll out and starts the engine in selectors mode."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, json, pkgutil, select, socket, sys
for name in ("fcntl", "resource", "termios", "pwd", "grp", "pty", "tty"):
    sys.modules[name] = None  # importing it raises ImportError, as on Windows
for name in [n for n in dir(select) if n.startswith("EPOLL")] + ["epoll"]:
    delattr(select, name)
if hasattr(socket, "AF_NETLINK"):
    delattr(socket, "AF_NETLINK")
sys.modules.pop("selectors", None)  # (loaded at start-up: it picks its selector anew)
out = {}
import engine, visualizer
failed = {}
for package in (engine, visualizer):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith(".__main__"):
            continue  # runs the program
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed[info.name] = repr(exc)
out["failed"] = failed

# The engine: its default mode, serving a real request on 127.0.0.1.
import http.client
from engine.server import ServerConfig, create_server
config = ServerConfig(host="127.0.0.1", port=0, root=sys.argv[1])
out["default_mode"] = config.mode
server = create_server(config).start()
try:
    c = http.client.HTTPConnection("127.0.0.1", server.address[1], timeout=10)
    c.request("GET", "/index.html")
    r = c.getresponse()
    out["status"], out["body"] = r.status, len(r.read())
    c.close()
finally:
    server.stop()

# The window: epoll greyed out, selectors chosen, even where epoll was saved.
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from visualizer.app import MODES, MainWindow, dispose
settings = QSettings(sys.argv[2], QSettings.Format.IniFormat)
settings.setValue("mode", "epoll (level)")
w = MainWindow(engine=False, settings=settings)
out["window_mode"] = w._saved_engine_settings().mode
model = w.mode_box.model()
out["disabled"] = [MODES[i][1] + "/" + MODES[i][2] for i in range(len(MODES))
                   if not model.item(i).isEnabled()]
out["tip"] = w.mode_box.itemData(w._mode_index("epoll"), 3) or ""  # Qt.ToolTipRole
dispose(w)

# The lessons: epoll's says why it cannot run; the others run in the selectors mode.
from pathlib import Path
from visualizer.lessons import all_lessons, prepare
lessons = all_lessons()
out["epoll_lesson"] = lessons["epoll"].needs()
prepared = prepare(lessons["first-request"], Path(sys.argv[3]))  # the test's tmp_path
log = prepared.timeline.log
out["lesson_modes"] = [log[int(i)].data["mode"] for i in log.indices(kinds=["mode"])]
print(json.dumps(out))
"""


def test_without_posix_only_modules_epoll_or_netlink(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "html"), str(tmp_path / "settings.ini"),
         str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # Only the epoll mode itself needs epoll; it is imported when chosen, never at start.
    assert not out["failed"], out["failed"]  # (epoll mode imports too: it is refused when run)
    assert out["default_mode"] == "selectors"
    # the page as it is on disk, whole
    assert out["status"] == 200 and out["body"] == (ROOT / "html" / "index.html").stat().st_size
    assert out["window_mode"] == "selectors"
    # (and gevent: Linux's build of it cannot load where the socket module lacks what
    # Linux has, as this imitation does; Windows and macOS have gevent builds of their own)
    assert [m for m in out["disabled"] if m != "gevent/level"] == ["epoll/level", "epoll/edge"]
    assert "kqueue" in out["tip"]
    available, why = out["epoll_lesson"]
    assert not available and "Linux" in why
    assert out["lesson_modes"] and set(out["lesson_modes"]) == {"selectors"}
