"""Response schemas of the regulators' statistics (DESIGN §11; docs/DECISIONS.md,
"Statistics for regulators"): each answer is ``{"rows": [...]}`` with the period or
grouping it covers, the instant it was computed at (``as_of``), and ``stale`` when
events were still waiting to be counted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ctplhub.api.schemas import _Answer


class RenewalRowBody(_Answer):
    key: str = Field(examples=["PICC"])
    due: int
    renewed_on_time: int
    renewed_late: int
    lapsed: int
    renewal_rate: float | None = Field(ge=0, le=1)


class RenewalsAnswer(_Answer):
    group_by: Literal["insurer", "region", "month"]
    from_: str = Field(alias="from", examples=["2026-01-01"])
    to: str = Field(examples=["2026-11-30"])
    as_of: str
    stale: bool
    rows: list[RenewalRowBody]


class ExpiringRowBody(_Answer):
    date: str = Field(examples=["2026-12-03"])
    count: int


class ExpiringAnswer(_Answer):
    from_: str = Field(alias="from")
    to: str
    as_of: str
    stale: bool
    rows: list[ExpiringRowBody]


class LapseRowBody(_Answer):
    key: str = Field(examples=["320500"])
    vehicles_lapsed: int
    median_days_lapsed: float | None


class LapsesAnswer(_Answer):
    group_by: Literal["insurer", "region"]
    as_of: str
    stale: bool
    rows: list[LapseRowBody]
