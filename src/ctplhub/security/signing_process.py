"""Ed25519 signatures made in a process of their own, fed by the event loop through a pipe.

An owner's answer is signed on the API's hottest path, and a signature costs 50-65 µs of
libsodium on the CPUs measured: a tenth of a verified query's time on the loop. A thread
cannot take it off the loop: it needs the GIL back after every signature, and a busy loop
gives it up only at the switch interval, so under load each answer waited ~9 ms for its
signature (docs/PERFORMANCE.md §15). A process needs no GIL. The loop writes each message
as a length-prefixed frame to the process's standard input (all frames of one turn of the
loop in one write) and reads the 64-byte signatures back, in order, from its standard
output when they arrive: ~8 µs of the loop's time a signature, measured, instead of ~60
(docs/PERFORMANCE.md §16).

Each event loop has its own process (a server has one loop; the tests run several), started
on the loop's first signature; the seed goes down the pipe, never into an argument or the
environment. If the process cannot start, or dies, the messages it was given are signed
on the loop, as they would have been without it (the same bytes: Ed25519 is
deterministic) and a warning is logged; for ``restart_after_s`` (a second) answers are
signed on the loop, then the next signature starts a new process: no answer is lost or
left waiting, and a process that cannot run is not spawned for every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

import structlog

_log = structlog.get_logger("ctplhub.signing")

_SIGNATURE = 64
_READ = 1 << 16


class SigningProcess:
    """``sign`` from any event loop; ``close`` stops every loop's process."""

    def __init__(
        self, seed: bytes, fallback: Callable[[bytes], bytes], *, restart_after_s: float = 1.0
    ) -> None:
        """``fallback`` signs on the calling thread with the same key: used when the
        process is unavailable, and for ``restart_after_s`` after one could not start
        or died (a process that cannot run is not started again for every answer)."""
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._seed = seed
        self._fallback = fallback
        self._restart_after = restart_after_s
        self._not_before = 0.0  # monotonic: no new process before then
        self._lock = threading.Lock()
        self._children: dict[asyncio.AbstractEventLoop, _Child] = {}

    async def sign(self, message: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        child = self._children.get(loop)
        if child is None or child.broken:
            now = time.monotonic()
            not_before = self._not_before
            if child is not None:  # it died: not started again at once
                not_before = max(not_before, child.died_at + self._restart_after)
            if now < not_before:
                return self._fallback(message)
            child = self._start(loop)
            if child is None:
                self._not_before = now + self._restart_after
                return self._fallback(message)
        return await child.sign(message)

    def close(self) -> None:
        """Stop every loop's process; a later ``sign`` starts a new one."""
        with self._lock:
            children, self._children = list(self._children.values()), {}
        for child in children:
            child.close()

    def _start(self, loop: asyncio.AbstractEventLoop) -> _Child | None:
        try:
            child = _Child(loop, self._seed, self._fallback)
        except OSError as error:
            _log.warning("signer_process_unavailable", error=type(error).__name__)
            return None
        with self._lock:
            old, self._children[loop] = self._children.get(loop), child
        if old is not None:
            old.close()
        return child


class _Child:
    """One signer process, driven by one event loop's callbacks."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, seed: bytes, fallback: Callable[[bytes], bytes]
    ) -> None:
        self._loop = loop
        self._fallback = fallback
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ctplhub.security.signer_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin, self._stdout = self._process.stdin, self._process.stdout
        self._stdin.write(seed)  # 32 bytes into an empty pipe: never blocks
        self._write_fd, self._read_fd = self._stdin.fileno(), self._stdout.fileno()
        for fd in (self._write_fd, self._read_fd):
            os.set_blocking(fd, False)
        self._waiting: deque[tuple[bytes, asyncio.Future[bytes]]] = deque()
        self._out = bytearray()
        self._in = bytearray()
        self._flush_scheduled = False
        self._writer_added = False
        self.broken = False
        self.died_at = 0.0  # monotonic, when it was found dead
        loop.add_reader(self._read_fd, self._readable)

    def sign(self, message: bytes) -> asyncio.Future[bytes]:
        future = self._loop.create_future()
        self._waiting.append((message, future))
        self._out += len(message).to_bytes(4, "little")
        self._out += message
        if not self._flush_scheduled and not self._writer_added:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.broken or not self._out:
            return
        try:
            written = os.write(self._write_fd, self._out)
        except BlockingIOError:
            written = 0
        except OSError:  # the process is gone (a broken pipe)
            self._lost()
            return
        del self._out[:written]
        if self._out and not self._writer_added:
            self._writer_added = True
            self._loop.add_writer(self._write_fd, self._flush)
        elif not self._out and self._writer_added:
            self._writer_added = False
            self._loop.remove_writer(self._write_fd)

    def _readable(self) -> None:
        try:
            data = os.read(self._read_fd, _READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the end of its output: the process has died
            self._lost()
            return
        received = self._in
        received += data
        count = len(received) // _SIGNATURE
        waiting = self._waiting
        for index in range(count):
            _, future = waiting.popleft()
            if not future.done():  # a waiter whose client went away is cancelled
                future.set_result(bytes(received[index * _SIGNATURE : (index + 1) * _SIGNATURE]))
        del received[: count * _SIGNATURE]

    def _lost(self) -> None:
        """The process died: what it was given is signed here, and it is let go."""
        if self.broken:
            return
        self.died_at = time.monotonic()
        _log.warning("signer_process_lost", waiting=len(self._waiting))
        self._finish()

    def _finish(self) -> None:
        self.broken = True
        while self._waiting:
            message, future = self._waiting.popleft()
            if not future.done():
                future.set_result(self._fallback(message))
        self._release()

    def _release(self) -> None:
        if not self._loop.is_closed():
            self._loop.remove_reader(self._read_fd)
            if self._writer_added:
                self._loop.remove_writer(self._write_fd)
        for pipe in (self._stdin, self._stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        with contextlib.suppress(OSError):
            self._process.kill()
        self._process.wait()

    def close(self) -> None:
        """From the loop's own thread, or any thread once the loop has stopped; on a
        loop still running elsewhere, the loop does it."""
        if self.broken:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop or self._loop.is_closed() or not self._loop.is_running():
            self._finish()
        else:
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self._loop.call_soon_threadsafe(self._finish)
