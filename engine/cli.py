"""``sockscope``: the command line. ``serve`` and ``load`` never import Qt."""
from __future__ import annotations

import argparse
import errno
import gc
import signal
import sys
from pathlib import Path

from . import __version__
from .events import Probe
from .server import MODES, POLICIES, TRIGGERS, DEFAULT_PORT, ServerConfig, create_server, default_mode


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the web server headless",
                       description="Run SockScope's static web server in one I/O mode.")
    p.add_argument("--mode", choices=MODES, default=default_mode(),
                   help="I/O model (default: %(default)s)")
    p.add_argument("--trigger", choices=TRIGGERS, default="level",
                   help="epoll mode: level- or edge-triggered (default: level)")
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
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="close a client whose request head is not complete by then (default 10)")
    p.add_argument("--idle-timeout", type=float, default=15.0, metavar="SECONDS",
                   help="close an idle keep-alive connection after this long (default 15)")
    p.add_argument("--max-connections", type=int, default=10_000,
                   help="answer 503 beyond this many open connections (default 10000)")
    p.add_argument("--trace", type=Path, default=None, metavar="FILE",
                   help="record every event to FILE (JSON Lines)")


def _load_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load", help="run the built-in clients against a URL",
                       description="Send traffic, print requests ok/failed, req/s and latency.")
    p.add_argument("url")
    p.add_argument("--clients", type=int, default=1, help="concurrent clients (default 1)")
    p.add_argument("--requests", type=int, default=1, help="requests per client (default 1)")
    style = p.add_mutually_exclusive_group()
    style.add_argument("--keep-alive", dest="keep_alive", action="store_true", default=True,
                       help="one connection per client, reused (default)")
    style.add_argument("--short", dest="keep_alive", action="store_false",
                       help="a new connection for every request")
    p.add_argument("--pipeline", type=int, default=1, metavar="K",
                   help="keep-alive: send K requests before reading the answers")
    p.add_argument("--rate", type=float, default=0.0, metavar="R",
                   help="total requests per second (default: as fast as possible)")
    p.add_argument("--think", type=float, default=0.0, metavar="MS",
                   help="milliseconds each client waits between requests")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sockscope",
        description="SockScope: watch a real web server handle TCP connections.")
    parser.add_argument("--version", action="version", version=f"sockscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(sub)
    _load_parser(sub)
    return parser


def _open_trace(path: Path | None, probe: Probe, role: str):  # type: ignore[no-untyped-def]
    if path is None:
        return None
    from .trace import TraceWriter
    writer = TraceWriter(path, header={"role": role, "argv": sys.argv[1:]})
    probe.add_sink(writer)
    return writer


def cmd_serve(args: argparse.Namespace) -> int:
    config = ServerConfig(mode=args.mode, trigger=args.trigger, host=args.host, port=args.port,
                          root=str(args.root) if args.root else None, policy=args.policy,
                          backlog=args.backlog, reuseaddr=args.reuseaddr,
                          sweep_pause=args.sweep_pause, header_timeout=args.header_timeout,
                          idle_timeout=args.idle_timeout, max_connections=args.max_connections)
    probe = Probe("server")
    try:
        writer = _open_trace(args.trace, probe, "server")
    except OSError as exc:
        print(f"sockscope: cannot write trace {args.trace}: {exc.strerror}", file=sys.stderr)
        return 2
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
        print(f"sockscope: cannot listen on {config.host}:{config.port}: {exc.strerror}{hint}",
              file=sys.stderr)
        if writer:
            writer.close()
        return 1

    def stop(signum: int, frame: object) -> None:
        server.stop()

    # A loaded server allocates an event or a request object every few
    # microseconds; the default collector threshold (700) then runs young
    # collections thousands of times a second. Nothing here builds cycles.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    detail = f"{config.mode}" + (f", {config.trigger}-triggered" if config.mode == "epoll" else "")
    print(f"SockScope serving {server.site.root} at {server.url} ({detail}, {config.policy})",
          flush=True)
    if writer:
        print(f"recording events to {args.trace}", flush=True)
    try:
        server.serve()
    finally:
        if writer:
            writer.close()
        s = server.stats
        print(f"stopped: {s.accepted} connections, {s.responses} responses, "
              f"{s.bad_requests} bad requests, {s.eagain} EAGAIN"
              + (f", {writer.written} events recorded ({writer.dropped} dropped)" if writer else ""),
              flush=True)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from .clients import LoadConfig, run_load
    config = LoadConfig(url=args.url, clients=args.clients, requests=args.requests,
                        keep_alive=args.keep_alive, pipeline=args.pipeline, rate=args.rate,
                        think=args.think / 1000.0, behaviour=args.behaviour or "normal",
                        slow_interval=args.slow_interval, timeout=args.timeout,
                        together=args.together, paths=args.path)
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # no subcommand: the server on its default site
        args = parser.parse_args(["serve", *(argv or [])])
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "load":
        return cmd_load(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
