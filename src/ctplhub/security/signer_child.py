"""The signer process's program (``python -m ctplhub.security.signer_child``), started by
``security/signing_process.py``; not a command of its own.

On standard input: the 32-byte Ed25519 seed, then frames of a 4-byte little-endian
length and that many bytes of message. On standard output: each message's 64-byte
signature, in the order the frames came. It ends at the end of its input, which is also
what happens when the server that started it dies; it ignores SIGINT. Nothing but PyNaCl
is imported, so it starts in a few tens of milliseconds; it never logs (the messages are
answers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

_SEED = 32
_HEADER = 4


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve(read_fd: int, write_fd: int) -> None:
    from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

    seed = _read_exactly(read_fd, _SEED)
    if seed is None:
        return
    secret = crypto_sign_seed_keypair(seed)[1]
    buffer = bytearray()
    while chunk := os.read(read_fd, 1 << 20):
        buffer += chunk
        signatures: list[bytes] = []
        start = 0
        while len(buffer) - start >= _HEADER:
            size = int.from_bytes(buffer[start : start + _HEADER], "little")
            end = start + _HEADER + size
            if end > len(buffer):
                break
            signatures.append(crypto_sign(bytes(buffer[start + _HEADER : end]), secret)[:64])
            start = end
        del buffer[:start]
        if signatures:
            out = b"".join(signatures)
            while out:
                out = out[os.write(write_fd, out) :]


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group: the server then drains its
    # requests, and this process ends when the server closes the pipe or exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(BrokenPipeError):  # the server went first
        serve(sys.stdin.fileno(), sys.stdout.fileno())
