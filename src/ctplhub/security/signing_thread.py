"""Ed25519 signatures of large texts made off the event loop, on a thread of their own.

libsodium releases the GIL while it works, so the signature of a bulk verify answer (up
to a few megabytes, hashed twice) runs on the machine's other core while the loop goes on
answering. The loop hands over the bytes and awaits a future; the thread takes
everything handed over since its last turn, signs it, and resolves the futures with one
wake-up of the loop per turn.

Not for small answers: the thread needs the GIL back after each signature, and a busy
loop holds it for up to the switch interval; under load an owner's answer waited ~9 ms
for a 50 µs signature (docs/PERFORMANCE.md §15), so those are signed on the loop
(``AnswerSigner.signed_json``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

_Item = tuple[bytes, "asyncio.Future[bytes]", asyncio.AbstractEventLoop]
_STOP = None  # handed over by ``close``: the thread ends after the turn that takes it


class SigningThread:
    """The hand-over is a ``queue.SimpleQueue``: a put is one C call that wakes the
    thread, where a ``threading.Event`` (a Python-level condition variable) cost the loop
    5 % of its busy time under load (docs/PERFORMANCE.md)."""

    def __init__(self, sign: Callable[[bytes], bytes]) -> None:
        self._sign = sign
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # starting and stopping the thread
        self._thread: threading.Thread | None = None

    async def sign(self, message: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        if self._thread is None:
            self._start()
        self._queue.put((message, future, loop))
        return await future

    def close(self) -> None:
        """Stop the thread once it has signed what it holds; a later ``sign`` starts a
        new one."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ctplhub-signing", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        take, take_now = self._queue.get, self._queue.get_nowait
        while True:
            batch = [take()]
            try:
                while True:
                    batch.append(take_now())
            except queue.Empty:
                pass
            # Everything taken is signed, what was handed over after a stop included, so
            # no waiter is left behind; then the thread ends if a stop was among it.
            done: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bytes], bytes]]] = {}
            stopping = False
            for item in batch:
                if item is _STOP:
                    stopping = True
                    continue
                message, future, loop = item
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
