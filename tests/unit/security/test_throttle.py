"""The throttle of DESIGN §5.3 in this process's memory, on a hand-moved clock: the
budgets, the order of checks in ``guarded_lookup``, Retry-After, the settings grammar."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from ctplhub.config import Settings
from ctplhub.domain.errors import NotFound, RateLimited
from ctplhub.security.throttle import (
    FAILED_PER_CLIENT,
    FAILED_PER_PLATE,
    SIGN_IN_PER_ACCOUNT,
    UNVERIFIED_PER_CLIENT,
    RateLimitsInvalid,
    Throttle,
    client_bucket,
    guarded_lookup,
    parse_rate_limits,
)
from ctplhub.security.throttle_rules import DEFAULTS

SECRET = b"k" * 32
ANSWER = "the answer"


@dataclass
class FakeClock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def throttle(setting: str = "", clock: FakeClock | None = None) -> Throttle:
    return Throttle(parse_rate_limits(setting), SECRET, clock=clock or FakeClock())


async def right() -> str:
    return ANSWER


async def wrong() -> str:
    raise NotFound("no vehicle matches this plate and verification factor")


def ask(
    t: Throttle,
    attempt: Callable[[], Awaitable[str]],
    plate: str = "苏E12345",
    client: str = "10.0.0.1",
    *,
    verified: bool = True,
) -> str:
    """The outcome of one guarded look-up: the answer, or the error code."""
    try:
        return asyncio.run(guarded_lookup(t, client, plate, attempt, verified=verified))
    except (NotFound, RateLimited) as error:
        return error.code


# --- guessing a VIN tail -------------------------------------------------------------


def test_the_eleventh_wrong_tail_for_a_plate_is_refused_and_so_is_the_right_one() -> None:
    t = throttle()
    assert [ask(t, wrong) for _ in range(10)] == ["not_found"] * 10
    assert ask(t, wrong) == "rate_limited"
    assert ask(t, right) == "rate_limited"  # a right guess after the limit is no use
    assert ask(t, right, plate="苏E54321") == ANSWER  # another plate still answers


def test_the_plate_budget_is_shared_by_every_client_and_every_spelling() -> None:
    t = throttle()
    spellings = ["苏E12345", "苏E·12345", "苏e 12345", "苏Ｅ１２３４５"]
    for n in range(10):  # ten clients, each guessing once, in four spellings
        assert ask(t, wrong, spellings[n % 4], client=f"10.0.1.{n}") == "not_found"
    assert ask(t, right, client="10.0.9.9") == "rate_limited"


def test_guesses_sent_at_once_cannot_overtake_the_count() -> None:
    t = throttle()

    async def slow_wrong() -> str:
        await asyncio.sleep(0.01)  # the database read: every guess is under way at once
        raise NotFound("no vehicle matches this plate and verification factor")

    async def burst() -> list[str]:
        async def one(n: int) -> str:
            try:
                return await guarded_lookup(t, f"10.0.2.{n}", "苏E12345", slow_wrong, verified=True)
            except RateLimited as refused:
                return f"rate_limited after {refused.retry_after_s}"
            except NotFound as error:
                return error.code

        return await asyncio.gather(*(one(n) for n in range(50)))

    seen = asyncio.run(burst())
    assert seen.count("not_found") == 10  # answered: exactly the budget
    assert seen.count("rate_limited after 1") == 40  # "try again in a second"
    assert not t.plates_in_flight
    assert ask(t, right) == "rate_limited"  # and now the ten failures are counted


def test_a_client_that_fails_across_many_plates_is_refused_after_thirty() -> None:
    t = throttle()
    outcomes = [ask(t, wrong, f"苏E{n:05d}") for n in range(30)]
    assert outcomes == ["not_found"] * 30
    assert ask(t, right, "苏A99999") == "rate_limited"
    assert ask(t, right, "苏A99999", client="10.0.0.2") == ANSWER  # another client is not


def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    t = throttle()
    for n in range(30):  # a fresh address of one /64 for every guess
        assert ask(t, wrong, f"苏E{n:05d}", client=f"2001:db8:7:1::{n + 1:x}") == "not_found"
    assert ask(t, right, "苏A99999", client="2001:db8:7:1:ffff::1") == "rate_limited"
    assert ask(t, right, "苏A99999", client="2001:db8:7:2::1") == ANSWER
    assert client_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_bucket("192.0.2.1") == "192.0.2.1"


def test_right_answers_spend_nothing() -> None:
    t = throttle()
    assert all(ask(t, right) == ANSWER for _ in range(100))
    assert [ask(t, wrong) for _ in range(10)] == ["not_found"] * 10


def test_retry_after_counts_down_to_when_the_oldest_failure_leaves_the_window() -> None:
    clock = FakeClock()
    t = throttle(clock=clock)
    ask(t, wrong)  # the oldest failure, at t0
    clock.now += 1000
    for _ in range(9):
        ask(t, wrong)
    with pytest.raises(RateLimited) as refused:
        asyncio.run(guarded_lookup(t, "10.0.0.9", "苏E12345", right, verified=True))
    assert refused.value.retry_after_s == 3600 - 1000
    assert refused.value.details == {"retry_after_s": 2600}
    clock.now += 2600  # the oldest failure leaves the hour: one more guess, no more
    assert ask(t, right, client="10.0.0.9") == ANSWER
    assert ask(t, wrong, client="10.0.0.9") == "not_found"
    assert ask(t, right, client="10.0.0.9") == "rate_limited"


def test_an_invalid_plate_is_not_counted_against_a_plate() -> None:
    t = throttle("failed_per_client=100/hour")
    for _ in range(20):
        ask(t, wrong, plate="not a plate")
    assert ask(t, right) == ANSWER


# --- enumerating plates ----------------------------------------------------------------


def test_the_sixty_first_unverified_look_up_in_a_minute_is_refused() -> None:
    clock = FakeClock()
    t = throttle(clock=clock)
    outcomes = [ask(t, right, f"苏E{n:05d}", verified=False) for n in range(61)]
    assert outcomes == [ANSWER] * 60 + ["rate_limited"]
    assert ask(t, right, "苏E00000", client="10.0.0.2", verified=False) == ANSWER
    clock.now += 60
    assert ask(t, right, "苏E00000", verified=False) == ANSWER


def test_unverified_look_ups_do_not_spend_the_failure_budgets() -> None:
    t = throttle("unverified_per_client=1000/minute")
    for _ in range(100):
        ask(t, right, verified=False)
    assert ask(t, right) == ANSWER


# --- off, overrides, generic rules -----------------------------------------------------


def test_off_disables_every_budget() -> None:
    t = throttle("off")
    assert not t.enabled
    assert [ask(t, wrong) for _ in range(50)] == ["not_found"] * 50
    assert ask(t, right) == ANSWER
    assert all(ask(t, right, verified=False) == ANSWER for _ in range(100))


def test_an_override_changes_one_rule_and_keeps_the_others() -> None:
    t = throttle("failed_per_plate=3/hour")
    assert [ask(t, wrong) for _ in range(4)] == ["not_found"] * 3 + ["rate_limited"]
    outcomes = [ask(t, right, f"苏E{n:05d}", client="10.0.0.3", verified=False) for n in range(61)]
    assert outcomes[-2:] == [ANSWER, "rate_limited"]


def test_hit_and_check_for_sign_in() -> None:
    t = throttle("sign_in_per_account=2/hour")
    asyncio.run(t.check(SIGN_IN_PER_ACCOUNT, "officer-001"))
    asyncio.run(t.hit(SIGN_IN_PER_ACCOUNT, "officer-001"))
    asyncio.run(t.hit(SIGN_IN_PER_ACCOUNT, "officer-001"))
    with pytest.raises(RateLimited):
        asyncio.run(t.check(SIGN_IN_PER_ACCOUNT, "officer-001"))
    with pytest.raises(RateLimited):
        asyncio.run(t.hit(SIGN_IN_PER_ACCOUNT, "officer-001"))
    asyncio.run(t.check(SIGN_IN_PER_ACCOUNT, "officer-002"))


# --- the grammar of CTPLHUB_RATE_LIMITS -------------------------------------------------


def test_empty_means_every_default() -> None:
    limits = parse_rate_limits("")
    assert limits.enabled
    assert {name: str(item) for name, item in limits.items.items()} == {
        FAILED_PER_PLATE: "10 per 1 hour",
        FAILED_PER_CLIENT: "30 per 10 minute",
        UNVERIFIED_PER_CLIENT: "60 per 1 minute",
        "sign_in_per_client": "30 per 10 minute",
        SIGN_IN_PER_ACCOUNT: "10 per 1 hour",
    }
    assert set(limits.items) == set(DEFAULTS)


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_off_in_any_case(value: str) -> None:
    assert not parse_rate_limits(value).enabled


def test_overrides_in_the_library_grammar() -> None:
    limits = parse_rate_limits(
        " failed_per_plate = 20/hour, Unverified_Per_Client=120 per minute,"
        "failed_per_client=5/2 seconds, "
    )
    items = limits.items
    assert (items[FAILED_PER_PLATE].amount, items[FAILED_PER_PLATE].get_expiry()) == (20, 3600)
    assert (items[UNVERIFIED_PER_CLIENT].amount, items[UNVERIFIED_PER_CLIENT].get_expiry()) == (
        120,
        60,
    )
    assert (items[FAILED_PER_CLIENT].amount, items[FAILED_PER_CLIENT].get_expiry()) == (5, 2)
    assert str(items[SIGN_IN_PER_ACCOUNT]) == "10 per 1 hour"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("failed_per_plates=20/hour", "unknown rule 'failed_per_plates'"),
        ("failed_per_plate", "is not rule=limit"),
        ("failed_per_plate=", "is not rule=limit"),
        ("=20/hour", "is not rule=limit"),
        ("failed_per_plate=lots", "failed_per_plate='lots' is not one limit"),
        ("failed_per_plate=20/fortnight", "is not one limit"),
        ("failed_per_plate=0/hour", "is not one limit of at least 1"),
        ("failed_per_plate=10/hour;5/minute", "is not one limit"),
        ("failed_per_plate=10/hour,failed_per_plate=5/hour", "failed_per_plate is set twice"),
        ("disabled", "is not rule=limit"),
    ],
)
def test_a_bad_value_says_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(RateLimitsInvalid, match="CTPLHUB_RATE_LIMITS") as bad:
        parse_rate_limits(value)
    assert says in str(bad.value)


def test_settings_refuse_a_bad_value() -> None:
    with pytest.raises(ValidationError, match="unknown rule 'nonsense'"):
        Settings(rate_limits="nonsense=1/hour")
    assert Settings(rate_limits="off").rate_limits == "off"


# --- cost and what is stored -----------------------------------------------------------
