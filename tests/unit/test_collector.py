"""``api.collector.collector_paused``: no automatic collection during a bulk answer, the
collector back on when the last of several interleaved answers ends, and a collector
that was off before left off."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from ctplhub.api import collector
from ctplhub.api.collector import collector_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_on_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_comes_back_on_after_an_error() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the read failed")
    assert gc.isenabled()


def test_interleaved_answers_resume_it_only_when_the_last_ends() -> None:
    states: list[tuple[str, bool]] = []
    first_inside = asyncio.Event()
    first_done = asyncio.Event()

    async def first() -> None:
        with collector_paused():
            first_inside.set()
            await asyncio.sleep(0.01)
        states.append(("first ended", gc.isenabled()))
        first_done.set()

    async def second() -> None:
        await first_inside.wait()
        with collector_paused():
            await first_done.wait()  # the first ends while this one still runs
            states.append(("second running", gc.isenabled()))
        states.append(("second ended", gc.isenabled()))

    async def both() -> None:
        await asyncio.gather(first(), second())

    asyncio.run(both())
    assert states == [("first ended", False), ("second running", False), ("second ended", True)]


def test_a_collector_already_off_is_left_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_objects_made_inside_are_still_collected_after() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the collector frees it

    with collector_paused():
        alive = weakref.ref(Node())
        assert alive() is not None  # a cycle: reference counting cannot free it
    gc.collect()
    assert alive() is None


def test_overlapping_answers_still_collect_after_the_longest_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls that keep overlapping never release the pause together: the one that ends
    after ``MAX_PAUSE_S`` collects the young generations, so cycles do not pile up."""
    monkeypatch.setattr(collector, "MAX_PAUSE_S", 0.0)

    class Node:
        def __init__(self) -> None:
            self.me = self

    with collector_paused():  # another call, still running throughout
        with collector_paused():
            alive = weakref.ref(Node())
            assert alive() is not None  # a cycle: reference counting cannot free it
        assert alive() is None  # collected when the inner call ended
        assert not gc.isenabled()  # the outer call still holds the pause
    assert gc.isenabled()
