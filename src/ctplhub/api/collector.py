"""The cyclic garbage collector paused while a bulk answer is built.

A bulk verify of 10,000 plates makes some 200,000 container objects (rows, plate claims,
policy states, histories, results) that live until the answer is sent. The collector
runs every 20,000 new containers (``bootstrap``) and traverses every one still alive each
time, and again when they reach the older generation: 40-60 ms of a call's ~0.4 s of
server CPU, measured (docs/PERFORMANCE.md §18). Almost none of them is in a reference
cycle: reference counting frees them once the answer is sent, so pausing the collector
for the call loses nothing, and the pass after it finds little left to traverse.

The pause is counted: concurrent bulk calls share it and the collector resumes when the
last one ends, however they interleave. A collector that was already off (disabled by an
embedding program) is left off.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0  # bulk answers under way that paused the collector


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection while the block runs (explicit ``gc.collect`` still works)."""
    global _holders
    with _lock:
        if _holders == 0 and not gc.isenabled():
            paused = False  # off already, and not by us: not ours to turn back on
        else:
            paused = True
            _holders += 1
            gc.disable()
    try:
        yield
    finally:
        if paused:
            with _lock:
                _holders -= 1
                if _holders == 0:
                    gc.enable()
