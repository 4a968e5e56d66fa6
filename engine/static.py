"""The static site: safe path resolution, content types and a small-file cache.

The lecture's server joined the request path onto its root as it came
(``open('.' + path)``), so ``/../../etc/passwd`` read any file. Here every path
is percent-decoded, split, and checked segment by segment; the final file is
resolved through symlinks and must still lie under the root.
"""
from __future__ import annotations

import mimetypes
import os
import stat
import time
from email.utils import formatdate
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import httptools

from .http import etag_for, response_head

# What a path segment may keep unencoded (RFC 3986 pchar, less ":", refused anyway).
_PCHAR = "!$&'()*+,;=@-._~"
SMALL_FILE = 256 * 1024  # files up to this size are cached in memory and sent in one write

_TYPES = {
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".json": "application/json", ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".gif": "image/gif", ".bmp": "image/bmp", ".ico": "image/x-icon", ".webp": "image/webp",
    ".wasm": "application/wasm", ".pdf": "application/pdf", ".xml": "application/xml",
}


def content_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def default_root() -> Path:
    """The site SockScope serves when no ``--root`` is given."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "html"
    if (checkout / "index.html").is_file():
        return checkout
    try:  # installed: the site ships as the package data of ``sockscope_site``
        import sockscope_site
        return Path(sockscope_site.__path__[0])
    except (ImportError, IndexError):
        return checkout


@dataclass(slots=True)
class Resolved:
    status: int  # 200, 301, 403 or 404
    path: str | None = None  # the file to send (status 200)
    location: str | None = None  # for 301
    reason: str = ""


def validators(mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """The fields every answer with a file carries: its validators for conditional
    requests, that ranges are served, and that a cache must revalidate before reuse
    (so that a browser revisiting the demo asks, and the 304 shows on the wire)."""
    return (("Last-Modified", formatdate(mtime_ns // 1_000_000_000, usegmt=True)),
            ("ETag", etag_for(mtime_ns, size)), ("Accept-Ranges", "bytes"),
            ("Cache-Control", "no-cache"))


@dataclass(slots=True)
class CachedFile:
    body: bytes
    mtime_ns: int
    size: int
    ctype: str
    _date: str = ""
    _answers: dict[tuple[bool, bool], bytes] = field(default_factory=dict)
    fields: tuple[tuple[str, str], ...] = ()
    # inode, ctime, mtime and size: a file edited, replaced by rename or chmod-ed is read again
    stamp: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        self.fields = validators(self.mtime_ns, self.size)

    def answer(self, date: str, keep_alive: bool, head_only: bool) -> bytes:
        """The whole 200 response, built once per second per variant."""
        if date != self._date:
            self._date = date
            self._answers = {}
        key = (keep_alive, head_only)
        answer = self._answers.get(key)
        if answer is None:
            head = response_head(200, self.size, self.ctype, date, keep_alive, self.fields)
            answer = self._answers[key] = head if head_only else head + self.body
        return answer


class Site:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(os.path.realpath(root if root is not None else default_root()))
        if not self.root.is_dir():
            raise FileNotFoundError(f"site root {self.root} is not a directory")
        self._root_str = str(self.root)
        self._resolved: dict[bytes, Resolved] = {}
        self._resolved_at = 0.0
        self._files: dict[str, CachedFile] = {}

    def resolve(self, target: bytes, now: float | None = None) -> Resolved:
        """Map a request-target to a file under the root, or to the status to answer."""
        if now is None:
            now = time.monotonic()
        if now - self._resolved_at > 1.0:  # the site may change: look again each second
            self._resolved.clear()
            self._resolved_at = now
        hit = self._resolved.get(target)
        if hit is not None:
            return hit
        result = self._resolve(target)
        # Only files found are remembered (their file is looked at again when sent):
        # a page created or a folder added is served at once, not a second later.
        if result.status == 200 and len(self._resolved) < 4096:
            self._resolved[target] = result
        return result

    def forget(self) -> None:
        self._resolved.clear()
        self._files.clear()

    def _resolve(self, target: bytes) -> Resolved:
        if target == b"*":
            return Resolved(404, reason="asterisk form")
        try:
            raw_path = httptools.parse_url(target).path or b"/"
        except httptools.HttpParserInvalidURLError:
            return Resolved(404, reason="unparsable target")
        if not raw_path.startswith(b"/"):
            return Resolved(404, reason="relative target")
        decoded = unquote_to_bytes(raw_path)
        if b"\x00" in decoded:
            return Resolved(404, reason="NUL byte in path")
        if b"\\" in decoded:
            return Resolved(404, reason="backslash in path")
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            return Resolved(404, reason="path is not UTF-8")
        parts = []
        for segment in text.split("/"):
            if segment in ("", "."):
                continue
            if segment == "..":
                return Resolved(403, reason="'..' in path")
            if segment.startswith("."):
                return Resolved(404, reason="dotfile")
            if ":" in segment or any(ord(c) < 32 for c in segment):
                return Resolved(404, reason="reserved character in path")
            parts.append(segment)
        candidate = os.path.join(self._root_str, *parts)
        real = os.path.realpath(candidate)
        if real != self._root_str and not real.startswith(self._root_str + os.sep):
            return Resolved(403, reason="resolves outside the site root")
        try:
            st = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            return Resolved(404, reason="no such file")
        except OSError as exc:
            return Resolved(403, reason=exc.strerror or "unreadable")
        if stat.S_ISDIR(st.st_mode):
            if not text.endswith("/"):
                # Rebuilt from the checked segments: "//host" must not become
                # "Location: //host/", which browsers read as another site. Each
                # segment percent-encoded as UTF-8 (RFC 3986): a header is ASCII, and
                # "a b", "q?x", "café" or "日本" must lead back to the same folder.
                return Resolved(301, location="/" + "".join(quote(p, safe=_PCHAR) + "/"
                                                            for p in parts))
            index = os.path.realpath(os.path.join(real, "index.html"))
            if not index.startswith(self._root_str + os.sep):
                return Resolved(403, reason="index.html resolves outside the site root")
            if os.path.isfile(index):
                return Resolved(200, path=index)
            return Resolved(404, reason="directory without index.html")
        if not stat.S_ISREG(st.st_mode):
            return Resolved(403, reason="not a regular file")
        if text.endswith("/"):  # "/index.html/": a file is not a folder (nginx: 404)
            return Resolved(404, reason="a file with a trailing slash")
        return Resolved(200, path=real)

    def small_file(self, path: str) -> CachedFile | None:
        """The cached bytes of ``path`` if it is small. Checked on disk at every
        request (one stat): a file edited, replaced, made unreadable or deleted is
        answered for what it is now, never from a stale copy."""
        cached = self._files.get(path)
        try:
            st = os.stat(path)
        except OSError:
            self._files.pop(path, None)
            self._resolved.clear()
            return None
        if st.st_size > SMALL_FILE:
            return None
        stamp = (st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size)
        if cached is not None and cached.stamp == stamp:
            return cached
        with open(path, "rb") as f:
            body = f.read(SMALL_FILE + 1)
        if len(body) > SMALL_FILE:
            return None
        cached = CachedFile(body, st.st_mtime_ns, len(body), content_type(path), stamp=stamp)
        if len(self._files) < 1024:
            self._files[path] = cached
        return cached

