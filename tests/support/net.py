"""Free ports for the private servers and daemons the tests start."""

from __future__ import annotations

import os
import random
import socket

# Below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default),
# where every outgoing connection takes its local port: a daemon restarted on its port after
# `kill -9` found it taken by some test's client connection ("address already in use").
LOW, HIGH = 20000, 32000
SLICE = 1000  # each pytest-xdist worker picks in its own slice (gw0: 20000-20999, ...)
_given: list[int] = []  # handed out lately: a port is often bound a while after it is picked


def free_port() -> int:
    """A port nobody listens on now and no client connection takes later, distinct across
    parallel workers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    slices = (HIGH - LOW) // SLICE
    lo = LOW + (int(worker) if worker.isdigit() else 0) % slices * SLICE
    for _ in range(500):
        port = random.randrange(lo, lo + SLICE)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.append(port)
        del _given[:-200]
        return port
    raise RuntimeError(f"no free port in {lo}-{lo + SLICE - 1}")
