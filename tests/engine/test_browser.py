"""A real browser (headless Chromium) loads the default site in every mode."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ALL_MODES, MODE_IDS, running_server

SITE = Path(__file__).resolve().parents[2] / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must install Debian's chromium for the browser tests")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH "
                                "(Debian: apt-get install chromium)")


def resources_of(page: Path) -> set[str]:
    """The same-site URLs a page pulls in when it loads (not the links it offers)."""
    html = page.read_text(encoding="utf-8")
    found = set(re.findall(r'<(?:script|img)[^>]*\ssrc="(/[^"]*)"', html))
    found |= set(re.findall(r'<link[^>]*\shref="(/[^"]*)"', html))
    return found


def load_in_chromium(url: str, profile: Path) -> str:
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
         "--virtual-time-budget=3000", "--dump-dom", url],
        capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("mode,trigger", ALL_MODES, ids=MODE_IDS)
def test_chromium_loads_index_with_every_resource(mode: str, trigger: str, tmp_path: Path) -> None:
    wanted = resources_of(SITE / "index.html")
    assert {"/css/style.css", "/js/app.js", "/favicon.ico"} <= wanted
    with running_server(mode, trigger) as (server, sink):
        dom = load_in_chromium(server.url, tmp_path / "profile")
        assert sink.wait_for(lambda evs: wanted - {"/favicon.ico"} <= {
            e.data["path"] for e in evs if e.kind == "response"}, 10)
    assert "SockScope" in dom
    # app.js ran in the browser and wrote into the page.
    assert "(needs JavaScript)" not in dom
    answers = {e.data["path"]: e.data["status"] for e in sink.of_kind("response")}
    # Headless Chromium may skip the favicon; everything else must have been fetched.
    for path in wanted - {"/favicon.ico"}:
        assert answers.get(path) == 200, f"{path}: {answers.get(path)}"
    assert all(status == 200 for status in answers.values()), answers
    accepted = len(sink.of_kind("accept"))
    assert accepted >= 1
