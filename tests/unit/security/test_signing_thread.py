"""The signing thread: every message handed over is signed and its waiter woken, across
stops and restarts and from several event loops."""

from __future__ import annotations

import asyncio
import hashlib
import threading

from ctplhub.security.signing_thread import SigningThread


def _sign(message: bytes) -> bytes:
    return hashlib.sha256(message).digest()


def test_concurrent_messages_each_get_their_own_signature() -> None:
    thread = SigningThread(_sign)

    async def main() -> list[bytes]:
        return await asyncio.gather(*(thread.sign(str(i).encode()) for i in range(2_000)))

    try:
        assert asyncio.run(main()) == [_sign(str(i).encode()) for i in range(2_000)]
    finally:
        thread.close()


def test_close_then_sign_again_starts_a_new_thread() -> None:
    thread = SigningThread(_sign)

    async def one(message: bytes) -> bytes:
        return await thread.sign(message)

    assert asyncio.run(one(b"a")) == _sign(b"a")
    thread.close()
    assert not any(t.name == "ctplhub-signing" and t.is_alive() for t in threading.enumerate())
    assert asyncio.run(one(b"b")) == _sign(b"b")
    thread.close()
    thread.close()  # closing a stopped thread is harmless


def test_two_event_loops_share_one_thread() -> None:
    thread = SigningThread(_sign)
    results: dict[int, list[bytes]] = {}

    def run(loop_no: int) -> None:
        async def main() -> list[bytes]:
            return await asyncio.gather(
                *(thread.sign(f"{loop_no}:{i}".encode()) for i in range(300))
            )

        results[loop_no] = asyncio.run(main())

    workers = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    thread.close()
    for loop_no in range(2):
        assert results[loop_no] == [_sign(f"{loop_no}:{i}".encode()) for i in range(300)]
