"""The daemon's long-lived objects kept out of the garbage collector's way.

A daemon with thousands of metrics holds hundreds of thousands of long-lived objects
(specs, pydantic models, slots, jobs) that never become garbage until the next reload.
Python's cyclic collector still walks all of them on every full collection, a pause of
the event loop that grows with the config and shows up as scheduler lag. After each
(re)load the daemon collects once and freezes what is left (`gc.freeze`, as CPython's
docs suggest for servers): later collections skip it. The next reload unfreezes first,
so what the previous config left behind is collected then.
"""

from __future__ import annotations

import ctypes
import gc


def settle() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def trim() -> bool:
    """Give the heap's free pages back to the system (glibc's `malloc_trim`; elsewhere
    nothing, False). The restart snapshot is read in a worker thread, so its arrays live in
    that thread's malloc arena; as metrics adopt them and the event loop's thread allocates
    their windows anew, the freed pages there are never reused by the loop's allocations
    and would stay in the RSS (issue 28: about 40 KiB per `auto` metric). Milliseconds for
    a daemon of 10,000 metrics; call it from a worker thread."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


MMAP_THRESHOLD = 4 << 20  # bytes: a block this large is mapped apart (`map_large`)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def map_large() -> bool:
    """Blocks of `MMAP_THRESHOLD` or more mapped apart and given back to the system when
    freed (glibc's `mallopt(M_MMAP_THRESHOLD)`, which also ends its moving threshold;
    elsewhere nothing, False). A /metrics body of 10,000 metrics is three 8 MiB blocks in a
    worker thread; after the first is freed glibc raises its threshold above them, so the
    next ones come from the thread's arena, whose freed pages stay in the RSS: 24 scrapes
    kept 42 MiB, 8 with the threshold fixed (issue 28). Called once by the daemon's start."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    if not _LIBC:
        try:
            lib: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
            if lib is not None and not hasattr(lib, "malloc_trim"):
                lib = None
        except OSError:  # not glibc (macOS, musl without the symbol)
            lib = None
        _LIBC.append(lib)
    return _LIBC[0]
