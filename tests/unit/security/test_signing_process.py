"""The signer process: every message handed over gets its own signature, the very one
signing in-process gives, across large messages, several event loops, closes, and a
process that dies with signatures owed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading

import pytest
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from ctplhub.security.signing_process import SigningProcess

SEED = bytes(range(32))
SECRET = crypto_sign_seed_keypair(SEED)[1]


def _sign(message: bytes) -> bytes:
    return crypto_sign(message, SECRET)[:64]


def test_concurrent_messages_each_get_their_own_signature() -> None:
    signer = SigningProcess(SEED, _sign)
    # A 3 MB message does not fit the pipe in one write: it goes out as the pipe drains.
    messages = [str(i).encode() * (i % 7) for i in range(2_000)] + [os.urandom(3 << 20), b""]

    async def main() -> list[bytes]:
        return await asyncio.gather(*(signer.sign(m) for m in messages))

    try:
        assert asyncio.run(main()) == [_sign(m) for m in messages]
    finally:
        signer.close()


def test_a_process_that_dies_owes_nothing() -> None:
    """Killed with signatures owed: each waiter gets its signature all the same (made
    in-process); for ``restart_after_s`` signatures are made in-process, then a new
    process starts."""
    signer = SigningProcess(SEED, _sign, restart_after_s=0.3)

    async def main() -> tuple[list[bytes], bytes, int, int]:
        await signer.sign(b"warm")
        first = signer._children[asyncio.get_running_loop()]
        pending = [asyncio.ensure_future(signer.sign(b"%d" % i)) for i in range(500)]
        await asyncio.sleep(0)  # handed over, not yet answered (most of them)
        os.kill(first._process.pid, signal.SIGKILL)
        signatures = await asyncio.gather(*pending)
        assert await signer.sign(b"meanwhile") == _sign(b"meanwhile")
        assert signer._children[asyncio.get_running_loop()] is first  # not restarted yet
        await asyncio.sleep(0.4)
        after = await signer.sign(b"after")
        second = signer._children[asyncio.get_running_loop()]
        return signatures, after, first._process.pid, second._process.pid

    try:
        signatures, after, first, second = asyncio.run(main())
    finally:
        signer.close()
    assert signatures == [_sign(b"%d" % i) for i in range(500)]
    assert after == _sign(b"after")
    assert first != second


def test_close_stops_the_process_and_a_later_sign_starts_another() -> None:
    signer = SigningProcess(SEED, _sign)

    async def one(message: bytes) -> tuple[bytes, int]:
        signature = await signer.sign(message)
        return signature, signer._children[asyncio.get_running_loop()]._process.pid

    signature, pid = asyncio.run(one(b"a"))
    assert signature == _sign(b"a")
    signer.close()
    assert not os.path.exists(f"/proc/{pid}") or _zombie_free(pid)
    again, other = asyncio.run(one(b"b"))
    assert again == _sign(b"b") and other != pid
    signer.close()
    signer.close()  # closing a stopped signer is harmless


def _zombie_free(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_the_seed_is_not_on_the_command_line() -> None:
    signer = SigningProcess(SEED, _sign)

    async def main() -> bytes:
        await signer.sign(b"x")
        pid = signer._children[asyncio.get_running_loop()]._process.pid
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()

    try:
        cmdline = asyncio.run(main())
    finally:
        signer.close()
    assert cmdline.split(b"\0")[1:3] == [b"-m", b"ctplhub.security.signer_child"]
    assert SEED.hex().encode() not in cmdline and SEED not in cmdline


def test_two_event_loops_have_a_process_each() -> None:
    signer = SigningProcess(SEED, _sign)
    results: dict[int, list[bytes]] = {}

    def run(loop_no: int) -> None:
        async def main() -> list[bytes]:
            return await asyncio.gather(
                *(signer.sign(f"{loop_no}:{i}".encode()) for i in range(300))
            )

        results[loop_no] = asyncio.run(main())

    workers = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(signer._children) == 2
    signer.close()
    assert not signer._children
    for loop_no in range(2):
        assert results[loop_no] == [_sign(f"{loop_no}:{i}".encode()) for i in range(300)]


def test_ctrl_c_leaves_the_process_to_its_server() -> None:
    """SIGINT (Ctrl-C reaches the whole process group) does not end the signer: the
    server drains its requests first, and closes it."""
    signer = SigningProcess(SEED, _sign)

    async def main() -> tuple[int, int, bytes]:
        await signer.sign(b"before")
        pid = signer._children[asyncio.get_running_loop()]._process.pid
        os.kill(pid, signal.SIGINT)
        await asyncio.sleep(0.2)
        signature = await signer.sign(b"after")
        return pid, signer._children[asyncio.get_running_loop()]._process.pid, signature

    try:
        before, after, signature = asyncio.run(main())
    finally:
        signer.close()
    assert before == after and signature == _sign(b"after")


def test_a_process_that_cannot_start_is_not_tried_for_every_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No Python to start (say): answers are signed in-process, and a new attempt is made
    only after ``restart_after_s``."""
    signer = SigningProcess(SEED, _sign, restart_after_s=60)
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("no interpreter")

    monkeypatch.setattr(subprocess, "Popen", refuse)

    async def main() -> list[bytes]:
        return [await signer.sign(b"%d" % i) for i in range(20)]

    assert asyncio.run(main()) == [_sign(b"%d" % i) for i in range(20)]
    assert len(attempts) == 1
