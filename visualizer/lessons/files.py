"""Lesson files: a lesson written as text (TOML) that anyone can copy and change.

A lesson file says, in plain data, what ``visualizer/lessons/*.py`` says in code for the
lessons that need a script of their own: the engine's settings, the clients that run
against it, what the recording must show, and the steps, each anchored to an event by
what it is ("the first SYN", "the server's close of connection 2", "the first EAGAIN"),
never by its number in the log (a number changes from run to run). ``sockscope lessons
--template`` prints a commented one that runs as is; the format is described there and
in the README.

Errors name the file, the line and what is wrong (``LessonFileError``): a file is read
whole and checked before anything runs.
"""
from __future__ import annotations

import dataclasses
import re
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.events import KINDS, Event

from ..model import EventLog
from ..model.text import header_value
from .base import Lesson, LessonError, Step, Text, first_fin_side, sender

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FORMAT = 1
FILES = Path(__file__).resolve().parent / "files"  # the built-in lessons written as files
TEMPLATE = FILES / "template.toml"
VIEWS = ("sequence", "sockets", "io", "lifecycle", "plots", "http", "diagram")
LANGS = ("en", "zh_CN")
_ZH = {0: "零", 1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八",
       9: "九", 10: "十"}


class LessonFileError(LessonError):
    """A lesson file that cannot be used: ``path:line: what is wrong``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = Path(path), line, message
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------- where keys are
class _Lines:
    """The line of each table and key in a TOML text, so that a value found wrong after
    parsing is reported where it was written. Tables of an array (``[[steps]]``) are
    numbered in order; keys inside an inline table are found on their key's line."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
    _PART = r"(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')"
    KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")

    def __init__(self, text: str) -> None:
        self.where: dict[tuple, int] = {}
        counts: dict[tuple, int] = {}
        table: tuple = ()
        inside: str | None = None  # the quotes of a multi-line string being read
        for number, line in enumerate(text.splitlines(), 1):
            if inside is not None:  # a caption's lines are not TOML's
                if line.count(inside) % 2:
                    inside = None
                continue
            for quotes in ('"""', "'''"):
                if line.count(quotes) % 2:
                    inside = quotes
                    break
            head = self.HEADER.match(line)
            if head and not self.KEY.match(line):
                parts = tuple(p.strip().strip("\"'") for p in head.group(2).split("."))
                if head.group(1) == "[[":
                    base = self._resolve(parts[:-1], table)
                    key = base + (parts[-1],)
                    counts[key] = counts.get(key, -1) + 1
                    table = key + (counts[key],)
                else:
                    table = self._resolve(parts, table)
                self.where.setdefault(table, number)
                continue
            key = self.KEY.match(line)
            if key:
                parts = tuple(part.strip().strip("\"'")
                              for part in re.findall(self._PART, key.group(1)))
                for k in range(1, len(parts) + 1):  # a.b = 1: a's line too
                    self.where.setdefault(table + parts[:k], number)

    def _resolve(self, parts: tuple, current: tuple) -> tuple:
        """``[steps.ask]`` inside the third ``[[steps]]`` is ("steps", 2, "ask")."""
        out: tuple = ()
        for part in parts:
            out += (part,)
            # the latest element of an array of tables this path names, if any
            for candidate in range(len(current), 0, -1):
                if current[:candidate - 1] == out and isinstance(current[candidate - 1], int):
                    out = current[:candidate]
                    break
        return out

    def line(self, *path: Any) -> int | None:
        """The line of ``path`` (a key or a table), else of its nearest enclosing table."""
        path = tuple(path)
        while path:
            if path in self.where:
                return self.where[path]
            if path + (0,) in self.where:  # an array of tables: its first
                return self.where[path + (0,)]
            path = path[:-1]
        return None


# ---------------------------------------------------------------- anchors
# What an anchor may say besides the event's own data fields.
_ANCHOR_KEYS = {"kind", "src", "conn", "nth", "after", "before", "flags_has", "sender",
                "moment", "not", "largest", "has_header", "lacks_header", "from",
                "other_than", "first_of_each", "most_held", "median", "ready_has",
                "none_held", "repeats", "same_as_first", "last_of_each", "keep"}
_KINDS = frozenset(KINDS) | {"end", "any"}  # the engine's events, the log's end, any event
SOURCES = ("server", "client", "kernel", "capture", "engine")  # who emits events
_NAME = re.compile(r"[a-z][a-z0-9_]*")  # a moment's or a fact's name
Moments = dict  # a moment's name -> its log index (None: the recording has none)


@dataclass(frozen=True)
class Anchor:
    """An event found by what it is: its kind, who emitted it, the connection it
    belongs to (numbered from 1 in the order connections first appear, or the
    connection of a named moment), fields of its data (a value, or a range
    ``{ min = 1 }``), where it lies (after the previous step or after named moments,
    before a named moment), and which of the matching events (``nth`` from 1; -1 the
    last)."""
    kind: str | tuple  # a kind, "any", "end", or several kinds (any of them)
    src: str | tuple | None = None  # a source, or several (any of them)
    conn: int | str | None = None
    nth: int = 1
    after: bool | tuple = False  # True: after the previous step's event; names: moments
    before: str | None = None  # a moment's name: only events before it
    flags_has: str | None = None
    sender: str | None = None  # a segment's sending end: "client" or "server"
    fields: tuple = ()  # (name, value): the event's data must hold these
    ranges: tuple = ()  # (name, low or None, high or None): a number within
    moment: str | None = None  # only that moment's event (if the other keys hold for it)
    excluded: tuple = ()  # (name, values): the event's field must be none of these
    largest: str | tuple | None = None  # of the matches, the first whose field is largest
    # (several fields: the largest by the first, ties by the next)
    headers: tuple = ()  # (name, wanted, text or None): its HTTP head holds that header
    # (holding that text), or lacks it
    since: str | tuple | None = None  # moments' names: only events from the latest on
    other_than: str | None = None  # a moment's name: only events of another connection
    first_of_each: str | None = None  # "conn" (or a field): each one's first match only
    texts: tuple = ()  # (name, prefix, contained, pattern; each or None): a text's shape
    most_held: "Peak | None" = None  # of the matches, those when the most were held
    median: str | None = None  # of the matches, the first whose field is their low median
    ready_has: str | None = None  # a moment's name: a ready list that holds its fd
    repeats: str | None = None  # only a match whose connection had one with this value before
    same_as_first: str | None = None  # only matches with the first match's value of this
    last_of_each: str | None = None  # each value's last match (then tested by keep)
    keep: tuple = ()  # (name, value): what each one's last match must hold
    none_held: "Peak | None" = None  # only events after which none are held (it counted)

    def names(self) -> list[str]:
        """The moments this anchor stands on."""
        out = [self.conn] if isinstance(self.conn, str) else []
        out += [self.moment] if self.moment else []
        out += [self.since] if isinstance(self.since, str) else list(self.since or ())
        out += [m for m in (self.other_than, self.ready_has) if m]
        out += self.most_held.names() if self.most_held else []
        out += self.none_held.names() if self.none_held else []
        out += list(self.after) if isinstance(self.after, tuple) else []
        return out + ([self.before] if self.before else [])

    def find(self, log: EventLog, previous: int = -1, moments: Moments | None = None
             ) -> int | None:
        if self.kind == "end":
            return len(log) - 1 if len(log) else None
        if self.most_held or self.median or self.largest or self.none_held:
            return self._pick(log, list(self.every(log, previous, moments)), moments)
        want = self.nth if self.nth > 0 else None
        matches = []
        for i in self.every(log, previous, moments):
            matches.append(i)
            if want is not None and len(matches) >= want:
                return i
        if want is None and len(matches) >= -self.nth:
            return matches[self.nth]
        return None

    def _pick(self, log: EventLog, matches: list[int], moments: Moments | None) -> int | None:
        """``most_held``, then ``largest``, then ``median``, each narrowing the matches;
        the first left (``nth`` of those left when none of the others is given)."""
        if self.none_held and matches:
            after = self.none_held.held(log, [i + 1 for i in matches], moments)
            matches = [i for i, n in zip(matches, after) if n == 0]
        if self.most_held and matches:
            held = self.most_held.held(log, matches, moments)
            most = max(held)
            matches = [i for i, n in zip(matches, held) if n == most]
        if self.largest and matches:  # by the first field, ties by the next...
            fields = (self.largest,) if isinstance(self.largest, str) else self.largest
            keys = []
            for i in matches:
                numbers = [_number(log[i].data.get(f)) for f in fields]
                keys.append(None if numbers[0] is None else
                            tuple(float("-inf") if n is None else n for n in numbers))
            top = max((k for k in keys if k is not None), default=None)
            matches = [i for i, k in zip(matches, keys) if k is not None and k == top]
        if self.median and matches:
            import statistics
            values = [_number(log[i].data.get(self.median)) for i in matches]
            known = [v for v in values if v is not None]
            if not known:
                return None
            middle = statistics.median_low(known)
            matches = [i for i, v in zip(matches, values) if v == middle]
        if not matches:
            return None
        if self.median or self.largest:
            return matches[0]
        k = self.nth - 1 if self.nth > 0 else self.nth
        return matches[k] if -len(matches) <= k < len(matches) else None

    def count(self, log: EventLog, moments: Moments | None = None) -> int:
        """How many events match (``nth`` aside)."""
        return sum(1 for _ in self.matching(log, moments))

    def matching(self, log: EventLog, moments: Moments | None = None) -> Iterator[int]:
        """Every match, ``none_held`` applied (``nth``, largest, median aside)."""
        if self.none_held is None:
            yield from self.every(log, -1, moments)
            return
        found = list(self.every(log, -1, moments))
        after = self.none_held.held(log, [i + 1 for i in found], moments)
        yield from (i for i, n in zip(found, after) if n == 0)

    def every(self, log: EventLog, previous: int = -1, moments: Moments | None = None
              ) -> Iterator[int]:
        """Each matching event's index, in order (none when a moment it names is not in
        the recording)."""
        moments = moments or {}
        conn = None
        if self.conn is True:  # any event that belongs to a connection
            every = dataclasses.replace(self, conn=None)
            yield from (i for i in every.every(log, previous, moments)
                        if log[i].conn is not None)
            return
        if isinstance(self.conn, str):
            at = moments.get(self.conn)
            if at is None or log[at].conn is None:
                return
            conn = log[at].conn
        elif self.conn is not None:
            numbered = connections(log)
            if self.conn > len(numbered):
                return
            conn = numbered[self.conn - 1]
        start = 0
        if self.after is True:
            start = previous + 1
        elif isinstance(self.after, tuple):
            found = [moments.get(name) for name in self.after]
            found = [i for i in found if i is not None]
            if not found:  # after the latest of them the recording has
                return
            start = max(found) + 1
        if self.since:
            found = [moments.get(name) for name in
                     ((self.since,) if isinstance(self.since, str) else self.since)]
            found = [i for i in found if i is not None]
            if not found:  # from the latest of them the recording has
                return
            start = max(start, max(found))
        ready_fd = None
        if self.ready_has:
            at = moments.get(self.ready_has)
            if at is None or log[at].fd is None or log[at].fd < 0:
                return
            ready_fd = int(log[at].fd)
        skip = None
        if self.other_than:
            at = moments.get(self.other_than)
            if at is None:
                return
            skip = log[at].conn
        stop = None
        if self.before:
            stop = moments.get(self.before)
            if stop is None:
                return
        kinds = list(self.kind) if isinstance(self.kind, tuple) else \
            None if self.kind in ("any", "end") else [self.kind]
        if self.moment:
            at = moments.get(self.moment)
            if at is None or at < start or (stop is not None and at >= stop):
                return
            e = log[at]
            if (kinds is None or e.kind in kinds) and self._from(e) \
                    and (conn is None or e.conn == conn) and self._matches(e) and \
                    (self.other_than is None or e.conn != skip) and \
                    (ready_fd is None or _holds_fd(e, ready_fd)):
                yield at
            return
        seen: set = set()
        earlier: set = set()
        first_value: Any = _UNSET
        last: dict = {}
        one_src = self.src if isinstance(self.src, str) else None
        older = log.older_sockets()  # an earlier server's sockets: nothing of this lesson's
        for i in log.indices(kinds=kinds, src=one_src, conn=conn, start=start,
                             stop=stop).tolist():
            if older and log[i].conn in older:
                continue
            if self._matches(log[i]) and (self.other_than is None or log[i].conn != skip) \
                    and (one_src is not None or self._from(log[i])) and \
                    (ready_fd is None or _holds_fd(log[i], ready_fd)):
                if self.first_of_each:
                    key = _field(log[i], self.first_of_each)
                    if key in seen:
                        continue
                    seen.add(key)
                if self.repeats:  # the connection had a match with this value before
                    key = (log[i].conn, _field(log[i], self.repeats))
                    if key not in earlier:
                        earlier.add(key)
                        continue
                if self.same_as_first:
                    value = _field(log[i], self.same_as_first)
                    if first_value is _UNSET:
                        first_value = value
                    elif value != first_value:
                        continue
                if self.last_of_each:
                    last[_field(log[i], self.last_of_each)] = i
                    continue
                yield i
        if self.last_of_each:  # each one's last match, if it holds what keep asks
            keep = dataclasses.replace(self, fields=self.keep, ranges=(), texts=(),
                                       excluded=(), headers=(), flags_has=None, sender=None)
            yield from sorted(i for i in last.values() if keep._matches(log[i]))

    def _from(self, e: Event) -> bool:
        """Was it emitted by the anchor's source (one of them)?"""
        return self.src is None or (e.src == self.src if isinstance(self.src, str)
                                    else e.src in self.src)

    def _matches(self, e: Event) -> bool:
        d = e.data
        for name, value in self.fields:
            got = getattr(e, name) if name in _OWN else d.get(name)
            if (got not in value) if isinstance(value, tuple) else got != value:
                return False
        for name, prefix, inside, pattern in self.texts:
            got = d.get(name)
            if not isinstance(got, str) or (prefix is not None and not got.startswith(prefix)) \
                    or (inside is not None and inside not in got) or \
                    (pattern is not None and pattern.search(got) is None):
                return False
        for name, values in self.excluded:
            if (getattr(e, name) if name in _OWN else d.get(name)) in values:
                return False
        for name, low, high in self.ranges:
            value = _number(getattr(e, name) if name in _OWN else d.get(name))
            if value is None:
                return False
            if (low is not None and value < low) or (high is not None and value > high):
                return False
        if self.flags_has is not None and self.flags_has not in str(d.get("flags") or "").split("|"):
            return False
        for name, wanted, inside in self.headers:
            head = d.get("head")
            if not isinstance(head, str):
                return False
            found = inside in (header_value(head, name) or "") if inside is not None else \
                bool(header_value(head, name) or _has_header(head, name))
            if found != wanted:
                return False
        if self.sender is not None:
            try:
                if sender(e) != self.sender:
                    return False
            except (IndexError, ValueError):
                return False
        return True

    def said(self) -> str:
        """The anchor as a person reads it, for errors."""
        which = f"{self.nth}." if self.nth > 0 else \
            ("last" if self.nth == -1 else f"{-self.nth}. from the end:")
        kind = " or ".join(self.kind) if isinstance(self.kind, tuple) else self.kind
        parts = [f"{which} {'event' if kind == 'any' else kind}"]
        if self.src:
            parts.append("from the " + (self.src if isinstance(self.src, str)
                                        else " or ".join(self.src)))
        if self.conn is True:
            parts.append("of a connection")
        elif isinstance(self.conn, str):
            parts.append(f"of {self.conn}'s connection")
        elif self.conn:
            parts.append(f"of connection {self.conn}")
        if self.flags_has:
            parts.append(f"with {self.flags_has}")
        if self.sender:
            parts.append(f"sent by the {self.sender}")
        parts += [f"{k}={' or '.join(map(repr, v))}" if isinstance(v, tuple) else f"{k}={v!r}"
                  for k, v in self.fields]
        parts += [f"{k} not {' or '.join(map(repr, v))}" for k, v in self.excluded]
        parts += [f"{k} " + " and ".join(w for w in (f"starting {p!r}" if p else "",
                                                     f"holding {c!r}" if c else "",
                                                     f"matching {r.pattern!r}" if r else "")
                                         if w)
                  for k, p, c, r in self.texts]
        for name, low, high in self.ranges:
            parts.append(f"{name} from {low}" if high is None else
                         f"{name} up to {high}" if low is None else f"{name} {low} to {high}")
        if self.moment:
            parts.insert(0, f"{self.moment},")
        if isinstance(self.after, tuple):
            parts.append("after " + " and ".join(self.after))
        if self.before:
            parts.append(f"before {self.before}")
        if self.first_of_each:
            parts.append(f"(each {self.first_of_each}'s first)")
        if self.repeats:
            parts.append(f"(its connection's {self.repeats} again)")
        if self.same_as_first:
            parts.append(f"(with the first one's {self.same_as_first})")
        if self.last_of_each:
            parts.append(f"(each {self.last_of_each}'s last"
                         + (", if " + ", ".join(f"{k}={v!r}" for k, v in self.keep) if self.keep
                            else "") + ")")
        if self.since:
            parts.append("from " + (self.since if isinstance(self.since, str)
                                    else " and ".join(self.since)) + " on")
        if self.ready_has:
            parts.append(f"whose ready list holds {self.ready_has}'s fd")
        if self.other_than:
            parts.append(f"not of {self.other_than}'s connection")
        if self.none_held:
            parts.append(f"after which none were held of {self.none_held.up.said()} (less "
                         f"{self.none_held.down.said()})")
        if self.most_held:
            parts.append(f"when the most were held of {self.most_held.up.said()} (less "
                         f"{self.most_held.down.said()})")
        if self.largest:
            parts.append("with the largest " + (self.largest if isinstance(self.largest, str)
                                                else ", then ".join(self.largest)))
        if self.median:
            parts.append(f"with the median {self.median}")
        parts += [f"{'with' if wanted else 'without'} a {name} header"
                  + (f" holding {inside!r}" if inside else "")
                  for name, wanted, inside in self.headers]
        return " ".join(parts)


_OWN = ("fd", "thread")  # an event's own numbers an anchor may test, besides its data's


def _holds_fd(e: Event, fd: int) -> bool:
    """Does the event's ready list ([[fd, mask], ...]) hold ``fd``?"""
    ready = e.data.get("ready")
    if not isinstance(ready, list):
        return False
    for item in ready:
        got = item[0] if isinstance(item, (list, tuple)) and item else item
        if isinstance(got, int) and not isinstance(got, bool) and got == fd:
            return True
    return False


_RESERVED = ("previous", "none", "any", "end")  # words the format gives a meaning to
_UNSET = object()
_LAB_IF_POSSIBLE = "\0lab-if-possible"  # an engine option, decided when recording


class _Said(dict):
    """A words fact's value: its words in each language, written when a caption is."""


def _in(facts: dict[str, Any], lang: str) -> dict[str, Any]:
    """The facts as a caption in ``lang`` says them: each words fact written in it (with
    the other facts; English where it has no words in that language)."""
    plain = {k: v for k, v in facts.items() if not isinstance(v, _Said)}
    return {**plain, **{k: WORDS.format(v.get(lang, v.get("en", "")), **plain)
                        for k, v in facts.items() if isinstance(v, _Said)}}


def _field(e: Event, name: str) -> Any:
    """An event's own attribute (fd, conn, src, thread, kind) or its data's field, as a
    set can hold it."""
    return _hashable(getattr(e, name) if name in _ATTRIBUTES else e.data.get(name))


def _number(value: Any) -> int | float | None:
    """A field as a number: itself, or a list's length (a ready list); None if neither."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


@dataclass(frozen=True)
class Peak:
    """How many are running at once: each ``up`` event starts one, each ``down`` ends
    one; the most at once, and the event where that many first were (a moment)."""
    up: "Anchor"
    down: "Anchor"

    def names(self) -> list[str]:
        return self.up.names() + self.down.names()

    def measure(self, log: EventLog, moments: Moments | None = None) -> tuple[int, int | None]:
        edges = sorted([(i, 1) for i in self.up.every(log, -1, moments)] +
                       [(i, -1) for i in self.down.every(log, -1, moments)],
                       key=lambda edge: (edge[0], edge[1]))
        now = best = 0
        where: int | None = None
        for i, step in edges:
            now += step
            if now > best:
                best, where = now, i
        return best, where

    def held(self, log: EventLog, at: list[int], moments: Moments | None = None) -> list[int]:
        """How many were held just before each index of ``at`` (ascending): the up
        events before it less the down events before it."""
        import bisect
        ups = list(self.up.every(log, -1, moments))
        downs = list(self.down.every(log, -1, moments))
        return [bisect.bisect_left(ups, i) - bisect.bisect_left(downs, i) for i in at]

    def find(self, log: EventLog, previous: int = -1, moments: Moments | None = None
             ) -> int | None:
        return self.measure(log, moments)[1]

    def said(self) -> str:
        return f"the most at once of {self.up.said()} (less {self.down.said()})"


def _durations(log: EventLog, start: "Anchor", end: "Anchor", moments: Moments
               ) -> list[tuple[int, int]]:
    """Each connection's span, in t_ns: from its first ``start`` event to the first
    ``end`` event of the same connection after it (a connection with no end: none)."""
    times = log.column("t_ns")
    out, seen = [], set()
    ends = list(end.every(log, -1, moments))
    for i in start.every(log, -1, moments):
        conn = log[i].conn
        if conn is None or conn in seen:
            continue
        seen.add(conn)
        j = next((j for j in ends if j > i and log[j].conn == conn), None)
        if j is not None:
            out.append((int(times[i]), int(times[j])))
    return out


@dataclass(frozen=True)
class Midway:
    """The first event from the time halfway between two moments (after the first of
    them, and no later than the second)."""
    a: str
    b: str

    def names(self) -> list[str]:
        return [self.a, self.b]

    def find(self, log: EventLog, previous: int = -1, moments: Moments | None = None
             ) -> int | None:
        import numpy as np
        a, b = (moments or {}).get(self.a), (moments or {}).get(self.b)
        if a is None or b is None or b <= a:
            return None
        times = log.column("t_ns")
        middle = (int(times[a]) + int(times[b])) // 2
        return min(max(int(np.searchsorted(times, middle)), a + 1), b)

    def said(self) -> str:
        return f"halfway between {self.a} and {self.b}"


@dataclass(frozen=True)
class Named:
    """An anchor that is a moment's name: the event that moment found."""
    name: str

    def names(self) -> list[str]:
        return [self.name]

    def find(self, log: EventLog, previous: int = -1, moments: Moments | None = None
             ) -> int | None:
        return (moments or {}).get(self.name)

    def said(self) -> str:
        return self.name


def connections(log: EventLog) -> list[str]:
    """The recording's connections, in the order they first appear in the log (sockets
    older than the recording, an earlier server's TIME_WAIT on the port, are none)."""
    import numpy as np
    codes = log.column("conn")
    if not len(codes):
        return []
    found, first = np.unique(codes, return_index=True)
    names = log.conns.names
    older = log.older_sockets()
    return [names[int(c)] for c in found[np.argsort(first)]
            if names[int(c)] is not None and names[int(c)] not in older]


# ---------------------------------------------------------------- captions
class _Words(string.Formatter):
    """``{name}`` and ``{name:zh}``: a count in Chinese numerals (两 for 2), an end's name
    in Chinese (客户端, 服务器)."""

    def format_field(self, value: Any, spec: str) -> str:
        if isinstance(value, list):  # {gaps:.1f| s|, }: each item, its unit, joined
            item, _, rest = spec.partition("|")
            unit, _, joined = rest.partition("|")
            return (joined or ", ").join(super(_Words, self).format_field(v, item) + unit
                                         for v in value)
        if spec == "zh":
            if isinstance(value, int):
                return _ZH.get(value, str(value))
            return {"client": "客户端", "server": "服务器"}.get(str(value), str(value))
        return super().format_field(value, spec)


WORDS = _Words()
# The names a caption may use, and what each is.
PLACEHOLDERS = {
    "conn": "the anchored event's connection (client > server addresses)",
    "fd": "the anchored event's descriptor",
    "bytes": "its data's bytes (recv, send)",
    "flags": "a segment's flags (SYN|ACK...)",
    "state": "a state event's state",
    "status": "a response's status",
    "path": "a request's path",
    "t_ms": "milliseconds since the recording began",
    "since_ms": "milliseconds since the previous step's event",
    "step": "this step's number", "steps": "the number of steps",
    "connections": "connections the server accepted",
    "requests": "requests the server read",
    "segments": "segments of the step's connection",
    "teardown": "the flags of the step's connection's segments from its first FIN on",
    "teardown_count": "how many they are",
    "closer": "which end sent the first FIN (client or server)",
}


# What each placeholder holds, by type, to try a caption's formats when the file is read.
_SAMPLE: dict[str, Any] = {"conn": "127.0.0.1:1>127.0.0.1:2", "fd": 5, "bytes": 93,
                           "flags": "SYN|ACK", "state": "TIME_WAIT", "status": 200, "path": "/",
                           "t_ms": 12, "since_ms": 3, "step": 1, "steps": 6, "connections": 1,
                           "requests": 2, "segments": 10, "teardown": "FIN|ACK, ACK",
                           "teardown_count": 3, "closer": "server"}


def _facts(log: EventLog, index: int, previous: int, conn: str | None, k: int,
           count: int) -> dict[str, Any]:
    e = log[index]
    t0 = log[0].t_ns if len(log) else 0
    facts: dict[str, Any] = {
        "conn": conn or "?", "fd": e.fd, "t_ms": round((e.t_ns - t0) / 1e6),
        "since_ms": round((e.t_ns - log[previous].t_ns) / 1e6) if previous >= 0 else 0,
        "step": k + 1, "steps": count,
        "connections": len(log.indices(kinds=["accept"], src="server")),
        "requests": len(log.indices(kinds=["request"], src="server")),
    }
    for name in ("bytes", "flags", "state", "status", "path"):
        facts[name] = e.data.get(name, "?")
    segments = log.indices(kinds=["packet"], conn=conn).tolist() if conn else []
    facts["segments"] = len(segments)
    fins = [i for i in segments if "FIN" in str(log[i].data.get("flags"))]
    teardown = [str(log[i].data.get("flags")) for i in segments if fins and i >= fins[0]]
    facts["teardown"] = ", ".join(teardown)
    facts["teardown_count"] = len(teardown)
    facts["closer"] = (first_fin_side(log, conn) if conn else None) or "?"
    return facts


def _field_types(name: str) -> set[str]:
    """What a field may hold, as the engine's events declare it: {"str"}, {"number"} or
    both (a field no kind declares: both; a list's length is a number)."""
    from engine.events import FIELD_TYPES
    if name in ("conn", "src", "kind"):
        return {"str"}
    if name in ("fd", "thread"):
        return {"number"}
    found: set[str] = set()
    for spec in FIELD_TYPES.values():
        for field, types, *_ in spec:
            if field == name:
                found |= {"str" if t is str else "number" for t in types
                          if t in (str, int, float, list)}
    return found or {"str", "number"}
_ATTRIBUTES = ("fd", "conn", "src", "thread", "kind")  # an event's own, not its data's


def _first_line(e: Event) -> str:
    """An HTTP event's first line: its head's (a request line, a status line), or, for a
    request recorded without its head, the line its method, path and version make."""
    head = e.data.get("head")
    if isinstance(head, str) and head:
        return head.split("\r\n", 1)[0]
    if e.kind == "request":
        return f"{e.data.get('method')} {e.data.get('path')} HTTP/{e.data.get('version')}"
    return ""


def _median(numbers: list) -> float:
    import statistics
    return float(statistics.median(numbers))


_AGGREGATES: dict[str, Callable[[list], Any]] = {"sum": sum, "median": _median, "max": max}
_FACT_KINDS = {"ms", "seconds", "field", "count", "header", "ratio", "difference", "peak",
               "held", "durations", "gaps", "words", "items",
               "regex", *_AGGREGATES}
_SPANS = ("sum", "extent")  # what durations facts say: the spans added up, or the clock


def _has_header(head: str, name: str) -> bool:
    """Does an HTTP head hold a header (even an empty one)?"""
    return any(line.partition(":")[0].strip().lower() == name.lower() and ":" in line
               for line in head.split("\r\n")[1:])


def _hashable(value: Any) -> Any:
    """A field's value as a set can hold it (a list as a tuple)."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _holds(value: Any, wanted: Any) -> bool:
    """A fact's value against an `if`: equal, or within { min, max }; a list fact (gaps)
    against { count = ..., each = { min, max }, first = ..., ratios = ... } (each a value
    or a range: how many, every item, the first, every item over the one before)."""
    if isinstance(value, list):
        if not isinstance(wanted, dict) or not set(wanted) <= set(_LIST_TESTS):
            return False
        numbers = [v for v in value if _number(v) is not None]
        ratios = [b / a for a, b in zip(numbers, numbers[1:]) if a]
        return all(
            _holds(len(value), want) if key == "count" else
            bool(numbers) and _holds(numbers[0], want) if key == "first" else
            all(_holds(v, want) for v in numbers) if key == "each" else
            bool(ratios) and all(_holds(r, want) for r in ratios)
            for key, want in wanted.items())
    if isinstance(wanted, dict):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return (wanted.get("min") is None or value >= wanted["min"]) and \
            (wanted.get("max") is None or value <= wanted["max"])
    if isinstance(wanted, list):  # any of these
        return value in wanted
    return value == wanted


_LIST_TESTS = ("count", "each", "first", "ratios")  # what an `if` may ask of a list fact


# What a lesson may need of the machine it is recorded on: name -> (module, function).
NEEDS = {"kernel": ("kernel", "_needs_kernel_here"), "fork": ("servers", "_needs_fork"),
         "epoll": ("models", "_epoll_needs"), "gevent": ("servers", "_needs_gevent"),
         "lab": ("kernel", "_needs_lab_faults")}


# ---------------------------------------------------------------- the file
@dataclass
class _Variant:
    when: dict[str, Any]
    text: Text
    question: Text | None = None  # its own words for the step's question
    anchor: Any = None  # where it stands instead of the step's at (with view and conn)
    view: str | None = None
    conn: int | str | None = None

    def placed(self) -> bool:
        """Does it stand elsewhere than its step (at, view or conn of its own)?"""
        return self.anchor is not None or self.view is not None or self.conn is not None


@dataclass
class _StepSpec:
    anchor: Anchor
    view: str
    text: Text
    line: int | None
    conn: int | str | None = None  # a connection number, "none", or None: the anchor's
    question: Text | None = None
    choices: list[Text] | None = None
    answer: int | None = None
    footnote: str | None = None
    variants: tuple = ()
    ident: str | None = None  # its name, for the steps after it
    optional: bool = False  # left out when its anchor finds nothing
    browser: bool = False  # only where the lesson's browser client runs (Chromium)
    in_time: bool = False  # with its in_time neighbours, in the order their events happened
    ask_previous: bool = False  # its question is asked on the step shown before it


class LessonFile:
    """A checked lesson file, ready to record (``lesson()`` makes the ``Lesson``)."""

    def __init__(self, path: Path, text: str | None = None) -> None:
        self.path = Path(path)
        try:
            self.text = self.path.read_text(encoding="utf-8") if text is None else text
        except UnicodeDecodeError as exc:
            raise LessonFileError(path, None, f"not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise LessonFileError(path, None, exc.strerror or str(exc)) from None
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"at line (\d+)", str(exc))
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
            raise LessonFileError(path, int(found.group(1)) if found else None,
                                  f"not valid TOML: {message}") from None
        self.lines = _Lines(self.text)
        self.data = data
        self._check_top(data)

    # -- errors
    def fail(self, message: str, *path: Any) -> LessonFileError:
        return LessonFileError(self.path, self.lines.line(*path), message)

    def _known(self, table: dict, allowed: set, *path: Any) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"unknown key {key!r} (known: {', '.join(sorted(allowed))})",
                                *path, key)

    def _text(self, value: Any, *path: Any, required: bool = True) -> Text | None:
        """A text in each language: a table {en = ..., zh_CN = ...}, or one string."""
        if value is None:
            if required:
                raise self.fail(f"{path[-1]!r} is missing", *path)
            return None
        if isinstance(value, str):
            return {"en": value}
        if not isinstance(value, dict):
            raise self.fail(f"{path[-1]!r} must be a text or a table of texts by language",
                            *path)
        self._known(value, set(LANGS), *path)
        if not isinstance(value.get("en"), str) or not value["en"].strip():
            raise self.fail(f"{path[-1]!r} needs an English text (en = \"...\")", *path)
        for lang, said in value.items():
            if not isinstance(said, str):
                raise self.fail(f"{path[-1]}.{lang} must be a text", *path, lang)
        return dict(value)

    def _words(self, text: Text, *path: Any) -> None:
        """Each placeholder in a caption is one the lesson knows."""
        for lang, said in text.items():
            try:
                names = [name for _, name, _, _ in WORDS.parse(said) if name is not None]
            except ValueError as exc:
                raise self.fail(f"a brace in the {lang} text: {exc} (write {{{{ and }}}} for "
                                "a brace itself)", *path) from None
            for name in names:
                if name not in PLACEHOLDERS and name not in self.facts:
                    raise self.fail(f"unknown placeholder {{{name}}} in the {lang} text "
                                    f"(known: {', '.join([*PLACEHOLDERS, *self.facts])})",
                                    *path)
            if any(len(spec or "") > 20 or re.search(r"\d{4,}", spec or "")
                   for _, _, spec, _ in WORDS.parse(said)):
                raise self.fail(f"a placeholder's format in the {lang} text is too wide "
                                "(at most 999 characters)", *path)
            # A format the value cannot take ({flags:d}), found now, not mid-lesson: tried
            # with each type the value may have (a field some kinds give as a number, some
            # as a text, is tried both ways).
            for samples in self._samples():
                try:
                    WORDS.format(said, **_SAMPLE, **samples)
                except (ValueError, TypeError, IndexError, KeyError, AttributeError,
                        OverflowError, MemoryError) as exc:
                    raise self.fail(f"the {lang} text cannot be written: {exc}",
                                    *path) from None

    def _samples(self) -> list[dict[str, Any]]:
        """Values of each fact's types (one dict per way), to try captions with when the
        file is read: a field's types are the engine's (engine/events.py FIELD_TYPES)."""
        first: dict[str, Any] = {}
        other: dict[str, Any] = {}
        for name, spec in self.facts.items():
            if spec[0] == "field":
                kinds = _field_types(spec[1])
                first[name] = "x" if "str" in kinds else 5
                other[name] = 5 if "number" in kinds else first[name]
            elif spec[0] in ("header", "regex", "words"):
                first[name] = other[name] = "x"
            elif spec[0] == "gaps":
                first[name] = other[name] = [1.0, 2.0]
            elif spec[0] in _AGGREGATES or spec[0] in ("ratio", "difference", "durations"):
                first[name] = other[name] = 12.5
            else:
                first[name] = other[name] = 1234.5 if spec[0] in ("ms", "seconds") else 3
        return [first] if first == other else [first, other]

    # -- the parts
    def _check_top(self, data: dict) -> None:
        self._known(data, {"format", "name", "section", "title", "summary", "needs",
                           "engine", "clients", "runs", "moments", "facts", "expect", "steps",
                           "same_port"})
        if not isinstance(data.get("same_port", False), bool):
            raise self.fail("same_port must be true or false", "same_port")
        self.same_port = data.get("same_port", False)
        if type(data.get("format")) is not int or data.get("format") != FORMAT:
            raise self.fail(f"format = {FORMAT} is needed (this SockScope reads lesson files "
                            f"of format {FORMAT})", "format")
        name = data.get("name", self.path.stem)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9\-]*", name):
            raise self.fail("name must be lowercase letters, digits and dashes", "name")
        self.name = name
        section = data.get("section", "")
        if isinstance(section, bool) or not isinstance(section, (str, int, float)):
            raise self.fail("section is a text: where the lesson sits in the lecture",
                            "section")
        self.section = str(section)
        self.title = self._text(data.get("title"), "title")
        self.summary = self._text(data.get("summary"), "summary", required=False) or \
            {"en": ""}
        self.requires = self._needs(data.get("needs", []))
        self.runs = self._runs(data)
        self.engine_options, self.clients = self.runs[0]
        self.moments = self._moments(data.get("moments", {}))
        self.facts = self._fact_specs(data.get("facts", {}))
        for name, spec in self.facts.items():  # a words fact's words: known placeholders
            if spec[0] == "words":
                for k, (_, said) in enumerate(spec[1]):
                    self._words(said, "facts", name, "words", k)
                    inner = {n for text in said.values() for _, n, _, _ in WORDS.parse(text)
                             if n is not None and self.facts.get(n, ("",))[0] == "words"}
                    if inner:
                        raise self.fail(f"words may not say another words fact "
                                        f"({', '.join(sorted(inner))})", "facts", name,
                                        "words", k)
        self.expect = self._expect(data.get("expect", []))
        self.steps = self._steps(data.get("steps"))

    def _runs(self, data: dict) -> list[tuple[list[str], list]]:
        """The engines the lesson records, each with its clients, one after the other:
        [engine] and [[clients]], or several [[runs]] (each its own engine and clients;
        their recordings merged into one, in time order)."""
        if "runs" not in data:
            return [(self._engine(data.get("engine", {})), self._clients(data.get("clients", [])))]
        runs = data["runs"]
        if "engine" in data or "clients" in data:
            raise self.fail("[[runs]] each have their engine and clients: no [engine] or "
                            "[[clients]] beside them", "runs", 0)
        if not isinstance(runs, list) or not 1 <= len(runs) <= 4:
            raise self.fail("[[runs]]: one to four tables", "runs", 0)
        out = []
        self.failing: set[int] = set()  # the runs whose engine must fail to start
        for k, run in enumerate(runs):
            if not isinstance(run, dict):
                raise self.fail("each [[runs]] is a table", "runs", k)
            self._known(run, {"engine", "clients", "fails"}, "runs", k)
            if "fails" in run:
                if run["fails"] is not True or run.get("clients") or k == 0:
                    raise self.fail("fails = true: this run's engine must fail to start (its "
                                    "trace says why); it has no clients, and a run before it",
                                    "runs", k, "fails")
                self.failing.add(k)
            out.append((self._engine(run.get("engine", {}), "runs", k, "engine"),
                        self._clients(run.get("clients", []), "runs", k, "clients")))
        return out

    def _needs(self, needs: Any) -> tuple[str, ...]:
        if not isinstance(needs, list) or any(not isinstance(n, str) or n not in NEEDS
                                              for n in needs):
            raise self.fail(f"needs is a list of: {', '.join(NEEDS)}", "needs")
        return tuple(needs)

    def _moments(self, table: Any) -> list[tuple[str, list, int | None]]:
        """[moments]: name = anchor, or a list of anchors (the first the recording has).
        Each may stand on the moments written before it."""
        if not isinstance(table, dict):
            raise self.fail("[moments] is a table: name = { kind = ... }", "moments")
        out: list[tuple[str, list, int | None]] = []
        known: set[str] = set()
        for name, value in table.items():
            where = ("moments", name)
            if not _NAME.fullmatch(name) or name in _KINDS or name in _RESERVED:
                raise self.fail(f"moment {name!r}: a name is lowercase letters, digits and _ "
                                f"(not an event's kind, nor {', '.join(_RESERVED)})", *where)
            if isinstance(value, dict) and "peak" in value:
                self._known(value, {"peak"}, *where)
                out.append((name, [self._peak(value["peak"], known, *where, "peak")],
                            self.lines.line(*where)))
                known.add(name)
                continue
            if isinstance(value, dict) and "midway" in value:
                self._known(value, {"midway"}, *where)
                pair = value["midway"]
                if not isinstance(pair, list) or len(pair) != 2 or \
                        not all(isinstance(m, str) for m in pair):
                    raise self.fail("midway = [\"a\", \"b\"]: the first event from the time "
                                    "halfway between two moments", *where)
                out.append((name, [Midway(*(self._named(m, known, "midway", *where)
                                             for m in pair))], self.lines.line(*where)))
                known.add(name)
                continue
            choices = value if isinstance(value, list) else [value]
            if not choices:
                raise self.fail(f"moment {name!r} is an empty list", *where)
            out.append((name, [self._anchor(c, *where, known=known) for c in choices],
                        self.lines.line(*where)))
            known.add(name)
        self.names = known
        return out

    def _peak(self, value: Any, known: set | frozenset, *path: Any) -> Peak:
        if not isinstance(value, dict) or set(value) != {"up", "down"} or \
                not all(isinstance(v, dict) for v in value.values()):
            raise self.fail(f"{path[-1]} = {{ up = {{ kind = ... }}, down = {{ kind = ... }} }}: "
                            "each up event starts one, each down event ends one", *path)
        return Peak(self._anchor(value["up"], *path, "up", known=known),
                    self._anchor(value["down"], *path, "down", known=known))

    def _fact_specs(self, table: Any) -> dict[str, tuple]:
        """[facts]: values a caption may say, from the recording: name = { ms = [A, B] }
        (milliseconds from moment A to B), { field = "bytes", at = A } (a field of A's
        event; "fd" its descriptor), or { count = ANCHOR } (how many events match)."""
        if not isinstance(table, dict):
            raise self.fail("[facts] is a table: name = { ms = [\"a\", \"b\"] }", "facts")
        out: dict[str, tuple] = {}
        for name, value in table.items():
            where = ("facts", name)
            if not _NAME.fullmatch(name) or name in PLACEHOLDERS:
                raise self.fail(f"fact {name!r}: a name is lowercase letters, digits and _, "
                                "and not a placeholder the lesson already has", *where)
            if not isinstance(value, dict) or \
                    len(set(value) & _FACT_KINDS) != 1:
                raise self.fail(f"fact {name!r} is {{ ms = [A, B] }}, {{ field = F, at = A }}, "
                                "{ header = H, at = A }, { count = { kind = ... } }, "
                                "{ sum = F, of = { kind = ... } } (or median, max), "
                                "{ held = { up, down }, at = A }, { ratio = [A, B] }, "
                                "{ difference = [A, B] }, { gaps = { kind = ... } } or "
                                "{ words = [...] }",
                                *where)
            if "ms" in value or "seconds" in value:
                unit = "ms" if "ms" in value else "seconds"
                self._known(value, {unit}, *where)
                pair = value[unit]
                if not isinstance(pair, list) or len(pair) != 2 or \
                        not all(isinstance(m, str) for m in pair):
                    raise self.fail(f"{unit} = [\"from\", \"to\"]: two moments' names", *where)
                out[name] = (unit, *(self._named(m, self.names, unit, *where) for m in pair))
            elif set(value) & set(_AGGREGATES):
                key = next(k for k in _AGGREGATES if k in value)
                self._known(value, {key, "of", "missing"}, *where)
                missing = value.get("missing")
                if not isinstance(value[key], str) or not isinstance(value.get("of"), dict) or \
                        (missing is not None and (isinstance(missing, bool) or
                                                  not isinstance(missing, (int, float)))):
                    raise self.fail(f"{{ {key} = \"FIELD\", of = {{ kind = ... }} }} (missing "
                                    "= N: the value of an event without the field)", *where)
                out[name] = (key, value[key], self._anchor(value["of"], *where, "of",
                                                           known=self.names), missing)
            elif "regex" in value:
                self._known(value, {"regex", "on", "at"}, *where)
                if not all(isinstance(value.get(k), str) for k in ("regex", "on", "at")):
                    raise self.fail("{ regex = \"PATTERN\", on = \"first_line\" (or a field), "
                                    "at = \"moment\" }: the pattern's first group", *where)
                try:
                    pattern = re.compile(value["regex"])
                except re.error as exc:
                    raise self.fail(f"regex: {exc}", *where, "regex") from None
                if pattern.groups < 1:
                    raise self.fail("regex needs a group: ( ... ), what the fact says", *where,
                                    "regex")
                out[name] = ("regex", pattern, value["on"],
                             self._named(value["at"], self.names, "at", *where))
            elif "peak" in value:
                self._known(value, {"peak"}, *where)
                out[name] = ("peak", self._peak(value["peak"], self.names, *where, "peak"))
            elif "gaps" in value:
                self._known(value, {"gaps"}, *where)
                ways = value["gaps"] if isinstance(value["gaps"], list) else [value["gaps"]]
                problem = ("{ gaps = { kind = ... } }: the seconds between the events that "
                           "match, one after the other; a list of ways, the first that finds "
                           "two or more (a way may be a list too: moments' events and "
                           "anchors' matches together)")
                out[name] = ("gaps", [])
                for way in ways:
                    parts = way if isinstance(way, list) else [way]
                    if not parts or not all(isinstance(p, dict) or (
                            isinstance(p, str) and p in self.names) for p in parts):
                        raise self.fail(problem, *where)
                    out[name][1].append([Named(p) if isinstance(p, str) else
                                         self._anchor(p, *where, "gaps", known=self.names)
                                         for p in parts])
            elif "items" in value:
                self._known(value, {"items", "plus"}, *where)
                plus = value.get("plus", 0)
                if out.get(value["items"], ("",))[0] != "gaps" or isinstance(plus, bool) or \
                        not isinstance(plus, int):
                    raise self.fail("{ items = \"gaps\", plus = 1 }: how many a gaps fact "
                                    "written before it holds, plus a whole number", *where)
                out[name] = ("items", value["items"], plus)
            elif "words" in value:
                self._known(value, {"words"}, *where)
                ways = value["words"]
                if not isinstance(ways, list) or not ways or \
                        not all(isinstance(w, dict) for w in ways):
                    raise self.fail("{ words = [{ if = { fact = ... }, en = \"...\", zh_CN = "
                                    "\"...\" }, ...] }: the first whose if holds (one without "
                                    "if: always)", *where)
                said = []
                for k, way in enumerate(ways):
                    self._known(way, set(LANGS) | {"if"}, *where, "words", k)
                    if not isinstance(way.get("en"), str) or \
                            not all(isinstance(way.get(lang, ""), str) for lang in LANGS):
                        raise self.fail("each of words has en = \"...\" (and zh_CN; \"\" may "
                                        "say nothing)", *where, "words", k)
                    when = self._condition(way["if"], *where, "words", k, facts=out) \
                        if "if" in way else {}
                    said.append((when, {lang: way[lang] for lang in LANGS if lang in way}))
                out[name] = ("words", said)
            elif "held" in value:
                self._known(value, {"held", "at"}, *where)
                if not isinstance(value.get("at"), str):
                    raise self.fail("{ held = { up = ..., down = ... }, at = \"moment\" }: how "
                                    "many were held just before that moment", *where)
                out[name] = ("held", self._peak(value["held"], self.names, *where, "held"),
                             self._named(value["at"], self.names, "at", *where))
            elif "durations" in value:
                self._known(value, {"durations", "how"}, *where)
                spans = value["durations"]
                if not isinstance(spans, dict) or set(spans) != {"from", "to"} or \
                        not all(isinstance(v, dict) for v in spans.values()) or \
                        value.get("how") not in _SPANS:
                    raise self.fail("{ durations = { from = { kind = ... }, to = { kind = ... } "
                                    "}, how = \"sum\" or \"extent\" }: each connection's time "
                                    "from its first from-event to its next to-event, in ms, "
                                    "added up or as the clock saw them", *where)
                out[name] = ("durations",
                             self._anchor(spans["from"], *where, "from", known=self.names),
                             self._anchor(spans["to"], *where, "to", known=self.names),
                             value["how"])
            elif "ratio" in value or "difference" in value:
                key = "ratio" if "ratio" in value else "difference"
                self._known(value, {key}, *where)
                pair = value[key]
                if not isinstance(pair, list) or len(pair) != 2 or \
                        not all(isinstance(f, str) and f in out for f in pair):
                    raise self.fail(f"{key} = [\"a\", \"b\"]: two facts written before it, a "
                                    + ("divided by b" if key == "ratio" else "less b"), *where)
                out[name] = (key, *pair)
            elif "field" in value or "header" in value:
                key = "field" if "field" in value else "header"
                self._known(value, {key, "at"} | ({"scale"} if key == "field" else set()),
                            *where)
                if not isinstance(value[key], str) or not isinstance(value.get("at"), str):
                    raise self.fail(f"{{ {key} = \"NAME\", at = \"moment\" }}", *where)
                scale = value.get("scale", 1)
                if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale:
                    raise self.fail("scale is a number the field's value is multiplied by "
                                    "(1e-6: nanoseconds to milliseconds)", *where, "scale")
                out[name] = (key, value[key], self._named(value["at"], self.names, "at", *where),
                             scale)
            else:
                self._known(value, {"count", "distinct", "times", "each"}, *where)
                distinct = value.get("distinct", [])
                distinct = [distinct] if isinstance(distinct, str) else distinct
                if not isinstance(distinct, list) or \
                        not all(isinstance(d, str) for d in distinct):
                    raise self.fail("distinct is a field's name or a list of them (\"conn\": "
                                    "count connections, not events)", *where, "distinct")
                times = value.get("times", 1)
                if isinstance(times, bool) or not isinstance(times, int) or times < 1:
                    raise self.fail("times is a whole number from 1 (each counted thing "
                                    "stands for that many)", *where, "times")
                if not isinstance(value["count"], dict):
                    raise self.fail("count = { kind = ... }: the events to count, an anchor "
                                    "table", *where, "count")
                each = value.get("each")
                if each is not None and (not distinct or not isinstance(each, dict) or
                                         not each or set(each) - {"min", "max"} or any(
                                             isinstance(x, bool) or not isinstance(x, int)
                                             for x in each.values())):
                    raise self.fail("each = { min = 2 } goes with distinct: only the "
                                    "distinct values with that many matches (whole numbers)",
                                    *where, "each")
                out[name] = ("count", self._anchor(value["count"], *where, known=self.names),
                             tuple(distinct), times, each)
        return out

    def _engine(self, table: Any, *at: Any) -> list[str]:
        at = at or ("engine",)
        from engine.cli import PACKET_SOURCES, STATE_SOURCES
        from engine.server import MODES, POLICIES, TRIGGERS, default_mode
        if not isinstance(table, dict):
            raise self.fail("[engine] must be a table", *at)
        self._known(table, {"mode", "trigger", "policy", "backlog", "reuseaddr", "sweep_pause",
                            "every_sweep", "root", "idle_timeout", "max_connections",
                            "cpu_interval", "states", "packets",
                            "no_drain", "never_close", "keep_parent_copy", "lab", "fault",
                            "step"}, *at)
        mode = table.get("mode", "default")
        if mode == "default":
            mode = default_mode()
        if mode not in MODES:
            raise self.fail(f"mode {mode!r} is not one of {', '.join(MODES)} (or default)",
                            *at, "mode")
        options = ["--mode", mode]
        for key, allowed in (("trigger", TRIGGERS), ("policy", POLICIES),
                             ("states", STATE_SOURCES), ("packets", PACKET_SOURCES)):
            if key in table:
                if table[key] not in allowed:
                    raise self.fail(f"{key} must be one of {', '.join(allowed)}", *at, key)
                options += [f"--{key}", table[key]]
        for key, low, high, kind in (("backlog", 0, 65535, int), ("sweep_pause", 0, 1.0, float),
                                     ("cpu_interval", 0, 10, float),
                                     ("idle_timeout", 0.1, 3600, float),
                                     ("max_connections", 1, 1_000_000, int)):
            if key in table:
                value = table[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                        (kind is int and not isinstance(value, int)) or not low <= value <= high:
                    raise self.fail(f"{key} must be a{'n integer' if kind is int else ' number'}"
                                    f" from {low} to {high:,}", *at, key)
                options += [f"--{key.replace('_', '-')}", str(value)]
        for key in ("reuseaddr", "every_sweep", "no_drain", "never_close", "keep_parent_copy",
                    "lab", "step"):
            if key in table and not isinstance(table[key], bool) and \
                    not (key == "lab" and table[key] == "auto"):
                raise self.fail(f"{key} must be true or false"
                                + (" (or \"auto\": where the machine allows)"
                                   if key == "lab" else ""), *at, key)
        if "reuseaddr" in table:
            options.append("--reuseaddr" if table["reuseaddr"] else "--no-reuseaddr")
        for key in ("every_sweep", "no_drain", "never_close", "keep_parent_copy", "lab", "step"):
            if table.get(key) is True:
                options.append(f"--{key.replace('_', '-')}")
        if table.get("lab") == "auto":  # the lab where this machine has it (at recording)
            options.append(_LAB_IF_POSSIBLE)
        if "fault" in table:
            from engine.lab import FAULTS
            if table.get("lab") is not True or not isinstance(table["fault"], str) or \
                    table["fault"] not in FAULTS:
                raise self.fail(f"fault needs lab = true and one of {', '.join(FAULTS)}",
                                *at, "fault")
            options += ["--fault", table["fault"]]
        if "root" in table:
            if not isinstance(table["root"], str):
                raise self.fail("root must be a folder's path", *at, "root")
            try:
                root = (self.path.parent / table["root"]).resolve()
                folder = root.is_dir()
            except (OSError, ValueError) as exc:
                raise self.fail(f"root {table['root']!r}: {exc}", *at, "root") from None
            if not folder:
                raise self.fail(f"root {table['root']!r} is not a folder (from {root})",
                                *at, "root")
            options += ["--root", str(root)]
        self.mode = mode
        return options

    def _clients(self, clients: Any, *at: Any, inside: bool = False
                 ) -> list[tuple[str, Any, float]]:
        """(kind, what, pause) each: ("load", OPTIONS), ("start", OPTIONS) (a load not
        waited for), ("script", NAME) or ("browser", (PATH, clients in its place where
        there is no Chromium, or None))."""
        at = at or ("clients",)
        if not isinstance(clients, list):
            raise self.fail("clients must be [[clients]] tables", *at)
        out = []
        for k, client in enumerate(clients):
            if not isinstance(client, dict):
                raise self.fail("each [[clients]] must be a table", *at, k)
            self._known(client, {"load", "browser", "script", "pause", "wait", "otherwise"},
                        *at, k)
            if "wait" in client and ("load" not in client or not isinstance(client["wait"],
                                                                           bool)):
                raise self.fail("wait = false goes with load: the next client starts without "
                                "waiting for this one to finish", *at, k, "wait")
            if "otherwise" in client and ("browser" not in client or inside):
                raise self.fail("otherwise = [{ load = ... }, ...] goes with browser: the "
                                "clients that run in its place where there is no Chromium",
                                *at, k, "otherwise")
            if len({"load", "browser", "script"} & set(client)) != 1:
                raise self.fail("a client is one of load = \"OPTIONS\" (the built-in clients), "
                                "browser = \"/PATH\" (headless Chromium) or script = \"NAME\" "
                                "(a scripted client SockScope has)", *at, k)
            pause = client.get("pause", 0.2)
            if isinstance(pause, bool) or not isinstance(pause, (int, float)) or \
                    not 0 <= pause <= 30:
                raise self.fail("pause must be 0 to 30 seconds", *at, k, "pause")
            if "script" in client:
                from .scripts import SCRIPTS
                if not isinstance(client["script"], str) or client["script"] not in SCRIPTS:
                    raise self.fail(f"script is one of: {', '.join(sorted(SCRIPTS))}",
                                    *at, k, "script")
                out.append(("script", client["script"], float(pause)))
            elif "load" in client:
                options = client["load"]
                if not isinstance(options, str):
                    raise self.fail("load takes sockscope load's options as one text",
                                    *at, k, "load")
                import shlex
                try:
                    words = shlex.split(options)
                except ValueError as exc:
                    raise self.fail(f"load: {exc}", *at, k, "load") from None
                problem = _load_problem(words)
                if problem == "--trace":
                    raise self.fail("load: --trace is the lesson's own", *at, k, "load")
                if problem:
                    raise self.fail(f"load: {problem}", *at, k, "load")
                out.append(("load" if client.get("wait", True) else "start", options,
                            float(pause)))
            else:
                path = client["browser"]
                if not isinstance(path, str) or not path.startswith("/"):
                    raise self.fail("browser takes a path on the site, from /",
                                    *at, k, "browser")
                otherwise = None
                if "otherwise" in client:
                    otherwise = self._clients(client["otherwise"], *at, k, "otherwise",
                                              inside=True)
                    if any(kind == "browser" for kind, _, _ in otherwise):
                        raise self.fail("otherwise: clients that need no browser",
                                        *at, k, "otherwise")
                out.append(("browser", (path, otherwise), float(pause)))
        return out

    def _anchor(self, value: Any, *path: Any, known: frozenset | set = frozenset(),
                steps: bool = False) -> Anchor:
        """An anchor table; a text is a kind ("accept") or a moment's name. ``known``:
        the moments it may name (those written before it); ``steps``: a step's anchor
        (after = "previous" means something there)."""
        if isinstance(value, str):
            if value in known:
                return Named(value)  # type: ignore[return-value]
            value = {"kind": value}
        if not isinstance(value, dict):
            raise self.fail("an anchor is a table: at = { kind = \"packet\", flags = \"SYN\" }"
                            + (f", or a moment's name ({', '.join(sorted(known))})" if known
                               else ""), *path)
        moment = value.get("moment")
        if moment is not None:
            if not isinstance(moment, str):
                raise self.fail("moment is a moment's name", *path)
            self._named(moment, known, "moment", *path)
        kind = value.get("kind", "any" if moment else None)
        if isinstance(kind, list) and kind and \
                all(isinstance(k, str) and k in KINDS for k in kind):
            kind = tuple(kind) if len(kind) > 1 else kind[0]
        elif not isinstance(kind, str) or kind not in _KINDS:
            raise self.fail(f"an anchor needs kind = one of {', '.join(sorted(_KINDS))}"
                            + (f", or is a moment's name ({', '.join(sorted(known))})"
                               if known else ""), *path)
        src = value.get("src")
        if isinstance(src, list) and src and all(isinstance(x, str) and x in SOURCES
                                                 for x in src):
            src = tuple(src) if len(src) > 1 else src[0]
        elif src is not None and src not in SOURCES:
            raise self.fail(f"src is {', '.join(SOURCES[:-1])} or {SOURCES[-1]} (or a list "
                            "of them)", *path)
        conn = value.get("conn")
        if isinstance(conn, str):
            self._named(conn, known, "conn", *path)
        elif conn is not None and conn is not True and (
                isinstance(conn, bool) or not isinstance(conn, int) or conn < 1):
            raise self.fail("conn is a number from 1, a moment's name (its connection), or "
                            "true (any connection's event)", *path)
        nth = value.get("nth", 1)
        if isinstance(nth, bool) or not isinstance(nth, int) or nth == 0:
            raise self.fail("nth is a number from 1 (or negative from the end: -1 the last)",
                            *path)
        after: bool | tuple = value.get("after", False)
        if after is True or after == "previous":
            if not steps:
                raise self.fail("after = \"previous\" is a step's word (the previous step's "
                                "event): here, name a moment", *path)
            after = True
        elif isinstance(after, str) and after not in ("", "previous"):
            after = (self._named(after, known, "after", *path),)
        elif isinstance(after, list) and after and all(isinstance(a, str) for a in after):
            after = tuple(self._named(a, known, "after", *path) for a in after)
        elif after is not False:
            raise self.fail("after = \"previous\" (after the previous step's event), a "
                            "moment's name, or a list of them (after the latest)", *path)
        before = value.get("before")
        if before is not None:
            if not isinstance(before, str):
                raise self.fail("before is a moment's name", *path)
            self._named(before, known, "before", *path)
        if "sender" in value and value["sender"] not in ("client", "server"):
            raise self.fail("sender is client or server", *path)
        if "flags_has" in value and (not isinstance(value["flags_has"], str) or
                                     not value["flags_has"].isalpha()):
            raise self.fail("flags_has is one flag: SYN, ACK, FIN, RST, PSH...", *path)
        if kind == "end" and set(value) - {"kind"}:
            raise self.fail("kind = \"end\" is the recording's last event: it takes no "
                            "other key", *path)
        if set(value) & {"largest", "median"} and "nth" in value:
            raise self.fail("largest and median pick one match: nth does not go with them",
                            *path)
        fields, ranges, texts = [], [], []
        for key, v in value.items():
            if key in _ANCHOR_KEYS:
                continue
            if isinstance(v, dict) and set(v) & {"prefix", "contains", "matches"}:
                self._known(v, {"prefix", "contains", "matches"}, *path)
                if not all(isinstance(x, str) for x in v.values()):
                    raise self.fail(f"{key} = {{ prefix = \"...\", contains = \"...\", "
                                    "matches = '...' }: texts", *path)
                pattern = None
                if "matches" in v:
                    try:
                        pattern = re.compile(v["matches"])
                    except re.error as exc:
                        raise self.fail(f"{key} = {{ matches = ... }}: {exc}", *path) from None
                texts.append((key, v.get("prefix"), v.get("contains"), pattern))
                continue
            if isinstance(v, dict):
                self._known(v, {"min", "max"}, *path)
                bounds = [v.get("min"), v.get("max")]
                if not v or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                for x in bounds if x is not None):
                    raise self.fail(f"{key} = {{ min = N, max = M }}: numbers, one or both",
                                    *path)
                ranges.append((key, *bounds))
                continue
            fields.append((key, self._values(key, v, *path)))
        excluded = []
        if "not" in value:
            if not isinstance(value["not"], dict) or not value["not"]:
                raise self.fail("not = { field = value }: fields the event must not hold",
                                *path)
            for key, v in value["not"].items():
                if key in ("src", "kind", "conn", "sender", "flags_has"):
                    raise self.fail(f"not = {{ {key} = ... }}: not for {key}, only the "
                                    "event's fields", *path)
                found = self._values(key, v, *path)
                excluded.append((key, found if isinstance(found, tuple) else (found,)))
        headers = []
        for key, wanted in (("has_header", True), ("lacks_header", False)):
            if key in value:
                named, inside = value[key], None
                if isinstance(named, dict):  # { name = "User-Agent", contains = "Chrome" }
                    self._known(named, {"name", "contains"}, *path)
                    named, inside = named.get("name"), named.get("contains")
                    if not isinstance(inside, str) or not inside:
                        raise self.fail(f"{key} = {{ name = \"User-Agent\", contains = "
                                        "\"Chrome\" }: a header's name and a text its value "
                                        "holds", *path)
                if not isinstance(named, str) or not named.strip():
                    raise self.fail(f"{key} is a header's name: Content-Length... (or "
                                    "{ name = ..., contains = ... })", *path)
                headers.append((named.strip(), wanted, inside))
        each = value.get("first_of_each")
        if each is not None and not isinstance(each, str):
            raise self.fail("first_of_each is a field's name (\"conn\": each connection's "
                            "first match)", *path)
        for key in ("repeats", "same_as_first", "last_of_each"):
            if key in value and (not isinstance(value[key], str) or not value[key]):
                raise self.fail(f"{key} is a field's name", *path)
        keep = value.get("keep", {})
        if not isinstance(keep, dict) or ("keep" in value and (
                not keep or "last_of_each" not in value)):
            raise self.fail("keep = { state = \"SYN_SENT\" } goes with last_of_each: what "
                            "each one's last match must hold", *path)
        keep = tuple((k, self._values(k, v, *path)) for k, v in keep.items())
        since, other = value.get("from"), value.get("other_than")
        if isinstance(since, list) and since and all(isinstance(m, str) for m in since):
            since = tuple(self._named(m, known, "from", *path) for m in since)
            since = since if len(since) > 1 else since[0]
        ready_has = value.get("ready_has")
        for key, named in (("from", since), ("other_than", other), ("ready_has", ready_has)):
            if named is not None and not isinstance(named, tuple):
                if not isinstance(named, str):
                    raise self.fail(f"{key} is a moment's name"
                                    + (" or a list of them (from the latest)"
                                       if key == "from" else ""), *path)
                self._named(named, known, key, *path)
        largest = value.get("largest")
        if isinstance(largest, list) and largest and all(isinstance(f, str) for f in largest):
            largest = tuple(largest) if len(largest) > 1 else largest[0]
        if largest is not None and not isinstance(largest, str | tuple):
            raise self.fail("largest is a field's name (of the matches, the one whose field "
                            "is largest) or a list of them (ties broken by the next)", *path)
        median = value.get("median")
        if median is not None and not isinstance(median, str):
            raise self.fail("median is a field's name: of the matches, the first whose field "
                            "is their median (the lower of the middle two)", *path)
        most_held = self._peak(value["most_held"], known, *path, "most_held") \
            if "most_held" in value else None
        none_held = self._peak(value["none_held"], known, *path, "none_held") \
            if "none_held" in value else None
        return Anchor(kind=kind, src=src, conn=conn, nth=nth, after=after, before=before,
                      flags_has=value.get("flags_has"), sender=value.get("sender"),
                      fields=tuple(fields), ranges=tuple(ranges), moment=moment,
                      excluded=tuple(excluded), largest=largest, headers=tuple(headers),
                      since=since, other_than=other, first_of_each=each, texts=tuple(texts),
                      most_held=most_held, median=median, ready_has=ready_has,
                      none_held=none_held, repeats=value.get("repeats"),
                      same_as_first=value.get("same_as_first"),
                      last_of_each=value.get("last_of_each"), keep=keep)

    def _values(self, key: str, v: Any, *path: Any) -> Any:
        """A field's wanted value: a text, number or boolean, or a list of them (any)."""
        if isinstance(v, list) and v and all(isinstance(x, (str, int, float, bool))
                                             for x in v):
            return tuple(v)
        if not isinstance(v, (str, int, float, bool)):
            raise self.fail(f"an anchor's field {key} must be a text, number, boolean, a "
                            "list of them (any of them) or { min = N, max = M }", *path)
        return v

    def _named(self, name: str, known: frozenset | set, key: str, *path: Any) -> str:
        if name not in known:
            raise self.fail(f"{key} = {name!r} names no moment written before it"
                            + (f" (known: {', '.join(sorted(known))})" if known else
                               " (name one in [moments], or give a step an id)"), *path)
        return name

    def _expect(self, expect: Any) -> list[tuple[Anchor, Anchor | None, str, int | None]]:
        if not isinstance(expect, list):
            raise self.fail("expect must be [[expect]] tables", "expect")
        out = []
        self.expect_when: list[dict] = []  # each one's if: checked only when it holds
        for k, item in enumerate(expect):
            if not isinstance(item, dict):
                raise self.fail("each [[expect]] is a table", "expect", k)
            self._known(item, {"at", "before", "says", "fact", "min", "max", "none", "unlike",
                               "if"}, "expect", k)
            self.expect_when.append(self._condition(item["if"], "expect", k, "if",
                                                    facts=self.facts)
                                    if "if" in item else {})
            item = {key: v for key, v in item.items() if key != "if"}
            says = item.get("says", "")
            if not isinstance(says, str):
                raise self.fail("says is a text", "expect", k, "says")
            if "unlike" in item:
                pair = (item.get("fact"), item["unlike"])
                if not all(isinstance(f, str) and f in self.facts for f in pair) or \
                        set(item) - {"fact", "unlike", "says"}:
                    raise self.fail("fact = \"a\", unlike = \"b\": two facts that must differ",
                                    "expect", k)
                out.append((pair, "unlike", says, self.lines.line("expect", k)))
                continue
            if "none" in item:
                if set(item) - {"none", "says"}:
                    raise self.fail("an [[expect]] with none = { ... } says only that (and "
                                    "says)", "expect", k)
                out.append((self._anchor(item["none"], "expect", k, "none", known=self.names),
                            "none", says, self.lines.line("expect", k)))
                continue
            if "fact" in item:
                fact, bounds = item["fact"], {b: item[b] for b in ("min", "max") if b in item}
                if not isinstance(fact, str) or fact not in self.facts or \
                        self.facts[fact][0] in ("header", "regex", "words", "gaps") or \
                        (self.facts[fact][0] == "field" and
                         "number" not in _field_types(self.facts[fact][1])):
                    raise self.fail("fact names a number fact of [facts] (a count, ms, "
                                    "seconds, a number field, sum, median, max, ratio, "
                                    "difference, held or peak)", "expect", k, "fact")
                if not bounds or set(item) & {"at", "before"} or any(
                        isinstance(x, bool) or not isinstance(x, (int, float))
                        for x in bounds.values()):
                    raise self.fail("an [[expect]] on a fact gives min, max or both (numbers)",
                                    "expect", k)
                out.append((fact, bounds, says, self.lines.line("expect", k)))
                continue
            if "at" not in item:
                raise self.fail("[[expect]] needs at = { kind = ... }", "expect", k)
            if "min" in item or "max" in item:
                raise self.fail("min and max bound a fact: fact = \"name\"", "expect", k)
            anchor = self._anchor(item["at"], "expect", k, "at", known=self.names)
            before = self._anchor(item["before"], "expect", k, "before", known=self.names) \
                if "before" in item else None
            out.append((anchor, before, says, self.lines.line("expect", k)))
        return out

    def _steps(self, steps: Any) -> list[_StepSpec]:
        if not isinstance(steps, list) or not steps:
            raise self.fail("a lesson needs [[steps]]", "steps")
        out = []
        known = set(self.names)
        self._step_names = known  # (the variants' anchors name the same moments)
        for k, step in enumerate(steps):
            where = ("steps", k)
            if not isinstance(step, dict):
                raise self.fail("each [[steps]] is a table", *where)
            self._known(step, {"id", "at", "view", "conn", "en", "zh_CN", "ask", "footnote",
                               "when", "optional", "needs", "in_time"}, *where)
            for key in ("optional", "in_time"):
                if key in step and not isinstance(step[key], bool):
                    raise self.fail(f"{key} must be true or false", *where, key)
            if "needs" in step and step["needs"] != ["browser"]:
                raise self.fail("a step's needs = [\"browser\"]: shown only where the "
                                "lesson's browser client runs", *where, "needs")
            if "at" not in step:
                raise self.fail(f"step {k + 1} needs at = {{ kind = ... }}", *where)
            anchor = self._anchor(step["at"], *where, "at", known=known, steps=True)
            view = step.get("view", "sequence")
            if view not in VIEWS:
                raise self.fail(f"view is one of {', '.join(VIEWS)}", *where, "view")
            text = self._text({lang: step[lang] for lang in LANGS if lang in step} or None,
                              *where, "en")
            assert text is not None
            self._words(text, *where, "en")
            conn = step.get("conn")
            if isinstance(conn, str) and conn != "none":
                self._named(conn, known, "conn", *where, "conn")
            elif conn is not None and conn != "none" and (
                    isinstance(conn, bool) or not isinstance(conn, int) or conn < 1):
                raise self.fail("conn is the connection to select: a number from 1, a "
                                "moment's name (its connection), or \"none\"", *where, "conn")
            ident = step.get("id")
            if ident is not None:
                if not isinstance(ident, str) or not _NAME.fullmatch(ident) or \
                        ident in known or ident in _KINDS or ident in _RESERVED:
                    raise self.fail("id is a new name: lowercase letters, digits and _",
                                    *where, "id")
                known.add(ident)
            spec = _StepSpec(anchor, view, text, self.lines.line(*where), conn,
                             footnote=step.get("footnote"), ident=ident,
                             optional=step.get("optional", False),
                             browser="needs" in step, in_time=step.get("in_time", False))
            if spec.browser and not any(kind == "browser" for _, clients in self.runs
                                        for kind, _, _ in clients):
                raise self.fail("needs = [\"browser\"]: the lesson has no browser client",
                                *where, "needs")
            if spec.footnote is not None and not isinstance(spec.footnote, str):
                raise self.fail("footnote is a text", *where, "footnote")
            if "ask" in step:
                self._ask(spec, step["ask"], *where, "ask")
            if "when" in step:
                spec.variants = self._variants(step["when"], *where, "when")
            out.append(spec)
        return out

    def _ask(self, spec: _StepSpec, ask: Any, *path: Any) -> None:
        if not isinstance(ask, dict):
            raise self.fail("ask is a table: [steps.ask] en = \"...?\"", *path)
        self._known(ask, set(LANGS) | {"choices", "answer", "previous"}, *path)
        if "previous" in ask and ask["previous"] is not True:
            raise self.fail("previous = true: the question is asked on the step shown before "
                            "this one (this step answers it)", *path, "previous")
        spec.ask_previous = "previous" in ask
        spec.question = self._text({lang: ask[lang] for lang in LANGS if lang in ask} or None,
                                   *path, "en")
        assert spec.question is not None
        self._words(spec.question, *path, "en")
        choices = ask.get("choices")
        if choices is None:
            if "answer" in ask:
                raise self.fail("answer goes with choices", *path, "answer")
            return
        if not isinstance(choices, list) or not 2 <= len(choices) <= 6:
            raise self.fail("choices is a list of 2 to 6 answers", *path, "choices")
        spec.choices = [self._text(c, *path, "choices") for c in choices]  # type: ignore[misc]
        answer = ask.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int) or \
                not 1 <= answer <= len(choices):
            raise self.fail(f"answer is the right choice's number, 1 to {len(choices)}",
                            *path, "answer")
        spec.answer = answer - 1

    def _condition(self, condition: Any, *path: Any, facts: dict | None = None) -> dict:
        """An `if`: facts and what each must be (a value, a list of them, a range; of a
        list fact, { count, each, first, ratios }, each a value or a range)."""
        facts = self.facts if facts is None else facts
        if not isinstance(condition, dict) or not condition:
            raise self.fail("if = { fact = value }: facts and what they must be", *path)

        def bounds(wanted: Any) -> bool:
            return not isinstance(wanted, dict) or (bool(wanted) and not set(wanted) - {
                "min", "max"} and all(not isinstance(x, bool) and isinstance(x, (int, float))
                                      for x in wanted.values()))
        for fact, wanted in condition.items():
            if fact not in PLACEHOLDERS and fact not in facts:
                raise self.fail(f"unknown fact {fact!r} in if", *path)
            if facts.get(fact, ("",))[0] == "words":
                raise self.fail(f"if {fact}: a words fact is said, not tested", *path)
            listed = facts.get(fact, ("",))[0] == "gaps"
            if listed and (not isinstance(wanted, dict) or not wanted or
                           set(wanted) - set(_LIST_TESTS) or
                           not all(bounds(v) for v in wanted.values())):
                raise self.fail(f"if {fact} = {{ count = N, each = {{ min, max }}, first = ..., "
                                "ratios = ... }: a list fact's tests", *path)
            if not listed and not bounds(wanted):
                raise self.fail(f"if {fact} = {{ min = N, max = M }}: numbers, one or both",
                                *path)
        return dict(condition)

    def _variants(self, when: Any, *path: Any) -> tuple:
        if not isinstance(when, list):
            raise self.fail("when is [[steps.when]] tables", *path)
        out = []
        for k, item in enumerate(when):
            if not isinstance(item, dict) or not isinstance(item.get("if"), dict):
                raise self.fail("each [[steps.when]] needs if = { fact = value }", *path, k)
            self._known(item, set(LANGS) | {"if", "ask", "at", "view", "conn"}, *path, k)
            placed = bool(set(item) & {"at", "view", "conn"})
            # (a variant that stands elsewhere is chosen before its step's event is
            # found: on the [facts] alone)
            self._condition(item["if"], *path, k, "if",
                            facts={**self.facts, **({n: ("",) for n in PLACEHOLDERS}
                                                   if not placed else {})})
            if placed and set(item["if"]) & set(PLACEHOLDERS):
                raise self.fail("a variant with at, view or conn tests [facts] only",
                                *path, k, "if")
            text = self._text({lang: item[lang] for lang in LANGS if lang in item} or None,
                              *path, k, "en")
            assert text is not None
            self._words(text, *path, k)
            question = None
            if "ask" in item:
                ask = item["ask"]
                if not isinstance(ask, dict) or set(ask) - set(LANGS):
                    raise self.fail("ask = { en = \"...?\", zh_CN = \"...？\" }: the step's "
                                    "question in these words", *path, k, "ask")
                question = self._text(dict(ask) or None, *path, k, "ask")
                assert question is not None
                self._words(question, *path, k, "ask")
            variant = _Variant(dict(item["if"]), text, question)
            if placed:
                variant.anchor = self._anchor(item["at"], *path, k, "at",
                                              known=self._step_names, steps=True) \
                    if "at" in item else None
                variant.view = item.get("view")
                if variant.view is not None and variant.view not in VIEWS:
                    raise self.fail(f"view is one of {', '.join(VIEWS)}", *path, k, "view")
                variant.conn = item.get("conn")
                if isinstance(variant.conn, str) and variant.conn != "none":
                    self._named(variant.conn, self._step_names, "conn", *path, k, "conn")
            out.append(variant)
        return tuple(out)

    # ---------------------------------------------------------------- the lesson
    def lesson(self) -> Lesson:
        return Lesson(name=self.name, title=self.title, section=self.section,  # type: ignore[arg-type]
                      summary=self.summary, record=self.record, steps=self.make_steps,
                      check=self.check, needs=self.needs, length=self.length)

    def length(self) -> int:
        """Its steps on this machine (a step that needs the browser: where it runs)."""
        from .basics import _chromium
        browser = _chromium() is not None
        return sum(1 for spec in self.steps if browser or not spec.browser)

    def needs(self) -> tuple[bool, str]:
        import importlib
        from .basics import _chromium
        if any(kind == "browser" and what[1] is None for _, clients in self.runs
               for kind, what, _ in clients) and _chromium() is None:
            return False, "its browser client needs Chromium (chromium on PATH)"
        for need in self.requires:
            module, function = NEEDS[need]
            ok, why = getattr(importlib.import_module(f"{__package__}.{module}"), function)()
            if not ok:
                return False, why
        from .scripts import SCRIPTS  # (after the machine's: a script may raise a limit)
        for script in sorted({what for _, clients in self.runs for kind, what, _ in clients
                              if kind == "script"}):
            ok, why = SCRIPTS[script].needs()
            if not ok:
                return False, why
        return True, ""

    def record(self, workdir: Path) -> Path:
        port: list[str] = []
        if self.same_port:  # one port for every run, free when the lesson begins
            from .kernel import _free_port
            port = ["--port", str(_free_port())]
        if len(self.runs) == 1:
            options, clients = self.runs[0]
            return self._record(workdir, self.name, [*options, *port], clients)
        from .kernel import _merge
        traces = [self._fail(workdir, f"{self.name}-{k + 1}", [*options, *port])
                  if k in getattr(self, "failing", ()) else
                  self._record(workdir, f"{self.name}-{k + 1}", [*options, *port], clients)
                  for k, (options, clients) in enumerate(self.runs)]
        return _merge(Path(workdir) / f"{self.name}.jsonl", traces, [], lesson=self.name)

    def _fail(self, workdir: Path, name: str, options: list[str]) -> Path:
        """A run whose engine must fail to start: its trace (which says why). One that
        serves after all is stopped, and its trace kept: the lesson's [[expect]] says
        what did not happen."""
        from .base import Engine
        from .basics import OBSERVING
        engine = Engine(workdir, name, *_here(options), *OBSERVING)
        try:
            deadline = time.monotonic() + 10
            while engine.proc.poll() is None and time.monotonic() < deadline \
                    and "SockScope serving" not in engine.output:  # it listened after all
                engine._read(0.05)
        finally:
            engine.finish(stop=engine.proc.poll() is None)
        return engine.trace

    def _record(self, workdir: Path, name: str, options: list[str], clients: list) -> Path:
        extra: list = []  # the scripts' own events (a look at the site...), merged after
        later: list = []  # what the scripts hold until the engine is gone (idle clients)
        try:
            trace = self._drive(workdir, name, options, clients, extra, later)
        finally:
            for close in later:
                close()
        if not extra:
            return trace
        from .kernel import _merge
        return _merge(Path(workdir) / f"{name}-merged.jsonl", [trace], extra, lesson=self.name)

    def _drive(self, workdir: Path, name: str, options: list[str], clients: list,
               extra: list, later: list) -> Path:
        from .basics import OBSERVING, _chromium, _Served, browse
        options = _here(options)
        with _Served(workdir, name, *options, *OBSERVING, control=True) as served:
            served.after_stop = later
            loads = 0  # started; each says "connections opened: ..." when it is done
            for kind, what, pause in self._in_place(clients, _chromium()):
                if kind in ("load", "start"):
                    served.command(f"load {what}")
                    loads += 1
                    if kind == "load":  # (and every one started before it)
                        served.wait_loads(loads, timeout=60)
                elif kind == "script":
                    from .scripts import SCRIPTS
                    extra += SCRIPTS[what].run(served, self.name) or []
                else:
                    browser = _chromium()
                    if browser is None:
                        raise LessonError(f"{self.name}: the browser client needs Chromium")
                    browse(browser, served.url.rstrip("/") + what[0], workdir, self.name)
                time.sleep(pause)
            if loads:
                served.wait_loads(loads, timeout=60)
            return served.stop()

    @staticmethod
    def _in_place(clients: list, browser: str | None) -> list:
        """The clients as they run here: where there is no Chromium, each browser client's
        ``otherwise`` clients in its place."""
        out = []
        for kind, what, pause in clients:
            if kind == "browser" and browser is None and what[1] is not None:
                out += what[1]
            else:
                out.append((kind, what, pause))
        return out

    def resolve(self, log: EventLog) -> dict[str, int | None]:
        """Each moment's log index in this recording (None where it has none)."""
        moments: dict[str, int | None] = {}
        for name, choices, _ in self.moments:
            found = None
            for anchor in choices:
                found = anchor.find(log, -1, moments)
                if found is not None:
                    break
            moments[name] = found
        return moments

    def values(self, log: EventLog, moments: dict[str, int | None]) -> dict[str, Any]:
        """Each fact's value in this recording ("?" where a moment it needs is missing)."""
        out: dict[str, Any] = {}
        for name, spec in self.facts.items():
            if spec[0] in ("ms", "seconds"):
                a, b = moments.get(spec[1]), moments.get(spec[2])
                out[name] = "?" if a is None or b is None else \
                    (log[b].t_ns - log[a].t_ns) / (1e6 if spec[0] == "ms" else 1e9)
            elif spec[0] == "field":
                at = moments.get(spec[2])
                if at is None:
                    out[name] = "?"
                elif spec[1] in _ATTRIBUTES:
                    out[name] = getattr(log[at], spec[1])
                else:
                    found = log[at].data.get(spec[1], "?")
                    number = _number(found)
                    out[name] = found if number is None else \
                        number * spec[3] if spec[3] != 1 else number
            elif spec[0] in _AGGREGATES:
                how, field, anchor, missing = spec
                numbers = []
                for i in anchor.matching(log, moments):
                    number = _number(log[i].data.get(field, missing))
                    if number is not None:
                        numbers.append(number)
                out[name] = _AGGREGATES[how](numbers) if numbers else "?"
            elif spec[0] == "regex":
                at = moments.get(spec[3])
                said = "?" if at is None else _first_line(log[at]) if spec[2] == "first_line" \
                    else log[at].data.get(spec[2])
                found = spec[1].match(said) if isinstance(said, str) and at is not None else None
                out[name] = found.group(1) if found else "?"
            elif spec[0] == "peak":
                out[name] = spec[1].measure(log, moments)[0]
            elif spec[0] == "held":
                at = moments.get(spec[2])
                out[name] = "?" if at is None else spec[1].held(log, [at], moments)[0]
            elif spec[0] == "gaps":  # seconds between matches: the first way with two
                times = log.column("t_ns")
                found: list = []
                for way in spec[1]:
                    found = sorted({i for part in way for i in (
                        [part.find(log, -1, moments)] if isinstance(part, Named)
                        else part.matching(log, moments)) if i is not None})
                    if len(found) >= 2:
                        break
                out[name] = [(int(times[b]) - int(times[a])) / 1e9
                             for a, b in zip(found, found[1:])]
            elif spec[0] == "items":
                out[name] = len(out[spec[1]]) + spec[2]
            elif spec[0] == "words":
                out[name] = _Said(next((said for when, said in spec[1] if all(
                    _holds(out.get(fact), want) for fact, want in when.items())), {"en": ""}))
            elif spec[0] == "durations":
                spans = _durations(log, spec[1], spec[2], moments)
                if not spans:
                    out[name] = "?"
                elif spec[3] == "sum":
                    out[name] = sum(b - a for a, b in spans) / 1e6
                else:
                    out[name] = (max(b for _, b in spans) - min(a for a, _ in spans)) / 1e6
            elif spec[0] == "ratio":
                a, b = out.get(spec[1]), out.get(spec[2])
                out[name] = a / b if _number(a) is not None and _number(b) else "?"
            elif spec[0] == "difference":
                a, b = out.get(spec[1]), out.get(spec[2])
                out[name] = a - b if _number(a) is not None and _number(b) is not None \
                    and not isinstance(a, list) and not isinstance(b, list) else "?"
            elif spec[0] == "header":  # a header's value in the event's head ("": none)
                at = moments.get(spec[2])
                out[name] = "?" if at is None else \
                    header_value(str(log[at].data.get("head") or ""), spec[1])
            else:
                _, anchor, distinct, times, each = spec
                if distinct:
                    seen: dict = {}
                    for i in anchor.matching(log, moments):
                        key = tuple(_field(log[i], d) for d in distinct)
                        seen[key] = seen.get(key, 0) + 1
                    seen.pop((None,) * len(distinct), None)  # (no connection is not one more)
                    if each is not None:  # the keys with that many matches only
                        seen = {k: n for k, n in seen.items() if _holds(n, each)}
                    out[name] = len(seen) * times
                else:
                    out[name] = anchor.count(log, moments) * times
        return out

    def check(self, log: EventLog) -> None:
        moments = self.resolve(log)
        values = self.values(log, moments)
        for (anchor, before, says, line), when in zip(self.expect, self.expect_when):
            if not all(_holds(values.get(fact), want) for fact, want in when.items()):
                continue  # (it asks only of a recording where its if holds)
            where = f"{self.path}:{line}: " if line else f"{self.path}: "
            if before == "unlike":  # two facts that must differ
                a, b = anchor
                if values[a] == values[b]:
                    raise LessonError(f"{where}{a} and {b} are both {values[a]!r}"
                                      + (f" ({says})" if says else ""))
                continue
            if isinstance(anchor, str):  # a fact within bounds
                value, bounds = values[anchor], before
                if not _holds(value, bounds):
                    wanted = " and ".join(f"{'at least' if b == 'min' else 'at most'} {v}"
                                          for b, v in bounds.items())
                    raise LessonError(f"{where}{anchor} is {value}, not {wanted}"
                                      + (f" ({says})" if says else ""))
                continue
            i = anchor.find(log, -1, moments)
            if before == "none":  # the recording must have no such event
                if i is not None:
                    raise LessonError(f"{where}the recording has a {anchor.said()}"
                                      + (f" ({says})" if says else ""))
                continue
            if i is None:
                raise LessonError(f"{where}the recording has no {anchor.said()}"
                                  + (f" ({says})" if says else ""))
            if before is not None:
                j = before.find(log, -1, moments)
                if j is not None and j < i:
                    raise LessonError(f"{where}{before.said()} came before {anchor.said()}"
                                      + (f" ({says})" if says else ""))

    def make_steps(self, log: EventLog) -> list[Step]:
        numbered = connections(log)
        moments = self.resolve(log)
        values = self.values(log, moments)
        steps: list[Step] = []
        shown: list[tuple[_StepSpec, int]] = []  # each step kept, and its event
        previous = -1
        from .basics import _chromium
        browser = _chromium() is not None
        for k, spec in enumerate(self.steps):
            if spec.browser and not browser:
                continue
            placed = next((v for v in spec.variants if v.placed() and all(
                _holds(values.get(name), want) for name, want in v.when.items())), None)
            if placed is not None:
                spec = dataclasses.replace(
                    spec, anchor=placed.anchor or spec.anchor, view=placed.view or spec.view,
                    conn=spec.conn if placed.conn is None else placed.conn,
                    text=placed.text, question=placed.question or spec.question, variants=())
            index = spec.anchor.find(log, previous, moments)
            if index is None and spec.optional:
                continue
            if index is None:
                where = f"{self.path}:{spec.line}" if spec.line else str(self.path)
                raise LessonError(f"{where}: step {k + 1} found no {spec.anchor.said()} in "
                                  "the recording")
            if spec.ident:
                moments[spec.ident] = index
            if spec.conn == "none":
                conn = None
            elif isinstance(spec.conn, str):
                at = moments.get(spec.conn)
                conn = log[at].conn if at is not None else None
            elif isinstance(spec.conn, int):
                conn = numbered[spec.conn - 1] if spec.conn <= len(numbered) else None
            else:
                conn = log[index].conn
            facts = {**_facts(log, index, previous, conn, k, len(self.steps)), **values}
            text, asked = spec.text, spec.question
            for variant in spec.variants:
                if variant.placed():
                    continue  # (chosen above, or not at all)
                if all(_holds(facts.get(name), value) for name, value in variant.when.items()):
                    text, asked = variant.text, variant.question or spec.question
                    break
            try:
                said = {lang: WORDS.format(words, **_in(facts, lang))
                        for lang, words in text.items()}
                question = {lang: WORDS.format(words, **_in(facts, lang))
                            for lang, words in asked.items()} if asked else None
            except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
                where = f"{self.path}:{spec.line}" if spec.line else str(self.path)
                raise LessonError(f"{where}: step {k + 1}'s words cannot be written with this "
                                  f"recording's values: {exc}") from None
            steps.append(Step(said, _at(index), spec.view, _at_conn(conn), question=question,
                              footnote=spec.footnote, choices=spec.choices,
                              answer=spec.answer))
            shown.append((spec, index))
            previous = index
        return self._arranged(steps, shown)

    def _arranged(self, steps: list[Step], shown: list[tuple["_StepSpec", int]]
                  ) -> list[Step]:
        """Neighbouring in_time steps in the order their events happened (never
        backwards); then each question a step answers asked on the step shown before it."""
        k = 0
        while k < len(steps):
            if not shown[k][0].in_time:
                k += 1
                continue
            end = k
            while end < len(steps) and shown[end][0].in_time:
                end += 1
            order = sorted(range(k, end), key=lambda j: shown[j][1])
            steps[k:end] = [steps[j] for j in order]
            shown[k:end] = [shown[j] for j in order]
            k = end
        for k, (spec, _) in enumerate(shown):
            if not spec.ask_previous:
                continue
            if k == 0:
                where = f"{self.path}:{spec.line}" if spec.line else str(self.path)
                raise LessonError(f"{where}: its question is asked on the step before it, "
                                  "and this recording shows none before it")
            mine = steps[k]
            steps[k - 1] = dataclasses.replace(steps[k - 1], question=mine.question,
                                               choices=mine.choices, answer=mine.answer)
            steps[k] = dataclasses.replace(mine, question=None, choices=None, answer=None)
        return steps


def _here(options: list[str]) -> list[str]:
    """The engine's options on this machine: lab = "auto" is --lab where the lab runs."""
    if _LAB_IF_POSSIBLE not in options:
        return options
    from engine.lab import lab_available
    return [o for o in options if o != _LAB_IF_POSSIBLE] + \
        (["--lab"] if lab_available()[0] else [])


def _load_problem(words: list[str]) -> str | None:
    """What ``sockscope load`` would say is wrong with these options (None: nothing)."""
    import contextlib
    import io
    from engine.cli import build_parser
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            parsed = build_parser().parse_args(["load", "http://127.0.0.1/", *words])
    except SystemExit:
        lines = [line for line in said.getvalue().splitlines() if line.strip()]
        return lines[-1].split("error: ", 1)[-1] if lines else "not valid"
    return "--trace" if getattr(parsed, "trace", None) is not None else None


def _at(index: int) -> Callable[[EventLog], int]:
    return lambda log: index


def _at_conn(conn: str | None) -> Callable[[EventLog], str | None]:
    return lambda log: conn


def load(path: Path | str) -> Lesson:
    """The lesson a file describes; ``LessonFileError`` (path:line: what) if it cannot."""
    return LessonFile(Path(path)).lesson()


def is_file(name: str) -> bool:
    """Does a ``sockscope lesson`` argument name a lesson file rather than a lesson?"""
    return name.endswith(".toml") or "/" in name or "\\" in name
