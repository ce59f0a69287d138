"""The insurer table is re-read at most once per TTL, measured in real elapsed time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ctplhub.services.check_coverage import InsurerDirectory
from ctplhub.services.ports import InsurerRecord

T0 = datetime(2026, 11, 25, tzinfo=UTC)


class FakeInsurers:
    """An in-memory fake of the insurer repository port: counts reads."""

    def __init__(self) -> None:
        self.status = "certified"
        self.reads = 0

    def all(self) -> list[InsurerRecord]:
        self.reads += 1
        return [InsurerRecord("PICC", "人保", self.status, None, T0, T0)]


class FakeUow:
    def __init__(self) -> None:
        self.insurers = FakeInsurers()


def test_reads_once_per_ttl_and_sees_changes_after_it() -> None:
    elapsed = [0.0]
    directory = InsurerDirectory(1.0, monotonic=lambda: elapsed[0])
    uow: Any = FakeUow()
    assert directory.get(uow)["PICC"].status == "certified"
    uow.insurers.status = "revoked"
    elapsed[0] = 0.9
    assert directory.get(uow)["PICC"].status == "certified"  # within the TTL
    assert uow.insurers.reads == 1
    elapsed[0] = 1.0
    assert directory.get(uow)["PICC"].status == "revoked"
    assert uow.insurers.reads == 2


def test_zero_ttl_reads_every_time() -> None:
    directory = InsurerDirectory(0.0, monotonic=lambda: 5.0)
    uow: Any = FakeUow()
    for _ in range(3):
        directory.get(uow)
    assert uow.insurers.reads == 3
