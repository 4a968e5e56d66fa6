#!/usr/bin/env python3
"""How often the derived segments equal the captured ones (needs root or CAP_NET_RAW).

    python3 bench/bench_derived.py                  # 10 rounds of every case in every mode
    python3 bench/bench_derived.py --rounds 2 --cases short,keep-alive --show 3

Each round runs a SockScope server (in-process) with ``LoopbackCapture`` on its
port and a ``PacketDeriver`` fed by the server's and the built-in clients'
events, then compares per connection the (sender, flags, length) list derived
from the syscalls with the one captured on `lo`. A connection is "excused"
when the kernel decided by timing the syscalls cannot show: a delayed-ACK
timer racing the answer (which came 30 to 50 ms after the data), or a
retransmission (see
tests/engine/test_derived.py); excused ones are counted, and whether they
matched anyway.

The Markdown report goes to stdout (it starts with the command line),
mismatches asked for with ``--show`` to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import ServerConfig, create_server  # noqa: E402
from engine.capture.derived import DELAYED_ACK_NS, PINGPONG_THRESHOLD, PacketDeriver  # noqa: E402
from engine.capture.live import LoopbackCapture, can_capture  # noqa: E402
from engine.clients import LoadConfig, run_load  # noqa: E402
from engine.events import MemorySink, Probe  # noqa: E402

from engine.modes import variants  # noqa: E402

MODES = variants()  # every mode of the registry, both triggers of epoll
CASES = {
    "short": {"keep_alive": False, "clients": 5},
    "keep-alive": {"keep_alive": True, "clients": 3, "requests": 3},
    "pipelined": {"keep_alive": True, "clients": 2, "requests": 4, "pipeline": 2},
    "think-60ms": {"keep_alive": True, "clients": 2, "requests": 3, "think": 0.06},
    "half-close": {"keep_alive": True, "clients": 2, "requests": 2, "behaviour": "half-close"},
    "large": {"keep_alive": False, "clients": 1, "path": "big.bin"},
}


def one_round(mode: str, trigger: str, load: dict, root: str) -> list[tuple[list, list]]:
    load = dict(load)
    path = load.pop("path", "")
    derived, captured = MemorySink(), MemorySink()
    deriver = PacketDeriver(Probe("engine"))
    deriver.probe.add_sink(derived)
    client = Probe("client")
    client.add_sink(deriver)
    server_probe = Probe("server")
    server_probe.add_sink(deriver)  # before start: it learns the mode (Nagle or not)
    cap_probe = Probe("capture")
    cap_probe.add_sink(captured)
    options: dict = {"sweep_pause": 0.001} if mode == "nonblocking" else {}
    server = create_server(ServerConfig(mode=mode, trigger=trigger, port=0, root=root,
                                        **options), server_probe).start()
    deriver.start()
    try:
        with LoopbackCapture(cap_probe, server.address[1]):
            run_load(LoadConfig(server.url + path, timeout=5, **load), client)
            time.sleep(0.15)
    finally:
        deriver.stop()
        server.stop()
    port = server.address[1]
    conns: dict[str, tuple[list, list]] = {}
    for e in captured.events:
        d = e.data
        conns.setdefault(e.conn, ([], []))[0].append(
            ("server" if d["sport"] == port else "client", d["flags"], d["len"], d["tcp_seq"],
             e.t_ns))
    for e in sorted(derived.events, key=lambda e: (e.t_ns, e.seq)):
        d = e.data
        conns.setdefault(e.conn, ([], []))[1].append(
            (d["sender"], d["flags"], d["len"], bool(d.get("aggregate")), e.t_ns))
    return list(conns.values())


def excused(captured: list, derived: list) -> bool:
    for i, (who, flags, n, _, t) in enumerate(captured):  # the wire's times (kernel stamps)
        if not n and "FIN" not in flags:
            continue
        for q in captured[i + 1:]:  # the answer, unless the first sender spoke again
            if q[0] == who:
                break
            if q[2] or "FIN" in q[1]:
                if abs(q[4] - t - DELAYED_ACK_NS) < 10_000_000:
                    return True
                break
    top: dict[str, int] = {}
    for who, flags, n, seq, _ in captured:
        end = (seq + n + ("FIN" in flags)) % (1 << 32)
        if end == seq or "SYN" in flags:
            continue
        if who in top and ((end - top[who]) % (1 << 32) >= 1 << 31 or end == top[who]):
            return True
        top[who] = end
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--modes", default="all", help="comma-separated, e.g. threaded,epoll-edge")
    parser.add_argument("--show", type=int, default=0, help="print this many mismatches")
    args = parser.parse_args()
    ok, why = can_capture()
    if not ok:
        print(f"cannot capture: {why}", file=sys.stderr)
        return 2
    modes = MODES if args.modes == "all" else [
        (m.split("-")[0], m.split("-")[1] if "-" in m else "level") for m in args.modes.split(",")]
    show = args.show
    print(f"`{shlex.join(['python3', *sys.argv])}`\n")
    print(f"kernel {os.uname().release}, tcp_pingpong_thresh {PINGPONG_THRESHOLD}\n")
    print("| case | mode | connections | equal | excused (of which equal) | differ |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "big.bin").write_bytes(os.urandom(1 << 20))
        for src in (Path(__file__).resolve().parent.parent / "html").iterdir():
            if src.is_file():
                (Path(root) / src.name).write_bytes(src.read_bytes())
        for case in args.cases.split(","):
            for mode, trigger in modes:
                total = equal = exc = exc_equal = differ = 0
                for _ in range(args.rounds):
                    for captured, derived in one_round(mode, trigger, CASES[case], root):
                        total += 1
                        got = [tuple(x[:3]) for x in derived]
                        want = [tuple(x[:3]) for x in captured]
                        if case == "large":  # up to the first aggregate; then the bytes
                            first = next((i for i, x in enumerate(derived) if x[3]), len(derived))
                            same = got[:first] == want[:first] and \
                                sum(x[2] for x in derived if x[0] == "server") == \
                                sum(x[2] for x in captured if x[0] == "server")
                        else:
                            same = got == want
                        if excused(captured, derived):
                            exc += 1
                            exc_equal += same
                        elif same:
                            equal += 1
                        else:
                            differ += 1
                            if show > 0:
                                show -= 1
                                print(f"{case} {mode}-{trigger}\n  captured {want}\n"
                                      f"  derived  {got}", file=sys.stderr)
                name = mode if mode != "epoll" else f"epoll-{trigger}"
                print(f"| {case} | {name} | {total} | {equal} | {exc} ({exc_equal}) | {differ} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
