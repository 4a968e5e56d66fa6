"""Lessons on requests and connections: the first request (3.1), pages, pictures
and a 404 (3.3), short vs keep-alive connections (3.7–3.8), and the regular
expression that cuts the path out of the request line (1)."""
from __future__ import annotations

import dataclasses
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine.server import default_mode

from ..model import EventLog
from ..model.text import header_value
from .base import Engine, Lesson, LessonError, Step, find, last
from .files import FILES
from .files import load as load_file

# These lessons are about HTTP and TCP, not the loop: epoll on Linux, the portable
# selectors mode (kqueue, select) where there is no epoll.
MODE = default_mode()


# ---------------------------------------------------------------- first-request
# Written as a lesson file (files/first-request.toml): the format anyone can use.
FIRST_REQUEST = load_file(FILES / "first-request.toml")

LESSONS = [FIRST_REQUEST]


# ---------------------------------------------------------------- serve in the background
# How the recordings watch the kernel: states polled every millisecond (observed
# where sock_diag answers, else inferred), packets captured where allowed, else
# derived. Tests replace it to record as an unprivileged machine would.
OBSERVING: tuple[str, ...] = ("--kernel-interval", "0.001")


class _Served(Engine):
    """``sockscope serve --port 0`` running in the background while a scenario drives
    it: ready once it says where it serves and that it records (the kernel observer
    and the capture run by then: nothing of the scenario is missed)."""

    def __init__(self, workdir: Path, name: str, *options: str, control: bool = False,
                 timeout: float = 15.0) -> None:
        super().__init__(workdir, name, "--port", "0", *options,
                         *(["--control"] if control else []), control=control)
        self.options = options  # serve's options (a script may read its --mode)
        self.after_stop: list[Callable[[], None]] = []  # a script's, once the engine is gone
        self.stop_timeout = 10.0  # seconds it may take to stop (10,000 threads: more)
        first = self.wait_for(lambda line: True, timeout)
        match = re.search(r" at (http://\S+/)", first)
        if match is None:
            self.kill()
            raise LessonError(f"{name}: serve said {first!r}, not where it serves")
        self.url = match.group(1)
        self.wait_for(lambda line: line.startswith("recording events to"), timeout)

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def wait_loads(self, count: int, timeout: float = 15.0) -> None:
        self.wait_for(lambda line: line.startswith("connections opened:"), timeout, count)

    def stop(self, timeout: float | None = None) -> Path:
        """Stop it (it finishes its trace); the trace, or LessonError if it failed."""
        code = self.finish(self.stop_timeout if timeout is None else timeout)
        if code not in (0, -signal.SIGINT):
            raise LessonError(f"{self.name}: the engine failed ({code}): "
                              f"{self.stderr().strip()[-300:]}")
        return self.trace

    quit = stop


def _responses(log: EventLog, where: Callable[[dict], bool]) -> list[int]:
    return [int(i) for i in log.indices(kinds=["response"], src="server")
            if where(log[int(i)].data)]


def _conn_of(index: int | None) -> Callable[[EventLog], str | None]:
    return lambda log: log[index].conn if index is not None else None


def _with_request_sent(log: EventLog, conn: str, index: int) -> int:
    """``index`` (a request), or later: once the segment that carried it is recorded too
    (captured segments may be logged a little after the server's own calls), as long
    as that is before the connection's next request."""
    data = find(log, "packet", conn=conn, where=lambda e: (e.data.get("len") or 0) > 0)
    following = find(log, "request", src="server", conn=conn, after=index)
    if data is None or (following is not None and data > following):
        return index
    return max(index, data)


# ---------------------------------------------------------------- static-pages
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-extensions",
                 "--virtual-time-budget=3000")
MISSING = "/missing.html"
_IMAGE = re.compile(r"\.(png|svg|bmp|jpe?g|gif|ico|webp)$", re.IGNORECASE)


def _chromium() -> str | None:
    """Debian's chromium (or another Chromium) on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")


def browse(browser: str, url: str, workdir: Path, lesson: str) -> None:
    """Headless Chromium loads ``url`` (its page, stylesheet, pictures) with a profile of
    its own, thrown away after; LessonError if it fails or takes over a minute."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))
    try:
        done = subprocess.run([browser, *BROWSER_FLAGS, f"--user-data-dir={profile}",
                               "--dump-dom", url],
                              check=False, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise LessonError(f"{lesson}: chromium did not finish loading {url}") from exc
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if done.returncode != 0:
        raise LessonError(f"{lesson}: chromium failed ({done.returncode}) on {url}: "
                          f"{done.stderr.strip()[-300:]}")


def _is_page(path: str) -> bool:
    path = path.split("?", 1)[0]
    return path.endswith(("/", ".html"))


def _is_image(path: str) -> bool:
    return bool(_IMAGE.search(path.split("?", 1)[0]))


def _static_pages_record(workdir: Path) -> Path:
    browser = _chromium()
    with _Served(workdir, "static-pages", "--mode", MODE, *OBSERVING,
                 control=browser is None) as served:
        if browser is not None:
            for path in ("/", MISSING):
                browse(browser, served.url.rstrip("/") + path, workdir, "static-pages")
                time.sleep(0.3)
        else:
            # What a browser does, with the built-in clients: the page first, then
            # its stylesheet and pictures over several connections at once, then a
            # page that does not exist.
            served.command("load --path /")
            served.wait_loads(1)
            for paths in (("/css/style.css", "/favicon.ico"), ("/images/logo.svg",),
                          ("/images/handshake.png",)):
                served.command(f"load --requests {len(paths)} --wait-after-connect 40 "
                               + " ".join(f"--path {p}" for p in paths))
            served.wait_loads(4)
            time.sleep(0.2)
            served.command(f"load --path {MISSING}")
            served.wait_loads(5)
            time.sleep(0.1)
        return served.stop()


def _browser_ran(log: EventLog) -> bool:
    """Did a real browser make the requests (its User-Agent says Chrome)?"""
    return find(log, "request", src="server", where=lambda e: "Chrome" in (
        header_value(str(e.data.get("head") or ""), "User-Agent") or "")) is not None


def _static_pages_check(log: EventLog) -> None:
    ok = lambda test: _responses(log, lambda d: d.get("status") == 200  # noqa: E731
                                 and test(str(d.get("path", ""))))
    if not ok(_is_page):
        raise LessonError("static-pages: no page was answered with 200")
    if not ok(_is_image):
        raise LessonError("static-pages: no image was answered with 200")
    if not _responses(log, lambda d: d.get("status") == 404):
        raise LessonError("static-pages: nothing was answered with 404")
    most, _ = _most_open(log, len(log))
    if most < 2:
        raise LessonError(f"static-pages: at most {most} connection was open at once, "
                          "not several")


def _page_conns(log: EventLog, before: int) -> list[str]:
    """The connections accepted before ``before``, in order."""
    seen: list[str] = []
    for i in log.indices(kinds=["accept"], src="server", stop=before):
        conn = log[int(i)].conn
        if conn is not None and conn not in seen:
            seen.append(conn)
    return seen


def _most_open(log: EventLog, stop: int) -> tuple[int, int]:
    """(the most server connections open at once before ``stop``, the index where first)."""
    open_now, best, at = 0, 0, -1
    for i in log.indices(kinds=["accept", "close"], src="server", stop=stop):
        e = log[int(i)]
        open_now += 1 if e.kind == "accept" else -1
        if open_now > best:
            best, at = open_now, int(i)
    return best, at


def _page_end(log: EventLog, missing_conn: str | None, stop: int) -> int:
    """Where loading the page is over: before the first event of the first connection
    opened after every earlier one was closed and before ``missing_conn`` was accepted
    (a browser may open a spare connection before the one that asks for the 404)."""
    accepted = find(log, "accept", src="server", conn=missing_conn)
    limit = min(stop, accepted if accepted is not None else stop)
    open_now, idle_from = 0, None
    for i in log.indices(kinds=["accept", "close"], src="server", stop=limit):
        open_now += 1 if log[int(i)].kind == "accept" else -1
        if open_now == 0:
            idle_from = int(i)
    if idle_from is None:
        return limit
    later = find(log, "accept", src="server", after=idle_from)
    if later is None:
        return limit
    first = find(log, conn=log[later].conn)  # its SYN, or its connect()
    return min(limit, first if first is not None else later)


def _static_pages_steps(log: EventLog) -> list[Step]:
    browser = _browser_ran(log)
    page = _responses(log, lambda d: d.get("status") == 200 and _is_page(str(d.get("path"))))[0]
    page_req = find(log, "request", src="server", conn=log[page].conn,
                    where=lambda e: e.data.get("path") == log[page].data.get("path"))
    if page_req is None:  # cannot happen: a response answers a request
        page_req = page
    missing = _responses(log, lambda d: d.get("status") == 404)[0]
    missing_req = find(log, "request", src="server", conn=log[missing].conn,
                       where=lambda e: e.data.get("path") == log[missing].data.get("path"))
    before_missing = _page_end(log, log[missing].conn,
                               missing_req if missing_req is not None else missing)
    conns = _page_conns(log, before_missing)
    most, most_at = _most_open(log, before_missing)
    css = next(iter(_responses(log, lambda d: d.get("status") == 200 and
                               str(d.get("path", "")).endswith(".css"))), None)
    images = _responses(log, lambda d: d.get("status") == 200 and _is_image(str(d.get("path"))))
    picture = next((i for i in images if str(log[i].data.get("path")).endswith(".png")),
                   images[0])
    page_requests = len(log.indices(kinds=["request"], src="server", stop=before_missing))
    carried = {c: len(log.indices(kinds=["request"], src="server", conn=c, stop=before_missing))
               for c in conns}
    reused = [c for c in conns if carried[c] > 1]
    idle = [c for c in conns if carried[c] == 0]
    after_missing = [i for i in _responses(log, lambda d: d.get("status") == 200)
                     if i > missing]
    last_close = find(log, "close", src="server", nth=-1)
    peer_closed = last_close is not None and \
        "peer" in str(log[last_close].data.get("reason", ""))
    port = (log[page].conn or ":").split(">")[1].rsplit(":", 1)[-1]
    n_open = f"{most}"

    if browser:
        intro = {"en": f"A real browser, headless Chromium, opens http://127.0.0.1:{port}/. "
                       "Its first connection: the three-way handshake, then GET /.",
                 "zh_CN": f"一个真正的浏览器，无头（headless）Chromium，打开 http://127.0.0.1:{port}/。"
                          "它的第一个连接：三次握手，然后发送 GET /。"}
        parallel = {"en": f"The browser does not fetch one file after another on one "
                          f"connection: it opens {n_open} connections to the server at once "
                          "(Chromium allows up to six per server over HTTP/1.1) and asks for "
                          "the resources in parallel.",
                    "zh_CN": f"浏览器不会在一个连接上一个接一个地取文件：它同时向服务器打开了 "
                             f"{n_open} 个连接（HTTP/1.1 下 Chromium 对同一服务器最多开 6 个），"
                             "并行请求这些资源。"}
        missing_text = {"en": f"A second browser run asks for {MISSING}. There is no such file: "
                              "the server answers 404 Not Found, with a page (404.html) for the "
                              "browser to show.",
                        "zh_CN": f"第二次运行浏览器，请求 {MISSING}。没有这个文件：服务器回复 "
                                 "404 Not Found，并附上一个页面（404.html）供浏览器显示。"}
    else:
        intro = {"en": "No Chromium on this machine: SockScope's built-in clients fetch what a "
                       "browser would fetch for this page: first GET / on one connection, "
                       "then its stylesheet and pictures.",
                 "zh_CN": "这台机器上没有 Chromium：由 SockScope 内置的客户端去取浏览器会取的"
                          "东西：先在一个连接上 GET /，再取样式表和图片。"}
        parallel = {"en": f"Like a browser, the clients do not wait for one file after another: "
                          f"{n_open} connections are open to the server at once, one per "
                          "client, each asking for its own files.",
                    "zh_CN": f"和浏览器一样，这些客户端不会一个接一个地等待：同时有 {n_open} "
                             "个连接连到服务器，每个客户端一个，各自请求自己的文件。"}
        missing_text = {"en": f"Then a client asks for {MISSING}. There is no such file: the "
                              "server answers 404 Not Found, with a page (404.html) a browser "
                              "would show.",
                        "zh_CN": f"然后一个客户端请求 {MISSING}。没有这个文件：服务器回复 "
                                 "404 Not Found，并附上一个浏览器可以显示的页面（404.html）。"}

    parallel_step = Step(parallel, lambda log: most_at, "sockets", None)
    middle = [(most_at, parallel_step)]
    if css is not None:
        middle.append((css, Step(
            {"en": "GET /css/style.css: the same code answers, only the file differs. The "
                   "path picks the file; its extension picks the Content-Type: text/css.",
             "zh_CN": "GET /css/style.css：同一段代码来回复，只是文件不同。路径决定读哪个文件，"
                      "扩展名决定 Content-Type：text/css。"},
            lambda log: css, "http", _conn_of(css))))
    pic_path = str(log[picture].data.get("path"))
    middle.append((picture, Step(
        {"en": f"GET {pic_path}: 200 again. The body is binary, not text, so the server sends "
               "the file's bytes as they are; Content-Length tells the "
               + ("browser" if browser else "client") + " where they end.",
         "zh_CN": f"GET {pic_path}：又是 200。响应体是二进制而不是文本，服务器原样发送文件的"
                  "字节；Content-Length 告诉" + ("浏览器" if browser else "客户端")
                  + "它们在哪里结束。"},
        lambda log: picture, "http", _conn_of(picture))))
    middle.sort(key=lambda pair: pair[0])  # in the order they happened: never backwards
    used = len(conns) - len(idle)
    who = ("the browser", "浏览器") if browser else ("the clients", "这些客户端")
    question = {"en": f"The page needs more files: will {who[0]} ask for them one after "
                      "another on one connection?",
                "zh_CN": f"页面还需要别的文件：{who[1]}会在一个连接上一个接一个地请求吗？"}
    steps = [
        Step(intro, lambda log: _with_request_sent(log, str(log[page].conn), page_req),
             "sequence", _conn_of(page)),
        Step({"en": "The server finds index.html for / and answers 200 OK with "
                    "Content-Type: text/html. The browser reads the HTML and finds what else "
                    "the page needs: a stylesheet, a script, a logo, a picture."
                    if browser else
                    "The server finds index.html for / and answers 200 OK with "
                    "Content-Type: text/html. In the HTML are the other files the page needs: "
                    "a stylesheet, a script, a logo, a picture.",
              "zh_CN": "服务器为 / 找到 index.html，回复 200 OK，Content-Type: text/html。"
                       "浏览器读 HTML，发现页面还需要别的文件：样式表、脚本、logo、图片。"
                       if browser else
                       "服务器为 / 找到 index.html，回复 200 OK，Content-Type: text/html。"
                       "HTML 里写着页面还需要的其他文件：样式表、脚本、logo、图片。"},
             lambda log: page, "http", _conn_of(page)),
        *(step for _, step in middle),
        Step({"en": f"The whole page: {page_requests} requests over {used} connections, "
                    "several of them open at the same time"
                    + (f"; {len(reused)} of them carried more than one request (keep-alive)"
                       if reused else "")
                    + (f"; {len(idle)} more were opened in advance and never used"
                       if idle else "") + "."
                    + (" The lecture says websites mostly use short connections: that is "
                       "dated. A browser today keeps its connections open and reuses them, "
                       "as this one just did." if reused else ""),
              "zh_CN": f"整个页面：{page_requests} 个请求，分布在 {used} 个连接上，"
                       "有几个连接是同时打开的"
                       + (f"；其中 {len(reused)} 个连接承载了不止一个请求（长连接）"
                          if reused else "")
                       + (f"；另有 {len(idle)} 个连接是提前打开的，一直没有用上"
                          if idle else "") + "。"
                       + ("讲义说网站大多使用短连接，这个说法已经过时了：如今的浏览器会保持"
                          "连接并重复使用，刚才这个浏览器就是这样做的。" if reused else "")},
             lambda log: before_missing - 1, "lifecycle", None),
    ]
    steps.append(Step(missing_text, lambda log: missing, "http", _conn_of(missing)))
    if after_missing and browser:
        follow = after_missing[0]
        steps.append(Step(
            {"en": "The 404 page is HTML too, so the browser fetches its stylesheet and logo "
                   "like for any page: a 404 is an answer, not a failed connection.",
             "zh_CN": "404 页面也是 HTML，所以浏览器像对待任何页面一样去取它的样式表和 logo："
                      "404 是一个回答，不是连接失败。"},
            lambda log: follow, "http", _conn_of(follow)))
    if last_close is not None:
        closing = log[last_close].conn
        shown = find(log, "tcp_state", conn=closing, where=lambda e: e.data.get("side") ==
                     "client" and e.data.get("state") == "TIME_WAIT") is not None
        if peer_closed and browser:
            en = ("When the browser exits it closes its connections. It closed first (the "
                  "server's recv() returned 0), so the TIME_WAIT is on the browser's side, not "
                  "the server's.")
            zh = ("浏览器退出时关闭它的连接。它是主动关闭方（服务器的 recv() 返回 0），"
                  "所以 TIME_WAIT 在浏览器这一边，而不在服务器那边。")
            if not shown:
                en += " (The browser's own states are not recorded here, only the server's.)"
                zh += "（这里没有记录浏览器一侧的状态，只有服务器的。）"
        elif peer_closed:
            en = ("Each client closes its connection when it is done. It closed first (the "
                  "server's recv() returned 0), so the TIME_WAIT is on the client's side, not "
                  "the server's.")
            zh = ("每个客户端做完后关闭自己的连接。它是主动关闭方（服务器的 recv() 返回 0），"
                  "所以 TIME_WAIT 在客户端这一边，而不在服务器那边。")
        else:
            en = "The connections close; the side that closed first keeps the TIME_WAIT."
            zh = "连接关闭；主动关闭方进入 TIME_WAIT。"
        steps.append(Step({"en": en, "zh_CN": zh}, lambda log: last(log), "sequence",
                          _conn_of(last_close)))
    # Ask on the step just before the answer, wherever the recording put it.
    asking = steps.index(parallel_step) - 1
    steps[asking] = dataclasses.replace(steps[asking], question=question)
    return steps


STATIC_PAGES = Lesson(
    name="static-pages",
    length=lambda: 9 if _chromium() else 8,  # the browser's 404 page fetches its own files
    title={"en": "Pages, pictures and a 404", "zh_CN": "页面、图片和 404"},
    section="3.3",
    summary={"en": "a browser loads a page: several connections, the page, its CSS and images, "
                   "and a 404",
             "zh_CN": "浏览器加载一个页面：多个连接，页面、CSS 和图片，以及一个 404"},
    record=_static_pages_record, steps=_static_pages_steps, check=_static_pages_check)

LESSONS.append(STATIC_PAGES)


# ---------------------------------------------------------------- keep-alive
# Written as a lesson file (files/keep-alive.toml).
KEEP_ALIVE = load_file(FILES / "keep-alive.toml")
LESSONS.append(KEEP_ALIVE)


# ---------------------------------------------------------------- regex
# Written as a lesson file (files/regex.toml; its client is scripts.py's lecture-targets).
def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded: it closes after its answer)."""
    chunks = []
    for _ in range(1000):
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


REGEX = load_file(FILES / "regex.toml")

LESSONS.append(REGEX)
