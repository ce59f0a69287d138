"""The vehicle register's rows (DESIGN §11; migration 0015): the feed's chunks written,
a region's vehicles listed in VIN order, an insurer's policies in force.

Orders are byte orders on both engines: ``register_lines``' VIN and region columns carry
the "C" collation on PostgreSQL (SQLite's default ``BINARY`` already is one), and policy
numbers are ordered with ``COLLATE "C"`` as the reconciliation's book is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    String,
    bindparam,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import IntegrityError

from ctplhub.domain.policy import EventType
from ctplhub.domain.register import RegisterLine, RegisterStatus
from ctplhub.services.ports import RetryableConflict
from ctplhub.services.register_ports import InForcePolicy, RegisterKey
from ctplhub.store.tables import insurers, policies, policy_events, register_lines

_READ_CHUNK = 1000  # VINs per IN list: far below SQLite's 32,766 host parameters
# Region codes merged per page at most (SQLite allows 500 arms in a compound select; a
# province holds about 100-200 county codes, the country about 3,000).
_MAX_MERGED = 400


# The distinct region codes in [low, high): one index probe per code (a loose index scan,
# as a recursive query), not a scan of the region's lines.
_REGION_CODES = text(
    """
    WITH RECURSIVE codes (code) AS (
        SELECT min(region_code) FROM register_lines
        WHERE region_code >= :low AND region_code < :high
      UNION ALL
        SELECT (SELECT min(region_code) FROM register_lines
                WHERE region_code > codes.code AND region_code < :high)
        FROM codes WHERE codes.code IS NOT NULL
    )
    SELECT code FROM codes WHERE code IS NOT NULL
    """
)


def _region_codes(conn: Connection, low: str, high: str) -> list[str]:
    return list(conn.execute(_REGION_CODES, {"low": low, "high": high}).scalars())


def _prefix_range(prefix: str) -> tuple[str, str] | None:
    """``[prefix, next)`` in byte order: every code that starts with ``prefix``."""
    if not prefix:
        return None
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _line(row: Sequence[object]) -> RegisterLine:
    vin, plate, vehicle_type, region_code, status, as_of = row
    assert isinstance(as_of, datetime)
    return RegisterLine(
        str(vin),
        str(plate),
        str(vehicle_type),
        str(region_code),
        RegisterStatus(str(status)),
        as_of,
    )


class SqlVehicleRegister:
    """Implements ``services.register_ports.VehicleRegister`` on both engines."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_new(
        self, lines: Sequence[RegisterLine], received_at: datetime
    ) -> dict[RegisterKey, str]:
        if not lines:
            return {}
        c = register_lines.c
        vins = sorted({line.vin for line in lines})
        try:
            with self._engine.begin() as conn:
                held: dict[RegisterKey, str] = {}
                for start in range(0, len(vins), _READ_CHUNK):
                    query = select(c.vin, c.as_of, c.content_hash).where(
                        c.vin.in_(vins[start : start + _READ_CHUNK])
                    )
                    for vin, as_of, content_hash in conn.execute(query):
                        held[(vin, as_of)] = content_hash
                wanted = {(line.vin, line.as_of) for line in lines}
                held = {key: value for key, value in held.items() if key in wanted}
                new = [
                    {
                        "vin": line.vin,
                        "as_of": line.as_of,
                        "plate": line.plate,
                        "vehicle_type": line.vehicle_type,
                        "region_code": line.region_code,
                        "status": line.status.value,
                        "content_hash": line.content_hash,
                        "received_at": received_at,
                    }
                    for line in lines
                    if (line.vin, line.as_of) not in held
                ]
                if new:
                    conn.execute(insert(register_lines), new)
        except IntegrityError as error:
            raise RetryableConflict("a concurrent feed stored one of these lines") from error
        return held

    def candidates(self, prefix: str, after: str | None, limit: int) -> list[str]:
        """Distinct VINs in order; fewer than ``limit`` only when there are no more."""
        found: list[str] = []
        with self._engine.connect() as conn:
            query = self._candidate_query(conn, prefix)
            while len(found) < limit:
                rows = list(conn.execute(query, {"after": after or "", "n": limit}).scalars())
                for vin in rows:  # a VIN with several lines comes more than once
                    if not found or vin != found[-1]:
                        found.append(vin)
                if len(rows) < limit:
                    break
                after = rows[-1]
        return found[:limit]

    def _candidate_query(self, conn: Connection, prefix: str) -> Select[str]:
        """The next VINs after ``:after`` under ``prefix``, in order (with repeats), at most
        ``:n``, reading about ``:n`` index entries whatever the region's size:

        - the whole country: the unique key (vin, as_of) in order;
        - one region code: ``ix_register_region_vin`` at that code, in VIN order;
        - a prefix: the region codes under it (a loose index scan, one probe per code),
          then one ordered index range per code, merged (a ``UNION ALL`` of them under
          one ``ORDER BY … LIMIT``: PostgreSQL's Merge Append, SQLite's merge of a
          compound select), which stops once ``:n`` rows are out. Past ``_MAX_MERGED``
          codes, one range over the prefix, sorted (docs/DECISIONS.md)."""
        c = register_lines.c
        after = bindparam("after", type_=String())
        span = _prefix_range(prefix)
        if span is None:
            arms = [select(c.vin).where(c.vin > after)]
        elif len(prefix) == 6:
            arms = [select(c.vin).where(c.region_code == prefix, c.vin > after)]
        else:
            codes = _region_codes(conn, *span)
            if len(codes) > _MAX_MERGED:
                arms = [
                    select(c.vin).where(
                        c.region_code >= span[0], c.region_code < span[1], c.vin > after
                    )
                ]
            else:
                arms = [select(c.vin).where(c.region_code == code, c.vin > after) for code in codes]
        n = bindparam("n", type_=Integer())
        if not arms:
            arms = [select(c.vin).where(literal(False))]
        if len(arms) == 1:
            return arms[0].order_by(c.vin).limit(n)
        # Each arm ordered and limited itself: PostgreSQL then merges the arms' index
        # scans (Merge Append) and reads about ``:n`` entries; with bare arms it chose a
        # parallel scan of the whole prefix and a sort (1.4 ms against 1 s, 200,000 lines
        # over 60 codes, docs/DECISIONS.md).
        limited = [arm.order_by(c.vin).limit(n).subquery() for arm in arms]
        merged = union_all(*(select(sub.c.vin) for sub in limited)).subquery()
        return select(merged.c.vin).order_by(merged.c.vin).limit(n)

    def lines_of(self, vins: Sequence[str]) -> dict[str, list[RegisterLine]]:
        c = register_lines.c
        found: dict[str, list[RegisterLine]] = {}
        ordered = sorted(set(vins))
        with self._engine.connect() as conn:
            for start in range(0, len(ordered), _READ_CHUNK):
                query = select(
                    c.vin, c.plate, c.vehicle_type, c.region_code, c.status, c.as_of
                ).where(c.vin.in_(ordered[start : start + _READ_CHUNK]))
                for row in conn.execute(query):
                    line = _line(tuple(row))
                    found.setdefault(line.vin, []).append(line)
        return found

    def in_force(
        self, insurer_code: str, at: datetime, chunk: int
    ) -> Iterator[list[InForcePolicy]]:
        """One ordered read, streamed ``chunk`` rows at a time: PostgreSQL sorts the
        insurer's policies in force once. (Keyset pages ``policy_no > :after ORDER BY
        policy_no COLLATE "C" LIMIT n`` cannot use the key's index, whose collation is
        the database's, and sorted the whole book again for every page.)"""
        p = policies.c
        number: ColumnElement[str] = p.policy_no
        if self._engine.dialect.name == "postgresql":
            number = number.collate("C")
        query = (
            select(p.policy_no, p.vin, policy_events.c.plate)
            .join(policy_events, policy_events.c.id == p.event_id)
            .where(
                p.insurer_code == insurer_code,
                p.event_type != EventType.CANCEL.value,
                p.coverage_start <= at,
                p.coverage_end > at,
                (p.effective_at.is_(None)) | (p.effective_at > at),
            )
            .order_by(number)
        )
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
            for rows in result.partitions(chunk):
                yield [InForcePolicy(no, vin, plate) for no, vin, plate in rows]

    def insurer_codes(self) -> list[str]:
        with self._engine.connect() as conn:
            return [code for (code,) in conn.execute(select(insurers.c.code).order_by("code"))]
