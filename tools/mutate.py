"""Break the product one line at a time and check that the tests that guard it fail.

Each mutation in ``tools/mutations.json`` names a file, an exact piece of its text
(found exactly once), what to put in its place, and the tests that must catch it:

    {"name": "no 408 after the header timeout", "file": "engine/connection.py",
     "old": "...", "new": "...", "tests": ["tests/engine/test_promises.py::test_408"]}

The repository is copied once into a scratch folder (the working tree is never
touched); for each mutation the file is broken there, the named tests run (``pytest
-x``, bounded by ``--timeout``), and the file is put back. A mutation the tests catch
is *killed*; one they pass with is a *survivor*: a promise no test keeps. A mutation
whose text is no longer in its file is *stale* (the code moved on: update it). A
survivor no test can catch says why in ``"survives"``: it is listed as *known*, with
its reason, and does not fail the run.

    python3 tools/mutate.py                 # every mutation; exit 1 if any survives
    python3 tools/mutate.py --only 408      # those whose name contains "408"
    python3 tools/mutate.py --list          # what would run
    python3 tools/mutate.py --json OUT.json # the results, for a report

Run it after changing a promise or its tests; the README's development section says
what the last run found.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTATIONS = ROOT / "tools" / "mutations.json"


def load(path: Path) -> list[dict]:
    items = json.loads(path.read_text(encoding="utf-8"))
    for k, m in enumerate(items):
        missing = {"name", "file", "old", "new", "tests"} - set(m)
        if missing:
            raise SystemExit(f"{path}: mutation {k + 1} lacks {', '.join(sorted(missing))}")
        if m["old"] == m["new"]:
            raise SystemExit(f"{path}: mutation {m['name']!r} changes nothing")
    return items


def copy_tree(dest: Path) -> None:
    """The repository without .git and build leftovers, into ``dest``."""
    skip = {".git", "build", ".pytest_cache", "__pycache__"}
    with tempfile.TemporaryFile() as buffer:
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(ROOT, arcname=".",
                    filter=lambda info: None if set(Path(info.name).parts) & skip else info)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer, mode="r") as tar:
            tar.extractall(dest, filter="data")


def run_one(scratch: Path, m: dict, timeout: float) -> tuple[str, float, str]:
    """(verdict, seconds, the tests' last line): killed, survived, stale or timeout."""
    target = scratch / m["file"]
    try:
        original = target.read_text(encoding="utf-8")
    except OSError as exc:
        return "stale", 0.0, f"{m['file']}: {exc.strerror}"
    if original.count(m["old"]) != 1:
        return "stale", 0.0, f"the text occurs {original.count(m['old'])} times in {m['file']}"
    target.write_text(original.replace(m["old"], m["new"]), encoding="utf-8")
    start = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p",
                               "no:cacheprovider", *m["tests"]], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=timeout)
        last = (done.stdout.strip().splitlines() or [""])[-1]
        verdict = "killed" if done.returncode != 0 else "survived"
        if done.returncode in (4, 5):  # a usage error or no test collected: not a verdict
            verdict, last = "stale", f"pytest exit {done.returncode}: {last}"
    except subprocess.TimeoutExpired:
        verdict, last = "timeout", f"the tests ran past {timeout:g} s (counted as killed)"
    finally:
        target.write_text(original, encoding="utf-8")
    return verdict, time.monotonic() - start, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutations", type=Path, default=MUTATIONS)
    parser.add_argument("--only", default=None, help="only mutations whose name contains this")
    parser.add_argument("--list", action="store_true", help="list them and exit")
    parser.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                        help="per mutation's tests (default 600)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="write the results as JSON")
    args = parser.parse_args(argv)
    items = [m for m in load(args.mutations)
             if args.only is None or args.only.lower() in m["name"].lower()]
    if args.list:
        for m in items:
            print(f"{m['name']}\n    {m['file']}  ->  {' '.join(m['tests'])}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="sockscope-mutate-") as tmp:
        scratch = Path(tmp)
        copy_tree(scratch)
        for k, m in enumerate(items, 1):
            verdict, seconds, last = run_one(scratch, m, args.timeout)
            results.append({"name": m["name"], "file": m["file"], "verdict": verdict,
                            "seconds": round(seconds, 1), "tests": m["tests"], "said": last})
            if verdict == "survived" and m.get("survives"):
                verdict = "known"
            print(f"[{k}/{len(items)}] {verdict:8} {seconds:6.1f} s  {m['name']}", flush=True)
            if verdict == "known":
                results[-1]["verdict"] = "known"
                print(f"    known survivor: {m['survives']}", flush=True)
            elif verdict in ("survived", "stale"):
                print(f"    {last}", flush=True)
        shutil.rmtree(scratch / ".pytest_cache", ignore_errors=True)
    counts = {v: sum(r["verdict"] == v for r in results)
              for v in ("killed", "timeout", "survived", "known", "stale")}
    print(f"{len(results)} mutations: {counts['killed']} killed, {counts['timeout']} timed out "
          f"(killed), {counts['survived']} survived, {counts['known']} known survivors, "
          f"{counts['stale']} stale")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "results": results}, indent=1,
                                        ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if counts["survived"] or counts["stale"] else 0


if __name__ == "__main__":
    sys.exit(main())
