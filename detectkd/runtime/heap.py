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

import gc


def settle() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()
