"""The one read path of coverage answers, on both databases: the vehicle statement returns
complete histories, so questions read together (batched, chunked, or on a worker thread)
get exactly what questions read alone get, and plates resolve at the instant asked."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ctplhub.bootstrap import Container
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.domain.vehicle import VehicleSnapshot
from ctplhub.services.check_coverage import CoverageQuery, ShortAnswer
from ctplhub.services.ports import VehicleReader
from ctplhub.store.readers.postgres import PostgresVehicleReader, text_array
from ctplhub.store.readers.sqlite import SqliteVehicleReader
from ctplhub.store.readers.sqlite import _instant as sqlite_instant
from ctplhub.store.statements import read_statements, vehicle_histories
from helpers import VIN, VIN_B, Clock, event, run_reads

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
VIN_C = with_vin_check_digit("LGBH52E0" + "0" + "EY123456")
# 苏E12345 moves from VIN to VIN_B on 2025-06-01; VIN then carries 苏E54321. VIN_C's book
# was loaded on 2026-01-01 (its first event), with a policy from 2025.
EVENTS = [
    event(policy_no="P-A-2025"),
    event(
        policy_no="P-A-2026",
        plate="苏E54321",
        occurred_at="2025-06-01T09:00:00+08:00",
        coverage_start="2026-03-01T00:00:00+08:00",
        coverage_end="2027-03-01T00:00:00+08:00",
    ),
    event(
        policy_no="P-B-2025",
        vin=VIN_B,
        occurred_at="2025-06-01T10:00:00+08:00",
        coverage_start="2025-06-02T00:00:00+08:00",
        coverage_end="2026-06-02T00:00:00+08:00",
    ),
    event(
        policy_no="P-C-2025",
        vin=VIN_C,
        plate="苏A11111",
        occurred_at="2026-01-01T10:00:00+08:00",
        coverage_start="2025-07-01T00:00:00+08:00",
        coverage_end="2026-07-01T00:00:00+08:00",
    ),
]
BEFORE_ALL = datetime(2025, 1, 1, tzinfo=UTC)
BETWEEN = datetime(2025, 6, 1, 1, 30, tzinfo=UTC)  # between the two claims of that day
JULY = datetime(2025, 7, 1, tzinfo=UTC)
# (plate, at) -> the VIN it means then (None: no vehicle)
EXPECTED = {
    ("苏E12345", BEFORE_ALL): VIN,
    ("苏E12345", BETWEEN): None,  # VIN was re-plated at 09:00, VIN_B not yet at 10:00
    ("苏E12345", JULY): VIN_B,
    ("苏E12345", NOW): VIN_B,
    ("苏E54321", BEFORE_ALL): None,  # VIN's first event carried 苏E12345
    ("苏E54321", JULY): VIN,
    ("苏A11111", JULY): VIN_C,  # before its first event: the book loaded later
    ("苏A11111", NOW): VIN_C,
    ("苏Z00000", NOW): None,
}


@pytest.fixture
def loaded(container: Container, clock: Clock) -> Container:
    clock.now = NOW
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    results = list(container.report_events.report_many(enumerate(EVENTS, 1), insurer_code="PICC"))
    assert [r.status for r in results] == ["accepted"] * len(EVENTS)
    return container


def resolved(snapshot: VehicleSnapshot, plate: str, at: datetime) -> str | None:
    found = snapshot.at_plate(plate, at)
    return found.vin if found else None


def test_a_read_returns_whole_histories_and_resolves_at_the_instant(loaded: Container) -> None:
    async def read() -> VehicleSnapshot:
        return await loaded.reader.vehicles(["苏E12345"], [VIN_C])

    snapshot = run_reads(loaded, read)
    assert len(snapshot) == 3  # VIN and VIN_B carried the plate; VIN_C asked by VIN
    a = snapshot.by_vin(VIN)
    assert a is not None
    assert sorted(c.plate for c in a.claims) == ["苏E12345", "苏E54321"]
    assert sorted(p.policy_no for p in a.policies) == ["P-A-2025", "P-A-2026"]
    assert a.owner_index is not None and len(a.owner_index) == 32
    c = snapshot.by_vin(VIN_C)
    assert c is not None and [p.policy_no for p in c.policies] == ["P-C-2025"]
    for (plate, at), vin in EXPECTED.items():
        if plate == "苏E12345":
            assert resolved(snapshot, plate, at) == vin, (plate, at)


def _bulk_reader(container: Container) -> VehicleReader:
    """A second reader of the same database: on PostgreSQL one that reads in chunks of
    two plates."""
    url = container.settings.database_url
    if url.startswith("sqlite"):
        database = make_url(url).database
        assert database is not None
        return SqliteVehicleReader(database)
    return PostgresVehicleReader(url, batch=1, chunk=2)


def test_reads_together_chunked_or_alone_resolve_alike(loaded: Container) -> None:
    plates = sorted({plate for plate, _ in EXPECTED})
    unknown = [f"苏Z{n:05d}" for n in range(20)]  # a read over the batch size: a bulk read
    bulk = _bulk_reader(loaded)

    async def read() -> tuple[list[VehicleSnapshot], list[VehicleSnapshot], VehicleSnapshot]:
        await bulk.open()
        try:
            together = await asyncio.gather(*(loaded.reader.vehicles([p], []) for p in plates))
            alone = [await loaded.reader.vehicles([p], []) for p in plates]
            return list(together), alone, await bulk.vehicles(plates + unknown, [VIN, VIN_C])
        finally:
            await bulk.close()

    together, alone, chunked = run_reads(loaded, read)
    by_plate = dict(zip(plates, zip(together, alone, strict=True), strict=True))
    for (plate, at), vin in EXPECTED.items():
        one, two = by_plate[plate]
        assert resolved(one, plate, at) == resolved(two, plate, at) == vin, (plate, at)
        assert resolved(chunked, plate, at) == vin, (plate, at)
    assert len(chunked) == 3


def test_a_bulk_read_is_the_small_reads_histories_without_the_owner_index(
    loaded: Container,
) -> None:
    """A bulk read's chunks use the statement without the owners' index (only an owner's
    own question compares it): the same vehicles, claims and policies, ``owner_index``
    None; the owner's question still gets it."""
    plates = sorted({plate for plate, _ in EXPECTED})
    unknown = [f"苏Z{n:05d}" for n in range(20)]  # over the batch size: a bulk read

    async def read() -> tuple[list[VehicleSnapshot], VehicleSnapshot]:
        small = [await loaded.reader.vehicles([p], []) for p in plates]
        return small, await loaded.reader.vehicles(plates + unknown, [VIN_C])

    small, bulk = run_reads(loaded, read)
    histories = {v.vin: v for snapshot in small for v in snapshot._by_vin.values()}
    assert sorted(histories) == sorted([VIN, VIN_B, VIN_C])
    assert all(h.owner_index is not None for h in histories.values())
    for vin, history in histories.items():
        got = bulk.by_vin(vin)
        assert got is not None
        assert got.owner_index is None
        assert (got.claims, got.policies) == (history.claims, history.policies)


def test_answers_read_together_equal_answers_read_alone(loaded: Container) -> None:
    questions = [CoverageQuery(plate, None, None, at.isoformat()) for plate, at in EXPECTED]

    async def together() -> list[object]:
        return list(await asyncio.gather(*map(loaded.coverage.query, questions)))

    async def alone() -> list[object]:
        return [await loaded.coverage.query(q) for q in questions]

    first, second = run_reads(loaded, together), run_reads(loaded, alone)
    assert first == second
    classes = {
        ask: answer.status.status_class
        for ask, answer in zip(EXPECTED, first, strict=True)
        if isinstance(answer, ShortAnswer)
    }
    assert classes[("苏E12345", JULY)] == "COVERED"
    assert classes[("苏A11111", JULY)] == "COVERED"  # found before its first event
    assert classes[("苏E12345", BETWEEN)] == "NO_RECORD"
    assert classes[("苏Z00000", NOW)] == "NO_RECORD"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_reads_its_rows_as_one_json_text_without_changing_them(
    loaded: Container,
) -> None:
    """The SQLite reader takes the vehicle statement's rows as one JSON text (one GIL
    wait on its thread, not one per row): the histories must be exactly those of the
    rows read one by one (the owner index as bytes, the instants aware, nulls kept)."""
    database = make_url(loaded.settings.database_url).database
    assert database is not None
    reader = SqliteVehicleReader(database)
    plates, vins = ["苏E12345", "苏A11111", "苏Z00000"], [VIN_C]
    params = {"plates": json.dumps(plates), "vins": json.dumps(vins)}
    with sqlite3.connect(database) as conn:
        rows = conn.execute(read_statements("sqlite").vehicles, params).fetchall()
    expected = {h.vin: h for h in vehicle_histories(rows, sqlite_instant)}
    assert len(expected) == 3
    snapshot = reader.read(plates, vins)
    for vin, history in expected.items():
        assert snapshot.by_vin(vin) == history
    assert reader.read(["苏Z00000"], []).by_vin(VIN) is None  # an empty read: "[]"


def test_the_postgresql_array_text_reads_back_as_the_values_given(postgres_url: str) -> None:
    """The reader hands plates and VINs to PostgreSQL as an array's text form: whatever
    they hold (quotes, backslashes, commas, braces, blanks, the word NULL) reads back the
    same."""
    values = ["苏E12345", 'a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "", '\\"', 'x","y']
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        for given in (values, values[:1], [], ["plain", "only"]):
            row = conn.execute("SELECT %s::VARCHAR[]", (text_array(given),)).fetchone()
            assert row is not None and row[0] == given


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_owner_reads_run_on_threads_of_their_own_that_close_stops(
    loaded: Container,
) -> None:
    """An owner's question is read on the reader's own threads (not a shared pool that a
    bulk read's chunks could fill), with the plates given as a JSON array, quotes and
    all; closing the reader stops those threads, and a later read starts them again."""
    database = make_url(loaded.settings.database_url).database
    assert database is not None
    reader = SqliteVehicleReader(database)
    seen: list[str] = []
    read_json = reader.read_json

    def spy(plates: Sequence[str], vins: Sequence[str], owners: bool = True) -> str:
        seen.append(threading.current_thread().name)
        return read_json(plates, vins, owners)

    reader.read_json = spy  # type: ignore[method-assign]

    def ours() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("sqlite-read")]

    async def ask() -> VehicleSnapshot:
        snapshot = await reader.vehicles(["苏E12345", 'x"\\'], [])
        await reader.close()
        return snapshot

    for _ in range(2):
        snapshot = asyncio.run(ask())
        assert snapshot.at_plate("苏E12345", NOW) is not None
        assert seen.pop().startswith("sqlite-read")
        assert ours() == []
