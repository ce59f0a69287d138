"""An insurer's book as the platform holds it (DESIGN §10): each policy head's
``(policy_no, version)`` in byte order of ``policy_no``, streamed.

PostgreSQL orders text by the database's collation (e.g. ``en_US.UTF-8`` ignores case
and punctuation at first), so the order is asked for with ``COLLATE "C"``, which is byte
order for UTF-8. SQLite's default ``BINARY`` collation already is. The rows come through
a server-side cursor in chunks, so a million policies never sit in memory as rows.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, Engine, select

from ctplhub.store.tables import policies

_CHUNK = 20_000


class SqlPolicyBook:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def versions(self, insurer_code: str) -> Iterator[tuple[str, int]]:
        number: ColumnElement[str] = policies.c.policy_no
        if self._engine.dialect.name == "postgresql":
            number = number.collate("C")
        query = (
            select(policies.c.policy_no, policies.c.version)
            .where(policies.c.insurer_code == insurer_code)
            .order_by(number)
        )
        with self._engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=_CHUNK).execute(query)
            for policy_no, version in rows:  # noqa: UP028 - plain tuples, not Rows
                yield policy_no, version
