"""Ed25519 signatures made off the event loop, on a thread of their own.

A signature is ~22 µs of pure C in libsodium, which releases the GIL while it works. On
the event loop it is a tenth of a verified query's CPU; on this thread it runs on the
machine's other core while the loop goes on answering. The loop hands over the bytes
and awaits a future; the thread takes everything handed over since its last turn, signs
it, and resolves the futures with one wake-up of the loop per turn, so under load the
hand-over costs the loop a few microseconds an answer (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

_Item = tuple[bytes, "asyncio.Future[bytes]", asyncio.AbstractEventLoop]


class SigningThread:
    def __init__(self, sign: Callable[[bytes], bytes]) -> None:
        self._sign = sign
        self._pending: list[_Item] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False

    async def sign(self, message: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        with self._lock:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="ctplhub-signing", daemon=True
                )
                self._thread.start()
            self._pending.append((message, future, loop))
            first = len(self._pending) == 1
        if first:
            self._wake.set()
        return await future

    def close(self) -> None:
        """Stop the thread once it has signed what it holds; a later ``sign`` starts a
        new one."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
        self._wake.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                batch, self._pending = self._pending, []
                self._wake.clear()
                stopping = self._stopping
            done: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bytes], bytes]]] = {}
            for message, future, loop in batch:
                done.setdefault(loop, []).append((future, self._sign(message)))
            for loop, results in done.items():
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_deliver, results)
            if stopping:
                return


def _deliver(results: list[tuple[asyncio.Future[bytes], bytes]]) -> None:
    for future, signature in results:
        if not future.done():  # a waiter whose client went away is cancelled
            future.set_result(signature)
