"""What live confirmation tells operators (DESIGN §10, issue 10): one log line per
verify and insurer asked, and Prometheus series in the API process's ``/metrics``.

- ``ctplhub_live_confirm_calls_total{insurer, result}``: every call, by outcome
  (``covered``, ``not_covered``, ``timeout``, ``unreachable``, ``http_<status>``,
  ``bad_answer``, ``circuit_open``, ``verify_budget_spent`` …), sent or not;
- ``ctplhub_live_confirm_seconds{insurer}``: how long the calls that were sent took;
- ``ctplhub_live_confirm_breaker_open{insurer}``: 1 while this process's breaker for the
  insurer is open.

A log line names the insurer, how many calls ended how, and the slowest call's
milliseconds; never the plate, the VIN or the instant that was asked about (DESIGN §5.3:
personal data never in logs). A breaker that opens is logged as a warning: the insurer
keeps failing, and a regulator may want to call it.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from prometheus_client import Counter, Gauge, Histogram

CALLS = Counter(
    "ctplhub_live_confirm_calls",
    "Live confirmation calls to insurers' endpoints, by outcome",
    ["insurer", "result"],
)
SECONDS = Histogram(
    "ctplhub_live_confirm_seconds",
    "Duration of live confirmation calls that were sent",
    ["insurer"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0),
)
BREAKER_OPEN = Gauge(
    "ctplhub_live_confirm_breaker_open",
    "1 while this process's circuit breaker for the insurer is open",
    ["insurer"],
)

_log = structlog.get_logger("ctplhub.live_confirm")


class ConfirmMetrics:
    """``services.live_confirmation.ConfirmObserver`` for the running server."""

    def call_finished(self, insurer_code: str, result: str, seconds: float | None) -> None:
        CALLS.labels(insurer_code, result).inc()
        if seconds is not None:
            SECONDS.labels(insurer_code).observe(seconds)

    def verify_finished(
        self, insurer_code: str, results: Mapping[str, int], slowest_s: float | None
    ) -> None:
        _log.info(
            "live_confirm",
            insurer=insurer_code,
            calls=sum(results.values()),
            results=dict(results),
            slowest_ms=None if slowest_s is None else round(slowest_s * 1000, 1),
        )

    def breaker_changed(self, insurer_code: str, state: str) -> None:
        BREAKER_OPEN.labels(insurer_code).set(1 if state == "open" else 0)
        if state == "open":
            _log.warning("live_confirm_breaker_open", insurer=insurer_code)
        else:
            _log.info("live_confirm_breaker_closed", insurer=insurer_code)
