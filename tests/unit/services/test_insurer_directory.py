"""The insurer table is re-read at most once per TTL, measured in real elapsed time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.services.insurer_directory import InsurerDirectory
from ctplhub.services.ports import InsurerRecord

T0 = datetime(2026, 11, 25, tzinfo=UTC)
DAY = timedelta(days=1)


class FakeReader:
    """An in-memory fake of the reader port's insurer read: counts reads."""

    def __init__(self) -> None:
        self.status = "certified"
        self.reads = 0

    async def insurers(self) -> list[InsurerRecord]:
        self.reads += 1
        return [InsurerRecord("PICC", "人保", self.status, None, T0, T0)]


def caveats_on_picc(directory: InsurerDirectory, reader: Any) -> list[str]:
    freshness = asyncio.run(directory.freshness(reader, T0))
    return [c.code for c in freshness.caveats({"PICC"}, CoverageStatus.ACTIVE)]


def test_reads_once_per_ttl_and_sees_changes_after_it() -> None:
    elapsed = [0.0]
    directory = InsurerDirectory(1.0, DAY, monotonic=lambda: elapsed[0])
    reader = FakeReader()
    assert caveats_on_picc(directory, reader) == []
    reader.status = "revoked"
    elapsed[0] = 0.9
    assert caveats_on_picc(directory, reader) == []  # within the TTL
    assert reader.reads == 1
    elapsed[0] = 1.0
    assert caveats_on_picc(directory, reader) == ["insurer_revoked"]
    assert reader.reads == 2


def test_zero_ttl_reads_every_time() -> None:
    directory = InsurerDirectory(0.0, DAY, monotonic=lambda: 5.0)
    reader = FakeReader()
    for _ in range(3):
        caveats_on_picc(directory, reader)
    assert reader.reads == 3
