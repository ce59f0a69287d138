"""What the repositories share: statements built once per dialect, the "is one of these
values" clause, and chunking of long value lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, any_, bindparam
from sqlalchemy.dialects import postgresql

# Bound parameters per statement stay well under SQLite's limit of 32,766.
_IN_CHUNK = 500
_ANY_CHUNK = 1_000  # small enough that PostgreSQL keeps to index lookups at 10M rows

Member = Callable[[Any], Any]
_STATEMENTS: dict[tuple[str, str], Any] = {}


def statement(conn: Connection, name: str, build: Callable[[Member], Any]) -> Any:
    """A statement built once per dialect and reused: building SQLAlchemy constructs costs
    more than running the hot queries themselves.

    ``build`` receives ``member(column)``, the clause "column is one of :values": on
    PostgreSQL ``= ANY(:values)``, one array parameter, so the driver neither renders nor
    parses hundreds of placeholders per statement; elsewhere an expanding ``IN``.
    """
    key = (name, conn.dialect.name)
    built = _STATEMENTS.get(key)
    if built is None:
        member = _any_member if conn.dialect.name == "postgresql" else _in_member
        built = _STATEMENTS[key] = build(member)
    return built


def _any_member(column: Any) -> Any:
    return column == any_(bindparam("values", type_=postgresql.ARRAY(column.type)))


def _in_member(column: Any) -> Any:
    return column.in_(bindparam("values", expanding=True))


def chunks(conn: Connection, items: Sequence[Any]) -> list[Sequence[Any]]:
    size = _ANY_CHUNK if conn.dialect.name == "postgresql" else _IN_CHUNK
    return [items[i : i + size] for i in range(0, len(items), size)]


def by_insurer(keys: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    """Policy numbers grouped by insurer, each once, in first-seen order."""
    grouped: dict[str, dict[Any, None]] = {}
    for insurer_code, policy_no in keys:
        grouped.setdefault(insurer_code, {})[policy_no] = None
    return {code: list(nos) for code, nos in grouped.items()}
