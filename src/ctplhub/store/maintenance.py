"""Planner statistics after bulk loads (``services.ports.PlannerStatistics``).

A database filled by ``ctplhub import`` must answer well the moment it is served. On
PostgreSQL a table that was never analysed gets plans made for the wrong sizes: 100,000
events loaded into a new database then answered 250 coverage queries a second instead
of thousands, until someone ran ``ANALYZE``. So a bulk load refreshes the statistics of
the tables it wrote to when they have none, or when the table has at least doubled since
they were taken: the plans that matter here are lookups by key, which change with the
order of magnitude of a table, not with every tenth more rows (autovacuum refreshes at a
tenth in the background, with the server's own settings). A series of imports of similar
size so pays for few refreshes: in the ingest benchmark, two of five.

The refresh is a small sample: on PostgreSQL a statistics target of 10 (3,000 rows
instead of 30,000), 0.2 s instead of 0.6-8 s for a million events; on SQLite ``ANALYZE``
with an analysis limit (milliseconds at a million rows), then ``PRAGMA optimize``.

The vehicle register's feed does the same for ``register_lines`` after a large feed
(``REGISTER_TABLES``), and so does the daily match before it counts: the match's plan
reads the whole register, and a register fed in 100,000-line batches had been planned
as 422,298 rows at 1,010,891 (docs/PERFORMANCE.md, issue 12).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

INGEST_TABLES = ("policy_events", "policies")
REGISTER_TABLES = ("register_lines",)
_PG_STATISTICS_TARGET = 10
_SQLITE_ANALYSIS_LIMIT = 1_000

# Per table: (its size when last analysed, or None when never; its size now).
Sizes = dict[str, tuple[float | None, float]]


class SqlPlannerStatistics:
    def __init__(self, engine: Engine, tables: tuple[str, ...] = INGEST_TABLES) -> None:
        self._engine = engine
        self._tables = tables  # our own constants, never input: they go into the SQL

    def refresh(self, written: int) -> list[str]:
        """After a load that added ``written`` rows: refresh the statistics of the
        tables that have none or have doubled since; returns the tables analysed."""
        if written <= 0:
            return []
        with self._engine.connect() as conn:
            postgres = conn.dialect.name == "postgresql"
            sizes = (
                _postgres_sizes(conn, self._tables)
                if postgres
                else _sqlite_sizes(conn, self._tables)
            )
            stale = [
                table
                for table in self._tables
                if (known := sizes.get(table, (None, 0.0)))[0] is None
                or known[1] >= 2 * max(known[0] or 0.0, 1.0)
            ]
            if stale and postgres:
                conn.execute(text(f"SET LOCAL default_statistics_target = {_PG_STATISTICS_TARGET}"))
            elif stale:
                conn.execute(text(f"PRAGMA analysis_limit = {_SQLITE_ANALYSIS_LIMIT}"))
            for table in stale:  # names from our own constant, never from input
                conn.execute(text(f"ANALYZE {table}"))
            if stale and not postgres:
                conn.execute(text("PRAGMA optimize"))
            conn.commit()
        return stale


def _postgres_sizes(conn: Connection, tables: tuple[str, ...]) -> Sizes:
    """Measured in pages, as the planner itself scales its row counts: the table's pages
    when it was last analysed (``relpages``; never, when ``reltuples`` is -1) and its
    pages now, from the size of its file, so that rows other sessions wrote just now
    count too (the statistics system learns of them only seconds later)."""
    rows = conn.execute(
        text(
            "SELECT relname, reltuples, relpages, "
            "pg_relation_size(oid) / current_setting('block_size')::int FROM pg_class "
            "WHERE relname = ANY(:names) AND relkind = 'r'"
        ),
        {"names": list(tables)},
    ).all()
    return {
        name: (None if tuples < 0 else float(pages), float(now))
        for name, tuples, pages, now in rows
    }


def _sqlite_sizes(conn: Connection, tables: tuple[str, ...]) -> Sizes:
    """The count as of the last ANALYZE is the first number of ``sqlite_stat1``; the live
    count is counted (tens of milliseconds at a million rows)."""
    known: dict[str, float] = {}
    if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first():
        for table, stat in conn.execute(text("SELECT tbl, stat FROM sqlite_stat1")).all():
            if table in tables and stat:
                known[table] = max(known.get(table, 0.0), float(str(stat).split()[0]))
    sizes: Sizes = {}
    for table in tables:
        live = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        sizes[table] = (known.get(table), float(live))
    return sizes
