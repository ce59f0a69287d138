"""The ports of the vehicle register's use cases (DESIGN §11): the feed's writes, the
daily match's reads. ``store/repositories/register.py`` and
``store/repositories/match_counts.py`` implement them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ctplhub.domain.records import fast_init
from ctplhub.domain.register import RegisterLine

RegisterKey = tuple[str, datetime]
"""A register line's identity: (VIN, ``as_of`` in UTC)."""


@fast_init
@dataclass(frozen=True, slots=True)
class InForcePolicy:
    """An insurer's policy in force at an instant, with the plate its ruling event names."""

    policy_no: str
    vin: str
    plate: str


class VehicleRegister(Protocol):
    def add_new(
        self, lines: Sequence[RegisterLine], received_at: datetime
    ) -> dict[RegisterKey, str]:
        """In one transaction: the content hashes already stored under the keys of
        ``lines`` (keys distinct), and every line whose key was free stored. Raises
        ``RetryableConflict``, having stored nothing, when a concurrent feed took one of
        the keys meanwhile."""
        ...

    def candidates(self, prefix: str, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` VINs, in order and each once, after ``after``, that have a line
        whose ``region_code`` starts with ``prefix`` (a superset of those in the region
        at any instant: the caller checks the line that rules then)."""
        ...

    def lines_of(self, vins: Sequence[str]) -> dict[str, list[RegisterLine]]:
        """Every stored line of each of ``vins`` (absent: none)."""
        ...

    def in_force(
        self, insurer_code: str, at: datetime, chunk: int
    ) -> Iterator[list[InForcePolicy]]:
        """The insurer's policies whose ruling version covers ``at``, by ``policy_no``,
        ``chunk`` at a time, from one read (not one sorted query per chunk)."""
        ...

    def insurer_codes(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class MatchTotals:
    """The daily match's counts: registered vehicles not covered, by the region of their
    register line; each insurer's unmatched policies in force, by reason."""

    uninsured_by_region: dict[str, int]
    unmatched_by_insurer: dict[str, dict[str, int]]  # {"vin_not_registered", "plate_differs"}


class MatchCounts(Protocol):
    def count(self, at: datetime, prefix: str) -> MatchTotals:
        """The match at ``at`` counted set-wise (the uninsured under ``prefix``; every
        insurer, with zeros for one that has nothing unmatched): the same rules as the
        uninsured list (``services/match_counts.py``) and the unmatched list."""
        ...
