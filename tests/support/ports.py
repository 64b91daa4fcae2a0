"""Loopback ports for servers a test starts in another process.

A port found by binding to port 0 comes from the kernel's ephemeral range, the same range every outgoing
connection of the suite takes its local port from: between the probe and the child's own bind, a
connection to PostgreSQL or to another stack can land on it ("address already in use", seen in CI). These
ports come from below that range instead, each xdist worker from a band of its own, handed out in turn so
that one worker does not reuse a port it gave out a moment ago.
"""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

HOST = "127.0.0.1"
_BAND = 1000
_FIRST = 20000


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _band() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    start = _FIRST + (index % 12) * _BAND
    stop = min(start + _BAND, _ephemeral_floor())
    if stop - start < 16:  # a machine whose ephemeral range starts low: fall back to the kernel's choice
        return range(0)
    return range(start, stop)


_next = itertools.count(os.getpid() % _BAND)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive free ports (a launcher takes base, base + 1, …)."""
    band = _band()
    if not band:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return int(s.getsockname()[1])
    for _ in range(len(band)):
        base = band.start + next(_next) % (len(band) - count + 1)
        if all(_bindable(port) for port in range(base, base + count)):
            for _ in range(count - 1):
                next(_next)  # the next call starts past these
            return base
    raise RuntimeError(f"no {count} consecutive free ports in {band.start}-{band.stop - 1}")


def free_port() -> int:
    return free_ports(1)


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    return free_ports(1)
