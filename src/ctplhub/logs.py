"""Structured logs: JSON lines through structlog, on standard error.

Every line is one event name and key-value fields (STYLE.md), never a body, a secret or
personal data. Our own events go from structlog straight to a line buffer; the standard
library's loggers (uvicorn's, alembic's) are rendered the same way into the same buffer,
so one process writes one format, in order.

The buffer is written out when it holds 64 KiB, when a line is a second old, and at once
for errors, as nginx does with ``access_log ... buffer=64k flush=1s``: one ``write`` per
request line cost ~30 µs of a request's ~300 µs on the benchmark machine. The server
flushes it every second when idle (``flush_periodically``) and at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson
import structlog

_MAX_BYTES = 64 * 1024
_MAX_DELAY_S = 1.0


class LineBuffer:
    """Log lines kept in memory and written to ``stream`` in bulk."""

    def __init__(self, stream: BinaryIO, *, max_bytes: int = _MAX_BYTES) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self._oldest = 0.0
        self._lock = threading.Lock()  # handlers of the thread pool log too

    def add(self, line: bytes, *, urgent: bool = False) -> None:
        with self._lock:
            if not self._lines:
                self._oldest = time.monotonic()
            self._lines.append(line)
            self._size += len(line)
            if (
                urgent
                or self._size >= self._max_bytes
                or time.monotonic() - self._oldest >= _MAX_DELAY_S
            ):
                self._write()

    def flush(self) -> None:
        with self._lock:
            self._write()

    def _write(self) -> None:
        if self._lines:
            self._stream.write(b"".join(self._lines))
            self._stream.flush()
            self._lines.clear()
            self._size = 0


class _BufferedLogger:
    """structlog's logger at the end of the chain: buffers the rendered lines in the
    process's buffer (looked up per line: loggers are cached on first use, and the
    buffer outlives a reconfiguration)."""

    def _later(self, message: bytes) -> None:
        _current().add(message + b"\n")

    def _now(self, message: bytes) -> None:
        _current().add(message + b"\n", urgent=True)

    debug = info = msg = warning = _later
    error = critical = exception = fatal = _now


class _BufferHandler(logging.Handler):
    """The standard library's records, formatted by structlog, into the same buffer."""

    def __init__(self, buffer: LineBuffer) -> None:
        super().__init__()
        self._buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode() + b"\n"
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)
            return
        self._buffer.add(line, urgent=record.levelno >= logging.ERROR)


_buffer: LineBuffer | None = None


def _current() -> LineBuffer:
    global _buffer
    if _buffer is None:
        _buffer = LineBuffer(sys.stderr.buffer)
        atexit.register(flush_logs)
    return _buffer


def flush_logs() -> None:
    if _buffer is not None:
        _buffer.flush()


async def flush_periodically(interval_s: float = _MAX_DELAY_S) -> None:
    """Write out what an idle server has buffered; runs for the life of the app."""
    while True:
        await asyncio.sleep(interval_s)
        flush_logs()


# The processors ``configure_logging`` installed, when they render JSON lines at INFO or
# below: while structlog still runs exactly these, ``info_line`` renders a line itself (a
# test holds the two renderings equal). A copy: ``capture_logs`` changes the configured
# list in place.
_json_chain: list[Any] | None = None


def info_line(logger: Any, event: str, fields: dict[str, Any]) -> None:
    """``logger.info(event, **fields)``, for the one line every request writes: the same
    JSON line (fields, ``event``, ``level``, ``timestamp``, in that order) without
    structlog's bound logger and per-call chain of processors: 7 µs a line against 16 µs
    through structlog, ~1.5 % of a verified query (docs/PERFORMANCE.md §15). Any other
    configuration (a console renderer, a level above INFO, a test's ``capture_logs``)
    goes through ``logger`` as usual. ``fields`` is taken over."""
    if _json_chain is None or structlog.get_config()["processors"] != _json_chain:
        logger.info(event, **fields)
        return
    fields["event"] = event
    fields["level"] = "info"
    fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    _current().add(orjson.dumps(fields) + b"\n")


_SHARED: list[structlog.types.Processor] = [
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def safe_traceback(error: BaseException) -> str:
    """The stack of an exception and of those it was raised from: files, lines, functions
    and source lines, and the exceptions' types, but never their messages, which may
    carry the data being processed (a plate, a VIN, an SQL parameter)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"{frames}{type(current).__module__}.{type(current).__qualname__}")
        current = current.__cause__ or current.__context__
    return "\n--- raised while handling ---\n".join(reversed(parts))


def configure_logging(
    level: str = "INFO", *, json: bool = True, stream: BinaryIO | None = None
) -> None:
    """JSON lines on standard error (or ``stream``); ``json=False`` renders for people at
    a terminal."""
    global _buffer, _json_chain
    numeric = logging.getLevelName(level.upper())
    flush_logs()
    if stream is not None:
        _buffer = LineBuffer(stream)
    buffer = _current()
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=orjson.dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )

    def logger_factory(*_: Any) -> Any:
        return _BufferedLogger()

    chain: list[Any] = [
        *_SHARED,
        structlog.processors.format_exc_info,  # plain traceback text, no local values
        renderer if json else _as_bytes(renderer),
    ]
    structlog.configure(
        processors=chain,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    _json_chain = list(chain) if json and numeric <= logging.INFO else None
    handler = _BufferHandler(buffer)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer() if json else renderer,
            ],
            foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our own request line replaces uvicorn's access log (it adds the route template and
    # the request id). uvicorn writes one whenever the logger has a handler, its parents'
    # included, so this one must have none.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False


def _as_bytes(renderer: Any) -> Any:
    def render(logger: Any, name: str, event: Any) -> bytes:
        return str(renderer(logger, name, event)).encode()

    return render
