"""What the repositories share: the lookup of an insurer's policies by number, built once
per engine, and the grouping and chunking of the numbers looked up."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, String, Table, bindparam, func, literal_column, select, true
from sqlalchemy.dialects import postgresql

# Bound parameters per statement stay well under SQLite's limit of 32,766.
_IN_CHUNK = 500
_ANY_CHUNK = 1_000
_LOOKUPS: dict[tuple[str, str], Any] = {}


def policy_lookup(conn: Connection, table: Table, columns: Sequence[str], *, lock: bool) -> Any:
    """``SELECT columns FROM table WHERE insurer_code = :insurer_code AND policy_no IN
    :values`` (rows locked ``FOR UPDATE`` with ``lock``), built once per engine: building
    SQLAlchemy constructs costs more than running these lookups.

    On PostgreSQL the numbers are one array parameter, and each is looked up on its own
    (a lateral subquery, fenced with ``OFFSET 0`` so that the planner cannot turn it into
    a join): an index probe on both columns per number, whatever the statistics say. As
    a plain ``= ANY`` condition, statistics taken before an insurer's first load made
    the planner expect no rows of that insurer, scan all of them and filter by number,
    and every chunk of that load got slower than the last (an import of 150,000 events
    took 15 s instead of 10 s; docs/PERFORMANCE.md). SQLite gets an expanding ``IN``.
    """
    key = (f"{table.name}:{','.join(columns)}:{lock}", conn.dialect.name)
    built = _LOOKUPS.get(key)
    if built is None:
        build = _each_number if conn.dialect.name == "postgresql" else _in_list
        built = _LOOKUPS[key] = build(table, columns, lock)
    return built


def _in_list(table: Table, columns: Sequence[str], lock: bool) -> Any:
    t = table.c
    query = select(*(t[name] for name in columns)).where(
        t.insurer_code == bindparam("insurer_code"),
        t.policy_no.in_(bindparam("values", expanding=True)),
    )
    return query.with_for_update() if lock else query


def _each_number(table: Table, columns: Sequence[str], lock: bool) -> Any:
    t = table.c
    numbers = (
        func.unnest(bindparam("values", type_=postgresql.ARRAY(String)))
        .table_valued("policy_no")
        .render_derived(name="numbers")
    )
    one = (
        select(*(t[name] for name in columns))
        .where(t.insurer_code == bindparam("insurer_code"), t.policy_no == numbers.c.policy_no)
        .offset(literal_column("0"))
    )
    found = (one.with_for_update() if lock else one).lateral("found")
    return select(*(found.c[name] for name in columns)).select_from(numbers.join(found, true()))


def chunks(conn: Connection, items: Sequence[Any]) -> list[Sequence[Any]]:
    size = _ANY_CHUNK if conn.dialect.name == "postgresql" else _IN_CHUNK
    return [items[i : i + size] for i in range(0, len(items), size)]


def by_insurer(keys: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    """Policy numbers grouped by insurer, each once, in first-seen order."""
    grouped: dict[str, dict[Any, None]] = {}
    for insurer_code, policy_no in keys:
        grouped.setdefault(insurer_code, {})[policy_no] = None
    return {code: list(nos) for code, nos in grouped.items()}
