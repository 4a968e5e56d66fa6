"""Architecture contracts, checked by import-linter (configured in pyproject.toml)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" in proc.stdout and "0 broken" in proc.stdout
    # Every contract in pyproject.toml was checked, and kept. (Read without tomllib:
    # Python 3.10 has none.)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    names = [re.search(r'^name = "(.+)"$', c, re.M).group(1)  # type: ignore[union-attr]
             for c in text.split("[[tool.importlinter.contracts]]")[1:]]
    assert len(names) >= 4
    for name in names:
        assert any(line.startswith(f"{name} KEPT") for line in proc.stdout.splitlines()), \
            f"{name!r} not reported kept:\n{proc.stdout}"
    assert f"Contracts: {len(names)} kept, 0 broken." in proc.stdout
