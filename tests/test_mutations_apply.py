"""The mutation list stays current: a change that moves the code one of its mutations
breaks (its text no longer in its file) fails here, at once, rather than in the next
mutation run, where it would only be counted as stale."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_mutation_still_applies_and_names_tests_that_exist() -> None:
    mutations = json.loads((ROOT / "tools" / "mutations.json").read_text(encoding="utf-8"))
    assert len(mutations) >= 100
    problems = []
    names = [m["name"] for m in mutations]
    problems += [f"{n}: named twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for m in mutations:
        text = (ROOT / m["file"]).read_text(encoding="utf-8")
        if text.count(m["old"]) != 1:
            problems.append(f"{m['name']}: its text occurs {text.count(m['old'])} times in "
                            f"{m['file']} (update it to the code as it is now)")
        if m["old"] == m["new"]:
            problems.append(f"{m['name']}: changes nothing")
        for test in m["tests"]:
            path, _, name = test.partition("::")
            if not (ROOT / path).exists():
                problems.append(f"{m['name']}: no test file {path}")
            elif name and f"def {name.split('[')[0]}(" not in (ROOT / path).read_text(
                    encoding="utf-8"):
                problems.append(f"{m['name']}: no test {name} in {path}")
    assert not problems, "\n".join(problems)
