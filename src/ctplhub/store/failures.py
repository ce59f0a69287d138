"""Which database errors mean "the storage is unavailable for now" rather than a bug.

A full disk, a database restarting or unreachable, an SQLite file locked past its busy
timeout: the request did nothing wrong, nothing was stored half-done (the transaction
rolled back), and the same request will succeed once the storage is back. The API
answers those ``503 storage_unavailable`` with ``Retry-After`` (``api/errors.py``),
so that an insurer's client retries instead of filing a bug; anything else stays a
``500 internal_error``.

Judged by the drivers' own codes, never by message text: SQLite's primary result code
(``sqlite_errorcode & 0xff``) and PostgreSQL's SQLSTATE class. A psycopg
``OperationalError`` with no SQLSTATE is a connection that failed or broke.

SQLAlchemy's own verdict counts too: an error on a connection its dialect judged lost
(``connection_invalidated``: psycopg found the connection closed or broken). Through
PgBouncer, a server that went away mid-session can surface as a psycopg
``InternalError`` with no SQLSTATE ("received 2 results from command 'BEGIN'": the
pooler's error and the closed socket), on a connection that is broken afterwards.

Redis, where a deployment keeps the nonces and the read fence (DESIGN §4), counts as
storage too: unreachable or not answering in time (redis-py's ``ConnectionError`` and
``TimeoutError``), a signed write is refused ``503`` rather than accepted without its
nonce remembered (replay protection never fails open), and a write whose fence could
not be published is answered ``503`` after its commit (the retry is an idempotent repeat).
"""

from __future__ import annotations

import sqlite3

import psycopg
import redis

# SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
_SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 10, 13, 14})
# connection exception, insufficient resources (disk full, out of memory, too many
# connections), operator intervention (shutdown, starting up), system error (I/O)
_SQLSTATE_CLASSES_UNAVAILABLE = frozenset({"08", "53", "57", "58"})


def storage_unavailable(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the storage is down or
    full for now (SQLAlchemy keeps the driver's error as ``__cause__`` and ``.orig``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _driver_says_unavailable(current) or getattr(current, "connection_invalidated", False):
            return True
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and _driver_says_unavailable(orig):
            return True
        current = current.__cause__ or current.__context__
    return False


def _driver_says_unavailable(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_UNAVAILABLE
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return True
    if isinstance(error, psycopg.Error):
        state = error.sqlstate
        if state is None:
            return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
        return state[:2] in _SQLSTATE_CLASSES_UNAVAILABLE
    return False
