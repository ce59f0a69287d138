"""When a failed reminder is tried again (DESIGN §7): 1 min, 5 min, 30 min, 2 h, then
6 h, 12 h and 24 h, each plus up to 10 % jitter, and after the last try a dead letter.

The delays come from ``tenacity``'s wait strategies (``wait_chain`` of ``wait_fixed`` +
``wait_random``) and the give-up rule from its ``stop_after_attempt``, asked about one
try at a time: nothing here sleeps. The outbox stores the answer as ``next_attempt_at``
on the run's clock, so a retry two hours away survives restarts and is taken by whichever
worker is running then. Jitter only ever adds (a retry never comes before its step) and
spreads the retries of a receiver that failed for everyone at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_chain, wait_fixed
from tenacity import wait_random as wait_random_up_to

STEPS_S: tuple[int, ...] = (60, 300, 1_800, 7_200, 21_600, 43_200, 86_400)
"""The wait after the 1st, 2nd, ... failed try; the last step repeats."""
JITTER = 0.1
DEFAULT_MAX_ATTEMPTS = 8


class BackOff:
    """``next_attempt_at(attempts, at)``: the retry instant after try number ``attempts``
    failed at ``at``, or None when that was the last try (dead letter)."""

    def __init__(
        self,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        steps_s: tuple[float, ...] = STEPS_S,
        jitter: float = JITTER,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not steps_s or min(steps_s) <= 0 or not 0 <= jitter <= 1:
            raise ValueError("back-off steps must be positive and jitter within 0-1")
        self.max_attempts = max_attempts
        self._retrying = Retrying(
            wait=wait_chain(*(wait_fixed(s) + wait_random_up_to(0, s * jitter) for s in steps_s)),
            stop=stop_after_attempt(max_attempts),
        )

    def delay(self, attempts: int) -> timedelta | None:
        state = RetryCallState(self._retrying, fn=None, args=(), kwargs={})
        state.attempt_number = max(attempts, 1)
        if self._retrying.stop(state):
            return None
        return timedelta(seconds=self._retrying.wait(state))

    def next_attempt_at(self, attempts: int, at: datetime) -> datetime | None:
        delay = self.delay(attempts)
        return None if delay is None else at + delay
