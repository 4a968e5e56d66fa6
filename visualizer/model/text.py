"""How the views write the log's facts: client ports, durations, ready masks.

Plain Python, no Qt (and nothing to translate: numbers, units, flag names).
"""
from __future__ import annotations

# epoll's bits as the engine reports them in a ready list; selectors use 1/2.
_EPOLL_BITS = ((0x001, "IN"), (0x002, "PRI"), (0x004, "OUT"), (0x008, "ERR"), (0x010, "HUP"),
               (0x2000, "RDHUP"))
_SELECTOR_BITS = ((1, "IN"), (2, "OUT"))


def ready_mask_text(mask: int, selectors: bool = False) -> str:
    names = [n for bit, n in (_SELECTOR_BITS if selectors else _EPOLL_BITS) if mask & bit]
    return "|".join(names) or str(mask)


def short_conn(conn: str | None) -> str:
    """"client port → server port" (what tells connections apart on one machine)."""
    if not conn:
        return ""
    client, _, server = conn.partition(">")
    return f"{client.rsplit(':', 1)[-1]} → {server.rsplit(':', 1)[-1]}" if server else conn


def client_port(conn_id: str) -> str:
    client = conn_id.partition(">")[0]
    return client.rsplit(":", 1)[-1]


def fmt_duration(ns: float) -> str:
    s = ns / 1e9
    if s < 0.001:
        return f"{ns / 1e3:.0f} µs"
    if s < 0.01:
        return f"{s * 1e3:.2f} ms"
    if s < 1:
        return f"{s * 1e3:.1f} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60)} s"


def header_value(head: str, name: str) -> str:
    """A header's value in an HTTP head, its name in any case ("" when it has none)."""
    for line in head.split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return ""
