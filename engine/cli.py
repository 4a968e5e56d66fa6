"""``sockscope``: the command line. ``serve`` and ``load`` never import Qt."""
from __future__ import annotations

import argparse
import errno
import gc
import shlex
import signal
import threading
import sys
from pathlib import Path

from . import __version__
from .capture.derived import NAGLE_MODES, PacketDeriver
from .events import Probe
from .server import MODES, POLICIES, TRIGGERS, DEFAULT_PORT, ServerConfig, create_server, default_mode


STATE_SOURCES = ("auto", "observed", "inferred", "off")  # --states
PACKET_SOURCES = ("auto", "captured", "derived", "off")  # --packets


def _positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the web server headless",
                       description="Run SockScope's static web server in one I/O mode.")
    p.add_argument("--mode", choices=MODES, default=default_mode(),
                   help="I/O model (default: %(default)s)")
    p.add_argument("--trigger", choices=TRIGGERS, default="level",
                   help="epoll mode: level- or edge-triggered (default: level)")
    p.add_argument("--no-drain", action="store_true",
                   help="epoll mode, for lessons: one recv(1024) per readiness report, as in "
                        "lecture 3.9's server, never until EAGAIN (edge-triggered, it stalls)")
    p.add_argument("--never-close", action="store_true",
                   help="for lessons: when a client closes, never call close() on its socket "
                        "(it stays in CLOSE_WAIT until the server stops)")
    p.add_argument("--keep-parent-copy", action="store_true",
                   help="processes mode, for lessons: the parent never closes its copy of a "
                        "connected socket, so the child's close() sends no FIN")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 or :: exposes the server)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--root", type=Path, default=None, help="site folder (default: the demo site)")
    p.add_argument("--policy", choices=POLICIES, default="keep-alive",
                   help="keep-alive honours what clients ask; close forces short connections")
    p.add_argument("--backlog", type=int, default=4096, help="listen backlog (default 4096)")
    p.add_argument("--reuseaddr", action=argparse.BooleanOptionalAction, default=True,
                   help="set SO_REUSEADDR on the listening socket (default: on)")
    p.add_argument("--sweep-pause", type=float, default=0.0, metavar="SECONDS",
                   help="nonblocking mode: pause between sweeps (default 0: busy loop)")
    p.add_argument("--every-sweep", action="store_true",
                   help="nonblocking mode: record every sweep's tries, idle ones too (by "
                        "default idle sweeps in a row are one poll_sweep event with sweeps=N, "
                        "at least every 0.1 s)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="close a client whose request head is not complete by then (default 10)")
    p.add_argument("--idle-timeout", type=float, default=15.0, metavar="SECONDS",
                   help="close an idle keep-alive connection after this long (default 15)")
    p.add_argument("--send-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="close a client that takes none of its answer for this long (default 60)")
    p.add_argument("--max-connections", type=int, default=10_000,
                   help="answer 503 beyond this many open connections (default 10000)")
    p.add_argument("--trace", type=Path, default=None, metavar="FILE",
                   help="record every event to FILE (JSON Lines); - is standard output, "
                        "and messages then go to standard error")
    p.add_argument("--states", choices=STATE_SOURCES, default="auto",
                   help="TCP states: auto (from the segments, each change at its segment, "
                        "checked by the kernel's tracepoint as root and by sock_diag), "
                        "inferred (from the segments, or the syscalls without packets; "
                        "no kernel checks), observed (sock_diag polls only), off")
    p.add_argument("--kernel-interval", type=float, default=0.005, metavar="SECONDS",
                   help="how often the kernel is asked (default 0.005)")
    p.add_argument("--packets", choices=PACKET_SOURCES, default="auto",
                   help="auto: captured where allowed (root, CAP_NET_RAW, the lab), else derived")
    p.add_argument("--capture-buffer", type=_positive_int, default=16, metavar="MIB",
                   help="MiB of the kernel's ring for captured frames not yet copied out "
                        "(default 16, 2 at least); what overflows it is counted and said")
    p.add_argument("--kernel-side", choices=("process", "inline"), default="process",
                   help="where packets (captured, or derived from the server's events "
                        "with --trace) and the kernel's reports are recorded: process "
                        "(default: a process of their own, off the server's interpreter; "
                        "Linux) or inline (threads of the server's process)")
    p.add_argument("--cpu-interval", type=float, default=0.1, metavar="SECONDS",
                   help="with --trace, sample the process's CPU use this often "
                        "(0: never; default 0.1)")
    p.add_argument("--control", nargs="?", const=STDIN_CONTROL, default=None,
                   metavar="HOST:PORT",
                   help="alone: read stepping commands on stdin (Enter/N/c/s/q) without "
                        "starting held; with HOST:PORT (or :PORT, PORT; host 127.0.0.1, "
                        "port 0 any free one): a control port where a window or "
                        "'sockscope record --attach' watches the live trace and steps it, "
                        "after giving the token printed on the line 'control: ...'")
    p.add_argument("--token", default=None,
                   help="the control port's token (at least 16 characters; default: "
                        "$SOCKSCOPE_TOKEN, else a random one)")
    p.add_argument("--control-buffer", type=int, default=100_000, metavar="EVENTS",
                   help="events a control client may fall behind by before they are "
                        "dropped and counted (default 100000)")
    p.add_argument("--step", action="store_true",
                   help="start held: the server waits before each action; Enter on stdin "
                        "releases one, a number that many, c runs freely, s steps again, q quits")
    p.add_argument("--lab", action="store_true",
                   help="run in a private network namespace, where packets are captured "
                        "without root; only the built-in clients (--load) can reach it")
    p.add_argument("--fault", action="append", default=[], metavar="FAULT",
                   help="in the lab, drop one segment: drop-syn, drop-synack, drop-ack, "
                        "drop-fin, drop-server-fin (repeatable)")
    p.add_argument("--load", default=None, metavar="ARGS",
                   help='run the built-in clients inside, e.g. --load "--clients 2 --short"')
    p.add_argument("--exit-after-load", action="store_true",
                   help="stop the server once --load has finished")


STDIN_CONTROL = "-"  # `--control` alone: commands on standard input


def _record_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record a running engine's live trace over its control port",
                       description="Attach to an engine started with 'serve --control HOST:PORT' "
                                   "and write what it streams to a trace file.")
    p.add_argument("--attach", required=True, metavar="HOST:PORT",
                   help="the engine's control port (host 127.0.0.1 when only :PORT is given)")
    p.add_argument("--token", default=None,
                   help="the token the engine printed (default: $SOCKSCOPE_TOKEN)")
    p.add_argument("--seconds", type=float, default=0.0,
                   help="how long to record (default 0: until the engine stops or Ctrl+C)")
    p.add_argument("--trace", type=Path, required=True, metavar="OUT")


def _connection_style(p: argparse.ArgumentParser) -> None:
    style = p.add_mutually_exclusive_group()
    style.add_argument("--keep-alive", dest="keep_alive", action="store_true", default=True,
                       help="one connection per client, reused (default)")
    style.add_argument("--short", dest="keep_alive", action="store_false",
                       help="a new connection for every request")


def _load_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load", help="run the built-in clients against a URL",
                       description="Send traffic, print requests ok/failed, req/s and latency.")
    p.add_argument("url")
    p.add_argument("--clients", type=int, default=1, help="concurrent clients (default 1)")
    p.add_argument("--requests", type=int, default=1, help="requests per client (default 1)")
    _connection_style(p)
    p.add_argument("--pipeline", type=int, default=1, metavar="K",
                   help="keep-alive: send K requests before reading the answers")
    p.add_argument("--rate", type=float, default=0.0, metavar="R",
                   help="total requests per second (default: as fast as possible)")
    p.add_argument("--think", type=float, default=0.0, metavar="MS",
                   help="milliseconds each client waits between requests")
    p.add_argument("--wait-after-connect", type=float, default=0.0, metavar="MS",
                   help="milliseconds between connecting and sending the first request")
    p.add_argument("--path", action="append", default=[], metavar="PATH",
                   help="path(s) to request in turn (default: the URL's path)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per network step")
    p.add_argument("--together", action="store_true",
                   help="all clients connect first, then send together")
    bad = p.add_mutually_exclusive_group()
    bad.add_argument("--abort", dest="behaviour", action="store_const", const="abort",
                     help="send a request, then reset the connection (SO_LINGER 0)")
    bad.add_argument("--half-close", dest="behaviour", action="store_const", const="half-close",
                     help="send the requests, shut down writing, read until EOF")
    bad.add_argument("--slow", dest="behaviour", action="store_const", const="slow",
                     help="dribble each request one byte at a time")
    p.add_argument("--slow-interval", type=float, default=0.05, metavar="SECONDS",
                   help="--slow: pause between bytes (default 0.05)")
    p.add_argument("--trace", type=Path, default=None, metavar="FILE",
                   help="record the clients' events to FILE")


def _compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="the same load against several I/O modes, one engine each",
        description="Run the same built-in load against each mode in turn (a fresh engine "
                    "each, recording its own events) and print a row per mode: req/s, "
                    "latency, the engine's CPU, peak threads and memory, syscalls per "
                    "request, errors. Progress goes to standard error.")
    p.add_argument("--modes", default="threaded,nonblocking,epoll", metavar="LIST",
                   help="comma-separated modes (default: %(default)s; all: "
                        + ",".join(MODES) + ")")
    p.add_argument("--clients", type=int, default=10, help="concurrent clients (default 10)")
    p.add_argument("--requests", type=int, default=100,
                   help="requests per client (default 100)")
    _connection_style(p)
    p.add_argument("--idle", type=int, default=0, metavar="K",
                   help="keep-alive connections that make one request and then stay open, "
                        "idle, through the run (default 0)")
    p.add_argument("--scale", default=None, metavar="LIST",
                   help="instead of --idle: the whole comparison at each of these numbers of "
                        "idle connections (e.g. 10,100,1000,10000); --png draws how memory, "
                        "threads, latency and CPU grow with them")
    p.add_argument("--path", default="/", help="what the clients ask for (default /)")
    p.add_argument("--root", type=Path, default=None, help="site folder (default: the demo site)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="per network step of a client (default 10)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT",
                   help="write the rows as JSON ({\"modes\": [...]}); - is standard output")
    p.add_argument("--png", type=Path, default=None, metavar="OUT",
                   help="draw the comparison for a slide (1920x1080)")
    p.add_argument("--lang", choices=("en", "zh_CN"), default="en",
                   help="the picture's language (default en)")
    p.add_argument("--keep-traces", type=Path, default=None, metavar="DIR",
                   help="keep each engine's trace in DIR (MODE-K-idle.jsonl)")
    p.add_argument("--window", action="store_true",
                   help="open the Compare window instead: the modes side by side, live, "
                        "each with its I/O picture and its numbers, one load for all "
                        "(epoll-edge names a trigger)")


def _idle_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("idle", help="hold idle keep-alive connections open to a server",
                       description="Open K keep-alive connections that each ask for the URL "
                                   "once, read the answer, and then stay open, silent (as open "
                                   "browser tabs do), until the time is up or Ctrl+C.")
    p.add_argument("url")
    p.add_argument("--connections", type=int, default=1000, metavar="K",
                   help="how many (default 1000)")
    p.add_argument("--seconds", type=float, default=0.0,
                   help="how long to hold them (default 0: until interrupted)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sockscope",
        description="SockScope: watch a real web server handle TCP connections.")
    parser.add_argument("--version", action="version", version=f"sockscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(sub)
    _load_parser(sub)
    _compare_parser(sub)
    _idle_parser(sub)
    _record_parser(sub)
    exp = sub.add_parser("export", help="write a trace's packets as pcapng (Wireshark, tshark), "
                                        "or the whole trace for Perfetto / chrome://tracing")
    exp.add_argument("trace", type=Path)
    out = exp.add_mutually_exclusive_group(required=True)
    out.add_argument("--pcapng", type=Path, metavar="OUT")
    out.add_argument("--perfetto", type=Path, metavar="OUT",
                     help="Chrome trace-event JSON: open it in ui.perfetto.dev or chrome://tracing")
    exp.add_argument("--origin", choices=("captured", "derived"), default=None,
                     help="only captured or only derived segments (default: captured if any)")
    imp = sub.add_parser("import", help="turn a pcap or pcapng capture into a trace")
    imp.add_argument("capture", type=Path)
    imp.add_argument("--trace", type=Path, required=True, metavar="OUT")
    return parser


def _open_trace(path: Path | None, probe: Probe, role: str):  # type: ignore[no-untyped-def]
    if path is None:
        return None
    from .trace import TraceWriter
    from .control import redact_argv
    writer = TraceWriter(path, header={"role": role, "argv": redact_argv(sys.argv[1:])})
    probe.add_sink(writer)
    if str(path) == "-":
        # Standard output carries the events (the channel to a SockScope
        # window); every message for people goes to standard error instead.
        sys.stdout = sys.stderr
    return writer


def cmd_serve(args: argparse.Namespace) -> int:
    config = ServerConfig(mode=args.mode, trigger=args.trigger, host=args.host, port=args.port,
                          root=str(args.root) if args.root else None, policy=args.policy,
                          backlog=args.backlog, reuseaddr=args.reuseaddr,
                          sweep_pause=args.sweep_pause, every_sweep=args.every_sweep,
                          header_timeout=args.header_timeout,
                          idle_timeout=args.idle_timeout, send_timeout=args.send_timeout,
                          max_connections=args.max_connections,
                          no_drain=args.no_drain, never_close=args.never_close,
                          keep_parent_copy=args.keep_parent_copy)
    if args.load is not None:
        try:
            load_args = build_parser().parse_args(["load", "http://127.0.0.1/", *shlex.split(args.load)])
        except SystemExit:
            print(f"sockscope: --load {args.load!r} is not valid for sockscope load", file=sys.stderr)
            return 2
    if args.fault and not args.lab:
        print("sockscope: --fault needs --lab (faults are only injected in the lab)", file=sys.stderr)
        return 2
    if args.lab:
        # Everything the lab needs is imported first: inside a user namespace,
        # files owned by an unmapped user (root's Python) may be unreadable.
        import encodings.idna  # noqa: F401  (socket encodes host names with it)

        from . import clients, lab, trace  # noqa: F401
        from . import control as _control  # noqa: F401  (read before the namespace too)
        from .capture import derived, live  # noqa: F401
        from .kernel import observer  # noqa: F401
        try:
            lab.enter_lab()
        except lab.LabError as exc:
            print(f"sockscope: the lab is not available: {exc}", file=sys.stderr)
            return 1
    side = _fork_kernel_side(args)  # before any thread starts
    probe = Probe("server")
    try:
        writer = _open_trace(args.trace, probe, "server")
    except OSError as exc:
        print(f"sockscope: cannot write trace {args.trace}: {exc.strerror}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # its writer's thread (the limit on processes: ulimit -u)
        print(f"sockscope: cannot write trace {args.trace}: {exc} (the limit on processes "
              f"and threads: ulimit -u)", file=sys.stderr)
        if side is not None:
            side.stop()
        return 2
    not_started = None  # why no kernel side (said after the first line, which is the URL's)
    if side is None and args.kernel_side == "process":
        from .kernelside import KernelSide
        not_started, KernelSide.not_started = KernelSide.not_started, None
    if side is not None and writer is not None and not side.attach_feed(writer, probe):
        # (derived segments: it reads every event from here, or it is no use)
        not_started = "no thread for its feed"
        side.stop()
        side = None
    control = None
    if args.control not in (None, STDIN_CONTROL):
        from .control import open_control
        control = open_control(args, config)  # a sink before the server says how it started
        if isinstance(control, int):  # a bad address or token, a port in use: said
            if writer:
                writer.close()
            return control
        probe.add_sink(control)
    try:
        server = create_server(config, probe)
        server.bind()
    except (ValueError, FileNotFoundError) as exc:
        print(f"sockscope: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = (" (EADDRINUSE: another socket holds it"
                    + ("; without SO_REUSEADDR a TIME_WAIT socket is enough" if not args.reuseaddr else "")
                    + "; try --port 0)")
        said = f"cannot listen on {config.host}:{config.port}: {exc.strerror}{hint}"
        print(f"sockscope: {said}", file=sys.stderr)
        # The trace says why it holds nothing more: the error, as the OS named it.
        name = errno.errorcode.get(exc.errno or 0, "")  # its name, as file errors say it
        probe.emit("error", None, -1, 0, what=name or "listen", detail=said, errno=name,
                   port=config.port, reuseaddr=config.reuseaddr, exit_code=1)
        if writer:
            writer.close()
        return 1
    # Asked to stop (a signal, q): said by a flag first, then told to the server serving
    # now. A restart may be making the next one meanwhile; it looks at the flag once that
    # one is the server, so whichever comes first, the server serving stops.
    stop_asked = threading.Event()

    def stop_serving() -> None:
        stop_asked.set()
        server.stop()

    def stop(signum: int, frame: object) -> None:
        stop_serving()

    # A loaded server allocates an event or a request object every few
    # microseconds; the default collector threshold (700) then runs young
    # collections thousands of times a second. Nothing here builds cycles.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl+Break, how a parent stops its child
        signal.signal(signal.SIGBREAK, stop)
    # A signal may land on any thread (capture, kernel observer, trace writer);
    # only the main thread runs Python handlers, and it may sleep in epoll_wait
    # with no timeout. The wakeup fd makes any signal wake the server's loop.
    signal.set_wakeup_fd(server.wakeup_fd, warn_on_full_buffer=False)
    detail = f"{config.mode}" + (f", {config.trigger}-triggered" if config.mode == "epoll" else "") \
        + (", one recv(1024) per report (no drain)" if config.no_drain else "")
    print(f"SockScope serving {server.site.root} at {server.url} ({detail}, {config.policy})",
          flush=True)  # the first line: whoever started it reads its address here
    if not_started is not None:
        print(f"kernel side: not started ({not_started}): recorded in the server's process",
              flush=True)
    sinks = ([writer] if writer else []) + ([control] if control else [])
    port = server.address[1]
    problem = None
    if sinks and side is not None:
        problem = side.begin(port, sinks, probe=probe)
    if sinks:
        if side is not None and problem is None:
            helpers, both_ends = [side], []
        else:
            try:
                helpers, both_ends = _start_observers(args, probe, port, sinks, problem)
            except (OSError, RuntimeError) as exc:  # no file, or no thread, left (limits)
                said = f"kernel states and packets: not recorded ({getattr(exc, 'strerror', None) or exc})"
                print(said, flush=True)
                probe.emit("error", None, -1, 0, what="observers", detail=said)
                helpers, both_ends = [], []
        if args.cpu_interval > 0:  # the serving process's own CPU, wherever the kernel side is
            try:
                from .cpu import CpuSampler
            except OSError as exc:  # (as above: not a file left to read it with)
                print(f"cpu: not sampled ({exc.strerror or exc})", flush=True)
            else:
                cpu_probe = Probe("engine")
                for sink in sinks:
                    cpu_probe.add_sink(sink)
                try:
                    helpers.append(CpuSampler(cpu_probe, args.cpu_interval).start())
                except RuntimeError as exc:  # its thread (the limit on processes)
                    print(f"cpu: not sampled ({exc})", flush=True)
    else:  # nobody would read them: asking the kernel and capturing would only cost
        helpers, both_ends = [], []
        print("kernel states and packets: recorded with --trace", flush=True)
    if args.lab:
        print("lab: a private network namespace; only the built-in clients (--load) reach it",
              flush=True)
        if args.fault:
            from .lab import LabError, install_faults
            try:
                for lesson in install_faults(port, args.fault):
                    print(f"fault: {lesson}", flush=True)
            except LabError as exc:
                print(f"sockscope: {exc}", file=sys.stderr)
                server.stop()
    if writer:
        print(f"recording events to {args.trace}", flush=True)
    _open_files(server.open_files, config.max_connections)  # last: the lines above keep their place
    loads: list = []  # the built-in clients' threads: --load, and "load ARGS" commands

    def start_load(text: str) -> str | None:
        """Run ``sockscope load`` options inside this process; an error message if invalid."""
        try:
            parsed = build_parser().parse_args(["load", "http://127.0.0.1/", *shlex.split(text)])
        except SystemExit:
            return f"load {text!r} is not valid for sockscope load"
        loads.append(_start_load(parsed, server, sinks + both_ends, False))
        return None

    # "restart OPTIONS": the settings to serve with next, and whether it was stepping
    # (its stop() lets everything held go, so that is read before)
    restart_to: list[tuple[ServerConfig, bool]] = []

    def restart(text: str) -> str | None:
        """Stop this server and serve again on its port with other settings."""
        try:
            restart_to.append((restart_config(config, text), server.gate.enabled))
        except ValueError as exc:
            return str(exc)
        server.stop()
        return None

    if args.step or args.control:
        commands = _start_stepping(lambda: server, held=args.step, start_load=start_load,
                                   stdin=args.step or args.control == STDIN_CONTROL,
                                   restart=restart, stop_serving=stop_serving)
        if control is not None:
            control.header["url"] = server.url
            control.start(commands)
            print(f"control: {control.address}  token: {control.token.decode()}", flush=True)
    if args.load is not None:
        # A lab fault's dropped segment is resent later (a FIN some 200 ms after the
        # load ends): wait, bounded, until every connection has closed, so it is recorded.
        settle = None
        if args.lab and args.fault:
            from .lab import wait_until_closed
            settle = lambda: wait_until_closed(port)  # noqa: E731
        loads.append(_start_load(load_args, server, sinks + both_ends, args.exit_after_load,
                                 settle))
    try:
        server.serve()
        while restart_to and not stop_asked.is_set():  # "restart OPTIONS": same port, other settings
            # What was asked until now, taken at once: one asked from here on stays
            # (two asked at once: the last one said).
            taken = restart_to[:]
            del restart_to[:len(taken)]
            config, held = taken[-1]
            again = _serve_again(config, port, probe, server)
            if again is None:  # the port is gone: stop as if asked to
                break
            server = again
            if restart_to or stop_asked.is_set():
                # Asked while this one was being made, of the server before it: it
                # would serve on unstopped. It stops at once (its serve returns).
                server.stop()
            config = server.config  # what it serves with (the old settings, if refused)
            if held:
                server.gate.enable()
            signal.set_wakeup_fd(server.wakeup_fd, warn_on_full_buffer=False)
            detail = f"{config.mode}" + (f", {config.trigger}-triggered"
                                         if config.mode == "epoll" else "")
            print(f"restarted: serving at {server.url} ({detail}, {config.policy})", flush=True)
            server.serve()
    finally:
        for helper in helpers:
            helper.stop()
        for thread in loads:
            if thread.ident is not None:  # (one that could not start has nothing to join)
                thread.join(60)
        if control is not None:  # after the helpers: their last events reach the clients
            for client in control.close():
                print(f"control: {client.peer}: {client.sent} events sent, "
                      f"{client.dropped} dropped", flush=True)
        recorded = ""
        if writer:
            writer.close()  # never raises for the file: a full disk only cuts the trace short
            cut = "" if writer.failed is None else \
                f"; the trace was cut short: {writer.failed.strerror or writer.failed}"
            lost = "".join(f"; {_said_lost(sink, n)}" for sink, n in writer.lost.items() if n)
            recorded = (f", {writer.written} events recorded ({writer.dropped} dropped{lost}"
                        f"{cut})")
        s = server.stats
        print(f"stopped: {s.accepted} connections, {s.responses} responses, "
              f"{s.bad_requests} bad requests, {s.eagain} EAGAIN" + recorded, flush=True)
    return 0


# What ``restart OPTIONS`` (a control command) may change: the server's own settings,
# never where it listens, what it serves or what it records.
RESTART_OPTIONS = ("--mode", "--trigger", "--policy", "--backlog", "--sweep-pause",
                   "--reuseaddr", "--no-reuseaddr", "--every-sweep", "--no-drain",
                   "--never-close", "--keep-parent-copy", "--idle-timeout",
                   "--max-connections")


def _said_lost(sink: str, count: int) -> str:
    """What one source lost before the trace, as the summary says it."""
    if sink == "capture":
        return f"the capture lost {count} frames: the kernel's packet buffer was full"
    if sink == "tracepoint":
        return (f"the kernel's tracepoint lost {count} transitions: its ring buffer was "
                f"full")
    if sink == "kernel-side":
        return f"the kernel side dropped {count} events: its pipe to the engine was full"
    if sink == "derive":
        return (f"the kernel side was not fed {count} events (its spill file or disk was "
                f"full, or it was gone): the segments derived from them are missing")
    return f"{sink} dropped {count} events"


def restart_config(config: ServerConfig, text: str) -> ServerConfig:
    """``config`` with what ``restart OPTIONS`` says (serve's options, those of
    ``RESTART_OPTIONS`` alone); ValueError says what is wrong."""
    import contextlib
    import dataclasses
    import io
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"restart: {exc}") from None
    for word in words:
        name = word.split("=", 1)[0]
        if name.startswith("-") and name not in RESTART_OPTIONS:
            raise ValueError(f"restart: {name} cannot change while serving "
                             f"(these can: {' '.join(RESTART_OPTIONS)})")
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            new = build_parser().parse_args(["serve", *words])
    except SystemExit:
        lines = [line for line in said.getvalue().splitlines() if line.strip()]
        raise ValueError("restart: " + (lines[-1].split("error: ", 1)[-1] if lines
                                        else "not valid")) from None
    given = {name.split("=", 1)[0] for name in words if name.startswith("-")}
    changes = {}
    for option, field in (("--mode", "mode"), ("--trigger", "trigger"), ("--policy", "policy"),
                          ("--backlog", "backlog"), ("--sweep-pause", "sweep_pause"),
                          ("--idle-timeout", "idle_timeout"),
                          ("--max-connections", "max_connections")):
        if option in given:
            changes[field] = getattr(new, field)
    if "--mode" in given and "--trigger" not in given:
        changes["trigger"] = new.trigger  # another mode: its default trigger, as at start-up
    if given & {"--reuseaddr", "--no-reuseaddr"}:
        changes["reuseaddr"] = new.reuseaddr
    for option, field in (("--every-sweep", "every_sweep"), ("--no-drain", "no_drain"),
                          ("--never-close", "never_close"),
                          ("--keep-parent-copy", "keep_parent_copy")):
        changes[field] = option in given  # a switch not given is off, as at start-up
    config = dataclasses.replace(config, **changes)
    try:
        config.check()  # refused now, with its reason: the server serves on untouched
    except ValueError as exc:
        raise ValueError(f"restart: {exc}") from None
    return config


def _serve_again(config: ServerConfig, port: int, probe: Probe, old):  # type: ignore[no-untyped-def]
    """A server with ``config`` on ``port``, where ``old`` served until now. Without
    SO_REUSEADDR the old server's TIME_WAIT sockets may hold the port (EADDRINUSE):
    then it is said (an ``error`` event and a line) and the server takes the port with
    SO_REUSEADDR after all, its ``listen`` event saying so. Anything else that fails
    serves on with the old settings; None (said too) if even that cannot listen."""
    import dataclasses
    config = dataclasses.replace(config, port=port)
    try:
        server = create_server(config, probe)
        server.bind()
        return server
    except OSError as exc:
        said = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE and not config.reuseaddr:
            why = ("restart: port {0} is held by the last server's TIME_WAIT sockets and "
                   "SO_REUSEADDR is off: EADDRINUSE; serving with SO_REUSEADDR on").format(port)
            config = dataclasses.replace(config, reuseaddr=True)
        else:
            why = f"restart: cannot serve with these settings ({said}); serving on as before"
            config = dataclasses.replace(old.config, port=port)
    except (ValueError, FileNotFoundError) as exc:
        why = f"restart: {exc}; serving on as before"
        config = dataclasses.replace(old.config, port=port)
    probe.emit("error", None, -1, 0, what="restart", detail=why)
    print(why, flush=True)
    try:
        server = create_server(config, probe)
        server.bind()
        return server
    except (OSError, ValueError) as exc:  # another program took the port meanwhile
        why = f"restart: cannot listen on port {port} any more ({exc}); stopping"
        probe.emit("error", None, -1, 0, what="restart", detail=why)
        print(why, flush=True)
        return None


def _open_files(raised: tuple[int, int, str | None], max_connections: int) -> None:
    """The server raised its soft open-files limit to the hard one (every connection is
    a descriptor): say so, and say when even that is fewer than --max-connections asks."""
    from .limits import SPARE_FDS
    before, now, problem = raised
    if problem:
        fit = max(0, now - SPARE_FDS)
        print(f"open files: the limit is {now} (the hard limit allows no more), so about "
              f"{fit} connections fit, fewer than --max-connections {max_connections}; beyond "
              f"them accept() fails with EMFILE and clients wait in the accept queue "
              f"(raise it: ulimit -Hn, prlimit --nofile)", flush=True)
    elif now != before:
        print(f"open files: soft limit raised from {before} to {now} "
              f"(--max-connections {max_connections})", flush=True)


def _fork_kernel_side(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The kernel side's process (engine/kernelside.py), forked now, before any thread:
    where packets will be captured and something records them; where they will be
    derived and a trace records them, fed the engine's events (Linux). None otherwise."""
    if args.kernel_side != "process" or args.packets == "off" \
            or (args.trace is None and args.control in (None, STDIN_CONTROL)):
        return None
    from .capture.live import can_capture
    from .kernelside import KernelSide
    captures, why_not = can_capture() if args.packets in ("auto", "captured") \
        else (False, None)
    if captures:
        def start(port: int, sinks: list, fed) -> tuple[list, list, str | None]:  # type: ignore[no-untyped-def,type-arg]
            try:
                started, both_ends = _start_observers(args, Probe("server"), port, sinks,
                                                      capture_only=True)
            except _NoCapture as exc:
                return exc.started, [], exc.reason
            return started, both_ends, None
        return KernelSide.fork(start)
    # Derived: the deriver reads the events the trace writer serializes (no writer, no
    # feed: a control port alone derives in this process, as before). sock_diag and
    # PR_SET_PDEATHSIG are Linux's.
    if args.packets == "captured" or args.trace is None or not sys.platform.startswith("linux"):
        return None

    def derive(port: int, sinks: list, fed) -> tuple[list, list, str | None]:  # type: ignore[no-untyped-def,type-arg]
        started, both_ends = _start_observers(args, fed.server, port, sinks,
                                              capture_problem=why_not, fed=fed)
        fed.clients = both_ends
        return started, both_ends, None
    return KernelSide.fork(derive, fed=True)


class _NoCapture(Exception):
    """The kernel side cannot capture: the engine derives the segments itself."""

    def __init__(self, reason: str, started: list) -> None:  # type: ignore[type-arg]
        super().__init__(reason)
        self.reason, self.started = reason, started


def _start_observers(args: argparse.Namespace, probe: Probe, port: int, sinks: list,
                     capture_problem: str | None = None, capture_only: bool = False,
                     fed=None) -> tuple[list, list]:  # type: ignore[no-untyped-def,type-arg]
    """Start the packet source, the state sources, and print what each is.

    The order of truth for TCP states (DESIGN.md): the segments, captured or
    derived, place every change of both ends (``SegmentStates``); as root the
    kernel's tracepoint reports every transition exactly and checks them; the
    sock_diag observer confirms or contradicts, and alone tells TIME_WAIT's
    end, timers and queues. Without packets, states come from the observer
    (or, where there is none, from the syscalls).

    Returns what to stop at the end, and the sinks that also want the
    built-in clients' events (derivation and inference use both ends). ``fed``: the
    kernel side's process, reading the engine's events late (``FedEvents``): the
    deriver and the checks go by its clock, not the wall's."""
    from .kernel.inferred import StateInference
    from .kernel.observer import KernelObserver
    from .kernel.segments import SegmentStates
    started: list = []  # type: ignore[type-arg]
    both_ends: list = []  # type: ignore[type-arg]
    kernel_probe = Probe("kernel")
    packet_probe = Probe("capture")
    for sink in sinks:
        kernel_probe.add_sink(sink)
        packet_probe.add_sink(sink)
    machine: SegmentStates | None = None
    if args.states in ("auto", "inferred"):
        # Its own probe: the deriver reads the kernel probe's states as evidence, and
        # must not read back the states its own segments gave.
        machine_probe = Probe("kernel")
        for sink in sinks:
            machine_probe.add_sink(sink)
        machine = SegmentStates(machine_probe, port)
    packets = _start_packets(args, probe, port, sinks, packet_probe, kernel_probe, machine,
                             started, both_ends, capture_problem, capture_only, fed=fed)
    if not packets:
        machine = None
    if machine is not None:
        print(f"kernel states: from the {packets} segments, each change placed at its "
              f"segment (marked inferred)", flush=True)
    if args.states == "off":
        return started, both_ends
    # The kernel's reports: states where nothing else tells them, checks of the
    # segments' states where the segments do (judged by StateChecks).
    report_probe = kernel_probe
    if machine is not None:
        from .kernel.checks import StateChecks
        # The deriver takes the kernel's word on an end it cannot see (a FIN whose
        # sender is not ours) from the checks too.
        checks = StateChecks(sinks + [s for s in both_ends if isinstance(s, PacketDeriver)],
                             clock=fed.now if fed is not None else None)
        machine_probe.add_sink(checks.record)
        report_probe = Probe("kernel")
        report_probe.add_sink(checks)
        started.append(checks.start())
    ok, reason = KernelObserver.available() if args.states in ("auto", "observed") \
        else (False, f"--states {args.states}")
    if ok:
        observer = KernelObserver(report_probe, port, interval=args.kernel_interval,
                                  host=args.host)
        # Stopped before the checks, so that its last look is judged too.
        started.insert(len(started) - (1 if machine is not None else 0), observer.start())
        print(f"kernel states: {'checked' if machine else 'observed'} via {observer.backend} "
              f"every {args.kernel_interval * 1000:g} ms", flush=True)
    elif args.states == "observed":
        print(f"kernel states: cannot be observed ({reason})", flush=True)
    elif machine is None:
        # The states the syscalls imply, marked inferred; the kernel is not asked.
        inference = StateInference(kernel_probe)
        probe.add_sink(inference)
        both_ends.append(inference)
        print(f"kernel states: inferred from syscalls, marked inferred ({reason})", flush=True)
    if machine is not None and args.states == "auto":
        _start_tracer(port, args.host, report_probe, started)
    return started, both_ends


def _start_tracer(port: int, host: str | None, kernel_probe: Probe, started: list
                  ) -> None:  # type: ignore[type-arg]
    """As root: the kernel's own state transitions (tracepoints), to check the segments'."""
    try:
        from .kernel.tracepoint import KernelTracer
    except ImportError:  # pragma: no cover - the module ships with the engine
        return
    ok, reason = KernelTracer.available()
    if not ok:
        print(f"kernel states: not traced ({reason})", flush=True)
        return
    from .kernel.tracepoint import TracepointError
    try:
        started.insert(len(started) - 1, KernelTracer(kernel_probe, port, host=host).start())
        print("kernel states: traced (sock:inet_sock_set_state, tcp: retransmissions "
              "and resets) to check the segments'", flush=True)
    except (OSError, TracepointError) as exc:
        print(f"kernel states: not traced ({exc})", flush=True)


def _start_packets(args: argparse.Namespace, probe: Probe, port: int, sinks: list,
                   packet_probe: Probe, kernel_probe: Probe, machine, started: list,
                   both_ends: list, capture_problem: str | None = None,
                   capture_only: bool = False, fed=None) -> str | None:  # type: ignore[no-untyped-def,type-arg]
    """Capture or derive the segments; ``machine`` follows them. Returns "captured",
    "derived" or None (no packets). ``capture_problem``: why the kernel side could not
    capture (this process then does not try). ``capture_only`` (the kernel side): raise
    ``_NoCapture`` rather than derive."""
    if args.packets in ("auto", "captured"):
        from .capture.live import CaptureError, LoopbackCapture, can_capture
        ok, reason = can_capture() if capture_problem is None else (False, capture_problem)
        if ok:
            try:
                if machine is not None:
                    packet_probe.add_sink(machine)
                marks = None
                if args.lab and args.fault:  # the segments its rules drop: seen, never received
                    from .lab import FaultMarks
                    marks = FaultMarks(args.fault, port)
                started.append(LoopbackCapture(packet_probe, port, dropped=marks,
                                               buffer_mib=args.capture_buffer).start())
                print("packets: captured on lo (AF_PACKET)", flush=True)
                return "captured"
            except CaptureError as exc:
                if machine is not None:
                    packet_probe.remove_sink(machine)
                reason = str(exc)
        if capture_only:
            raise _NoCapture(reason, started)
        if args.packets == "captured":
            print(f"packets: cannot capture ({reason})", flush=True)
            return None
        print(f"packets: derived from syscalls and states, marked derived "
              f"(capture: {reason})", flush=True)
    if args.packets in ("auto", "derived"):
        # Whether the server's sockets keep Nagle's algorithm (it shapes their segments):
        # said here, since the deriver starts after the server's "mode" event.
        deriver = PacketDeriver(Probe("engine"), server_nagle=args.mode in NAGLE_MODES,
                                clock=fed.now if fed is not None else None)
        if fed is not None:
            fed.on_time.append(deriver.tick)
        for sink in sinks:
            deriver.probe.add_sink(sink)
        if machine is not None:
            deriver.probe.add_sink(machine)
        probe.add_sink(deriver)
        kernel_probe.add_sink(deriver)
        started.append(deriver.start())
        both_ends.append(deriver)
        if args.packets == "derived":
            print("packets: derived from syscalls and states, marked derived", flush=True)
        return "derived"
    return None


def _start_stepping(current, held: bool = True, start_load=None,  # type: ignore[no-untyped-def]
                    stdin: bool = True, restart=None, stop_serving=None):
    """Step the live server from stdin (a terminal, or a SockScope window):
    each held action is printed. ``load OPTIONS`` runs the built-in clients in
    this process (the only way to reach a server in the lab); ``restart OPTIONS``
    starts the server again with other settings (``current()`` is the server
    running now; ``stop_serving()``, what q does, stops it by default). Returns the command handler (one line in, a problem or None out)
    the control port uses."""
    import threading
    server = current()
    if held:
        server.gate.enable()

    def show(event) -> None:  # type: ignore[no-untyped-def]
        if event.kind == "gate" and event.data.get("state") == "held":
            print(f"held before {event.data['action']}"
                  + (f" on {event.conn}" if event.conn else ""), flush=True)

    server.probe.add_sink(show)
    print("stepping: Enter releases one action, a number that many, "
          "c runs freely, s steps again, load OPTIONS runs clients, restart OPTIONS "
          "serves with other settings, q stops", flush=True)

    def command(line: str) -> str | None:
        """One command line (stdin's or the control port's): a problem, or None."""
        word = line.strip().lower()
        gate = current().gate
        if word in ("q", "quit"):
            (stop_serving or current().stop)()
        elif word in ("c", "run"):
            gate.disable()
        elif word in ("s", "step"):
            gate.enable()
        elif word.isdigit() and int(word) > 0:
            gate.step(int(word))
        elif not word:
            gate.step()
        elif word.startswith("load") and start_load is not None and \
                (word == "load" or word[4].isspace()):
            return start_load(line.strip()[4:])  # type: ignore[no-any-return]
        elif word.startswith("restart") and restart is not None and \
                (word == "restart" or word[7].isspace()):
            return restart(line.strip()[7:])  # type: ignore[no-any-return]
        else:
            return f"{word!r}: Enter, a number, c, s, load OPTIONS, restart OPTIONS or q"
        return None

    def read_commands() -> None:
        for line in sys.stdin:
            problem = command(line)
            if problem:
                print(f"? {problem}", flush=True)
            if line.strip().lower() in ("q", "quit"):
                return

    if stdin:
        threading.Thread(target=read_commands, name="sockscope-stdin", daemon=True).start()
    return command


def _start_load(load_args: argparse.Namespace, server, sinks: list, exit_after: bool,  # type: ignore[no-untyped-def]
                before_exit=None):
    """The built-in clients, in this process (in the lab, nothing else can reach the server).
    With ``exit_after``, ``before_exit()`` (if any) runs between the load's end and the stop."""
    import threading
    from .clients import run_load
    config = _load_config(load_args, server.url)
    client_probe = Probe("client")
    for sink in sinks:
        client_probe.add_sink(sink)

    def run() -> None:
        try:
            result = run_load(config, client_probe)
        except RuntimeError as exc:  # its clients' threads (the limit on processes)
            print(f"sockscope: the load could not start its clients ({exc})", flush=True)
        else:
            print(result.summary(), flush=True)
        if exit_after:
            if before_exit is not None:
                before_exit()
            server.stop()

    thread = threading.Thread(target=run, name="sockscope-load", daemon=True)
    try:
        thread.start()
    except RuntimeError as exc:
        print(f"sockscope: the load could not start ({exc})", flush=True)
        if exit_after:
            server.stop()
    return thread


def _load_config(args: argparse.Namespace, url: str | None = None):  # type: ignore[no-untyped-def]
    from .clients import LoadConfig
    return LoadConfig(url=url or args.url, clients=args.clients, requests=args.requests,
                      keep_alive=args.keep_alive, pipeline=args.pipeline, rate=args.rate,
                      think=args.think / 1000.0, behaviour=args.behaviour or "normal",
                      slow_interval=args.slow_interval, timeout=args.timeout,
                      together=args.together, paths=args.path,
                      linger_after_connect=args.wait_after_connect / 1000.0)


def cmd_load(args: argparse.Namespace) -> int:
    from .clients import run_load
    config = _load_config(args)
    try:
        config.check()
    except ValueError as exc:
        print(f"sockscope load: {exc}", file=sys.stderr)
        return 2
    probe = Probe("client")
    writer = _open_trace(args.trace, probe, "client")
    try:
        result = run_load(config, probe)
    finally:
        if writer:
            writer.close()
    print(result.summary(), flush=True)
    return 1 if result.failed else 0


def cmd_compare(args: argparse.Namespace, draw=None) -> int:  # type: ignore[no-untyped-def]
    """``draw(rows, subtitle, out, lang, scale)`` makes the --png picture: the window's
    package brings it (``sockscope compare``); the engine itself never imports Qt."""
    from .compare import CompareConfig, compare, compare_scale, describe, table, write_json
    config = CompareConfig(modes=[m.strip() for m in args.modes.split(",") if m.strip()],
                           clients=args.clients, requests=args.requests,
                           keep_alive=args.keep_alive, idle=args.idle, path=args.path,
                           timeout=args.timeout, root=str(args.root) if args.root else None)

    def say(text: str) -> None:
        print(f"compare: {text}", file=sys.stderr, flush=True)

    if args.keep_traces is not None:
        try:
            args.keep_traces.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"sockscope compare: cannot use {args.keep_traces}: {exc.strerror}",
                  file=sys.stderr)
            return 2
    if args.window:
        print("sockscope compare: --window is the window's: run it as "
              "'sockscope compare --window'", file=sys.stderr)
        return 2
    if args.png is not None and draw is None:
        print("sockscope compare: --png is drawn by the window's package: run it as "
              "'sockscope compare'", file=sys.stderr)
        return 2
    from .compare import check_writable
    for path in (args.png, args.json if args.json and str(args.json) != "-" else None):
        problem = check_writable(path)  # fail before the runs, not after them
        if problem:
            print(f"sockscope compare: {problem}", file=sys.stderr)
            return 2
    scale = None
    if args.scale is not None:
        try:
            scale = [int(n.replace("_", "")) for n in args.scale.split(",") if n.strip()]
        except ValueError:
            print(f"sockscope compare: --scale {args.scale!r}: a list of numbers, "
                  f"e.g. 10,100,1000", file=sys.stderr)
            return 2
        if args.idle:
            print("sockscope compare: --scale replaces --idle: give one of them",
                  file=sys.stderr)
            return 2
    def stopped(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # through every finally: each engine is stopped

    signal.signal(signal.SIGTERM, stopped)
    try:
        if scale is not None:
            config.check()  # before the first point, not after it
            rows = compare_scale(config, scale, say, workdir=args.keep_traces)
        else:
            rows = compare(config, say, workdir=args.keep_traces)
    except ValueError as exc:
        print(f"sockscope compare: {exc}", file=sys.stderr)
        return 2
    out = sys.stderr if args.json is not None and str(args.json) == "-" else sys.stdout
    print(f"{describe(config, scale=scale)}\n", file=out)
    print(table(rows, scale=scale is not None), file=out, flush=True)
    try:
        if args.json is not None:
            write_json(rows, config, sys.stdout if str(args.json) == "-" else args.json, scale)
        if args.png is not None:
            draw(rows, describe(config, args.lang, scale), args.png, args.lang, scale is not None)
            print(f"wrote {args.png}", file=out)
    except OSError as exc:
        print(f"sockscope compare: {exc}", file=sys.stderr)
        return 1
    return 1 if any(r.errors for r in rows) else 0


def cmd_idle(args: argparse.Namespace) -> int:
    import time
    from urllib.parse import urlsplit

    from .compare import IdleConnections
    from .limits import SPARE_FDS, raise_open_files
    parts = urlsplit(args.url)
    if parts.scheme != "http" or not parts.hostname or args.connections < 1 \
            or args.seconds < 0:
        print("sockscope idle: an http:// URL, --connections 1 or more, --seconds 0 or more",
              file=sys.stderr)
        return 2
    _, _, problem = raise_open_files(args.connections + SPARE_FDS)
    if problem:
        print(f"sockscope idle: {problem}", file=sys.stderr)
        return 2
    idle = IdleConnections(parts.hostname, parts.port or 80, args.connections,
                           parts.path or "/")
    def stopped(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # even while opening: let go of them all, at once

    signal.signal(signal.SIGTERM, stopped)
    result = None
    try:
        result = idle.open(30 + args.connections / 200)
        print(f"idle: {result.held} held, {result.refused} refused, {result.unanswered} "
              f"unanswered" + ("".join(f"; {n} {why}" for why, n in result.reasons.items())),
              flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else float("inf")
        while time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"idle: {idle.still_open()} still open at the end", flush=True)
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # a host name that does not resolve, a refused address...
        print(f"sockscope idle: {args.url}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        idle.close()
    return 0 if result is not None and result.held == args.connections else 1


def cmd_export(args: argparse.Namespace) -> int:
    if args.perfetto is not None:
        return _export_perfetto(args)
    from .capture.pcapng import export_pcapng
    from .trace import TraceError, read_trace
    try:
        trace = read_trace(args.trace)
    except (OSError, TraceError) as exc:
        print(f"sockscope export: {exc}", file=sys.stderr)
        return 1
    packets = [e for e in trace.events if e.kind == "packet"]
    origin = args.origin or ("captured" if any(e.data.get("origin") == "captured" for e in packets)
                             else "derived")
    try:
        count = export_pcapng(trace.events, args.pcapng, trace.header, origin=origin)
    except (OSError, ValueError) as exc:  # a packet no frame can be built from, a bad header
        print(f"sockscope export: {args.trace}: {exc}", file=sys.stderr)
        return 1
    if not count:
        print(f"sockscope export: {args.trace} holds no {origin} packets", file=sys.stderr)
        return 1
    print(f"wrote {count} {origin} segments to {args.pcapng}")
    return 0


def _export_perfetto(args: argparse.Namespace) -> int:
    """The whole trace as Chrome trace-event JSON, streamed (engine/perfetto.py)."""
    from .perfetto import export_perfetto
    from .trace import TraceError
    try:
        done = export_perfetto(args.trace, args.perfetto)
    except TraceError as exc:  # names the line
        print(f"sockscope export: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        path = exc.filename if exc.filename is not None else args.perfetto
        what = "read" if str(path) == str(args.trace) else "write"
        print(f"sockscope export: cannot {what} {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for problem in done.problems:  # a truncated last line, skipped
        print(f"sockscope export: {args.trace}: {problem}", file=sys.stderr)
    older = (f", and {done.older} socket{'' if done.older == 1 else 's'} already on the port "
             f"when the recording began") if done.older else ""
    print(f"wrote {done.events} trace events ({done.connections} "
          f"connection{'' if done.connections == 1 else 's'}{older}) to {args.perfetto}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .capture.pcapng import write_trace_from_capture
    from .trace import TraceError
    try:
        events = write_trace_from_capture(args.capture, args.trace)
    except (OSError, TraceError) as exc:
        print(f"sockscope import: {exc}", file=sys.stderr)
        return 1
    conns = {e.conn for e in events}
    print(f"wrote {len(events)} segments of {len(conns)} "
          f"connection{'' if len(conns) == 1 else 's'} to {args.trace}")
    for problem in events.problems:  # what was skipped: a cut last frame, broken frames
        print(f"sockscope import: {args.capture}: {problem}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # no subcommand: the server on its default site
        args = parser.parse_args(["serve"])
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "load":
        return cmd_load(args)
    if args.command == "compare":
        return cmd_compare(args)
    if args.command == "idle":
        return cmd_idle(args)
    if args.command == "record":
        from .control import cmd_record
        return cmd_record(args)
    if args.command == "export":
        return cmd_export(args)
    if args.command == "import":
        return cmd_import(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
