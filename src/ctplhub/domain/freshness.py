"""Freshness and caveats (DESIGN §2.6, §5.2).

A wrong "uninsured" is the worst answer this system can give, so whenever the answer is
bad news and some certified insurer has not synced recently, the answer says that a
renewal made there may not show yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.instants import format_optional

BAD_NEWS = frozenset(
    {CoverageStatus.LAPSED, CoverageStatus.EXPIRING_SOON, CoverageStatus.NO_RECORD}
)


@dataclass(frozen=True, slots=True)
class InsurerInfo:
    code: str
    name: str
    status: str  # certified | suspended | revoked
    last_sync_at: datetime | None

    def is_stale(self, now: datetime, stale_after: timedelta) -> bool:
        return self.last_sync_at is None or now - self.last_sync_at > stale_after


def sources_and_caveats(
    insurers: Mapping[str, InsurerInfo],
    reporting: Iterable[str],
    status: CoverageStatus,
    now: datetime,
    stale_after: timedelta,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``sources``: insurers that reported on the vehicle plus certified stale ones."""
    reporting = set(reporting)
    stale_certified = sorted(
        code
        for code, info in insurers.items()
        if info.status == "certified" and info.is_stale(now, stale_after)
    )
    sources = []
    for code in sorted(reporting | set(stale_certified)):
        info = insurers.get(code)
        sources.append(
            {
                "insurer_code": code,
                "last_sync_at": format_optional(info.last_sync_at) if info else None,
                "stale": info.is_stale(now, stale_after) if info else True,
            }
        )
    caveats: list[dict[str, Any]] = []
    if status in BAD_NEWS:
        for code in stale_certified:
            last = insurers[code].last_sync_at
            since = f"since {format_optional(last)}" if last else "yet"
            caveats.append(
                {
                    "code": "stale_insurer",
                    "insurer_code": code,
                    "message": f"{code} has not synced {since}; a renewal made there after "
                    "its last sync may not show yet.",
                }
            )
    for code in sorted(reporting):
        info = insurers.get(code)
        if info is not None and info.status in ("revoked", "suspended"):
            caveats.append(
                {
                    "code": f"insurer_{info.status}",
                    "insurer_code": code,
                    "message": f"this answer relies on policies of {code}, whose certification "
                    f"is {info.status}.",
                }
            )
    return sources, caveats
