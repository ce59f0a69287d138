"""Per-insurer gauges in ``/metrics`` (DESIGN §2.6, §10): watermark age, accepted and
rejected events (last 24 h and in total), and late events of the last 24 h.

Read from the database when scraped, at most once per ``_CACHE_S`` (several scrapers, or
a scrape every few seconds, cost one read), by a collector registered once per process;
the app built last supplies the reads (one app per serving process).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric

from ctplhub.services.sync_health import InsurerHealth

_CACHE_S = 15.0

_GAUGES = (
    ("ctplhub_insurer_watermark_age_seconds", "Seconds since the insurer's sync watermark"),
    ("ctplhub_insurer_stale", "1 when the insurer's data is stale (DESIGN §2.6)"),
    ("ctplhub_insurer_accepted_24h", "Events accepted from the insurer in the last 24 h"),
    ("ctplhub_insurer_rejected_24h", "Event lines rejected from the insurer in the last 24 h"),
    ("ctplhub_insurer_accepted_total", "Events accepted from the insurer since it was added"),
    ("ctplhub_insurer_rejected_total", "Event lines rejected from the insurer since added"),
    ("ctplhub_insurer_late_24h", "Events received in the last 24 h that were late (§10)"),
)


def _values(h: InsurerHealth) -> tuple[float, ...]:
    return (
        h.lag_s if h.lag_s is not None else float("nan"),
        1.0 if h.stale else 0.0,
        h.accepted_24h,
        h.rejected_24h,
        h.accepted_total,
        h.rejected_total,
        h.late_24h,
    )


class InsurerMetrics:
    def __init__(self) -> None:
        self._read: Callable[[], list[InsurerHealth]] | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, list[InsurerHealth]] = (0.0, [])

    def use(self, read: Callable[[], list[InsurerHealth]]) -> None:
        with self._lock:
            self._read, self._cached = read, (0.0, [])

    def forget(self, read: Callable[[], list[InsurerHealth]]) -> None:
        """Stop reading through ``read`` if it is the one in use: its app is closing, and
        a scrape must not open a connection on its disposed engine (one the garbage
        collector would find still open)."""
        with self._lock:
            if self._read == read:
                self._read, self._cached = None, (0.0, [])

    def _current(self) -> list[InsurerHealth]:
        with self._lock:
            read, (at, held) = self._read, self._cached
            if read is None:
                return []
            if time.monotonic() - at < _CACHE_S and at:
                return held
            try:
                fresh = read()
            except Exception:  # a scrape never fails because the database is away
                return held
            self._cached = (time.monotonic(), fresh)
            return fresh

    def collect(self) -> Iterator[Metric]:
        healths = self._current()
        families = [GaugeMetricFamily(name, text, labels=["insurer"]) for name, text in _GAUGES]
        for h in healths:
            for family, value in zip(families, _values(h), strict=True):
                family.add_metric([h.insurer_code], value)
        yield from families


INSURER_METRICS = InsurerMetrics()
REGISTRY.register(INSURER_METRICS)
