"""Identifiers that must be unique, not secret: answer ids and request ids.

They come from the standard library's Mersenne Twister (seeded from the operating
system, and again in every child process after a fork), not from ``os.urandom``: a
``getrandom`` system call per answer cost ~6 µs under load on the benchmark machine,
twice per request. Nothing is keyed or authorised by these ids; tokens and secrets
still come from ``secrets`` (``security/tokens.py``).
"""

from __future__ import annotations

import random


def new_answer_id() -> str:
    """A random (version 4) UUID string."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def new_request_id() -> str:
    """16 hex digits: short enough to read out over the phone, unique enough per day."""
    return f"{random.getrandbits(64):016x}"
