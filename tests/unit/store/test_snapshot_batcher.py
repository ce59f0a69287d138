"""SnapshotBatcher: concurrent snapshot reads share round trips, and each question still
gets exactly its own snapshot. The read here is a function over an in-memory list of
claims with the SQL statement's semantics; the real statement is compared on both
databases in tests/integration/test_answer_readers.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType
from ctplhub.domain.vehicle import PlateClaim
from ctplhub.store.answer_readers import Snapshot, SnapshotBatcher

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PLATES = ["苏E12345", "苏E54321", "京A00001"]
VINS = ["VIN-A", "VIN-B", "VIN-C"]


def state(vin: str) -> PolicyState:
    return PolicyState("PICC", f"P-{vin}", 1, EventType.ISSUE, T0, T0 + timedelta(days=365))


class FakeRead:
    """``vehicle_snapshot_statement``: every vehicle that claimed one of the plates up to
    ``at``, with its claims up to ``at`` and its policy heads."""

    def __init__(self, claims: list[PlateClaim], *, fail: bool = False) -> None:
        self.claims = claims
        self.calls: list[list[str]] = []
        self.running = 0
        self.most_running = 0
        self.fail = fail

    async def __call__(self, plates: list[str], at: datetime) -> Snapshot:
        self.calls.append(plates)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(0)  # a round trip: others may queue meanwhile
            if self.fail:
                raise ConnectionError("database went away")
            return self.alone(plates, at)
        finally:
            self.running -= 1

    def alone(self, plates: list[str], at: datetime) -> Snapshot:
        vins = {c.vin for c in self.claims if c.plate in plates and c.occurred_at <= at}
        claims = [c for c in self.claims if c.vin in vins and c.occurred_at <= at]
        return claims, {vin: [state(vin)] for vin in sorted(vins)}


claims_strategy = st.lists(
    st.builds(
        PlateClaim,
        vin=st.sampled_from(VINS),
        plate=st.sampled_from(PLATES),
        occurred_at=st.integers(0, 20).map(lambda d: T0 + timedelta(days=d)),
        seq=st.integers(1, 10_000),
    ),
    max_size=12,
)
asks_strategy = st.lists(
    st.tuples(
        st.sampled_from([*PLATES, "沪B99999"]),
        st.integers(-1, 21).map(lambda d: T0 + timedelta(days=d)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(claims=claims_strategy, asks=asks_strategy, batch=st.integers(1, 16))
def test_each_question_gets_the_snapshot_a_read_of_its_own_gives(
    claims: list[PlateClaim], asks: list[tuple[str, datetime]], batch: int
) -> None:
    read = FakeRead(claims)
    batcher = SnapshotBatcher(read, max_in_flight=2, max_batch=batch)

    async def ask_all() -> list[Snapshot]:
        return list(await asyncio.gather(*(batcher.snapshot(p, at) for p, at in asks)))

    for (plate, at), (got_claims, got_states) in zip(asks, asyncio.run(ask_all()), strict=True):
        want_claims, want_states = read.alone([plate], at)
        assert sorted(got_claims, key=repr) == sorted(want_claims, key=repr)
        assert got_states == want_states
    assert all(len(plates) <= batch for plates in read.calls)
    assert read.most_running <= 2


def test_concurrent_questions_share_round_trips_and_lanes_are_bounded() -> None:
    read = FakeRead([PlateClaim("VIN-A", "苏E12345", T0, 1)])
    batcher = SnapshotBatcher(read, max_in_flight=2, max_batch=16)

    async def ask(n: int) -> list[Snapshot]:
        return list(await asyncio.gather(*(batcher.snapshot("苏E12345", T0) for _ in range(n))))

    answers = asyncio.run(ask(40))
    assert len(answers) == 40 and all(claims for claims, _ in answers)
    assert len(read.calls) == 3  # 16 + 16 at once, then the 8 that waited for a lane
    assert read.most_running == 2
    read.calls.clear()
    asyncio.run(ask(1))  # alone: a read of its own, at once
    assert read.calls == [["苏E12345"]]


def test_a_failed_read_fails_its_questions_and_the_next_ones_read_again() -> None:
    read = FakeRead([PlateClaim("VIN-A", "苏E12345", T0, 1)], fail=True)
    batcher = SnapshotBatcher(read, max_in_flight=1, max_batch=4)

    async def ask(n: int) -> list[Snapshot | BaseException]:
        return list(
            await asyncio.gather(
                *(batcher.snapshot("苏E12345", T0) for _ in range(n)), return_exceptions=True
            )
        )

    failed = asyncio.run(ask(6))
    assert all(isinstance(e, ConnectionError) for e in failed)
    read.fail = False
    assert all(not isinstance(a, BaseException) for a in asyncio.run(ask(6)))


def test_a_question_whose_client_went_away_does_not_disturb_the_others() -> None:
    read = FakeRead([PlateClaim("VIN-A", "苏E12345", T0, 1)])
    batcher = SnapshotBatcher(read, max_in_flight=1, max_batch=16)

    async def scenario() -> list[Snapshot]:
        leaving = asyncio.ensure_future(batcher.snapshot("苏E12345", T0))
        staying = [asyncio.ensure_future(batcher.snapshot("苏E12345", T0)) for _ in range(3)]
        await asyncio.sleep(0)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return list(await asyncio.gather(*staying))

    assert [len(claims) for claims, _ in asyncio.run(scenario())] == [1, 1, 1]
