"""Retry schedule of DESIGN §7: 1 min, 5 min, 30 min, 2 h, ... plus jitter, then dead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ctplhub.notify.backoff import JITTER, STEPS_S, BackOff
from notify_fixtures import DAYTIME


def test_steps_with_jitter_that_only_adds() -> None:
    backoff = BackOff(max_attempts=20)
    for _ in range(200):
        for attempt, step in enumerate((*STEPS_S, STEPS_S[-1], STEPS_S[-1]), start=1):
            delay = backoff.delay(attempt)
            assert delay is not None
            assert timedelta(seconds=step) <= delay <= timedelta(seconds=step * (1 + JITTER))


def test_the_first_steps_are_the_designs() -> None:
    assert STEPS_S[:4] == (60, 300, 1_800, 7_200)


def test_jitter_spreads_retries() -> None:
    backoff = BackOff()
    assert len({backoff.delay(1) for _ in range(50)}) > 40


def test_dead_after_the_last_try() -> None:
    backoff = BackOff(max_attempts=3)
    assert backoff.next_attempt_at(1, DAYTIME) is not None
    assert backoff.next_attempt_at(2, DAYTIME) is not None
    assert backoff.next_attempt_at(3, DAYTIME) is None
    assert backoff.next_attempt_at(9, DAYTIME) is None


def test_on_the_runs_clock() -> None:
    retry_at = BackOff(jitter=0).next_attempt_at(2, DAYTIME)
    assert retry_at == DAYTIME + timedelta(minutes=5)


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"steps_s": ()}, {"jitter": 2.0}])
def test_refuses_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BackOff(**bad)  # type: ignore[arg-type]
