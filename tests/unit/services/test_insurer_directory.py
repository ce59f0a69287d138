"""The insurer table is re-read at most once per TTL, measured in real elapsed time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ctplhub.services.check_coverage import InsurerDirectory
from ctplhub.services.ports import InsurerRecord

T0 = datetime(2026, 11, 25, tzinfo=UTC)


class FakeReader:
    """An in-memory fake of the answer reader port's insurer read: counts reads."""

    def __init__(self) -> None:
        self.status = "certified"
        self.reads = 0

    async def insurers(self) -> list[InsurerRecord]:
        self.reads += 1
        return [InsurerRecord("PICC", "人保", self.status, None, T0, T0)]


def status_of_picc(directory: InsurerDirectory, reader: Any) -> str:
    return asyncio.run(directory.get(reader))["PICC"].status


def test_reads_once_per_ttl_and_sees_changes_after_it() -> None:
    elapsed = [0.0]
    directory = InsurerDirectory(1.0, monotonic=lambda: elapsed[0])
    reader = FakeReader()
    assert status_of_picc(directory, reader) == "certified"
    reader.status = "revoked"
    elapsed[0] = 0.9
    assert status_of_picc(directory, reader) == "certified"  # within the TTL
    assert reader.reads == 1
    elapsed[0] = 1.0
    assert status_of_picc(directory, reader) == "revoked"
    assert reader.reads == 2


def test_zero_ttl_reads_every_time() -> None:
    directory = InsurerDirectory(0.0, monotonic=lambda: 5.0)
    reader = FakeReader()
    for _ in range(3):
        status_of_picc(directory, reader)
    assert reader.reads == 3
