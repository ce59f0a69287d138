"""ReadBatcher: concurrent coverage reads share round trips, and every question still gets
the answer a read of its own gives. The read here is an in-memory function with the
semantics of the vehicle statement (complete histories of every vehicle that ever carried
a plate asked for or has a VIN asked for); the real statement is compared on both
databases in tests/integration/test_vehicle_readers.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctplhub.domain.vehicle import PlateClaim, VehicleHistory, VehicleSnapshot
from ctplhub.store.readers.batcher import ReadBatcher, _ramped

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PLATES = ["苏E12345", "苏E54321", "京A00001"]
VINS = ["VIN-A", "VIN-B", "VIN-C"]


class FakeRead:
    def __init__(self, claims: list[PlateClaim], *, fail: bool = False, turns: int = 1) -> None:
        self.claims = claims
        self.turns = turns
        self.calls: list[tuple[list[str], list[str]]] = []
        self.running = 0
        self.most_running = 0
        self.fail = fail

    async def __call__(self, plates: list[str], vins: list[str]) -> VehicleSnapshot:
        self.calls.append((plates, vins))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            for _ in range(self.turns):  # a round trip: others may queue meanwhile
                await asyncio.sleep(0)
            if self.fail:
                raise ConnectionError("database went away")
            return self.alone(plates, vins)
        finally:
            self.running -= 1

    def alone(self, plates: Sequence[str], vins: Sequence[str]) -> VehicleSnapshot:
        wanted = {c.vin for c in self.claims if c.plate in plates} | set(vins)
        histories = [
            VehicleHistory(vin, tuple(c for c in self.claims if c.vin == vin), (), None)
            for vin in sorted(wanted)
            if any(c.vin == vin for c in self.claims)
        ]
        return VehicleSnapshot(histories)


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
Ask = tuple[str | None, str | None, datetime]
asks_strategy = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([*PLATES, "沪B99999"]), st.none(), st.integers(-1, 21)),
        st.tuples(st.none(), st.sampled_from([*VINS, "VIN-Z"]), st.integers(-1, 21)),
    ).map(lambda t: (t[0], t[1], T0 + timedelta(days=t[2]))),
    min_size=1,
    max_size=40,
)


def answer(snapshot: VehicleSnapshot, ask: Ask) -> tuple[str, tuple[PlateClaim, ...]] | None:
    plate, vin, at = ask
    found = snapshot.at_plate(plate, at) if plate else snapshot.by_vin(vin or "")
    return (found.vin, tuple(sorted(found.claims, key=repr))) if found else None


@settings(max_examples=200, deadline=None)
@given(claims=claims_strategy, asks=asks_strategy, batch=st.integers(1, 16))
def test_each_question_gets_the_answer_a_read_of_its_own_gives(
    claims: list[PlateClaim], asks: list[Ask], batch: int
) -> None:
    read = FakeRead(claims)
    batcher = ReadBatcher(read, max_in_flight=2, max_batch=batch)

    async def ask_all() -> list[VehicleSnapshot]:
        return list(
            await asyncio.gather(
                *(batcher.read([p] if p else [], [v] if v else []) for p, v, _ in asks)
            )
        )

    for ask, snapshot in zip(asks, asyncio.run(ask_all()), strict=True):
        plate, vin, _ = ask
        alone = read.alone([plate] if plate else [], [vin] if vin else [])
        assert answer(snapshot, ask) == answer(alone, ask)
    assert all(len(plates) + len(vins) <= batch for plates, vins in read.calls)
    assert read.most_running <= 2


def test_concurrent_questions_share_round_trips_and_lanes_are_bounded() -> None:
    # A round trip of a few turns of the loop, as a real one lasts, so that both lanes fill.
    read = FakeRead([PlateClaim("VIN-A", "苏E12345", T0, 1)], turns=3)
    batcher = ReadBatcher(read, max_in_flight=2, max_batch=16)

    async def ask(n: int) -> list[VehicleSnapshot]:
        return list(await asyncio.gather(*(batcher.read(["苏E12345"], []) for _ in range(n))))

    answers = asyncio.run(ask(40))
    assert len(answers) == 40 and all(len(s) == 1 for s in answers)
    assert len(read.calls) == 3  # 16 + 16 at once, then the 8 that waited for a lane
    assert read.most_running == 2
    read.calls.clear()
    asyncio.run(ask(1))  # alone: a read of its own, at once
    assert read.calls == [(["苏E12345"], [])]


def test_a_failed_read_fails_its_questions_and_the_next_ones_read_again() -> None:
    read = FakeRead([PlateClaim("VIN-A", "苏E12345", T0, 1)], fail=True)
    batcher = ReadBatcher(read, max_in_flight=1, max_batch=4)

    async def ask(n: int) -> list[VehicleSnapshot | BaseException]:
        return list(
            await asyncio.gather(
                *(batcher.read(["苏E12345"], []) for _ in range(n)), return_exceptions=True
            )
        )

    failed = asyncio.run(ask(6))
    assert all(isinstance(e, ConnectionError) for e in failed)
    read.fail = False
    assert all(not isinstance(a, BaseException) for a in asyncio.run(ask(6)))


def test_a_question_whose_client_went_away_does_not_disturb_the_others() -> None:
    read = FakeRead([PlateClaim("VIN-A", "苏E12345", T0, 1)])
    batcher = ReadBatcher(read, max_in_flight=1, max_batch=16)

    async def scenario() -> list[VehicleSnapshot]:
        leaving = asyncio.ensure_future(batcher.read(["苏E12345"], []))
        staying = [asyncio.ensure_future(batcher.read(["苏E12345"], [])) for _ in range(3)]
        await asyncio.sleep(0)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return list(await asyncio.gather(*staying))

    assert [len(s) for s in asyncio.run(scenario())] == [1, 1, 1]


class GatedRead(FakeRead):
    """A read that lasts until the test opens ``gate``."""

    def __init__(self, claims: list[PlateClaim]) -> None:
        super().__init__(claims)
        self.gate = asyncio.Event()

    async def __call__(self, plates: list[str], vins: list[str]) -> VehicleSnapshot:
        self.calls.append((plates, vins))
        await self.gate.wait()
        return self.alone(plates, vins)


@pytest.mark.parametrize("when", ["gathering", "reading"])
def test_a_batch_whose_leader_is_cancelled_is_read_for_the_others(when: str) -> None:
    """The first question of a batch runs its read in its own task; cancelling that task
    (its client went away, the server is stopping that request) while it gathers the
    batch or while the read is under way must not cancel the questions that joined it."""
    read = GatedRead(
        [PlateClaim("VIN-A", "苏E12345", T0, 1), PlateClaim("VIN-B", "京A00001", T0, 1)]
    )
    batcher = ReadBatcher(read, max_in_flight=1, max_batch=16)

    async def scenario() -> list[VehicleSnapshot]:
        leader = asyncio.ensure_future(batcher.read(["苏E12345"], []))
        others = [asyncio.ensure_future(batcher.read(["京A00001"], [])) for _ in range(3)]
        await asyncio.sleep(0)  # the leader is gathering its batch, the others joined it
        if when == "reading":
            while not read.calls:
                await asyncio.sleep(0)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        read.gate.set()
        return list(await asyncio.gather(*others))

    answers = asyncio.run(scenario())
    assert [s.at_plate("京A00001", T0).vin for s in answers] == ["VIN-B"] * 3  # type: ignore[union-attr]
    if when == "reading":
        assert read.calls == [(["京A00001", "苏E12345"], []), (["京A00001"], [])]
    else:
        assert read.calls == [(["京A00001"], [])]


@given(st.integers(0, 5_000), st.sampled_from([1, 4, 1_000]))
def test_a_bulk_read_is_chunked_small_first_and_covers_every_key_once(
    count: int, size: int
) -> None:
    """The first chunks of a bulk read are a quarter and a half of the chunk size, so the
    caller's first part comes early; no chunk is larger, and every key is read once."""
    keys = [f"K{n:05d}" for n in range(count)]
    chunks = _ramped(keys, size)
    assert [key for chunk in chunks for key in chunk] == keys
    assert all(0 < len(chunk) <= size for chunk in chunks)
    if count > 2 * size:
        assert [len(c) for c in chunks[:2]] == [max(size // 4, 1), max(size // 2, 1)]
