"""The register's store (``store/repositories/register.py``) on both engines: the region's
VINs a page at a time equal a model (distinct, in byte order, any line in the prefix),
whatever the page size, with history lines and vehicles that moved between regions;
lines are read back as written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.domain.register import RegisterLine, RegisterStatus
from ctplhub.store.repositories.register import SqlVehicleRegister
from ctplhub.store.schema import make_engine

CODES = ["110101", "320505", "320506", "320511", "320582", "320600", "330106"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()  # else its pooled connections are garbage-collected open, in another test


def lines() -> list[RegisterLine]:
    made = []
    for n in range(40):
        vin = with_vin_check_digit(f"LSV{n:05d}0N2183294")
        code = CODES[n % len(CODES)]
        for k in range(n % 3 + 1):  # history: one to three lines a vehicle
            moved = CODES[(n + k) % len(CODES)] if n % 4 == 0 else code
            made.append(
                RegisterLine(
                    vin,
                    f"苏E{n:05d}",
                    "truck",
                    moved,
                    RegisterStatus.REGISTERED,
                    T0 + timedelta(days=k),
                )
            )
    return made


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_candidates_page_through_a_prefix_like_the_model(engine: Engine, limit: int) -> None:
    store = SqlVehicleRegister(engine)
    written = lines()
    assert store.add_new(written, T0) == {}
    for prefix in ("", "3", "32", "3205", "320505", "4"):
        model = sorted({x.vin for x in written if x.region_code.startswith(prefix)})
        got: list[str] = []
        after = None
        while True:
            page = store.candidates(prefix, after, limit)
            assert len(page) <= limit
            got += page
            if len(page) < limit:
                break
            after = page[-1]
        assert got == model, prefix
    engine.dispose()


def test_lines_are_read_back_and_a_second_write_reports_what_was_held(engine: Engine) -> None:
    store = SqlVehicleRegister(engine)
    written = lines()
    store.add_new(written[:10], T0)
    held = store.add_new(written[:12], T0)
    assert held == {(x.vin, x.as_of): x.content_hash for x in written[:10]}
    found = store.lines_of([x.vin for x in written[:12]])
    assert sorted(
        (x for xs in found.values() for x in xs), key=lambda x: (x.vin, x.as_of)
    ) == sorted(written[:12], key=lambda x: (x.vin, x.as_of))
    engine.dispose()
