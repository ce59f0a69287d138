"""The per-insurer circuit breaker of live confirmation (services/live_confirmation.py)."""

from __future__ import annotations

from ctplhub.services.live_confirmation import CircuitBreaker, check_url


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_then_lets_one_trial_through() -> None:
    ticks = Ticks()
    breaker = CircuitBreaker(failure_threshold=3, open_s=30, monotonic=ticks)
    for _ in range(2):
        assert breaker.allow("PICC")
        breaker.failure("PICC")
    breaker.success("PICC")  # a success resets the count
    for _ in range(3):
        assert breaker.allow("PICC")
        breaker.failure("PICC")
    assert breaker.state("PICC") == "open"
    assert not breaker.allow("PICC")
    assert breaker.allow("CPIC")  # per insurer
    ticks.now = 30.0
    assert breaker.state("PICC") == "half_open"
    assert breaker.allow("PICC")  # the one trial
    assert not breaker.allow("PICC")  # no second while it runs
    breaker.failure("PICC")  # the trial failed: open again at once
    assert breaker.state("PICC") == "open"
    ticks.now = 60.0
    assert breaker.allow("PICC")
    breaker.success("PICC")
    assert breaker.state("PICC") == "closed"
    assert breaker.allow("PICC") and breaker.allow("PICC")


def test_an_abandoned_trial_releases_the_half_open_state() -> None:
    ticks = Ticks()
    breaker = CircuitBreaker(failure_threshold=1, open_s=10, monotonic=ticks)
    breaker.failure("PICC")
    ticks.now = 10.0
    assert breaker.allow("PICC")
    breaker.abandon("PICC")
    assert breaker.allow("PICC")


def test_urls() -> None:
    assert check_url("https://a.example.cn:8443/x?y=1") == "https://a.example.cn:8443/x?y=1"
    assert check_url(None) is None


def test_urls_that_are_refused() -> None:
    import pytest

    from ctplhub.domain.errors import ValidationFailed

    for bad in (
        "",
        "ftp://x.cn/",
        "https://",
        "https://u:p@x.cn/",
        "https://x.cn/#f",
        7,
        "x" * 2001,
    ):
        with pytest.raises(ValidationFailed):
            check_url(bad)
