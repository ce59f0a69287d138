"""Freshness and caveats (DESIGN §2.6, §5.2).

A wrong "uninsured" is the worst answer this system can give, so whenever the answer is
bad news and some certified insurer has not synced recently, the answer says that a
renewal made there may not show yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.instants import format_optional
from ctplhub.domain.records import fast_init

BAD_NEWS = frozenset(
    {CoverageStatus.LAPSED, CoverageStatus.EXPIRING_SOON, CoverageStatus.NO_RECORD}
)


@fast_init
@dataclass(frozen=True, slots=True)
class InsurerInfo:
    code: str
    name: str
    status: str  # certified | suspended | revoked
    last_sync_at: datetime | None

    def is_stale(self, now: datetime, stale_after: timedelta) -> bool:
        return self.last_sync_at is None or now - self.last_sync_at > stale_after


@fast_init
@dataclass(frozen=True, slots=True)
class Source:
    """An insurer an answer draws on (or whose silence it must mention), and how fresh
    its data is."""

    insurer_code: str
    last_sync_at: datetime | None
    stale: bool


@fast_init
@dataclass(frozen=True, slots=True)
class Caveat:
    """Something a reader must know before trusting the answer: ``code`` for scripts
    (``stale_insurer``, ``insurer_revoked``, ``insurer_suspended``), ``message`` for people."""

    code: str
    insurer_code: str | None
    message: str


class Freshness:
    """Every insurer's freshness at one instant: what the answers computed at ``now`` say
    about their sources (DESIGN §2.6, §5.2). Built once per request, used per vehicle."""

    __slots__ = ("_insurers", "_stale", "_stale_caveats", "_stale_certified", "_unsound")

    def __init__(
        self, insurers: Mapping[str, InsurerInfo], now: datetime, stale_after: timedelta
    ) -> None:
        self._insurers = insurers
        self._stale = {code: info.is_stale(now, stale_after) for code, info in insurers.items()}
        self._stale_certified = frozenset(
            code
            for code, info in insurers.items()
            if info.status == "certified" and self._stale[code]
        )
        self._stale_caveats = tuple(
            _stale_caveat(code, insurers[code].last_sync_at)
            for code in sorted(self._stale_certified)
        )
        # Insurers whose certification is suspended or revoked: usually none.
        self._unsound = frozenset(
            code for code, info in insurers.items() if info.status in ("revoked", "suspended")
        )

    def name_of(self, code: str) -> str | None:
        info = self._insurers.get(code)
        return info.name if info else None

    def sources(self, reporting: Iterable[str]) -> tuple[Source, ...]:
        """Insurers that reported on the vehicle, plus every certified stale one."""
        sources = []
        for code in sorted(set(reporting) | self._stale_certified):
            info = self._insurers.get(code)
            if info is None:  # reported, then removed from the table: nothing vouches for it
                sources.append(Source(code, None, True))
            else:
                sources.append(Source(code, info.last_sync_at, self._stale[code]))
        return tuple(sources)

    def caveats(self, reporting: Iterable[str], status: CoverageStatus) -> tuple[Caveat, ...]:
        """Stale certified insurers when the news is bad (a renewal there may not show
        yet), and every reporting insurer whose certification is suspended or revoked."""
        if not self._unsound:  # nothing to say of any reporting insurer (the usual case)
            return self._stale_caveats if status in BAD_NEWS else ()
        caveats = list(self._stale_caveats) if status in BAD_NEWS else []
        for code in sorted(set(reporting)):
            info = self._insurers.get(code)
            if info is not None and info.status in ("revoked", "suspended"):
                message = (
                    f"this answer relies on policies of {code}, whose certification is "
                    f"{info.status}."
                )
                caveats.append(Caveat(f"insurer_{info.status}", code, message))
        return tuple(caveats)


def _stale_caveat(code: str, last_sync_at: datetime | None) -> Caveat:
    since = f"since {format_optional(last_sync_at)}" if last_sync_at else "yet"
    message = (
        f"{code} has not synced {since}; a renewal made there after its last sync may not show yet."
    )
    return Caveat("stale_insurer", code, message)
