"""The cyclic garbage collector paused while a bulk answer is built.

A bulk verify of 10,000 plates makes some 200,000 container objects (rows, plate claims,
policy states, histories, results) that live until the answer is sent. The collector
runs every 20,000 new containers (``bootstrap``) and traverses every one still alive each
time, and again when they reach the older generation: 40-60 ms of a call's ~0.4 s of
server CPU, measured (docs/PERFORMANCE.md §18). Almost none of them is in a reference
cycle: reference counting frees them once the answer is sent, so pausing the collector
for the call loses nothing, and the pass after it finds little left to traverse.

The pause is counted: concurrent bulk calls share it and the collector resumes when the
last one ends, however they interleave. Calls that overlap without end would keep it off
for good, and the few cycles other requests make (an exception and its traceback) would
pile up; so a call that ends while others still hold the pause runs a young collection
itself when the pause has lasted ``MAX_PAUSE_S``. A collector that was already off
(disabled by an embedding program) is left off.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_PAUSE_S = 2.0  # the longest the collector stays off while calls overlap

_lock = threading.Lock()
_holders = 0  # bulk answers under way that paused the collector
_since = 0.0  # monotonic: when the pause began, or its last collection ran


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection while the block runs (explicit ``gc.collect`` still works)."""
    global _holders, _since
    with _lock:
        if _holders == 0 and not gc.isenabled():
            paused = False  # off already, and not by us: not ours to turn back on
        else:
            paused = True
            if _holders == 0:
                _since = time.monotonic()
            _holders += 1
            gc.disable()
    try:
        yield
    finally:
        if paused:
            collect = False
            with _lock:
                _holders -= 1
                if _holders == 0:
                    gc.enable()
                elif time.monotonic() - _since >= MAX_PAUSE_S:
                    _since = time.monotonic()
                    collect = True
            if collect:  # others still hold the pause: collect the young generations now
                gc.collect(1)
