"""Use case: the traffic-management system (车管所) feeds the vehicle register (DESIGN §11
"Register feed"), NDJSON or CSV, up to 100,000 lines, with a result per line.

The lines come one at a time from the body's reader (``services/event_lines.py``, shared
with the insurers' batches) and are stored a chunk at a time, each chunk in one
transaction: memory stays bounded by a chunk, and a line is stored whole or not at all.
Lines are history: an older ``as_of`` is stored, not refused. A repeated line is a
``duplicate``; the same VIN and ``as_of`` with other content is ``rejected`` with
``conflict`` (within one body too: the first of two lines under one key wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ctplhub.domain.errors import Conflict, DomainError
from ctplhub.domain.instants import format_instant
from ctplhub.domain.register import RegisterLine, parse_register_line
from ctplhub.services.ports import Clock, PlannerStatistics, RetryableConflict, chunked
from ctplhub.services.register_ports import RegisterKey, VehicleRegister
from ctplhub.services.report_events import LineStatus, RawLine

CHUNK_SIZE = 1000
_RETRIES = 3
LARGE_FEED = 10_000
"""A feed that adds this many lines refreshes the register's planner statistics when
they are stale (as a large batch of events does for the policies)."""


@dataclass(frozen=True, slots=True)
class RegisterLineResult:
    line: int
    status: LineStatus
    error: DomainError | None = None


def _conflict(line: RegisterLine) -> Conflict:
    return Conflict(
        f"the register already holds another line for this VIN as of {format_instant(line.as_of)}",
        details={"fields": ["vin", "as_of"]},
    )


class RegisterFeed:
    def __init__(
        self,
        register: VehicleRegister,
        clock: Clock,
        statistics: PlannerStatistics | None = None,
    ) -> None:
        self._register = register
        self._clock = clock
        self._statistics = statistics

    def refresh_statistics(self, accepted: int) -> list[str]:
        """After a feed that stored ``accepted`` lines: when that is a large feed, refresh
        the register's planner statistics if the feed made them stale (none yet, or the
        table doubled since); the tables analysed."""
        if self._statistics is None or accepted < LARGE_FEED:
            return []
        return self._statistics.refresh(accepted)

    def feed(self, lines: Iterable[RawLine]) -> Iterator[RegisterLineResult]:
        """Results in line order; memory is bounded by one chunk."""
        for chunk in chunked(lines, CHUNK_SIZE):
            yield from self._chunk(chunk)

    def _chunk(self, chunk: list[RawLine]) -> list[RegisterLineResult]:
        parsed = [(number, _parse(raw)) for number, raw in chunk]
        for attempt in range(_RETRIES):
            try:
                return self._store(parsed)
            except RetryableConflict:
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _store(
        self, parsed: list[tuple[int, RegisterLine | DomainError]]
    ) -> list[RegisterLineResult]:
        first: dict[RegisterKey, RegisterLine] = {}
        for _, item in parsed:
            if isinstance(item, RegisterLine):
                first.setdefault((item.vin, item.as_of), item)
        held = self._register.add_new(list(first.values()), self._clock())
        results: list[RegisterLineResult] = []
        seen: set[RegisterKey] = set()
        for number, item in parsed:
            if isinstance(item, DomainError):
                results.append(RegisterLineResult(number, LineStatus.REJECTED, item))
                continue
            key = (item.vin, item.as_of)
            stored_hash = held.get(key)
            if stored_hash is None and key not in seen and first[key] is item:
                seen.add(key)
                results.append(RegisterLineResult(number, LineStatus.ACCEPTED))
                continue
            original = stored_hash if stored_hash is not None else first[key].content_hash
            if original == item.content_hash:
                results.append(RegisterLineResult(number, LineStatus.DUPLICATE))
            else:
                results.append(RegisterLineResult(number, LineStatus.REJECTED, _conflict(item)))
        return results


def _parse(raw: Mapping[str, Any] | DomainError) -> RegisterLine | DomainError:
    if isinstance(raw, DomainError):
        return raw
    try:
        return parse_register_line(raw)
    except DomainError as error:
        return error
